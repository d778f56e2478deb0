"""`evterm sim station` as its own process, driven through the real charger driver
(ModbusCoilCharger) and the real meter driver, and played through its control socket."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from pymodbus.client import AsyncModbusTcpClient

from drivers.charger import ChargerError, EvState, open_charger
from drivers.meter import MeterReadError, open_meter
from hw_mocks.ev_model import PowerCurve
from hw_mocks.ports import free_port

START_WH = 1_000_000
# 360 kW from the first second at 800 V: 100 Wh/s, 450 A
FAST = ["--ramp-s", "0", "--constant-s", "3600", "--max-power-w", "360000",
        "--voltage-v", "800", "--start-energy-wh", str(START_WH)]


def drivers_for(station, timeout_s: float = 0.5):
    charger = open_charger("modbus_coil", station.charger_url, station.ready["charger_unit"],
                           timeout_s)
    meter = open_meter(station.ready["meter_model"], station.meter_url,
                       station.ready["meter_unit"], timeout_s)
    return charger, meter


def test_ready_line_names_both_devices(start_station):
    station = start_station(*FAST)
    ready = station.ready
    assert ready["event"] == "ready"
    assert ready["meter_url"] == ready["charger_url"]
    assert ready["meter_url"].startswith("tcp://127.0.0.1:")
    assert (ready["meter_unit"], ready["charger_unit"]) == (1, 2)
    assert ready["control"] == station.control_path
    assert ready["serial"] == "20260001"
    assert ready["clock_speed"] == 1.0


def test_plug_output_and_unplug_through_the_real_drivers(start_station):
    station = start_station(*FAST)

    async def scenario() -> None:
        charger, meter = drivers_for(station)
        try:
            status = await charger.status()
            assert (status.ev_state, status.plugged, status.output_on) == (EvState.A, False, False)
            station.control("plug")
            assert (await charger.status()).ev_state == EvState.C
            station.control("suspend")
            assert (await charger.status()).ev_state == EvState.B
            station.control("resume")

            await charger.set_output(True)
            status = await charger.status()
            assert status.output_on and status.output_commanded and status.fault is None
            first = await meter.read_snapshot()
            await asyncio.sleep(0.3)
            second = await meter.read_snapshot()
            assert second.power_w == 360_000 and second.current_a == 450
            assert second.energy_import_wh > first.energy_import_wh

            await charger.set_output(False)
            status = await charger.status()
            assert not status.output_on and not status.output_commanded
            stopped = await meter.read_snapshot()
            await asyncio.sleep(0.3)
            later = await meter.read_snapshot()
            assert later.power_w == 0
            assert later.energy_import_wh == stopped.energy_import_wh

            station.control("unplug")
            assert (await charger.status()).ev_state == EvState.A
        finally:
            charger.close()
            meter.close()

    asyncio.run(scenario())


def test_contactor_faults_show_in_the_feedback(start_station):
    station = start_station(*FAST)

    async def scenario() -> None:
        charger, meter = drivers_for(station)
        try:
            station.control("plug")
            await charger.set_output(True)
            station.control("fault", kind="contactor_welded")
            await charger.set_output(False)
            status = await charger.status()
            assert status.output_commanded is False and status.output_on is True
            assert status.fault is None  # the charger does not know: the feedback tells
            first = await meter.read_snapshot()
            await asyncio.sleep(0.2)
            assert (await meter.read_snapshot()).energy_import_wh > first.energy_import_wh

            station.control("clear")
            assert not (await charger.status()).output_on
            station.control("fault", kind="contactor_stuck_open")
            await charger.set_output(True)
            status = await charger.status()
            assert status.output_commanded is True and status.output_on is False
            assert (await meter.read_snapshot()).power_w == 0
        finally:
            charger.close()
            meter.close()

    asyncio.run(scenario())


def test_charger_error_gives_state_f_and_the_fault_text(start_station):
    station = start_station(*FAST, "--fault", "charger_error@0+0.5")

    async def scenario() -> None:
        charger, _meter = drivers_for(station)
        try:
            status = await charger.status()
            assert status.ev_state == EvState.F and status.fault == "power stage fault"
            await asyncio.sleep(0.6)  # the scheduled error ends
            assert (await charger.status()).ev_state == EvState.A
            station.control("plug")
            await charger.set_output(True)
            station.control("fault", kind="charger_error", code=3)
            status = await charger.status()
            assert status.ev_state == EvState.F and status.fault == "over-temperature"
            assert not status.output_on and status.output_commanded
            station.control("clear")
            status = await charger.status()
            assert status.ev_state == EvState.C and status.output_on and status.fault is None
        finally:
            charger.close()
            _meter.close()

    asyncio.run(scenario())


def test_meter_line_faults_touch_the_meter_only(start_station):
    station = start_station(*FAST)

    async def scenario() -> None:
        charger, meter = drivers_for(station, timeout_s=0.2)
        try:
            station.control("fault", kind="no_reply", duration_s=30)
            with pytest.raises(MeterReadError) as failed:
                await meter.read_snapshot()
            assert failed.value.kind == "timeout"
            assert (await charger.status()).ev_state == EvState.A
            station.control("clear")
            assert (await meter.read_snapshot()).energy_import_wh == START_WH
        finally:
            charger.close()
            meter.close()

    asyncio.run(scenario())


def test_charger_io_rejects_other_addresses_and_unknown_units(start_station):
    station = start_station(*FAST)

    async def scenario() -> None:
        port = int(station.charger_url.rsplit(":", 1)[1])
        client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, timeout=0.5)
        stranger = open_charger("modbus_coil", station.charger_url, 9, 0.5)
        try:
            await client.connect()
            assert (await client.write_coil(1, True, device_id=2)).exception_code == 2
            assert (await client.write_register(0, 1, device_id=2)).exception_code == 2
            assert (await client.read_input_registers(0, count=3, device_id=2)).exception_code == 2
            silent = r"^exception: FC4 read .*exception 11 \(gateway target failed to respond\)"
            with pytest.raises(ChargerError, match=silent + r" \(unit 9 "):
                await stranger.status()
        finally:
            client.close()
            stranger.close()

    asyncio.run(scenario())


def test_charger_driver_reports_unreachable_and_timeout():
    async def scenario() -> None:
        unreachable = open_charger("modbus_coil", f"tcp://127.0.0.1:{free_port()}", 2, 0.3)
        with pytest.raises(ChargerError, match=r"^unreachable: "):
            await unreachable.status()
        unreachable.close()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1024)
            await asyncio.sleep(5)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        charger = open_charger("modbus_coil", f"tcp://127.0.0.1:{port}", 2, 0.3)
        try:
            with pytest.raises(ChargerError, match=r"^timeout: no reply to FC4 read"):
                await charger.status()
            with pytest.raises(ChargerError, match=r"^timeout: no reply to FC5 write of coil 0"):
                await charger.set_output(True)
        finally:
            charger.close()
            server.close()

    asyncio.run(scenario())


def test_control_errors_are_answered_and_the_station_keeps_running(start_station):
    station = start_station(*FAST)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as first, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as second:
        first.settimeout(5)
        second.settimeout(5)
        first.connect(station.control_path)
        second.connect(station.control_path)  # two clients at once
        first.sendall(b'{not json\n{"cmd": "dance"}\n{"cmd": "fault", "kind": "meltdown"}\n')
        second.sendall(b'{"cmd": "status"}\n')
        replies = b""
        while replies.count(b"\n") < 3:
            replies += first.recv(65536)
        bad_json, unknown, bad_kind = (json.loads(line) for line in replies.splitlines())
        assert bad_json["ok"] is False and "bad JSON" in bad_json["error"]
        assert unknown == {"ok": False,
                           "error": "unknown cmd 'dance'; allowed: plug, unplug, suspend, "
                                    "resume, fault, clear, status"}
        assert bad_kind["ok"] is False and "unknown kind 'meltdown'" in bad_kind["error"]
        assert json.loads(second.makefile().readline())["ok"] is True
    status = station.control("status")
    assert status["ev_state"] == "A" and status["faults"] == []


def sim_ev(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "terminal.cli", "sim", "ev", *args],
                          capture_output=True, text=True, timeout=30)


def test_sim_ev_cli_prints_the_reply_or_one_line_and_exit_2(start_station, tmp_path):
    station = start_station(*FAST)
    result = sim_ev("plug", "--max-power-w", "7200", "--control", station.control_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"]["ev_state"] == "C"
    result = sim_ev("fault", "charger_error", "--code", "5", "--duration-s", "60",
                    "--control", station.control_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"]["charger_fault"] == "output overvoltage"
    result = sim_ev("fault", "meltdown", "--control", station.control_path)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unknown kind 'meltdown'" in result.stderr
    result = sim_ev("status", "--control", str(tmp_path / "absent.sock"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"evterm sim ev status: {tmp_path / 'absent.sock'}: No such file or directory"
    ]


def timed(call: Callable[[], dict]) -> tuple[dict, float]:
    """(result, real time at the middle of the call)."""
    before = time.monotonic()
    result = call()
    return result, (before + time.monotonic()) / 2


def energy_slope(station, seconds: float) -> tuple[float, float, float]:
    """Wh per real second and simulated seconds per real second, from two status
    replies `seconds` apart; and Wh per simulated second."""
    first, first_at = timed(lambda: station.control("status"))
    time.sleep(seconds)
    second, second_at = timed(lambda: station.control("status"))
    energy_wh = second["energy_import_wh"] - first["energy_import_wh"]
    sim_s = second["t_s"] - first["t_s"]
    return energy_wh / (second_at - first_at), sim_s / (second_at - first_at), energy_wh / sim_s


def test_clock_speed_60_runs_the_counter_60_times_faster(start_station):
    # 36 kW: 10 Wh per simulated second
    args = ["--ramp-s", "0", "--constant-s", "36000", "--max-power-w", "36000"]
    slow = start_station(*args)
    fast = start_station(*args, "--clock-speed", "60", "--clock-anchor", str(time.time()))
    assert fast.ready["clock_speed"] == 60
    for station in (slow, fast):
        station.control("plug")

    async def switch_on() -> None:
        for station in (slow, fast):
            charger = open_charger("modbus_coil", station.charger_url, 2, 0.5)
            await charger.set_output(True)
            charger.close()

    asyncio.run(switch_on())
    slow_wh_per_s, slow_time, slow_model = energy_slope(slow, 0.5)
    fast_wh_per_s, fast_time, fast_model = energy_slope(fast, 0.5)
    assert slow_model == pytest.approx(10, rel=1e-6)  # the model, per simulated second
    assert fast_model == pytest.approx(10, rel=1e-6)
    assert slow_time == pytest.approx(1, rel=0.1)
    assert fast_time == pytest.approx(60, rel=0.1)
    assert fast_wh_per_s / slow_wh_per_s == pytest.approx(60, rel=0.1)

    async def meter_slope() -> float:
        """Wh per real second through the meter driver."""
        meter = open_meter("carlo_gavazzi_em580", fast.meter_url, timeout_s=0.5)
        try:
            samples = []
            for pause_s in (0.5, 0):
                before = time.monotonic()
                reading = await meter.read_snapshot()
                samples.append((float(reading.energy_import_wh), (before + time.monotonic()) / 2))
                await asyncio.sleep(pause_s)
            (first_wh, first_at), (second_wh, second_at) = samples
            return (second_wh - first_wh) / (second_at - first_at)
        finally:
            meter.close()

    assert asyncio.run(meter_slope()) == pytest.approx(600, rel=0.1)


def test_delivered_per_plug_equals_the_meter_delta(start_station):
    station = start_station(*FAST)
    second_curve = PowerCurve(max_power_w=100_000, ramp_s=2, constant_s=60)

    async def charge(charger, meter, seconds: float) -> int:
        await charger.set_output(True)
        await asyncio.sleep(seconds)
        await charger.set_output(False)  # nothing flows between the reads below
        return int((await meter.read_snapshot()).energy_import_wh)

    async def scenario() -> list[int]:
        charger, meter = drivers_for(station)
        try:
            counters = [int((await meter.read_snapshot()).energy_import_wh)]
            station.control("plug")
            counters.append(await charge(charger, meter, 0.4))
            station.control("unplug")
            station.control("plug", max_power_w=second_curve.max_power_w,
                            ramp_s=second_curve.ramp_s, constant_s=second_curve.constant_s)
            counters.append(await charge(charger, meter, 0.4))
            station.control("unplug")
            return counters
        finally:
            charger.close()
            meter.close()

    counters = asyncio.run(scenario())
    status = station.control("status")
    first, second = status["plugs"]
    assert counters[0] == START_WH
    assert first["delivered_wh"] > 20 and second["delivered_wh"] > 1
    # the meter's integer Wh register floors the exact counter: to the Wh
    assert counters[1] == math.floor(START_WH + first["delivered_wh"])
    assert counters[2] == math.floor(status["energy_import_wh"])
    assert status["energy_import_wh"] == pytest.approx(
        START_WH + first["delivered_wh"] + second["delivered_wh"], abs=1e-6)
    assert abs((counters[2] - counters[1]) - second["delivered_wh"]) < 1
    assert second["ev_time_s"] < 2  # still in its ramp: its own curve, from its own start
    assert second["delivered_wh"] == pytest.approx(
        second_curve.energy_wh(second["ev_time_s"]), rel=1e-9)


def test_sim_meter_runs_curve_and_fault_windows_in_simulated_seconds(start_sim):
    # at 60x the no_reply window 30..60 simulated seconds is 0.5..1.0 s of real time
    sim = start_sim("carlo_gavazzi_em580", "tcp", "--clock-speed", "60", "--ramp-s", "0",
                    "--max-power-w", "36000", "--start-energy-wh", str(START_WH),
                    "--fault", "no_reply@30+30")
    assert sim.ready["clock_speed"] == 60

    async def scenario() -> list[str]:
        meter = open_meter("carlo_gavazzi_em580", sim.url, timeout_s=0.1)
        outcomes = []
        started = time.monotonic()
        try:
            for at_s in (0.2, 0.75, 1.3):
                await asyncio.sleep(max(0.0, started + at_s - time.monotonic()))
                try:
                    reading = await meter.read_snapshot()
                    outcomes.append(f"{reading.energy_import_wh - START_WH}")
                except MeterReadError as exc:
                    outcomes.append(exc.kind)
        finally:
            meter.close()
        return outcomes

    first, during, after = asyncio.run(scenario())
    assert during == "timeout"
    # 600 Wh per real second: about 120 Wh after 0.2 s, about 780 Wh after 1.3 s
    assert 60 <= int(first) <= 400
    assert 700 <= int(after) <= 1100
