"""The cost the screen shows tells the exact truth (issue 15), in process on a hand-moved
clock: the snapshot's cost is priced by the rule of the final bill (step_size, min/max
price) and split into a charging part and an idle part that add up to it; the idle line
is that idle part; the receipt of a session unplugged at the next poll charges what the
last snapshot showed; while charging, the snapshot carries the unit price in force and
when an idle fee would start."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from terminal.kernel.clock import iso_utc
from terminal.station import Station
from tests.unit.clockfake import FakeClock
from tests.unit.test_commands import new_tariff
from tests.unit.test_daemon_ui_api import Car, charging, poll, run


def cost_of(state: dict) -> tuple[Decimal, Decimal, Decimal]:
    cost = state["cost"]
    return (Decimal(cost["incl_vat"]), Decimal(cost["charging_incl_vat"]),
            Decimal(cost["idle_incl_vat"]))


async def unplug_and_receipt(station: Station, car: Car, clock: FakeClock,
                             session_id: str) -> dict:
    car.plugged = False
    await poll(station, clock)  # the next poll: the session closes
    await poll(station, clock)
    assert station.daemon.state.phase.value == "Available"
    stored, _ = station.store.store.receipt(session_id)
    return stored


def test_finishing_cost_is_energy_plus_the_idle_fee_shown_and_the_receipt_charges_it(tmp_path):
    """The demo car full after ~5 min, 30 s into the idle fee (from 10 min after the start):
    the idle fee is one started minute, 0.10 EUR, in the idle line and in the cost alike."""
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await charging(station, clock)
        start = station.daemon.state.start_reading.timestamp
        await poll(station, clock, 30, step_s=10)
        await station.driver_api.stop({})
        await poll(station, clock)
        assert station.daemon.state.phase.value == "Finishing"
        energy_only = station.status.snapshot()["cost"]["incl_vat"]
        clock.advance((start - clock.now()).total_seconds() + 629)
        await poll(station, clock)  # 630 s after the start: 30 s of idle fee
        state = station.status.snapshot()
        assert state["idle"]["accruing"] is True and state["idle"]["accrued"] == "0.10"
        # the cost shown beside it: the energy plus that 0.10, not 30 s unrounded
        assert Decimal(state["cost"]["incl_vat"]) == Decimal(energy_only) + Decimal("0.10")
        total, charging_part, idle_part = cost_of(state)
        assert str(idle_part) == state["idle"]["accrued"]
        assert charging_part == Decimal(energy_only) and total == charging_part + idle_part
        assert state["cost"]["price_limit"] is None
        receipt = await unplug_and_receipt(station, car, clock, session_id)
        assert Decimal(receipt["amount_charged"]) == total

    run(tmp_path, body)


def test_the_energy_step_size_is_in_the_shown_cost_as_on_the_receipt(tmp_path):
    """ENERGY step_size 1000 Wh: 1.2 kWh delivered shows (and bills) 2 kWh."""
    stepped = new_tariff("STEP-KWH", price=1.0)
    stepped["elements"][0]["price_components"][0]["step_size"] = 1000

    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await charging(station, clock)
        await poll(station, clock, 27)  # 40 Wh a poll
        state = station.status.snapshot()
        delivered = Decimal(state["energy_wh"])
        assert Decimal(1000) < delivered < Decimal(2000)
        assert state["cost"]["incl_vat"] == "2.38"  # 2 kWh x 1.19, as the bill will say
        total, charging_part, idle_part = cost_of(state)
        assert total == charging_part and idle_part == 0
        await station.driver_api.stop({})
        await poll(station, clock)
        last = cost_of(station.status.snapshot())[0]
        receipt = await unplug_and_receipt(station, car, clock, session_id)
        assert Decimal(receipt["amount_charged"]) == last == total

    tariff = tmp_path / "stepped.json"
    tariff.write_text(json.dumps(stepped))
    run(tmp_path, body, tariff=tariff)


def test_a_minimum_price_in_the_shown_cost_is_named(tmp_path):
    minimum = new_tariff("MIN-PRICE", price=1.0)
    minimum["min_price"] = {"excl_vat": 4.2, "incl_vat": 5.0}

    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await charging(station, clock)
        state = station.status.snapshot()
        total, charging_part, idle_part = cost_of(state)
        assert total == Decimal("5.00") and state["cost"]["price_limit"] == "min_price"
        assert charging_part < total and idle_part == 0  # the parts before the minimum
        await station.driver_api.stop({})
        await poll(station, clock)
        last = cost_of(station.status.snapshot())[0]
        receipt = await unplug_and_receipt(station, car, clock, session_id)
        assert Decimal(receipt["amount_charged"]) == last == Decimal("5.00")

    tariff = tmp_path / "minimum.json"
    tariff.write_text(json.dumps(minimum))
    run(tmp_path, body, tariff=tariff)


def test_while_charging_the_unit_price_and_the_idle_fee_ahead_are_in_the_snapshot(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await charging(station, clock)
        start = station.daemon.state.start_reading.timestamp
        state = station.status.snapshot()
        assert state["price_now"]["en"] == ["0.59 EUR/kWh incl. 19% VAT"]
        assert state["price_now"]["de"] == ["0,59 EUR/kWh inkl. 19 % MwSt."]
        assert set(state["price_now"]) == {"en", "de", "fr", "nl"}
        # the idle fee starts 10 min after the start, if the car is still plugged in then
        assert state["idle_ahead"] == {"fee_from": iso_utc(start + timedelta(seconds=600)),
                                       "at_charging_end": False, "currency": "EUR"}
        clock.advance(700)
        await poll(station, clock)
        assert station.daemon.state.phase.value == "Charging"
        assert station.status.snapshot()["idle_ahead"] == {
            "fee_from": None, "at_charging_end": True, "currency": "EUR"}
        await station.driver_api.stop({})
        await poll(station, clock)
        assert station.status.snapshot()["idle_ahead"] is None  # Finishing: see `idle`

    run(tmp_path, body)


def test_a_tariff_without_idle_fee_announces_none_ahead(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await charging(station, clock)
        state = station.status.snapshot()
        assert state["idle_ahead"] is None
        assert state["price_now"]["en"] == ["0.4998 EUR/kWh incl. 19% VAT"]

    tariff = tmp_path / "energy_only.json"
    tariff.write_text(json.dumps(new_tariff("ENERGY-ONLY", price=0.42)))
    run(tmp_path, body, tariff=tariff)


def test_no_cost_and_no_price_now_without_a_session(tmp_path: Path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        state = station.status.snapshot()
        assert (state["cost"], state["price_now"], state["idle_ahead"]) == (None, None, None)

    run(tmp_path, body)
