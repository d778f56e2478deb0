"""Meter driver benchmark: throughput, latency and polling cost of ModbusMeter.

What it measures (model eastron_sdm630 unless --model is given):
1. Modbus TCP on loopback: snapshots per second over N sequential read_snapshot()
   calls after a warm-up, and the latency median/p95/p99 in ms.
   Target: >= 500 snapshots/s.
2. Modbus RTU over a socat pty pair at 9600 and 115200 baud (the simulator holds each
   reply for the real line time, since a pty has no baud rate): snapshot latency
   median/p95 in ms beside the theoretical line time of the same exchange (per planned
   block read: request + reply bytes at 11 bits a character plus a 3.5 character gap
   per frame, from hw_mocks.meter_sim.line_time_s), and median latency / line time.
   Target: ratio <= 1.3. For diagnosis it splits the latency above the line time into
   the round trip with the simulator answering at once (`--no-line-time`) and, for
   reference, this machine's asyncio.sleep overshoot (the simulator no longer pays it:
   it holds each reply to an absolute deadline), and repeats the ratio at 115200 baud
   for every shipped model.
3. CPU cost of a MeterMonitor polling the TCP simulator at 1 Hz, measured in this
   process only (time.process_time; the simulator runs in a child process), as percent
   of one core. Target: < 0.5 %.
It also records the Python and pymodbus versions, the machine's cores and, for every
shipped model, the Modbus requests per snapshot.

It starts and stops everything itself (simulators via `python -m terminal.cli sim meter`,
socat in a temporary directory) and only reports: one JSON object on stdout, diagnostics
on stderr, exit status 0 even when a target is missed (1 when the bench itself fails).

Run it from the repository root: `.venv/bin/python bench/bench_meter.py` (or `make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymodbus

from drivers.meter import MeterReadError, open_meter
from drivers.meter.modbus_meter import ModbusMeter
from drivers.meter.monitor import MeterMonitor
from drivers.meter.registermap import available_models, load_model, plan_blocks
from hw_mocks.meter_sim import line_time_s, rtu_read_exchange_bytes
from hw_mocks.ports import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_TCP_SNAPSHOTS_PER_S = 500.0
TARGET_RTU_LATENCY_TO_LINE_TIME_RATIO = 1.3
TARGET_POLL_CPU_PERCENT_OF_CORE = 0.5
SIM_START_TIMEOUT_S = 15.0
PTY_START_TIMEOUT_S = 5.0
RTU_SNAPSHOTS_BY_BAUD = {9600: 40, 115200: 300}


def log(message: str) -> None:
    print(f"bench_meter: {message}", file=sys.stderr, flush=True)


# --- child processes -------------------------------------------------------------------


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 3.0) -> None:
    """Terminate one process we started, then kill it if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace_s)


