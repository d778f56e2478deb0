"""What the journal stops keeping, and when: the retention policy's SQL, in small batches.

Provides:
- `RetentionPolicy`: the periods (days) of the policy ([retention] in the config);
- `Budget(max_rows, max_s)`: how much one batch may do before it commits and hands the
  journal back (a poll's commit waits at most one batch);
- `RetentionTables(conn)`, each method one batch in one transaction, returning how many
  rows it changed (0: nothing left to do):
  - `prune_outbox(before)`: delivered outbox messages delivered before `before`
    (a message not yet delivered is never deleted);
  - `anonymise(before, at)`: sessions closed before `before` lose their id token (also
    in their authorisation, which keeps only what the receipt shows: source, caps of
    money, card scheme and last 4 digits, payment reference), their card payments the
    card token and the masked number beyond the last 4 digits, their CDRs the token
    (`cdr_token.uid`, `contract_id`); audit entries lose technician ids and free texts; cached
    authorisations that expired before `before` are deleted; taps from before it lose
    their id token (NULL). What a receipt shows and
    what recomputing the bill needs stay (card scheme, last 4 digits, references, caps);
  - `expire(before)`: sessions closed before `before` (the legal period) are deleted
    with everything of theirs (readings, transitions, receipt, payment, refunds,
    messages; not while a message of theirs waits for delivery), and audit entries,
    taps and connector status rows older than it (the status row in force at
    `before` stays);
  - `next_to_thin(before)`: the oldest session closed before `before` whose readings
    may be thinned, with its row and readings as stored (`as_readings()` converts
    them, on another thread: the journal's is held only for the read); `drop_readings`
    deletes the given samples (never a start, resume or stop reading) and
    `mark_thinned` records that the session is done, deletes its phase changes
    (transitions: diagnostics; the row keeps the final phase, stop reason and detail)
    and keeps its terms once in `terms` for all sessions with the same terms;
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

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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

RawReading = tuple[int, str, str, str, str | None, str | None, str | None, str | None]
"""A reading as stored: seq, kind, meter_time, energy_wh, power_w, current_a, voltage_v,
serial."""


@dataclass(frozen=True)
class RetentionPolicy:
    """The periods, in days. Outbox <= privacy <= legal, thinning <= legal (the config
    loader checks this)."""

    outbox_days: int = 30
    thin_after_days: int = 14
    privacy_days: int = 180
    legal_days: int = 3653


@dataclass(frozen=True)
class Budget:
    """What one batch may do: at most `max_rows` rows and about `max_s` seconds of work
    before it commits (checked between statements of at most 50 rows)."""

    max_rows: int = 500
    max_s: float = 0.005


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
            while (room := min(meter.room(), _CHUNK)) > 0:
                # taps keep what the report counts (result, reason, decision time)
                changed = self.conn.execute(
                    "UPDATE taps SET token = NULL WHERE id IN (SELECT id FROM taps "
                    "INDEXED BY taps_to_anonymise WHERE token IS NOT NULL AND at < ? "
                    "LIMIT ?)", (cutoff, room)).rowcount
                meter.rows += changed
                if changed < room:
                    break
        return meter.rows

    def _anonymise_sessions(self, ids: list[str], at: datetime) -> int:
        marks = ",".join("?" * len(ids))
        now = iso_utc(at)
        changed = self.conn.execute(
            "UPDATE sessions SET id_token = ?, anonymised_at = ?, authorization_json = "
            "CASE WHEN authorization_json IS NULL THEN NULL ELSE json_remove(json_set("
            "authorization_json, '$.id_token', ?), '$.valid_until', '$.energy_cap_wh', "
            "'$.tariff_json', '$.recheck') END "
            f"WHERE id IN ({marks})", (ANONYMISED, now, ANONYMISED, *ids)).rowcount
        changed += self.conn.execute(
            "UPDATE payments SET token = ?, masked_pan = '****' || last4, envelope_json = NULL, "
            # a payment terminal's masked numbers (its receipt lines stay, as the receipt)
            "pt_json = CASE WHEN pt_json IS NULL THEN NULL ELSE json_remove(pt_json, "
            "'$.masked_pan', '$.booking.masked_pan', '$.reversal.masked_pan', "
            "'$.release.masked_pan') END "
            f"WHERE session_id IN ({marks})", (ANONYMISED, *ids)).rowcount
        changed += self.conn.execute(  # the CDR's token, as the session's
            "UPDATE cdrs SET cdr_json = json_set(cdr_json, '$.cdr_token.uid', ?, "
            f"'$.cdr_token.contract_id', ?) WHERE session_id IN ({marks})",
            (ANONYMISED, ANONYMISED, *ids)).rowcount
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
        """Delete sessions closed before `before` with everything of theirs (their signed
        meter values too), audit entries and signed values of no session from before
        it; how many rows. The newest session is never deleted: the
        journal marker (terminal/store/marker.py) names it, and a journal without it
        would be refused at the next start as one that lost its tail."""
        cutoff = iso_utc(before)
        meter = self._meter()
        with transaction(self.conn):
            while meter.room() > 0:
                row = self.conn.execute(
                    "SELECT s.id FROM sessions s INDEXED BY sessions_open WHERE s.closed_at "
                    "IS NOT NULL AND s.closed_at < ? AND NOT EXISTS (SELECT 1 FROM outbox o "
                    "WHERE o.session_id = s.id AND o.delivered_at IS NULL) "
                    # the newest session stays: the journal marker names it
                    "AND s.rowid < (SELECT MAX(rowid) FROM sessions) "
                    "ORDER BY s.closed_at LIMIT 1", (cutoff,)).fetchone()
                if row is None:
                    break
                meter.rows += self._delete_session(row[0])
            if meter.room() > 0:
                meter.rows += self.conn.execute(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? "
                    "ORDER BY at LIMIT ?)", (cutoff, min(meter.room(), _CHUNK))).rowcount
            if meter.room() > 0:
                # signed documents of no session (a transaction the meter held without an
                # id of ours, ended at a restart); each meter's newest stays (the next
                # document's pagination is checked against it)
                meter.rows += self.conn.execute(
                    "DELETE FROM signed_values WHERE id IN (SELECT v.id FROM signed_values v "
                    "WHERE v.received_at < ? AND NOT EXISTS (SELECT 1 FROM sessions s "
                    "WHERE s.id = v.session_id) AND v.id < (SELECT MAX(w.id) FROM "
                    "signed_values w WHERE w.meter_serial = v.meter_serial) LIMIT ?)",
                    (cutoff, min(meter.room(), _CHUNK))).rowcount
            if meter.room() > 0:
                meter.rows += self.conn.execute(
                    "DELETE FROM taps WHERE id IN (SELECT id FROM taps WHERE at < ? "
                    "ORDER BY at LIMIT ?)", (cutoff, min(meter.room(), _CHUNK))).rowcount
            if meter.room() > 0:
                # the row in force at the cutoff stays: it says what held from then on
                meter.rows += self.conn.execute(
                    "DELETE FROM status_log WHERE id IN (SELECT id FROM status_log "
                    "WHERE at < ? AND id < (SELECT MAX(id) FROM status_log WHERE at < ?) "
                    "ORDER BY at LIMIT ?)",
                    (cutoff, cutoff, min(meter.room(), _CHUNK))).rowcount
        return meter.rows

    def _delete_session(self, session_id: str) -> int:
        rows = 0
        for table in ("readings", "transitions", "receipts", "cdrs", "refunds", "payments",
                      "outbox", "signed_values"):
            rows += self.conn.execute(
                f"DELETE FROM {table} WHERE session_id = ?", (session_id,)).rowcount
        return rows + self.conn.execute(
            "DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount

    # ---- thinning ---------------------------------------------------------------------

    def next_to_thin(self, before: datetime) -> tuple[dict[str, Any], list[RawReading]] | None:
        """The oldest session closed before `before` that may be thinned (closed, every
        message delivered, its payment settled): its row and its readings as stored
        (`as_readings` turns them into `(seq, kind, MeterReading)`, off this thread)."""
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
        # a signing meter's documents: the session's bill depends on them
        session["signed_rows"] = self.store.signed_values(session["id"])
        return session, self.raw_readings(session["id"])

    def raw_readings(self, session_id: str) -> list[RawReading]:
        """A session's readings in order, as stored, with their seq (to delete them by)."""
        return self.conn.execute(
            "SELECT seq, kind, meter_time, energy_wh, power_w, current_a, voltage_v, serial "
            "FROM readings WHERE session_id = ? ORDER BY seq", (session_id,)).fetchall()

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
        """The session's thinning is done: its phase changes go too (its row keeps the
        final phase, stop reason and detail, and its times), and its terms move to the
        `terms` table, kept once for every session priced by the same terms
        (`JournalTables.session` reads them from there)."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM transitions WHERE session_id = ?", (session_id,))
            row = self.conn.execute("SELECT tariff_json FROM sessions WHERE id = ?",
                                    (session_id,)).fetchone()
            terms_id = None
            if row is not None and row[0] is not None:
                digest = hashlib.sha256(row[0].encode()).hexdigest()
                self.conn.execute("INSERT OR IGNORE INTO terms (digest, terms_json) "
                                  "VALUES (?, ?)", (digest, row[0]))
                terms_id = self.conn.execute("SELECT id FROM terms WHERE digest = ?",
                                             (digest,)).fetchone()[0]
            self.conn.execute(
                "UPDATE sessions SET thinned_at = ?, terms_id = COALESCE(?, terms_id), "
                "tariff_json = CASE WHEN ? IS NULL THEN tariff_json END WHERE id = ?",
                (iso_utc(at), terms_id, terms_id, session_id))

    def checkpoint(self) -> int:
        """Copy the journal's write-ahead log into the database now (passive: never
        waits), so that no later commit of a poll has to copy a large log; the pages
        copied."""
        row = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[2]) if row and row[2] > 0 else 0

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


def as_readings(rows: list[RawReading]) -> list[tuple[int, str, MeterReading]]:
    """Stored readings as `(seq, kind, MeterReading)` (as `JournalTables.readings` reads
    them: Decimal from their text, no export energy)."""
    def dec(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    return [(seq, kind, MeterReading(
        timestamp=datetime.fromisoformat(t), energy_import_wh=Decimal(e), energy_export_wh=None,
        power_w=dec(p), voltage_v=dec(v), current_a=dec(c), serial=s))
        for seq, kind, t, e, p, c, v, s in rows]
