"""The LEM DCBM 400/600 driver (drivers/meter/lem_dcbm.py) against the HTTP simulator
(hw_mocks/lem_sim.py) in this process on a free port: live values, key, clock, signed
begin/end documents (verified with pyocmf), refusals, recovery after a power loss and
errors that name the request."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pyocmf
import pytest

from drivers.meter import MeterMapError, MeterReadError, open_meter
from drivers.meter.http_client import parse_http_url, request
from drivers.meter.lem_dcbm import LemDcbm, spki_hex
from drivers.meter.registermap import load_model, parse_model
from drivers.meter.signing import ClockSync, Identification, SigningError, TxReason
from hw_mocks.ev_model import ChargingPoint, Fault, PowerCurve
from hw_mocks.lem_sim import LemHttpServer, LemSim
from hw_mocks.meter_sim import MeterSimulator
from hw_mocks.ports import free_port

MODEL = "lem_dcbm400600"
START_WH = 2_000_000.0
RFID = Identification(True, "VERIFIED", ("RFID_PLAIN", "OCPP_AUTH"), "ISO14443", "04A2B3C4D5E6F7")
TARIFF = "0,49 EUR/kWh"


@contextlib.asynccontextmanager
async def running_meter(**curve: float) -> AsyncIterator[tuple[LemSim, LemDcbm]]:
    """The simulator (a car drawing 36 kW at 800 V from the start) and a driver on it."""
    shape = {"ramp_s": 0.0, "max_power_w": 36_000.0, "voltage_v": 800.0, **curve}
    meter = MeterSimulator(model=load_model(MODEL),
                           point=ChargingPoint.charging(PowerCurve(**shape)),
                           start_energy_wh=START_WH, serial="LEM0042")
    sim = LemSim(meter)
    server = LemHttpServer(sim, "127.0.0.1", free_port())
    await server.start()
    driver = open_meter(MODEL, server.url, timeout_s=0.5)
    assert isinstance(driver, LemDcbm)
    try:
        yield sim, driver
    finally:
        driver.close()
        await server.close()


def run(scenario: Callable[[LemSim, LemDcbm], Awaitable[Any]], **curve: float) -> Any:
    async def main() -> Any:
        async with running_meter(**curve) as (sim, driver):
            return await scenario(sim, driver)

    return asyncio.run(main())


def parsed(text: str) -> pyocmf.OCMF:
    return pyocmf.OCMF.from_string(text)


def eichrecht_errors(begin: str, end: str) -> list[str]:
    """pyocmf's errors for the transaction: the end document holds the begin reading
    and the end reading (as LEM's does), so it is checked as a whole; the begin
    document's reading must be its begin reading, unchanged."""
    b, e = parsed(begin), parsed(end)
    problems = [str(i) for i in e.check_eichrecht(errors_only=True)]
    if b.payload.RD[0] != e.payload.RD[0]:
        problems.append("the begin reading differs between the documents")
    return problems


def test_snapshot_gives_the_live_values_in_wh_w_v_a():
    async def scenario(sim, driver):
        return await driver.read_snapshot()

    reading = run(scenario)
    assert Decimal(START_WH) <= reading.energy_import_wh <= Decimal(START_WH) + 100
    assert reading.energy_import_wh == reading.energy_import_wh.quantize(Decimal(1))  # 1 Wh
    assert reading.power_w == 36_000
    assert reading.voltage_v == 800
    assert reading.current_a == 45
    assert reading.energy_export_wh == 4321
    assert reading.serial == "LEM0042"


def test_public_key_is_the_meters_der_key_and_a_bare_point_is_converted():
    async def scenario(sim, driver):
        return sim, await driver.public_key()

    sim, key = run(scenario)
    assert key.public_key_hex == sim.core.public_key_hex
    assert key.public_key_hex.startswith("3059301306072A8648CE3D0201")
    assert key.signing_method == "ECDSA-secp256r1-SHA256"
    assert key.meter_serial == "LEM0042"
    bare = sim.core.public_key_hex[-128:]  # X||Y as LEM's /status publicKey
    assert spki_hex(bare, "secp256r1") == sim.core.public_key_hex
    assert spki_hex("04" + bare, "secp256r1") == sim.core.public_key_hex
    with pytest.raises(ValueError):
        spki_hex("04" + bare[:-2], "secp256r1")


def test_begin_and_end_documents_verify_and_carry_the_identification_and_tariff():
    async def scenario(sim, driver):
        key = await driver.public_key()
        begin = await driver.start_transaction("tx-0001", RFID, TARIFF)
        await asyncio.sleep(0.2)
        end = await driver.stop_transaction("tx-0001")
        return key, begin, end

    key, begin, end = run(scenario)
    assert begin.tx is TxReason.BEGIN and end.tx is TxReason.END
    b, e = parsed(begin.ocmf), parsed(end.ocmf)
    assert b.verify_signature(key.public_key_hex)
    assert e.verify_signature(key.public_key_hex)
    assert eichrecht_errors(begin.ocmf, end.ocmf) == []
    assert [r.TX for r in e.payload.RD] == ["B", "E"]
    assert begin.identification == {"IS": True, "IL": "VERIFIED",
                                    "IF": ["RFID_PLAIN", "OCPP_AUTH"], "IT": "ISO14443",
                                    "ID": "04A2B3C4D5E6F7"}
    assert begin.tariff_text == TARIFF == end.tariff_text
    assert begin.meter_serial == "LEM0042"
    assert end.pagination_number == begin.pagination_number + 1
    assert Decimal(START_WH) <= begin.energy_wh <= end.energy_wh
    assert begin.clock is ClockSync.SYNCHRONIZED


def test_start_while_running_is_refused_by_the_meter_and_by_the_driver():
    async def scenario(sim, driver):
        await driver.start_transaction("tx-A", RFID, TARIFF)
        raw = await request(parse_http_url(driver.endpoint.describe()), "POST", "/v2/legal",
                            {"evseId": "", "transactionId": "tx-B", "clientId": "x",
                             "tariffId": 0, "cableId": 0, "userData": ""})
        with pytest.raises(SigningError) as refused:
            await driver.start_transaction("tx-B", RFID, TARIFF)
        return raw, refused.value, await driver.open_transaction()

    raw, refused, still_open = run(scenario)
    assert raw.status == 400 and "tx-A is on going" in raw.text()
    assert refused.kind == "state" and "'tx-A'" in refused.detail
    assert still_open == "tx-A"  # nothing was ended implicitly


def test_after_a_reboot_the_open_transaction_is_found_and_aborted_with_reason_p():
    async def scenario(sim, driver):
        key = await driver.public_key()
        begin = await driver.start_transaction("tx-lost", RFID, TARIFF)
        sim.reboot()  # power lost during the transaction
        clock = await driver.clock_state()
        open_id = await driver.open_transaction()
        end = await driver.abort_transaction(open_id, TxReason.POWER_FAILURE)
        after = await driver.open_transaction()
        # the next start sets the meter's clock first (LEM refuses a start without)
        nxt = await driver.start_transaction("tx-next", RFID, TARIFF)
        return key, begin, clock, open_id, end, after, nxt, await driver.clock_state()

    key, begin, clock, open_id, end, after, nxt, clock_after = run(scenario)
    assert clock.sync is ClockSync.UNSYNCHRONIZED
    assert open_id == "tx-lost"
    assert end.tx is TxReason.POWER_FAILURE
    assert parsed(end.ocmf).verify_signature(key.public_key_hex)
    assert eichrecht_errors(begin.ocmf, end.ocmf) == []
    assert after is None
    assert nxt.clock is ClockSync.SYNCHRONIZED and clock_after.sync is ClockSync.SYNCHRONIZED


def test_a_stop_whose_answer_was_lost_gives_the_same_end_document_again():
    async def scenario(sim, driver):
        await driver.start_transaction("tx-1", RFID, TARIFF)
        first = await driver.stop_transaction("tx-1")
        again = await driver.stop_transaction("tx-1")
        with pytest.raises(SigningError) as other:
            await driver.stop_transaction("tx-unknown")
        return first, again, other.value

    first, again, other = run(scenario)
    assert again.ocmf == first.ocmf
    assert other.kind == "state" and "'tx-unknown'" in other.detail and "'tx-1'" in other.detail


def test_errors_name_the_request_and_the_http_status():
    async def scenario(sim, driver):
        out = {}
        await driver.public_key()  # the API version (/v2) is learnt from /v1/status
        with pytest.raises(SigningError) as missing:
            await driver._document("nope")
        out["missing"] = missing.value
        sim.meter.add_fault(Fault("exception"))
        with pytest.raises(MeterReadError) as failed:
            await driver.read_snapshot()
        out["exception"] = failed.value
        with pytest.raises(SigningError) as refused:
            await driver.public_key()
        out["refused"] = refused.value
        sim.meter.faults.clear()
        sim.meter.add_fault(Fault("garbled"))
        with pytest.raises(MeterReadError) as garbled:
            await driver.read_snapshot()
        out["garbled"] = garbled.value
        sim.meter.faults.clear()
        sim.meter.add_fault(Fault("no_reply"))
        with pytest.raises(MeterReadError) as silent:
            await driver.read_snapshot()
        out["timeout"] = silent.value
        sim.meter.faults.clear()
        sim.meter.add_fault(Fault("disconnect"))
        with pytest.raises(MeterReadError) as dropped:
            await driver.read_snapshot()
        out["disconnect"] = dropped.value
        with pytest.raises(SigningError) as dropped_signing:
            await driver.open_transaction()
        out["disconnect_signing"] = dropped_signing.value
        return out

    out = run(scenario)
    assert out["missing"].kind == "refused"
    assert "GET /v2/ocmf?transactionId=nope: HTTP 404 Not Found" in out["missing"].detail
    assert out["exception"].kind == "exception"
    assert "GET /v2/livemeasure: HTTP 500 Internal Server Error" in out["exception"].detail
    assert out["refused"].kind == "refused" and "/v1/status: HTTP 500" in out["refused"].detail
    assert out["garbled"].kind == "garbled" and "/v2/livemeasure" in out["garbled"].detail
    assert out["timeout"].kind == "timeout" and "no answer within 0.5 s" in out["timeout"].detail
    assert out["disconnect"].kind == "unreachable"
    assert "/v2/livemeasure" in out["disconnect"].detail  # closed or reset, no answer
    assert "connection" in out["disconnect"].detail
    assert out["disconnect_signing"].kind == "unreachable"


def test_nothing_listening_is_unreachable_with_the_reason():
    async def scenario():
        driver = open_meter(MODEL, f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
        with pytest.raises(MeterReadError) as failed:
            await driver.read_snapshot()
        return failed.value

    failed = asyncio.run(scenario())
    assert failed.kind == "unreachable" and "connection refused" in failed.detail


def test_too_long_identification_is_not_sent():
    async def scenario(sim, driver):
        long_id = Identification(True, "VERIFIED", (), "CENTRAL", "X" * 38)
        with pytest.raises(SigningError) as refused:
            await driver.start_transaction("tx-1", long_id, TARIFF)
        return refused.value, await driver.open_transaction()

    refused, open_id = run(scenario)
    assert refused.kind == "refused" and "38 bytes, LEM takes 37" in refused.detail
    assert open_id is None


def test_bad_signing_data_in_a_model_file_names_the_key():
    model = load_model(MODEL)
    data = {"meter": {"name": "x", "kind": "DC"},
            "signing": {**model.signing, "tariff_id": 9}}
    bad = parse_model(data, key="bad", source="bad.toml")
    with pytest.raises(MeterMapError, match=r"bad.toml: signing.tariff_id = 9"):
        LemDcbm(bad, "http://127.0.0.1:80")
    data["signing"] = {**model.signing, "colour": "red"}
    with pytest.raises(MeterMapError, match=r"signing.colour: unknown key"):
        LemDcbm(parse_model(data, key="bad", source="bad.toml"), "http://127.0.0.1:80")


def test_the_simulators_stop_answer_has_transaction_status_of_an_ended_transaction():
    async def scenario(sim, driver):
        await driver.start_transaction("tx-1", RFID, TARIFF)
        endpoint = parse_http_url(driver.endpoint.describe())
        answer = await request(endpoint, "PUT", "/v1/legal?transactionId=tx-1",
                               {"running": False})
        return json.loads(answer.body)

    body = run(scenario)
    assert body["transactionId"] == "tx-1" and body["running"] is False
    assert body["meterValue"]["transactionStatus"] == 17
    assert body["meterValue"]["sampleValue"]["energyUnit"] == "kWh"