def read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """First stdout line of `proc`, or "" when none arrives within `timeout_s`."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            return ""
    return proc.stdout.readline()


@contextlib.contextmanager
def meter_sim(model: str, *where: str) -> Iterator[dict[str, Any]]:
    """Run `evterm sim meter --model MODEL WHERE...`; yield its ready event."""
    cmd = [sys.executable, "-m", "terminal.cli", "sim", "meter", "--model", model, *where]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = read_line(proc, SIM_START_TIMEOUT_S)
        ready = json.loads(line) if line.startswith("{") else {}
        if ready.get("event") != "ready":
            raise RuntimeError(f"meter simulator did not start ({' '.join(where)}): {line!r}")
        log(f"simulator ready: {ready['url']} (pid {proc.pid})")
        yield ready
    finally:
        stop_process(proc)


@contextlib.contextmanager
def pty_pair() -> Iterator[tuple[str, str]]:
    """A connected pair of raw ptys made by socat, as symlinks in a temporary dir."""
    socat = shutil.which("socat")
    if socat is None:
        raise RuntimeError("socat not found on PATH")
    with tempfile.TemporaryDirectory(prefix="bench_meter_") as tmp:
        a, b = os.path.join(tmp, "meter"), os.path.join(tmp, "client")
        proc = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + PTY_START_TIMEOUT_S
            while not (os.path.exists(a) and os.path.exists(b)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("socat did not create the pty pair")
                time.sleep(0.02)
            yield a, b
        finally:
            stop_process(proc)


# --- statistics ------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary_ms(latencies_s: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_s)
    return {
        "latency_median_ms": round(statistics.median(ordered) * 1e3, 3),
        "latency_p95_ms": round(percentile(ordered, 0.95) * 1e3, 3),
        "latency_p99_ms": round(percentile(ordered, 0.99) * 1e3, 3),
        "latency_min_ms": round(ordered[0] * 1e3, 3),
        "latency_max_ms": round(ordered[-1] * 1e3, 3),
    }


async def timed_snapshots(meter: ModbusMeter, count: int, warmup: int) -> tuple[list[float], float]:
    """Latencies (s) of `count` sequential snapshots after `warmup`, and their wall time."""
    for _ in range(warmup):
        await meter.read_snapshot()
    latencies_s: list[float] = []
    start_s = time.perf_counter()
    for _ in range(count):
        t0_s = time.perf_counter()
        await meter.read_snapshot()
        latencies_s.append(time.perf_counter() - t0_s)
    return latencies_s, time.perf_counter() - start_s


async def run_snapshots(url: str, model: str, count: int, warmup: int) -> tuple[list[float], float]:
    meter = open_meter(model, url, timeout_s=2.0)
    assert isinstance(meter, ModbusMeter)
    try:
        return await timed_snapshots(meter, count, warmup)
    finally:
        meter.close()


# --- measurements ----------------------------------------------------------------------


def requests_per_snapshot_by_model() -> dict[str, int]:
    """ModbusMeter.requests_per_snapshot of every shipped model (no connection is made)."""
    counts: dict[str, int] = {}
    for key in available_models():
        meter = open_meter(key, "tcp://127.0.0.1:502")
        assert isinstance(meter, ModbusMeter)
        counts[key] = meter.requests_per_snapshot
        meter.close()
    return counts


def bench_tcp(model: str, snapshots: int, warmup: int) -> dict[str, Any]:
    port = free_port()
    with meter_sim(model, "--tcp", f"127.0.0.1:{port}"):
        latencies_s, wall_s = asyncio.run(
            run_snapshots(f"tcp://127.0.0.1:{port}", model, snapshots, warmup)
        )
    rate = snapshots / wall_s
    result: dict[str, Any] = {
        "snapshots": snapshots,
        "warmup_snapshots": warmup,
        "wall_s": round(wall_s, 3),
        "snapshots_per_s": round(rate, 1),
        **latency_summary_ms(latencies_s),
        "target_snapshots_per_s_min": TARGET_TCP_SNAPSHOTS_PER_S,
    }
    result["pass"] = rate >= TARGET_TCP_SNAPSHOTS_PER_S
    log(f"tcp: {rate:.0f} snapshots/s, median {result['latency_median_ms']} ms")
    return result


def rtu_latencies_s(model: str, baud: int, snapshots: int, *, line_time: bool) -> list[float]:
    """Snapshot latencies over a fresh socat pty pair and RTU simulator at `baud`."""
    extra = [] if line_time else ["--no-line-time"]
    with pty_pair() as (meter_end, client_end), meter_sim(
        model, "--rtu", meter_end, "--baud", str(baud), *extra
    ):
        latencies_s, _ = asyncio.run(
            run_snapshots(f"rtu://{client_end}?baud={baud}", model, snapshots, warmup=3)
        )
    return latencies_s


async def sleep_overshoot_median_s(duration_s: float, samples: int) -> float:
    """How much later than asked asyncio.sleep(duration_s) returns (a reference figure:
    the simulator holds each RTU reply to an absolute deadline instead)."""
    overshoots_s: list[float] = []
    for _ in range(samples):
        t0_s = time.perf_counter()
        await asyncio.sleep(duration_s)
        overshoots_s.append(time.perf_counter() - t0_s - duration_s)
    return statistics.median(overshoots_s)


def block_line_times_s(model_key: str, baud: int) -> list[float]:
    """Theoretical RTU line time of each planned block read of one snapshot."""
    model = load_model(model_key)
    blocks = plan_blocks(model.snapshot_registers(), model.max_block_registers)
    return [line_time_s(*rtu_read_exchange_bytes(b.count), baud) for b in blocks]


def rtu_ratio_result(baud: int, latencies_s: list[float], line_s: float) -> dict[str, Any]:
    summary = latency_summary_ms(latencies_s)
    ratio = summary["latency_median_ms"] / (line_s * 1e3)
    return {
        "baud": baud,
        "snapshots": len(latencies_s),
        "line_time_ms": round(line_s * 1e3, 3),
        **{k: summary[k] for k in ("latency_median_ms", "latency_p95_ms", "latency_max_ms")},
        "median_latency_to_line_time_ratio": round(ratio, 3),
        "target_ratio_max": TARGET_RTU_LATENCY_TO_LINE_TIME_RATIO,
        "pass": ratio <= TARGET_RTU_LATENCY_TO_LINE_TIME_RATIO,
    }


def sim_sleep_overshoot_ms(model: str, baud: int) -> float:
    """Summed median overshoot of asyncio.sleep over the snapshot's block line times,
    measured here with the simulator's Python: what the line-time emulation adds."""
    overshoot_s = sum(
        asyncio.run(sleep_overshoot_median_s(t_s, 20 if t_s > 0.05 else 60))
        for t_s in block_line_times_s(model, baud)
    )
    return round(overshoot_s * 1e3, 3)


