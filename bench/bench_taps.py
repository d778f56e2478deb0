"""Benchmark of tap-to-decision latency through the real PC/SC stack; one JSON object.

A private pcscd with vpcd, the card emulator in this process (hw_mocks.vpcd, so the
moment the card enters the field is known exactly), the daemon and the station
simulator as processes, and the loopback backend simulator. Each series taps a card
`--taps` times (default 100) and reports p50/p95/max of:

- `field_to_decision_ms`: the card enters the field (vpcd connect) -> the daemon's
  `tap` event arrives at a local-API subscriber. Includes pcscd's presence polling of
  the vpcd slot (0.4 s period: vpcd cannot signal insertions, a USB CCID reader can).
- `seen_to_decision_ms`: the daemon's own `decision_ms` (the reader thread saw the card
  -> decision published): reading the card, authorising or pre-authorising, journaling.

Series: RFID card on the terminal's local list (target p95 < 300 ms including
polling); EMV card read alone, in this process through `PcscReaders` (target < 150 ms);
EMV with pre-authorisation through the loopback backend (target p95 < 600 ms).

Beside them, `zvt_with_preauthorisation` (bench/zvt_series.py): the same decision with
an external ZVT payment terminal (`[payment] terminal = zvt`) against `evterm sim zvt`
as its own process, a tap being the simulator's control-socket `present`:
`present_to_decision_ms` (present -> the daemon's `tap` event at a local-API subscriber:
the Read card answer, token, journal, ZVT pre-authorisation with the simulator's
intermediate statuses), `present_to_card_ms` (-> the `card_present` event: mostly the
simulator's 50 ms card-wait polling) and the daemon's own `decision_ms`; at the
simulator's default speed (no "please wait" time: its zero-delay setting) and, with
`--zvt-slow-s S`, with S seconds of "please wait" statuses per pre-authorisation. Every
session is stopped and its hold reversed before the next tap (target p95 < 600 ms, the
built-in path's, at the default speed).

    .venv/bin/python bench/bench_taps.py [--taps 100] [--series builtin|zvt|all]
                                         [--zvt-slow-s 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stats import summary
from zvt_series import zvt_series

from drivers.readers.reader import queue_emitter
from hw_mocks.backend_process import BackendProcess
from hw_mocks.cards import make_card
from hw_mocks.pcscd import PcscdHandle
from hw_mocks.rig import Rig, Subscriber
from hw_mocks.vpcd import present

TARGET_RFID_P95_MS = 300.0
TARGET_EMV_READ_MS = 150.0
TARGET_EMV_PREAUTH_P95_MS = 600.0
TARGET_ZVT_PREAUTH_P95_MS = 600.0  # the built-in path's target, at the simulator's default
HOLD_S = 0.5  # longer than pcscd's 0.4 s presence poll, so every tap is seen
GAP_S = 0.5  # between two cards in one slot (vpcd: a swap within one poll is missed)
RFID = "rfid-4"
RFID_UID = "1A2B3C4D"




def tap_in_thread(card: str, port: int) -> tuple[threading.Thread, list[float]]:
    """Present `card` for HOLD_S in a thread; returns once it is in the field."""
    connected: list[float] = []
    ready = threading.Event()

    def on_connected(at_s: float) -> None:
        connected.append(at_s)
        ready.set()

    thread = threading.Thread(target=present, args=(make_card(card), "127.0.0.1", port, HOLD_S),
                              kwargs={"on_connected": on_connected}, daemon=True)
    thread.start()
    if not ready.wait(5):
        raise RuntimeError(f"{card}: the vpcd slot at port {port} did not take the card")
    return thread, connected


def daemon_series(rig: Rig, events: Subscriber, port: int, card: str, taps: int,
                  after: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    field_ms: list[float] = []
    seen_ms: list[float] = []
    outcomes: dict[str, int] = {}
    for _ in range(taps):
        mark = events.mark()
        thread, connected = tap_in_thread(card, port)
        outcome = events.tap(mark, timeout_s=10)
        index = events.messages.index(outcome, mark)
        field_ms.append((events.arrival_s[index] - connected[0]) * 1000)
        if outcome.get("decision_ms") is not None:
            seen_ms.append(float(outcome["decision_ms"]))
        outcomes[outcome["reason"]] = outcomes.get(outcome["reason"], 0) + 1
        thread.join()
        after(outcome)
        time.sleep(GAP_S)
    return {"field_to_decision_ms": summary(field_ms),
            "seen_to_decision_ms": summary(seen_ms), "outcomes": outcomes}


def stop_and_wait(rig: Rig) -> Callable[[dict[str, Any]], None]:
    def after(outcome: dict[str, Any]) -> None:
        if outcome["result"] == "accepted":
            rig.api("stop", reason="Local")
            rig.wait_phase("Available", timeout_s=10)

    return after


def bench_emv_read(pcscd: PcscdHandle, taps: int) -> dict[str, Any]:
    """The EMV read alone: PcscReaders in this process, no daemon, no backend."""
    from drivers.readers.events import EmvTap
    from drivers.readers.pcsc import PcscReaders, terminal_params

    params = terminal_params("276", "EUR", Decimal("50.00"))
    read_ms: list[float] = []
    field_ms: list[float] = []

    async def run() -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        readers = PcscReaders(lambda: params, (pcscd.reader_names[1],))
        readers.start(queue_emitter(asyncio.get_running_loop(), queue))
        try:
            while readers.states().get(pcscd.reader_names[1]) != "ready":
                await asyncio.sleep(0.05)
            for _ in range(taps):
                thread, connected = await asyncio.to_thread(tap_in_thread, "visa",
                                                            pcscd.ports[1])
                while True:
                    event = await asyncio.wait_for(queue.get(), 10)
                    if isinstance(event, EmvTap):
                        break
                got_s = time.monotonic()
                read_ms.append((got_s - event.at_monotonic_s) * 1000)
                field_ms.append((got_s - connected[0]) * 1000)
                await asyncio.to_thread(thread.join)
                await asyncio.sleep(GAP_S)
        finally:
            readers.stop()

    asyncio.run(run())
    return {"read_ms": summary(read_ms), "field_to_read_ms": summary(field_ms),
            "note": "read_ms: card seen by the reader thread -> EmvTap on the queue "
                    "(7 APDUs through pcscd and vpcd); field_to_read_ms adds pcscd's polling"}


def builtin_series(folder: Path, taps: int) -> dict[str, Any]:
    """The built-in path's three series: RFID, EMV read alone, EMV with pre-authorisation."""
    pcscd = PcscdHandle(folder / "pcsc", readers=2)
    os.environ["PCSCLITE_CSOCK_NAME"] = pcscd.socket_path  # before any PC/SC call here
    pcscd.start()
    backend = BackendProcess(folder / "bk", [{"id_token": RFID_UID, "status": "Accepted"}])
    backend.start()
    token_key = folder / "token.key"
    token_key.write_text(os.urandom(32).hex())
    rig = Rig(folder / "rig", speed=30.0, poll_interval_s=1.0, extra={
        "readers": {"pcsc": True, "pcsc_socket": pcscd.socket_path,
                    "pcsc_readers": pcscd.reader_names[0]},
        "payment": {"token_key_file": str(token_key),
                    "gateway_key_file": str(backend.gateway_public)},
        "backend": {"kind": "loopback", "socket_path": backend.socket},
    })
    try:
        rig.start_station()
        rig.start_daemon()
        rig.wait_for("the reader", lambda: rig.state()["readers"].get(
            pcscd.reader_names[0]) == "ready", 15)
        backend.admin("push_local_list", update={
            "version": 1, "update_type": "Full",
            "entries": [{"id_token": RFID_UID, "status": "Accepted"}]})
        time.sleep(0.5)
        events = Subscriber(rig.socket_path)
        port = pcscd.ports[0]
        rfid = daemon_series(rig, events, port, RFID, taps, stop_and_wait(rig))
        emv = daemon_series(rig, events, port, "visa", taps, stop_and_wait(rig))
        events.close()
        emv_read = bench_emv_read(pcscd, taps)
    finally:
        rig.close()
        backend.close()
        pcscd.stop()
    return {
        "rfid_local_list": {**rfid, "target_p95_ms": TARGET_RFID_P95_MS,
                            "pass": rfid["field_to_decision_ms"]["p95"] < TARGET_RFID_P95_MS},
        "emv_read_alone": {**emv_read, "target_ms": TARGET_EMV_READ_MS,
                           "pass": emv_read["read_ms"]["p95"] < TARGET_EMV_READ_MS},
        "emv_with_preauthorisation": {
            **emv, "target_p95_ms": TARGET_EMV_PREAUTH_P95_MS,
            "pass": emv["field_to_decision_ms"]["p95"] < TARGET_EMV_PREAUTH_P95_MS},
    }


