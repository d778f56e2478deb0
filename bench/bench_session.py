"""Benchmark of the session engine; prints one JSON object to stdout.

1. Journal commit latency: one session step per commit (a meter reading, the connector
   state, a transaction event every 60th step) into SQLite with WAL and
   synchronous=FULL, on this machine's disk. Target p99 < 20 ms.
2. The daemon as a process against the station simulator (30x clock): time from
   process start to its ready line (target < 2 s) and its resident memory (VmRSS and
   peak VmHWM) during a charging session (target < 60 MB).

    .venv/bin/python bench/bench_session.py [--commits 2000] [--session-s 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stats import percentile

from hw_mocks.rig import Rig
from terminal.session import Tick, state_to_json, step
from terminal.store import Store
from tests.unit.session_helpers import RULES, T0, Driver, charger, reading

TARGET_COMMIT_P99_MS = 20.0
TARGET_READY_S = 2.0
TARGET_RSS_MB = 60.0



def bench_commits(folder: Path, commits: int) -> dict[str, object]:
    store = Store.open(folder / "bench.db")
    d = Driver()
    first = d.authorize(0)
    store.commit(first.records, state_to_json(first.state), session_id="S-1", at=T0)
    offered = d.tick(1, 10_000, 0)
    store.commit(offered.records, state_to_json(offered.state), session_id="S-1", at=T0)
    latencies_ms = []
    state = offered.state
    for i in range(commits):
        tick = Tick(reading(2 + i, 10_000 + 40 * i, 150_000).timestamp,
                    reading(2 + i, 10_000 + 40 * i, 150_000), None, charger("C", True))
        result = step(state, tick, RULES)
        state = result.state
        started = time.perf_counter()
        store.commit(result.records, state_to_json(state), session_id="S-1", at=tick.at)
        latencies_ms.append((time.perf_counter() - started) * 1000)
    rows = store.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    store.close()
    return {
        "commits": commits,
        "readings_rows": rows,
        "median_ms": round(statistics.median(latencies_ms), 3),
        "p99_ms": round(percentile(latencies_ms, 0.99), 3),
        "max_ms": round(max(latencies_ms), 3),
        "target_p99_ms": TARGET_COMMIT_P99_MS,
        "pass": percentile(latencies_ms, 0.99) < TARGET_COMMIT_P99_MS,
    }


def memory_kb(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def bench_daemon(folder: Path, session_s: float) -> dict[str, object]:
    with Rig(folder / "rig", speed=30.0, poll_interval_s=1.0) as rig:
        rig.start_station()
        started = time.monotonic()
        rig.start_daemon()
        ready_s = time.monotonic() - started
        assert rig.daemon is not None
        pid = rig.daemon.pid
        rig.api("start", id_token="BENCH")
        rig.ev("plug")
        rig.wait_phase("Charging")
        samples = []
        deadline = time.monotonic() + session_s
        while time.monotonic() < deadline:
            samples.append(memory_kb(pid))
            time.sleep(0.5)
        state = rig.state()
        rss_mb = max(s["VmRSS"] for s in samples) / 1024
        hwm_mb = max(s["VmHWM"] for s in samples) / 1024
    return {
        "ready_s": round(ready_s, 3),
        "target_ready_s": TARGET_READY_S,
        "session_simulated_s": round(session_s * 30),
        "session_energy_wh": state["energy_wh"],
        "rss_max_mb": round(rss_mb, 1),
        "rss_peak_hwm_mb": round(hwm_mb, 1),
        "target_rss_mb": TARGET_RSS_MB,
        "pass": ready_s < TARGET_READY_S and hwm_mb < TARGET_RSS_MB,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--session-s", type=float, default=20.0,
                        help="real seconds of charging to watch the daemon's memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evbench-") as tmp:
        folder = Path(tmp)
        result = {
            "benchmark": "session",
            "python": platform.python_version(),
            "sqlite": __import__("sqlite3").sqlite_version,
            "journal_commit": bench_commits(folder, args.commits),
            "daemon": bench_daemon(folder, args.session_s),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
