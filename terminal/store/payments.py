"""Card payments (pre-authorisation, capture/void) and refunds in the journal.

Provides:
- `PaymentStatus`: the lifecycle of a payment (a StrEnum whose values are the strings
  stored in `payments.status`, which the table's CHECK constraint allows);
- `PaymentRow`: one payment as read back, typed (Decimal amounts, bool `offline`,
  datetimes), and `PaymentChanges`, what `update_payment()` may change;
- `PaymentTables`, a mixin of `Store`: `add_payment()`, `update_payment()` (a payment
  entering a final status queues its NotifySettlement in the same transaction:
  terminal.store.settlements), `payment()`, `payments_to_settle(via)`,
  `payment_with_pt_receipt()` (the payment a payment terminal's receipt number belongs
  to), the holds' `kept_hold(token, via)`, `move_payment()` (to a new session, audited) and
  `session_energy()`, `add_refund()` (idempotent by refund id) and `refunds()` (rows as
  dicts of the table's columns, as `terminal.billing` reads them).

`via` says which path a payment took: 'gateway' (the built-in reader, the backend's
gateway) or 'zvt' (an external payment terminal; `pt_json` holds what it reported).

Stored values are unchanged by the types: amounts as their Decimal text, times as ISO-8601
(UTC, milliseconds, Z), `offline` as 0/1, the sealed envelope as JSON text.

On failure: updating a column that cannot change or a payment that does not exist
raises ValueError; a status outside the lifecycle is refused by the table's CHECK
constraint (sqlite3.IntegrityError); every write is one transaction, rolled back on
error.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict, Unpack

from terminal.kernel.clock import iso_utc
from terminal.store.base import Tables, row_dict
from terminal.store.outbox import queue_message
from terminal.store.settlements import SETTLEMENT_OF, queue_settlement


class PaymentStatus(enum.StrEnum):
    REQUESTED = "requested"  # journaled before the gateway is asked
    APPROVED = "approved"  # pre-authorised (online, or offline under the floor limit)
    DECLINED = "declined"
    CAPTURE_PENDING = "capture_pending"  # the session is over; the capture is being sent
    CAPTURED = "captured"
    VOID_PENDING = "void_pending"  # the session is over; the void is being sent
    VOIDED = "voided"
    FAILED = "failed"  # the gateway refused a capture or void: for the operator


@dataclass(frozen=True)
class PaymentRow:
    """One row of `payments`. `envelope_json`: the sealed card envelope (JSON text), kept
    only while an offline payment waits for the gateway."""

    reference: str
    session_id: str
    token: str
    masked_pan: str
    scheme: str
    last4: str
    currency: str
    amount_requested: Decimal
    amount_approved: Decimal | None
    psp_reference: str | None
    offline: bool
    envelope_json: str | None = field(repr=False)
    status: PaymentStatus
    amount_captured: Decimal | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    via: str = "gateway"
    pt_json: str | None = None
    approved_at: datetime | None = None  # the gateway's approval (or offline acceptance)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PaymentRow:
        return cls(
            reference=row["reference"], session_id=row["session_id"], token=row["token"],
            masked_pan=row["masked_pan"], scheme=row["scheme"], last4=row["last4"],
            currency=row["currency"], amount_requested=Decimal(row["amount_requested"]),
            amount_approved=_decimal(row["amount_approved"]),
            psp_reference=row["psp_reference"], offline=bool(row["offline"]),
            envelope_json=row["envelope_json"], status=PaymentStatus(row["status"]),
            amount_captured=_decimal(row["amount_captured"]), reason=row["reason"],
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            via=row.get("via") or "gateway", pt_json=row.get("pt_json"),
            approved_at=(datetime.fromisoformat(row["approved_at"])
                         if row.get("approved_at") else None),
        )

    @property
    def envelope(self) -> dict[str, Any] | None:
        """The sealed envelope, decoded; None when none is kept."""
        return json.loads(self.envelope_json) if self.envelope_json else None

    @property
    def pt(self) -> dict[str, Any]:
        """What the payment terminal reported (empty for the gateway path)."""
        return json.loads(self.pt_json) if self.pt_json else {}


class PaymentChanges(TypedDict, total=False):
    """The columns `update_payment()` may set (None clears a column)."""

    status: PaymentStatus
    amount_approved: Decimal | None
    psp_reference: str | None
    offline: bool
    envelope_json: dict[str, Any] | None  # the envelope, stored as JSON text
    amount_captured: Decimal | None
    reason: str | None
    pt_json: dict[str, Any] | None  # what the payment terminal reported, as JSON text
    approved_at: datetime | None


PAYMENT_UPDATABLE: tuple[str, ...] = tuple(PaymentChanges.__annotations__)


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _column_value(value: object) -> object:
    """A change as it is stored."""
    if isinstance(value, PaymentStatus):
        return value.value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, datetime):
        return iso_utc(value)
    return value


class PaymentTables(Tables):
    def add_payment(
        self, *, reference: str, session_id: str, token: str, masked_pan: str, scheme: str,
        last4: str, currency: str, amount_requested: Decimal, at: datetime,
        via: str = "gateway", pt: dict[str, Any] | None = None,
    ) -> None:
        """A pre-authorisation about to be asked for (status REQUESTED)."""
        when = iso_utc(at)
        with self._transaction():
            self.conn.execute(
                "INSERT INTO payments (reference, session_id, token, masked_pan, scheme, last4, "
                "currency, amount_requested, status, created_at, updated_at, via, pt_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (reference, session_id, token, masked_pan, scheme, last4, currency,
                 str(amount_requested), PaymentStatus.REQUESTED.value, when, when, via,
                 json.dumps(pt, sort_keys=True) if pt is not None else None),
            )

    def update_payment(self, reference: str, at: datetime,
                       **changes: Unpack[PaymentChanges]) -> None:
        unknown = set(changes) - set(PAYMENT_UPDATABLE)
        if unknown:
            raise ValueError(f"payments: no such column(s) {sorted(unknown)}")
        values = {k: _column_value(v) for k, v in changes.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        status = values.get("status")
        with self._transaction():
            before = self.conn.execute("SELECT status FROM payments WHERE reference = ?",
                                       (reference,)).fetchone()
            cursor = self.conn.execute(
                f"UPDATE payments SET {assignments}, updated_at = ? WHERE reference = ?",
                (*values.values(), iso_utc(at), reference),
            )
            if cursor.rowcount != 1:
                raise ValueError(f"payments: no payment {reference!r}")
            if status in SETTLEMENT_OF and before[0] != status:
                # the end of a card payment, reported in the same commit (NotifySettlement)
                queue_settlement(self.conn, reference, at)

    def payment(self, *, session_id: str | None = None, reference: str | None = None,
                psp_reference: str | None = None) -> PaymentRow | None:
        """The payment found by the first of the keys given; None if there is none."""
        column, value = next((c, v) for c, v in (("session_id", session_id),
                                                  ("reference", reference),
                                                  ("psp_reference", psp_reference))
                             if v is not None)
        cursor = self.conn.execute(f"SELECT * FROM payments WHERE {column} = ?", (value,))
        row = cursor.fetchone()
        return _payment_row(cursor, row) if row else None

    def payments_to_settle(self, via: str = "gateway") -> list[PaymentRow]:
        """Payments of one path (`via`) whose next step is due: approved ones of closed
        sessions (once the receipt exists, or at once when no energy was delivered) and
        pending captures/voids."""
        cursor = self.conn.execute(
            "SELECT p.* FROM payments p JOIN sessions s ON s.id = p.session_id "
            "LEFT JOIN receipts r ON r.session_id = s.id "
            "WHERE p.via = ? AND (p.status IN (?, ?) "
            "OR (p.status = ? AND s.closed_at IS NOT NULL "
            "    AND (r.session_id IS NOT NULL OR s.meter_start_wh IS NULL)) "
            "OR (p.status = ? AND s.closed_at IS NOT NULL)) "
            "ORDER BY p.created_at",
            (via, PaymentStatus.CAPTURE_PENDING.value, PaymentStatus.VOID_PENDING.value,
             PaymentStatus.APPROVED.value, PaymentStatus.REQUESTED.value),
        )
        return [_payment_row(cursor, row) for row in cursor.fetchall()]

    def payment_with_pt_receipt(self, receipt_number: int) -> PaymentRow | None:
        """The payment terminal's payment whose reservation or booking has this receipt
        number; None if none has."""
        cursor = self.conn.execute(
            "SELECT * FROM payments WHERE via = 'zvt' AND ("
            "json_extract(pt_json, '$.receipt_number') = ? OR "
            "json_extract(pt_json, '$.booking.receipt_number') = ?) "
            "ORDER BY created_at DESC LIMIT 1", (receipt_number, receipt_number))
        row = cursor.fetchone()
        return _payment_row(cursor, row) if row else None

    # ---- holds (terminal.payment.holds) ------------------------------------------------

    def kept_hold(self, token: str, via: str = "gateway"
                  ) -> tuple[PaymentRow, dict[str, Any]] | None:
        """The latest approved payment of this card token on one path (`via`: a hold at
        the gateway is never reused at the ZVT terminal, nor the other way) whose session
        has closed, with its session row (stop reason, meter start and stop); None if
        there is none."""
        cursor = self.conn.execute(
            "SELECT p.* FROM payments p JOIN sessions s ON s.id = p.session_id "
            "WHERE p.token = ? AND p.via = ? AND p.status = ? AND s.closed_at IS NOT NULL "
            "ORDER BY p.created_at DESC LIMIT 1",
            (token, via, PaymentStatus.APPROVED.value),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        payment = _payment_row(cursor, row)
        session = self.conn.execute(
            "SELECT id, stop_reason, meter_start_wh, meter_stop_wh FROM sessions WHERE id = ?",
            (payment.session_id,))
        return payment, row_dict(session, session.fetchone())

    def move_payment(self, reference: str, session_id: str, at: datetime) -> None:
        """An approved payment goes to a new session (a retried tap reuses its hold); the
        move is audited in the same transaction. ValueError if the payment is not
        approved any more (settled meanwhile)."""
        with self._transaction():
            row = self.conn.execute(
                "SELECT session_id FROM payments WHERE reference = ? AND status = ?",
                (reference, PaymentStatus.APPROVED.value)).fetchone()
            if row is None:
                raise ValueError(f"payments: no approved payment {reference!r} to move")
            self.conn.execute(
                "UPDATE payments SET session_id = ?, updated_at = ? WHERE reference = ?",
                (session_id, iso_utc(at), reference))
            when = iso_utc(at)
            detail = {"reference": reference, "from_session": row[0],
                      "to_session": session_id}
            cursor = self.conn.execute(
                "INSERT INTO audit (at, kind, detail) VALUES (?, ?, ?)",
                (when, "payment_moved", json.dumps(detail, sort_keys=True)))
            audit_id = int(cursor.lastrowid or 0)
            queue_message(self.conn, "Audit", None, None, f"audit:{audit_id}", when,
                          {"audit_id": audit_id, "at": when, "kind": "payment_moved",
                           "detail": detail})

    def session_energy(self, session_id: str) -> tuple[Decimal, str | None]:
        """Energy a session delivered (Wh; 0 without a start reading) and its stop reason."""
        row = self.conn.execute(
            "SELECT meter_start_wh, meter_stop_wh, stop_reason FROM sessions WHERE id = ?",
            (session_id,)).fetchone()
        if row is None:
            raise ValueError(f"sessions: no session {session_id!r}")
        return delivered_wh(row[0], row[1]), row[2]

    def session_hold_until(self, session_id: str) -> datetime | None:
        """The card hold's deadline journaled with a session's authorisation
        (`hold_until`, moved by the driver's touches); None when it has none."""
        row = self.conn.execute("SELECT authorization_json FROM sessions WHERE id = ?",
                                (session_id,)).fetchone()
        if row is None:
            raise ValueError(f"sessions: no session {session_id!r}")
        try:
            until = json.loads(row[0]).get("hold_until") if row[0] else None
            return datetime.fromisoformat(until) if isinstance(until, str) else None
        except (ValueError, AttributeError):
            return None  # an unreadable authorisation: the approval's grace counts

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


def delivered_wh(start: object, stop: object) -> Decimal:
    """stop - start in Wh from the sessions row's columns; 0 without both."""
    if start is None or stop is None:
        return Decimal(0)
    return max(Decimal(str(stop)) - Decimal(str(start)), Decimal(0))


def _payment_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> PaymentRow:
    return PaymentRow.from_row(row_dict(cursor, row))
