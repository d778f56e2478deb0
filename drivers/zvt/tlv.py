"""The TLV container of ZVT (BMP 06): BER-style tags (one byte, or `xF` first byte with
continuation bytes while bit 8 is set), lengths (< 0x80 one byte, `81 xx`, `82 xx xx`),
constructed tags (bit 6 of the first tag byte) holding nested objects.

References read (no code copied): ZVT-Protokoll PA00P015 chapter "TLV-container";
Portalum/Portalum.Zvt src/Portalum.Zvt.UnitTest/TlvParserTest.cs (tag and length vectors);
bezahl-online/zvt apdu/tlv/ (tag and length rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TlvError(ValueError):
    """A TLV container that is cut short or has an impossible tag or length."""


@dataclass(frozen=True)
class Tlv:
    """One data object: `tag` as its bytes' hex (upper case, "1F07"), `value` its bytes;
    `children` the nested objects of a constructed tag."""

    tag: str
    value: bytes = b""
    children: tuple[Tlv, ...] = field(default=())

    @property
    def constructed(self) -> bool:
        return bool(bytes.fromhex(self.tag)[0] & 0x20)

    def find(self, tag: str) -> Tlv | None:
        return find(self.children, tag)


def read_tag(data: bytes, pos: int) -> tuple[str, int]:
    """(tag hex, next position) of the tag at `pos`."""
    if pos >= len(data):
        raise TlvError("TLV: tag expected, data ended")
    end = pos + 1
    if data[pos] & 0x1F == 0x1F:
        while True:
            if end >= len(data):
                raise TlvError(f"TLV: tag {data[pos:end].hex().upper()} is cut short")
            end += 1
            if not data[end - 1] & 0x80:
                break
    return data[pos:end].hex().upper(), end


def read_length(data: bytes, pos: int) -> tuple[int, int]:
    """(length, next position) of the BER length at `pos`: 05, 81 xx or 82 xx xx."""
    if pos >= len(data):
        raise TlvError("TLV: length expected, data ended")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count not in (1, 2) or pos + 1 + count > len(data):
        raise TlvError(f"TLV: length byte {first:02X} is not 81 xx or 82 xx xx")
    return int.from_bytes(data[pos + 1: pos + 1 + count], "big"), pos + 1 + count


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise TlvError(f"TLV: length {length} is over 65535")


def decode(data: bytes) -> tuple[Tlv, ...]:
    """Every data object of `data`, constructed ones with their children."""
    objects = []
    pos = 0
    while pos < len(data):
        tag, pos = read_tag(data, pos)
        length, pos = read_length(data, pos)
        if pos + length > len(data):
            raise TlvError(f"TLV: tag {tag} says {length} bytes, {len(data) - pos} left")
        value = data[pos: pos + length]
        pos += length
        node = Tlv(tag, value)
        objects.append(Tlv(tag, value, decode(value)) if node.constructed else node)
    return tuple(objects)


def encode(objects: tuple[Tlv, ...] | list[Tlv]) -> bytes:
    """The bytes of `objects`; a constructed object with children is built from them."""
    out = bytearray()
    for obj in objects:
        value = encode(obj.children) if obj.children else obj.value
        out += bytes.fromhex(obj.tag) + encode_length(len(value)) + value
    return bytes(out)


def find(objects: tuple[Tlv, ...], tag: str) -> Tlv | None:
    """The first object with `tag`, searched depth first."""
    for obj in objects:
        if obj.tag == tag.upper():
            return obj
        if obj.children and (hit := find(obj.children, tag)) is not None:
            return hit
    return None


def find_all(objects: tuple[Tlv, ...], tag: str) -> list[Tlv]:
    hits = []
    for obj in objects:
        if obj.tag == tag.upper():
            hits.append(obj)
        hits += find_all(obj.children, tag)
    return hits
