"""Serial 125 kHz RFID readers (RDM6300 and other EM4100 readers with the same frame).

Frame: 0x02 (STX), 10 ASCII hex characters (tag id: 2 version + 8 data), 2 ASCII hex
characters holding the XOR of the 5 id bytes, 0x03 (ETX). The reader repeats the frame
every 60 to 100 ms while a tag is in the field.

Provides:
- `FrameParser`: pure and incremental; `feed(data)` returns the tag ids (uppercase,
  10 hex characters) of the complete valid frames. Bad checksum, non-hex characters,
  wrong length and bytes outside a frame are dropped and counted in `stats`; the parser
  resynchronises on the next STX. It never raises on any bytes.
- `TagDebouncer`: one "tag presented" event per presentation; a tag seen again after
  it was out of the field for more than `hold_s` is a new presentation.
- `SerialRfidReader`: reads the port (pyserial) in a daemon thread and hands each
  presentation to `on_tag(tag_id)`, or to an asyncio loop with `start(loop, sink)`.
- `SerialRfidCardReader(device, baud)`: that reader as a `drivers.readers.reader.CardReader`:
  each presentation is an `RfidTap` (technology "em4100"); its state is "ready" while the
  port is open, else "absent".
- `encode_frame(tag_id)`: the frame for a tag id (used by hw_mocks.serial_rfid_sim).

Config: `device` (path, e.g. /dev/ttyUSB0), `baud` (default 9600, 8N1), `hold_s`
(seconds without frames after which a tag has left the field, default 0.5, in the
clock's seconds), `reopen_interval_s` (default 1.0).

On failure: a port that cannot be opened or vanishes (USB unplug) puts the reader in
state "disconnected"; it tries to reopen every `reopen_interval_s` and is "connected"
again when the port is back; nothing is raised to the caller. An exception from the
`on_tag` callback is logged and counted (`stats["callback_errors"]`); reading goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from functools import reduce

import serial

from drivers.readers.events import ReaderEvent, RfidTap
from terminal.kernel.clock import SYSTEM_CLOCK, Clock
from terminal.kernel.logsetup import fields, get_logger

log = get_logger("rfid")

STX = 0x02
ETX = 0x03
TAG_ID_CHARS = 10
FRAME_BODY_CHARS = TAG_ID_CHARS + 2  # id + checksum, between STX and ETX
_HEX = frozenset(b"0123456789ABCDEFabcdef")

STAT_KINDS = ("frames_ok", "bad_checksum", "bad_hex", "bad_length", "garbage_bytes")
READER_STATES = ("stopped", "disconnected", "connected")


def checksum(tag_bytes: bytes) -> int:
    """XOR of the tag id bytes."""
    return reduce(lambda acc, byte: acc ^ byte, tag_bytes, 0)


def normalize_tag_id(tag_id: str) -> str:
    """Uppercase 10-hex tag id; raise ValueError naming the value otherwise."""
    if len(tag_id) != TAG_ID_CHARS or not all(ord(c) in _HEX for c in tag_id):
        raise ValueError(f"tag id {tag_id!r}: expected {TAG_ID_CHARS} hex characters")
    return tag_id.upper()


def encode_frame(tag_id: str) -> bytes:
    """The RDM6300 frame for `tag_id`; raise ValueError for a malformed id."""
    tag = normalize_tag_id(tag_id)
    body = f"{tag}{checksum(bytes.fromhex(tag)):02X}".encode("ascii")
    return bytes([STX]) + body + bytes([ETX])


class FrameParser:
    """Incremental frame parser; keeps state between `feed` calls."""

    def __init__(self) -> None:
        self.stats: dict[str, int] = dict.fromkeys(STAT_KINDS, 0)
        self._body: bytearray | None = None  # None: outside a frame, waiting for STX

    def reset(self) -> None:
        """Forget a partly received frame (e.g. after the port was reopened)."""
        self._body = None

    def feed(self, data: bytes) -> list[str]:
        tags: list[str] = []
        for byte in data:
            if byte == STX:
                if self._body is not None:  # frame cut short by a new STX
                    self.stats["bad_length"] += 1
                self._body = bytearray()
            elif self._body is None:
                self.stats["garbage_bytes"] += 1
            elif byte == ETX:
                tag = self._finish(bytes(self._body))
                self._body = None
                if tag is not None:
                    tags.append(tag)
            elif len(self._body) >= FRAME_BODY_CHARS:  # too long: skip to the next STX
                self.stats["bad_length"] += 1
                self.stats["garbage_bytes"] += 1
                self._body = None
            else:
                self._body.append(byte)
        return tags

    def _finish(self, body: bytes) -> str | None:
        if len(body) != FRAME_BODY_CHARS:
            self.stats["bad_length"] += 1
            return None
        if not all(byte in _HEX for byte in body):
            self.stats["bad_hex"] += 1
            return None
        raw = bytes.fromhex(body.decode("ascii"))
        if checksum(raw[:5]) != raw[5]:
            self.stats["bad_checksum"] += 1
            return None
        self.stats["frames_ok"] += 1
        return body[:TAG_ID_CHARS].decode("ascii").upper()


class TagDebouncer:
    """Turns repeated frames into one event per presentation.

    `seen(tag_id)` is True for the first frame of a presentation: the tag was never
    seen, or not for more than `hold_s` (clock seconds).
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK, hold_s: float = 0.5) -> None:
        if not hold_s > 0:
            raise ValueError(f"hold_s {hold_s}: must be > 0")
        self.clock = clock
        self.hold_s = hold_s
        self._last_seen_s: dict[str, float] = {}

    def seen(self, tag_id: str) -> bool:
        now_s = self.clock.monotonic_s()
        self._forget_gone(now_s)
        new = tag_id not in self._last_seen_s
        self._last_seen_s[tag_id] = now_s
        return new

    def in_field(self) -> list[str]:
        """Tags seen within the last `hold_s`."""
        self._forget_gone(self.clock.monotonic_s())
        return list(self._last_seen_s)

    def _forget_gone(self, now_s: float) -> None:
        gone = [t for t, s in self._last_seen_s.items() if now_s - s > self.hold_s]
        for tag in gone:
            del self._last_seen_s[tag]