def rtu_breakdown_ms(model: str, baud: int, median_ms: float, line_s: float) -> dict[str, float]:
    """Where the latency above the line time goes: the round trip with the simulator
    answering at once (client + pymodbus + socat + simulator work, back to back), the
    timer overshoot of the simulator's asyncio.sleep, and the remainder (the same work
    done after an idle wait instead of back to back)."""
    bare_ms = statistics.median(rtu_latencies_s(model, baud, 200, line_time=False)) * 1e3
    overshoot_ms = sim_sleep_overshoot_ms(model, baud)
    above_ms = median_ms - line_s * 1e3
    return {
        "above_line_time_ms": round(above_ms, 3),
        "round_trip_without_line_time_median_ms": round(bare_ms, 3),
        "simulator_sleep_overshoot_median_ms": overshoot_ms,
        "remainder_ms": round(above_ms - bare_ms - overshoot_ms, 3),
    }


def bench_rtu(model: str, baud: int, snapshots: int) -> dict[str, Any]:
    line_s = sum(block_line_times_s(model, baud))
    result = rtu_ratio_result(baud, rtu_latencies_s(model, baud, snapshots, line_time=True), line_s)
    result["breakdown"] = rtu_breakdown_ms(model, baud, result["latency_median_ms"], line_s)
    log(f"rtu {baud}: median {result['latency_median_ms']} ms, line {line_s * 1e3:.2f} ms, "
        f"breakdown {result['breakdown']}")
    return result


def bench_rtu_all_models(baud: int, snapshots: int) -> dict[str, Any]:
    """The latency / line time ratio of every shipped model (short runs)."""
    results: dict[str, Any] = {}
    for key in available_models():
        line_s = sum(block_line_times_s(key, baud))
        latencies_s = rtu_latencies_s(key, baud, snapshots, line_time=True)
        results[key] = rtu_ratio_result(baud, latencies_s, line_s)
        results[key]["requests_per_snapshot"] = len(block_line_times_s(key, baud))
        results[key]["simulator_sleep_overshoot_median_ms"] = sim_sleep_overshoot_ms(key, baud)
        log(f"rtu {baud} {key}: ratio {results[key]['median_latency_to_line_time_ratio']}")
    return results


