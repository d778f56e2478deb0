"""The durable journal: one SQLite database (WAL, synchronous=FULL, foreign keys on),
and the only place of the terminal's tables, migrations and SQL.

Holds the sessions, their meter readings, phase transitions with reasons, the
connector state (so a restart knows what it was doing), receipts, the outbox that the
backend link drains, the audit log, card payments and refunds, the local authorisation
list and cache, and the service menu's durable state (terminal.service). `Store.commit()`
writes everything one step of the session machine produced in one transaction; the
daemon acts only after it returns. One connection writes; `AsyncStore` runs every call
on one worker thread so fsyncs never stall the event loop.

Opening refuses a damaged file with `StoreError` naming the file and what is wrong,
and never rewrites it: the file stays as it is for forensics. The schema evolves by
numbered migrations (PRAGMA user_version); a database from a newer version is refused.

Modules, one job each:
- `base`: `StoreError`, the write transaction, row helpers;
- `schema`: `MIGRATIONS` (with `AUTH_SCHEMA`), `check_file`, opening and migrating;
- `journal`: sessions, readings, transitions, receipts, connector state, `commit()`;
- `outbox`: the outbox and the audit log;
- `payments`: card payments (typed: `PaymentRow`, `PaymentStatus`) and refunds;
- `database`: `Store` (composed of the tables above) and `AsyncStore`;
- `marker`: the journal marker beside the database (a journal that lost its tail is
  refused at start);
- `space`: free space where the journal lives (`min_free_storage_mb`);
- `auth_tables`: `AuthStore` (local list and cache). Import it from there: it is not
  re-exported here, because it works on the backend's message models and the backend
  uses this package.

This module re-exports the public names, so `from terminal.store import Store` works.
"""

from terminal.store.base import StoreError
from terminal.store.database import AsyncStore, Store
from terminal.store.outbox import OutboxMessage
from terminal.store.payments import (
    PAYMENT_UPDATABLE,
    PaymentChanges,
    PaymentRow,
    PaymentStatus,
)
from terminal.store.schema import AUTH_SCHEMA, MIGRATIONS, SCHEMA_VERSION, check_file

__all__ = [
    "AUTH_SCHEMA",
    "MIGRATIONS",
    "PAYMENT_UPDATABLE",
    "SCHEMA_VERSION",
    "AsyncStore",
    "OutboxMessage",
    "PaymentChanges",
    "PaymentRow",
    "PaymentStatus",
    "Store",
    "StoreError",
    "check_file",
]
