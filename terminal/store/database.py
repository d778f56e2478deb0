"""The journal as one object: `Store`, and `AsyncStore` that runs it on its own thread.

Provides:
- `Store.open(path, create=True, marker=False)`: one SQLite connection (opened, checked
  and migrated by `terminal.store.schema.connect`; with `marker`, also checked against
  the journal marker, terminal.store.marker), with the tables' methods of `JournalTables`
  (sessions, readings, transitions, receipts, connector state, `commit()` of a step),
  `OutboxTables` (outbox, audit log), `PaymentTables` (payments, refunds) and
  `ReportTables` (taps, the connector's status log, the heartbeat). One
  connection writes; use a Store from one thread.
- `AsyncStore(store)`: every `call(fn, ...)` runs on one worker thread, in order, so
  fsyncs never stall the event loop.

On failure: opening raises `StoreError` naming the file and the problem and leaves a
damaged file untouched; the methods' failures are described in their modules.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from terminal.store.base import StoreError
from terminal.store.journal import JournalTables
from terminal.store.marker import AFTER_DAMAGE, JournalMarker
from terminal.store.outbox import OutboxTables
from terminal.store.payments import PaymentTables
from terminal.store.report_tables import ReportTables
from terminal.store.schema import connect, schema_version
from terminal.store.signed import SignedTables

T = TypeVar("T")


class Store(JournalTables, OutboxTables, PaymentTables, SignedTables, ReportTables):
    """The journal. Use from one thread (AsyncStore does that for the daemon)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, marker: bool = False) -> Store:
        """`marker`: the daemon's journal, checked against its marker file (a journal
        that holds less than the marker says is refused) and keeping it up to date."""
        path = Path(path)
        if not marker:
            return cls(connect(path, create=create), path)
        journal_marker = JournalMarker(path)
        journal_marker.check_before_open()
        if journal_marker.last is not None:
            _check_read_only(journal_marker, path)
        conn = connect(path, create=create)
        try:
            journal_marker.write_from(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"database {path}: damaged ({exc}); the file is left "
                             "untouched for inspection") from None
        except BaseException:
            conn.close()
            raise
        store = cls(conn, path)
        store.marker = journal_marker
        return store

    def close(self) -> None:
        self.conn.close()

    @property
    def schema_version(self) -> int:
        return schema_version(self.conn)


class AsyncStore:
    """The Store on its own worker thread: one writer, calls run in order, the event
    loop awaits them without blocking."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.store.close()


def _check_read_only(journal_marker: JournalMarker, path: Path) -> None:
    """The journal against its marker on a read-only connection: a journal that lost
    its tail is refused before any connection could checkpoint its WAL (a writer's
    close would fold the frames SQLite still accepts into the database and delete the
    WAL, the evidence). A file SQLite cannot open at all is left to `connect()`."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               check_same_thread=False)
    except sqlite3.Error:
        return
    try:
        journal_marker.check(conn)
    except sqlite3.DatabaseError as exc:
        if "no such table" not in str(exc):
            return  # damaged: connect() says how
        raise StoreError(f"database {path}: has no journal tables, but the journal "
                         f"marker {journal_marker.path} says it was in use; "
                         f"the file is left untouched for inspection; {AFTER_DAMAGE}") from None
    finally:
        conn.close()
