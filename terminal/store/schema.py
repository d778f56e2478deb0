"""The journal's schema and how a database file is opened.

Provides:
- `MIGRATIONS`: the schema as numbered migrations (PRAGMA user_version counts how many
  have run), `SCHEMA_VERSION` and `AUTH_SCHEMA` (the local authorisation list and the
  authorisation cache, migration 3; `terminal.store.auth_tables` works on them).
  Migrations are only ever appended: an old one is never edited.
- `check_file(path)`: refuses a file that is not an SQLite database before SQLite
  touches it (bad header, truncated).
- `connect(path, create=...)`: checks the file, opens it (WAL, synchronous=FULL,
  foreign keys on, busy timeout), runs `PRAGMA quick_check` and the missing
  migrations, each in its own transaction.
- `schema_version(conn)`.

On failure: `StoreError` naming the file and what is wrong (not an SQLite database,
truncated, integrity check failed, damaged, missing, or from newer software). A damaged
file is never rewritten: it stays as it is for forensics, and the message says to move
it away to start afresh. A failed migration is rolled back and its error propagates.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from terminal.store.base import StoreError

SQLITE_MAGIC = b"SQLite format 3\x00"
PAGE_SIZE = 8192
"""Bytes per page of a new journal (older ones keep theirs: SQLite fixes it at creation)."""

AUTH_SCHEMA = """
CREATE TABLE auth_list_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE auth_list (
    id_token TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    entry_json TEXT NOT NULL
);
CREATE TABLE auth_cache (
    id_token TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    response_json TEXT NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE INDEX auth_cache_lru ON auth_cache (last_used)
"""

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
    # 3: local authorisation list and authorisation cache (terminal.store.auth_tables)
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
    # 6: the amount charged, from the bill at close: what a card payment captures
    """
    ALTER TABLE receipts ADD COLUMN amount_charged TEXT;
    UPDATE receipts SET amount_charged = json_extract(receipt_json, '$.amount_charged');
    """,
    # 7: retention (terminal.store.retention): when a session's readings were thinned and
    # its identifiers dropped, the terms of thinned sessions kept once (`terms`, the
    # session's tariff_json then NULL and terms_id set), what the job has done, and the
    # indexes its batches walk
    """
    CREATE TABLE terms (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        terms_json TEXT NOT NULL
    );
    ALTER TABLE sessions ADD COLUMN terms_id INTEGER REFERENCES terms (id);
    ALTER TABLE sessions ADD COLUMN thinned_at TEXT;
    ALTER TABLE sessions ADD COLUMN anonymised_at TEXT;
    CREATE INDEX sessions_to_thin ON sessions (closed_at)
        WHERE closed_at IS NOT NULL AND thinned_at IS NULL;
    CREATE INDEX sessions_to_anonymise ON sessions (closed_at)
        WHERE closed_at IS NOT NULL AND anonymised_at IS NULL;
    CREATE INDEX outbox_session ON outbox (session_id) WHERE session_id IS NOT NULL;
    CREATE INDEX refunds_session ON refunds (session_id);
    CREATE INDEX audit_at ON audit (at);
    CREATE TABLE retention_state (
        key TEXT PRIMARY KEY,
        value_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 8: signed meter values (Eichrecht, terminal.store.signed): every OCMF document a
    # signing meter returned, exactly as it came, with the checks' findings; kept for
    # the legal period with its session
    """
    CREATE TABLE signed_values (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        received_at TEXT NOT NULL,
        meter_serial TEXT NOT NULL,
        pagination TEXT NOT NULL,
        tx TEXT NOT NULL,
        energy_wh TEXT NOT NULL,
        meter_time TEXT NOT NULL,
        clock TEXT NOT NULL,
        terminal_clock_synced INTEGER,
        ocmf TEXT NOT NULL,
        public_key TEXT NOT NULL,
        signing_method TEXT NOT NULL,
        problems_json TEXT NOT NULL
    );
    CREATE INDEX signed_values_session ON signed_values (session_id);
    CREATE INDEX signed_values_meter ON signed_values (meter_serial, id);
    """,
    # 9: card payments through an external payment terminal (ZVT, terminal.payment.zvt):
    # which path a payment took ('gateway': the built-in reader and the backend's
    # gateway; 'zvt': the payment terminal) and what the terminal reported (receipt and
    # trace numbers, terminal id, card type, its receipt lines, the booking or reversal)
    """
    ALTER TABLE payments ADD COLUMN via TEXT NOT NULL DEFAULT 'gateway';
    ALTER TABLE payments ADD COLUMN pt_json TEXT;
    """,
    # 10: end-of-day closings (terminal.store.closings, docs/reconciliation.md): one row a
    # closing with its Z-report; 'repairing' until its repairs were tried
    """
    CREATE TABLE closings (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        trigger TEXT NOT NULL,
        period_start TEXT,
        period_end TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('repairing', 'done')),
        report_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX closings_end ON closings (period_end);
    """,
    # 11: card holds (terminal.payment.holds): when a payment was approved (its grace
    # period counts from there), and approved payments found by card token (a retried
    # tap reuses its kept hold)
    """
    ALTER TABLE payments ADD COLUMN approved_at TEXT;
    UPDATE payments SET approved_at = updated_at WHERE amount_approved IS NOT NULL;
    CREATE INDEX payments_approved_token ON payments (token) WHERE status = 'approved';
    """,
    # 12: what the operator's report needs beyond the sessions (terminal.store.report_tables,
    # docs/reports.md): every tap's decision and how fast it came, and the connector's
    # status (OCPP ConnectorStatus) each time it changed, with why
    """
    CREATE TABLE taps (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        reader TEXT NOT NULL,
        kind TEXT NOT NULL,
        result TEXT NOT NULL,
        reason TEXT NOT NULL,
        token TEXT,
        decision_ms REAL,
        session_id TEXT
    );
    CREATE INDEX taps_at ON taps (at);
    CREATE INDEX taps_to_anonymise ON taps (at) WHERE token IS NOT NULL;
    CREATE TABLE status_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        status TEXT NOT NULL,
        cause TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX status_log_at ON status_log (at);
    """,
    # 13: OCPI 2.2.1 CDRs (terminal.cdr, docs/cdr.md): a session's
    # CDR, written with its receipt in the same transaction, and after a refund a Credit
    # CDR for it and a new CDR (credit = 1: a Credit CDR); kept like receipts (retention)
    """
    CREATE TABLE cdrs (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        credit INTEGER NOT NULL DEFAULT 0,
        cdr_json TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX cdrs_session ON cdrs (session_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


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


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """The journal's connection to `path`, checked and migrated to SCHEMA_VERSION
    (autocommit: writers use `transaction()`)."""
    check_file(path)
    if not path.exists() and not create:
        raise StoreError(f"database {path}: does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists()
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"database {path}: cannot open: {exc}") from None
    if fresh:  # receipts (~2.6 kB a row) pack 3 to a page, not 1 to a 4 kB page
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
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
        migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(
            f"database {path}: damaged ({exc}); the file is left untouched for "
            "inspection — move it away to start afresh"
        ) from None
    except StoreError:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Run the migrations the database has not had yet, each in one transaction."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database {path}: schema version {version} is newer than this "
            f"software understands ({SCHEMA_VERSION}); install the newer software"
        )
    for number in range(version, SCHEMA_VERSION):
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;{MIGRATIONS[number]};PRAGMA user_version={number + 1};COMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

