"""OCMF signing-meter core: what a calibrated DC meter does when it signs.

`OcmfMeterSim` is the part every signing-meter simulator shares (the HTTP and Modbus
front ends of the meter models wrap it): it holds an ECDSA key (generated at the first
start, kept in a JSON state file beside the pagination counter and the open
transaction, so a new instance on the same file is the same meter after a power
loss), begins and ends transactions and returns the signed OCMF documents exactly as
a meter does:

    OCMF|{payload JSON}|{"SA":"ECDSA-secp256r1-SHA256","SD":"<DER signature, hex>"}

The signature is ECDSA with SHA-256 over the UTF-8 bytes of the payload JSON text
exactly as it stands between the two separators (that is what the S.A.F.E.
Transparenzsoftware and pyocmf's `OCMF.verify_signature` check). The begin document
holds the begin reading (TX "B"); the end document holds the begin reading again and
the end reading (TX E/L/R/A/P), so one document is a whole verifiable transaction.
Pagination "T<n>" counts every transaction document the meter signed, +1 each.

Faults (`set_fault(kind, on)`, see `SIGNING_FAULT_KINDS`):
- bad_signature: documents carry a signature that does not verify (a valid DER
  signature of other bytes);
- pagination_gap: each document skips one pagination number;
- error_flag: readings carry EF "E" (energy error);
- clock_unsync / clock_informative: the time status is U / I.
`reboot()` is a power cycle: the open transaction and the counter survive, the clock
is lost (status U until `set_time()`).

Sources used (reading only): the OCMF specification of S.A.F.E. e.V. (OCMF-en.md,
github.com/SAFE-eV/OCMF-Open-Charge-Metering-Format: payload Table 1-8, reading
Table 7, signature Table 8, time format "YYYY-MM-DDThh:mm:ss,fff+zzzz S") and the
signature check of pyocmf 0.6 (pyocmf/crypto/verification.py: the payload's UTF-8
bytes, DER signature, hex by default).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.meter.signing import ClockSync

SIGNING_FAULT_KINDS = ("bad_signature", "pagination_gap", "error_flag", "clock_unsync",
                       "clock_informative")
END_REASONS = ("E", "L", "R", "A", "P")
CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "secp192r1": ec.SECP192R1,
    "secp256r1": ec.SECP256R1,
    "secp256k1": ec.SECP256K1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "brainpoolP256r1": ec.BrainpoolP256R1,
}
FORMAT_VERSION = "1.0"
MAX_TARIFF_TEXT = 250
STATE_VERSION = 1

__all__ = ["CURVES", "END_REASONS", "SIGNING_FAULT_KINDS", "OcmfMeterSim", "SimStateError",
           "ocmf_json", "ocmf_time"]


class SimStateError(Exception):
    """A request the meter refuses in its state: begin while a transaction runs, end
    with none running or naming another one."""


def ocmf_json(value: Any) -> str:
    """Compact JSON as a meter writes it; a Decimal is written as the number it is
    (12.340 stays 12.340, never 12.34 or a float)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{ocmf_json(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(ocmf_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def ocmf_time(at: datetime, sync: ClockSync) -> str:
    """RD TM: "2026-12-03T06:04:43,123+0000 S" (UTC, milliseconds, time status)."""
    utc = at.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S},{utc.microsecond // 1000:03d}+0000 {sync.value}"


class OcmfMeterSim:
    """One signing meter: key, pagination, the open transaction, the clock status."""

    value_decimals = 3  # the register's resolution in kWh (set 4 for a 0.1 Wh meter)

    def __init__(self, *, serial: str, model: str, manufacturer: str, firmware: str,
                 curve: str, obis: str = "01-00:01.08.00.FF", reading_type: str = "DC",
                 gateway_id: str = "", gateway_serial: str = "", gateway_version: str = "",
                 energy_wh: Callable[[], Decimal], now: Callable[[], datetime],
                 state_path: Path | None = None) -> None:
        if curve not in CURVES:
            raise ValueError(f"curve {curve!r} unknown; one of {', '.join(CURVES)}")
        self.serial = serial
        self.model = model
        self.manufacturer = manufacturer
        self.firmware = firmware
        self.curve = curve
        self.obis = obis
        self.reading_type = reading_type
        self.gateway_id = gateway_id
        self.gateway_serial = gateway_serial
        self.gateway_version = gateway_version
        self._energy_wh = energy_wh
        self._now = now
        self._state_path = state_path
        self._faults: set[str] = set()
        self._synced = True
        self._pagination = 0
        self._open: dict[str, Any] | None = None
        self._last: str | None = None
        self._key = self._load_or_create()
        self.signing_method = f"ECDSA-{curve}-SHA256"
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key_hex = der.hex().upper()

    # -- state ---------------------------------------------------------------------------

    def _load_or_create(self) -> ec.EllipticCurvePrivateKey:
        path = self._state_path
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                key = serialization.load_pem_private_key(
                    data["private_key_pem"].encode("ascii"), password=None)
                self._pagination = int(data["pagination"])
                self._open = data.get("open")
                self._last = data.get("last_document")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise SimStateError(f"meter state {path} unreadable: {exc}") from exc
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != self.curve:
                raise SimStateError(f"meter state {path} holds a key that is not on "
                                    f"{self.curve}")
            return key
        key = ec.generate_private_key(CURVES[self.curve]())
        self._key = key
        self._save()
        return key

    def _save(self) -> None:
        if self._state_path is None:
            return
        pem = self._key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode("ascii")
        data = {"version": STATE_VERSION, "serial": self.serial, "curve": self.curve,
                "private_key_pem": pem, "pagination": self._pagination,
                "open": self._open, "last_document": self._last}
        tmp = self._state_path.with_name(self._state_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._state_path)

    # -- clock and faults ----------------------------------------------------------------

    @property
    def clock_sync(self) -> ClockSync:
        if "clock_unsync" in self._faults:
            return ClockSync.UNSYNCHRONIZED
        if "clock_informative" in self._faults:
            return ClockSync.INFORMATIVE
        return ClockSync.SYNCHRONIZED if self._synced else ClockSync.UNSYNCHRONIZED

    def set_time(self, synced: bool = True) -> None:
        """The clock was set: by a trusted source (S) or not (the meter reports I, as
        `clock_informative` does)."""
        self._synced = True
        if synced:
            self._faults.discard("clock_informative")
        else:
            self._faults.add("clock_informative")

    def set_fault(self, kind: str, on: bool) -> None:
        if kind not in SIGNING_FAULT_KINDS:
            raise ValueError(f"fault {kind!r} unknown; one of {', '.join(SIGNING_FAULT_KINDS)}")
        if on:
            self._faults.add(kind)
        else:
            self._faults.discard(kind)

    def faults(self) -> frozenset[str]:
        return frozenset(self._faults)

    def reboot(self) -> None:
        """A power cycle: the open transaction, the counter and the key stay (they are
        non-volatile); the clock is lost until `set_time()`."""
        self._synced = False

    # -- transactions --------------------------------------------------------------------

    def open_transaction(self) -> str | None:
        return None if self._open is None else str(self._open["transaction_id"])

    def last_document(self) -> str | None:
        return self._last

    def begin(self, transaction_id: str, identification: Mapping[str, Any],
              tariff_text: str) -> str:
        if self._open is not None:
            raise SimStateError(f"transaction {self._open['transaction_id']} is running")
        if len(tariff_text) > MAX_TARIFF_TEXT:
            raise ValueError(f"tariff text has {len(tariff_text)} characters, at most "
                             f"{MAX_TARIFF_TEXT}")
        ident = {"IS": bool(identification.get("IS", False)),
                 "IL": str(identification.get("IL", "NONE")),
                 "IF": list(identification.get("IF", [])),
                 "IT": str(identification.get("IT", "NONE")),
                 "ID": str(identification.get("ID", ""))}
        reading = self._reading("B")
        self._open = {"transaction_id": transaction_id, "identification": ident,
                      "tariff_text": tariff_text, "begin_reading": reading}
        return self._sign_and_keep([reading])

    def end(self, transaction_id: str | None, reason: str = "E") -> str:
        """End the open transaction (`transaction_id` None: whichever is open, as after
        a restart of the terminal); the end document holds both readings."""
        if reason not in END_REASONS:
            raise ValueError(f"end reason {reason!r} unknown; one of {', '.join(END_REASONS)}")
        if self._open is None:
            raise SimStateError("no transaction is running")
        if transaction_id is not None and transaction_id != self._open["transaction_id"]:
            raise SimStateError(f"transaction {self._open['transaction_id']} is running, "
                                f"not {transaction_id}")
        readings = [self._open["begin_reading"], self._reading(reason)]
        text = self._sign_and_keep(readings)
        self._open = None
        self._save()
        return text

    def _reading(self, tx: str) -> dict[str, Any]:
        step = Decimal(1).scaleb(-self.value_decimals)
        value_kwh = (Decimal(self._energy_wh()) / 1000).quantize(step, rounding=ROUND_FLOOR)
        return {"TM": ocmf_time(self._now(), self.clock_sync), "TX": tx,
                # the state file keeps it as text; ocmf_json writes it as a number
                "RV": str(value_kwh), "RI": self.obis, "RU": "kWh", "RT": self.reading_type,
                "EF": "E" if "error_flag" in self._faults else "", "ST": "G"}

    def _sign_and_keep(self, readings: list[dict[str, Any]]) -> str:
        self._pagination += 2 if "pagination_gap" in self._faults else 1
        payload: dict[str, Any] = {"FV": FORMAT_VERSION, "GI": self.gateway_id,
                                   "GS": self.gateway_serial, "GV": self.gateway_version,
                                   "PG": f"T{self._pagination}", "MV": self.manufacturer,
                                   "MM": self.model, "MS": self.serial, "MF": self.firmware}
        assert self._open is not None
        payload.update(self._open["identification"])
        payload["TT"] = self._open["tariff_text"]
        payload["RD"] = [{**r, "RV": Decimal(r["RV"])} for r in readings]
        payload_text = ocmf_json(payload)
        signed = payload_text.encode("utf-8")
        if "bad_signature" in self._faults:
            signed += b" "  # a real signature, of other bytes
        der = self._key.sign(signed, ec.ECDSA(hashes.SHA256()))
        signature = ocmf_json({"SA": self.signing_method, "SD": der.hex().upper()})
        text = f"OCMF|{payload_text}|{signature}"
        self._last = text
        self._save()
        return text
