"""Backend commands against the daemon in process (scripted meter and charger): remote
start/stop, a pushed tariff for the next sessions only, reconcile, refusals that name
the field and change nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from terminal.backend.commands import Commands, pushed_tariff_path
from terminal.backend.protocol import ProtocolError, RemoteStart
from terminal.config import parse_config
from terminal.station import Station, build_station, database_path, load_station_terms
from terminal.store import Store
from tests.unit.clockfake import FakeClock
from tests.unit.test_daemon_journal import REPO, ScriptedCharger, ScriptedMeter

TARIFF_FILE = REPO / "examples/tariffs/de_dc_hpc_adhoc.json"


def new_tariff(tariff_id: str = "PUSHED-1", price: float = 0.42,
               currency: str = "EUR") -> dict[str, Any]:
    return {"country_code": "DE", "party_id": "EVT", "id": tariff_id, "currency": currency,
            "type": "AD_HOC_PAYMENT",
            "elements": [{"price_components": [{"type": "ENERGY", "price": price,
                                                "vat": 19.0, "step_size": 1}]}],
            "last_updated": "2026-01-01T00:00:00Z"}


def run(tmp_path: Path, body: Callable[[Station, Commands, FakeClock], Awaitable[None]],
        ui: dict[str, Any] | None = None) -> None:
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(TARIFF_FILE)},
        "localapi": {"socket_path": str(tmp_path / "api.sock")},
        "ui": ui or {},
    })
    clock = FakeClock()

    async def scenario() -> None:
        station = build_station(config, clock, Store.open(database_path(config)),
                                ScriptedMeter(clock), ScriptedCharger(), load_station_terms(config))
        await station.recover()
        try:
            await body(station, station.commands, clock)
        finally:
            station.store.close()

    asyncio.run(scenario())


async def charge(station: Station, clock: FakeClock, polls: int = 3) -> None:
    for _ in range(polls):
        clock.advance(1)
        await station.daemon.poll_once()


def test_remote_start_and_stop_with_caps_and_audit(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        started = await commands.handle("remote_start", {"id_token": "APP-1",
                                                         "cost_cap": "20.00"})
        assert started["phase"] == "Authorized"
        assert station.daemon.state.authorization.cost_cap == 20
        assert station.daemon.state.authorization.source == "remote"
        await charge(station, clock)
        assert station.daemon.state.phase.value == "Charging"
        with pytest.raises(ProtocolError, match="session_id"):
            await commands.handle("remote_stop", {"session_id": "another"})
        assert station.daemon.state.phase.value == "Charging"
        stopped = await commands.handle("remote_stop", {"session_id": started["session_id"]})
        assert stopped["phase"] == "Finishing"
        assert station.daemon.state.stop_reason.value == "Remote"
        kinds = [row["kind"] for row in station.store.store.audit()]
        assert kinds == ["remote_stop", "remote_start"]
        assert {m.kind for m in station.store.store.outbox()} >= {"Audit"}

    run(tmp_path, body)


@pytest.mark.parametrize(("command", "body", "field"), [
    ("remote_start", {}, "id_token"),
    ("remote_start", {"id_token": "x" * 65}, "id_token"),
    ("remote_start", {"id_token": "A", "cost_cap": 20}, "cost_cap"),
    ("remote_start", {"id_token": "A", "cost_cap": "-1"}, "cost_cap"),
    ("remote_start", {"id_token": "A", "tariff": {"id": "broken"}}, "tariff"),
    ("remote_stop", {}, "session_id"),
    ("tariff_update", {"tariff": "nope"}, "tariff"),
    ("tariff_update", {"tariff": new_tariff(currency="USD")}, "tariff.currency"),
    ("reconcile", {"since": "yesterday"}, "since"),
    ("reconcile", {"since": "2026-01-01T00:00:00"}, "since"),
    ("config_change", {"key": "meter.url", "value": "x"}, "key"),
    ("format_disk", {}, "command"),
    ("_audit", {}, "command"),
])
def test_bad_commands_are_refused_naming_the_field_and_change_nothing(
        tmp_path, command: str, body: dict[str, Any], field: str) -> None:
    async def scenario(station: Station, commands: Commands, clock: FakeClock) -> None:
        before = (station.daemon.state, station.pricing.station_terms, station.store.store.outbox())
        with pytest.raises(ProtocolError) as raised:
            await commands.handle(command, body)
        assert raised.value.field == field
        assert (station.daemon.state, station.pricing.station_terms,
                station.store.store.outbox()) == before
        assert not pushed_tariff_path(str(tmp_path)).exists()

    run(tmp_path, scenario)


def test_a_pushed_tariff_prices_the_next_session_and_survives_a_restart(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        await commands.handle("remote_start", {"id_token": "APP-1"})
        await charge(station, clock)
        running = station.pricing.terms
        assert (await commands.handle("tariff_update", {"tariff": new_tariff()})) == {
            "tariff_id": "PUSHED-1"}
        assert station.pricing.terms is running  # the running session keeps its terms
        assert station.pricing.station_terms.tariff.id == "PUSHED-1"
        saved = json.loads(pushed_tariff_path(str(tmp_path)).read_text())
        assert saved["id"] == "PUSHED-1"
        await commands.handle("remote_stop", {})
        assert [r["kind"] for r in station.store.store.audit()][:2] == [
            "remote_stop", "tariff_update"]

    run(tmp_path, body)
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(TARIFF_FILE)},
    })
    assert load_station_terms(config).tariff.id == "PUSHED-1"


def test_reconcile_sends_again_what_was_queued_since(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        await commands.handle("remote_start", {"id_token": "APP-1"})
        await charge(station, clock)
        store = station.store.store
        ids = [m.id for m in store.outbox()]
        assert store.mark_delivered(ids, clock.now()) == len(ids)
        assert store.outbox(pending_only=True) == []
        result = await commands.handle("reconcile", {
            "since": (clock.now() - timedelta(hours=1)).isoformat()})
        assert result == {"requeued": len(ids)}
        pending = [m.id for m in store.outbox(pending_only=True)]
        assert pending[:len(ids)] == ids  # then the reconcile's own audit event

    run(tmp_path, body)


def test_diagnostics_report_state_and_outbox(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        report = await commands.handle("diagnostics", {})
        assert report["state"]["station_id"] == "ST1"
        assert report["outbox"]["pending"] == 0
        assert report["version"]

    run(tmp_path, body)


# ---- app start by QR code (start_code) ---------------------------------------------------------

APP_START = {"app_start_url": "https://pay.example.com/start/{station_id}/{code}"}


def test_a_remote_start_with_the_screens_code_starts_and_uses_the_code_up(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        shown = station.status.snapshot()["app_start"]
        assert shown["url"].endswith(f"/ST1/{shown['code']}")
        started = await commands.handle("remote_start", {"id_token": "APP-1",
                                                         "start_code": shown["code"]})
        assert started["phase"] == "Authorized"
        assert station.status.snapshot()["app_start"]["code"] != shown["code"]  # rotated
        audit, = station.store.store.audit()
        assert audit["kind"] == "remote_start"
        assert json.loads(audit["detail"])["by_qr_code"] is True
        await commands.handle("remote_stop", {})
        with pytest.raises(ProtocolError) as raised:  # a photo of the old QR code
            await commands.handle("remote_start", {"id_token": "APP-2",
                                                   "start_code": shown["code"]})
        assert raised.value.field == "start_code" and "QR code expired" in str(raised.value)

    run(tmp_path, body, ui=APP_START)


def test_the_code_of_a_closed_session_no_longer_starts_one(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        shown = station.screen.start_code
        await commands.handle("remote_start", {"id_token": "APP-1"})  # the backend's own
        assert station.screen.start_code == shown  # not used: the QR code stays
        await commands.handle("remote_stop", {})  # closes before energy
        assert station.daemon.state.phase.value == "Completed"
        assert station.screen.start_code != shown
        with pytest.raises(ProtocolError, match=r"^start_code: QR code expired"):
            await commands.handle("remote_start", {"id_token": "APP-2", "start_code": shown})

    run(tmp_path, body, ui=APP_START)


@pytest.mark.parametrize("code", ["WRONG234", "", 12345678, ["X"]])
def test_a_wrong_start_code_is_refused_and_changes_nothing(tmp_path, code):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        before = (station.daemon.state, station.screen.start_code, station.store.store.outbox())
        with pytest.raises(ProtocolError) as raised:
            await commands.handle("remote_start", {"id_token": "APP-1", "start_code": code})
        assert raised.value.field == "start_code"
        assert (station.daemon.state, station.screen.start_code,
                station.store.store.outbox()) == before
        assert station.store.store.audit() == []

    run(tmp_path, body, ui=APP_START)


def test_a_start_code_is_refused_where_no_app_start_is_offered(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        assert station.status.snapshot()["app_start"] is None
        with pytest.raises(ProtocolError, match=r"^start_code: app start by QR code is not "):
            await commands.handle("remote_start", {"id_token": "APP-1",
                                                   "start_code": station.screen.start_code})
        assert station.daemon.state.phase.value == "Available"

    run(tmp_path, body)


def test_the_remote_start_model_carries_the_start_code():
    start = RemoteStart.from_json({"id_token": "APP-1", "start_code": "AB2CD3EF"})
    assert start.start_code == "AB2CD3EF" and start.to_json()["start_code"] == "AB2CD3EF"
    assert "start_code" not in RemoteStart.from_json({"id_token": "APP-1"}).to_json()
    for bad in (5, "", "has space", "x" * 33):
        with pytest.raises(ProtocolError) as raised:
            RemoteStart.from_json({"id_token": "APP-1", "start_code": bad})
        assert raised.value.field == "body.start_code"
