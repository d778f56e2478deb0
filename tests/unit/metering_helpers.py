"""A signing meter as the daemon describes it (docs/local-api.md): the status snapshot's
`metering` and a receipt's `signed_meter`, for the UI's unit and layout tests.

The public key has the shape of a P-256 key's DER SubjectPublicKeyInfo in hex (182
digits, the fixed P-256 header; the point is made up) and the OCMF text that of a LEM
meter's transaction: the UI shows them, it never checks a signature."""

from __future__ import annotations

from typing import Any

PUBLIC_KEY = ("3059301306072A8648CE3D020106082A8648CE3D03010703420004"
              "5A4F0B1C3E2D7F6A8B9C0D1E2F3A4B5C6D7E8F9011223344556677889900AABB"
              "CCDDEEFF00112233445566778899AABBCCDDEEFF0011223344556677889900AA")
METER_SERIAL = "0815471100"
METHOD = "ECDSA-secp256r1-SHA256"
OCMF = ('OCMF|{"FV":"1.0","GI":"LEM DCBM 400/600","GS":"' + METER_SERIAL + '","GV":"1.2.5",'
        '"PG":"T27","MV":"LEM","MM":"DCBM 400/600","MS":"' + METER_SERIAL + '","IS":true,'
        '"IL":"VERIFIED","IF":["RFID_PLAIN"],"IT":"ISO14443","ID":"04A1B2C3D4E5F6",'
        '"CT":"EVSEID","CI":"DE*EVT*E0001*1","RD":[{"TM":"2026-12-02T10:51:55,000+0100 S",'
        '"TX":"B","RV":12345.678,"RI":"01-00:98.08.00.FF","RU":"kWh","RT":"DC","EF":"",'
        '"ST":"G"},{"TM":"2026-12-02T11:02:00,000+0100 S","TX":"E","RV":12361.553,'
        '"RI":"01-00:98.08.00.FF","RU":"kWh","RT":"DC","EF":"","ST":"G"}]}|'
        '{"SA":"' + METHOD + '","SD":"304502210098A3C1F5E6D7C8B9A0B1C2D3E4F5A6B7C8D9E0F1'
        'A2B3C4D5E6F708192A3B4C5D6E02204F3E2D1C0B0A99887766554433221100FFEEDDCCBBAA9988'
        '7766554433221100FF"}')


def metering(**changes: Any) -> dict[str, Any]:
    """The snapshot's `metering` of a signing meter, synchronised, no fault."""
    values: dict[str, Any] = {
        "signed": True, "meter_model": "LEM DCBM 400/600", "meter_serial": METER_SERIAL,
        "public_key": PUBLIC_KEY, "signing_method": METHOD, "meter_clock": "S",
        "terminal_clock_synced": True, "clock_trusted": True, "fault": None}
    values.update(changes)
    return values


PLAIN_METERING: dict[str, Any] = {
    "signed": False, "meter_model": None, "meter_serial": None, "public_key": None,
    "signing_method": None, "meter_clock": None, "terminal_clock_synced": None,
    "clock_trusted": None, "fault": None}


def signed_meter(**changes: Any) -> dict[str, Any]:
    """A receipt's `signed_meter`: start and end register values, the QR text."""
    values: dict[str, Any] = {
        "meter_serial": METER_SERIAL, "start_wh": "12345678", "end_wh": "12361553",
        "public_key": PUBLIC_KEY, "signing_method": METHOD, "qr": OCMF,
        "billable_by_energy": True, "fault": None}
    values.update(changes)
    return values
