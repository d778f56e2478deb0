"""`evterm sim tap`, `evterm sim pcscd`, `evterm sim rfid`: card emulators.

- `sim tap CARD [--reader N] [--hold SECONDS] [--port BASE] [--host H]
  [--remove-after-apdus K]`: a virtual card (hw_mocks.cards: a catalogue name or
  `rfid:<hex uid>`) held in vpcd reader slot N (TCP port BASE + N; BASE defaults to
  Debian's vpcd port 35963) for SECONDS (default 1). Prints one JSON line when the card
  is in the field (`"event": "in_field"`, with `at_monotonic_s`, comparable with
  time.monotonic() of other processes on this machine) and one when it left
  (`"event": "left"`, with `reason`: hold_elapsed, removed_after_apdus or reader_closed).
  With `--remove-after-apdus K` the card answers K commands and leaves at the next one.
  Exit 2 for an unknown card (the message lists the names), 1 when nothing listens on
  the port within `--connect-timeout` seconds.
- `sim pcscd --folder DIR [--readers N] [--port BASE]`: a private pcscd with N vpcd
  slots (hw_mocks.pcscd); prints one JSON ready line (socket, ports, reader names, the
  env for client processes, pid, log file) and runs until SIGTERM/SIGINT. Exit 2 when
  it cannot start (the message names what is missing), 1 when pcscd dies.
- `sim rfid --device PTY --tag TAGID [--repeat-ms MS] ...`: the RDM6300 125 kHz reader
  emulator on a serial device; options and body are hw_mocks.serial_rfid_sim's (the
  same as `python -m hw_mocks.serial_rfid_sim`); one JSON line per presentation. Exit 2
  when the device cannot be opened or a tag id is malformed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from hw_mocks import cards, serial_rfid_sim, vpcd
from terminal.cliargs import positive_number


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 0")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a TCP port 1-65535")
    return int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands."""
    tap = subparsers.add_parser(
        "tap", help="hold a virtual card in a vpcd reader slot",
        description="Cards: " + ", ".join(cards.CARD_NAMES) + ", rfid:<hex uid>.",
    )
    tap.add_argument("card", metavar="CARD", help="catalogue name or rfid:<hex uid>")
    tap.add_argument("--reader", type=_count, default=0, metavar="N",
                     help="reader slot; port = BASE + N (default 0)")
    tap.add_argument("--hold", type=positive_number, default=1.0, metavar="SECONDS",
                     help="time the card stays in the field (default 1)")
    tap.add_argument("--port", type=_port, default=vpcd.DEFAULT_PORT, metavar="BASE",
                     help=f"vpcd port of slot 0 (default {vpcd.DEFAULT_PORT})")
    tap.add_argument("--host", default="127.0.0.1", metavar="H")
    tap.add_argument("--remove-after-apdus", type=_count, default=None, metavar="K",
                     help="answer K commands, then leave the field at the next one")
    tap.add_argument("--connect-timeout", type=positive_number, default=5.0, metavar="SECONDS",
                     help="how long to retry while vpcd does not listen (default 5)")
    tap.set_defaults(func=run_tap)

    pcscd = subparsers.add_parser(
        "pcscd", help="run a private pcscd with vpcd reader slots",
        description="pcscd in its own mount namespace serving DIR/pcscd.comm; clients "
        "use PCSCLITE_CSOCK_NAME=DIR/pcscd.comm (printed in the ready line).",
    )
    pcscd.add_argument("--folder", required=True, metavar="DIR",
                       help="private folder (socket, reader config, log); a short path")
    pcscd.add_argument("--readers", type=_count, default=2, metavar="N",
                       help="reader slots, rounded up to even (default 2)")
    pcscd.add_argument("--port", type=_port, default=None, metavar="BASE",
                       help="vpcd port of slot 0 (default: a free block)")
    pcscd.set_defaults(func=run_pcscd)

    rfid = subparsers.add_parser(
        "rfid", help="RDM6300 125 kHz reader emulator on a serial device",
        description="Writes EM4100 frames as an RDM6300 does while a tag is in the field.",
    )
    serial_rfid_sim.add_arguments(rfid)
    rfid.set_defaults(func=serial_rfid_sim.run)


def _print(**data: object) -> None:
    print(json.dumps(data), flush=True)


def run_tap(args: argparse.Namespace) -> int:
    try:
        card = cards.make_card(args.card)
    except (KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"evterm sim tap: {message}", file=sys.stderr)
        return 2
    try:
        port = vpcd.port_for(args.port, args.reader)
    except ValueError as exc:
        print(f"evterm sim tap: {exc}", file=sys.stderr)
        return 2
    where = {"card": card.name, "reader": args.reader, "host": args.host, "port": port}
    try:
        shown = vpcd.present(
            card, args.host, port, args.hold,
            remove_after_apdus=args.remove_after_apdus,
            connect_timeout_s=args.connect_timeout,
            on_connected=lambda at_s: _print(event="in_field", **where,
                                             at_monotonic_s=at_s),
        )
    except vpcd.VpcdError as exc:
        print(f"evterm sim tap: {exc}", file=sys.stderr)
        return 1
    _print(event="left", **where, reason=shown.reason, apdus=shown.apdus,
           held_s=round(shown.left_at_monotonic_s - shown.connected_at_monotonic_s, 3),
           at_monotonic_s=shown.left_at_monotonic_s)
    return 0


def run_pcscd(args: argparse.Namespace) -> int:
    from hw_mocks.pcscd import PcscdError, PcscdHandle

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        handle = PcscdHandle(args.folder, max(1, args.readers), args.port)
        handle.start()
    except (PcscdError, ValueError, OSError) as exc:
        print(f"evterm sim pcscd: {exc}", file=sys.stderr)
        return 2
    try:
        _print(event="ready", socket=handle.socket_path, base_port=handle.base_port,
               ports=handle.ports, readers=handle.reader_names, env=handle.env,
               pid=handle.pid, log=str(handle.log_path))
        while not stop.wait(0.2):
            if not handle.running:
                print(f"evterm sim pcscd: pcscd exited; see {handle.log_path}",
                      file=sys.stderr)
                return 1
    finally:
        handle.stop()
    return 0
