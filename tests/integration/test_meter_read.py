"""`evterm meter read` and the driver against the simulator, every model, TCP and RTU."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from drivers.meter import open_meter
from drivers.meter.monitor import MeterMonitor
from drivers.meter.registermap import load_model

MODELS = ["eastron_sdm630", "carlo_gavazzi_em340", "carlo_gavazzi_em580", "acrel_djsf1352"]
START_WH = 1_000_000
# constant 36 kW at 800 V from the first second: 10 Wh/s, 45 A
CONSTANT = ["--ramp-s", "0", "--constant-s", "3600", "--max-power-w", "36000",
            "--voltage-v", "800", "--start-energy-wh", str(START_WH), "--serial", "77001234"]


def meter_read(url: str, model: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "terminal.cli", "meter", "read", "--model", model, "--url", url,
         *extra],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
@pytest.mark.parametrize("model", MODELS)
def test_meter_read_gives_the_right_values(start_sim, model, transport):
    sim = start_sim(model, transport, *CONSTANT)
    started = time.monotonic()
    result = meter_read(sim.url, model)
    elapsed_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    snap = json.loads(result.stdout)
    assert set(snap) == {"energy_import_wh", "energy_export_wh", "power_w", "voltage_v",
                         "current_a", "timestamp", "serial"}
    resolution = 100 if model.startswith("carlo_gavazzi_em340") else 1
    assert START_WH - resolution <= snap["energy_import_wh"] <= START_WH + 10 * (elapsed_s + 1)
    assert snap["power_w"] == pytest.approx(36000, abs=100)  # Acrel: 100 W steps at dp 5
    assert snap["voltage_v"] == pytest.approx(800, abs=0.1)
    assert snap["current_a"] == pytest.approx(45, abs=0.1)
    has_serial = "serial" in load_model(model).registers
    assert snap["serial"] == ("77001234" if has_serial else None)
    assert snap["energy_export_wh"] == pytest.approx(4321, abs=100)
    assert snap["timestamp"].endswith("Z")


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_watch_prints_one_snapshot_per_poll_with_a_growing_counter(start_sim, transport):
    sim = start_sim("eastron_sdm630", transport, *CONSTANT)
    result = meter_read(sim.url, "eastron_sdm630", "--watch", "--count", "4", "--interval-s", "0.5")
    assert result.returncode == 0, result.stderr
    snaps = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(snaps) == 4
    energies = [s["energy_import_wh"] for s in snaps]
    assert energies == sorted(energies) and energies[-1] > energies[0]
    assert all(s["billable"] and s["fault"] is None for s in snaps)


def test_unreachable_meter_is_one_line_and_exit_2():
    from hw_mocks.ports import free_port

    result = meter_read(f"tcp://127.0.0.1:{free_port()}", "eastron_sdm630")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot connect to tcp://127.0.0.1:" in result.stderr
    assert "connection refused" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "abb_b23", "--url", "tcp://127.0.0.1:502"], "unknown meter model 'abb_b23'"),
        (["--model", "eastron_sdm630", "--url", "modbus://x"], "unsupported meter URL"),
        (["--model", "eastron_sdm630", "--url", "rtu:///dev/ttyUSB0?baud=7"], "baud='7'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "meter", "read", *args],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def poll_for(url: str, model: str, seconds: float, interval_s: float = 0.1,
                   **monitor_kw) -> list:
    meter = open_meter(model, url, timeout_s=0.25)
    monitor = MeterMonitor(meter, **monitor_kw)
    outcomes = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            outcomes.append(await monitor.poll())
            await asyncio.sleep(interval_s)
    finally:
        meter.close()
    return outcomes


# 1 MW: the counter moves ~280 Wh/s, so a frozen counter shows within about a second
FAST = ["--ramp-s", "0", "--constant-s", "3600", "--max-power-w", "1000000"]
RATED_W = 2_000_000


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("fault", "error_kinds"),
    [
        ("no_reply", {"timeout"}),
        ("exception", {"exception"}),
        # TCP: the client sees a bad byte count (garbled) or drops the frame (timeout);
        # RTU: the CRC fails, the frame is dropped, the poll times out
        ("garbled", {"garbled", "timeout", "unreachable"}),
    ],
)
def test_line_faults_become_a_communication_fault_and_clear(
    start_sim, model, transport, fault, error_kinds
):
    sim = start_sim(model, transport, *FAST, "--fault", f"{fault}@0.6+1.2")
    outcomes = asyncio.run(
        poll_for(sim.url, model, 3.0, max_failed_polls=3, rated_power_w=RATED_W)
    )
    before = [o for o in outcomes[:3]]
    assert all(o.billable for o in before), [o.error for o in before]
    failed = [o for o in outcomes if o.reading is None]
    assert len(failed) >= 3
    assert {o.error.split(":")[0] for o in failed} <= error_kinds
    if fault == "exception":
        assert "Modbus exception 4 (device failure)" in failed[0].error
    assert any(o.fault and o.fault.kind == "communication" for o in outcomes)
    assert outcomes[-1].billable and outcomes[-1].fault is None, outcomes[-1]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("fault", "kind"),
    [("frozen", "counter_frozen"), ("jump", "counter_jump"), ("reset", "counter_backwards")],
)
def test_counter_faults_are_reported_and_never_billed(start_sim, model, fault, kind):
    sim = start_sim(model, "tcp", *FAST, "--fault", f"{fault}@0.6")
    outcomes = asyncio.run(
        poll_for(sim.url, model, 2.5, max_failed_polls=3, rated_power_w=RATED_W)
    )
    assert outcomes[0].billable
    faulted = [i for i, o in enumerate(outcomes) if o.fault]
    assert faulted, "the fault was not detected"
    first = faulted[0]
    assert outcomes[first].fault.kind == kind
    assert all(not o.billable for o in outcomes[first:])
    assert all(o.fault and o.fault.kind == kind for o in outcomes[first:])
    good = [o.reading.energy_import_wh for o in outcomes[:first] if o.billable]
    assert good == sorted(good)