TagSink = Callable[[str], None] | asyncio.Queue


class SerialRfidReader:
    """An RDM6300-class reader on a serial port, read by a daemon thread.

    `state` is "stopped", "disconnected" or "connected"; `stats` holds the parser
    counters plus `tags` (presentations delivered), `reconnects` and `callback_errors`.
    """

    def __init__(
        self,
        device: str,
        baud: int = 9600,
        on_tag: Callable[[str], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        hold_s: float = 0.5,
        reopen_interval_s: float = 1.0,
        read_timeout_s: float = 0.1,
    ) -> None:
        self.device = device
        self.baud = baud
        self.on_tag = on_tag
        self.reopen_interval_s = reopen_interval_s
        self.read_timeout_s = read_timeout_s
        self._parser = FrameParser()
        self._debouncer = TagDebouncer(clock, hold_s)
        self._counters = {"tags": 0, "reconnects": 0, "callback_errors": 0}
        self._state = "stopped"
        self._deliver: Callable[[str], None] = self._call_on_tag
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: serial.Serial | None = None
        self._unavailable_logged = False

    @property
    def state(self) -> str:
        return self._state

    @property
    def stats(self) -> dict[str, int]:
        return {**self._parser.stats, **self._counters}

    def start(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        sink: TagSink | None = None,
    ) -> None:
        """Start the reading thread. Without `loop`, `on_tag` runs in that thread.
        With `loop`, events go to the loop via `call_soon_threadsafe`: put into `sink`
        if it is an asyncio.Queue, else passed to `sink` (or `on_tag`) called there."""
        if self._thread is not None:
            raise RuntimeError("reader already started")
        if loop is not None:
            target = sink if sink is not None else self._call_on_tag
            if isinstance(target, asyncio.Queue):
                queue = target
                self._deliver = lambda tag: loop.call_soon_threadsafe(queue.put_nowait, tag)
            else:
                func = target
                self._deliver = lambda tag: loop.call_soon_threadsafe(self._guarded, func, tag)
        elif sink is not None:
            raise ValueError("a sink needs the loop it belongs to: start(loop, sink)")
        self._stop.clear()
        self._state = "disconnected"
        self._thread = threading.Thread(
            target=self._run, name=f"rfid:{self.device}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop reading, join the thread and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._close()
        self._state = "stopped"

    def _call_on_tag(self, tag_id: str) -> None:
        if self.on_tag is not None:
            self._guarded(self.on_tag, tag_id)

    def _guarded(self, func: Callable[[str], None], tag_id: str) -> None:
        try:
            func(tag_id)
        except Exception:
            self._counters["callback_errors"] += 1
            log.exception("rfid tag callback failed", extra=fields(tag=tag_id))

    def _run(self) -> None:
        was_connected = False
        while not self._stop.is_set():
            if self._port is None:
                if not self._open():
                    self._stop.wait(self.reopen_interval_s)
                    continue
                if was_connected:
                    self._counters["reconnects"] += 1
                was_connected = True
            try:
                data = self._port.read(1)
                if data and self._port.in_waiting:
                    data += self._port.read(self._port.in_waiting)
            except (serial.SerialException, OSError, TypeError) as exc:
                # TypeError: pyserial reading a port closed under it
                log.warning("rfid reader lost", extra=fields(device=self.device, error=exc))
                self._close()
                self._state = "disconnected"
                continue
            for tag in self._parser.feed(data):
                if self._debouncer.seen(tag):
                    self._counters["tags"] += 1
                    self._deliver(tag)

    def _open(self) -> bool:
        try:
            self._port = serial.Serial(self.device, self.baud, timeout=self.read_timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            if not self._unavailable_logged:
                self._unavailable_logged = True
                log.warning("rfid reader unavailable", extra=fields(device=self.device,
                                                                     error=exc))
            self._state = "disconnected"
            return False
        self._unavailable_logged = False
        self._parser.reset()
        self._state = "connected"
        log.info("rfid reader connected", extra=fields(device=self.device))
        return True

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()


SERIAL_STATES = {"connected": "ready", "disconnected": "absent", "stopped": "absent"}


class SerialRfidCardReader:
    """A serial 125 kHz reader as a CardReader (drivers.readers.reader)."""

    def __init__(self, device: str, baud: int = 9600) -> None:
        self.device = device
        self.reader = SerialRfidReader(device, baud)

    def start(self, emit: Callable[[ReaderEvent], None]) -> None:
        self.reader.on_tag = lambda tag_id: emit(
            RfidTap(self.device, tag_id, "em4100", time.monotonic()))
        self.reader.start()

    def stop(self) -> None:
        self.reader.stop()

    def states(self) -> dict[str, str]:
        state = self.reader.state
        return {self.device: SERIAL_STATES.get(state, state)}
