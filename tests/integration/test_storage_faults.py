"""Storage faults on a real small file system: the daemon runs in a private mount
namespace with its journal on a tmpfs of a few MiB (tests/integration/tmpfs.py). The
disk is filled while a session charges and freed again; a journal that existed is
emptied while the daemon is down."""

from __future__ import annotations

import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest

from hw_mocks.rig import Rig, RigError
from terminal.store import Store
from tests.integration.tmpfs import PrivateTmpfs

TMPFS_KIB = 4096


def journal(fs: PrivateTmpfs, rig: Rig, copy: Path) -> Store:
    """A copy of the journal on the tmpfs (SQLite resolves /proc/<pid>/root to this
    process's own root, so the files are copied out; the daemon has stopped)."""
    copy.mkdir()
    for source in fs.host(rig.database).parent.glob("evterm.db*"):
        shutil.copy(source, copy / source.name)
    return Store.open(copy / rig.database.name, create=False)


def tracebacks(rig: Rig, since: int) -> int:
    return rig.daemon_log.read_text(encoding="utf-8")[since:].count("Traceback")


def test_disk_full_while_charging_then_space_returns(tmp_path: Path) -> None:
    folder = tmp_path / "rig"
    with PrivateTmpfs(folder / "state", TMPFS_KIB) as fs, Rig(
            folder, speed=30.0, extra={"backend": {"min_free_storage_mb": 1}},
            daemon_prefix=fs.prefix) as rig:
        rig.start_station()
        rig.start_daemon()
        # the daemon itself refuses a start below min_free_storage_mb (no MQTT link here)
        fs.fill(leave_kib=512)
        rig.wait_for("storage refusal", lambda: not rig.state()["accepting_sessions"], 10)
        refused = rig.api("start", id_token="TOKEN-A")
        assert refused["ok"] is False and "storage low" in refused["error"], refused
        fs.free()
        rig.wait_for("storage accepted", lambda: rig.state()["accepting_sessions"], 10)

        session_id = rig.api("start", id_token="TOKEN-A")["session_id"]
        rig.ev("plug")
        rig.wait_phase("Charging")
        mark = len(rig.daemon_log.read_text(encoding="utf-8"))
        fs.fill()  # nothing left: the next commit fails
        rig.wait_for("output off", lambda: rig.ev("status")["output_on"] is False, 15)
        assert rig.state()["accepting_sessions"] is False
        time.sleep(2.0)  # 60 s simulated, 30 polls on a full disk
        stopped = rig.api("stop", id_token="TOKEN-A")
        assert stopped["ok"] is True, stopped
        delivered = Decimal(str(rig.ev("unplug")["plugs"][-1]["delivered_wh"]))
        time.sleep(1.0)
        assert tracebacks(rig, mark) <= 2  # the first failure, not one per poll
        fs.free()
        rig.wait_phase("Available", timeout_s=20)
        assert rig.state()["accepting_sessions"] is True
        assert rig.stop_daemon() == 0
        assert billed_wh(fs, rig, tmp_path, session_id, "Local") == int(delivered)


def billed_wh(fs: PrivateTmpfs, rig: Rig, tmp_path: Path, session_id: str, reason: str) -> Decimal:
    """The energy the journal bills for the session, once it is closed with `reason` and
    has its receipt (read from a copy of the journal on the small filesystem)."""
    store = journal(fs, rig, tmp_path / "copy")
    try:
        row = store.session(session_id)
        assert row["closed_at"] is not None and row["stop_reason"] == reason, row
        assert store.receipt(session_id) is not None
        return Decimal(row["meter_stop_wh"]) - Decimal(row["meter_start_wh"])
    finally:
        store.close()


@pytest.mark.parametrize("damage", ["zero-length", "deleted", "wal-frame"])
def test_a_journal_that_existed_is_never_silently_replaced_by_an_empty_one(
        tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "rig"
    with PrivateTmpfs(folder / "state", TMPFS_KIB) as fs, Rig(
            folder, speed=30.0, extra={"backend": {"min_free_storage_mb": 1}},
            daemon_prefix=fs.prefix) as rig:
        rig.start_station()
        rig.start_daemon()
        session_id = rig.api("start", id_token="TOKEN-A")["session_id"]
        rig.ev("plug")
        rig.wait_phase("Charging")
        rig.kill_daemon()
        database = fs.host(rig.database)
        wal = database.with_name(database.name + "-wal")
        database.with_name(database.name + "-shm").unlink(missing_ok=True)
        if damage == "wal-frame":
            # the first WAL frame holding the session: its checksum no longer matches,
            # so SQLite drops it and every later frame, without an error
            raw = bytearray(wal.read_bytes())
            at = raw.find(session_id.encode())
            assert at > 32, "the session is not in the WAL"
            raw[at] ^= 0x20
            wal.write_bytes(bytes(raw))
            before = database.read_bytes() + bytes(raw)
        else:
            wal.unlink(missing_ok=True)
            if damage == "zero-length":
                database.write_bytes(b"")
            else:
                database.unlink()
        with pytest.raises(RigError, match="exited with 3") as err:
            rig.start_daemon()
        message = str(err.value)
        assert "journal marker" in message and session_id in message
        assert "restore the journal from a backup" in message
        if damage == "wal-frame":
            assert f"session {session_id} is missing" in message
            assert database.read_bytes() + wal.read_bytes() == before  # left as they were
        else:
            assert not database.exists() or database.stat().st_size == 0


def test_restart_on_a_full_disk_closes_the_session_when_space_returns(tmp_path: Path) -> None:
    """The terminal restarts while the disk is full and a session is open: it starts
    (no crash loop), holds energy off, and closes the session from the journal and the
    meter's counter with its receipt once space returns."""
    folder = tmp_path / "rig"
    with PrivateTmpfs(folder / "state", TMPFS_KIB) as fs, Rig(
            folder, speed=30.0, extra={"backend": {"min_free_storage_mb": 1}},
            daemon_prefix=fs.prefix) as rig:
        rig.start_station()
        rig.start_daemon()
        session_id = rig.api("start", id_token="TOKEN-A")["session_id"]
        rig.ev("plug")
        rig.wait_phase("Charging")
        fs.fill()
        rig.wait_for("output off", lambda: rig.ev("status")["output_on"] is False, 15)
        rig.kill_daemon()
        ready = rig.start_daemon()
        assert ready["recovery"]["open_session"] == session_id
        assert ready["recovery"]["resumed"] is False
        assert ready["recovery"]["closed_when_journal_writable"] is True
        time.sleep(1.0)
        assert rig.ev("status")["output_on"] is False
        assert rig.state()["accepting_sessions"] is False
        delivered = Decimal(str(rig.ev("unplug")["plugs"][-1]["delivered_wh"]))
        fs.free()
        rig.wait_phase("Available", timeout_s=20)
        assert rig.stop_daemon() == 0
        assert billed_wh(fs, rig, tmp_path, session_id, "PowerLoss") == int(delivered)
