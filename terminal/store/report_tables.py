"""The journal's tables for the operator's report: taps and the connector's status log
(store migration 12, docs/reports.md "What the journal keeps for reports").

Provides `ReportTables`, a mixin of `Store` (use on the store's thread):
- `add_tap(...)`: one tap and its decision (the id token is a card's token or an RFID
  UID, never a card number: text that looks like one is refused here and stored as NULL);
- `add_status(at, status, cause)`: the connector's status from `at` on;
- `last_status()`: the newest status row (at, status, cause) or None;
- `beat(at)` / `last_beat()`: the daemon's heartbeat (a `service_state` key rewritten
  every minute), so that after a power loss the outage can be dated;
- `note_power_loss(at_start)`: at the daemon's start, when the last status row is not a
  clean stop, an Unavailable "power_loss" row at the last sign of life (the heartbeat or
  the last row, whichever is later); True when one was written.

On failure: sqlite3 errors propagate unchanged (the callers log them: a failed write
never breaks a tap or a poll).
"""

from __future__ import annotations

import json
from datetime import datetime

from terminal.kernel.clock import iso_utc
from terminal.kernel.redact import card_numbers_in
from terminal.store.base import Tables

STATUSES = ("Available", "Occupied", "Faulted", "Unavailable")
"""The connector's statuses (OCPP 2.0.1 ConnectorStatusEnumType)."""

STOPPED = "stopped"
"""The cause of the Unavailable row a clean stop writes."""

POWER_LOSS = "power_loss"
"""The cause of the Unavailable row dated at the last heartbeat before an unclean start."""

HEARTBEAT_KEY = "daemon_heartbeat"


class ReportTables(Tables):
    """Taps and the status log (migration 12)."""

    def add_tap(self, at: datetime, reader: str, kind: str, result: str, reason: str,
                token: str | None, decision_ms: float | None,
                session_id: str | None) -> int:
        if token is not None and card_numbers_in(token):
            token = None  # never a card number in the journal
        cursor = self.conn.execute(
            "INSERT INTO taps (at, reader, kind, result, reason, token, decision_ms, "
            "session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (iso_utc(at), reader, kind, result, reason, token, decision_ms, session_id))
        return int(cursor.lastrowid or 0)

    def add_status(self, at: datetime, status: str, cause: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
        self.conn.execute("INSERT INTO status_log (at, status, cause) VALUES (?, ?, ?)",
                          (iso_utc(at), status, cause))

    def last_status(self) -> tuple[str, str, str] | None:
        row = self.conn.execute(
            "SELECT at, status, cause FROM status_log ORDER BY at DESC, id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def beat(self, at: datetime) -> None:
        when = iso_utc(at)
        self.conn.execute(
            "INSERT INTO service_state (key, value_json, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, "
            "updated_at = excluded.updated_at",
            (HEARTBEAT_KEY, json.dumps({"at": when}), when))

    def last_beat(self) -> str | None:
        row = self.conn.execute("SELECT updated_at FROM service_state WHERE key = ?",
                                (HEARTBEAT_KEY,)).fetchone()
        return None if row is None else str(row[0])

    def note_power_loss(self, at_start: datetime) -> bool:
        """An Unavailable "power_loss" row at the last sign of life before this start,
        unless the last status row is the clean stop's (or there is none yet)."""
        with self._transaction():
            last = self.last_status()
            if last is None or (last[1] == "Unavailable" and last[2] in (STOPPED, POWER_LOSS)):
                return False
            beat = self.last_beat()
            since = max(last[0], beat) if beat else last[0]
            since = min(since, iso_utc(at_start))
            self.conn.execute("INSERT INTO status_log (at, status, cause) VALUES (?, ?, ?)",
                              (since, "Unavailable", POWER_LOSS))
        return True
