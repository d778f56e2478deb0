"""What the journal keeps for the operator's report (migration 12): taps, the connector's
status log, the heartbeat and power-loss outages, their retention, the facts read back
(`iter_sessions`, `iter_taps`, `iter_status`), and the export bundle's facts/ folder."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from drivers.meter.monitor import MeterFault, PollOutcome
from terminal.connector_status import StatusLog, connector_status
from terminal.identification.tap_log import TapLog
from terminal.observation import Observation
from terminal.report.bundle import Pseudonyms, read_bundle, write_facts
from terminal.report.facts import (
    ReportError,
    iter_sessions,
    iter_status,
    iter_taps,
    open_read_only,
    session_from_json,
    to_json,
)
from terminal.service.redaction import scan_folder
from terminal.session import Phase, SessionState
from terminal.store import SCHEMA_VERSION, AsyncStore, Store
from terminal.store.retention import Budget, RetentionTables
from tests.unit.clockfake import FakeClock
from tests.unit.retention_helpers import charge, deliver_all
from tests.unit.session_helpers import charger

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PAN = "4111111111111111"


@pytest.fixture
def store(tmp_path):
    journal = Store.open(tmp_path / "journal.db")
    yield journal
    journal.close()


def statuses(store: Store) -> list[tuple[str, str, str]]:
    return store.conn.execute("SELECT at, status, cause FROM status_log ORDER BY id").fetchall()


# ---- the tables ----------------------------------------------------------------------


def test_migration_12_adds_the_taps_and_the_status_log(store):
    assert store.schema_version == SCHEMA_VERSION >= 12
    tables = {row[0] for row in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert {"taps", "taps_at", "status_log", "status_log_at"} <= tables


def test_taps_are_read_back_in_their_period_and_never_hold_a_card_number(store):
    store.add_tap(T0, "pcsc", "rfid", "accepted", "accepted", "04A1B2C3D4", 12.5, "s1")
    store.add_tap(T0 + timedelta(hours=1), "pcsc", "card", "declined", "declined",
                  f"x{PAN}", 830.0, None)
    store.add_tap(T0 + timedelta(days=2), "serial", "rfid", "declined", "invalid",
                  "04FFFF", None, "s2")
    conn = open_read_only(store.path)
    taps = list(iter_taps(conn, T0, T0 + timedelta(days=1)))
    assert [(t.kind, t.result, t.token, t.decision_ms) for t in taps] == [
        ("rfid", "accepted", "04A1B2C3D4", 12.5), ("card", "declined", None, 830.0)]
    assert taps[0].at == T0 and taps[0].session_id == "s1"
    assert len(list(iter_taps(conn))) == 3
    assert PAN not in (store.path.read_bytes() + store.path.with_name(
        "journal.db-wal").read_bytes()).decode("latin-1")


def test_the_status_in_force_at_the_start_of_the_period_comes_first(store):
    store.add_status(T0, "Available", "started")
    store.add_status(T0 + timedelta(hours=2), "Faulted", "charger_fault")
    store.add_status(T0 + timedelta(hours=3), "Available", "ready")
    conn = open_read_only(store.path)
    since = T0 + timedelta(hours=1)
    rows = [(s.at, s.status, s.cause) for s in iter_status(conn, since, T0 + timedelta(hours=3))]
    assert rows == [(since, "Available", "started"),
                    (T0 + timedelta(hours=2), "Faulted", "charger_fault")]
    at_a_row = [(s.status, s.at) for s in iter_status(conn, T0 + timedelta(hours=2))]
    assert at_a_row == [("Faulted", T0 + timedelta(hours=2)),  # once, not twice
                        ("Available", T0 + timedelta(hours=3))]
    with pytest.raises(ValueError, match="Broken"):
        store.add_status(T0, "Broken", "")


def test_a_start_after_a_power_loss_journals_the_outage_from_the_last_heartbeat(store):
    assert store.note_power_loss(T0) is False  # a new journal: nothing to count
    store.add_status(T0, "Available", "started")
    store.beat(T0 + timedelta(minutes=5))
    assert store.note_power_loss(T0 + timedelta(hours=1)) is True
    assert statuses(store)[-1] == ("2026-11-02T08:05:00.000Z", "Unavailable", "power_loss")
    assert store.note_power_loss(T0 + timedelta(hours=2)) is False  # already counted
    store.add_status(T0 + timedelta(hours=2), "Available", "started")
    store.add_status(T0 + timedelta(hours=3), "Unavailable", "stopped")
    assert store.note_power_loss(T0 + timedelta(hours=4)) is False  # a clean stop


# ---- the connector's status ----------------------------------------------------------


def fault(kind: str = "no_response") -> PollOutcome:
    return PollOutcome(None, False, MeterFault(kind, "meter silent", T0), "timeout")


def test_the_status_follows_faults_sessions_the_plug_and_the_gates():
    idle, open_ = SessionState(), SessionState(phase=Phase.CHARGING)
    seen = Observation(charger=charger("A"))
    assert connector_status(idle, seen, None) == ("Available", "ready")
    assert connector_status(idle, seen, "out of service: repair") == \
        ("Unavailable", "out_of_service")
    assert connector_status(open_, seen, "out of service: x") == ("Occupied", "session")
    assert connector_status(idle, Observation(charger=charger("B")), None) == \
        ("Occupied", "plugged")
    assert connector_status(open_, Observation(charger=charger("C", fault="overtemp")),
                            None) == ("Faulted", "charger_fault")
    assert connector_status(idle, Observation(charger_error="timeout"), None) == \
        ("Faulted", "charger_fault")
    assert connector_status(idle, Observation(outcome=fault(), charger=charger("A")),
                            None) == ("Faulted", "meter_fault")


def test_the_status_log_writes_changes_only_and_a_clean_stop(store):
    clock = FakeClock(T0)
    port = SimpleNamespace(state=SessionState(), refusal_reason=lambda: None)
    seen = Observation(charger=charger("A"))
    log = StatusLog(AsyncStore(store), clock, port, seen)  # type: ignore[arg-type]

    async def go() -> None:
        await log.start()
        for minute, (state, observed) in enumerate([
                (SessionState(), charger("A")), (SessionState(), charger("A")),
                (SessionState(phase=Phase.CHARGING), charger("C")),
                (SessionState(phase=Phase.FINISHING), charger("B")),
                (SessionState(), charger("B")),  # session closed, car still there
                (SessionState(), charger("A", fault="overtemp")),
                (SessionState(), charger("A"))]):
            clock.t_s = minute * 60
            port.state, seen.charger = state, observed
            await log.after_poll()
        clock.t_s = 10 * 60
        await log.stop()

    asyncio.run(go())
    assert [(s, c) for _, s, c in statuses(store)] == [
        ("Available", "started"), ("Occupied", "session"), ("Faulted", "charger_fault"),
        ("Available", "ready"), ("Unavailable", "stopped")]
    assert store.last_beat() == "2026-11-02T08:10:00.000Z"


def test_a_status_the_journal_cannot_take_is_tried_again_at_the_next_poll(store):
    clock = FakeClock(T0)
    port = SimpleNamespace(state=SessionState(), refusal_reason=lambda: None)
    log = StatusLog(AsyncStore(store), clock, port,  # type: ignore[arg-type]
                    Observation(charger=charger("A")))
    real = store.add_status

    def broken(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    async def go() -> None:
        store.add_status = broken  # type: ignore[method-assign]
        await log.after_poll()  # logged, no exception
        store.add_status = real  # type: ignore[method-assign]
        await log.after_poll()

    asyncio.run(go())
    assert [(s, c) for _, s, c in statuses(store)] == [("Available", "started")]


# ---- taps ----------------------------------------------------------------------------


def test_decisions_are_journaled_after_the_fact_and_other_outcomes_are_not(store):
    tap_log = TapLog(AsyncStore(store), FakeClock(T0))  # type: ignore[arg-type]

    async def go() -> None:
        tap_log.record(reader="pcsc", kind="rfid", result="accepted", reason="accepted",
                       token="04A1", decision_ms=40.0, session_id="s1")
        tap_log.record(reader="pcsc", kind="rfid", result="in_use", reason="in_use",
                       token="04B2", decision_ms=3.0, session_id=None)
        tap_log.record(reader="pcsc", kind="card", result="declined", reason="declined",
                       token="tok", decision_ms=900.0, session_id="s2")
        assert store.conn.execute("SELECT COUNT(*) FROM taps").fetchone()[0] == 0
        await tap_log.drain()

    asyncio.run(go())
    rows = store.conn.execute("SELECT kind, result, token, decision_ms, session_id FROM taps "
                              "ORDER BY id").fetchall()
    assert rows == [("rfid", "accepted", "04A1", 40.0, "s1"),
                    ("card", "declined", "tok", 900.0, "s2")]


def test_a_tap_the_journal_cannot_take_is_logged_and_the_tap_stands(store, caplog):
    tap_log = TapLog(AsyncStore(store), FakeClock(T0))  # type: ignore[arg-type]

    def broken(**row: object) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    store.add_tap = broken  # type: ignore[method-assign]

    async def go() -> None:
        tap_log.record(reader="pcsc", kind="rfid", result="declined", reason="invalid",
                       token="04A1", decision_ms=5.0, session_id=None)
        await tap_log.drain()

    asyncio.run(go())
    assert "tap not journaled" in caplog.text


# ---- retention -----------------------------------------------------------------------


def test_tap_tokens_go_with_the_privacy_period_rows_with_the_legal_one(store):
    for day in range(6):
        at = T0 + timedelta(days=day)
        store.add_tap(at, "pcsc", "rfid", "accepted", "accepted", f"04A{day}", 10.0, None)
        store.add_status(at, "Available" if day % 2 else "Occupied", "ready")
    tables = RetentionTables(store, Budget(max_rows=2, max_s=10))
    now = T0 + timedelta(days=10)
    while tables.anonymise(T0 + timedelta(days=3), now):
        pass
    tokens = [r[0] for r in store.conn.execute("SELECT token FROM taps ORDER BY at")]
    assert tokens == [None, None, None, "04A3", "04A4", "04A5"]
    while tables.expire(T0 + timedelta(days=2, hours=12)):
        pass
    assert store.conn.execute("SELECT COUNT(*) FROM taps").fetchone()[0] == 3
    # the row in force at the cutoff stays: the period after it is still covered
    assert [s for _, s, _ in statuses(store)] == ["Occupied", "Available", "Occupied",
                                                  "Available"]
    assert statuses(store)[0][0] == "2026-11-04T08:00:00.000Z"


# ---- sessions as facts -----------------------------------------------------------------


def test_a_session_s_fact_carries_the_money_its_receipt_printed(store):
    charge(store, "s1", T0, 120, idle_after_s=30)
    charge(store, "s2", T0 + timedelta(days=3), 60, energy_wh=Decimal(2_000_000))
    receipt = json.loads(store.conn.execute(
        "SELECT receipt_json FROM receipts WHERE session_id = 's1'").fetchone()[0])
    conn = open_read_only(store.path)
    facts = list(iter_sessions(conn, "ST1", T0, T0 + timedelta(days=1)))
    assert [f.session_id for f in facts] == ["s1"]
    fact = facts[0]
    assert fact.receipt_present and fact.currency == receipt["currency"]
    assert fact.amount_charged == Decimal(receipt["amount_charged"]) > 0
    assert fact.energy_wh == Decimal(receipt["energy_wh"]) > 0
    assert sum((v.gross for v in fact.vat_rows), Decimal(0)) + fact.no_vat_amount == \
        fact.amount_charged
    assert all(v.net + v.vat == v.gross for v in fact.vat_rows)
    assert fact.id_token == "04A1B2C3D4" and fact.payment_method == "rfid"
    assert fact.duration_s == pytest.approx(120 + 30 + 2, abs=2)
    assert session_from_json(json.loads(json.dumps(to_json(fact)))) == fact
    assert [f.session_id for f in iter_sessions(conn, "ST1")] == ["s1", "s2"]


def test_a_file_that_is_not_a_journal_is_named(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        open_read_only(tmp_path / "nothing.db")
    (tmp_path / "text.db").write_text("hello")
    with pytest.raises(ReportError, match="cannot be read as a journal"):
        open_read_only(tmp_path / "text.db")


# ---- the export bundle's facts -------------------------------------------------------


def bundle_with_facts(store: Store, tmp_path) -> tuple[object, list[str]]:
    charge(store, "s1", T0, 60, token="04A1B2C3D4")
    deliver_all(store, T0 + timedelta(minutes=5))
    store.add_tap(T0, "pcsc", "rfid", "accepted", "accepted", "04A1B2C3D4", 20.0, "s1")
    store.add_tap(T0 + timedelta(hours=1), "pcsc", "card", "declined", "declined", "CT-9",
                  700.0, None)
    store.add_tap(T0 + timedelta(hours=2), "pcsc", "card", "declined", "declined", "CT-9",
                  650.0, None)
    store.add_status(T0 - timedelta(days=30), "Available", "started")
    store.add_status(T0 + timedelta(hours=3), "Faulted", "meter_fault")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    files = write_facts(bundle / "facts", store.path, station_id="DE*EVT*E0001",
                        timezone="Europe/Berlin", now=T0 + timedelta(days=1), days=7)
    return bundle, files


def test_the_bundle_s_facts_read_back_with_tokens_as_pseudonyms(store, tmp_path):
    bundle, files = bundle_with_facts(store, tmp_path)
    assert files == ["facts/station.json", "facts/sessions.jsonl", "facts/taps.jsonl",
                     "facts/status.jsonl"]
    facts = read_bundle(bundle)
    assert (facts.station_id, facts.timezone, facts.currency) == \
        ("DE*EVT*E0001", "Europe/Berlin", "EUR")
    assert facts.since == "2026-10-27T08:00:00+00:00"
    sessions = list(facts.sessions)
    conn = open_read_only(store.path)
    original = next(iter_sessions(conn, "ST1"))
    assert [s.amount_charged for s in sessions] == [original.amount_charged]
    taps = list(facts.taps)
    assert [t.decision_ms for t in taps] == [20.0, 700.0, 650.0]
    tokens = [t.token for t in taps]
    assert tokens[1] == tokens[2] != tokens[0] and tokens[0] == sessions[0].id_token
    assert all(t.startswith("tok-") for t in tokens)
    assert [(s.status, s.cause) for s in facts.statuses] == \
        [("Available", "started"), ("Faulted", "meter_fault")]
    assert list(facts.taps) == taps  # read again from the file
    text = "".join(p.read_text() for p in (bundle / "facts").iterdir())
    assert "04A1B2C3D4" not in text and "CT-9" not in text
    assert scan_folder(bundle, {}) == []


def test_pseudonyms_never_look_like_card_numbers():
    pseudonym = Pseudonyms(b"k" * 32)
    assert pseudonym(PAN) == pseudonym(PAN) != Pseudonyms(b"j" * 32)(PAN)
    assert pseudonym(None) is None
    assert all(not any(c.isdigit() for c in pseudonym(str(n))) for n in range(200))


def test_what_is_not_a_bundle_and_a_bad_line_are_named(store, tmp_path):
    with pytest.raises(ReportError, match="not an export bundle"):
        read_bundle(tmp_path)
    bundle, _ = bundle_with_facts(store, tmp_path)
    taps = bundle / "facts" / "taps.jsonl"
    lines = taps.read_text().splitlines()
    taps.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    facts = read_bundle(bundle / "facts")
    with pytest.raises(ReportError, match=r"taps\.jsonl, line 2"):
        list(facts.taps)
    taps.write_text(lines[0].replace('"at"', '"when"') + "\n")
    with pytest.raises(ReportError, match=r"taps\.jsonl, line 1: tap fact"):
        list(read_bundle(bundle).taps)
    (bundle / "facts" / "station.json").write_text('{"station_id": "x"}')
    with pytest.raises(ReportError, match="missing or not text: timezone"):
        read_bundle(bundle)
