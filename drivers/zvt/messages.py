"""The ZVT messages this driver speaks, built and parsed on top of `apdu`: the ECR's
commands (Registration 06 00, Pre-authorisation 06 22, Partial reversal 06 23, Book
total 06 24, Reversal 06 30, Repeat receipt 06 20, End-of-day 06 50, Status enquiry
05 01, Abort 06 B0, Read card 06 C0) and the terminal's messages (Status information
04 0F, Intermediate status 04 FF, Print line 06 D1, Print text block 06 D3, Completion
06 0F, Abort 06 1E), and the end-of-day individual totals of BMP 60.

References read (no code copied): ZVT-Protokoll PA00P015 chapters 2 (ECR commands; 2.21
Read Card 06 C0 <timeout>: the card data in a Status information, 6C when no card
came), 3 (PT commands), "Summary of utilised BMPs" (BMP 60 individual totals),
"TLV-container" (tags 1F07 receipt type, 25 print texts, 07 text line);
Portalum/Portalum.Zvt unit tests PrintLineTest.cs and PrintTextBlockTest.cs;
bezahl-online/zvt command/*.go; the Rust `zvt` crate's ReadCard packet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from drivers.zvt import tlv
from drivers.zvt.apdu import (
    Apdu,
    ApduError,
    Field,
    Fields,
    amount_field,
    bcd_field,
    encode_fields,
    text_field,
)
from drivers.zvt.bcd import BcdError, decode_bcd, decode_masked_pan, encode_bcd, encode_masked_pan

# --- the ECR's commands -------------------------------------------------------------------

REGISTRATION = (0x06, 0x00)
PREAUTH = (0x06, 0x22)
PARTIAL_REVERSAL = (0x06, 0x23)
BOOK_TOTAL = (0x06, 0x24)
REVERSAL = (0x06, 0x30)
REPEAT_RECEIPT = (0x06, 0x20)
END_OF_DAY = (0x06, 0x50)
STATUS_ENQUIRY = (0x05, 0x01)
ABORT_REQUEST = (0x06, 0xB0)
READ_CARD = (0x06, 0xC0)
# --- the terminal's messages
STATUS_INFO = (0x04, 0x0F)
INTERMEDIATE = (0x04, 0xFF)
PRINT_LINE = (0x06, 0xD1)
PRINT_BLOCK = (0x06, 0xD3)
COMPLETION = (0x06, 0x0F)
ABORT = (0x06, 0x1E)

COMMAND_NAMES = {
    REGISTRATION: "registration", PREAUTH: "pre-authorisation",
    PARTIAL_REVERSAL: "partial reversal", BOOK_TOTAL: "book total", REVERSAL: "reversal",
    REPEAT_RECEIPT: "repeat receipt", END_OF_DAY: "end-of-day",
    STATUS_ENQUIRY: "status enquiry", ABORT_REQUEST: "abort", READ_CARD: "read card",
}


def _password(password: int) -> bytes:
    try:
        return encode_bcd(password, 3)
    except BcdError:
        raise ApduError(f"password: expected 6 digits, got {password!r}") from None


def registration(password: int, config_byte: int, currency_numeric: int | None = None,
                 service_byte: int | None = None) -> Apdu:
    """06 00: <password> <config-byte> [<CC> [03 <service-byte>]]."""
    data = _password(password) + bytes([config_byte])
    if currency_numeric is not None:
        data += encode_bcd(currency_numeric, 2)
        if service_byte is not None:
            data += bytes([0x03, service_byte])
    return Apdu(*REGISTRATION, data)


def preauth(amount_minor: int, currency_numeric: int | None = None) -> Apdu:
    """06 22: 04 <amount> [49 <CC>]."""
    fields = [amount_field(amount_minor)]
    if currency_numeric is not None:
        fields.append(bcd_field(0x49, currency_numeric))
    return Apdu(*PREAUTH, encode_fields(fields))


def book_total(receipt_number: int, amount_minor: int, trace_number: int | None = None) -> Apdu:
    """06 24: 87 <receipt-no> 04 <amount> [0B <trace>]: book `amount` of the reservation,
    the terminal releases the rest."""
    fields = [bcd_field(0x87, receipt_number), amount_field(amount_minor)]
    if trace_number is not None:
        fields.append(bcd_field(0x0B, trace_number))
    return Apdu(*BOOK_TOTAL, encode_fields(fields))


def partial_reversal(receipt_number: int, amount_minor: int) -> Apdu:
    """06 23: 87 <receipt-no> 04 <amount>: release `amount` of the reservation, which
    stays open with the rest."""
    return Apdu(*PARTIAL_REVERSAL, encode_fields(
        [bcd_field(0x87, receipt_number), amount_field(amount_minor)]))


def reversal(password: int, receipt_number: int) -> Apdu:
    """06 30: <password> 87 <receipt-no>."""
    return Apdu(*REVERSAL, _password(password) + encode_fields([bcd_field(0x87, receipt_number)]))


def password_only(command: tuple[int, int], password: int) -> Apdu:
    """05 01 status enquiry, 06 20 repeat receipt, 06 50 end-of-day: <password>."""
    return Apdu(*command, _password(password))


def read_card(timeout_s: int) -> Apdu:
    """06 C0: <timeout, 1 byte binary seconds>: wait up to that long for a card and
    report its data (card type, masked number, expiry, sequence number) in a Status
    information; no card in time ends with Abort 06 1E 6C."""
    if not 0 < timeout_s <= 255:
        raise ApduError(f"read card: timeout {timeout_s!r} s is not 1 to 255 s")
    return Apdu(*READ_CARD, bytes([timeout_s]))


def parse_read_card(data: bytes) -> int:
    """The timeout (s) of a 06 C0 command."""
    if not data:
        raise ApduError("06 C0: no timeout byte")
    return data[0]


def abort_request() -> Apdu:
    return Apdu(*ABORT_REQUEST)


def parse_password(data: bytes) -> int:
    if len(data) < 3:
        raise ApduError(f"password: 3 BCD bytes expected, got {len(data)}")
    try:
        return decode_bcd(data[:3])
    except BcdError as exc:
        raise ApduError(f"password: {exc}") from None


# --- end-of-day individual totals (BMP 60) -----------------------------------------------

TOTAL_GROUPS = ("girocard", "JCB", "Eurocard", "Amex", "Visa", "Diners", "other")
_GROUP_OF_CARD_TYPE = {0x05: "girocard", 0x0E: "JCB", 0x06: "Eurocard", 0x08: "Amex",
                       0x0A: "Visa", 0x0C: "Diners"}


def total_group(card_type: int | None) -> str:
    return _GROUP_OF_CARD_TYPE.get(card_type or -1, "other")


@dataclass(frozen=True)
class Totals:
    """BMP 60: the receipt numbers of the batch and, per card group, the count and the
    turnover in minor units."""

    receipt_from: int = 0
    receipt_to: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTAL_GROUPS, 0))
    amounts_minor: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(TOTAL_GROUPS, 0))

    def encode(self) -> bytes:
        out = encode_bcd(self.receipt_from, 2) + encode_bcd(self.receipt_to, 2)
        for group in TOTAL_GROUPS:
            out += bytes([min(self.counts[group], 255)]) + encode_bcd(
                self.amounts_minor[group], 6)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Totals:
        if len(data) != 4 + 7 * len(TOTAL_GROUPS):
            raise ApduError(f"BMP 60: {len(data)} bytes, individual totals take "
                            f"{4 + 7 * len(TOTAL_GROUPS)}")
        try:
            counts, amounts = {}, {}
            for i, group in enumerate(TOTAL_GROUPS):
                at = 4 + 7 * i
                counts[group] = data[at]
                amounts[group] = decode_bcd(data[at + 1: at + 7])
            return cls(decode_bcd(data[0:2]), decode_bcd(data[2:4]), counts, amounts)
        except BcdError as exc:
            raise ApduError(f"BMP 60: {exc}") from None

    @property
    def total_count(self) -> int:
        return sum(self.counts.values())

    @property
    def total_minor(self) -> int:
        return sum(self.amounts_minor.values())


# --- status information (04 0F) ----------------------------------------------------------


@dataclass(frozen=True)
class StatusInfo:
    """The fields of a Status information the driver uses. `masked_pan` is as the
    terminal sent it, masked (an unmasked number is masked on reading)."""

    result_code: int = 0
    amount_minor: int | None = None
    currency_numeric: int | None = None
    trace_number: int | None = None
    original_trace: int | None = None
    receipt_number: int | None = None
    turnover_number: int | None = None
    time: str | None = None          # HHMMSS
    date: str | None = None          # MMDD
    expiry: str | None = None        # YYMM
    card_sequence: int | None = None
    payment_type: int | None = None
    masked_pan: str | None = None
    terminal_id: int | None = None
    vu_number: str | None = None
    aid: str | None = None
    additional_text: str | None = None
    card_type: int | None = None
    card_name: str | None = None
    card_type_id: int | None = None
    result_code_as: int | None = None
    aid_parameter: str | None = None
    totals: Totals | None = None
    tlv: tuple[tlv.Tlv, ...] = ()

    def encode(self) -> bytes:
        fields = [Field(0x27, bytes([self.result_code]))]
        for bmp, value in ((0x04, self.amount_minor), (0x0B, self.trace_number),
                           (0x37, self.original_trace), (0x29, self.terminal_id),
                           (0x87, self.receipt_number), (0x88, self.turnover_number),
                           (0x17, self.card_sequence), (0x49, self.currency_numeric)):
            if value is not None:
                fields.append(bcd_field(bmp, value))
        for bmp, text in ((0x0C, self.time), (0x0D, self.date), (0x0E, self.expiry)):
            if text is not None:
                fields.append(Field(bmp, bytes.fromhex(text)))
        for bmp, byte in ((0x19, self.payment_type), (0x8A, self.card_type),
                          (0x8C, self.card_type_id), (0xA0, self.result_code_as)):
            if byte is not None:
                fields.append(Field(bmp, bytes([byte])))
        if self.masked_pan is not None:
            fields.append(Field(0x22, encode_masked_pan(self.masked_pan)))
        if self.vu_number is not None:
            fields.append(Field(0x2A, self.vu_number.ljust(15)[:15].encode("ascii")))
        if self.aid is not None:
            fields.append(Field(0x3B, self.aid.encode("ascii").ljust(8, b"\0")[:8]))
        if self.additional_text is not None:
            fields.append(text_field(0x3C, self.additional_text))
        if self.card_name is not None:
            fields.append(Field(0x8B, self.card_name.encode("cp437") + b"\0"))
        if self.aid_parameter is not None:
            fields.append(Field(0xBA, bytes.fromhex(self.aid_parameter)))
        if self.totals is not None:
            fields.append(Field(0x60, self.totals.encode()))
        if self.tlv:
            fields.append(Field(0x06, tlv.encode(self.tlv)))
        return encode_fields(fields)


def _hex_digits(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.hex()
    if not text.isdigit():
        raise ApduError(f"date/time field {value.hex(' ')} is not BCD")
    return text


def parse_status_info(data: bytes) -> StatusInfo:
    """04 0F's data -> StatusInfo; ApduError naming the field that is wrong."""
    f = Fields.parse(data)
    pan = f.raw(0x22)
    try:
        masked = decode_masked_pan(pan) if pan is not None else None
    except BcdError as exc:
        raise ApduError(f"BMP 22: {exc}") from None
    totals = f.raw(0x60)
    aid_parameter = f.raw(0xBA)
    return StatusInfo(
        result_code=f.byte(0x27) or 0,
        amount_minor=f.bcd(0x04),
        currency_numeric=f.bcd(0x49),
        trace_number=f.bcd(0x0B),
        original_trace=f.bcd(0x37),
        receipt_number=f.bcd(0x87),
        turnover_number=f.bcd(0x88),
        time=_hex_digits(f.raw(0x0C)),
        date=_hex_digits(f.raw(0x0D)),
        expiry=_hex_digits(f.raw(0x0E)),
        card_sequence=f.bcd(0x17),
        payment_type=f.byte(0x19),
        masked_pan=masked,
        terminal_id=f.bcd(0x29),
        vu_number=f.text(0x2A),
        aid=f.text(0x3B),
        additional_text=f.text(0x3C),
        card_type=f.byte(0x8A),
        card_name=f.text(0x8B),
        card_type_id=f.byte(0x8C),
        result_code_as=f.byte(0xA0),
        aid_parameter=aid_parameter.hex().upper() if aid_parameter is not None else None,
        totals=Totals.decode(totals) if totals is not None else None,
        tlv=f.tlv(),
    )


