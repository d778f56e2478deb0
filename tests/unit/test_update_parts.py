"""The update's parts in process (docs/updates.md): the `firmware_update` command (wire
decode, the handler writing the updater's request, its refusals), the FirmwareStatus
relay into the outbox, the layout's atomic switch, the journal, the release checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from terminal import __version__
from terminal.backend import protocol
from terminal.backend.commands import Commands
from terminal.backend.protocol import ProtocolError
from terminal.config import parse_config
from terminal.localapi import RequestError
from terminal.station import Station, build_station, database_path, load_station_terms
from terminal.store import Store
from terminal.update.install import InstallError, read_release
from terminal.update.journal import Journal, JournalError, JournalState, Step, UpdateRequest
from terminal.update.layout import COMPLETE, Layout, LayoutError
from terminal.update.relay import FirmwareRelay
from terminal.update.request import RequestFileError, request_path, take_request
from terminal.update.source import failure_status
from tests.unit.clockfake import FakeClock
from tests.unit.test_commands import TARIFF_FILE
from tests.unit.test_daemon_journal import ScriptedCharger, ScriptedMeter
from tests.unit.test_service import PIN, Ctx, run

BODY = {"requestId": 12, "firmware": {"location": "https://updates.example/repo",
                                      "version": "0.2.0"}}


def station_run(tmp_path: Path, body) -> None:  # type: ignore[no-untyped-def]
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op", "state_dir": str(tmp_path / "state")},
        "session": {"tariff_file": str(TARIFF_FILE)},
        "localapi": {"socket_path": str(tmp_path / "api.sock")},
        "update": {"root_dir": str(tmp_path / "opt")},
    })
    (tmp_path / "state").mkdir()
    clock = FakeClock()

    async def scenario() -> None:
        station = build_station(config, clock, Store.open(database_path(config)),
                                ScriptedMeter(clock), ScriptedCharger(), load_station_terms(config))
        try:
            await body(station, station.commands)
        finally:
            station.store.close()

    asyncio.run(scenario())


def test_firmware_update_decodes_from_the_wire() -> None:
    command = protocol.Command.from_json({"name": "firmware_update", "body": BODY})
    assert command.message.version == "0.2.0" and command.message.request_id == 12
    assert command.to_json() == {"name": "firmware_update", "body": BODY}
    for body, field in (
            ({**BODY, "requestId": "12"}, "body.requestId"),
            ({"requestId": 1, "firmware": {**BODY["firmware"], "location": "ftp://x/y"}},
             "body.firmware.location"),
            ({"requestId": 1, "firmware": {**BODY["firmware"], "version": "../etc"}},
             "body.firmware.version"),
            ({"requestId": 1}, "body.firmware")):
        with pytest.raises(ProtocolError) as caught:
            protocol.Command.from_json({"name": "firmware_update", "body": body})
        assert caught.value.field == field


def test_firmware_update_command_writes_the_request_and_refuses_a_second(tmp_path) -> None:
    async def body(station: Station, commands: Commands) -> None:
        assert await commands.handle("firmware_update", BODY) == {
            "status": "Accepted", "requestId": 12}
        state_dir = tmp_path / "state"
        assert json.loads(request_path(state_dir).read_text()) == {
            "request_id": 12, "version": "0.2.0", "folder": None,
            "location": "https://updates.example/repo"}
        with pytest.raises(ProtocolError, match="waiting"):
            await commands.handle("firmware_update", {**BODY, "requestId": 13})
        request = take_request(state_dir)
        assert request is not None and request.request_id == 12
        # an update under way (the updater's journal) refuses a new one
        journal = Journal(Layout(tmp_path / "opt").journal_path)
        journal.save(JournalState(Step.INSTALLING, UpdateRequest(12, "0.2.0", "x")))
        with pytest.raises(ProtocolError, match="under way"):
            await commands.handle("firmware_update", {**BODY, "requestId": 14})
        journal.save(JournalState())
        with pytest.raises(ProtocolError, match="already running"):
            await commands.handle("firmware_update", {
                "requestId": 15, "firmware": {**BODY["firmware"], "version": __version__}})
        assert not request_path(state_dir).exists()
        audit = [row["kind"] for row in station.store.store.audit()]
        assert audit == ["firmware_update"]

    station_run(tmp_path, body)


def test_relay_queues_each_report_once_in_order(tmp_path) -> None:
    async def body(station: Station, commands: Commands) -> None:
        layout = Layout(tmp_path / "opt")
        relay = FirmwareRelay(layout.journal_path, station.store, station.clock,
                              station.backend)
        assert await relay.relay_once() == 0  # no journal yet
        state = JournalState(Step.DOWNLOADING, UpdateRequest(4, "0.2.0", "x"))
        state.report("Downloading")
        Journal(layout.journal_path).save(state)
        assert await relay.relay_once() == 1
        state.report("InvalidSignature", "InvalidSignature: bad")
        Journal(layout.journal_path).save(state)
        assert await relay.relay_once() == 1
        fresh = FirmwareRelay(layout.journal_path, station.store, station.clock,
                              station.backend)  # a restarted daemon: nothing twice
        assert await fresh.relay_once() == 0
        rows = [m for m in station.store.store.outbox() if m.kind == "firmware_status"]
        assert [(m.payload["status"], m.payload["requestId"], m.payload["version"])
                for m in rows] == [("Downloading", 4, "0.2.0"), ("InvalidSignature", 4,
                                                                 "0.2.0")]
        assert rows[1].payload["info"] == "InvalidSignature: bad"
        layout.journal_path.write_text("{not json")
        assert await relay.relay_once() == 0  # logged, read again later

    station_run(tmp_path, body)


def test_layout_switches_atomically_and_never_to_a_half_built_release(tmp_path) -> None:
    layout = Layout(tmp_path)
    for version in ("1.0", "1.1"):
        layout.release_dir(version).mkdir(parents=True)
    (layout.release_dir("1.0") / COMPLETE).write_text("1.0")
    assert layout.current_version() is None
    layout.switch("1.0")
    assert layout.current_version() == "1.0"
    with pytest.raises(LayoutError, match="not a complete release"):
        layout.switch("1.1")
    assert layout.current_version() == "1.0"
    with pytest.raises(LayoutError, match="current"):
        layout.remove_release("1.0")
    assert layout.prune(("1.0",)) == ["1.1"]
    assert not (tmp_path / "current.new").exists()


def test_journal_round_trip_and_a_damaged_one(tmp_path) -> None:
    journal = Journal(tmp_path / "journal.json")
    assert journal.load().step is Step.IDLE
    state = JournalState(Step.SWITCHING, UpdateRequest(None, "2.0", folder="/media/usb"),
                         previous="1.0")
    state.report("InstallRebooting")
    journal.save(state)
    again = journal.load()
    assert again.step is Step.SWITCHING and again.previous == "1.0"
    assert again.request == state.request and again.reports == state.reports
    (tmp_path / "journal.json").write_text('{"step": "sideways"}')
    with pytest.raises(JournalError, match="not an update journal"):
        journal.load()
    request_path(tmp_path).write_text("[]")
    with pytest.raises(RequestFileError):
        take_request(tmp_path)
    assert not request_path(tmp_path).exists()


def test_release_metadata_must_name_the_version(tmp_path) -> None:
    (tmp_path / "wheels").mkdir()
    meta = {"version": "2.0", "python": "3.11", "wheels": [], "requirement": "evterm==2.0"}
    (tmp_path / "release.json").write_text(json.dumps(meta))
    assert read_release(tmp_path, "2.0") == (tmp_path / "wheels", "evterm==2.0")
    with pytest.raises(InstallError, match="names version"):
        read_release(tmp_path, "2.1")
    (tmp_path / "release.json").write_text(json.dumps({**meta, "requirement": "evil==1"}))
    with pytest.raises(InstallError, match="requirement"):
        read_release(tmp_path, "2.0")


def test_fetch_failures_map_to_firmware_statuses() -> None:
    names = {}
    for name in ("InvalidSignature", "ExpiredMetadata", "RollbackAttack",
                 "RepositoryUnreachable", "NoSuchRelease", "OSError"):
        names[name] = failure_status(type(name, (Exception,), {})("x"))[0]
    assert names == {"InvalidSignature": "InvalidSignature",
                     "ExpiredMetadata": "InvalidSignature", "RollbackAttack": "InvalidSignature",
                     "RepositoryUnreachable": "DownloadFailed",
                     "NoSuchRelease": "DownloadFailed", "OSError": "DownloadFailed"}


def test_service_action_update_hands_a_usb_copy_to_the_updater(tmp_path) -> None:
    from terminal.service.pins import hash_pin


    async def body(ctx: Ctx) -> None:
        token = await ctx.login()
        state_dir = tmp_path / "state"
        with pytest.raises(RequestError, match=r"^folder: .* is not under"):
            await ctx.action(token, "update", folder="/etc", version="0.2.0")
        with pytest.raises(RequestError, match=r"^version:"):
            await ctx.action(token, "update", folder=str(tmp_path / "media" / "r"),
                             version="../x")
        assert not request_path(state_dir).exists()
        reply = await ctx.action(token, "update", folder=str(tmp_path / "media" / "repo"),
                                 version="0.2.0")
        assert reply["version"] == "0.2.0"
        request = take_request(state_dir)
        assert request == UpdateRequest(None, "0.2.0", None, str(tmp_path / "media" / "repo"))
        assert ctx.audit_kinds()[-1] == "service_action"

    run(tmp_path, hash_pin(PIN), body, update={"root_dir": str(tmp_path / "opt")})


def test_update_cli_status_bad_version_and_one_updater_at_a_time(tmp_path, capsys) -> None:
    import fcntl
    import os

    from terminal.cli import main

    config = tmp_path / "evterm.toml"
    config.write_text(f'[station]\nid = "ST1"\noperator = "Op"\nstate_dir = "{tmp_path}"\n'
                      f'[session]\ntariff_file = "{TARIFF_FILE}"\n'
                      f'[update]\nroot_dir = "{tmp_path / "opt"}"\n')
    assert main(["update", "--config", str(config), "status", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["current"] is None and shown["step"] == "idle" and shown["reports"] == []
    assert main(["update", "--config", str(config), "start", "--version", "../x",
                 "--location", "http://x"]) == 2
    assert "--version" in capsys.readouterr().err
    lock = tmp_path / "opt" / "update" / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert main(["update", "--config", str(config), "start", "--version", "0.2.0",
                     "--location", "http://127.0.0.1:9"]) == 3
        assert "another updater is running" in capsys.readouterr().err
    finally:
        os.close(fd)
    assert not Layout(tmp_path / "opt").journal_path.exists()  # nothing was started
