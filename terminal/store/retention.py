"""What the journal stops keeping, and when: the retention policy's SQL, in small batches.

Provides:
- `RetentionPolicy`: the periods (days) of the policy ([retention] in the config);
- `Budget(max_rows, max_s)`: how much one batch may do before it commits and hands the
  journal back (a poll's commit waits at most one batch);
- `RetentionTables(conn)`, each method one batch in one transaction, returning how many
  rows it changed (0: nothing left to do):
  - `prune_outbox(before)`: delivered outbox messages delivered before `before`
    (a message not yet delivered is never deleted);
  - `anonymise(before)`: sessions closed before `before` lose their id token (also in
    their authorisation), their card payments the card token and the masked number
    beyond the last 4 digits; audit entries lose technician ids and free texts; cached
    authorisations that expired before `before` are deleted. What a receipt shows and
    what recomputing the bill needs stay (card scheme, last 4 digits, references, caps);
  - `expire(before)`: sessions closed before `before` (the legal period) are deleted
    with everything of theirs (readings, transitions, receipt, payment, refunds,
    messages), and audit entries older than it;
  - `next_to_thin(before)`: the oldest session closed before `before` whose readings
    may be thinned, with its row and readings `(seq, kind, reading)`; `drop_readings`
    deletes the given samples (never a start, resume or stop reading) and
    `mark_thinned` records that the session is done;
  - `last_run()` / `record_run(summary, at)`: what the job did last (diagnostics).

A session is thinned only when it is closed, its messages are all delivered to the
backend, and its card payment (if any) is settled (captured, voided, declined or
failed); a session still open is never touched. Anonymised and thinned sessions are
marked (`sessions.anonymised_at`, `sessions.thinned_at`, migration 7), so each batch
finds the next rows through a partial index instead of scanning what is already done.

On failure: sqlite3 errors propagate after the batch is rolled back (nothing half
done); the next batch starts again from what is committed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drivers.meter.reading import MeterReading
from terminal.kernel.clock import iso_utc
from terminal.store.base import row_dict, transaction

if TYPE_CHECKING:
    from terminal.store.database import Store

ANONYMISED = "anonymised"
"""What replaces an id token, a card token or a technician id after the privacy period."""

SETTLED = ("captured", "voided", "declined", "failed")
"""Card payments in these states are done with: the session may be thinned and anonymised."""

AUDIT_PERSONAL = ("technician", "text", "id_token")
"""Keys of an audit entry's detail that name or describe a person."""

_CHUNK = 50  # rows per statement inside a batch


@dataclass(frozen=True)
class RetentionPolicy:
    """The periods, in days. Outbox <= privacy <= legal, thinning <= legal (the config
    loader checks this)."""

    outbox_days: int = 30
    thin_after_days: int = 90
    privacy_days: int = 180
    legal_days: int = 3653


@dataclass(frozen=True)
class Budget:
    """What one batch may do: at most `max_rows` rows and about `max_s` seconds of work
    before it commits (checked between statements of at most 50 rows)."""

    max_rows: int = 500
    max_s: float = 0.010


class _Meter:
    """Rows done and time spent in one batch."""

    def __init__(self, budget: Budget, timer: Callable[[], float]) -> None:
        self.budget, self.timer = budget, timer
        self.started = timer()
        self.rows = 0

    def room(self) -> int:
        """Rows the batch may still change (0: stop and commit)."""
        if self.timer() - self.started >= self.budget.max_s:
            return 0
        return max(0, self.budget.max_rows - self.rows)


