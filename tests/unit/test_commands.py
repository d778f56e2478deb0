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

from terminal.commands import Commands, pushed_tariff_path
from terminal.config import parse_config
from terminal.daemon import Daemon, database_path, load_station_terms
from terminal.protocol import ProtocolError
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


def run(tmp_path: Path, body: Callable[[Daemon, Commands, FakeClock], Awaitable[None]]) -> None:
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(TARIFF_FILE)},
        "localapi": {"socket_path": str(tmp_path / "api.sock")},
    })
    clock = FakeClock()

    async def scenario() -> None:
        daemon = Daemon(config, clock, Store.open(database_path(config)),
                        ScriptedMeter(clock), ScriptedCharger(), load_station_terms(config))
        await daemon.recover()
        try:
            await body(daemon, Commands(daemon), clock)
        finally:
            daemon.store.close()

    asyncio.run(scenario())


async def charge(daemon: Daemon, clock: FakeClock, polls: int = 3) -> None:
    for _ in range(polls):
        clock.advance(1)
        await daemon.poll_once()


def test_remote_start_and_stop_with_caps_and_audit(tmp_path):
    async def body(daemon: Daemon, commands: Commands, clock: FakeClock) -> None:
        started = await commands.handle("remote_start", {"id_token": "APP-1",
                                                         "cost_cap": "20.00"})
        assert started["phase"] == "Authorized"
        assert daemon.state.authorization.cost_cap == 20
        assert daemon.state.authorization.source == "remote"
        await charge(daemon, clock)
        assert daemon.state.phase.value == "Charging"
        with pytest.raises(ProtocolError, match="session_id"):
            await commands.handle("remote_stop", {"session_id": "another"})
        assert daemon.state.phase.value == "Charging"
        stopped = await commands.handle("remote_stop", {"session_id": started["session_id"]})
        assert stopped["phase"] == "Finishing"
        assert daemon.state.stop_reason.value == "Remote"
        kinds = [row["kind"] for row in daemon.store.store.audit()]
        assert kinds == ["remote_stop", "remote_start"]
        assert {m.kind for m in daemon.store.store.outbox()} >= {"Audit"}

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
    async def scenario(daemon: Daemon, commands: Commands, clock: FakeClock) -> None:
        before = (daemon.state, daemon.station_terms, daemon.store.store.outbox())
        with pytest.raises(ProtocolError) as raised:
            await commands.handle(command, body)
        assert raised.value.field == field
        assert (daemon.state, daemon.station_terms, daemon.store.store.outbox()) == before
        assert not pushed_tariff_path(str(tmp_path)).exists()

    run(tmp_path, scenario)


def test_a_pushed_tariff_prices_the_next_session_and_survives_a_restart(tmp_path):
    async def body(daemon: Daemon, commands: Commands, clock: FakeClock) -> None:
        await commands.handle("remote_start", {"id_token": "APP-1"})
        await charge(daemon, clock)
        running = daemon.terms
        assert (await commands.handle("tariff_update", {"tariff": new_tariff()})) == {
            "tariff_id": "PUSHED-1"}
        assert daemon.terms is running  # the running session keeps its terms
        assert daemon.station_terms.tariff.id == "PUSHED-1"
        saved = json.loads(pushed_tariff_path(str(tmp_path)).read_text())
        assert saved["id"] == "PUSHED-1"
        await commands.handle("remote_stop", {})
        assert [r["kind"] for r in daemon.store.store.audit()][:2] == [
            "remote_stop", "tariff_update"]

    run(tmp_path, body)
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(TARIFF_FILE)},
    })
    assert load_station_terms(config).tariff.id == "PUSHED-1"


def test_reconcile_sends_again_what_was_queued_since(tmp_path):
    async def body(daemon: Daemon, commands: Commands, clock: FakeClock) -> None:
        await commands.handle("remote_start", {"id_token": "APP-1"})
        await charge(daemon, clock)
        store = daemon.store.store
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
    async def body(daemon: Daemon, commands: Commands, clock: FakeClock) -> None:
        report = await commands.handle("diagnostics", {})
        assert report["state"]["station_id"] == "ST1"
        assert report["outbox"]["pending"] == 0
        assert report["version"]

    run(tmp_path, body)
