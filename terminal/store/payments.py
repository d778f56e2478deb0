"""Card payments (pre-authorisation, capture/void) and refunds in the journal.

Provides `PaymentTables`, a mixin of `Store`: `add_payment()`, `update_payment()`,
`payment()`, `payments_to_settle()`, `add_refund()` (idempotent by refund id) and
`refunds()`.

On failure: updating a column that cannot change or a payment that does not exist
raises ValueError; a status outside the lifecycle is refused by the table's CHECK
constraint (sqlite3.IntegrityError); every write is one transaction, rolled back on
error.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.store.base import Tables, row_dict

PAYMENT_UPDATABLE = ("status", "amount_approved", "psp_reference", "offline", "envelope_json",
                     "amount_captured", "reason")


class PaymentTables(Tables):
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
        return row_dict(cursor, row) if row else None

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
        return [row_dict(cursor, row) for row in cursor.fetchall()]

    # ---- refunds ------------------------------------------------------------------------

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
        return [row_dict(cursor, row) for row in cursor.fetchall()]
