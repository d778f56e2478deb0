"""Decode and encode Modbus register values.

Data types: u16 s16 u32 s32 u64 s64 float32 ascii. Bytes inside a register are
big-endian (Modbus); multi-register values come `high_first` (big-endian words) or
`low_first` (Carlo Gavazzi style). float32 is returned as the shortest decimal that
round-trips the 32-bit value, so 229.8 V reads as Decimal("229.8").
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from decimal import Decimal

REGISTER_COUNTS = {"u16": 1, "s16": 1, "u32": 2, "s32": 2, "float32": 2, "u64": 4, "s64": 4}
DATA_TYPES = (*REGISTER_COUNTS, "ascii")
WORD_ORDERS = ("high_first", "low_first")


class DecodeError(ValueError):
    """Registers that do not hold a valid value of the declared type."""


def register_count(dtype: str, ascii_count: int = 0) -> int:
    return ascii_count if dtype == "ascii" else REGISTER_COUNTS[dtype]


def _ordered(regs: Sequence[int], word_order: str) -> list[int]:
    return list(reversed(regs)) if word_order == "low_first" else list(regs)


def _float32_decimal(raw: bytes) -> Decimal:
    value = struct.unpack(">f", raw)[0]
    if not math.isfinite(value):
        raise DecodeError(f"float32 is not a finite number ({value})")
    for digits in range(6, 10):
        text = f"{value:.{digits}g}"
        if struct.pack(">f", float(text)) == raw:
            return Decimal(text)
    return Decimal(repr(value))  # unreachable: 9 digits always round-trip a float32


def decode(regs: Sequence[int], dtype: str, word_order: str = "high_first") -> Decimal | str:
    """Registers (16-bit ints) -> Decimal, or str for ascii."""
    if any(not 0 <= r <= 0xFFFF for r in regs):
        raise DecodeError(f"register value out of 16-bit range in {list(regs)}")
    if dtype == "ascii":
        raw = b"".join(r.to_bytes(2, "big") for r in regs)
        text = raw.split(b"\x00", 1)[0].decode("ascii", errors="strict").strip()
        if not text.isprintable():
            raise DecodeError(f"ascii value has unprintable characters: {text!r}")
        return text
    expected = REGISTER_COUNTS[dtype]
    if len(regs) != expected:
        raise DecodeError(f"{dtype} needs {expected} registers, got {len(regs)}")
    raw = b"".join(r.to_bytes(2, "big") for r in _ordered(regs, word_order))
    if dtype == "float32":
        return _float32_decimal(raw)
    return Decimal(int.from_bytes(raw, "big", signed=dtype.startswith("s")))


def encode(value: Decimal | int | float | str, dtype: str, word_order: str = "high_first",
           ascii_count: int = 0) -> list[int]:
    """Value -> registers; integers must fit the type (no silent wrap-around)."""
    if dtype == "ascii":
        raw = str(value).encode("ascii")[: ascii_count * 2].ljust(ascii_count * 2, b"\x00")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    count = REGISTER_COUNTS[dtype]
    if dtype == "float32":
        raw = struct.pack(">f", float(value))
    else:
        number = int(Decimal(value).to_integral_value())
        try:
            raw = number.to_bytes(count * 2, "big", signed=dtype.startswith("s"))
        except OverflowError:
            raise ValueError(f"{value} does not fit in {dtype}") from None
    regs = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, count * 2, 2)]
    return _ordered(regs, word_order)
