"""What the daemon adds to the local API for the touchscreen, in process on a hand-moved
clock: the snapshot's language, times, idle fee, receipt on offer and app-start code;
the `language` and `ack_receipt` ops (bad input refused naming the field, nothing
changed, nothing published); the language back to the default after a quiet minute on
the idle screen; the idle fee of the demo tariff (0.10 EUR/min from 10 min after the
start) announced, then accruing, probed at most once a minute; the e-receipt URL stored
with the session."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from drivers.charger import ChargerStatus, EvState
from drivers.meter.reading import MeterReading
from terminal.billing import bill_from_row
from terminal.config import parse_config
from terminal.kernel.clock import iso_utc
from terminal.localapi import RequestError
from terminal.station import Station, build_station, database_path, load_station_terms
from terminal.store import Store
from tests.unit.clockfake import FakeClock
from tests.unit.test_commands import new_tariff
from tests.unit.test_daemon_journal import REPO

DEMO_TARIFF = REPO / "examples/tariffs/de_dc_hpc_demo.json"  # idle fee from 10 min after the start
CODE = re.compile(r"^[A-Z2-9]{8}$")


class Car:
    """The charger and meter of one plugged car: energy flows only while the output is on."""

    model = None

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.plugged = True
        self.commanded = False
        self.energy_wh = Decimal(10_000)

    async def status(self) -> ChargerStatus:
        state = EvState.A if not self.plugged else EvState.C if self.commanded else EvState.B
        return ChargerStatus(state, self.commanded, self.commanded)

    async def set_output(self, on: bool) -> None:
        self.commanded = on

    async def read_snapshot(self) -> MeterReading:
        on = self.commanded
        if on:
            self.energy_wh += 40
        return MeterReading(self.clock.now(), self.energy_wh, None,
                            Decimal(150_000 if on else 0), Decimal(800),
                            Decimal("187.5" if on else 0), "S1")

    def close(self) -> None:
        pass


Body = Callable[[Station, Car, FakeClock, list[dict[str, Any]]], Awaitable[None]]


def run(tmp_path: Path, body: Body, *, ui: dict[str, Any] | None = None,
        tariff: Path = DEMO_TARIFF, station_id: str = "ST1") -> None:
    config = parse_config({
        "station": {"id": station_id, "operator": "Op GmbH", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(tariff)},
        "localapi": {"socket_path": str(tmp_path / "api.sock"), "dev_free_start": True},
        "ui": ui or {},
    })
    clock = FakeClock()

    async def scenario() -> None:
        car = Car(clock)
        station = build_station(config, clock, Store.open(database_path(config)), car, car,
                                load_station_terms(config))
        published: list[dict[str, Any]] = []
        station.api.publish = published.append  # type: ignore[method-assign]
        await station.recover()
        try:
            await body(station, car, clock, published)
        finally:
            station.store.close()

    asyncio.run(scenario())


async def poll(station: Station, clock: FakeClock, polls: int = 1, step_s: float = 1) -> None:
    for _ in range(polls):
        clock.advance(step_s)
        await station.daemon.poll_once()


async def charging(station: Station, clock: FakeClock) -> str:
    """A session started at the screen, charging after 3 polls."""
    reply = await station.driver_api.start({"id_token": "APP-1"})
    await poll(station, clock, 3)
    assert station.daemon.state.phase.value == "Charging"
    return str(reply["session_id"])


async def closed(station: Station, car: Car, clock: FakeClock) -> str:
    """A session charged, stopped and unplugged: its receipt is on offer."""
    session_id = await charging(station, clock)
    await station.driver_api.stop({})
    await poll(station, clock, 2)
    car.plugged = False
    await poll(station, clock, 2)
    assert station.daemon.state.phase.value == "Available"
    return session_id


def states(published: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["state"] for m in published if m.get("type") == "state"]


def at(clock: FakeClock, seconds: float) -> str:
    return iso_utc(clock.start + timedelta(seconds=seconds))


# ---- the snapshot ---------------------------------------------------------------------------


def test_the_idle_snapshot_says_language_operator_time_and_nothing_pending(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        clock.advance(12.5)
        state = station.status.snapshot()
        assert state["language"] == "en" and state["languages"] == ["en", "de", "fr", "nl"]
        assert state["operator"] == "Op GmbH" and state["support_phone"] is None
        assert state["now"] == "2026-11-21T10:00:12.500Z"
        assert (state["session_started_at"], state["elapsed_s"], state["idle"],
                state["receipt_pending"], state["app_start"]) == (None,) * 5
        json.dumps(state)  # the snapshot goes on the wire as it is

    run(tmp_path, body)


def test_configured_ui_settings_show_in_the_snapshot(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        state = station.status.snapshot()
        assert state["language"] == "fr" and state["support_phone"] == "+49 30 1234567"
        app = state["app_start"]
        assert CODE.match(app["code"]), app
        # the station id is URL-quoted; OCPI's "*" stays as it is
        assert app["url"] == f"https://pay.example.com/start/DE*EVT*E1%201/{app['code']}"
        assert station.status.snapshot()["app_start"] == app  # stable until used or a session ends

    run(tmp_path, body, station_id="DE*EVT*E1 1", ui={
        "default_language": "fr", "support_phone": "+49 30 1234567",
        "app_start_url": "https://pay.example.com/start/{station_id}/{code}"})


def test_session_start_and_elapsed_time_follow_the_daemon_clock(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await station.driver_api.start({"id_token": "APP-1"})
        assert station.status.snapshot()["session_started_at"] is None  # no energy yet
        await poll(station, clock)  # the start reading at t = 1 s
        started = station.status.snapshot()
        assert started["session_started_at"] == at(clock, 1) and started["elapsed_s"] == 0
        await poll(station, clock, 2, step_s=30.7)
        assert station.status.snapshot()["elapsed_s"] == 61  # whole seconds, by the daemon clock
        clock.advance(100)
        assert station.status.snapshot()["elapsed_s"] == 161
        await station.driver_api.stop({})
        await poll(station, clock)
        car.plugged = False
        await poll(station, clock)  # closed at t = 164.4 (the stop reading)
        clock.advance(500)
        ended = station.status.snapshot()
        assert (ended["phase"], ended["session_started_at"]) == ("Completed", at(clock, 1))
        assert ended["elapsed_s"] == 163  # the session's duration, no longer counting
        await poll(station, clock)
        assert station.status.snapshot()["phase"] == "Available"
        snapshot = station.status.snapshot()
        assert (snapshot["session_started_at"], snapshot["elapsed_s"]) == (None, None)

    run(tmp_path, body)


# ---- language ----------------------------------------------------------------------------------


def test_choosing_a_language_sets_it_and_publishes_a_state(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        reply = await station.api.handlers["language"]({"op": "language", "language": "de"})
        assert reply["language"] == "de" and reply["state"]["language"] == "de"
        assert station.screen.language == "de"
        assert [s["language"] for s in states(published)] == ["de"]

    run(tmp_path, body)


@pytest.mark.parametrize("value", ["xx", "DE", "", 5, None, ["de"], {"de": 1}, "de " * 30])
def test_a_bad_language_is_refused_naming_the_field_and_changes_nothing(tmp_path, value):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        with pytest.raises(RequestError, match=r"^language: expected one of en, de, fr, nl"):
            await station.driver_api.language({"language": value})
        assert station.screen.language == "en" and published == []

    run(tmp_path, body)


def test_a_missing_language_is_refused(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        with pytest.raises(RequestError, match=r"^language:"):
            await station.driver_api.language({})
        assert station.screen.language == "en" and published == []

    run(tmp_path, body)


def test_the_language_goes_back_to_the_default_after_a_quiet_time_on_the_idle_screen(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await poll(station, clock)
        await station.driver_api.language({"language": "nl"})
        await poll(station, clock, 29)  # 29 s after the choice
        assert station.screen.language == "nl"
        await station.driver_api.language({"language": "de"})  # a driver's action: timer restarts
        await poll(station, clock, 29)
        assert station.screen.language == "de"
        await poll(station, clock, 1)  # 30 s after the last action
        assert station.screen.language == "en"
        assert states(published)[-1]["language"] == "en"  # the screen is told

    run(tmp_path, body, ui={"language_reset_s": 30})


def test_the_language_stays_during_a_session_and_while_the_receipt_is_offered(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await station.driver_api.language({"language": "fr"})
        await charging(station, clock)
        await poll(station, clock, 5, step_s=20)  # 100 s of charging
        assert station.screen.language == "fr"
        await station.driver_api.stop({})
        await poll(station, clock, 2)
        car.plugged = False
        await poll(station, clock)
        assert station.status.snapshot()["receipt_pending"] is not None
        await poll(station, clock, 5, step_s=10)  # 50 s with the receipt on screen
        assert station.screen.language == "fr"
        session_id = station.status.snapshot()["receipt_pending"]["session_id"]
        await station.driver_api.ack_receipt({"session_id": session_id})
        await poll(station, clock, 29)
        assert station.screen.language == "fr"
        await poll(station, clock, 2)
        assert station.screen.language == "en"

    run(tmp_path, body, ui={"language_reset_s": 30, "receipt_timeout_s": 600})


def test_a_card_tap_counts_as_a_drivers_action(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await station.driver_api.language({"language": "de"})
        await poll(station, clock, 20)
        station.screen.note_intent()  # what the tap handler does for every card presented
        await poll(station, clock, 20)
        assert station.screen.language == "de"
        await poll(station, clock, 10)
        assert station.screen.language == "en"

    run(tmp_path, body, ui={"language_reset_s": 30})


# ---- the receipt on offer --------------------------------------------------------------------


def test_the_receipt_is_offered_until_acknowledged(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await closed(station, car, clock)
        closed_at = datetime.fromisoformat(station.store.store.session(session_id)["closed_at"])
        pending = station.status.snapshot()["receipt_pending"]
        assert pending == {"session_id": session_id,
                           "until": iso_utc(closed_at + timedelta(seconds=120))}
        published.clear()
        for bad, problem in [("other", "is not the receipt on offer"), (5, "expected"),
                             (None, "expected")]:
            with pytest.raises(RequestError, match=f"^session_id: .*{problem}"):
                await station.driver_api.ack_receipt({"session_id": bad})
        assert station.status.snapshot()["receipt_pending"] == pending and published == []
        reply = await station.driver_api.ack_receipt({"session_id": session_id})
        assert reply["state"]["receipt_pending"] is None
        assert states(published)[-1]["receipt_pending"] is None
        with pytest.raises(RequestError, match=r"^session_id: .*on offer \(none\)"):
            await station.driver_api.ack_receipt({"session_id": session_id})
        receipt = await station.driver_api.receipt({"session_id": session_id})
        assert receipt["session_id"] == session_id  # still there, only no longer offered

    run(tmp_path, body)


def test_the_receipt_offer_ends_after_the_timeout_by_the_daemon_clock(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await closed(station, car, clock)
        closed_at = datetime.fromisoformat(station.store.store.session(session_id)["closed_at"])
        clock.advance((closed_at - clock.now()).total_seconds() + 59.9)
        assert station.status.snapshot()["receipt_pending"]["session_id"] == session_id
        clock.advance(0.1)
        assert station.status.snapshot()["receipt_pending"] is None
        with pytest.raises(RequestError, match=r"^session_id:"):
            await station.driver_api.ack_receipt({"session_id": session_id})

    run(tmp_path, body, ui={"receipt_timeout_s": 60})


def test_a_session_without_energy_offers_no_receipt_and_a_new_driver_ends_the_offer(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await station.driver_api.start({"id_token": "APP-1"})
        await station.driver_api.stop({})  # before any energy: no receipt
        assert station.daemon.state.phase.value == "Completed"
        assert station.status.snapshot()["receipt_pending"] is None
        car.plugged = False
        await poll(station, clock)
        car.plugged = True
        await closed(station, car, clock)
        assert station.status.snapshot()["receipt_pending"] is not None
        car.plugged = True
        await station.driver_api.start({"id_token": "APP-2"})  # the next driver
        assert station.status.snapshot()["receipt_pending"] is None

    run(tmp_path, body)


def test_the_app_start_code_is_new_after_each_session(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        first = station.status.snapshot()["app_start"]["code"]
        await charging(station, clock)
        assert station.status.snapshot()["app_start"]["code"] == first
        await station.driver_api.stop({})
        await poll(station, clock)
        car.plugged = False
        await poll(station, clock)
        second = station.status.snapshot()["app_start"]
        assert CODE.match(second["code"]) and second["code"] != first
        assert second["url"] == f"https://app.example.com/s?c={second['code']}"

    run(tmp_path, body, ui={"app_start_url": "https://app.example.com/s?c={code}"})


# ---- the idle fee -------------------------------------------------------------------------------


def test_the_idle_fee_is_announced_then_accrues_per_the_demo_tariff(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await charging(station, clock)
        assert station.status.snapshot()["idle"] is None  # only while Finishing
        start = station.daemon.state.start_reading.timestamp
        await station.driver_api.stop({})
        await poll(station, clock)
        assert station.daemon.state.phase.value == "Finishing"
        fee_from = iso_utc(start + timedelta(seconds=600))  # min_duration 600
        assert station.status.snapshot()["idle"] == {"fee_from": fee_from, "accruing": False,
                                             "accrued": "0.00", "currency": "EUR"}
        clock.advance((start - clock.now()).total_seconds() + 600)  # the fee starts now
        await station.daemon.poll_once()
        assert station.status.snapshot()["idle"] == {"fee_from": None, "accruing": True,
                                             "accrued": "0.00", "currency": "EUR"}
        clock.advance(60)
        await station.daemon.poll_once()
        # 5.042 EUR/h excl. 19 % VAT, per started minute (step 60 s): 0.10 EUR a minute
        assert station.status.snapshot()["idle"]["accrued"] == "0.10"
        clock.advance(150)
        await station.daemon.poll_once()
        assert station.status.snapshot()["idle"]["accrued"] == "0.40"  # 3.5 min: 4 started minutes
        car.plugged = False
        await poll(station, clock)
        assert station.status.snapshot()["idle"] is None

    run(tmp_path, body)


def test_the_idle_fee_probe_runs_at_most_once_a_minute(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        probes: list[datetime] = []
        real = station.pricing.probe_idle_fee

        def counted(key: Any, last: Any, now: datetime) -> Any:
            probes.append(now)
            return real(key, last, now)

        station.pricing.probe_idle_fee = counted  # type: ignore[method-assign]
        await charging(station, clock)
        start = station.daemon.state.start_reading.timestamp
        probes.clear()  # the Charging screen's own (idle fee ahead) are not counted here
        await station.driver_api.stop({})
        await poll(station, clock, 59)  # a snapshot per poll, one probe
        for _ in range(5):
            station.status.snapshot()
        assert len(probes) == 1
        await poll(station, clock)
        assert len(probes) == 2  # a minute later
        clock.advance((start - clock.now()).total_seconds() + 599.5)
        await poll(station, clock, 1, step_s=0.5)  # fee_from reached: at once
        assert len(probes) == 3 and station.status.snapshot()["idle"]["accruing"] is True

    run(tmp_path, body)


def test_a_tariff_without_idle_fee_announces_none(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await charging(station, clock)
        await station.driver_api.stop({})
        await poll(station, clock, 3, step_s=400)
        assert station.status.snapshot()["idle"] == {"fee_from": None, "accruing": False,
                                             "accrued": "0.00", "currency": "EUR"}

    tariff = tmp_path / "energy_only.json"
    tariff.write_text(json.dumps(new_tariff("ENERGY-ONLY")))
    run(tmp_path, body, tariff=tariff)


def test_an_idle_fee_more_than_4_hours_ahead_is_not_announced(tmp_path):
    late = new_tariff("LATE-IDLE")
    late["elements"].insert(0, {"price_components": [{"type": "PARKING_TIME", "price": 6.0,
                                                      "step_size": 60}],
                                "restrictions": {"min_duration": 5 * 3600}})

    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await charging(station, clock)
        start = station.daemon.state.start_reading.timestamp
        await station.driver_api.stop({})
        await poll(station, clock)
        assert station.status.snapshot()["idle"]["fee_from"] is None
        clock.advance(3600 + 61)  # now 4 h before it: announced
        await station.daemon.poll_once()
        assert station.status.snapshot()["idle"] == {
            "fee_from": iso_utc(start + timedelta(hours=5)), "accruing": False,
            "accrued": "0.00", "currency": "EUR"}

    tariff = tmp_path / "late_idle.json"
    tariff.write_text(json.dumps(late))
    run(tmp_path, body, tariff=tariff)


# ---- the e-receipt URL ---------------------------------------------------------------------------


def test_the_e_receipt_url_is_stored_with_the_session_and_the_receipt_rebuilds(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await closed(station, car, clock)
        store = station.store.store
        row = store.session(session_id)
        assert row["receipt_url"] == f"https://r.example.com/DE*EVT*E1/{session_id}"
        readings = [r for _, r in store.readings(session_id)]
        assert bill_from_row(row, readings).receipt == store.receipt(session_id)
        stored, text = store.receipt(session_id)
        assert stored["receipt_url"] == row["receipt_url"]
        assert "https://r.example.com/DE*EVT*E1/" in text

    run(tmp_path, body, station_id="DE*EVT*E1",
        ui={"receipt_url": "https://r.example.com/{station_id}/{session_id}"})


def test_without_a_receipt_url_template_none_is_stored(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await closed(station, car, clock)
        assert station.store.store.session(session_id)["receipt_url"] is None

    run(tmp_path, body)
