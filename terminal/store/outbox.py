"""The outbox the backend link drains, and the audit log.

Provides:
- `OutboxMessage` (one queued message, its payload decoded) and `queue_message()`,
  which the other tables call inside their own transaction so a fact and its message
  are committed together;
- `OutboxTables`, a mixin of `Store`: `add_outbox()` (idempotent by key),
  `outbox()` (in the order queued), `mark_delivered()`, `outbox_stats()`,
  `requeue_since()`, and the audit log: `add_audit()` (kept in the audit table and
  queued for the backend) and `audit()` (newest first).

On failure: sqlite3 errors propagate after a rollback (a second message under the same
idempotency key from `queue_message` is an IntegrityError). A delivery mark is written
without fsync: one lost to a power cut only means the message goes out again, and the
backend drops the duplicate by its idempotency key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.store.base import Tables, row_dict


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    kind: str
    session_id: str | None
    seq_no: int | None
    idempotency_key: str
    created_at: str
    payload: dict[str, Any]
    delivered_at: str | None


def queue_message(
    conn: sqlite3.Connection, kind: str, session_id: str | None, seq_no: int | None, key: str,
    created: str, payload: dict[str, Any],
) -> None:
    """Queue one message in the caller's transaction."""
    conn.execute(
        "INSERT INTO outbox (kind, session_id, seq_no, idempotency_key, created_at, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (kind, session_id, seq_no, key, created, json.dumps(payload, sort_keys=True)),
    )


class OutboxTables(Tables):
    def add_outbox(self, kind: str, key: str, payload: dict[str, Any], at: datetime,
                   session_id: str | None = None) -> bool:
        """Queue one message for the backend (audit events, status reports); False when
        a message with this idempotency key is already queued."""
        with self._transaction():
            exists = self.conn.execute(
                "SELECT 1 FROM outbox WHERE idempotency_key = ?", (key,)).fetchone()
            if exists:
                return False
            queue_message(self.conn, kind, session_id, None, key, iso_utc(at), payload)
            return True

    def outbox(self, *, pending_only: bool = False, limit: int = 1000,
               after_id: int = 0) -> list[OutboxMessage]:
        """Outbox messages in id order (the order they were queued), from `after_id` on."""
        where = "WHERE id > ?" + (" AND delivered_at IS NULL" if pending_only else "")
        rows = self.conn.execute(
            "SELECT id, kind, session_id, seq_no, idempotency_key, created_at, payload, "
            f"delivered_at FROM outbox {where} ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [
            OutboxMessage(i, k, s, q, key, c, json.loads(p), d)
            for i, k, s, q, key, c, p, d in rows
        ]

    def mark_delivered(self, ids: Iterable[int], at: datetime) -> int:
        """Mark outbox messages delivered (the broker acknowledged them); how many
        changed (an id already delivered does not count)."""
        ids = list(ids)
        if not ids:
            return 0
        # Not fsynced (WAL, synchronous=NORMAL for this commit only): a mark lost to a
        # power cut only means the message goes out again, and the backend drops the
        # duplicate by its idempotency key. Billing data keeps synchronous=FULL.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._transaction():
                cursor = self.conn.executemany(
                    "UPDATE outbox SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
                    [(iso_utc(at), i) for i in ids],
                )
                return int(cursor.rowcount)
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")

    def outbox_stats(self) -> dict[str, Any]:
        """Pending messages: how many, and when the oldest was queued (None if none)."""
        count, oldest = self.conn.execute(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL"
        ).fetchone()
        return {"pending": int(count), "oldest_pending_at": oldest}

    def requeue_since(self, since: datetime) -> int:
        """Send again every message queued at or after `since` (the backend asked to
        reconcile; it drops what it has by idempotency key); how many."""
        with self._transaction():
            cursor = self.conn.execute(
                "UPDATE outbox SET delivered_at = NULL WHERE created_at >= ? "
                "AND delivered_at IS NOT NULL", (iso_utc(since),))
            return int(cursor.rowcount)

    # ---- audit log ----------------------------------------------------------------------

    def add_audit(self, kind: str, detail: dict[str, Any], at: datetime) -> int:
        """One audit event (tariff pushed, session stopped remotely, service action...),
        kept in the audit table and queued for the backend; its id."""
        when = iso_utc(at)
        text = json.dumps(detail, sort_keys=True)
        with self._transaction():
            cursor = self.conn.execute(
                "INSERT INTO audit (at, kind, detail) VALUES (?, ?, ?)", (when, kind, text))
            audit_id = int(cursor.lastrowid or 0)
            queue_message(self.conn, "Audit", None, None, f"audit:{audit_id}", when,
                          {"audit_id": audit_id, "at": when, "kind": kind, "detail": detail})
        return audit_id

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [row_dict(cursor, row) for row in cursor.fetchall()]
