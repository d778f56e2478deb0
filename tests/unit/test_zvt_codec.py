"""The ZVT codec's bytes (drivers/zvt: bcd, tlv, apdu), against byte vectors of public
implementations' tests and the ZVT specification (PA00P015):

- Portalum/Portalum.Zvt src/Portalum.Zvt.UnitTest/ApduHelperTest.cs (APDU lengths),
  BmpParserTest.cs (LLVAR/LLLVAR lengths), TlvParserTest.cs (tags, lengths);
- the spec's "APDU" chapter (FF + 2-byte little-endian extended length) and BMP summary.
"""

from __future__ import annotations

import pytest

from drivers.zvt import tlv
from drivers.zvt.apdu import (
    ACK,
    Apdu,
    ApduError,
    Field,
    Fields,
    amount_field,
    decode_apdu,
    decode_fields,
    encode_field,
    encode_fields,
    is_ack,
    is_nak,
    nak,
    split_frame,
)
from drivers.zvt.bcd import (
    BcdError,
    decode_bcd,
    decode_llvar_length,
    decode_masked_pan,
    encode_bcd,
    encode_llvar_length,
    encode_masked_pan,
)

H = bytes.fromhex

# --- BCD ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "size", "encoded"), [
    (2040, 6, "000000002040"),       # 20.40 EUR, Portalum StatusInformationParserTest
    (470, 3, "000470"),              # trace number 470
    (28004869, 4, "28004869"),       # terminal id
    (978, 2, "0978"),                # EUR
    (0, 2, "0000"),
    (999999999999, 6, "999999999999"),
])
def test_bcd_round_trip(value: int, size: int, encoded: str) -> None:
    assert encode_bcd(value, size) == H(encoded)
    assert decode_bcd(H(encoded)) == value


@pytest.mark.parametrize(("value", "size"), [(1000, 1), (-1, 2), (1_000_000_000_000, 6)])
def test_bcd_refuses_what_does_not_fit(value: int, size: int) -> None:
    with pytest.raises(BcdError):
        encode_bcd(value, size)


def test_bcd_refuses_a_nibble_above_9() -> None:
    with pytest.raises(BcdError, match="not a digit"):
        decode_bcd(H("12AB"))


@pytest.mark.parametrize(("prefix", "length"), [
    ("F0F1F9", 19), ("F1F8F9", 189), ("F1F8", 18), ("F1F0", 10),  # Portalum BmpParserTest
])
def test_llvar_lengths(prefix: str, length: int) -> None:
    assert decode_llvar_length(H(prefix)) == length
    assert encode_llvar_length(length, len(prefix) // 2) == H(prefix)


@pytest.mark.parametrize("prefix", ["F1FA", "01F0", "E1"])
def test_llvar_length_must_be_fx_digits(prefix: str) -> None:
    with pytest.raises(BcdError, match="Fx digits"):
        decode_llvar_length(H(prefix))


def test_llvar_length_too_long_for_its_digits() -> None:
    with pytest.raises(BcdError):
        encode_llvar_length(100, 2)


def test_masked_pan_from_the_terminal() -> None:
    # BMP 22 F0 F8 EE EE EE EE EE EE 47 71 (Portalum StatusInformationParserTest)
    assert decode_masked_pan(H("EEEEEEEEEEEE4771")) == "************4771"
    # an odd number of digits is padded with F
    assert decode_masked_pan(H("EEEEEEEEEEEEEEEE123F")) == "*" * 16 + "123"


def test_an_unmasked_pan_is_masked_on_reading() -> None:
    shown = decode_masked_pan(H("4111111111111111"))
    assert shown == "411111******1111"
    assert "4111111111111111" not in shown


def test_only_masked_numbers_are_encoded() -> None:
    assert encode_masked_pan("************4771") == H("EEEEEEEEEEEE4771")
    assert encode_masked_pan("***1") == H("EEE1")
    assert encode_masked_pan("**1") == H("EE1F")
    with pytest.raises(BcdError, match="only masked"):
        encode_masked_pan("4111111111111111")


# --- TLV ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "tag", "size"), [
    ("1F07", "1F07", 2), ("1F26", "1F26", 2), ("1F8000", "1F8000", 3),  # Portalum TlvParserTest
    ("07", "07", 1), ("09", "09", 1), ("25", "25", 1),
])
def test_tlv_tags(data: str, tag: str, size: int) -> None:
    assert tlv.read_tag(H(data), 0) == (tag, size)


def test_tlv_constructed_bit() -> None:
    assert tlv.Tlv("25").constructed and tlv.Tlv("60").constructed
    assert not tlv.Tlv("07").constructed and not tlv.Tlv("1F07").constructed


@pytest.mark.parametrize(("data", "length", "next_pos"), [
    ("82028A", 650, 3),  # Portalum TlvParserTest.GetLength_3Bytes
    ("05", 5, 1), ("8180", 128, 2), ("81FF", 255, 2),
])
def test_tlv_lengths(data: str, length: int, next_pos: int) -> None:
    assert tlv.read_length(H(data), 0) == (length, next_pos)
    assert tlv.encode_length(length) == H(data)


