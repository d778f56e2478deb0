"""The daemon in process with a scripted meter and charger: when the journal cannot be
written, energy is held off and no new session starts (the real hardware paths are
tested in tests/integration)."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.charger import ChargerStatus, EvState
from drivers.meter.reading import MeterReading
from terminal.config import parse_config
from terminal.localapi import RequestError
from terminal.station import build_station, database_path, load_station_terms
from terminal.store import Store
from tests.unit.clockfake import FakeClock

REPO = Path(__file__).resolve().parents[2]


class ScriptedMeter:
    model = None

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.energy_wh = Decimal(10_000)

    async def read_snapshot(self) -> MeterReading:
        self.energy_wh += 40
        return MeterReading(self.clock.now(), self.energy_wh, None, Decimal(150_000),
                            Decimal(800), Decimal("187.5"), "S1")

    def close(self) -> None:
        pass


class ScriptedCharger:
    def __init__(self) -> None:
        self.commanded = False
        self.plugged = True

    async def status(self) -> ChargerStatus:
        return ChargerStatus(EvState.C if self.plugged else EvState.A, self.commanded,
                             self.commanded)

    async def set_output(self, on: bool) -> None:
        self.commanded = on

    def close(self) -> None:
        pass


def test_a_journal_that_cannot_be_written_holds_energy_off(tmp_path):
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(REPO / "examples/tariffs/de_dc_hpc_adhoc.json")},
        "localapi": {"socket_path": str(tmp_path / "api.sock"), "dev_free_start": True},
    })
    clock = FakeClock()

    async def scenario() -> None:
        charger = ScriptedCharger()
        station = build_station(config, clock, Store.open(database_path(config)),
                                ScriptedMeter(clock), charger, load_station_terms(config))
        await station.recover()
        await station.driver_api.start({"id_token": "CARD"})
        for _ in range(3):
            clock.advance(1)
            await station.daemon.poll_once()
        assert station.daemon.state.phase.value == "Charging" and charger.commanded
        station.store.store.conn.close()  # the storage fails
        clock.advance(1)
        with pytest.raises(Exception, match="closed"):
            await station.daemon.poll_once()
        assert charger.commanded is False
        assert station.daemon.journal_failed
        shown = station.status.snapshot()  # the screen and the service menu see it
        assert shown["output_on"] is False and shown["journal_fault"] is True
        with pytest.raises(RequestError, match="cannot record sessions"):
            await station.driver_api.start({"id_token": "OTHER"})
        station.store._pool.shutdown()

    asyncio.run(scenario())


def test_a_value_the_journal_cannot_take_is_a_refused_step_not_a_failed_journal(tmp_path):
    """Only the storage failing (an SQLite or I/O error) holds energy off and refuses new
    sessions; a bad value in one step does not disable the terminal (issue 16)."""
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(REPO / "examples/tariffs/de_dc_hpc_adhoc.json")},
        "localapi": {"socket_path": str(tmp_path / "api.sock"), "dev_free_start": True},
    })
    clock = FakeClock()

    async def scenario() -> None:
        station = build_station(config, clock, Store.open(database_path(config)),
                                ScriptedMeter(clock), ScriptedCharger(),
                                load_station_terms(config))
        await station.recover()
        store = station.store.store
        commit = store.commit

        def refuses(*args: object, **kwargs: object) -> None:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

        store.commit = refuses  # type: ignore[method-assign]
        with pytest.raises(UnicodeEncodeError):
            await station.driver_api.start({"id_token": "CARD"})
        assert not station.daemon.journal_failed
        assert station.daemon.refusal_reason() is None
        store.commit = commit  # type: ignore[method-assign]
        reply = await station.driver_api.start({"id_token": "CARD"})
        assert reply["session_id"] and station.daemon.state.phase.value == "Authorized"
        station.store.close()

    asyncio.run(scenario())


def station_for(tmp_path, clock: FakeClock, charger: ScriptedCharger | None = None,
                **sections: dict):
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op", "state_dir": str(tmp_path)},
        "session": {"tariff_file": str(REPO / "examples/tariffs/de_dc_hpc_adhoc.json")},
        "localapi": {"socket_path": str(tmp_path / "api.sock"), "dev_free_start": True},
        **sections,
    })
    return build_station(config, clock, Store.open(database_path(config)),
                         ScriptedMeter(clock), charger or ScriptedCharger(),
                         load_station_terms(config))


def disk_full(*args: object, **kwargs: object) -> None:
    raise sqlite3.OperationalError("database or disk is full")


def test_a_failed_journal_recovers_through_the_write_probe_with_no_session_open(tmp_path):
    """The journal fails on a session's first commit (nothing is open afterwards); it is
    writable again at the next poll's probe, not only at the next session commit."""
    clock = FakeClock()

    async def scenario() -> None:
        station = station_for(tmp_path, clock)
        await station.recover()
        store = station.store.store
        commit = store.commit
        store.commit = disk_full  # type: ignore[method-assign]
        with pytest.raises(sqlite3.OperationalError):
            await station.driver_api.start({"id_token": "CARD"})
        assert station.daemon.journal_failed and not station.daemon.state.is_open
        store.commit = commit  # type: ignore[method-assign]  # space is back
        clock.advance(1)
        await station.daemon.poll_once()
        assert not station.daemon.journal_failed
        assert station.daemon.refusal_reason() is None
        reply = await station.driver_api.start({"id_token": "CARD"})
        assert reply["session_id"]
        station.store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["none", "loopback"])
