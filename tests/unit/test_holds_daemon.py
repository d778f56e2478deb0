"""Card holds in the daemon, in process on a hand-moved clock (issue 18): the snapshot's
`card_hold`, the driver's `budget` op (bad input refused naming the field, nothing
changed), the budget as the hold and the cost cap of the tapped card, a retried tap while
the session starts ("already authorised"), a retried tap after a plug-in timeout reusing
the hold (one pre-authorisation at the gateway), the grace deadline ending the session
and voiding the hold, a driver's cancel voiding at once. The gateway is the scripted one
of tests/unit/test_card_payment.py; cards are public test numbers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from drivers.readers.events import EmvTap
from terminal.config import parse_config
from terminal.localapi import RequestError
from terminal.station import Station, build_station, database_path, load_station_terms
from terminal.store import Store
from tests.unit.clockfake import FakeClock
from tests.unit.test_card_payment import FakeGateway, emv
from tests.unit.test_daemon_ui_api import DEMO_TARIFF, Car, poll, states
from tests.unit.test_service import key_files

Body = Callable[[Station, Car, FakeClock, list[dict[str, Any]], FakeGateway], Awaitable[None]]


def run(tmp_path: Path, body: Body, *, payment: dict[str, Any] | None = None,
        cards: bool = True) -> None:
    files = key_files(tmp_path)
    pay = {"token_key_file": str(files["token"]), "gateway_key_file": str(files["gateway"]),
           **(payment or {})} if cards else {}
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op GmbH", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(DEMO_TARIFF), "connection_timeout_s": 100},
        "localapi": {"socket_path": str(tmp_path / "api.sock")},
        "ui": {"language_reset_s": 30},
        "payment": pay,
    })
    clock = FakeClock()

    async def scenario() -> None:
        car = Car(clock)
        station = build_station(config, clock, Store.open(database_path(config)), car, car,
                                load_station_terms(config))
        published: list[dict[str, Any]] = []
        station.api.publish = published.append  # type: ignore[method-assign]
        gateway = FakeGateway()
        if station.payments is not None:
            station.payments.backend = gateway  # type: ignore[assignment]
            station.payments.publish = published.append
        await station.recover()
        try:
            await body(station, car, clock, published, gateway)
        finally:
            station.store.close()

    asyncio.run(scenario())


async def tap(station: Station, pan: str = "4111111111111111") -> dict[str, Any]:
    published: list[dict[str, Any]] = []
    before = station.api.publish
    station.api.publish = lambda m: (published.append(m), before(m))  # type: ignore[method-assign]
    try:
        await station.taps.handle(EmvTap("reader-1", emv(pan)))
    finally:
        station.api.publish = before  # type: ignore[method-assign]
    [outcome] = [m for m in published if m["type"] == "tap"]
    return outcome


async def settle(station: Station) -> None:
    assert station.payments is not None
    await station.payments.settle_due()


def payments(station: Station) -> list[tuple[str, str, str]]:
    rows = station.store.store.conn.execute(
        "SELECT reference, session_id, status FROM payments ORDER BY created_at")
    return [tuple(row) for row in rows]


# ---- the snapshot and the budget op ----------------------------------------------------------


def test_the_snapshot_shows_the_hold_before_the_tap(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        assert station.status.snapshot()["card_hold"] == {
            "amount": "50.00", "currency": "EUR", "choices": ["20.00", "50.00", "80.00"],
            "budget": None, "grace_s": 180.0}

    run(tmp_path, body)


def test_without_card_payment_there_is_no_hold_and_no_budget(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        assert station.status.snapshot()["card_hold"] is None
        with pytest.raises(RequestError, match=r"^budget: bank cards are not taken here"):
            await station.api.handlers["budget"]({"op": "budget", "amount": "20.00"})

    run(tmp_path, body, cards=False)


def test_a_budget_picked_is_the_hold_shown_and_published(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        reply = await station.api.handlers["budget"]({"op": "budget", "amount": "20"})
        assert reply["amount"] == "20.00"
        assert reply["state"]["card_hold"]["amount"] == "20.00"
        assert states(published)[-1]["card_hold"]["budget"] == "20.00"
        reply = await station.api.handlers["budget"]({"op": "budget", "amount": None})
        assert reply["state"]["card_hold"]["amount"] == "50.00"  # back to the default

    run(tmp_path, body)


@pytest.mark.parametrize(("request_", "problem"), [
    ({"amount": "30.00"}, r"^amount: 30.00 is not a budget offered here \(offered: 20.00, "
                          r"50.00, 80.00\)"),
    ({"amount": "abc"}, r"^amount: expected a number .*one of: 20.00, 50.00, 80.00"),
    ({"amount": 20.0}, r"^amount: expected"),
    ({"amount": "-20"}, r"^amount: expected"),
    ({"amount": "20", "cap": "1"}, r"^budget: unexpected fields cap"),
])
def test_a_bad_budget_is_refused_naming_the_field_and_changes_nothing(tmp_path, request_,
                                                                       problem):
    async def body(station, car, clock, published, gateway) -> None:
        with pytest.raises(RequestError, match=problem):
            await station.api.handlers["budget"]({"op": "budget", **request_})
        assert station.screen.budget is None and published == []

    run(tmp_path, body)


def test_no_budget_is_taken_when_none_is_offered(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        with pytest.raises(RequestError, match="no budgets are offered here"):
            await station.api.handlers["budget"]({"op": "budget", "amount": "50.00"})
        assert station.status.snapshot()["card_hold"]["choices"] == []

    run(tmp_path, body, payment={"budget_choices": ""})


def test_the_budget_goes_back_to_the_default_after_the_quiet_time(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        await poll(station, clock)
        await station.driver_api.budget({"amount": "80.00"})
        await poll(station, clock, 29)
        assert station.screen.budget is not None
        await poll(station, clock, 1)
        assert station.screen.budget is None
        assert states(published)[-1]["card_hold"]["amount"] == "50.00"

    run(tmp_path, body)


# ---- the tap -----------------------------------------------------------------------------------


def test_the_budget_is_the_hold_and_the_cap_and_a_retried_tap_adds_no_hold(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        car.plugged = False
        await station.driver_api.budget({"amount": "20.00"})
        outcome = await tap(station)
        assert (outcome["result"], outcome["cost_cap"]) == ("accepted", "20.00")
        assert [r.amount for r in gateway.requests("preauthorize")] == [Decimal("20.00")]
        assert station.daemon.state.authorization.cost_cap == 20
        assert station.screen.budget is None  # used up by this session
        with pytest.raises(RequestError, match="a session is open"):
            await station.driver_api.budget({"amount": "50.00"})
        again = await tap(station)  # the same card while its session waits for the plug
        assert (again["result"], again["reason"]) == ("info", "already_authorized")
        assert "already authorised" in again["message"]
        assert gateway.ops() == ["preauthorize"]
        assert station.daemon.state.phase.value == "Authorized"

    run(tmp_path, body)


def test_a_retried_tap_after_a_plug_in_timeout_reuses_the_hold_then_it_is_voided(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        car.plugged = False
        first = await tap(station)
        await poll(station, clock, 101)  # the plug-in timeout: no energy, not the driver
        assert station.daemon.state.phase.value == "Available"
        await settle(station)
        assert gateway.ops() == ["preauthorize"]  # kept for the same card
        second = await tap(station)
        assert (second["result"], second["reason"]) == ("accepted", "hold_reused")
        assert second["session_id"] != first["session_id"]
        assert gateway.ops() == ["preauthorize"]  # one hold, one pre-authorisation
        assert payments(station) == [(f"{first['session_id']}:pay", second["session_id"],
                                      "approved")]
        # 180 s after the approval still no energy: the session ends, the hold is voided
        await poll(station, clock, 77)  # 178 s after the approval
        assert station.daemon.state.phase.value == "Authorized"
        await poll(station, clock, 2)
        assert station.daemon.state.stop_reason.value == "Timeout"
        await settle(station)
        assert gateway.ops() == ["preauthorize", "void"]
        assert payments(station)[0][2] == "voided"
        released = [m for m in published if m["type"] == "hold_released"]
        assert released == [{"type": "hold_released", "session_id": second["session_id"],
                             "amount": "50.00", "currency": "EUR"}]

    run(tmp_path, body)


def test_the_drivers_cancel_voids_at_once_and_the_next_tap_is_a_new_hold(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        car.plugged = False
        first = await tap(station)
        await station.driver_api.stop_on_screen({"session_id": first["session_id"]})
        await poll(station, clock)
        await settle(station)
        assert gateway.ops() == ["preauthorize", "void"]
        second = await tap(station)
        assert (second["result"], second["reason"]) == ("accepted", "accepted")
        assert gateway.ops() == ["preauthorize", "void", "preauthorize"]

    run(tmp_path, body)


def test_a_session_that_charges_is_captured_within_its_cap(tmp_path):
    async def body(station, car, clock, published, gateway) -> None:
        await station.driver_api.budget({"amount": "20.00"})
        outcome = await tap(station)
        await poll(station, clock, 3)
        assert station.daemon.state.phase.value == "Charging"
        await station.driver_api.stop_on_screen({"session_id": outcome["session_id"]})
        await poll(station, clock, 2)
        car.plugged = False
        await poll(station, clock, 2)
        await settle(station)
        assert gateway.ops() == ["preauthorize", "capture"]
        [capture] = gateway.requests("capture")
        assert 0 < capture.amount <= 20

    run(tmp_path, body)


def test_the_cap_projection_stops_the_charge_at_the_budget(tmp_path):
    """A budget of 1.00 EUR: the cost cap stops delivery before it; the capture and the
    receipt's rows stay within it (released = reserved - charged)."""
    async def body(station, car, clock, published, gateway) -> None:
        await station.driver_api.budget({"amount": "1.00"})
        outcome = await tap(station)
        assert outcome["cost_cap"] == "1.00"
        for _ in range(400):
            await poll(station, clock)
            if station.daemon.state.stop_reason is not None:
                break
        assert station.daemon.state.stop_reason.value == "CostLimitReached"
        car.plugged = False
        await poll(station, clock, 2)
        await settle(station)
        [capture] = gateway.requests("capture")
        assert 0 < capture.amount <= Decimal("1.00")
        receipt = station.store.store.receipt(outcome["session_id"])[0]
        shown = receipt["payment"]
        assert shown["reserved"] == "1.00" and Decimal(shown["charged"]) == capture.amount
        assert Decimal(shown["released"]) == Decimal("1.00") - capture.amount

    run(tmp_path, body, payment={"budget_choices": "1.00, 50.00"})
