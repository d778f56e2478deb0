"""The end-of-day closings in the journal (store migration 10, docs/reconciliation.md).

Provides `ClosingStore(store)`, run on the store's worker thread:
- `add(closing_id, source, trigger, period_start, period_end, report, at)`: a closing
  with its Z-report (status 'repairing'), committed before any repair is sent;
- `finish(closing_id, report, at, outbox_kind)`: the Z-report with the repairs'
  outcomes, status 'done', and the report queued for the backend in the same
  transaction (outbox kind `outbox_kind`, idempotency key `z-report:<closing id>`);
- `update_report(closing_id, report, at)`: a repair's outcome kept as it happens;
- `last()`, `get(closing_id)`, `recent(limit)`, `unfinished()`: closings as dicts
  (`report` decoded);
- `payments(since, until, references, via)`: the journal's payments of one path (`via`:
  'gateway' or 'zvt'; every path when None) updated in [since, until) and those with
  one of `references` (our or the PSP's), typed (`PaymentRow`);
- `stale(via, statuses, closed_before)`: payments of a path still in one of
  `statuses` (in flight) whose session closed before `closed_before`, with the
  session's bill; `refunded(references)`: the amount refunded per payment reference.

Self-contained (SQL only): it imports the journal's `Store` for typing only. On
failure: sqlite3 errors propagate; every write is one transaction, rolled back on error.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from terminal.kernel.clock import iso_utc
from terminal.store.base import row_dict, transaction
from terminal.store.outbox import queue_message
from terminal.store.payments import PaymentRow

if TYPE_CHECKING:
    from terminal.store import Store


def _closing(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    out = row_dict(cursor, row)
    out["report"] = json.loads(out.pop("report_json"))
    return out


class ClosingStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn

    def add(self, closing_id: str, source: str, trigger: str, period_start: datetime | None,
            period_end: datetime, report: dict[str, Any], at: datetime) -> None:
        when = iso_utc(at)
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO closings (id, source, trigger, period_start, period_end, status, "
                "report_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'repairing', ?, "
                "?, ?)",
                (closing_id, source, trigger,
                 None if period_start is None else iso_utc(period_start), iso_utc(period_end),
                 json.dumps(report, sort_keys=True), when, when))

    def update_report(self, closing_id: str, report: dict[str, Any], at: datetime) -> None:
        with transaction(self.conn):
            self._set(closing_id, report, at, None)

    def finish(self, closing_id: str, report: dict[str, Any], at: datetime,
               outbox_kind: str) -> None:
        with transaction(self.conn):
            self._set(closing_id, report, at, "done")
            exists = self.conn.execute("SELECT 1 FROM outbox WHERE idempotency_key = ?",
                                       (f"z-report:{closing_id}",)).fetchone()
            if not exists:
                queue_message(self.conn, outbox_kind, None, None, f"z-report:{closing_id}",
                              iso_utc(at), report)

    def _set(self, closing_id: str, report: dict[str, Any], at: datetime,
             status: str | None) -> None:
        cursor = self.conn.execute(
            "UPDATE closings SET report_json = ?, updated_at = ?, status = COALESCE(?, status) "
            "WHERE id = ?", (json.dumps(report, sort_keys=True), iso_utc(at), status, closing_id))
        if cursor.rowcount != 1:
            raise ValueError(f"closings: no closing {closing_id!r}")

    def _select(self, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        cursor = self.conn.execute(f"SELECT * FROM closings {where}", params)
        return [_closing(cursor, row) for row in cursor.fetchall()]

    def last(self) -> dict[str, Any] | None:
        rows = self._select("ORDER BY period_end DESC, created_at DESC LIMIT 1", ())
        return rows[0] if rows else None

    def get(self, closing_id: str) -> dict[str, Any] | None:
        rows = self._select("WHERE id = ?", (closing_id,))
        return rows[0] if rows else None

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        return self._select("ORDER BY period_end DESC, created_at DESC LIMIT ?", (limit,))

    def unfinished(self) -> list[dict[str, Any]]:
        return self._select("WHERE status = 'repairing' ORDER BY period_end", ())

    # ---- the journal's side ------------------------------------------------------------------

    def payments(self, since: datetime | None, until: datetime,
                 references: Iterable[str] = (), via: str | None = None) -> list[PaymentRow]:
        refs = sorted(set(references))
        marks = ",".join("?" * len(refs))
        extra = f" OR reference IN ({marks}) OR psp_reference IN ({marks})" if refs else ""
        path = "via = ? AND " if via is not None else ""
        cursor = self.conn.execute(
            f"SELECT * FROM payments WHERE {path}((updated_at >= ? AND updated_at < ?)"
            + extra + ") ORDER BY created_at, reference",
            (*((via,) if via is not None else ()), iso_utc(since) if since else "",
             iso_utc(until), *refs, *refs))
        return [PaymentRow.from_row(row_dict(cursor, row)) for row in cursor.fetchall()]

    def stale(self, via: str, statuses: Iterable[str], closed_before: datetime
              ) -> list[tuple[PaymentRow, Decimal | None]]:
        """Payments of path `via` still in one of `statuses` whose session closed before
        `closed_before`, each with what the session's bill charged (None: no bill)."""
        wanted = sorted(set(statuses))
        marks = ",".join("?" * len(wanted))
        cursor = self.conn.execute(
            "SELECT p.*, r.amount_charged AS bill FROM payments p "
            "JOIN sessions s ON s.id = p.session_id "
            "LEFT JOIN receipts r ON r.session_id = s.id "
            f"WHERE p.via = ? AND p.status IN ({marks}) AND s.closed_at IS NOT NULL "
            "AND s.closed_at < ? ORDER BY p.created_at, p.reference",
            (via, *wanted, iso_utc(closed_before)))
        out = []
        for row in cursor.fetchall():
            data = row_dict(cursor, row)
            bill = data.pop("bill")
            out.append((PaymentRow.from_row(data), None if bill is None else Decimal(bill)))
        return out

    def refunded(self, references: Iterable[str]) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for reference in set(references):
            for (amount,) in self.conn.execute(
                    "SELECT amount FROM refunds WHERE reference = ?", (reference,)):
                out[reference] = out.get(reference, Decimal(0)) + Decimal(amount)
        return out
