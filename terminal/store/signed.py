"""Signed meter values (Eichrecht): every OCMF document a signing meter returned.

Provides `SignedTables`, a mixin of `Store`:
- `add_signed_value(session_id, kind, document, key, problems, at)`: one document,
  exactly as the meter gave it, with what the checks found (empty: good), in its own
  transaction, before anything is done with it (with whether the terminal's own clock
  was synchronised then);
- `signed_values(session_id)`: a session's documents in the order they came;
- `last_signed_value(meter_serial)`: the newest document of a meter (the pagination
  of the next one must follow it).
Rows are dicts of the table's columns, `problems` decoded.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from drivers.meter.signing import MeterKey, SignedReading
from terminal.kernel.clock import iso_utc
from terminal.store.base import Tables, row_dict


class SignedTables(Tables):
    def add_signed_value(self, session_id: str, kind: str, document: SignedReading,
                         key: MeterKey, problems: list[str], at: datetime,
                         terminal_clock_synced: bool | None = None) -> int:
        with self._transaction():
            cursor = self.conn.execute(
                "INSERT INTO signed_values (session_id, kind, received_at, meter_serial, "
                "pagination, tx, energy_wh, meter_time, clock, terminal_clock_synced, ocmf, "
                "public_key, signing_method, problems_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, kind, iso_utc(at), document.meter_serial, document.pagination,
                 document.tx.value, str(document.energy_wh), document.meter_time.isoformat(),
                 document.clock.value,
                 None if terminal_clock_synced is None else int(terminal_clock_synced),
                 document.ocmf, key.public_key_hex, key.signing_method,
                 json.dumps(problems)),
            )
            return int(cursor.lastrowid or 0)

    def signed_values(self, session_id: str) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT * FROM signed_values WHERE session_id = ? ORDER BY id", (session_id,))
        return [_decoded(row_dict(cursor, row)) for row in cursor.fetchall()]

    def last_signed_value(self, meter_serial: str) -> dict[str, Any] | None:
        cursor = self.conn.execute(
            "SELECT * FROM signed_values WHERE meter_serial = ? ORDER BY id DESC LIMIT 1",
            (meter_serial,))
        row = cursor.fetchone()
        return _decoded(row_dict(cursor, row)) if row else None


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    row["problems"] = json.loads(row.pop("problems_json"))
    return row
