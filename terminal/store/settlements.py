"""NotifySettlement messages for card payments, queued with the status change they report.

Provides:
- `SETTLEMENT_OF`: which payment statuses (the values of `payments.status`) are final and
  the OCPP 2.1 PaymentStatusEnumType each one reports: captured -> Settled, voided ->
  Canceled, declined -> Rejected, failed -> Failed;
- `settlement_message(row, ...)`: the `NotifySettlement` (terminal.backend.settlement)
  of one payment row (a dict of the `payments` columns) in a final status;
- `queue_settlement(conn, reference, at)`: called by `PaymentTables.update_payment` inside
  its own transaction when a payment enters a final status: the message is queued in the
  outbox in the same commit as the status (never one without the other, across any
  crash), under the idempotency key `{reference}:settlement:{Status}`, so a payment
  reports each final status at most once (a later repair, failed -> captured, is a new
  message).

What each status reports (docs/protocol.md, "Settlement"): Settled the amount captured;
Canceled 0 and "hold of A released" (with the reason when there is one); Rejected 0 and
the decline reason; Failed the amount it tried to capture (0 for a void) and the reason.
`pspRef` is the gateway's reference, or our payment reference when the gateway never
gave one (a decline, an interrupted pre-authorisation, an offline payment); `receiptId`
the session id when the session has a receipt; `receiptUrl` the session's e-receipt URL
when it has one (left out above OCPP's 2000 characters); `transactionId` the session id;
`vatNumber` the VAT number the driver gave for the session (its authorisation's, set by
the local API's `vat_number` op), absent when none was given.

On failure: sqlite3 errors propagate (the caller's transaction is rolled back with the
status change); a row that cannot make a valid message raises MessageError, which
cannot happen for rows the payments table accepts (reasons are cut to 500 characters,
ids too long for OCPP are left out).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.backend.settlement import (
    KIND,
    MAX_RECEIPT_ID,
    MAX_RECEIPT_URL,
    MAX_STATUS_INFO,
    MAX_TRANSACTION_ID,
    NotifySettlement,
    SettlementStatus,
)
from terminal.kernel.clock import iso_utc
from terminal.kernel.redact import scrub
from terminal.kernel.vat import VatNumberError, check_vat_number
from terminal.store.base import row_dict
from terminal.store.outbox import queue_message

SETTLEMENT_OF: dict[str, SettlementStatus] = {
    "captured": SettlementStatus.SETTLED,
    "voided": SettlementStatus.CANCELED,
    "declined": SettlementStatus.REJECTED,
    "failed": SettlementStatus.FAILED,
}


def settlement_key(reference: str, status: SettlementStatus) -> str:
    return f"{reference}:settlement:{status.value}"


def _fits(value: str | None, limit: int) -> str | None:
    return value if value and len(value) <= limit else None


def _status_info(row: dict[str, Any], status: SettlementStatus) -> str | None:
    reason = scrub(row["reason"]) if row["reason"] else None
    if status is SettlementStatus.CANCELED:
        held = row["amount_approved"]
        text = f"hold of {held} {row['currency']} released" if held else "hold released"
        info: str | None = f"{text} ({reason})" if reason else text
    elif status is SettlementStatus.SETTLED:
        info = None
    else:
        info = reason or status.value.lower()
    return None if info is None else info[:MAX_STATUS_INFO]


def _amount(row: dict[str, Any], status: SettlementStatus) -> Decimal:
    captured = row["amount_captured"]
    if status in (SettlementStatus.SETTLED, SettlementStatus.FAILED) and captured:
        return Decimal(captured)
    return Decimal(0)


def settlement_message(row: dict[str, Any], at: datetime, *, has_receipt: bool,
                       receipt_url: str | None, vat_number: str | None = None
                       ) -> NotifySettlement:
    """The message of a payment row in a final status (KeyError for any other)."""
    status = SETTLEMENT_OF[row["status"]]
    session_id = row["session_id"]
    return NotifySettlement(
        psp_ref=row["psp_reference"] or row["reference"],
        status=status,
        settlement_amount=_amount(row, status),
        settlement_time=at,
        reference=row["reference"],
        currency=row["currency"],
        transaction_id=_fits(session_id, MAX_TRANSACTION_ID),
        status_info=_status_info(row, status),
        receipt_id=_fits(session_id, MAX_RECEIPT_ID) if has_receipt else None,
        receipt_url=_fits(receipt_url, MAX_RECEIPT_URL),
        vat_number=vat_number,
    )


def _vat_number(auth_json: str | None) -> str | None:
    """The VAT number the driver gave for the session (its authorisation), if any; one
    that is not a VAT number (a journal edited by hand) is left out, never fatal."""
    if not auth_json:
        return None
    given = json.loads(auth_json).get("vat_number")
    try:
        return None if given is None else check_vat_number(given)
    except VatNumberError:
        return None


def queue_settlement(conn: sqlite3.Connection, reference: str, at: datetime) -> None:
    """Queue the payment's NotifySettlement in the caller's transaction (the payment is
    in a final status)."""
    cursor = conn.execute("SELECT * FROM payments WHERE reference = ?", (reference,))
    row = row_dict(cursor, cursor.fetchone())
    session_id = row["session_id"]
    session = conn.execute("SELECT receipt_url, authorization_json FROM sessions WHERE id = ?",
                           (session_id,)).fetchone()
    receipt_url, auth_json = session if session else (None, None)
    has_receipt = conn.execute("SELECT 1 FROM receipts WHERE session_id = ?",
                               (session_id,)).fetchone() is not None
    message = settlement_message(row, at, has_receipt=has_receipt, receipt_url=receipt_url,
                                 vat_number=_vat_number(auth_json))
    queue_message(conn, KIND, session_id, None, settlement_key(reference, message.status),
                  iso_utc(at), message.to_json())
