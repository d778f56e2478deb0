"""The IEM-DCR driver against the simulator in the same process (HTTP on localhost)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyocmf
import pytest

from drivers.meter import open_meter
from drivers.meter.iem_dcr import HELD_WITHOUT_ID, IemDcr, ocmf_in, parse_meter_time
from drivers.meter.reading import MeterReadError
from drivers.meter.registermap import MeterMapError, load_model
from drivers.meter.signing import ClockSync, Identification, SigningError, TxReason
from drivers.meter.transport import TransportError
from hw_mocks.ev_model import ChargingPoint, Fault, PowerCurve
from hw_mocks.iem_dcr_sim import IemDcrSimulator, serve
from hw_mocks.meter_sim import MeterSimulator
from hw_mocks.ports import free_port

MODEL = "isabellenhuette_iem_dcr"
CARD = Identification(True, "VERIFIED", ("RFID_PLAIN", "OCPP_AUTH"), "ISO14443", "04A1B2C3")


class Meter:
    def __init__(self, sim: IemDcrSimulator, port: int) -> None:
        self.sim = sim
        self.url = f"http://127.0.0.1:{port}?ci=DE*EVT*E0001"

    def driver(self, timeout_s: float = 2.0) -> IemDcr:
        meter = open_meter(MODEL, self.url, timeout_s=timeout_s)
        assert isinstance(meter, IemDcr)
        return meter


def make_sim(tmp_path: Path, faults: list[Fault] | None = None) -> IemDcrSimulator:
    meter = MeterSimulator(model=load_model(MODEL),
                           point=ChargingPoint.charging(PowerCurve(max_power_w=50_000.0)))
    return IemDcrSimulator(meter, state_path=tmp_path / "iem.json", faults=faults)


@pytest.fixture
def iem(tmp_path: Path) -> Iterator[Meter]:
    port = free_port()
    sim = make_sim(tmp_path)
    server = serve(sim, "127.0.0.1", port)
    yield Meter(sim, port)
    server.shutdown()
    server.server_close()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def verified(text: str, key_hex: str) -> pyocmf.OCMF:
    doc = pyocmf.OCMF.from_string(text)
    assert doc.verify_signature(key_hex)
    return doc


def test_snapshot_is_the_import_register_in_wh(iem: Meter) -> None:
    reading = run(iem.driver().read_snapshot())
    values = iem.sim.metervalue()
    assert reading.energy_import_wh == Decimal(values["RD"][0]["RV"]) * 1000
    assert reading.energy_export_wh == Decimal("4321.000")
    assert reading.serial == "1ISA0200000001"
    assert reading.voltage_v is not None and reading.voltage_v > 0


def test_begin_and_end_documents_verify_with_the_meters_key(iem: Meter) -> None:
    async def scenario() -> tuple:
        meter = iem.driver()
        key = await meter.public_key()
        begin = await meter.start_transaction("tx-1", CARD, "0,40 EUR/kWh")
        held = await meter.open_transaction()
        time.sleep(0.3)
        end = await meter.stop_transaction("tx-1")
        return key, begin, held, end, await meter.open_transaction()

    key, begin, held, end, after = run(scenario())
    assert key.meter_serial == "1ISA0200000001"
    assert key.signing_method == "ECDSA-secp256r1-SHA256"
    assert (begin.tx, end.tx, held, after) == (TxReason.BEGIN, TxReason.END, "tx-1", None)
    assert end.pagination_number == begin.pagination_number + 1
    assert begin.identification["ID"] == "04A1B2C3" and begin.tariff_text == "0,40 EUR/kWh"
    assert end.energy_wh >= begin.energy_wh
    verified(begin.ocmf, key.public_key_hex)
    end_doc = verified(end.ocmf, key.public_key_hex)
    assert end_doc.check_eichrecht(errors_only=True) == []
    assert begin.clock is ClockSync.SYNCHRONIZED


def test_start_while_running_is_refused(iem: Meter) -> None:
    async def scenario() -> SigningError:
        meter = iem.driver()
        await meter.start_transaction("tx-1", CARD, "")
        with pytest.raises(SigningError) as caught:
            await meter.start_transaction("tx-2", CARD, "")
        return caught.value

    error = run(scenario())
    assert error.kind == "state" and "metervalue" in error.detail


def test_stop_with_nothing_running_is_a_state_error(iem: Meter) -> None:
    with pytest.raises(SigningError) as caught:
        run(iem.driver().stop_transaction("tx-1"))
    assert caught.value.kind == "state"


def test_abort_after_a_meter_reboot_and_a_new_driver(iem: Meter) -> None:
    run(iem.driver().start_transaction("tx-1", CARD, ""))
    iem.sim.reboot()

    async def recover() -> tuple:
        fresh = iem.driver()  # the terminal restarted too: the driver knows no id
        clock = await fresh._meter_clock()
        held = await fresh.open_transaction()
        end = await fresh.abort_transaction("tx-1", TxReason.POWER_FAILURE)
        return clock, held, end, await fresh.public_key()

    clock, held, end, key = run(recover())
    assert clock.sync is ClockSync.UNSYNCHRONIZED
    assert held == HELD_WITHOUT_ID
    assert end.tx is TxReason.POWER_FAILURE
    assert end.clock is ClockSync.SYNCHRONIZED  # the driver set the time again
    verified(end.ocmf, key.public_key_hex)


def test_clock_state_sets_the_time_after_power_up(iem: Meter) -> None:
    assert iem.sim.core.clock_sync is ClockSync.UNSYNCHRONIZED
    state = run(iem.driver().clock_state())
    assert state.sync is ClockSync.SYNCHRONIZED
    assert iem.sim.gateway == {"CT": "EVSEID", "CI": "DE*EVT*E0001"}


def test_without_a_charge_point_id_the_error_says_what_to_add(iem: Meter) -> None:
    meter = open_meter(MODEL, iem.url.split("?")[0])
    with pytest.raises(SigningError) as caught:
        run(meter.clock_state())  # type: ignore[attr-defined]
    assert caught.value.kind == "refused" and "?ci=" in caught.value.detail


@pytest.mark.parametrize("kind", ["bad_signature", "pagination_gap", "error_flag",
                                  "clock_informative"])
def test_signing_faults_show_in_the_documents(iem: Meter, kind: str) -> None:
    async def scenario() -> tuple:
        meter = iem.driver()
        key = await meter.public_key()
        await meter.start_transaction("tx-1", CARD, "")
        first_end = await meter.stop_transaction("tx-1")
        iem.sim.faults.append(Fault(kind, 0.0))
        iem.sim.tick()
        try:
            second = await meter.start_transaction("tx-2", CARD, "")
        except SigningError as exc:
            return key, first_end, exc
        return key, first_end, second

    key, first_end, second = run(scenario())
    if kind == "error_flag":  # the meter reports an error code: no new transaction
        assert isinstance(second, SigningError) and second.kind == "refused"
        assert "XC" in second.detail
        return
    assert not isinstance(second, SigningError)
    doc = pyocmf.OCMF.from_string(second.ocmf)
    if kind == "bad_signature":
        assert not doc.verify_signature(key.public_key_hex)
    elif kind == "pagination_gap":
        assert second.pagination_number == first_end.pagination_number + 2
    else:
        assert second.clock is ClockSync.INFORMATIVE


def test_disconnect_is_unreachable_for_reads_and_signing(tmp_path: Path) -> None:
    port = free_port()
    sim = make_sim(tmp_path, [Fault("disconnect", 0.0)])
    server = serve(sim, "127.0.0.1", port)
    try:
        meter = Meter(sim, port).driver()
        with pytest.raises(MeterReadError) as read_error:
            run(meter.read_snapshot())
        with pytest.raises(SigningError) as sign_error:
            run(meter.public_key())
    finally:
        server.shutdown()
        server.server_close()
    assert read_error.value.kind == "unreachable" and "metervalue" in read_error.value.detail
    assert sign_error.value.kind == "unreachable" and "publickey" in sign_error.value.detail


def test_no_reply_is_a_timeout(tmp_path: Path) -> None:
    port = free_port()
    sim = make_sim(tmp_path, [Fault("no_reply", 0.0, 1.0)])
    server = serve(sim, "127.0.0.1", port)
    try:
        with pytest.raises(MeterReadError) as caught:
            run(Meter(sim, port).driver(timeout_s=0.3).read_snapshot())
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.kind == "timeout"


def test_nothing_listening_is_unreachable() -> None:
    meter = open_meter(MODEL, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(MeterReadError) as caught:
        run(meter.read_snapshot())
    assert caught.value.kind == "unreachable" and "refused" in caught.value.detail


@pytest.mark.parametrize("url, words", [
    ("tcp://127.0.0.1:502", "speaks HTTP"),
    ("http://127.0.0.1:80/path", "nothing but options"),
    ("http://127.0.0.1:80?pin=1", "unknown option 'pin'"),
    ("http://bad host:80", "bad host"),
])
def test_bad_urls_are_named(url: str, words: str) -> None:
    with pytest.raises(TransportError, match=words):
        open_meter(MODEL, url)


def test_a_missing_signing_key_is_named(tmp_path: Path) -> None:
    text = Path(load_model(MODEL).source).read_text().replace('import_obis = "1-b:1.8.e"', "")
    path = tmp_path / "iem.toml"
    path.write_text(text)
    with pytest.raises(MeterMapError, match=r"signing\.import_obis is required"):
        open_meter(str(path), "http://127.0.0.1:80")


def test_ocmf_is_taken_out_of_a_wrapped_answer() -> None:
    doc = 'OCMF|{"FV":"1.0","TT":"a|b"}|{"SA":"ECDSA-secp256r1-SHA256","SD":"30"}'
    assert ocmf_in(doc) == doc
    assert ocmf_in('{\n "' + doc + '"\n}') == doc
    with pytest.raises(ValueError):
        ocmf_in('{"error": "none"}')


def test_meter_time_text_is_read_back() -> None:
    moment, sync = parse_meter_time("2024-12-16T19:00:22,000+0200 U")
    assert (moment.hour, moment.utcoffset().total_seconds(), sync) == (
        19, 7200.0, ClockSync.UNSYNCHRONIZED)
