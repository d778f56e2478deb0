"""EMV contactless read over an APDU transport: the card data a simple reader needs.

Provides `read_emv(transmit, terminal, today) -> EmvRead`, the kernel-independent part of
a contactless read (EMV Book B, Book 3 for records and DOLs):
SELECT PPSE -> choose the application (`SUPPORTED_AIDS` whose scheme is accepted, lowest
priority indicator first)
-> SELECT AID -> GET PROCESSING OPTIONS with the PDOL filled from `TerminalParams`
-> READ RECORD for every AFL entry -> PAN, expiry and PAN sequence number from the track 2
equivalent (57), Mastercard's track 2 data (9F6B) or 5A + 5F24. Every command handles
`61XX` (GET RESPONSE, repeated) and `6CXX` (sent again once with Le = XX). The terminal
does no offline data authentication and computes no cryptogram: the card data goes to the
payment gateway in an envelope (terminal/payment/crypto.py), which authorises online.

Contract (other modules rely on it):
- `Transmit = Callable[[bytes], bytes]`: sends a C-APDU, returns the R-APDU with SW1 SW2
  as its last two bytes. A transport raises `CardGone` when the card left the field, and
  may raise `EmvError` with its own reason (timeout, reader failure); `read_emv` lets both
  propagate unchanged.
- `read_emv(transmit, terminal, today) -> EmvRead`; raises `NotEmvCard` when the card has
  no payment application (no PPSE, 6A82 etc.: the caller treats it as a plain RFID card),
  `EmvError(reason)` for anything else that went wrong (no supported AID, bad status
  word, malformed TLV, missing PAN...). Of those, `UnsupportedCard` when no application
  is of a known scheme, `SchemeNotAccepted` (a subclass) when the known ones are all
  outside `TerminalParams.accepted_schemes` (the card data is then not read), and
  `SeePhone` when GET PROCESSING OPTIONS answers 6986 (a phone's wallet wants the
  cardholder's confirmation: Try Again). Never any other exception for any card answer.
  An expired card is returned normally (the caller decides; `EmvRead.card.expiry_yymm`).
- `EmvError.reason` is short English for logs and never contains card data.

Config: none of its own. The caller builds `TerminalParams` from `[payment] country_code`
(9F1A), the tariff currency as ISO 4217 numeric (5F2A) and the amount the tap holds (the
budget the driver picked on the screen, else `[payment] preauth_amount`) in
minor units (9F02).

On failure: a hostile or broken card cannot make a read loop or grow without bound: at
most `MAX_APDUS` commands, `MAX_GET_RESPONSES` GET RESPONSE per command,
`MAX_RESPONSE_BYTES` received and `MAX_RECORDS` records per read. An exception from the
transport other than `CardGone`/`EmvError` becomes
`EmvError("<command>: transport failed (<type>)")`.
A bug in this module on some unforeseen answer is logged (exception type only) and
becomes `EmvError("internal error while reading the card")`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from drivers.readers import tlv
from drivers.readers.tlv import Tlv, TlvError
from terminal.kernel.cards import CardData, CardDataError
from terminal.kernel.logsetup import fields, get_logger

log = get_logger("emv")

Transmit = Callable[[bytes], bytes]

PPSE_NAME = b"2PAY.SYS.DDF01"
SELECT_PPSE = bytes((0x00, 0xA4, 0x04, 0x00, len(PPSE_NAME))) + PPSE_NAME + b"\x00"

# (AID prefix, scheme): a card AID matches when it starts with the prefix (partial
# selection, EMV Book B 3.3.2); the longest matching prefix names the scheme. Scheme ids
# and their names: terminal.kernel.cards.SCHEME_NAMES.
SUPPORTED_AIDS: tuple[tuple[str, str], ...] = (
    ("A0000000031010", "visa"),  # Visa credit/debit
    ("A0000000032010", "visa"),  # Visa Electron
    ("A0000000032020", "vpay"),  # V PAY (Visa Europe debit)
    ("A0000000041010", "mastercard"),
    ("A0000000043060", "maestro"),
    ("A0000000050001", "maestro"),  # Maestro UK (formerly Switch)
    ("A0000000050002", "maestro"),  # Maestro UK (Solo)
    ("A00000002501", "amex"),
    ("A0000001523010", "discover"),  # Discover D-PAS, also Diners Club International
    ("A0000001524010", "discover"),  # Discover US common debit
    ("A0000003241010", "discover"),  # Discover Zip
    ("A0000000651010", "jcb"),
    ("A000000333010101", "unionpay"),  # debit
    ("A000000333010102", "unionpay"),  # credit
    ("A000000333010103", "unionpay"),  # quasi-credit
    ("A0000002771010", "interac"),
    ("A0000003591010028001", "girocard"),  # girocard (EAPS RID A000000359)
    ("A00000005945430100", "girocard"),  # girocard electronic cash (RID A000000059)
    ("D27600002547410100", "girocard"),  # girocard (German Banking Industry RID D276000025)
    ("A0000000421010", "cb"),  # CB (Cartes Bancaires), credit/debit
    ("A0000000422010", "cb"),  # CB debit
)
SCHEMES = tuple(sorted({scheme for _, scheme in SUPPORTED_AIDS}))

# SELECT PPSE status words that mean "no payment application here": file not found,
# function not supported, wrong P1/P2, INS or CLA not supported, and 6300 with which
# PC/SC readers (ACR122-class) answer an ISO 7816-4 command to a memory card.
NOT_EMV_STATUS = frozenset({0x6A82, 0x6A81, 0x6A86, 0x6D00, 0x6E00, 0x6300})

# GPO status of a mobile device whose wallet wants the cardholder's confirmation first
# (EMV Book C-2/C-3: "conditions of use not satisfied" on a phone -> Try Again).
SW_SEE_PHONE = 0x6986

MAX_APDUS = 128  # commands sent in one read, GET RESPONSE and resends included
MAX_GET_RESPONSES = 8  # GET RESPONSE after one command
MAX_RESPONSE_BYTES = 16384  # everything the card sends in one read
MAX_RECORDS = 32  # records the AFL may name
MAX_PDOL_DATA = 253  # GPO data is 83 L <PDOL data>, and Lc is at most 255
MAX_LABEL_CHARS = 32

# Terminal Transaction Qualifiers (9F66, EMV Book C-3 / Visa): byte 1 0x20 contactless
# EMV mode (qVSDC) supported - no magnetic stripe mode, no contact chip, no online PIN
# pad, no signature (an unattended charger); byte 2 0x80 online cryptogram required (the
# terminal is online only), CVM not required (the pre-authorisation amount is under the
# contactless CVM limit); byte 3 0x40 consumer device CVM supported (phones and watches).
DEFAULT_TTQ = bytes.fromhex("20804000")
# Terminal type (9F35, EMV Book 4 Annex A1): 2x merchant, x4 unattended, online only.
DEFAULT_TERMINAL_TYPE = 0x24
# Terminal capabilities (9F33): no contact/stripe/manual input, "no CVM required" only,
# no offline data authentication.
TERMINAL_CAPABILITIES = bytes.fromhex("000800")
# Additional terminal capabilities (9F40): goods and services transactions only.
ADDITIONAL_TERMINAL_CAPABILITIES = bytes.fromhex("6000000000")
TRANSACTION_TYPE_PURCHASE = 0x00

# Data elements of format n (numeric BCD): right-aligned in a DOL (EMV Book 3 5.4).
_NUMERIC_TAGS = frozenset({0x9F02, 0x9F03, 0x9F1A, 0x5F2A, 0x9A, 0x9C, 0x9F21, 0x9F35})
_LONG_DIGITS = re.compile(r"\d{6,}")


class CardGone(Exception):
    """The card left the field during the read (raised by the transport)."""


class EmvError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotEmvCard(EmvError):
    """No payment application on this card."""


class UnsupportedCard(EmvError):
    """A payment card, but none of its applications is a scheme the terminal knows."""


class SchemeNotAccepted(UnsupportedCard):
    """A payment card of known schemes (`schemes`, the card's, best first), none of them
    in `TerminalParams.accepted_schemes`. The card data is not read."""

    def __init__(self, schemes: tuple[str, ...]) -> None:
        super().__init__(f"no accepted payment application (card: {', '.join(schemes)})")
        self.schemes = schemes


class SeePhone(EmvError):
    """GET PROCESSING OPTIONS answered 6986: a phone or watch whose wallet wants the
    cardholder to confirm on the device first (EMV Book A/C-3: outcome Try Again, message
    "See phone for instructions"). Tapping again after that reads the card."""


@dataclass(frozen=True)
class TerminalParams:
    country_code: str  # ISO 3166-1 numeric, 3 digits, e.g. "276"
    currency_code: str  # ISO 4217 numeric, 3 digits, e.g. "978"
    amount_minor: int  # the pre-authorisation amount in minor units (9F02)
    ttq: bytes = DEFAULT_TTQ  # 9F66, 4 bytes
    terminal_type: int = DEFAULT_TERMINAL_TYPE  # 9F35, two decimal digits as BCD
    # scheme ids the terminal takes ([payment] accepted_schemes); None = every known one
    accepted_schemes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("country_code", "currency_code"):
            value = getattr(self, name)
            if not (isinstance(value, str) and len(value) == 3 and value.isascii()
                    and value.isdigit()):
                raise ValueError(f"{name} {value!r}: expected 3 digits (ISO numeric code)")
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int) \
                or not 0 <= self.amount_minor < 10**12:
            raise ValueError(f"amount_minor {self.amount_minor!r}: expected an integer from 0 "
                             "to 999999999999 (12 digits)")
        if len(self.ttq) != 4:
            raise ValueError(f"ttq: expected 4 bytes, got {len(self.ttq)}")
        if not (0 <= self.terminal_type <= 0x99 and (self.terminal_type & 0x0F) <= 9):
            raise ValueError(f"terminal_type {self.terminal_type:#x}: expected two BCD digits")


@dataclass(frozen=True)
class EmvRead:
    card: CardData = field(repr=False)
    aid: str  # hex, uppercase
    scheme: str  # a scheme id of SUPPORTED_AIDS: visa, vpay, mastercard, girocard, ...
    label: str  # application label (50) or preferred name, "" if none

    def __repr__(self) -> str:
        return f"EmvRead(card={self.card!r}, aid={self.aid!r}, scheme={self.scheme!r})"


def read_emv(
    transmit: Transmit,
    terminal: TerminalParams,
    today: date,
    *,
    unpredictable: Callable[[int], bytes] = os.urandom,
) -> EmvRead:
    """Read a contactless payment card; see the module docstring for what can be raised.

    `today` gives 9A (and 9F21 when it is a datetime); `unpredictable(n)` gives 9F37."""
    try:
        return _read(_Session(transmit), terminal, today, unpredictable)
    except (EmvError, CardGone):
        raise
    except Exception as exc:  # a bug on an unforeseen answer: the message may hold data
        log.error("emv read failed: internal error", extra=fields(kind=type(exc).__name__))
        raise EmvError("internal error while reading the card") from None


# --- transport: status words, GET RESPONSE, bounds --------------------------------------

class _Session:
    """Sends commands for one read and enforces the bounds."""

    def __init__(self, transmit: Transmit) -> None:
        self._transmit = transmit
        self.apdus = 0
        self.received_bytes = 0

    def _send(self, what: str, apdu: bytes) -> tuple[bytes, int]:
        if self.apdus >= MAX_APDUS:
            raise EmvError(f"{what}: more than {MAX_APDUS} commands in one read")
        self.apdus += 1
        try:
            answer = self._transmit(apdu)
        except (CardGone, EmvError):  # the transport's own reason ("card read took too long")
            raise
        except Exception as exc:
            raise EmvError(f"{what}: transport failed ({type(exc).__name__})") from None
        if isinstance(answer, list):  # pyscard's transmit gives a list of ints
            try:
                answer = bytes(answer)
            except (TypeError, ValueError):
                raise EmvError(f"{what}: transport answered a list that is not bytes") from None
        if not isinstance(answer, bytes | bytearray | memoryview):
            raise EmvError(f"{what}: transport answered {type(answer).__name__}, not bytes")
        answer = bytes(answer)
        if len(answer) < 2:
            raise EmvError(f"{what}: answer of {len(answer)} bytes, status word missing")
        self.received_bytes += len(answer)
        if self.received_bytes > MAX_RESPONSE_BYTES:
            raise EmvError(f"{what}: card sent more than {MAX_RESPONSE_BYTES} bytes")
        return answer[:-2], int.from_bytes(answer[-2:], "big")

    def _send_le(self, what: str, apdu: bytes) -> tuple[bytes, int]:
        """One command; on 6CXX sent once more with Le = XX (apdu ends with Le)."""
        data, sw = self._send(what, apdu)
        if sw >> 8 == 0x6C:
            data, sw = self._send(what, apdu[:-1] + bytes((sw & 0xFF,)))
        return data, sw

    def exchange(self, what: str, apdu: bytes) -> tuple[bytes, int]:
        """The whole answer (GET RESPONSE chained while 61XX) and the final status word."""
        data, sw = self._send_le(what, apdu)
        chunks = [data]
        for _ in range(MAX_GET_RESPONSES):
            if sw >> 8 != 0x61:
                break
            data, sw = self._send_le(what, bytes((0x00, 0xC0, 0x00, 0x00, sw & 0xFF)))
            chunks.append(data)
        else:
            if sw >> 8 == 0x61:
                raise EmvError(f"{what}: still more data after {MAX_GET_RESPONSES} GET RESPONSE")
        return b"".join(chunks), sw

    def command(self, what: str, apdu: bytes) -> bytes:
        data, sw = self.exchange(what, apdu)
        if sw != 0x9000:
            raise EmvError(f"{what}: status {sw:04X}")
        return data


# --- the read, step by step --------------------------------------------------------------

@dataclass(frozen=True)
class _Candidate:
    aid: bytes
    scheme: str
    priority: int  # 87 low nibble; 0 = none
    label: str
    order: int  # position in the PPSE answer

    @property
    def rank(self) -> tuple[int, int]:
        return (self.priority or 16, self.order)


def _read(session: _Session, terminal: TerminalParams, today: date,
          unpredictable: Callable[[int], bytes]) -> EmvRead:
    candidates = _select_ppse(session, terminal.accepted_schemes)
    chosen, fci = _select_application(session, candidates)
    label = _fci_label(fci) or chosen.label
    pdol = tlv.find(fci, 0x9F38)
    objects = _get_processing_options(session, pdol.value if pdol else b"", terminal, today,
                                      unpredictable)
    card = _card_data(objects)
    return EmvRead(card=card, aid=chosen.aid.hex().upper(), scheme=chosen.scheme, label=label)


def _parse(what: str, data: bytes) -> tuple[Tlv, ...]:
    try:
        return tlv.parse(data)
    except TlvError as exc:
        raise EmvError(f"malformed TLV in {what}: {exc.reason} (byte {exc.offset})") from None


def _child(obj: Tlv | None, tag: int) -> Tlv | None:
    if obj is None:
        return None
    return next((child for child in obj.children if child.tag == tag), None)


def _fci(what: str, data: bytes) -> Tlv:
    objects = _parse(f"{what} answer", data)
    if not objects or objects[0].tag != 0x6F:
        raise EmvError(f"{what}: answer is not an FCI template (6F)")
    return objects[0]


def _text(value: bytes) -> str:
    """Printable ASCII of a label (ans), cut; a label holding a digit run is dropped, so a
    card cannot smuggle its number into logs through the label."""
    text = "".join(chr(b) for b in value if 0x20 <= b < 0x7F).strip()[:MAX_LABEL_CHARS]
    return "" if _LONG_DIGITS.search(text) else text


def scheme_of(aid: bytes) -> str | None:
    """The scheme of a card AID (longest supported prefix), None when unsupported."""
    aid_hex = aid.hex().upper()
    best: tuple[int, str] | None = None
    for prefix, scheme in SUPPORTED_AIDS:
        if aid_hex.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), scheme)
    return best[1] if best else None


def _select_ppse(session: _Session,
                 accepted: tuple[str, ...] | None = None) -> list[_Candidate]:
    """Step 1-2: the known applications the card lists whose scheme is accepted, best
    first; SchemeNotAccepted when it lists known ones but none accepted."""
    data, sw = session.exchange("SELECT PPSE", SELECT_PPSE)
    if sw in NOT_EMV_STATUS:
        raise NotEmvCard(f"no payment application (SELECT PPSE: status {sw:04X})")
    if sw != 0x9000:
        raise EmvError(f"SELECT PPSE: status {sw:04X}")
    directory = _child(_child(_fci("SELECT PPSE", data), 0xA5), 0xBF0C)
    candidates = []
    for order, entry in enumerate(c for c in (directory.children if directory else ())
                                  if c.tag == 0x61):
        aid = _child(entry, 0x4F)
        if aid is None or not 5 <= len(aid.value) <= 16:
            continue
        scheme = scheme_of(aid.value)
        if scheme is None:
            continue
        priority = _child(entry, 0x87)
        label = _child(entry, 0x50)
        candidates.append(_Candidate(
            aid=aid.value, scheme=scheme,
            priority=priority.value[0] & 0x0F if priority and priority.value else 0,
            label=_text(label.value) if label else "", order=order))
    if not candidates:
        raise UnsupportedCard("no supported payment application")
    candidates.sort(key=lambda c: c.rank)
    if accepted is not None:
        taken = [c for c in candidates if c.scheme in accepted]
        if not taken:
            raise SchemeNotAccepted(tuple(dict.fromkeys(c.scheme for c in candidates)))
        candidates = taken
    return candidates


def _select_application(session: _Session,
                        candidates: list[_Candidate]) -> tuple[_Candidate, tuple[Tlv, ...]]:
    """Step 3: SELECT the best candidate; one the card refuses (blocked, 6283 / 6A82) is
    dropped and the next is tried (EMV Book B 3.4)."""
    error: EmvError = UnsupportedCard("no supported payment application")
    for candidate in candidates:
        apdu = bytes((0x00, 0xA4, 0x04, 0x00, len(candidate.aid))) + candidate.aid + b"\x00"
        data, sw = session.exchange("SELECT AID", apdu)
        if sw != 0x9000:
            error = EmvError(f"SELECT AID: status {sw:04X}")
            continue
        return candidate, (_fci("SELECT AID", data),)
    raise error


def _fci_label(fci: tuple[Tlv, ...]) -> str:
    for tag in (0x50, 0x9F12):
        found = tlv.find(fci, tag)
        if found is not None and (text := _text(found.value)):
            return text
    return ""


def _bcd(digits: str, length: int) -> bytes:
    """Numeric (n) value of `length` bytes, right-aligned: left-padded or left-cut."""
    digits = digits.rjust(length * 2, "0")[-length * 2:]
    return bytes.fromhex(digits)


def terminal_values(terminal: TerminalParams, today: date, unpredictable: bytes
                    ) -> dict[int, bytes]:
    """The data the terminal can put in a PDOL (natural lengths)."""
    values = {
        0x9F66: terminal.ttq,
        0x9F02: _bcd(str(terminal.amount_minor), 6),
        0x9F03: bytes(6),
        0x9F1A: _bcd(terminal.country_code, 2),
        0x5F2A: _bcd(terminal.currency_code, 2),
        0x95: bytes(5),
        0x9A: _bcd(today.strftime("%y%m%d"), 3),
        0x9C: bytes((TRANSACTION_TYPE_PURCHASE,)),
        0x9F37: unpredictable,
        0x9F35: bytes((terminal.terminal_type,)),
        0x9F33: TERMINAL_CAPABILITIES,
        0x9F40: ADDITIONAL_TERMINAL_CAPABILITIES,
    }
    if isinstance(today, datetime):
        values[0x9F21] = _bcd(today.strftime("%H%M%S"), 3)
    return values


def pdol_data(pdol: bytes, values: dict[int, bytes]) -> bytes:
    """The PDOL's data: numeric values right-aligned to the asked length (EMV Book 3 5.4),
    others cut or zero-padded on the right, unknown tags zeros (tlv.build_dol)."""
    try:
        dol = tlv.parse_dol(pdol)
    except TlvError as exc:
        raise EmvError(f"malformed TLV in PDOL: {exc.reason} (byte {exc.offset})") from None
    total = sum(length for _, length in dol)
    if total > MAX_PDOL_DATA:
        raise EmvError(f"PDOL asks for {total} bytes, at most {MAX_PDOL_DATA}")
    fitted = {}
    for tag, length in dol:
        if tag in values:
            value = values[tag]
            if tag in _NUMERIC_TAGS and len(value) != length:
                value = _bcd(value.hex(), length)
            fitted[tag] = value
    return tlv.build_dol(dol, fitted)


def _get_processing_options(session: _Session, pdol: bytes, terminal: TerminalParams,
                            today: date, unpredictable: Callable[[int], bytes]) -> list[Tlv]:
    """Steps 4-5: GPO, then every record the AFL names; the data objects of both."""
    data = pdol_data(pdol, terminal_values(terminal, today, bytes(unpredictable(4))[:4]))
    body = tlv.encode(0x83, data)
    apdu = bytes((0x80, 0xA8, 0x00, 0x00, len(body))) + body + b"\x00"
    what = "GET PROCESSING OPTIONS"
    data, sw = session.exchange(what, apdu)
    if sw == SW_SEE_PHONE:
        raise SeePhone(f"{what}: status {sw:04X} (see phone for instructions)")
    if sw != 0x9000:
        raise EmvError(f"{what}: status {sw:04X}")
    answer = _parse(f"{what} answer", data)
    objects: list[Tlv] = []
    if answer and answer[0].tag == 0x80:
        value = answer[0].value
        if len(value) < 2 or (len(value) - 2) % 4:
            raise EmvError(f"{what}: format 1 answer of {len(value)} bytes is not AIP + AFL")
        afl = value[2:]
    elif answer and answer[0].tag == 0x77:
        if _child(answer[0], 0x82) is None:
            raise EmvError(f"{what}: application interchange profile (82) missing")
        afl_obj = _child(answer[0], 0x94)
        afl = afl_obj.value if afl_obj else b""
        objects.extend(answer[0].children)
    else:
        raise EmvError(f"{what}: answer is neither format 1 (80) nor format 2 (77)")
    for sfi, record in _afl_records(afl):
        objects.extend(_read_record(session, sfi, record))
    return objects


def _afl_records(afl: bytes) -> list[tuple[int, int]]:
    """(SFI, record) for every record the AFL names; bad entries per EMV Book 3 10.2."""
    if len(afl) % 4:
        raise EmvError(f"bad AFL: {len(afl)} bytes is not a multiple of 4")
    records: list[tuple[int, int]] = []
    for index in range(0, len(afl), 4):
        sfi_byte, first, last, offline_auth = afl[index:index + 4]
        sfi = sfi_byte >> 3
        entry = index // 4 + 1
        if not 1 <= sfi <= 30:
            raise EmvError(f"bad AFL entry {entry}: SFI {sfi} (allowed 1 to 30)")
        if first < 1 or last < first:
            raise EmvError(f"bad AFL entry {entry}: records {first} to {last}")
        if offline_auth > last - first + 1:
            raise EmvError(f"bad AFL entry {entry}: {offline_auth} records for offline "
                           f"authentication, {last - first + 1} named")
        if len(records) + last - first + 1 > MAX_RECORDS:
            raise EmvError(f"bad AFL: more than {MAX_RECORDS} records")
        records.extend((sfi, record) for record in range(first, last + 1))
    return records


def _read_record(session: _Session, sfi: int, record: int) -> tuple[Tlv, ...]:
    what = f"READ RECORD (SFI {sfi}, record {record})"
    data = session.command(what, bytes((0x00, 0xB2, record, (sfi << 3) | 4, 0x00)))
    if sfi > 10:  # records of SFI 11-30 are proprietary (EMV Book 3 5.3.2)
        return ()
    objects = _parse(what, data)
    if len(objects) != 1 or objects[0].tag != 0x70:
        raise EmvError(f"{what}: not a record template (70)")
    return objects[0].children


# --- step 6: card data -------------------------------------------------------------------

def _track2(value: bytes, what: str) -> tuple[str, str]:
    """PAN and YYMM from track 2 equivalent data: PAN, D, YYMM, service code, discretionary
    data, F padding."""
    nibbles = value.hex().upper().rstrip("F")
    separator = nibbles.find("D")
    if separator < 0:
        raise EmvError(f"{what}: field separator D missing")
    pan, expiry = nibbles[:separator], nibbles[separator + 1:separator + 5]
    if not pan.isdigit():
        raise EmvError(f"{what}: card number is not decimal")
    if len(expiry) != 4 or not expiry.isdigit():
        raise EmvError(f"{what}: expiry date missing or not decimal")
    return pan, expiry


def _card_data(objects: list[Tlv]) -> CardData:
    track2 = tlv.find(objects, 0x57)
    track2_what = "track 2 equivalent (57)"
    if track2 is None:
        track2, track2_what = tlv.find(objects, 0x9F6B), "track 2 data (9F6B)"
    if track2 is not None:
        pan, expiry = _track2(track2.value, track2_what)
    else:
        pan_obj = tlv.find(objects, 0x5A)
        if pan_obj is None:
            raise EmvError("card data missing: no track 2 (57, 9F6B) and no PAN (5A)")
        pan = pan_obj.value.hex().upper().rstrip("F")
        if not pan.isdigit():
            raise EmvError("PAN (5A): not decimal")
        expiry_obj = tlv.find(objects, 0x5F24)
        if expiry_obj is None:
            raise EmvError("card data missing: expiry date (5F24)")
        expiry_date = expiry_obj.value.hex()
        if len(expiry_date) != 6 or not expiry_date.isdigit():
            raise EmvError("expiry date (5F24): expected YYMMDD")
        expiry = expiry_date[:4]
    sequence = None
    psn = tlv.find(objects, 0x5F34)
    if psn is not None:
        sequence = psn.value.hex()
        if len(sequence) != 2 or not sequence.isdigit():
            raise EmvError("PAN sequence number (5F34): expected 1 byte, 2 digits")
    try:
        return CardData(pan, expiry, sequence)
    except CardDataError as exc:  # its message never holds the number
        raise EmvError(f"card data unusable: {exc}") from None