def with_result(info: StatusInfo, code: int) -> StatusInfo:
    return replace(info, result_code=code)


# --- intermediate status, print line, print text block, completion, abort ----------------


def intermediate(code: int, timeout_s: int | None = None) -> Apdu:
    """04 FF: <status> [<timeout s>]."""
    return Apdu(*INTERMEDIATE, bytes([code]) + (bytes([timeout_s]) if timeout_s else b""))


def parse_intermediate(data: bytes) -> tuple[int, int | None]:
    """(status code, the seconds the ECR is to wait for the next message or None)."""
    if not data:
        raise ApduError("04 FF: no intermediate status byte")
    has_timeout = len(data) == 2 or (len(data) > 2 and data[1] != 0x06)
    return data[0], (data[1] or None) if has_timeout else None


LAST_LINE = 0x81


def print_line(text: str, attribute: int = 0x00) -> Apdu:
    """06 D1: <attribute> <text>; attribute 81 marks the receipt's end."""
    return Apdu(*PRINT_LINE, bytes([attribute]) + text.encode("cp437", errors="replace"))


def parse_print_line(data: bytes) -> tuple[int, str]:
    """(attribute, text) of 06 D1; a TLV container after the text (06 04 1F 07 01 01,
    the receipt type) is cut off."""
    if not data:
        raise ApduError("06 D1: no attribute byte")
    text = data[1:]
    at = text.rfind(b"\x06")
    if at >= 0 and at + 2 <= len(text) and at + 2 + text[at + 1] == len(text):
        text = text[:at]
    return data[0], text.decode("cp437").rstrip("\x00")