class RetentionTables:
    """The retention policy's batches on the journal (use on the store's thread)."""

    def __init__(self, store: Store, budget: Budget | None = None,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.store = store
        self.conn: sqlite3.Connection = store.conn
        self.budget = budget or Budget()
        self.timer = timer

    def _meter(self) -> _Meter:
        return _Meter(self.budget, self.timer)

    # ---- the outbox -------------------------------------------------------------------

    def prune_outbox(self, before: datetime) -> int:
        """Delete messages delivered before `before`, oldest first; how many."""
        cutoff = iso_utc(before)
        meter = self._meter()
        with transaction(self.conn):
            while (room := min(meter.room(), _CHUNK)) > 0:
                cursor = self.conn.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                    "WHERE delivered_at IS NOT NULL AND delivered_at < ? "
                    "ORDER BY delivered_at LIMIT ?)", (cutoff, room))
                meter.rows += cursor.rowcount
                if cursor.rowcount < room:
                    break
        return meter.rows

    # ---- the privacy period -----------------------------------------------------------

    def anonymise(self, before: datetime, at: datetime) -> int:
        """Drop the personal identifiers of sessions closed before `before` (and of their
        payments), of audit entries from before it, and cached authorisations that
        expired before it; how many rows changed."""
        cutoff = iso_utc(before)
        meter = self._meter()
        with transaction(self.conn):
            while (room := min(meter.room(), _CHUNK)) > 0:
                ids = [row[0] for row in self.conn.execute(
                    "SELECT s.id FROM sessions s INDEXED BY sessions_to_anonymise "
                    "WHERE s.closed_at IS NOT NULL AND s.anonymised_at IS NULL "
                    "AND s.closed_at < ? AND NOT EXISTS (SELECT 1 FROM outbox o "
                    "WHERE o.session_id = s.id AND o.delivered_at IS NULL) "
                    f"AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.session_id = s.id "
                    f"AND p.status NOT IN ({_settled()})) "
                    "ORDER BY s.closed_at LIMIT ?", (cutoff, room))]
                if not ids:
                    break
                meter.rows += self._anonymise_sessions(ids, at)
            if meter.room() > 0:
                meter.rows += self._anonymise_audit(cutoff, min(meter.room(), _CHUNK), at)
            if meter.room() > 0:
                meter.rows += self.conn.execute(
                    "DELETE FROM auth_cache WHERE rowid IN (SELECT rowid FROM auth_cache "
                    "WHERE expires_at < ? LIMIT ?)", (cutoff, min(meter.room(), _CHUNK))
                ).rowcount
        return meter.rows

    def _anonymise_sessions(self, ids: list[str], at: datetime) -> int:
        marks = ",".join("?" * len(ids))
        now = iso_utc(at)
        changed = self.conn.execute(
            "UPDATE sessions SET id_token = ?, anonymised_at = ?, authorization_json = "
            "CASE WHEN authorization_json IS NULL THEN NULL ELSE "
            "json_set(authorization_json, '$.id_token', ?) END "
            f"WHERE id IN ({marks})", (ANONYMISED, now, ANONYMISED, *ids)).rowcount
        changed += self.conn.execute(
            "UPDATE payments SET token = ?, masked_pan = '****' || last4, envelope_json = NULL "
            f"WHERE session_id IN ({marks})", (ANONYMISED, *ids)).rowcount
        return changed

    def _anonymise_audit(self, cutoff: str, limit: int, at: datetime) -> int:
        done = self.last_run().get("audit_anonymised_id", 0)
        rows = self.conn.execute(
            "SELECT id, at, detail FROM audit WHERE id > ? ORDER BY id LIMIT ?",
            (done, limit)).fetchall()
        changed = 0
        for audit_id, written, detail in rows:
            if written >= cutoff:
                break
            data = json.loads(detail)
            if isinstance(data, dict) and any(key in data for key in AUDIT_PERSONAL):
                data.update({key: ANONYMISED for key in AUDIT_PERSONAL if key in data})
                self.conn.execute("UPDATE audit SET detail = ? WHERE id = ?",
                                  (json.dumps(data, sort_keys=True), audit_id))
            changed += 1
            done = audit_id
        if changed:
            self._set_state("audit_anonymised_id", done, at)
        return changed

    # ---- the legal period -------------------------------------------------------------

    def expire(self, before: datetime) -> int:
        """Delete sessions closed before `before` with everything of theirs, and audit
        entries from before it; how many rows."""
        cutoff = iso_utc(before)
        meter = self._meter()
        with transaction(self.conn):
            while meter.room() > 0:
                row = self.conn.execute(
                    "SELECT id FROM sessions INDEXED BY sessions_open WHERE closed_at IS NOT "
                    "NULL AND closed_at < ? ORDER BY closed_at LIMIT 1", (cutoff,)).fetchone()
                if row is None:
                    break
                meter.rows += self._delete_session(row[0])
            if meter.room() > 0:
                meter.rows += self.conn.execute(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? "
                    "ORDER BY at LIMIT ?)", (cutoff, min(meter.room(), _CHUNK))).rowcount
        return meter.rows

    def _delete_session(self, session_id: str) -> int:
        rows = 0
        for table in ("readings", "transitions", "receipts", "refunds", "payments", "outbox"):
            rows += self.conn.execute(
                f"DELETE FROM {table} WHERE session_id = ?", (session_id,)).rowcount
        return rows + self.conn.execute(
            "DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount

    # ---- thinning ---------------------------------------------------------------------

    def next_to_thin(self, before: datetime,
                     ) -> tuple[dict[str, Any], list[tuple[int, str, MeterReading]]] | None:
        """The oldest session closed before `before` that may be thinned (closed, every
        message delivered, its payment settled), its row and readings in order."""
        cursor = self.conn.execute(
            "SELECT s.* FROM sessions s INDEXED BY sessions_to_thin "
            "WHERE s.closed_at IS NOT NULL AND s.thinned_at IS NULL AND s.closed_at < ? "
            "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.session_id = s.id "
            "AND o.delivered_at IS NULL) "
            f"AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.session_id = s.id "
            f"AND p.status NOT IN ({_settled()})) "
            "ORDER BY s.closed_at LIMIT 1", (iso_utc(before),))
        row = cursor.fetchone()
        if row is None:
            return None
        session = row_dict(cursor, row)
        return session, self.readings_with_seq(session["id"])

    def readings_with_seq(self, session_id: str) -> list[tuple[int, str, MeterReading]]:
        """A session's readings in order, each with its seq (to delete it by)."""
        seqs = [row[0] for row in self.conn.execute(
            "SELECT seq FROM readings WHERE session_id = ? ORDER BY seq", (session_id,))]
        readings = self.store.readings(session_id)
        return [(seq, kind, reading) for seq, (kind, reading) in zip(seqs, readings, strict=True)]

    def drop_readings(self, session_id: str, seqs: Iterable[int]) -> list[int]:
        """Delete samples of a closed session (start, resume and stop readings are never
        deleted) within one batch; the seqs it did not get to (do them next time)."""
        pending = list(seqs)
        meter = self._meter()
        with transaction(self.conn):
            open_row = self.conn.execute(
                "SELECT 1 FROM sessions WHERE id = ? AND closed_at IS NULL",
                (session_id,)).fetchone()
            if open_row is not None:
                raise ValueError(f"session {session_id} is open; its readings are kept")
            while pending and (room := min(meter.room(), _CHUNK)) > 0:
                chunk, pending = pending[:room], pending[room:]
                marks = ",".join("?" * len(chunk))
                self.conn.execute(
                    f"DELETE FROM readings WHERE session_id = ? AND kind = 'sample' "
                    f"AND seq IN ({marks})", (session_id, *chunk))
                meter.rows += len(chunk)
        return pending

    def mark_thinned(self, session_id: str, at: datetime) -> None:
        with transaction(self.conn):
            self.conn.execute("UPDATE sessions SET thinned_at = ? WHERE id = ?",
                              (iso_utc(at), session_id))

    # ---- what the job did last --------------------------------------------------------

    def last_run(self) -> dict[str, Any]:
        rows = self.conn.execute("SELECT key, value_json FROM retention_state").fetchall()
        return {key: json.loads(value) for key, value in rows}

    def record_run(self, summary: dict[str, Any], at: datetime) -> None:
        with transaction(self.conn):
            self._set_state("last_run", summary, at)

    def _set_state(self, key: str, value: Any, at: datetime) -> None:
        self.conn.execute(
            "INSERT INTO retention_state (key, value_json, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, "
            "updated_at = excluded.updated_at",
            (key, json.dumps(value, sort_keys=True), iso_utc(at)))


def _settled() -> str:
    return ", ".join(f"'{status}'" for status in SETTLED)
