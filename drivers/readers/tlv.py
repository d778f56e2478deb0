"""BER-TLV as EMV uses it (EMV Book 3, Annex B), and Data Object Lists (PDOL, CDOL).

Provides `parse(data) -> tuple[Tlv, ...]` (constructed objects parsed into children),
`find(objects, tag)` (depth-first), `parse_dol(data)` and `build_dol(dol, values)`.
Any malformed input raises `TlvError` naming the offset and what was wrong; nothing
else escapes, whatever the bytes (fuzz-tested). Padding bytes 0x00 and 0xFF between
objects are skipped as EMV allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_DEPTH = 8


class TlvError(ValueError):
    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(f"malformed TLV at byte {offset}: {reason}")


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        return _first_byte(self.tag) & 0x20 != 0


def _first_byte(tag: int) -> int:
    while tag > 0xFF:
        tag >>= 8
    return tag


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    start = pos
    if pos >= len(data):
        raise TlvError(pos, "tag expected, data ended")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise TlvError(start, "multi-byte tag not terminated")
            if pos - start >= 3:
                raise TlvError(start, "tag longer than 3 bytes")
            tag = (tag << 8) | data[pos]
            pos += 1
            if not data[pos - 1] & 0x80:
                break
    return tag, pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError(pos, "length expected, data ended")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0:
        raise TlvError(pos - 1, "indefinite length is not allowed")
    if count > 3:
        raise TlvError(pos - 1, f"length of {count} bytes is not allowed (at most 3)")
    if pos + count > len(data):
        raise TlvError(pos - 1, "length bytes run past the end")
    return int.from_bytes(data[pos:pos + count], "big"), pos + count


def parse(data: bytes, *, _offset: int = 0, _depth: int = 0) -> tuple[Tlv, ...]:
    """All objects in `data`; TlvError on anything malformed."""
    if _depth > MAX_DEPTH:
        raise TlvError(_offset, f"nested deeper than {MAX_DEPTH} levels")
    objects = []
    pos = 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF):
            pos += 1
            continue
        tag, pos_after_tag = _read_tag(data, pos)
        length, value_at = _read_length(data, pos_after_tag)
        if value_at + length > len(data):
            raise TlvError(_offset + pos, f"tag {tag:X}: value of {length} bytes runs past the "
                           f"end ({len(data) - value_at} left)")
        value = bytes(data[value_at:value_at + length])
        obj = Tlv(tag, value)
        if obj.constructed:
            obj = Tlv(tag, value, parse(value, _offset=_offset + value_at, _depth=_depth + 1))
        objects.append(obj)
        pos = value_at + length
    return tuple(objects)


def find(objects: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first object with `tag`, searching children depth-first."""
    for obj in objects:
        if obj.tag == tag:
            return obj
        if obj.children and (found := find(obj.children, tag)) is not None:
            return found
    return None


def parse_dol(data: bytes) -> tuple[tuple[int, int], ...]:
    """A Data Object List: (tag, length) pairs without values."""
    entries = []
    pos = 0
    while pos < len(data):
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        entries.append((tag, length))
    return tuple(entries)


def build_dol(dol: Iterable[tuple[int, int]], values: Mapping[int, bytes]) -> bytes:
    """The DOL's data: each value cut or zero-padded to its length (numeric values are
    right-aligned by the caller); unknown tags are zeros, as EMV specifies."""
    out = bytearray()
    for tag, length in dol:
        value = values.get(tag, b"")
        out += value[:length] if len(value) >= length else value + bytes(length - len(value))
    return bytes(out)


def encode(tag: int, value: bytes) -> bytes:
    """One object (for card emulators and tests)."""
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n <= 0xFF:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return tag_bytes + length + value
