"""ZVT APDU framing and BMP fields.

An APDU is CLASS, INSTR, a length byte and the data; a data block of 255 bytes or more
has the length byte FF and then the length in 2 bytes little-endian (04 0F FF 00 01 =
256 bytes). The data of most commands is a sequence of BMP fields: one byte naming the
field, then a fixed number of bytes, an LLVAR/LLLVAR (`F1 F8` = 18 bytes follow), or
for BMP 06 a TLV container with a BER length. Amounts are whole minor units (cents),
6-byte BCD; never a float.

References read (no code copied): ZVT-Protokoll PA00P015 chapters "APDU", "Summary of
utilised BMPs"; Portalum/Portalum.Zvt src/Portalum.Zvt.UnitTest/ApduHelperTest.cs and
StatusInformationParserTest.cs (the byte vectors in tests/unit/test_zvt_apdu.py);
bezahl-online/zvt src/apdu/bmp/map.go.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from drivers.zvt import tlv
from drivers.zvt.bcd import (
    BcdError,
    decode_bcd,
    decode_llvar_length,
    encode_bcd,
    encode_llvar_length,
)


class ApduError(ValueError):
    """Bytes that are not a well-formed ZVT APDU or BMP sequence; the text names what."""


@dataclass(frozen=True)
class Apdu:
    """One APDU: `cls` and `instr` (the control field) and its data."""

    cls: int
    instr: int
    data: bytes = b""

    @property
    def command(self) -> tuple[int, int]:
        return self.cls, self.instr

    def encode(self) -> bytes:
        size = len(self.data)
        if size > 0xFFFF:
            raise ApduError(f"APDU {self.cls:02X} {self.instr:02X}: {size} data bytes, at "
                            "most 65535")
        length = bytes([size]) if size < 0xFF else b"\xff" + size.to_bytes(2, "little")
        return bytes([self.cls, self.instr]) + length + self.data

    def __str__(self) -> str:
        return f"{self.cls:02X} {self.instr:02X} ({len(self.data)} bytes)"


ACK = Apdu(0x80, 0x00)


def nak(code: int = 0x00) -> Apdu:
    """A negative acknowledgement 84 xx (84 9C: repeat, the receiver is busy)."""
    return Apdu(0x84, code)


def is_ack(apdu: Apdu) -> bool:
    return apdu.command == (0x80, 0x00)


def is_nak(apdu: Apdu) -> bool:
    return apdu.cls == 0x84


def split_frame(buffer: bytes) -> tuple[Apdu, int] | None:
    """The first whole APDU in `buffer` and how many bytes it took; None until all of it
    has arrived."""
    if len(buffer) < 3:
        return None
    size, start = buffer[2], 3
    if size == 0xFF:
        if len(buffer) < 5:
            return None
        size, start = int.from_bytes(buffer[3:5], "little"), 5
    if len(buffer) < start + size:
        return None
    return Apdu(buffer[0], buffer[1], bytes(buffer[start:start + size])), start + size


def decode_apdu(data: bytes) -> Apdu:
    """Exactly one APDU; ApduError when cut short or followed by more bytes."""
    found = split_frame(data)
    if found is None:
        raise ApduError(f"APDU cut short: {data[:8].hex(' ')}... ({len(data)} bytes)")
    apdu, used = found
    if used != len(data):
        raise ApduError(f"APDU {apdu}: {len(data) - used} bytes after its end")
    return apdu


class Kind(Enum):
    FIXED = "fixed"
    LLVAR = "llvar"
    LLLVAR = "lllvar"
    TLV = "tlv"


# BMP -> (kind, fixed size); the BMPs of the spec's summary this driver meets
BMPS: dict[int, tuple[Kind, int]] = {
    0x01: (Kind.FIXED, 1),    # timeout
    0x02: (Kind.FIXED, 1),    # max. status infos
    0x03: (Kind.FIXED, 1),    # service byte
    0x04: (Kind.FIXED, 6),    # amount, BCD minor units
    0x05: (Kind.FIXED, 1),    # pump number
    0x06: (Kind.TLV, 0),      # TLV container
    0x0B: (Kind.FIXED, 3),    # trace number, BCD
    0x0C: (Kind.FIXED, 3),    # time HHMMSS, BCD
    0x0D: (Kind.FIXED, 2),    # date MMDD, BCD
    0x0E: (Kind.FIXED, 2),    # expiry date YYMM, BCD
    0x17: (Kind.FIXED, 2),    # card sequence number, BCD
    0x19: (Kind.FIXED, 1),    # payment type / status byte
    0x22: (Kind.LLVAR, 0),    # PAN / EF_ID, BCD, masked digits E
    0x23: (Kind.LLVAR, 0),    # track 2
    0x24: (Kind.LLLVAR, 0),   # track 3
    0x27: (Kind.FIXED, 1),    # result code
    0x29: (Kind.FIXED, 4),    # terminal id, BCD
    0x2A: (Kind.FIXED, 15),   # VU number, ASCII
    0x2D: (Kind.LLVAR, 0),    # track 1
    0x2E: (Kind.LLLVAR, 0),   # sync chip data
    0x37: (Kind.FIXED, 3),    # trace number of the original transaction
    0x3A: (Kind.FIXED, 2),    # CVV/CVC
    0x3B: (Kind.FIXED, 8),    # AID (authorisation attribute)
    0x3C: (Kind.LLLVAR, 0),   # additional data / additional text
    0x3D: (Kind.FIXED, 3),    # password
    0x49: (Kind.FIXED, 2),    # currency code, BCD (09 78 = EUR)
    0x60: (Kind.LLLVAR, 0),   # individual totals (end-of-day)
    0x87: (Kind.FIXED, 2),    # receipt number, BCD
    0x88: (Kind.FIXED, 3),    # turnover record number, BCD
    0x8A: (Kind.FIXED, 1),    # card type (ZVT card-type id)
    0x8B: (Kind.LLVAR, 0),    # card name
    0x8C: (Kind.FIXED, 1),    # card type id of the network operator
    0x9A: (Kind.LLLVAR, 0),   # Geldkarte payment record
    0xA0: (Kind.FIXED, 1),    # result code AS
    0xA7: (Kind.LLVAR, 0),    # chip data EF_ID
    0xAF: (Kind.LLLVAR, 0),   # EF_Info
    0xBA: (Kind.FIXED, 5),    # AID parameter
    0xD0: (Kind.FIXED, 1),    # algorithm key
    0xD1: (Kind.LLVAR, 0),    # card offset / PIN data
    0xD2: (Kind.FIXED, 1),    # direct debit
    0xD3: (Kind.FIXED, 1),    # card type (Geldkarte)
    **{bmp: (Kind.LLVAR, 0) for bmp in range(0xE1, 0xE9)},  # display texts
    **{bmp: (Kind.LLVAR, 0) for bmp in range(0xF1, 0xF9)},  # display texts
}


@dataclass(frozen=True)
class Field:
    """One BMP field: its number and its value (without length prefix)."""

    bmp: int
    value: bytes


def encode_field(bmp: int, value: bytes) -> bytes:
    """BMP byte, the length prefix its kind needs, the value; ApduError if it cannot."""
    if bmp not in BMPS:
        raise ApduError(f"BMP {bmp:02X} is not one this driver knows")
    kind, size = BMPS[bmp]
    if kind is Kind.FIXED:
        if len(value) != size:
            raise ApduError(f"BMP {bmp:02X}: {len(value)} bytes, it takes {size}")
        return bytes([bmp]) + value
    try:
        if kind is Kind.LLVAR:
            return bytes([bmp]) + encode_llvar_length(len(value), 2) + value
        if kind is Kind.LLLVAR:
            return bytes([bmp]) + encode_llvar_length(len(value), 3) + value
        return bytes([bmp]) + tlv.encode_length(len(value)) + value
    except (BcdError, tlv.TlvError) as exc:
        raise ApduError(f"BMP {bmp:02X}: {exc}") from None


def encode_fields(fields: list[Field] | tuple[Field, ...]) -> bytes:
    return b"".join(encode_field(f.bmp, f.value) for f in fields)


def decode_fields(data: bytes) -> list[Field]:
    """The BMP fields of a data block, in order; ApduError naming the BMP and position
    when one is unknown or cut short."""
    fields = []
    pos = 0
    while pos < len(data):
        bmp = data[pos]
        if bmp not in BMPS:
            raise ApduError(f"unknown BMP {bmp:02X} at byte {pos} of {data.hex(' ')}")
        kind, size = BMPS[bmp]
        pos += 1
        prefix = {Kind.LLVAR: 2, Kind.LLLVAR: 3}.get(kind, 0)
        if pos + prefix > len(data):
            raise ApduError(f"BMP {bmp:02X} at byte {pos - 1}: its length is cut short")
        try:
            if kind is Kind.LLVAR:
                size, pos = decode_llvar_length(data[pos:pos + 2]), pos + 2
            elif kind is Kind.LLLVAR:
                size, pos = decode_llvar_length(data[pos:pos + 3]), pos + 3
            elif kind is Kind.TLV:
                size, pos = tlv.read_length(data, pos)
        except (BcdError, tlv.TlvError) as exc:
            raise ApduError(f"BMP {bmp:02X} at byte {pos - 1}: {exc}") from None
        if pos + size > len(data):
            raise ApduError(f"BMP {bmp:02X}: needs {size} bytes, {len(data) - pos} left")
        fields.append(Field(bmp, data[pos:pos + size]))
        pos += size
    return fields


class Fields:
    """The BMP fields of one message by number, with typed reads."""

    def __init__(self, fields: list[Field]) -> None:
        self.items = fields
        self._by_bmp = {f.bmp: f.value for f in reversed(fields)}

    @classmethod
    def parse(cls, data: bytes) -> Fields:
        return cls(decode_fields(data))

    def __contains__(self, bmp: int) -> bool:
        return bmp in self._by_bmp

    def raw(self, bmp: int) -> bytes | None:
        return self._by_bmp.get(bmp)

    def byte(self, bmp: int) -> int | None:
        value = self._by_bmp.get(bmp)
        return value[0] if value else None

    def bcd(self, bmp: int) -> int | None:
        value = self._by_bmp.get(bmp)
        if value is None:
            return None
        try:
            return decode_bcd(value)
        except BcdError as exc:
            raise ApduError(f"BMP {bmp:02X}: {exc}") from None

    def text(self, bmp: int) -> str | None:
        """ASCII/CP437 text (the ZVT character set), trailing NULs and blanks cut."""
        value = self._by_bmp.get(bmp)
        return None if value is None else value.decode("cp437").rstrip("\x00 ")

    def tlv(self) -> tuple[tlv.Tlv, ...]:
        value = self._by_bmp.get(0x06)
        if value is None:
            return ()
        try:
            return tlv.decode(value)
        except tlv.TlvError as exc:
            raise ApduError(f"BMP 06: {exc}") from None


def amount_field(minor_units: int) -> Field:
    """BMP 04: an amount in minor units as 6-byte BCD (at most 999999999999)."""
    try:
        return Field(0x04, encode_bcd(minor_units, 6))
    except BcdError as exc:
        raise ApduError(f"amount: {exc}") from None


def bcd_field(bmp: int, value: int) -> Field:
    size = BMPS[bmp][1]
    try:
        return Field(bmp, encode_bcd(value, size))
    except BcdError as exc:
        raise ApduError(f"BMP {bmp:02X}: {exc}") from None


def text_field(bmp: int, text: str) -> Field:
    return Field(bmp, text.encode("cp437", errors="replace"))
