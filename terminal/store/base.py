"""What every module of the store shares: the error, the write transaction, row helpers.

Provides:
- `StoreError`: the database cannot be used (the message names the file and the
  problem) or a write would break the journal's rules (it names the row);
- `transaction(conn)`: BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.
  Explicit, because the store's connection is in autocommit mode (where `with conn:`
  would not begin a transaction);
- `Tables`: the base of the table mixins that `Store` is composed of (the connection
  and `_transaction()`);
- `row_dict()` (a row as {column: value}) and `text_or_none()` (Decimal -> TEXT, as
  amounts are stored).

On failure: sqlite3 errors propagate unchanged after the rollback; nothing here catches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from typing import Any


class StoreError(Exception):
    """The database cannot be used; the message names the file and the problem."""


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (re-raised)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Tables:
    """Base of the store's table mixins: they share one connection, used from one
    thread, and write in `_transaction()`s."""

    conn: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self.conn)


def row_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {desc[0]: value for desc, value in zip(cursor.description, row, strict=True)}


def text_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
