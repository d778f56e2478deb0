"""The IEM-DCR driver against `evterm sim meter --model isabellenhuette_iem_dcr --http`
running as its own process: signed documents, refusals, a power loss, faults."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pyocmf
import pytest

from drivers.meter import open_meter
from drivers.meter.iem_dcr import HELD_WITHOUT_ID, IemDcr
from drivers.meter.reading import MeterReadError
from drivers.meter.signing import ClockSync, Identification, SigningError, TxReason
from hw_mocks.ports import free_port
from hw_mocks.rig import wait_ready

MODEL = "isabellenhuette_iem_dcr"
CARD = Identification(True, "VERIFIED", ("RFID_PLAIN",), "ISO14443", "04A1B2C3")


class SimProcess:
    def __init__(self, proc: subprocess.Popen, ready: dict, port: int) -> None:
        self.proc, self.ready, self.port = proc, ready, port

    def driver(self) -> IemDcr:
        meter = open_meter(MODEL, f"http://127.0.0.1:{self.port}?ci=DE*EVT*E0001",
                           timeout_s=3.0)
        assert isinstance(meter, IemDcr)
        return meter

    def stop(self) -> None:
        self.proc.kill()  # a power loss: no goodbye
        self.proc.wait(timeout=5)


@pytest.fixture
def start_iem(tmp_path: Path) -> Iterator[Callable[..., SimProcess]]:
    procs: list[subprocess.Popen] = []

    def start(*args: str, state: str = "iem.json", port: int = 0) -> SimProcess:
        port = port or free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "sim", "meter", "--model", MODEL,
             "--http", f"127.0.0.1:{port}", "--state", str(tmp_path / state), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return SimProcess(proc, wait_ready(proc, "IEM-DCR simulator"), port)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=5)


def test_a_transaction_verifies_with_the_meters_key(start_iem: Callable[..., SimProcess]
                                                    ) -> None:
    sim = start_iem("--ramp-s", "0", "--clock-speed", "100")  # full power at once

    async def scenario() -> tuple:
        meter = sim.driver()
        key = await meter.public_key()
        begin = await meter.start_transaction("tx-1", CARD, "0,40 EUR/kWh")
        with pytest.raises(SigningError) as refused:
            await meter.start_transaction("tx-2", CARD, "")
        end = await meter.stop_transaction("tx-1")
        return key, begin, refused.value, end

    key, begin, refused, end = asyncio.run(scenario())
    assert key.public_key_hex == sim.ready["public_key"]
    assert refused.kind == "state"
    begin_doc = pyocmf.OCMF.from_string(begin.ocmf)
    end_doc = pyocmf.OCMF.from_string(end.ocmf)
    assert begin_doc.verify_signature(key.public_key_hex)
    assert end_doc.verify_signature(key.public_key_hex)
    assert end_doc.check_eichrecht(errors_only=True) == []
    # the pair check sees the begin reading twice (the end document repeats it)
    assert [i.code for i in begin_doc.check_eichrecht(end_doc, errors_only=True)] == [
        pyocmf.IssueCode.MULTIPLE_BEGIN]
    assert (begin.tx, end.tx) == (TxReason.BEGIN, TxReason.END)
    assert end.energy_wh > begin.energy_wh  # 150 kW from the start, 100 x time


def test_abort_after_a_power_loss(start_iem: Callable[..., SimProcess]) -> None:
    first = start_iem()
    begin = asyncio.run(first.driver().start_transaction("tx-1", CARD, ""))
    first.stop()
    second = start_iem(port=first.port)  # the same meter (state file) powers up again

    async def recover() -> tuple:
        meter = second.driver()
        clock = await meter._meter_clock()
        held = await meter.open_transaction()
        end = await meter.abort_transaction("tx-1", TxReason.POWER_FAILURE)
        return clock, held, end, await meter.public_key(), await meter.open_transaction()

    clock, held, end, key, after = asyncio.run(recover())
    assert clock.sync is ClockSync.UNSYNCHRONIZED
    assert (held, after) == (HELD_WITHOUT_ID, None)
    assert end.tx is TxReason.POWER_FAILURE
    assert end.pagination_number == begin.pagination_number + 1
    assert pyocmf.OCMF.from_string(end.ocmf).verify_signature(key.public_key_hex)


def test_bad_signature_fault(start_iem: Callable[..., SimProcess]) -> None:
    sim = start_iem("--fault", "bad_signature")

    async def scenario() -> tuple:
        meter = sim.driver()
        return await meter.public_key(), await meter.start_transaction("tx-1", CARD, "")

    key, begin = asyncio.run(scenario())
    assert not pyocmf.OCMF.from_string(begin.ocmf).verify_signature(key.public_key_hex)


def test_disconnect_fault_is_unreachable(start_iem: Callable[..., SimProcess]) -> None:
    sim = start_iem("--fault", "disconnect")
    with pytest.raises(MeterReadError) as caught:
        asyncio.run(sim.driver().read_snapshot())
    assert caught.value.kind == "unreachable"


def test_a_modbus_only_fault_or_transport_is_refused_by_name(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "sim", "meter", "--model", MODEL,
         "--tcp", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--http" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "sim", "meter", "--model", "eastron_sdm630",
         "--tcp", f"127.0.0.1:{free_port()}", "--fault", "bad_signature"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "bad_signature" in done.stderr
    assert "Traceback" not in done.stderr


def test_inside_sim_station(tmp_path: Path) -> None:
    """`sim station --meter-http`: the IEM-DCR counts the station's car."""
    from hw_mocks.station_sim import control

    http_port, control_path = free_port(), str(tmp_path / "station.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "terminal.cli", "sim", "station", "--meter-model", MODEL,
         "--tcp", f"127.0.0.1:{free_port()}", "--meter-http", f"127.0.0.1:{http_port}",
         "--control", control_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        ready = wait_ready(proc, "station simulator")
        assert ready["meter_url"] == f"http://127.0.0.1:{http_port}"
        meter = open_meter(MODEL, ready["meter_url"] + "?ci=DE*EVT*E0001", timeout_s=3.0)
        before = asyncio.run(meter.read_snapshot())
        assert control(control_path, {"cmd": "fault", "kind": "disconnect"})["ok"]
        with pytest.raises(MeterReadError) as caught:
            asyncio.run(meter.read_snapshot())
        assert caught.value.kind == "unreachable"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert before.energy_import_wh == Decimal("12345678.000")