def test_tlv_container_with_nested_objects() -> None:
    # the TLV container of Portalum StatusInformationParserTest.Parse_TlvInfos1
    data = H("2F081F1201021F100100601B4307A0000000041010"
             "4410" + b"Debit Mastercard".hex() + "1F2B0410015008")
    objects = tlv.decode(data)
    assert [o.tag for o in objects] == ["2F", "60", "1F2B"]
    assert objects[0].find("1F12").value == H("02")   # card technology: NFC
    assert objects[0].find("1F10").value == H("00")   # cardholder authentication
    assert tlv.find(objects, "43").value == H("A0000000041010")
    assert tlv.find(objects, "44").value == b"Debit Mastercard"
    assert tlv.encode(objects) == data


def test_tlv_cut_short_is_named() -> None:
    with pytest.raises(tlv.TlvError, match="tag 07 says 5 bytes, 2 left"):
        tlv.decode(H("0705AABB"))
    with pytest.raises(tlv.TlvError, match="cut short"):
        tlv.decode(H("1F"))
    with pytest.raises(tlv.TlvError, match="81 xx or 82 xx xx"):
        tlv.decode(H("0783000001"))


# --- APDU framing -------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "length"), [
    ("040F016C", 1),           # Portalum ApduHelperTest: short length
    ("040FFF01006C", 1),       # extended length 01 00 little-endian = 1
])
def test_apdu_lengths(data: str, length: int) -> None:
    apdu = decode_apdu(H(data))
    assert apdu.command == (0x04, 0x0F)
    assert len(apdu.data) == length and apdu.data == H("6C")


def test_extended_length_is_little_endian() -> None:
    # Portalum ApduHelperTest: FF 00 01 = 256 bytes, FF FF FF = 65535
    assert split_frame(H("040FFF0001") + bytes(255)) is None
    apdu, used = split_frame(H("040FFF0001") + bytes(256))
    assert len(apdu.data) == 256 and used == 261
    assert split_frame(H("040FFFFFFF6C")) is None


def test_long_data_is_framed_with_ff() -> None:
    assert Apdu(0x06, 0xD3, bytes(254)).encode()[:3] == H("06D3FE")
    assert Apdu(0x06, 0xD3, bytes(255)).encode()[:5] == H("06D3FFFF00")
    assert Apdu(0x06, 0xD3, bytes(650)).encode()[:5] == H("06D3FF8A02")
    with pytest.raises(ApduError, match="at most 65535"):
        Apdu(0x06, 0xD3, bytes(65536)).encode()


def test_an_incomplete_frame_waits_and_trailing_bytes_are_named() -> None:
    assert split_frame(H("040F06000102")) is None   # Portalum: corrupt length
    assert split_frame(H("040F")) is None
    with pytest.raises(ApduError, match="cut short"):
        decode_apdu(H("040F06000102"))
    with pytest.raises(ApduError, match="1 bytes after its end"):
        decode_apdu(H("800000AA"))


def test_two_frames_in_one_read() -> None:
    buffer = H("800000") + H("04FF010A")
    first, used = split_frame(buffer)
    second, _ = split_frame(buffer[used:])
    assert is_ack(first) and second == Apdu(0x04, 0xFF, H("0A"))


def test_ack_and_nak() -> None:
    assert ACK.encode() == H("800000")
    assert nak(0x9C).encode() == H("849C00")
    assert is_nak(decode_apdu(H("846F00"))) and not is_ack(decode_apdu(H("846F00")))


# --- BMP fields ---------------------------------------------------------------------------


def test_fixed_llvar_lllvar_and_tlv_fields() -> None:
    fields = [
        amount_field(2040),
        Field(0x0B, H("000470")),
        Field(0x22, H("EEEEEEEEEEEE4771")),
        Field(0x3C, b"GEN.NR.:611804"),
        Field(0x06, H("1F070102")),
    ]
    data = encode_fields(fields)
    assert data == H("04000000002040" "0B000470" "22F0F8EEEEEEEEEEEE4771"
                     "3CF0F1F4" + b"GEN.NR.:611804".hex() + "06041F070102")
    assert decode_fields(data) == fields


def test_a_tlv_field_over_127_bytes_has_a_ber_length() -> None:
    assert encode_field(0x06, bytes(200))[:3] == H("0681C8")
    assert decode_fields(encode_field(0x06, bytes(300)))[0].value == bytes(300)


def test_fields_typed_reads() -> None:
    f = Fields.parse(H("27 6C 29 28004869 49 0978 8A 2E 2A") + b"100461763      "
                     + H("8B F1F7") + b"Debit Mastercard\x00")
    assert f.byte(0x27) == 0x6C and f.bcd(0x29) == 28004869 and f.bcd(0x49) == 978
    assert f.text(0x2A) == "100461763" and f.text(0x8B) == "Debit Mastercard"
    assert 0x8A in f and 0x04 not in f and f.bcd(0x04) is None


@pytest.mark.parametrize(("data", "problem"), [
    ("C5 00", "unknown BMP C5 at byte 0"),
    ("04 0000", "BMP 04: needs 6 bytes, 2 left"),
    ("22 F1", "BMP 22 at byte 0"),
    ("3C F0F0F5 4142", "BMP 3C: needs 5 bytes, 2 left"),
])
def test_bad_fields_are_named(data: str, problem: str) -> None:
    with pytest.raises(ApduError, match=problem):
        decode_fields(H(data))


def test_field_sizes_are_checked_on_encoding() -> None:
    with pytest.raises(ApduError, match="BMP 29: 3 bytes, it takes 4"):
        encode_field(0x29, H("000001"))
    with pytest.raises(ApduError, match="amount"):
        amount_field(10**12)
    with pytest.raises(ApduError, match="BMP C5"):
        encode_field(0xC5, b"")
