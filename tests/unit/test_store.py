"""The journal: schema, one transaction per step, damage refused and left untouched."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from terminal.session import CloseSession, Phase, StopReason, state_to_json
from terminal.store import SCHEMA_VERSION, Store, StoreError
from tests.unit.session_helpers import T0, Driver


def journal_session(store: Store) -> Driver:
    d = Driver()
    for result in (
        d.authorize(0),
        d.tick(1, 10_000, 0),
        d.tick(2, 10_010, 50_000),
        d.tick(3, 10_024, 50_000),
        d.tick(4, 10_030, 0, ev="A", output_on=False),
    ):
        store.commit(result.records, state_to_json(result.state),
                     session_id=result.state.session_id or "S-1", station_id="ST1", at=T0)
    return d


def test_new_database_has_the_schema_and_pragmas(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    assert store.schema_version == SCHEMA_VERSION
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_session_is_journaled_and_read_back(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    d = journal_session(store)
    row = store.session("S-1")
    assert row["phase"] == "Completed" and row["stop_reason"] == "EVDisconnected"
    assert (row["meter_start_wh"], row["meter_stop_wh"]) == ("10000", "10030")
    kinds = [kind for kind, _ in store.readings("S-1")]
    assert kinds == ["start", "sample", "sample", "sample"]
    phases = [t["to_phase"] for t in store.transitions("S-1")]
    assert phases == ["Authorizing", "Authorized", "SuspendedEV", "Charging", "Completed"]
    events = [(m.kind, m.payload["event_type"], m.seq_no) for m in store.outbox()]
    assert events == [("TransactionEvent", "Started", 0), ("TransactionEvent", "Ended", 1)]
    assert store.connector_state() == state_to_json(d.state)
    assert store.open_sessions() == []


def test_a_session_cannot_be_closed_twice(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    again = CloseSession(T0, Phase.COMPLETED, StopReason.LOCAL, None)
    with pytest.raises(StoreError, match="cannot be closed twice"):
        store.commit([again], None, session_id="S-1", at=T0)
    assert store.session("S-1")["stop_reason"] == "EVDisconnected"  # rolled back


def test_a_failed_step_leaves_nothing_behind(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    d = Driver()
    first = d.authorize(0)
    store.commit(first.records, state_to_json(first.state), session_id="S-1", at=T0)
    offered = d.tick(1, 10_000, 0)
    broken = [*offered.records, CloseSession(T0, Phase.COMPLETED, None, None),
              CloseSession(T0, Phase.COMPLETED, None, None)]
    with pytest.raises(StoreError):
        store.commit(broken, state_to_json(offered.state), session_id="S-1", at=T0)
    assert store.readings("S-1") == [] and store.outbox() == []
    assert store.connector_state() == state_to_json(first.state)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_db(tmp_path):
    path = tmp_path / "evterm.db"
    store = Store.open(path)
    journal_session(store)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: b"garbage" * 20 + raw[140:], "not an SQLite database"),
        (lambda raw: raw[: len(raw) // 2], "truncated"),
        (lambda raw: raw[:4096] + bytes(b ^ 0x5A for b in raw[4096:8192]) + raw[8192:],
         "damaged|integrity check failed"),
    ],
    ids=["bad-header", "truncated", "scrambled-page"],
)
def test_a_damaged_database_is_refused_and_left_untouched(tmp_path, damage, message):
    path = make_db(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    before = digest(path)
    with pytest.raises(StoreError, match=message) as err:
        Store.open(path)
    assert str(path) in str(err.value)
    assert digest(path) == before
    wal = tmp_path / "evterm.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "evterm.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this software"):
        Store.open(path)


def test_reopening_keeps_everything(tmp_path):
    path = make_db(tmp_path)
    store = Store.open(path)
    assert store.session("S-1")["phase"] == "Completed"
    assert len(store.readings("S-1")) == 4


def test_the_amount_charged_is_kept_with_the_receipt_and_filled_in_for_older_journals(tmp_path):
    """What a card payment captures is the bill's amount, stored beside the receipt; a
    journal from before migration 6 gets it from its receipts when it is opened."""
    from decimal import Decimal

    from terminal.store import MIGRATIONS

    path = tmp_path / "evterm.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:5]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version=5")
    conn.execute("INSERT INTO sessions (id, opened_at, id_token, source, phase) "
                 "VALUES ('OLD', '2026-01-01T00:00:00Z', 'T', 'rfid', 'Completed')")
    conn.execute("INSERT INTO receipts (session_id, created_at, receipt_json, receipt_text) "
                 "VALUES ('OLD', '2026-01-01T00:00:00Z', '{\"amount_charged\": \"7.95\"}', 'x')")
    conn.commit()
    conn.close()
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    assert store.amount_charged("OLD") == Decimal("7.95")
    journal_session(store)
    assert store.amount_charged("S-1") is None  # no receipt yet: nothing to capture
    store.add_receipt("S-1", ({"amount_charged": "2.09"}, "text"), Decimal("2.09"), T0)
    assert store.amount_charged("S-1") == Decimal("2.09")