def test_free_space_is_checked_by_the_daemon_whatever_the_backend(tmp_path, kind):
    """`min_free_storage_mb` refuses new sessions with no MQTT link."""
    clock = FakeClock()
    backend = {"kind": kind, "min_free_storage_mb": 1_000_000}
    if kind == "loopback":
        backend["socket_path"] = str(tmp_path / "backend.sock")

    async def scenario() -> None:
        station = station_for(tmp_path, clock, backend=backend)
        await station.recover()
        assert station.daemon.refusal_reason() is not None
        assert "storage low" in station.daemon.refusal_reason()
        with pytest.raises(RequestError, match="storage low"):
            await station.driver_api.start({"id_token": "CARD"})
        assert station.status.snapshot()["accepting_sessions"] is False
        station.store.close()

    asyncio.run(scenario())


def test_a_disk_full_while_charging_logs_one_traceback_not_one_per_poll(tmp_path, caplog):
    clock = FakeClock()
    clock.speed = 10_000.0  # the loop's waits take 0.1 ms

    async def scenario() -> None:
        charger = ScriptedCharger()
        station = station_for(tmp_path, clock, charger)
        daemon = station.daemon
        await station.recover()
        await station.driver_api.start({"id_token": "CARD"})
        for _ in range(3):
            clock.advance(1)
            await daemon.poll_once()
        assert daemon.state.phase.value == "Charging"
        station.store.store.commit = disk_full  # type: ignore[method-assign]
        polls = 0
        poll_once = daemon.poll_once

        async def counted() -> object:
            nonlocal polls
            polls += 1
            clock.advance(1)
            if polls >= 60:
                daemon.stop()
            return await poll_once()

        daemon.poll_once = counted  # type: ignore[method-assign]
        caplog.clear()
        await daemon.run_loop()
        assert polls == 60 and daemon.journal_failed and charger.commanded is False
        station.store._pool.shutdown()

    with caplog.at_level("INFO", logger="evterm"):
        asyncio.run(scenario())
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert 1 <= len(tracebacks) <= 2, [r.getMessage() for r in tracebacks]
    assert len(caplog.records) <= 6, [r.getMessage() for r in caplog.records]


def test_a_stop_while_the_disk_is_full_is_kept_and_the_receipt_follows(tmp_path):
    """Disk full while charging: energy is held off; the driver's stop is accepted (not
    an internal error), and once the journal can be written the session ends with that
    stop, closes at the unplug and gets its receipt."""
    clock = FakeClock()

    async def scenario() -> None:
        charger = ScriptedCharger()
        station = station_for(tmp_path, clock, charger)
        daemon, store = station.daemon, station.store.store
        await station.recover()
        reply = await station.driver_api.start({"id_token": "CARD"})
        session_id = reply["session_id"]
        for _ in range(3):
            clock.advance(1)
            await daemon.poll_once()
        assert daemon.state.phase.value == "Charging"
        commit = store.commit
        store.commit = disk_full  # type: ignore[method-assign]
        clock.advance(1)
        with pytest.raises(sqlite3.OperationalError):
            await daemon.poll_once()
        assert charger.commanded is False and daemon.journal_failed
        await station.driver_api.stop({"id_token": "CARD"})  # accepted
        clock.advance(1)
        with pytest.raises(sqlite3.OperationalError):
            await daemon.poll_once()
        store.commit = commit  # type: ignore[method-assign]  # space is back
        clock.advance(1)
        await daemon.poll_once()
        assert not daemon.journal_failed and daemon.state.phase.value == "Finishing"
        assert daemon.state.stop_reason.value == "Local"
        charger.plugged = False
        clock.advance(1)
        await daemon.poll_once()
        row = store.session(session_id)
        assert row["closed_at"] is not None and row["stop_reason"] == "Local"
        assert store.receipt(session_id) is not None
        assert charger.commanded is False
        station.store.close()

    asyncio.run(scenario())
