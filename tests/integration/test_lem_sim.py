"""The LEM DCBM 400/600 simulator as a separate process (`evterm sim meter --http`,
`evterm sim station --meter-http`) and the real driver and `evterm meter read` on it:
a whole signed transaction, faults from the command line and from the station's
control socket (disconnect, reboot: the open transaction is aborted with reason P)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pyocmf
import pytest

from drivers.meter import MeterReadError, open_meter
from drivers.meter.signing import Identification, SigningError, TxReason
from hw_mocks.ports import free_port

from .conftest import wait_ready

MODEL = "lem_dcbm400600"
RFID = Identification(True, "VERIFIED", ("RFID_PLAIN",), "ISO14443", "04A2B3C4D5E6F7")
CONSTANT = ["--ramp-s", "0", "--constant-s", "3600", "--max-power-w", "36000",
            "--voltage-v", "800", "--start-energy-wh", "1000000", "--serial", "LEM77"]


@pytest.fixture
def lem_meter():
    """lem_meter(*args) -> (url, ready line): `evterm sim meter --http` on a free port."""
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[str, dict]:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "sim", "meter", "--model", MODEL,
             "--http", f"127.0.0.1:{port}", *CONSTANT, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        ready = wait_ready(proc, "LEM simulator")
        return ready["url"], ready

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=5)


def test_a_signed_transaction_through_the_simulator_process(lem_meter):
    url, ready = lem_meter()
    assert url.startswith("http://127.0.0.1:") and ready["model"] == MODEL

    async def scenario():
        meter = open_meter(MODEL, url, timeout_s=2.0)
        key = await meter.public_key()
        reading = await meter.read_snapshot()
        begin = await meter.start_transaction("tx-int-1", RFID, "0,49 EUR/kWh")
        end = await meter.stop_transaction("tx-int-1")
        return key, reading, begin, end

    key, reading, begin, end = asyncio.run(scenario())
    assert key.public_key_hex == ready["public_key"]
    assert reading.serial == "LEM77" and reading.power_w == 36000
    assert begin.tx is TxReason.BEGIN and end.tx is TxReason.END
    for doc in (begin, end):
        assert pyocmf.OCMF.from_string(doc.ocmf).verify_signature(key.public_key_hex)
    assert begin.energy_wh >= 1_000_000 and end.energy_wh >= begin.energy_wh


def test_meter_read_cli_reads_the_http_meter(lem_meter):
    url, _ = lem_meter()
    result = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "meter", "read", "--model", MODEL, "--url", url],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    snap = json.loads(result.stdout)
    assert snap["serial"] == "LEM77" and snap["power_w"] == 36000
    assert snap["voltage_v"] == 800 and snap["current_a"] == 45
    assert snap["energy_import_wh"] >= 1_000_000


def test_a_disconnect_window_gives_unreachable_for_reads_and_signing(lem_meter):
    url, ready = lem_meter("--fault", "disconnect")
    assert ready["faults"][0]["kind"] == "disconnect"

    async def scenario():
        meter = open_meter(MODEL, url, timeout_s=1.0)
        with pytest.raises(MeterReadError) as read:
            await meter.read_snapshot()
        with pytest.raises(SigningError) as signing:
            await meter.start_transaction("tx", RFID, "")
        return read.value, signing.value

    read, signing = asyncio.run(scenario())
    assert read.kind in ("unreachable", "timeout") and url in read.detail
    assert signing.kind in ("unreachable", "timeout") and "/v1/status" in signing.detail


def test_sim_meter_refuses_wrong_combinations():
    def sim(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "terminal.cli", "sim", "meter", *args],
                              capture_output=True, text=True, timeout=60)

    port = str(free_port())
    modbus = sim("--model", MODEL, "--tcp", f"127.0.0.1:{port}")
    assert modbus.returncode == 2 and "give --http HOST:PORT" in modbus.stderr
    plain = sim("--model", "eastron_sdm630", "--http", f"127.0.0.1:{port}")
    assert plain.returncode == 2 and "has no HTTP API" in plain.stderr
    fault = sim("--model", "eastron_sdm630", "--tcp", f"127.0.0.1:{port}", "--fault", "reboot")
    assert fault.returncode == 2 and "is for signing meters" in fault.stderr


def wait_until_answering(url: str, deadline_s: float = 20.0) -> None:
    """Poll the meter until it answers again (after a reboot window)."""
    async def poll() -> None:
        meter = open_meter(MODEL, url, timeout_s=0.5)
        stop = time.monotonic() + deadline_s
        while True:
            try:
                await meter.read_snapshot()
                return
            except MeterReadError:
                if time.monotonic() > stop:
                    raise
                await asyncio.sleep(0.05)

    asyncio.run(poll())


def test_station_serves_the_lem_api_with_its_energy_and_plays_signing_faults(start_station):
    port = free_port()
    station = start_station("--meter-http", f"127.0.0.1:{port}", *CONSTANT[:8], model=MODEL)
    url = station.meter_url
    assert url == f"http://127.0.0.1:{port}"
    assert station.charger_url.startswith("tcp://")
    station.control("plug")

    async def begin():
        meter = open_meter(MODEL, url, timeout_s=2.0)
        return meter, await meter.public_key(), await meter.start_transaction(
            "tx-station", RFID, "tariff")

    meter, key, begin_doc = asyncio.run(begin())
    assert begin_doc.meter_serial == station.ready["serial"]
    assert key.public_key_hex == station.ready["meter_public_key"]

    station.control("fault", kind="disconnect")

    async def during_disconnect():
        with pytest.raises(MeterReadError) as read:
            await meter.read_snapshot()
        with pytest.raises(SigningError) as signing:
            await meter.open_transaction()
        return read.value, signing.value

    read, signing = asyncio.run(during_disconnect())
    assert read.kind in ("unreachable", "timeout")
    assert signing.kind in ("unreachable", "timeout")
    station.control("clear")

    status = station.control("fault", kind="reboot", duration_s=0.5)
    assert any(f["kind"] == "reboot" for f in status["faults"])
    wait_until_answering(url)

    async def recover():
        open_id = await meter.open_transaction()
        end = await meter.abort_transaction(open_id, TxReason.POWER_FAILURE)
        return open_id, end, await meter.open_transaction()

    open_id, end, after = asyncio.run(recover())
    assert open_id == "tx-station" and after is None
    assert end.tx is TxReason.POWER_FAILURE
    assert pyocmf.OCMF.from_string(end.ocmf).verify_signature(key.public_key_hex)
    assert end.energy_wh >= begin_doc.energy_wh


def test_station_fault_refuses_signing_kinds_for_a_modbus_meter(start_station):
    from hw_mocks.station_sim import control

    station = start_station()
    reply = control(station.control_path, {"cmd": "fault", "kind": "bad_signature"})
    assert reply["ok"] is False and "bad_signature" in reply["error"]
