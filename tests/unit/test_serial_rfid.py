"""FrameParser, TagDebouncer and encode_frame of drivers.readers.serial_rfid."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.readers.serial_rfid import (
    ETX,
    STX,
    FrameParser,
    SerialRfidReader,
    TagDebouncer,
    encode_frame,
)
from tests.unit.clockfake import FakeClock

TAG = "0400ABCDEF"
FRAME = encode_frame(TAG)


def bad_checksum_frame(tag_id: str) -> bytes:
    frame = bytearray(encode_frame(tag_id))
    frame[12] = ord("0") if frame[12] != ord("0") else ord("1")
    return bytes(frame)


def test_encode_frame_layout() -> None:
    # 04 ^ 00 ^ AB ^ CD ^ EF = 0x8D
    assert FRAME == b"\x020400ABCDEF8D\x03"


def test_encode_frame_rejects_bad_id() -> None:
    with pytest.raises(ValueError, match="'04XX'"):
        encode_frame("04XX")


def test_good_frame() -> None:
    parser = FrameParser()
    assert parser.feed(FRAME) == [TAG]
    assert parser.stats["frames_ok"] == 1


def test_lowercase_hex_gives_uppercase_id() -> None:
    assert FrameParser().feed(b"\x020400abcdef8d\x03") == [TAG]


def test_repeated_frames() -> None:
    assert FrameParser().feed(FRAME * 3) == [TAG] * 3


def test_frame_split_byte_by_byte() -> None:
    parser = FrameParser()
    out: list[str] = []
    for byte in FRAME * 2:
        out += parser.feed(bytes([byte]))
    assert out == [TAG, TAG]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(bad_checksum_frame(TAG), "bad_checksum", id="bad-checksum"),
        pytest.param(b"\x020400ABCDEG8D\x03", "bad_hex", id="non-hex"),
        pytest.param(b"\x020400AB CDEF8\x03", "bad_hex", id="space"),
        pytest.param(b"\x020400ABCDEF8\x03", "bad_length", id="short"),
        pytest.param(b"\x020400ABCDEF8D0\x03", "bad_length", id="long"),
        pytest.param(b"\x02\x03", "bad_length", id="empty"),
    ],
)
def test_bad_frame_dropped_and_counted(data: bytes, kind: str) -> None:
    parser = FrameParser()
    assert parser.feed(data) == []
    assert parser.stats[kind] == 1
    assert parser.stats["frames_ok"] == 0
    assert parser.feed(FRAME) == [TAG]


def test_garbage_between_frames_counted() -> None:
    parser = FrameParser()
    assert parser.feed(b"noise" + FRAME + b"\r\n" + FRAME) == [TAG, TAG]
    assert parser.stats["garbage_bytes"] == 7


def test_resync_on_stx_inside_frame() -> None:
    parser = FrameParser()
    assert parser.feed(FRAME[:6] + FRAME) == [TAG]
    assert parser.stats["bad_length"] == 1


def test_resync_after_overlong_frame() -> None:
    parser = FrameParser()
    assert parser.feed(b"\x02" + b"A" * 40 + b"\x03" + FRAME) == [TAG]
    assert parser.stats["bad_length"] == 1


def test_reset_drops_partial_frame() -> None:
    parser = FrameParser()
    parser.feed(FRAME[:8])
    parser.reset()
    assert parser.feed(FRAME[8:]) == []


tag_ids = st.text(alphabet="0123456789ABCDEF", min_size=10, max_size=10)
no_stx_etx = st.binary(max_size=20).map(lambda b: bytes(x for x in b if x not in (STX, ETX)))
bad_frames = st.one_of(
    tag_ids.map(bad_checksum_frame),
    st.binary(max_size=30).map(
        lambda b: bytes([STX]) + bytes(x for x in b if x not in (STX, ETX)) + bytes([ETX])
    ).filter(lambda frame: FrameParser().feed(frame) == []),  # may be valid by chance
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(1, 16), max_size=20))
def test_fuzz_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    whole = FrameParser().feed(data)
    parser = FrameParser()
    chunked: list[str] = []
    rest = data
    for cut in cuts:
        chunked += parser.feed(rest[:cut])
        rest = rest[cut:]
    chunked += parser.feed(rest)
    assert chunked == whole
    assert all(len(tag) == 10 and tag == tag.upper() for tag in whole)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100), tag_ids)
def test_fuzz_good_frame_after_anything_recovered(prefix: bytes, tag: str) -> None:
    assert FrameParser().feed(prefix + encode_frame(tag))[-1:] == [tag]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(no_stx_etx, st.one_of(tag_ids, bad_frames)), max_size=15
    )
)
def test_fuzz_mixed_frames_all_good_recovered(items: list[tuple[bytes, str | bytes]]) -> None:
    stream = b""
    expected: list[str] = []
    for garbage, frame in items:
        if isinstance(frame, str):
            expected.append(frame)
            frame = encode_frame(frame)
        stream += garbage + frame
    parser = FrameParser()
    assert parser.feed(stream) == expected
    assert parser.stats["frames_ok"] == len(expected)


def test_debouncer_one_event_per_presentation() -> None:
    clock = FakeClock()
    debouncer = TagDebouncer(clock, hold_s=0.5)
    events = []
    for _ in range(12):  # ~1 s of frames every 80 ms
        events.append(debouncer.seen(TAG))
        clock.advance(0.08)
    assert events == [True] + [False] * 11
    assert debouncer.in_field() == [TAG]


def test_debouncer_new_presentation_after_hold() -> None:
    clock = FakeClock()
    debouncer = TagDebouncer(clock, hold_s=0.5)
    assert debouncer.seen(TAG)
    clock.advance(0.5)
    assert not debouncer.seen(TAG)  # exactly hold_s: still the same presentation
    clock.advance(0.51)
    assert debouncer.in_field() == []
    assert debouncer.seen(TAG)


def test_debouncer_two_tags_independent() -> None:
    clock = FakeClock()
    debouncer = TagDebouncer(clock, hold_s=0.5)
    assert debouncer.seen(TAG)
    clock.advance(0.1)
    assert debouncer.seen("0102030405")
    clock.advance(0.1)
    assert not debouncer.seen(TAG)


def test_debouncer_rejects_bad_hold() -> None:
    with pytest.raises(ValueError, match="hold_s"):
        TagDebouncer(FakeClock(), hold_s=0)


def test_reader_missing_device_is_disconnected() -> None:
    reader = SerialRfidReader("/nonexistent/ttyRFID", reopen_interval_s=0.05)
    assert reader.state == "stopped"
    reader.start()
    try:
        assert reader.state == "disconnected"
    finally:
        reader.stop()
    assert reader.state == "stopped"


def test_reader_sink_needs_loop() -> None:
    reader = SerialRfidReader("/nonexistent/ttyRFID")
    with pytest.raises(ValueError, match="loop"):
        reader.start(None, asyncio.Queue())