RECEIPT_TYPES = {1: "merchant", 2: "customer", 3: "administration"}


def print_block(lines: list[str], receipt_type: int) -> Apdu:
    """06 D3: 06 <TLV: 1F07 <receipt type> 25 <07 <line>...>>."""
    text_lines = tuple(tlv.Tlv("07", line.encode("cp437", errors="replace"))
                       for line in lines)
    container = (tlv.Tlv("1F07", bytes([receipt_type])), tlv.Tlv("25", children=text_lines))
    return Apdu(*PRINT_BLOCK, encode_fields([Field(0x06, tlv.encode(container))]))


def parse_print_block(data: bytes) -> tuple[str | None, list[str]]:
    """(receipt type name, text lines) of 06 D3."""
    objects = Fields.parse(data).tlv()
    kind = tlv.find(objects, "1F07")
    lines = [line.value.decode("cp437").rstrip("\x00") for line in tlv.find_all(objects, "07")]
    receipt_type = RECEIPT_TYPES.get(kind.value[0]) if kind and kind.value else None
    return receipt_type, lines


def completion(status_byte: int | None = None, terminal_id: int | None = None) -> Apdu:
    fields = []
    if status_byte is not None:
        fields.append(Field(0x19, bytes([status_byte])))
    if terminal_id is not None:
        fields.append(bcd_field(0x29, terminal_id))
    return Apdu(*COMPLETION, encode_fields(fields))


def abort(code: int) -> Apdu:
    """06 1E: <result code>."""
    return Apdu(*ABORT, bytes([code]))


def parse_abort(data: bytes) -> int:
    return data[0] if data else 0xFF
