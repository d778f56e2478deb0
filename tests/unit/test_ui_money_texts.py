"""What the charging and finishing screens say about money (issue 15), in all four
languages: once an idle fee accrues the finishing screen shows the cost as its charging
part plus its idle part (the figures it is the sum of); a min/max price that sets the
cost is named; the charging screen shows the unit price in force and when an idle fee
would start after charging. End to end: the daemon's snapshot of a demo session 30 s into
its idle fee, on the finishing screen, adds up."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from terminal.station import Station
from tests.unit.clockfake import FakeClock
from tests.unit.test_daemon_ui_api import Car, charging, poll, run
from tests.unit.test_ui_view import NB, charging_state, finishing_state, view_of

ACCRUING = {"fee_from": None, "accruing": True, "accrued": "0.10", "currency": "EUR"}
COST = {"currency": "EUR", "excl_vat": "7.92", "incl_vat": "9.42",
        "charging_incl_vat": "9.32", "idle_incl_vat": "0.10", "price_limit": None}
PRICE_NOW = {"en": ["0.59 EUR/kWh incl. 19% VAT"], "de": ["0,59 EUR/kWh inkl. 19 % MwSt."],
             "fr": [f"0,59 EUR/kWh TVA 19{NB}% incluse"], "nl": ["0,59 EUR/kWh incl. 19% btw"]}


@pytest.mark.parametrize(("language", "cost", "parts"), [
    ("en", "Cost incl. VAT: 9.42 EUR", "Charging 9.32 EUR + idle fee so far 0.10 EUR"),
    ("de", "Kosten inkl. MwSt.: 9,42 EUR", "Laden 9,32 EUR + Blockiergebühr bisher 0,10 EUR"),
    ("fr", f"Coût TTC{NB}: 9,42 EUR",
     "Recharge 9,32 EUR + frais d'occupation jusqu'ici 0,10 EUR"),
    ("nl", "Kosten incl. btw: 9,42 EUR", "Laden 9,32 EUR + blokkeertarief tot nu toe 0,10 EUR"),
])
def test_finishing_shows_the_cost_as_charging_plus_idle_fee(language, cost, parts):
    texts = view_of(finishing_state(ACCRUING, cost=COST), language).texts
    assert (texts["finish_cost"], texts["idle_fee"]) == (cost, parts)


@pytest.mark.parametrize(("language", "note"), [
    ("en", "The tariff's minimum price applies"),
    ("de", "Es gilt der Mindestpreis des Tarifs"),
    ("fr", "Le prix minimum du tarif s'applique"),
    ("nl", "De minimumprijs van het tarief geldt"),
])
def test_a_minimum_price_that_sets_the_cost_is_named(language, note):
    cost = {**COST, "incl_vat": "5.00", "charging_incl_vat": "0.60", "idle_incl_vat": "0.00",
            "price_limit": "min_price"}
    charging_texts = view_of(charging_state(cost=cost), language).texts
    assert charging_texts["cap"].endswith(note)
    none = {"fee_from": None, "accruing": False, "accrued": "0.00", "currency": "EUR"}
    assert view_of(finishing_state(none, cost=cost), language).texts["idle_fee"] == note


@pytest.mark.parametrize(("language", "label", "ahead"), [
    ("en", "Cost incl. VAT\nPrice 0.59 EUR/kWh incl. 19% VAT",
     "Idle fee once charging has ended, at the earliest in 7 min. To stop,"),
    ("de", "Kosten inkl. MwSt.\nPreis 0,59 EUR/kWh inkl. 19 % MwSt.",
     "Blockiergebühr nach Ladeende, frühestens in 7 min. Zum Beenden"),
    ("fr", f"Coût TTC\nTarif 0,59 EUR/kWh TVA 19{NB}% incluse",
     "Frais d'occupation après la charge, au plus tôt dans 7 min. Pour arrêter"),
    ("nl", "Kosten incl. btw\nPrijs 0,59 EUR/kWh incl. 19% btw",
     "Blokkeertarief na het laden, op zijn vroegst over 7 min. Stoppen:"),
])
def test_charging_shows_the_unit_price_and_the_idle_fee_ahead(language, label, ahead):
    ahead_state = {"fee_from": "2026-11-21T14:32:00Z", "at_charging_end": False,
                   "currency": "EUR"}
    texts = view_of(charging_state(price_now=PRICE_NOW, idle_ahead=ahead_state,
                                   now="2026-11-21T14:25:00Z"), language).texts
    assert texts["cost_label"] == label
    assert texts["stop_hint"].startswith(ahead)


@pytest.mark.parametrize(("language", "now"), [
    ("en", "Idle fee as soon as charging ends. "), ("de", "Blockiergebühr ab Ladeende. "),
    ("fr", "Frais d'occupation dès la fin de la charge. "),
    ("nl", "Blokkeertarief zodra het laden stopt. "),
])
def test_charging_after_the_idle_fee_threshold_says_it_starts_when_charging_ends(language, now):
    ahead = {"fee_from": None, "at_charging_end": True, "currency": "EUR"}
    assert view_of(charging_state(idle_ahead=ahead), language).texts["stop_hint"].startswith(now)


def test_the_demo_session_on_the_finishing_screen_adds_up(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await charging(station, clock)
        start = station.daemon.state.start_reading.timestamp
        state = station.status.snapshot()
        assert view_of(state).texts["cost_label"] == (
            "Cost incl. VAT\nPrice 0.59 EUR/kWh incl. 19% VAT")
        assert view_of(state).texts["stop_hint"].startswith(
            "Idle fee once charging has ended, at the earliest in 10 min.")
        await poll(station, clock, 30, step_s=10)
        await station.driver_api.stop({})
        await poll(station, clock)
        energy_only = Decimal(station.status.snapshot()["cost"]["incl_vat"])
        clock.advance((start + timedelta(seconds=629) - clock.now()).total_seconds())
        await poll(station, clock)
        texts = view_of(station.status.snapshot()).texts
        assert texts["finish_cost"] == f"Cost incl. VAT: {energy_only + Decimal('0.10')} EUR"
        assert texts["idle_fee"] == f"Charging {energy_only} EUR + idle fee so far 0.10 EUR"

    run(tmp_path, body)
