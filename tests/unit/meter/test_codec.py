import struct
from decimal import Decimal

import pytest

from drivers.meter.codec import DecodeError, decode, encode

# (dtype, word order, registers on the wire, value) worked out by hand
VECTORS = [
    ("u16", "high_first", [0xFFFF], Decimal(65535)),
    ("s16", "high_first", [0xFFFF], Decimal(-1)),
    ("s16", "high_first", [0x8000], Decimal(-32768)),
    ("u32", "high_first", [0x1234, 0x5678], Decimal(0x12345678)),
    ("u32", "low_first", [0x5678, 0x1234], Decimal(0x12345678)),
    ("s32", "high_first", [0xFFFF, 0xFFFE], Decimal(-2)),
    ("s32", "low_first", [0xFFFE, 0xFFFF], Decimal(-2)),
    ("u64", "high_first", [0x0001, 0x0002, 0x0003, 0x0004], Decimal(0x0001000200030004)),
    ("u64", "low_first", [0x0004, 0x0003, 0x0002, 0x0001], Decimal(0x0001000200030004)),
    ("s64", "high_first", [0xFFFF, 0xFFFF, 0xFFFF, 0xFF9C], Decimal(-100)),
    ("s64", "low_first", [0xFF9C, 0xFFFF, 0xFFFF, 0xFFFF], Decimal(-100)),
    ("float32", "high_first", [0x4366, 0xCCCD], Decimal("230.8")),
    ("float32", "low_first", [0xCCCD, 0x4366], Decimal("230.8")),
    ("float32", "high_first", [0xC2C8, 0x0000], Decimal(-100)),
]


@pytest.mark.parametrize(("dtype", "order", "regs", "value"), VECTORS)
def test_decode_known_vectors(dtype, order, regs, value):
    assert decode(regs, dtype, order) == value


@pytest.mark.parametrize(("dtype", "order", "regs", "value"), VECTORS)
def test_encode_is_inverse_of_decode(dtype, order, regs, value):
    assert encode(value, dtype, order) == regs


def test_float32_gives_shortest_decimal_that_round_trips():
    for number in (0.1, 12345.68, 229.8, 1e-3, 3.4e38):
        regs = encode(number, "float32")
        value = decode(regs, "float32")
        raw = b"".join(r.to_bytes(2, "big") for r in regs)
        assert struct.pack(">f", float(value)) == raw
        assert len(value.as_tuple().digits) <= 9


@pytest.mark.parametrize("regs", [[0x7FC0, 0x0000], [0x7F80, 0x0000], [0xFF80, 0x0000]])
def test_float32_nan_and_infinity_are_decode_errors(regs):
    with pytest.raises(DecodeError, match="not a finite number"):
        decode(regs, "float32")


def test_ascii_serial_stops_at_nul_and_strips():
    regs = encode("ABC123", "ascii", ascii_count=7)
    assert len(regs) == 7
    assert decode(regs, "ascii") == "ABC123"


def test_ascii_with_unprintable_bytes_is_rejected():
    with pytest.raises(DecodeError):
        decode([0x4101, 0x4243], "ascii")


def test_wrong_register_count_is_rejected():
    with pytest.raises(DecodeError, match="needs 2 registers"):
        decode([1], "u32")


def test_register_out_of_16_bit_range_is_rejected():
    with pytest.raises(DecodeError, match="16-bit"):
        decode([0x10000], "u16")


@pytest.mark.parametrize(("value", "dtype"), [(65536, "u16"), (-1, "u32"), (2**31, "s32")])
def test_encode_never_wraps_around(value, dtype):
    with pytest.raises(ValueError, match="does not fit"):
        encode(value, dtype)


def test_scaled_values_are_plain_decimals():
    from drivers.meter.modbus_meter import scaled
    from drivers.meter.registermap import load_model

    reg = load_model("eastron_sdm630").registers["voltage_v"]
    assert str(scaled(reg, Decimal("800"), None)) == "800"
    assert str(scaled(reg, Decimal("230.50"), None)) == "230.5"
