"""Virtual cards for the card emulators: plain RFID cards and contactless payment cards.

Contract: a `VirtualCard` has `name`, `atr` (bytes), `reset()` (power on / warm reset:
forget any selected application) and `apdu(command) -> response` (R-APDU incl. SW1 SW2;
never raises). Every card answers `FF CA 00 00 00` (GET DATA UID, as a PC/SC contactless
reader would) with its UID. `make_card(spec)` builds one from a catalogue name in
`CARD_NAMES` or `rfid:<hex uid>`; unknown names raise KeyError listing the known ones.

Provides:
- `RfidCard`: UID only; SELECT gives 6A82, anything else 6D00.
- `EmvCard`: a contactless payment card driven by an `EmvProfile` (PAN, expiry,
  applications, PDOL, GPO format, where the PAN is, quirks). It answers SELECT PPSE,
  SELECT AID (FCI with 50, 87, 9F38), GET PROCESSING OPTIONS (checks the PDOL data
  length: 6700 when wrong; keeps the data in `gpo_data`), READ RECORD and GET RESPONSE,
  as EMV Book 1/3 and Book B describe. Short APDUs only. Status words: unknown
  instruction 6D00, other class 6E00, bad P1/P2 6A86, wrong Lc/length 6700, no record
  6A83, no application selected 6985, unknown AID 6A82; a phone with a locked wallet
  (quirk `see-phone`, card `phone-6986`) answers GPO 6986.
- `EMV_PROFILES`, `TEST_PANS` (name -> PAN of every EMV card), `CARD_NAMES` (all names).

Card numbers are public test numbers only (Luhn-valid, from Stripe's, Braintree's and
Worldpay's published test lists); each profile names its source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from drivers.readers import tlv

# ATR a PC/SC contactless reader synthesises for an ISO 14443-A card (PC/SC part 3)
RFID_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
# ATR of an ISO 14443-4 (T=CL) card without historical bytes (PC/SC part 3): 3B 80 80
# 01 and TCK = 80 ^ 80 ^ 01
EMV_ATR = bytes.fromhex("3B80800101")

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS_NOT_SATISFIED = b"\x69\x85"
SW_CONDITIONS_OF_USE = b"\x69\x86"  # a mobile wallet: see phone for instructions
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_BAD_P1P2 = b"\x6a\x86"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"
SW_NO_DIAGNOSIS = b"\x6f\x00"

PPSE_NAME = b"2PAY.SYS.DDF01"

# quirks an EmvProfile can have
QUIRK_61XX = "61xx"  # SELECT AID, GPO, READ RECORD answer 61XX; data by GET RESPONSE
QUIRK_6CXX = "6cxx"  # READ RECORD answers 6CXX unless Le is the record's exact length
QUIRK_BROKEN_TLV = "broken-tlv"  # the first record holds a TLV running past its end
# a phone whose wallet is locked: GET PROCESSING OPTIONS answers 6986 (the cardholder
# must confirm on the phone, EMV Book C-3 "See phone for instructions")
QUIRK_SEE_PHONE = "see-phone"
QUIRKS = (QUIRK_61XX, QUIRK_6CXX, QUIRK_BROKEN_TLV, QUIRK_SEE_PHONE)
GET_RESPONSE_CHUNK = 32  # bytes a 61XX card hands out per GET RESPONSE


class VirtualCard(Protocol):
    name: str
    atr: bytes

    def reset(self) -> None: ...

    def apdu(self, command: bytes) -> bytes: ...


class RfidCard:
    """A plain RFID/NFC card (MIFARE-like): UID only, no applications."""

    def __init__(self, name: str, uid: bytes) -> None:
        if len(uid) not in (4, 7, 10):
            raise ValueError(f"uid: expected 4, 7 or 10 bytes, got {len(uid)}")
        self.name = name
        self.uid = uid
        self.atr = RFID_ATR

    def reset(self) -> None:
        pass

    def apdu(self, command: bytes) -> bytes:
        if command[:4] == b"\xff\xca\x00\x00":
            return self.uid + SW_OK
        if command[:2] == b"\x00\xa4":
            return SW_FILE_NOT_FOUND
        return SW_INS_NOT_SUPPORTED


@dataclass(frozen=True)
class EmvApp:
    aid: str  # hex
    label: str
    priority: int = 1  # application priority indicator (87); 0 = none listed


@dataclass(frozen=True)
class EmvProfile:
    pan: str
    expiry: str  # YYMMDD (5F24); the track 2 data holds its YYMM
    apps: tuple[EmvApp, ...]  # in the PPSE in this order; all share the records
    source: str  # where the test number is published
    pdol: str = ""  # hex DOL the card asks for (9F38); "" = none
    gpo_format: int = 2  # 1: 80 AIP AFL; 2: 77 template
    pan_tag: str = "57"  # "57" track 2 equivalent, "9F6B" Mastercard track 2, "5A" PAN+5F24
    psn: str = "01"  # PAN sequence number (5F34)
    aip: str = "2000"  # application interchange profile (82)
    quirks: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.pan_tag not in ("57", "9F6B", "5A"):
            raise ValueError(f"pan_tag {self.pan_tag!r}: expected 57, 9F6B or 5A")
        if self.gpo_format not in (1, 2):
            raise ValueError(f"gpo_format {self.gpo_format}: expected 1 or 2")
        if unknown := set(self.quirks) - set(QUIRKS):
            raise ValueError(f"quirks {sorted(unknown)}: known are {', '.join(QUIRKS)}")


def _short_apdu(command: bytes) -> tuple[bytes, bytes, int | None] | None:
    """(header, data, Le) of a short C-APDU (ISO 7816-3 cases 1-4); None if malformed."""
    if len(command) < 4:
        return None
    header, body = command[:4], command[4:]
    if not body:
        return header, b"", None
    if len(body) == 1:
        return header, b"", body[0]
    lc = body[0]
    if lc == 0:  # extended length: not supported
        return None
    if len(body) == 1 + lc:
        return header, body[1:], None
    if len(body) == 2 + lc:
        return header, body[1:-1], body[-1]
    return None


def track2(pan: str, expiry_yymm: str, service_code: str = "201") -> bytes:
    """Track 2 equivalent data: PAN, D, YYMM, service code, zeros, F padding to bytes."""
    nibbles = f"{pan}D{expiry_yymm}{service_code}" + "0" * 10
    if len(nibbles) % 2:
        nibbles += "F"
    return bytes.fromhex(nibbles)


class EmvCard:
    """A contactless payment card answering from its `EmvProfile`."""

    def __init__(self, name: str, profile: EmvProfile) -> None:
        self.name = name
        self.profile = profile
        self.atr = EMV_ATR
        # ISO 14443-A random UID (first byte 08), fixed per card name
        self.uid = b"\x08" + hashlib.sha256(name.encode()).digest()[:3]
        self.pdol_length = sum(n for _, n in tlv.parse_dol(bytes.fromhex(profile.pdol)))
        self.records = _records(profile)
        self.gpo_data: bytes | None = None  # the PDOL data of the last GPO
        self.reset()

    @property
    def pan(self) -> str:
        return self.profile.pan

    @property
    def aid(self) -> str:
        return self.profile.apps[0].aid

    def reset(self) -> None:
        self._selected: EmvApp | None = None
        self._pending = b""  # data waiting for GET RESPONSE
        self.gpo_data = None

    def apdu(self, command: bytes) -> bytes:
        try:
            return self._apdu(bytes(command))
        except Exception:  # a card never raises; a bug shows as "no precise diagnosis"
            return SW_NO_DIAGNOSIS

    def _apdu(self, command: bytes) -> bytes:
        parsed = _short_apdu(command)
        if parsed is None:
            return SW_WRONG_LENGTH
        header, data, le = parsed
        cla, ins, p1, p2 = header
        if ins != 0xC0:
            self._pending = b""  # any other command ends a pending GET RESPONSE
        handler = {
            (0xFF, 0xCA): self._get_uid,
            (0x00, 0xA4): self._select,
            (0x80, 0xA8): self._gpo,
            (0x00, 0xB2): self._read_record,
            (0x00, 0xC0): self._get_response,
        }.get((cla, ins))
        if handler is None:
            known_ins = ins in (0xCA, 0xA4, 0xA8, 0xB2, 0xC0)
            return SW_CLA_NOT_SUPPORTED if known_ins else SW_INS_NOT_SUPPORTED
        return handler(p1, p2, data, le)

    # --- commands

    def _get_uid(self, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if (p1, p2) != (0, 0):
            return SW_BAD_P1P2
        if data:
            return SW_WRONG_LENGTH
        return self.uid + SW_OK

    def _select(self, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if (p1, p2) != (0x04, 0x00):
            return SW_BAD_P1P2
        if not data:
            return SW_WRONG_LENGTH
        self._selected = None
        if data == PPSE_NAME:
            return self._answer(self._ppse_fci(), "select-ppse")
        for app in self.profile.apps:  # partial selection: the AID starts with the name
            if bytes.fromhex(app.aid).startswith(data) and len(data) >= 5:
                self._selected = app
                return self._answer(self._app_fci(app), "select-aid")
        return SW_FILE_NOT_FOUND

    def _gpo(self, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if (p1, p2) != (0, 0):
            return SW_BAD_P1P2
        if self._selected is None:
            return SW_CONDITIONS_NOT_SATISFIED
        if len(data) < 2 or data[0] != 0x83 or data[1] != len(data) - 2 \
                or data[1] != self.pdol_length:
            return SW_WRONG_LENGTH
        self.gpo_data = data[2:]
        if QUIRK_SEE_PHONE in self.profile.quirks:
            return SW_CONDITIONS_OF_USE
        return self._answer(self._gpo_answer(), "gpo")

    def _read_record(self, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 == 0 or p2 & 0x07 != 0x04 or not 1 <= p2 >> 3 <= 30:
            return SW_BAD_P1P2
        if data:
            return SW_WRONG_LENGTH
        if self._selected is None:
            return SW_CONDITIONS_NOT_SATISFIED
        record = self.records.get((p2 >> 3, p1))
        if record is None:
            return SW_RECORD_NOT_FOUND
        if QUIRK_6CXX in self.profile.quirks and le != len(record):
            return bytes((0x6C, len(record)))
        return self._answer(record, "read-record")

    def _get_response(self, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if (p1, p2) != (0, 0):
            return SW_BAD_P1P2
        if data:
            return SW_WRONG_LENGTH
        if not self._pending:
            return SW_CONDITIONS_NOT_SATISFIED
        count = le or 256
        out, self._pending = self._pending[:count], self._pending[count:]
        return out + self._more()

    # --- answers

    def _more(self) -> bytes:
        if not self._pending:
            return SW_OK
        return bytes((0x61, min(len(self._pending), GET_RESPONSE_CHUNK)))

    def _answer(self, data: bytes, command: str) -> bytes:
        if QUIRK_61XX in self.profile.quirks and command != "select-ppse":
            self._pending = data
            return self._more()
        return data + SW_OK

    def _ppse_fci(self) -> bytes:
        entries = b""
        for app in self.profile.apps:
            entry = tlv.encode(0x4F, bytes.fromhex(app.aid)) + tlv.encode(0x50, app.label.encode())
            if app.priority:
                entry += tlv.encode(0x87, bytes((app.priority,)))
            entries += tlv.encode(0x61, entry)
        return tlv.encode(0x6F, tlv.encode(0x84, PPSE_NAME)
                          + tlv.encode(0xA5, tlv.encode(0xBF0C, entries)))

    def _app_fci(self, app: EmvApp) -> bytes:
        proprietary = tlv.encode(0x50, app.label.encode())
        if app.priority:
            proprietary += tlv.encode(0x87, bytes((app.priority,)))
        if self.profile.pdol:
            proprietary += tlv.encode(0x9F38, bytes.fromhex(self.profile.pdol))
        proprietary += tlv.encode(0x5F2D, b"en")
        return tlv.encode(0x6F, tlv.encode(0x84, bytes.fromhex(app.aid))
                          + tlv.encode(0xA5, proprietary))

    def _afl(self) -> bytes:
        """One AFL entry per run of consecutive records in an SFI."""
        afl = b""
        keys = sorted(self.records)
        start = 0
        for i in range(1, len(keys) + 1):
            if i == len(keys) or keys[i] != (keys[i - 1][0], keys[i - 1][1] + 1):
                sfi, first = keys[start]
                afl += bytes((sfi << 3, first, keys[i - 1][1], 0))
                start = i
        return afl

    def _gpo_answer(self) -> bytes:
        aip = bytes.fromhex(self.profile.aip)
        if self.profile.gpo_format == 1:
            return tlv.encode(0x80, aip + self._afl())
        return tlv.encode(0x77, tlv.encode(0x82, aip) + tlv.encode(0x94, self._afl())
                          + tlv.encode(0x9F36, b"\x00\x01")  # application transaction counter
                          + tlv.encode(0x9F27, b"\x80")  # cryptogram information: ARQC
                          + tlv.encode(0x9F26, bytes.fromhex("1122334455667788")))


def _records(profile: EmvProfile) -> dict[tuple[int, int], bytes]:
    """(SFI, record) -> record (70 template): SFI 1 record 1 holds the card number,
    SFI 2 records 1-2 the PAN sequence number, expiry and CA public key index."""
    expiry = bytes.fromhex(profile.expiry)
    if profile.pan_tag == "5A":
        pan = profile.pan + ("F" if len(profile.pan) % 2 else "")
        card = tlv.encode(0x5A, bytes.fromhex(pan)) + tlv.encode(0x5F24, expiry)
    else:
        card = tlv.encode(int(profile.pan_tag, 16), track2(profile.pan, profile.expiry[:4]))
    if QUIRK_BROKEN_TLV in profile.quirks:
        card = card[:len(card) // 2]  # the value's length runs past the record's end
    misc = tlv.encode(0x5F34, bytes.fromhex(profile.psn))
    if profile.pan_tag != "5A":
        misc += tlv.encode(0x5F24, expiry)
    misc += tlv.encode(0x5F28, b"\x08\x40") + tlv.encode(0x9F07, b"\xff\x00")
    keys = tlv.encode(0x8F, b"\x92") + tlv.encode(0x9F32, b"\x03")
    return {
        (1, 1): tlv.encode(0x70, card),
        (2, 1): tlv.encode(0x70, misc),
        (2, 2): tlv.encode(0x70, keys),
    }


# --- catalogue -----------------------------------------------------------------------------

VISA_PDOL = "9F66049F02069F03069F1A0295055F2A029A039C019F3704"
VISA = EmvApp("A0000000031010", "VISA CREDIT")
MASTERCARD = EmvApp("A0000000041010", "MASTERCARD")
MAESTRO = EmvApp("A0000000043060", "MAESTRO")
GIROCARD = EmvApp("A0000003591010028001", "girocard")
GIROCARD_PDOL = "9F02069F1A025F2A029A039C019F3704"
FUTURE = "301231"  # expiry of the cards that are not expired

EMV_PROFILES: dict[str, EmvProfile] = {
    "visa": EmvProfile("4111111111111111", FUTURE, (VISA,), "Visa test number (Stripe, "
                       "Braintree)", pdol=VISA_PDOL),
    "mastercard": EmvProfile("5555555555554444", FUTURE, (MASTERCARD,), "Stripe, Braintree",
                             pdol="9F35019F33039F4005", gpo_format=1, pan_tag="9F6B",
                             aip="1980"),
    "amex": EmvProfile("378282246310005", FUTURE,
                       (EmvApp("A000000025010801", "AMERICAN EXPRESS"),), "Stripe, Braintree",
                       pdol="9F35019F6E049F3704", pan_tag="5A", aip="1C00"),
    "discover": EmvProfile("6011111111111117", FUTURE, (EmvApp("A0000001523010", "DISCOVER"),),
                           "Stripe, Braintree", pdol="9F66049F02069F37045F2A02"),
    "jcb": EmvProfile("3530111333300000", FUTURE, (EmvApp("A0000000651010", "JCB CREDIT"),),
                      "Stripe, Braintree", pdol="9F02069F1A025F2A029A039C019F3704",
                      gpo_format=1),
    "unionpay": EmvProfile("6200000000000005", FUTURE,
                           (EmvApp("A000000333010102", "UNIONPAY CREDIT"),), "Stripe",
                           pdol=VISA_PDOL),
    "maestro": EmvProfile("6759649826438453", FUTURE, (MAESTRO,), "Worldpay (Maestro UK)",
                          gpo_format=1, aip="1980"),
    "interac": EmvProfile("4506445006931933", FUTURE, (EmvApp("A0000002771010", "Interac"),),
                          "Stripe Terminal simulated Interac card",
                          pdol="9F02069F1A025F2A029F37049F3501"),
    "visa-declined": EmvProfile("4000000000000002", FUTURE, (VISA,),
                                "Stripe: generic decline", pdol=VISA_PDOL),
    "visa-insufficient": EmvProfile("4000000000009995", FUTURE, (VISA,),
                                    "Stripe: insufficient funds", pdol=VISA_PDOL),
    "visa-expired": EmvProfile("4012888888881881", "221231", (VISA,), "Stripe, Braintree",
                               pdol=VISA_PDOL),
    "mc-maestro": EmvProfile("5200828282828210", FUTURE,
                             (EmvApp(MAESTRO.aid, MAESTRO.label, 2),
                              EmvApp(MASTERCARD.aid, MASTERCARD.label, 1)),
                             "Stripe: Mastercard debit", gpo_format=1, pan_tag="9F6B",
                             aip="1980"),
    "visa-61xx": EmvProfile("4242424242424242", FUTURE, (VISA,), "Stripe", pdol=VISA_PDOL,
                            quirks=frozenset({QUIRK_61XX})),
    "mastercard-6cxx": EmvProfile("2223003122003222", FUTURE, (MASTERCARD,),
                                  "Stripe: Mastercard 2-series", gpo_format=1,
                                  pan_tag="9F6B", aip="1980", quirks=frozenset({QUIRK_6CXX})),
    "broken-tlv": EmvProfile("4000056655665556", FUTURE, (VISA,), "Stripe: Visa debit",
                             pdol=VISA_PDOL, quirks=frozenset({QUIRK_BROKEN_TLV})),
    "unsupported-aid": EmvProfile("4000001240000000", FUTURE,
                                  (EmvApp("F0000000010001", "STORE CARD"),),
                                  "Stripe: Canada"),
    # schemes the terminal knows besides the international ones (girocard, CB, V PAY,
    # Diners Club on Discover's D-PAS); the numbers are Stripe's per-country test cards
    "girocard": EmvProfile("4000002760000016", FUTURE, (GIROCARD,), "Stripe: Germany",
                           pdol=GIROCARD_PDOL, gpo_format=1, aip="1980"),
    "girocard-ec": EmvProfile("4000000400000008", FUTURE,
                              (EmvApp("A00000005945430100", "girocard"),), "Stripe: Austria",
                              pdol=GIROCARD_PDOL, gpo_format=1, aip="1980"),
    "girocard-zka": EmvProfile("4000000560000004", FUTURE,
                               (EmvApp("D27600002547410100", "girocard"),), "Stripe: Belgium",
                               gpo_format=1, aip="1980"),
    "girocard-maestro": EmvProfile("4000002080000001", FUTURE,
                                   (GIROCARD, EmvApp(MAESTRO.aid, MAESTRO.label, 2)),
                                   "Stripe: Denmark", pdol=GIROCARD_PDOL, gpo_format=1,
                                   aip="1980"),
    "cb": EmvProfile("4000002500000003", FUTURE, (EmvApp("A0000000421010", "CB"),),
                     "Stripe: France", pdol=VISA_PDOL),
    "vpay": EmvProfile("4000003720000005", FUTURE, (EmvApp("A0000000032020", "V PAY"),),
                       "Stripe: Ireland", pdol=VISA_PDOL),
    "diners": EmvProfile("36227206271667", FUTURE, (EmvApp("A0000001523010", "DINERS CLUB"),),
                         "Stripe: Diners Club (14 digits)", pdol="9F66049F02069F37045F2A02"),
    "phone-6986": EmvProfile("4000002460000001", FUTURE, (VISA,),
                             "Stripe: Finland", pdol=VISA_PDOL,
                             quirks=frozenset({QUIRK_SEE_PHONE})),
}

TEST_PANS: dict[str, str] = {name: profile.pan for name, profile in EMV_PROFILES.items()}

RFID_UIDS = {
    "rfid-4": "1A2B3C4D",
    "rfid-7": "04A1B2C3D4E5F6",
    "rfid-10": "04A1B2C3D4E5F6A7B8C9",
}

CARD_NAMES: tuple[str, ...] = (*RFID_UIDS, *EMV_PROFILES)


def make_card(spec: str) -> VirtualCard:
    if spec.startswith("rfid:"):
        try:
            return RfidCard(spec, bytes.fromhex(spec[5:]))
        except ValueError as exc:
            raise KeyError(f"{spec!r}: expected rfid:<hex uid of 4, 7 or 10 bytes> ({exc})"
                           ) from None
    if spec in RFID_UIDS:
        return RfidCard(spec, bytes.fromhex(RFID_UIDS[spec]))
    if spec in EMV_PROFILES:
        return EmvCard(spec, EMV_PROFILES[spec])
    raise KeyError(f"unknown card {spec!r}; known: {', '.join(CARD_NAMES)}, rfid:<hex uid>")
