"""Benchmark of signed metering's latency; prints one JSON object to stdout.

With the rig at clock speed 1.0 (real time) and a short poll interval, for a Modbus
meter (carlo_gavazzi_em580) and the LEM DCBM 400/600 signing meter (its HTTP API
served by the station simulator), N sessions each with the car already plugged in:
- start -> output on: from the local API's `start` to the station reporting the
  charger output commanded on (the signing meter's begin is signed and journaled in
  between);
- stop -> output off: from the local API's `stop` to the output commanded off;
- unplug -> signed end journaled (signing meter only; its transaction runs until the
  session closes): from the unplug to the end document in the journal
  (signed_values).
One warm-up session per meter is not counted. Target: the signing meter adds less
than 300 ms to tap -> output on (p95 of the signing meter minus p95 of the Modbus
meter).

    .venv/bin/python bench/bench_signed.py [--sessions 20] [--poll-interval-s 0.25]
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stats import summary

from hw_mocks.rig import Rig

TARGET_ADDED_P95_MS = 300.0
MODBUS_METER = "carlo_gavazzi_em580"
SIGNING_METER = "lem_dcbm400600"
WARMUP_SESSIONS = 1  # not counted: the daemon's first session (imports, connections)
WATCH_S = 0.002  # how often the station and the journal are looked at


def wait_until(what: str, predicate: Callable[[], bool], timeout_s: float = 10.0) -> float:
    """time.monotonic() when `predicate` first held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(WATCH_S)
    raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")


def end_journaled(rig: Rig, session_id: str) -> bool:
    conn = sqlite3.connect(f"file:{rig.database}?mode=ro", uri=True, timeout=1.0)
    try:
        row = conn.execute("SELECT 1 FROM signed_values WHERE session_id = ? AND kind = 'end'",
                           (session_id,)).fetchone()
        return row is not None
    finally:
        conn.close()


def output_commanded(rig: Rig) -> bool:
    return bool(rig.ev("status")["output_commanded"])


def bench_meter(folder: Path, model: str, sessions: int, poll_interval_s: float
                ) -> dict[str, object]:
    signs = model == SIGNING_METER
    start_ms: list[float] = []
    stop_off_ms: list[float] = []
    stop_signed_ms: list[float] = []
    with Rig(folder / model, meter_model=model, speed=1.0, poll_interval_s=poll_interval_s,
             session={"ev_power_timeout_s": 600}) as rig:
        rig.start_station()
        rig.start_daemon()
        rig.ev("plug")
        for number in range(WARMUP_SESSIONS + sessions):
            if number == WARMUP_SESSIONS:  # the first session warms the daemon up
                start_ms.clear(), stop_off_ms.clear(), stop_signed_ms.clear()
            rig.wait_phase("Available", timeout_s=15)
            began = time.monotonic()
            reply = rig.api("start", id_token="BENCH")
            if not reply.get("ok"):
                raise RuntimeError(f"start refused: {reply}")
            session_id = str(reply["session_id"])
            on = wait_until("output on", lambda: output_commanded(rig))
            start_ms.append((on - began) * 1000)
            rig.wait_phase("Charging", "SuspendedEV", "SuspendedEVSE", timeout_s=15)
            stopped = time.monotonic()
            if not rig.api("stop", session_id=session_id).get("ok"):
                raise RuntimeError("stop refused")
            off = wait_until("output off", lambda: not output_commanded(rig))
            stop_off_ms.append((off - stopped) * 1000)
            rig.wait_phase("Finishing", "Completed", timeout_s=15)
            unplugged = time.monotonic()
            rig.ev("unplug")
            if signs:  # the meter's transaction ends when the session closes
                signed = wait_until("the signed end",
                                    lambda sid=session_id: end_journaled(rig, sid))
                stop_signed_ms.append((signed - unplugged) * 1000)
            rig.wait_phase("Available", timeout_s=15)
            rig.ev("plug")
    result: dict[str, object] = {
        "meter_model": model,
        "start_to_output_on_ms": summary(start_ms),
        "stop_to_output_off_ms": summary(stop_off_ms),
    }
    if signs:
        result["unplug_to_signed_end_journaled_ms"] = summary(stop_signed_ms)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--poll-interval-s", type=float, default=0.25)
    args = parser.parse_args()
    if args.sessions < 1 or args.poll_interval_s <= 0:
        parser.error("--sessions must be at least 1 and --poll-interval-s above 0")
    with tempfile.TemporaryDirectory(prefix="evbench-") as tmp:
        folder = Path(tmp)
        modbus = bench_meter(folder, MODBUS_METER, args.sessions, args.poll_interval_s)
        signing = bench_meter(folder, SIGNING_METER, args.sessions, args.poll_interval_s)
    added = {q: round(signing["start_to_output_on_ms"][q]  # type: ignore[index]
                      - modbus["start_to_output_on_ms"][q], 1)  # type: ignore[index]
             for q in ("p50", "p95")}
    print(json.dumps({
        "benchmark": "signed",
        "python": platform.python_version(),
        "clock_speed": 1.0,
        "poll_interval_s": args.poll_interval_s,
        "modbus": modbus,
        "signing": signing,
        "signed_start_added_ms": added,
        "target_added_p95_ms": TARGET_ADDED_P95_MS,
        "pass": added["p95"] < TARGET_ADDED_P95_MS,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
