"""The service menu's tables in the journal: its durable state and the read-only queries
of its diagnostics and export bundle (docs/service.md).

Provides:
- `ServiceStore(store)`: on the store's worker thread, `get` / `put` / `delete` one JSON
  value per key in `service_state` (store migration 5: the service menu keeps
  `out_of_service` and `pin_lockout` there), and the read-only figures the service menu
  shows: the backend outbox (`backend_figures`), the latest `sessions` (no card tokens),
  `session_faults` and the `audit` rows.
- `database_report(path)`: db-integrity.txt of the export bundle, on a read-only
  connection of its own.

Self-contained on purpose (SQL only, no service-menu logic): it imports the journal's
`Store` for typing only. On failure: sqlite3 errors and JSON decode errors propagate to
the caller unchanged; nothing here retries or swallows them.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminal.kernel.clock import iso_utc

if TYPE_CHECKING:
    from terminal.store import Store


class ServiceStore:
    """The service menu's queries on the journal; runs on the store's thread."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT value_json FROM service_state WHERE key = ?",
                                (key,)).fetchone()
        return dict(json.loads(row[0])) if row else None

    def put(self, key: str, value: dict[str, Any], at: datetime) -> None:
        self.conn.execute(
            "INSERT INTO service_state (key, value_json, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, "
            "updated_at = excluded.updated_at",
            (key, json.dumps(value, sort_keys=True), iso_utc(at)))

    def delete(self, key: str) -> None:
        self.conn.execute("DELETE FROM service_state WHERE key = ?", (key,))

    def backend_figures(self) -> dict[str, Any]:
        pending, oldest = self.conn.execute(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL"
        ).fetchone()
        last = self.conn.execute("SELECT MAX(delivered_at) FROM outbox").fetchone()[0]
        return {"pending": int(pending), "oldest_pending_at": oldest,
                "last_delivered_at": last}

    def sessions(self, limit: int) -> list[dict[str, Any]]:
        """The latest sessions: times, energy, stop reason and the amount charged (no
        token: the bundle carries no card tokens)."""
        rows = self.conn.execute(
            "SELECT s.id, s.opened_at, s.started_at, s.stopped_at, s.closed_at, s.phase, "
            "s.stop_reason, s.detail, s.source, s.meter_serial, s.meter_start_wh, "
            "s.meter_stop_wh, r.receipt_json FROM sessions s "
            "LEFT JOIN receipts r ON r.session_id = s.id "
            "ORDER BY s.opened_at DESC, s.rowid DESC LIMIT ?", (limit,)).fetchall()
        found = []
        for (sid, opened, started, stopped, closed, phase, reason, detail, source, serial,
             start_wh, stop_wh, receipt_json) in rows:
            receipt = json.loads(receipt_json) if receipt_json else None
            energy = (str(Decimal(stop_wh) - Decimal(start_wh))
                      if start_wh is not None and stop_wh is not None else None)
            found.append({
                "id": sid, "opened_at": opened, "started_at": started, "stopped_at": stopped,
                "closed_at": closed, "phase": phase, "stop_reason": reason, "detail": detail,
                "source": source, "meter_serial": serial, "energy_wh": energy,
                "total": receipt.get("amount_charged") if receipt else None,
                "currency": receipt.get("currency") if receipt else None,
                "has_receipt": receipt is not None,
            })
        return found

    def session_faults(self, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT session_id, at, trigger, detail FROM transitions "
            "WHERE to_phase = 'Faulted' OR trigger IN ('MeterFault', 'ChargerFault') "
            "ORDER BY at DESC LIMIT ?", (limit,)).fetchall()
        return [{"at": at, "source": "session", "event": trigger, "fault": detail,
                 "session_id": sid} for sid, at, trigger, detail in rows]

    def audit(self, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT id, at, kind, detail FROM audit ORDER BY id DESC "
                                 "LIMIT ?", (limit,)).fetchall()
        return [{"id": i, "at": at, "kind": kind, "detail": json.loads(detail)}
                for i, at, kind, detail in rows]


def database_report(path: Path) -> str:
    """db-integrity.txt: PRAGMA integrity_check and every table's row count, on a
    read-only connection of its own (the journal's writer is not held up)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        integrity = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name")]
        counts = {name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
                  for name in tables}
    finally:
        conn.close()
    lines = [f"database: {path}", f"schema version: {version}",
             f"size: {pages} pages of {page_size} bytes ({free} free)",
             "integrity_check: " + "; ".join(integrity), "", "rows per table:"]
    lines += [f"  {name}: {count}" for name, count in counts.items()]
    return "\n".join(lines) + "\n"
