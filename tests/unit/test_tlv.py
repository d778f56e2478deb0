"""BER-TLV parsing: EMV examples, every malformation named, fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.readers.tlv import Tlv, TlvError, build_dol, encode, find, parse, parse_dol

# a PPSE answer: FCI 6F > 84 (DF name), A5 > BF0C > 61 > 87 (priority)
PPSE = "6F1A840E325041592E5359532E4444463031A508BF0C056103870101"


def test_nested_fci_and_find():
    objects = parse(bytes.fromhex(PPSE))
    assert objects[0].tag == 0x6F and objects[0].constructed
    assert find(objects, 0x84).value == b"2PAY.SYS.DDF01"
    assert find(objects, 0xBF0C).children[0].tag == 0x61
    assert find(objects, 0x87).value == b"\x01"
    assert find(objects, 0x57) is None


def test_multi_byte_tags_long_lengths_and_padding():
    value = bytes(200)
    data = b"\x00" + encode(0x9F6B, b"\x41\x11") + b"\xff" + encode(0x5F24, b"\x28\x12\x31") \
        + encode(0x70, encode(0x9F4B, value))
    objects = parse(data)
    assert [o.tag for o in objects] == [0x9F6B, 0x5F24, 0x70]
    assert find(objects, 0x9F4B) == Tlv(0x9F4B, value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("9F", "multi-byte tag not terminated"),
        ("9F6B", "length expected"),
        ("5A08411111", "runs past the end"),
        ("5A80", "indefinite length"),
        ("5A8500000000010000", "at most 3"),
        ("5A8201", "length bytes run past"),
        ("9FFFFFFF0100", "longer than 3 bytes"),
        ("70037002" + "00", "runs past the end"),
    ],
    ids=["tag-cut", "no-length", "value-cut", "indefinite", "huge-length", "length-cut",
         "tag-4-bytes", "child-cut"],
)
def test_malformed_tlv_is_named(data, reason):
    with pytest.raises(TlvError, match=reason):
        parse(bytes.fromhex(data))


def test_deep_nesting_is_refused():
    data = b"\x01"
    for _ in range(12):
        data = encode(0x70, data)
    with pytest.raises(TlvError, match="nested deeper"):
        parse(data)


def test_pdol_parsed_and_filled():
    dol = parse_dol(bytes.fromhex("9F66049F02069F37049F1A025F2A02"))
    assert dol == ((0x9F66, 4), (0x9F02, 6), (0x9F37, 4), (0x9F1A, 2), (0x5F2A, 2))
    data = build_dol(dol, {0x9F02: bytes.fromhex("000000005000"), 0x9F1A: b"\x02\x76",
                           0x5F2A: b"\x09\x78", 0x9F37: b"\xde\xad\xbe\xef"})
    assert data.hex() == "00000000" + "000000005000" + "deadbeef" + "0276" + "0978"


@given(st.binary(max_size=300))
def test_fuzz_only_tlv_errors_escape(data):
    with contextlib.suppress(TlvError):
        parse(data)
    with contextlib.suppress(TlvError):
        parse_dol(data)


@given(st.lists(st.tuples(st.sampled_from([0x57, 0x5A, 0x9F6B, 0x5F24, 0x50, 0x9F38]),
                          st.binary(max_size=140)), max_size=6))
def test_encoded_objects_parse_back(items):
    data = b"".join(encode(tag, value) for tag, value in items)
    assert [(o.tag, o.value) for o in parse(data)] == items
