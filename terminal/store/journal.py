"""The sessions' journal: sessions, meter readings, phase transitions, receipts and the
connector state (so a restart knows what it was doing).

Provides `JournalTables`, a mixin of `Store`:
- `commit(records, state_json, ...)` writes everything one step of the session machine
  produced in one transaction (records, connector state, the session's terms and
  e-receipt URL, and when it closes its receipt and the receipt's outbox message); the
  daemon acts only after it returns;
- the session's OCPI CDR (terminal.cdr) with its receipt, in the same transaction, and
  its outbox message of kind "cdr" (key `<session>:cdr`); after a refund a Credit CDR
  and the new CDR with the corrected receipt; `cdr()`, `cdrs()` read them;
- `add_receipt()`, `replace_receipt()` (a corrected receipt after a refund, queued for
  the backend under its own key);
- reads: `connector_state()`, `session()`, `sessions()`, `open_sessions()`,
  `readings()`, `transitions()`, `receipt()`, `sessions_without_receipt()`.
Session and transition rows are dicts of the table's columns.

On failure: a step is all or nothing (rolled back on any error). Closing a session that
is not open raises `StoreError`; a record without a session raises ValueError; sqlite3
errors propagate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from drivers.meter.reading import MeterReading
from terminal.backend import cdr_message
from terminal.kernel.clock import iso_utc
from terminal.session import (
    CloseSession,
    OpenSession,
    ReadingRecord,
    Record,
    SetAuthorization,
    Transition,
    TxEvent,
)
from terminal.store.base import StoreError, Tables, row_dict, text_or_none
from terminal.store.marker import JournalMarker
from terminal.store.outbox import queue_message

Receipt = tuple[dict[str, Any], str]  # (receipt JSON, receipt text)


class JournalTables(Tables):
    marker: JournalMarker | None = None  # the daemon's journal keeps its marker

    # ---- writing ----------------------------------------------------------------------

    def commit(
        self,
        records: Iterable[Record],
        state_json: dict[str, Any] | None,
        *,
        session_id: str | None,
        station_id: str = "",
        tariff_json: str | None = None,
        receipt_url: str | None = None,
        receipt: Receipt | None = None,
        amount_charged: Decimal | None = None,
        cdr_json: str | None = None,
        at: datetime,
        offline: bool = False,
    ) -> None:
        """Journal one step in one transaction: its records, the connector state, and
        (when the session closes) the receipt and its outbox message. `offline`: the
        backend link is down, said in each transaction event (OCPP `offline`).
        `tariff_json` (the session's terms) and `receipt_url` (its e-receipt) are stored
        with the session when its energy starts."""
        with self._transaction():
            for record in records:
                self._apply(record, session_id, station_id, offline)
            if tariff_json is not None and session_id is not None:
                self.conn.execute(
                    "UPDATE sessions SET tariff_json = ? WHERE id = ?", (tariff_json, session_id)
                )
            if receipt_url is not None and session_id is not None:
                self.conn.execute(
                    "UPDATE sessions SET receipt_url = ? WHERE id = ?", (receipt_url, session_id)
                )
            if receipt is not None and session_id is not None:
                assert amount_charged is not None, "a receipt comes with its amount charged"
                self._insert_receipt(session_id, receipt, amount_charged, at, cdr_json)
            if state_json is not None:
                self.conn.execute(
                    "INSERT INTO connector (id, state_json, updated_at) VALUES (1, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET state_json = excluded.state_json, "
                    "updated_at = excluded.updated_at",
                    (json.dumps(state_json, sort_keys=True), iso_utc(at)),
                )
        if self.marker is not None and session_id is not None and any(
                _session_level(record) for record in records):
            self.marker.record(self.conn, session_id)

    def probe(self, at: datetime) -> None:
        """A write that touches the disk (the connector row's time, or a row of its own
        before the first step): tells whether a failed journal is writable again."""
        with self._transaction():
            self.conn.execute(
                "INSERT INTO connector (id, state_json, updated_at) VALUES (1, '{}', ?) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                (iso_utc(at),))

    def add_receipt(self, session_id: str, receipt: Receipt, amount_charged: Decimal,
                    at: datetime, cdr_json: str | None = None) -> None:
        with self._transaction():
            self._insert_receipt(session_id, receipt, amount_charged, at, cdr_json)

    def replace_receipt(self, session_id: str, receipt: Receipt, at: datetime,
                        key: str, cdrs: Sequence[str] = ()) -> None:
        """A corrected receipt (after a refund); the backend gets it under `key`. `cdrs`:
        the CDRs that correct the session's CDR (a Credit CDR, then the new CDR; JSON
        texts), stored and queued in the same transaction."""
        data, text = receipt
        created = iso_utc(at)
        with self._transaction():
            self.conn.execute(
                "UPDATE receipts SET created_at = ?, receipt_json = ?, receipt_text = ? "
                "WHERE session_id = ?",
                (created, json.dumps(data, sort_keys=True), text, session_id),
            )
            queue_message(self.conn, "Receipt", session_id, None,
                          f"{session_id}:receipt:{key}", created,
                          {"session_id": session_id, "receipt": data})
            for number, cdr_json in enumerate(cdrs):
                self._insert_cdr(session_id, cdr_json,
                                 f"{cdr_message.key(session_id)}:{key}:{number}", created)

    def _insert_receipt(self, session_id: str, receipt: Receipt, amount_charged: Decimal,
                        at: datetime, cdr_json: str | None = None) -> None:
        data, text = receipt
        created = iso_utc(at)
        self.conn.execute(
            "INSERT INTO receipts (session_id, created_at, receipt_json, receipt_text, "
            "amount_charged) VALUES (?, ?, ?, ?, ?)",
            (session_id, created, json.dumps(data, sort_keys=True), text, str(amount_charged)),
        )
        queue_message(self.conn, "Receipt", session_id, None, f"{session_id}:receipt", created,
                      {"session_id": session_id, "receipt": data})
        if cdr_json is not None:  # the session's OCPI CDR, with its receipt (terminal.cdr)
            self._insert_cdr(session_id, cdr_json, cdr_message.key(session_id), created)

    def _insert_cdr(self, session_id: str, cdr_json: str, key: str, created: str) -> None:
        cdr = json.loads(cdr_json)
        self.conn.execute(
            "INSERT INTO cdrs (id, session_id, credit, cdr_json, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (cdr["id"], session_id, 1 if cdr.get("credit") else 0, cdr_json, created))
        queue_message(self.conn, cdr_message.KIND, session_id, None, key, created,
                      cdr_message.payload(session_id, cdr))

    def _next_seq(self, table: str, session_id: str) -> int:
        row = self.conn.execute(
            f"SELECT COALESCE(MAX(seq), -1) + 1 FROM {table} WHERE session_id = ?", (session_id,)
        ).fetchone()
        return int(row[0])

    def _apply(self, record: Record, session_id: str | None, station_id: str,
               offline: bool = False) -> None:
        if isinstance(record, OpenSession):
            self.conn.execute(
                "INSERT INTO sessions (id, opened_at, id_token, source, phase) "
                "VALUES (?, ?, ?, ?, 'Authorizing')",
                (record.session_id, iso_utc(record.at), record.id_token, record.source),
            )
            return
        if session_id is None:
            raise ValueError(f"{type(record).__name__} without a session")
        if isinstance(record, SetAuthorization):
            self.conn.execute(
                "UPDATE sessions SET authorization_json = ? WHERE id = ?",
                (json.dumps(record.authorization.to_json(), sort_keys=True), session_id),
            )
        elif isinstance(record, Transition):
            self.conn.execute(
                "INSERT INTO transitions (session_id, seq, at, from_phase, to_phase, trigger, "
                "detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, self._next_seq("transitions", session_id), iso_utc(record.at),
                 record.from_phase.value, record.to_phase.value, record.trigger, record.detail),
            )
            self.conn.execute(
                "UPDATE sessions SET phase = ? WHERE id = ? AND closed_at IS NULL",
                (record.to_phase.value, session_id),
            )
        elif isinstance(record, ReadingRecord):
            r = record.reading
            self.conn.execute(
                "INSERT INTO readings (session_id, seq, kind, meter_time, energy_wh, power_w, "
                "current_a, voltage_v, serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, self._next_seq("readings", session_id), record.kind,
                 r.timestamp.isoformat(), str(r.energy_import_wh), text_or_none(r.power_w),
                 text_or_none(r.current_a), text_or_none(r.voltage_v), r.serial),
            )
            if record.kind == "start":
                self.conn.execute(
                    "UPDATE sessions SET meter_start_wh = ?, started_at = ?, meter_serial = ? "
                    "WHERE id = ?",
                    (str(r.energy_import_wh), r.timestamp.isoformat(), r.serial, session_id),
                )
        elif isinstance(record, TxEvent):
            payload = {
                "event_type": record.event_type,
                "trigger_reason": record.trigger_reason,
                "timestamp": iso_utc(record.at),
                "seq_no": record.seq_no,
                "session_id": session_id,
                "station_id": station_id,
                "offline": offline,
                **record.data,
            }
            queue_message(self.conn, "TransactionEvent", session_id, record.seq_no,
                          f"{session_id}:tx:{record.seq_no}", iso_utc(record.at), payload)
        elif isinstance(record, CloseSession):
            stop = record.stop_reading
            cursor = self.conn.execute(
                "UPDATE sessions SET phase = ?, stop_reason = ?, detail = ?, closed_at = ?, "
                "meter_stop_wh = ?, stopped_at = ? WHERE id = ? AND closed_at IS NULL",
                (record.phase.value, record.stop_reason.value if record.stop_reason else None,
                 record.detail, iso_utc(record.at),
                 str(stop.energy_import_wh) if stop else None,
                 stop.timestamp.isoformat() if stop else None, session_id),
            )
            if cursor.rowcount != 1:
                raise StoreError(f"session {session_id} is not open; it cannot be closed twice")
        else:  # pragma: no cover - exhaustive
            raise TypeError(f"unknown record {record!r}")

    # ---- reading ----------------------------------------------------------------------

    def connector_state(self) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT state_json FROM connector WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def session(self, session_id: str) -> dict[str, Any] | None:
        """A session's row; `tariff_json` also when retention keeps its terms in the
        shared `terms` table (terminal.store.retention)."""
        cursor = self.conn.execute(
            "SELECT s.*, t.terms_json FROM sessions s LEFT JOIN terms t ON t.id = s.terms_id "
            "WHERE s.id = ?", (session_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        found = row_dict(cursor, row)
        shared = found.pop("terms_json")
        found["tariff_json"] = found["tariff_json"] or shared
        return found

    def sessions(self, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT * FROM sessions ORDER BY opened_at DESC, rowid DESC LIMIT ?", (limit,)
        )
        return [row_dict(cursor, row) for row in cursor.fetchall()]

    def open_sessions(self) -> list[dict[str, Any]]:
        cursor = self.conn.execute("SELECT * FROM sessions WHERE closed_at IS NULL")
        return [row_dict(cursor, row) for row in cursor.fetchall()]

    def readings(self, session_id: str) -> list[tuple[str, MeterReading]]:
        rows = self.conn.execute(
            "SELECT kind, meter_time, energy_wh, power_w, current_a, voltage_v, serial "
            "FROM readings WHERE session_id = ? ORDER BY seq",
            (session_id,),
        ).fetchall()
        return [
            (
                kind,
                MeterReading(
                    timestamp=datetime.fromisoformat(t),
                    energy_import_wh=Decimal(e),
                    energy_export_wh=None,
                    power_w=Decimal(p) if p is not None else None,
                    voltage_v=Decimal(v) if v is not None else None,
                    current_a=Decimal(c) if c is not None else None,
                    serial=s,
                ),
            )
            for kind, t, e, p, c, v, s in rows
        ]

    def transitions(self, session_id: str) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT * FROM transitions WHERE session_id = ? ORDER BY seq", (session_id,)
        )
        return [row_dict(cursor, row) for row in cursor.fetchall()]

    def receipt(self, session_id: str) -> Receipt | None:
        row = self.conn.execute(
            "SELECT receipt_json, receipt_text FROM receipts WHERE session_id = ?", (session_id,)
        ).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def cdr(self, session_id: str) -> str | None:
        """The session's OCPI CDR in force (the newest that is not a Credit CDR) as JSON
        text (terminal.cdr.loads reads it exactly); None without one."""
        row = self.conn.execute(
            "SELECT cdr_json FROM cdrs WHERE session_id = ? AND credit = 0 "
            "ORDER BY rowid DESC LIMIT 1", (session_id,)).fetchone()
        return row[0] if row else None

    def cdrs(self, session_ids: Iterable[str]) -> list[str]:
        """Every CDR (JSON texts, Credit CDRs too) of these sessions, oldest first."""
        ids = list(session_ids)
        found: list[str] = []
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            found += [row[0] for row in self.conn.execute(
                f"SELECT cdr_json FROM cdrs WHERE session_id IN ({','.join('?' * len(part))}) "
                "ORDER BY created_at, rowid", part).fetchall()]
        return found

    def amount_charged(self, session_id: str) -> Decimal | None:
        """What the session's bill charged (None: no receipt, no energy delivered)."""
        row = self.conn.execute("SELECT amount_charged FROM receipts WHERE session_id = ?",
                                (session_id,)).fetchone()
        return Decimal(row[0]) if row is not None else None

    def sessions_without_receipt(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT s.id FROM sessions s LEFT JOIN receipts r ON r.session_id = s.id "
            "WHERE s.closed_at IS NOT NULL AND s.meter_start_wh IS NOT NULL "
            "AND r.session_id IS NULL ORDER BY s.closed_at"
        ).fetchall()
        return [row[0] for row in rows]


def _session_level(record: Record) -> bool:
    """A record after which the journal marker is written: a session opens, its energy
    starts, it closes."""
    return isinstance(record, OpenSession | CloseSession) or (
        isinstance(record, ReadingRecord) and record.kind == "start")
