"""The journal marker: what the journal held at its last session-level commit, kept in
a small file beside the database, so a journal that lost its tail (a damaged WAL
frame dropped by SQLite, a file emptied or replaced) is noticed at start instead of
starting afresh.

Provides `JournalMarker(path)` for `<database>.marker`:
- `check_before_open(database)`: a missing or empty database while a marker exists;
- `check(conn)`: the journal holds less than the marker says (the marked session is
  gone, its close is gone, or, while it is open, it has fewer readings; a closed
  session's readings may be thinned by the retention policy);
- `write_from(conn)` (at start) and `record(conn, session_id)` (after the commit that
  opens a session, starts its energy or closes it): the marker now.

The file holds two fixed-size slots, each a JSON line with a sequence number and a
CRC-32, written alternately in place with an fsync: a write cut by a power loss
leaves the other slot valid, and after creation no write needs a new disk block, so
the marker can still be written on a full disk. Only ids, counts and a flag are kept
(no token, no card data).

On failure: `check_before_open`/`check` raise `StoreError` naming the database, the
marker and what is missing (the daemon exits 3; docs/service.md says what the
technician does). A marker with no valid slot is refused the same way. Writing the
marker after a commit that succeeded never fails the commit: an OSError is logged
(rate-limited) and the next session-level commit writes it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import zlib
from dataclasses import dataclass
from pathlib import Path

from terminal.kernel.logsetup import FaultLogger, get_logger
from terminal.store.base import StoreError

log = get_logger("store")
MARKER_SUFFIX = ".marker"
SLOT_BYTES = 256
AFTER_DAMAGE = ("restore the journal from a backup, or, to start with an empty journal "
                "deliberately, move the database and its marker aside (docs/service.md, "
                "'A damaged or lost journal')")


@dataclass(frozen=True)
class Mark:
    """The journal at a session-level commit: its latest session (None: none yet),
    whether that session was closed, and how many readings it had."""

    seq: int
    session_id: str | None
    closed: bool
    readings: int

    def encode(self) -> bytes:
        body = {"seq": self.seq, "session_id": self.session_id, "closed": self.closed,
                "readings": self.readings}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        line = json.dumps({**body, "crc": zlib.crc32(text.encode())}, sort_keys=True,
                          separators=(",", ":")).encode() + b"\n"
        if len(line) > SLOT_BYTES:
            raise ValueError(f"journal marker: session id too long ({self.session_id!r})")
        return line.ljust(SLOT_BYTES, b" ")

    @classmethod
    def decode(cls, slot: bytes) -> Mark | None:
        try:
            data = json.loads(slot.decode("utf-8"))
            crc = data.pop("crc")
            text = json.dumps(data, sort_keys=True, separators=(",", ":"))
            if zlib.crc32(text.encode()) != crc:
                return None
            return cls(int(data["seq"]), data["session_id"], bool(data["closed"]),
                       int(data["readings"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def marker_path(database: Path) -> Path:
    return database.with_name(database.name + MARKER_SUFFIX)


class JournalMarker:
    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = marker_path(database)
        self.last: Mark | None = None
        self._faults = FaultLogger(log, "journal marker")

    # ---- reading and checking ---------------------------------------------------------

    def read(self) -> Mark | None:
        """The newest valid slot; None when there is no marker file. StoreError when
        the file exists and no slot is valid."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"journal marker {self.path}: cannot read: {exc}") from None
        marks = [m for m in (Mark.decode(raw[i:i + SLOT_BYTES])
                             for i in range(0, len(raw), SLOT_BYTES)) if m is not None]
        if not marks:
            raise StoreError(
                f"journal marker {self.path}: damaged (no valid record); it cannot tell "
                f"whether database {self.database} is complete; {AFTER_DAMAGE}")
        return max(marks, key=lambda m: m.seq)

    def check_before_open(self) -> None:
        """A marker without its database (or with an empty one): the journal was lost."""
        mark = self.read()
        self.last = mark
        if mark is None:
            return
        if not self.database.exists() or (self.database.is_file()
                                          and self.database.stat().st_size == 0):
            state = "missing" if not self.database.exists() else "empty (0 bytes)"
            raise StoreError(
                f"database {self.database}: {state}, but the journal marker {self.path} "
                f"says it held {_what(mark)}; the journal was lost; {AFTER_DAMAGE}")

    def check(self, conn: sqlite3.Connection) -> None:
        """The journal holds at least what the marker says."""
        mark = self.last
        if mark is None or mark.session_id is None:
            return
        row = conn.execute("SELECT closed_at FROM sessions WHERE id = ?",
                           (mark.session_id,)).fetchone()
        problem = None
        if row is None:
            problem = f"session {mark.session_id} is missing"
        elif mark.closed and row[0] is None:
            problem = f"the close of session {mark.session_id} is missing"
        elif not mark.closed:  # a closed session's readings may be thinned by retention
            count = _readings(conn, mark.session_id)
            if count < mark.readings:
                problem = (f"session {mark.session_id} has {count} readings, "
                           f"{mark.readings} were committed")
        if problem is not None:
            raise StoreError(
                f"database {self.database}: holds less than the journal marker {self.path} "
                f"says ({problem}): the journal lost its tail; the file is left untouched "
                f"for inspection; {AFTER_DAMAGE}")

    # ---- writing ----------------------------------------------------------------------

    def write_from(self, conn: sqlite3.Connection) -> None:
        """The marker from what the journal holds now (at start)."""
        row = conn.execute(
            "SELECT id FROM sessions ORDER BY rowid DESC LIMIT 1").fetchone()
        self.record(conn, row[0] if row else None)

    def record(self, conn: sqlite3.Connection, session_id: str | None) -> None:
        """The marker after a session-level commit (an OSError is logged, rate-limited)."""
        closed, readings = False, 0
        if session_id is not None:
            row = conn.execute("SELECT closed_at FROM sessions WHERE id = ?",
                               (session_id,)).fetchone()
            if row is None:  # pragma: no cover - the caller just committed it
                return
            closed, readings = row[0] is not None, _readings(conn, session_id)
        seq = self.last.seq + 1 if self.last is not None else 0
        mark = Mark(seq, session_id, closed, readings)
        try:
            self._write(mark)
        except OSError as exc:
            self._faults.failed(f"{self.path}: {exc}")
            return
        self._faults.recovered()
        self.last = mark

    def _write(self, mark: Mark) -> None:
        slot = mark.encode()
        if not self.path.exists() or self.path.stat().st_size < 2 * SLOT_BYTES:
            self._create(slot)
            return
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, slot, (mark.seq % 2) * SLOT_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _create(self, slot: bytes) -> None:
        """Both slots, written to a new file and renamed into place (atomic)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, slot + slot)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _readings(conn: sqlite3.Connection, session_id: str) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM readings WHERE session_id = ?",
                            (session_id,)).fetchone()[0])


def _what(mark: Mark) -> str:
    if mark.session_id is None:
        return "a journal with no session yet"
    return f"session {mark.session_id} ({'closed' if mark.closed else 'open'})"
