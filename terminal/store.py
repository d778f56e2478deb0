"""The durable journal: one SQLite database (WAL, synchronous=FULL, foreign keys on).

Holds the sessions, their meter readings, phase transitions with reasons, the
connector state (so a restart knows what it was doing), receipts, the outbox that the
backend link drains, the audit log and the service menu's durable state
(terminal.service). `Store.commit()` writes everything one step of the session machine
produced in one transaction; the daemon acts only after it returns. One connection
writes; `AsyncStore` runs every call on one worker thread so fsyncs never stall the
event loop.

Opening refuses a damaged file with `StoreError` naming the file and what is wrong,
and never rewrites it: the file stays as it is for forensics. The schema evolves by
numbered migrations (PRAGMA user_version); a database from a newer version is refused.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from drivers.meter.reading import MeterReading
from terminal.auth import AUTH_SCHEMA
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

SQLITE_MAGIC = b"SQLite format 3\x00"
T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    # 1: sessions, readings, transitions, receipts, outbox, connector state, audit
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        opened_at TEXT NOT NULL,
        id_token TEXT NOT NULL,
        source TEXT NOT NULL,
        authorization_json TEXT,
        tariff_json TEXT,
        phase TEXT NOT NULL,
        stop_reason TEXT,
        detail TEXT NOT NULL DEFAULT '',
        closed_at TEXT,
        meter_serial TEXT,
        meter_start_wh TEXT,
        meter_stop_wh TEXT,
        started_at TEXT,
        stopped_at TEXT
    );
    CREATE INDEX sessions_open ON sessions (closed_at);
    CREATE TABLE readings (
        session_id TEXT NOT NULL REFERENCES sessions (id),
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('start', 'sample', 'resume', 'stop')),
        meter_time TEXT NOT NULL,
        energy_wh TEXT NOT NULL,
        power_w TEXT,
        current_a TEXT,
        voltage_v TEXT,
        serial TEXT,
        PRIMARY KEY (session_id, seq)
    );
    CREATE TABLE transitions (
        session_id TEXT NOT NULL REFERENCES sessions (id),
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        from_phase TEXT NOT NULL,
        to_phase TEXT NOT NULL,
        trigger TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (session_id, seq)
    );
    CREATE TABLE receipts (
        session_id TEXT PRIMARY KEY REFERENCES sessions (id),
        created_at TEXT NOT NULL,
        receipt_json TEXT NOT NULL,
        receipt_text TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        session_id TEXT REFERENCES sessions (id),
        seq_no INTEGER,
        idempotency_key TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        payload TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (delivered_at, id);
    CREATE TABLE connector (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    """,
    # 2: card payments (pre-authorisation, capture/void) and refunds
    """
    CREATE TABLE payments (
        reference TEXT PRIMARY KEY,
        session_id TEXT NOT NULL UNIQUE REFERENCES sessions (id),
        token TEXT NOT NULL,
        masked_pan TEXT NOT NULL,
        scheme TEXT NOT NULL,
        last4 TEXT NOT NULL,
        currency TEXT NOT NULL,
        amount_requested TEXT NOT NULL,
        amount_approved TEXT,
        psp_reference TEXT,
        offline INTEGER NOT NULL DEFAULT 0,
        envelope_json TEXT,
        status TEXT NOT NULL CHECK (status IN (
            'requested', 'approved', 'declined', 'capture_pending', 'captured',
            'void_pending', 'voided', 'failed')),
        amount_captured TEXT,
        reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX payments_status ON payments (status);
    CREATE INDEX payments_psp ON payments (psp_reference);
    CREATE TABLE refunds (
        refund_id TEXT PRIMARY KEY,
        reference TEXT NOT NULL REFERENCES payments (reference),
        session_id TEXT NOT NULL REFERENCES sessions (id),
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        reason TEXT,
        at TEXT NOT NULL
    );
    """,
    # 3: local authorisation list and authorisation cache (terminal.auth)
    AUTH_SCHEMA,
    # 4: the e-receipt URL of a session, fixed when its energy starts ([ui] receipt_url)
    """
    ALTER TABLE sessions ADD COLUMN receipt_url TEXT;
    """,
    # 5: the service menu's durable state (terminal.service): out of service, PIN lockout
    """
    CREATE TABLE service_state (
        key TEXT PRIMARY KEY,
        value_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
PAYMENT_UPDATABLE = ("status", "amount_approved", "psp_reference", "offline", "envelope_json",
                     "amount_captured", "reason")


class StoreError(Exception):
    """The database cannot be used; the message names the file and the problem."""


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


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


def check_file(path: Path) -> None:
    """Refuse a file that is not an SQLite database, before SQLite touches it."""
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"database {path}: is a directory")
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb") as handle:
        head = handle.read(100)
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        raise StoreError(
            f"database {path}: not an SQLite database (damaged header, {size} bytes); "
            "the file is left untouched for inspection — move it away to start afresh"
        )
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if page_size and pages and size < page_size * pages and not _has_wal(path):
        raise StoreError(
            f"database {path}: truncated ({size} bytes, the header says "
            f"{pages} pages of {page_size} bytes); the file is left untouched for "
            "inspection — move it away to start afresh"
        )


def _has_wal(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 0


class Store:
    """The journal. Use from one thread (AsyncStore does that for the daemon)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Store:
        path = Path(path)
        check_file(path)
        if not path.exists() and not create:
            raise StoreError(f"database {path}: does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"database {path}: cannot open: {exc}") from None
        try:
            result = conn.execute("PRAGMA quick_check").fetchall()
            if result != [("ok",)]:
                problems = "; ".join(str(row[0]) for row in result[:5])
                raise StoreError(
                    f"database {path}: integrity check failed: {problems}; the file is left "
                    "untouched for inspection — move it away to start afresh"
                )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            store = cls(conn, path)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"database {path}: damaged ({exc}); the file is left untouched for "
                "inspection — move it away to start afresh"
            ) from None
        except StoreError:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path}: schema version {version} is newer than this "
                f"software understands ({SCHEMA_VERSION}); install the newer software"
            )
        for number in range(version, SCHEMA_VERSION):
            try:
                self.conn.executescript(
                    f"BEGIN IMMEDIATE;{MIGRATIONS[number]};PRAGMA user_version={number + 1};COMMIT;"
                )
            except sqlite3.Error:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def _transaction(self) -> _Tx:
        return _Tx(self.conn)

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

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
        receipt: tuple[dict[str, Any], str] | None = None,
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
                self._insert_receipt(session_id, receipt, at)
            if state_json is not None:
                self.conn.execute(
                    "INSERT INTO connector (id, state_json, updated_at) VALUES (1, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET state_json = excluded.state_json, "
                    "updated_at = excluded.updated_at",
                    (json.dumps(state_json, sort_keys=True), iso_utc(at)),
                )

    def add_receipt(
        self, session_id: str, receipt: tuple[dict[str, Any], str], at: datetime
    ) -> None:
        with self._transaction():
            self._insert_receipt(session_id, receipt, at)

    def _insert_receipt(
        self, session_id: str, receipt: tuple[dict[str, Any], str], at: datetime
    ) -> None:
        data, text = receipt
        created = iso_utc(at)
        self.conn.execute(
            "INSERT INTO receipts (session_id, created_at, receipt_json, receipt_text) "
            "VALUES (?, ?, ?, ?)",
            (session_id, created, json.dumps(data, sort_keys=True), text),
        )
        self._outbox("Receipt", session_id, None, f"{session_id}:receipt", created,
                     {"session_id": session_id, "receipt": data})

    def _outbox(
        self, kind: str, session_id: str | None, seq_no: int | None, key: str, created: str,
        payload: dict[str, Any],
    ) -> None:
        self.conn.execute(
            "INSERT INTO outbox (kind, session_id, seq_no, idempotency_key, created_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind, session_id, seq_no, key, created, json.dumps(payload, sort_keys=True)),
        )

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
                 r.timestamp.isoformat(), str(r.energy_import_wh), _dec(r.power_w),
                 _dec(r.current_a), _dec(r.voltage_v), r.serial),
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
            self._outbox("TransactionEvent", session_id, record.seq_no,
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
        cursor = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,))
        row = cursor.fetchone()
        return _row_dict(cursor, row) if row else None

    def sessions(self, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT * FROM sessions ORDER BY opened_at DESC, rowid DESC LIMIT ?", (limit,)
        )
        return [_row_dict(cursor, row) for row in cursor.fetchall()]

    def open_sessions(self) -> list[dict[str, Any]]:
        cursor = self.conn.execute("SELECT * FROM sessions WHERE closed_at IS NULL")
        return [_row_dict(cursor, row) for row in cursor.fetchall()]

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
        return [_row_dict(cursor, row) for row in cursor.fetchall()]

    def receipt(self, session_id: str) -> tuple[dict[str, Any], str] | None:
        row = self.conn.execute(
            "SELECT receipt_json, receipt_text FROM receipts WHERE session_id = ?", (session_id,)
        ).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def sessions_without_receipt(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT s.id FROM sessions s LEFT JOIN receipts r ON r.session_id = s.id "
            "WHERE s.closed_at IS NOT NULL AND s.meter_start_wh IS NOT NULL "
            "AND r.session_id IS NULL ORDER BY s.closed_at"
        ).fetchall()
        return [row[0] for row in rows]

    # ---- card payments ----------------------------------------------------------------

    def add_payment(
        self, *, reference: str, session_id: str, token: str, masked_pan: str, scheme: str,
        last4: str, currency: str, amount_requested: Decimal, at: datetime,
    ) -> None:
        """A pre-authorisation about to be asked for (status 'requested')."""
        when = iso_utc(at)
        with self._transaction():
            self.conn.execute(
                "INSERT INTO payments (reference, session_id, token, masked_pan, scheme, last4, "
                "currency, amount_requested, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?)",
                (reference, session_id, token, masked_pan, scheme, last4, currency,
                 str(amount_requested), when, when),
            )

    def update_payment(self, reference: str, at: datetime, **changes: Any) -> None:
        unknown = set(changes) - set(PAYMENT_UPDATABLE)
        if unknown:
            raise ValueError(f"payments: no such column(s) {sorted(unknown)}")
        values = {k: (str(v) if isinstance(v, Decimal) else
                      json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)
                  for k, v in changes.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._transaction():
            cursor = self.conn.execute(
                f"UPDATE payments SET {assignments}, updated_at = ? WHERE reference = ?",
                (*values.values(), iso_utc(at), reference),
            )
            if cursor.rowcount != 1:
                raise ValueError(f"payments: no payment {reference!r}")

    def payment(self, *, session_id: str | None = None, reference: str | None = None,
                psp_reference: str | None = None) -> dict[str, Any] | None:
        column, value = next((c, v) for c, v in (("session_id", session_id),
                                                  ("reference", reference),
                                                  ("psp_reference", psp_reference))
                             if v is not None)
        cursor = self.conn.execute(f"SELECT * FROM payments WHERE {column} = ?", (value,))
        row = cursor.fetchone()
        return _row_dict(cursor, row) if row else None

    def payments_to_settle(self) -> list[dict[str, Any]]:
        """Payments whose next step is due: approved ones of closed sessions (once the
        receipt exists, or at once when no energy was delivered) and pending
        captures/voids."""
        cursor = self.conn.execute(
            "SELECT p.* FROM payments p JOIN sessions s ON s.id = p.session_id "
            "LEFT JOIN receipts r ON r.session_id = s.id "
            "WHERE p.status IN ('capture_pending', 'void_pending') "
            "OR (p.status = 'approved' AND s.closed_at IS NOT NULL "
            "    AND (r.session_id IS NOT NULL OR s.meter_start_wh IS NULL)) "
            "OR (p.status = 'requested' AND s.closed_at IS NOT NULL) "
            "ORDER BY p.created_at"
        )
        return [_row_dict(cursor, row) for row in cursor.fetchall()]

    def add_refund(
        self, *, refund_id: str, reference: str, session_id: str, amount: Decimal,
        currency: str, reason: str | None, at: datetime,
    ) -> bool:
        """Record a refund; False when this refund id is already recorded (duplicate)."""
        with self._transaction():
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO refunds (refund_id, reference, session_id, amount, "
                "currency, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (refund_id, reference, session_id, str(amount), currency, reason, iso_utc(at)),
            )
            return cursor.rowcount == 1

    def refunds(self, session_id: str) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT * FROM refunds WHERE session_id = ? ORDER BY at, refund_id", (session_id,)
        )
        return [_row_dict(cursor, row) for row in cursor.fetchall()]

    def replace_receipt(
        self, session_id: str, receipt: tuple[dict[str, Any], str], at: datetime, key: str
    ) -> None:
        """A corrected receipt (after a refund); the backend gets it under `key`."""
        data, text = receipt
        created = iso_utc(at)
        with self._transaction():
            self.conn.execute(
                "UPDATE receipts SET created_at = ?, receipt_json = ?, receipt_text = ? "
                "WHERE session_id = ?",
                (created, json.dumps(data, sort_keys=True), text, session_id),
            )
            self._outbox("Receipt", session_id, None, f"{session_id}:receipt:{key}", created,
                         {"session_id": session_id, "receipt": data})

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

    def add_audit(self, kind: str, detail: dict[str, Any], at: datetime) -> int:
        """One audit event (tariff pushed, session stopped remotely, service action...),
        kept in the audit table and queued for the backend; its id."""
        when = iso_utc(at)
        text = json.dumps(detail, sort_keys=True)
        with self._transaction():
            cursor = self.conn.execute(
                "INSERT INTO audit (at, kind, detail) VALUES (?, ?, ?)", (when, kind, text))
            audit_id = int(cursor.lastrowid or 0)
            self._outbox("Audit", None, None, f"audit:{audit_id}", when,
                         {"audit_id": audit_id, "at": when, "kind": kind, "detail": detail})
        return audit_id

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [_row_dict(cursor, row) for row in cursor.fetchall()]

    def requeue_since(self, since: datetime) -> int:
        """Send again every message queued at or after `since` (the backend asked to
        reconcile; it drops what it has by idempotency key); how many."""
        with self._transaction():
            cursor = self.conn.execute(
                "UPDATE outbox SET delivered_at = NULL WHERE created_at >= ? "
                "AND delivered_at IS NOT NULL", (iso_utc(since),))
            return int(cursor.rowcount)

    def add_outbox(self, kind: str, key: str, payload: dict[str, Any], at: datetime,
                   session_id: str | None = None) -> bool:
        """Queue one message for the backend (audit events, status reports); False when
        a message with this idempotency key is already queued."""
        with self._transaction():
            exists = self.conn.execute(
                "SELECT 1 FROM outbox WHERE idempotency_key = ?", (key,)).fetchone()
            if exists:
                return False
            self._outbox(kind, session_id, None, key, iso_utc(at), payload)
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


def _row_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {desc[0]: value for desc, value in zip(cursor.description, row, strict=True)}


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


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
