"""RDM6300 emulator: a 125 kHz RFID reader writing EM4100 frames to a serial device.

`RfidEmulator(device, baud=9600)` opens the device (on the bench a USB-serial adapter;
in tests one end of a socat pty pair). `present(tag_id, hold_s)` repeats the tag's
frame every `frame_interval_s` (0.08 s, as the real module does) for `hold_s` seconds,
like a card held in the field; `send_bad_checksum(tag_id)` and `send_garbage(data)`
inject line faults the driver (drivers.readers.serial_rfid) must drop and count.

CLI, one body for `evterm sim rfid` (hw_mocks.card_cli registers `add_arguments` and
`run`) and `python -m hw_mocks.serial_rfid_sim` (`main`): `--device PATH --tag
0400ABCDEF [--hold-s 1] [--repeat-ms 80]` presents each `--tag` in turn, `--gap-s`
apart, and prints one JSON line per presentation (`{"event": "presented", "tag",
"frames"}`); `--bad-checksum` and `--garbage N` send one bad frame / N garbage bytes
before each presentation. Exit 2 when the device cannot be opened or a tag id is
malformed (the message names the value).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import serial

from drivers.readers.serial_rfid import ETX, STX, encode_frame
from terminal.cliargs import positive_number

FRAME_INTERVAL_S = 0.08
DEFAULT_GARBAGE = b"\x00\xffnoise\r\n"


class RfidEmulator:
    def __init__(
        self, device: str, baud: int = 9600, frame_interval_s: float = FRAME_INTERVAL_S
    ) -> None:
        """Raise serial.SerialException when the device cannot be opened."""
        self.frame_interval_s = frame_interval_s
        self.frames_sent = 0
        self._port = serial.Serial(device, baud, write_timeout=1.0)

    def write(self, data: bytes) -> None:
        self._port.write(data)
        self._port.flush()

    def present(self, tag_id: str, hold_s: float) -> int:
        """Send the tag's frame every frame_interval_s for hold_s (at least once);
        return the number of frames sent. ValueError for a malformed tag id."""
        frame = encode_frame(tag_id)
        start_s = time.monotonic()
        sent = 0
        while True:
            self.write(frame)
            sent += 1
            next_s = start_s + sent * self.frame_interval_s
            if next_s - start_s >= hold_s:
                break
            time.sleep(max(0.0, next_s - time.monotonic()))
        self.frames_sent += sent
        return sent

    def send_bad_checksum(self, tag_id: str) -> None:
        """One frame for tag_id whose checksum is off by one bit."""
        frame = bytearray(encode_frame(tag_id))
        good = int(frame[11:13], 16)
        frame[11:13] = f"{good ^ 0x01:02X}".encode("ascii")
        self.write(bytes(frame))

    def send_garbage(self, data: bytes = DEFAULT_GARBAGE) -> None:
        """Raw bytes on the line (line noise; keep STX/ETX out to stay between frames)."""
        self.write(data)

    def close(self) -> None:
        self._port.close()

    def __enter__(self) -> RfidEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def garbage_bytes(count: int) -> bytes:
    """`count` random bytes without STX or ETX."""
    return bytes(b for b in os.urandom(count * 2) if b not in (STX, ETX))[:count].ljust(
        count, b"?"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `evterm sim rfid` (and `python -m hw_mocks.serial_rfid_sim`)."""
    parser.add_argument("--device", required=True, metavar="PTY",
                        help="serial device, e.g. one end of a socat pty pair")
    parser.add_argument("--tag", action="append", required=True, metavar="TAGID",
                        help="10 hex characters; repeat for several presentations")
    parser.add_argument("--repeat-ms", type=positive_number, default=80.0, metavar="MS",
                        help="time between two frames while the tag is held (default 80)")
    parser.add_argument("--hold-s", type=positive_number, default=1.0,
                        help="time each tag stays in the field (default 1)")
    parser.add_argument("--gap-s", type=float, default=1.0,
                        help="time between two presentations (default 1)")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--bad-checksum", action="store_true",
                        help="send one bad-checksum frame before each presentation")
    parser.add_argument("--garbage", type=int, default=0, metavar="N",
                        help="send N garbage bytes before each presentation")


def run(args: argparse.Namespace, name: str = "evterm sim rfid") -> int:
    """Present each tag in turn as the options say, one JSON line per presentation;
    2 (the message on stderr, prefixed with `name`) for a bad option value or a device
    that cannot be opened."""
    problems = []
    for tag in args.tag:
        try:
            encode_frame(tag)
        except ValueError as exc:
            problems.append(f"--tag: {exc}")
    if args.garbage < 0:
        problems.append(f"--garbage: expected a whole number >= 0, got {args.garbage}")
    if problems:
        print(f"{name}: {problems[0]}", file=sys.stderr)
        return 2
    try:
        emulator = RfidEmulator(args.device, args.baud, frame_interval_s=args.repeat_ms / 1000)
    except (serial.SerialException, OSError, ValueError) as exc:
        print(f"{name}: cannot open --device {args.device}: {exc}", file=sys.stderr)
        return 2
    with emulator:
        for index, tag in enumerate(args.tag):
            if index:
                time.sleep(max(0.0, args.gap_s))
            if args.garbage:
                emulator.send_garbage(garbage_bytes(args.garbage))
            if args.bad_checksum:
                emulator.send_bad_checksum(tag)
            frames = emulator.present(tag, args.hold_s)
            print(json.dumps({"event": "presented", "tag": tag.upper(), "frames": frames}),
                  flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hw_mocks.serial_rfid_sim",
        description="Emulate an RDM6300 125 kHz reader on a serial device "
        "(the same as `evterm sim rfid`).",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv), "serial_rfid_sim")


if __name__ == "__main__":
    sys.exit(main())