def zvt_result(folder: Path, taps: int, slow_s: float | None) -> dict[str, Any]:
    """The ZVT series (bench/zvt_series.py) with its target, judged at the default speed."""
    zvt = zvt_series(folder, taps, slow_s)
    p95_ms = zvt["default_speed"]["present_to_decision_ms"]["p95"]
    return {**zvt, "target_p95_ms": TARGET_ZVT_PREAUTH_P95_MS,
            "pass": p95_ms < TARGET_ZVT_PREAUTH_P95_MS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=100)
    parser.add_argument("--series", choices=("all", "builtin", "zvt"), default="all",
                        help="the built-in path's series, the ZVT terminal's, or both")
    parser.add_argument("--zvt-slow-s", type=float, default=None, metavar="S",
                        help='also a ZVT series with S seconds of "please wait" statuses '
                        "per pre-authorisation (the simulator's slow_s, 0 to 600)")
    args = parser.parse_args()
    if args.taps < 1:
        parser.error(f"--taps: {args.taps} is not a count of 1 or more")
    if args.zvt_slow_s is not None and not 0 <= args.zvt_slow_s <= 600:
        parser.error(f"--zvt-slow-s: {args.zvt_slow_s} is not seconds from 0 to 600")
    result: dict[str, Any] = {"benchmark": "taps", "python": platform.python_version(),
                              "taps_per_series": args.taps}
    with tempfile.TemporaryDirectory(prefix="evbt-") as tmp:
        folder = Path(tmp)
        (folder / "b").mkdir()
        (folder / "z").mkdir()
        if args.series in ("all", "builtin"):
            result.update(builtin_series(folder / "b", taps=args.taps))
        if args.series in ("all", "zvt"):
            result["zvt_with_preauthorisation"] = zvt_result(folder / "z", args.taps,
                                                             args.zvt_slow_s)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
