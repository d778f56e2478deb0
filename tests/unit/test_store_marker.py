"""The journal marker: a journal that existed never silently becomes empty or loses its
tail (a zero-length or missing database, a damaged WAL frame), and a torn marker write
leaves the previous record valid."""

from __future__ import annotations

import shutil

import pytest

from terminal.session import state_to_json
from terminal.store import Store, StoreError
from terminal.store.marker import SLOT_BYTES, JournalMarker, marker_path
from tests.unit.session_helpers import T0, Driver


def commit(store: Store, result) -> None:
    store.commit(result.records, state_to_json(result.state),
                 session_id=result.state.session_id or "S-1", station_id="ST1", at=T0)


def test_a_zero_length_journal_is_refused_when_the_marker_exists(tmp_path):
    path = tmp_path / "evterm.db"
    store = Store.open(path, marker=True)
    commit(store, Driver().authorize(0))
    store.close()
    path.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"evterm.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match=r"empty \(0 bytes\).*session S-1 \(open\)") as err:
        Store.open(path, marker=True)
    assert "restore the journal from a backup" in str(err.value)
    assert path.read_bytes() == b""  # left as it was


def test_a_missing_journal_is_refused_when_the_marker_exists(tmp_path):
    path = tmp_path / "evterm.db"
    Store.open(path, marker=True).close()  # no session yet: the marker says so
    path.unlink()
    with pytest.raises(StoreError, match="missing, but the journal marker"):
        Store.open(path, marker=True)
    assert not path.exists()


def test_a_first_start_and_a_deliberate_reset_start_afresh(tmp_path):
    path = tmp_path / "evterm.db"
    store = Store.open(path, marker=True)
    assert marker_path(path).stat().st_size == 2 * SLOT_BYTES
    store.close()
    path.unlink()
    marker_path(path).unlink()  # the technician moved both aside
    Store.open(path, marker=True).close()


def test_a_damaged_wal_frame_that_drops_the_open_session_is_refused(tmp_path):
    path = tmp_path / "live" / "evterm.db"
    path.parent.mkdir()
    store = Store.open(path, marker=True)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    commit(store, Driver().authorize(0))  # the session opens: in the WAL only
    copy = tmp_path / "copy"
    shutil.copytree(path.parent, copy)  # the files as a power cut leaves them
    store.close()
    wal = copy / "evterm.db-wal"
    raw = bytearray(wal.read_bytes())
    assert len(raw) > 32
    raw[-10] ^= 0xFF  # the last frame's checksum no longer matches: SQLite drops it
    wal.write_bytes(bytes(raw))
    before = (copy / "evterm.db").read_bytes() + bytes(raw)
    with pytest.raises(StoreError, match="session S-1 is missing"):
        Store.open(copy / "evterm.db", marker=True)
    # the evidence stays: no checkpoint folded the accepted frames in, the WAL is kept
    assert (copy / "evterm.db").read_bytes() + wal.read_bytes() == before


def test_a_lost_close_is_refused_and_thinned_readings_of_a_closed_session_are_not(
        tmp_path):
    path = tmp_path / "evterm.db"
    store = Store.open(path, marker=True)
    d = Driver()
    for result in (d.authorize(0), d.tick(1, 10_000, 0), d.tick(2, 10_010, 50_000),
                   d.tick(3, 10_030, 0, ev="A", output_on=False)):
        commit(store, result)
    assert store.session("S-1")["closed_at"] is not None
    store.conn.execute("UPDATE sessions SET closed_at = NULL")  # as if the close was lost
    store.close()
    with pytest.raises(StoreError, match="the close of session S-1 is missing"):
        Store.open(path, marker=True)
    plain = Store.open(path)
    plain.conn.execute("UPDATE sessions SET closed_at = 'x'")
    plain.conn.execute("DELETE FROM readings WHERE seq > 0")  # thinned by retention
    plain.close()
    Store.open(path, marker=True).close()


def test_an_open_session_that_lost_readings_is_refused(tmp_path):
    path = tmp_path / "evterm.db"
    store = Store.open(path, marker=True)
    d = Driver()
    for result in (d.authorize(0), d.tick(1, 10_000, 0)):  # the start reading
        commit(store, result)
    store.conn.execute("DELETE FROM readings")
    store.close()
    with pytest.raises(StoreError, match=r"has 0 readings, 1 were committed"):
        Store.open(path, marker=True)


def test_a_torn_marker_write_leaves_the_previous_record(tmp_path):
    path = tmp_path / "evterm.db"
    store = Store.open(path, marker=True)
    commit(store, Driver().authorize(0))
    store.close()
    marker = JournalMarker(path)
    newest = marker.read()
    assert newest is not None and newest.session_id == "S-1"
    raw = bytearray(marker.path.read_bytes())
    slot = (newest.seq % 2) * SLOT_BYTES
    raw[slot:slot + 20] = b"\x00" * 20  # the write was cut
    marker.path.write_bytes(bytes(raw))
    older = marker.read()
    assert older is not None and older.seq == newest.seq - 1
    raw[:] = b"\x00" * len(raw)
    marker.path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="damaged"):
        Store.open(path, marker=True)