async def poll_at_1hz(url: str, model: str, duration_s: float) -> dict[str, float]:
    """Poll through a MeterMonitor once a second; CPU and wall time of this process."""
    meter = open_meter(model, url, timeout_s=2.0)
    monitor = MeterMonitor(meter)
    try:
        await monitor.poll()  # connect and read the serial outside the measurement
        polls = int(duration_s)
        loop = asyncio.get_running_loop()
        wall0_s, cpu0_s = time.perf_counter(), time.process_time()
        next_s = loop.time()
        for _ in range(polls):
            next_s += 1.0
            await asyncio.sleep(max(0.0, next_s - loop.time()))
            await monitor.poll()
        cpu_s, wall_s = time.process_time() - cpu0_s, time.perf_counter() - wall0_s
    finally:
        meter.close()
    return {
        "polls": polls,
        "failed_polls": monitor.total_failed_polls,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
    }


def bench_poll_cpu(model: str, duration_s: float) -> dict[str, Any]:
    port = free_port()
    with meter_sim(model, "--tcp", f"127.0.0.1:{port}"):
        raw = asyncio.run(poll_at_1hz(f"tcp://127.0.0.1:{port}", model, duration_s))
    percent = raw["cpu_s"] / raw["wall_s"] * 100
    result: dict[str, Any] = {
        "poll_interval_s": 1.0,
        "polls": raw["polls"],
        "failed_polls": raw["failed_polls"],
        "wall_s": round(raw["wall_s"], 3),
        "cpu_s": round(raw["cpu_s"], 4),
        "cpu_ms_per_poll": round(raw["cpu_s"] / raw["polls"] * 1e3, 3),
        "cpu_percent_of_one_core": round(percent, 4),
        "target_cpu_percent_of_one_core_max": TARGET_POLL_CPU_PERCENT_OF_CORE,
    }
    result["pass"] = percent < TARGET_POLL_CPU_PERCENT_OF_CORE
    log(f"poll cpu: {percent:.3f} % of one core")
    return result


# --- main ------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    return {
        "python_version": platform.python_version(),
        "pymodbus_version": pymodbus.__version__,
        "machine_cores": os.cpu_count(),
        "platform": platform.platform(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="eastron_sdm630")
    parser.add_argument("--tcp-snapshots", type=int, default=2000)
    parser.add_argument("--poll-duration-s", type=float, default=20.0)
    return parser.parse_args()


def raise_on_signals() -> None:
    """Raise at once on SIGINT/SIGTERM so the `finally` clauses stop our children.

    A handler of our own also keeps asyncio.run from turning SIGINT into a task
    cancellation, which pymodbus on Python 3.11 can swallow (asyncio.wait_for race)."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started_s = time.perf_counter()
    report: dict[str, Any] = {"model": args.model, "environment": environment()}
    report["requests_per_snapshot_by_model"] = requests_per_snapshot_by_model()
    report["tcp"] = bench_tcp(args.model, args.tcp_snapshots, warmup=100)
    report["rtu"] = {
        f"{baud}_baud": bench_rtu(args.model, baud, n) for baud, n in RTU_SNAPSHOTS_BY_BAUD.items()
    }
    report["rtu_115200_baud_by_model"] = bench_rtu_all_models(115200, 100)
    report["poll_1hz_cpu"] = bench_poll_cpu(args.model, args.poll_duration_s)
    report["targets_pass"] = {
        "tcp_snapshots_per_s": report["tcp"]["pass"],
        **{f"rtu_{k}_ratio": v["pass"] for k, v in report["rtu"].items()},
        **{
            f"rtu_115200_baud_ratio_{k}": v["pass"]
            for k, v in report["rtu_115200_baud_by_model"].items()
        },
        "poll_1hz_cpu_percent": report["poll_1hz_cpu"]["pass"],
    }
    report["all_pass"] = all(report["targets_pass"].values())
    report["bench_wall_s"] = round(time.perf_counter() - started_s, 1)
    return report


def main() -> int:
    raise_on_signals()
    args = parse_args()
    try:
        report = run(args)
    except (RuntimeError, OSError, MeterReadError) as exc:
        log(f"failed: {type(exc).__name__}: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
