"""The backend simulator's settlement batch and the discrepancies tests plant in it.

Provides, over one hw_mocks.backend_logic.BackendLogic:
- `settlement_batch(logic, req)`: the gateway's record of the station's payments with
  any activity in [req.since, req.until) (terminal.backend.closing_messages), answered
  from the simulator's own ledger of pre-authorisations, captures and voids; a
  payment's activity times are those of the requests that named it and of the plants;
- `plant(logic, kind, reference, amount)`: change the gateway's record behind the
  terminal's back, for the reconciliation tests (`PLANTS`):
  `drop_capture` (the gateway lost a capture: the payment is an open authorisation
  again), `double_capture` (a second capture is booked, of `amount` or the first's),
  `capture_amount` (the capture booked is `amount` instead), `reopen` (a voided
  authorisation is held again: an orphan hold).

On failure: `plant` raises LedgerError naming the reference or the plant when the ledger
does not allow it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from hw_mocks.backend_logic import BackendLogic, LedgerError, Payment
from terminal.backend.closing_messages import (
    SettlementBatch,
    SettlementBatchRequest,
    SettlementTransaction,
)

PLANTS = ("drop_capture", "double_capture", "capture_amount", "reopen")


def _status(payment: Payment) -> str:
    if payment.voided:
        return "voided"
    return "authorised" if payment.captured is None else "captured"


def _transaction(logic: BackendLogic, payment: Payment) -> SettlementTransaction:
    captured: list[Decimal] = []
    if payment.captured is not None:
        captured = [payment.captured, *logic.extra_captures.get(payment.psp_reference, ())]
    return SettlementTransaction(
        psp_reference=payment.psp_reference, reference=payment.reference,
        status=_status(payment), scheme=payment.scheme, currency=payment.currency,
        amount_authorised=payment.approved, captured=tuple(captured),
        refunded=payment.refunded)


def _activity(logic: BackendLogic, payment: Payment) -> list[datetime]:
    times = [m.first_at for m in logic.received
             if m.body.get("psp_reference") == payment.psp_reference
             or m.body.get("reference") == payment.reference]
    planted = logic.planted_at.get(payment.psp_reference)
    return times + ([planted] if planted is not None else [])


def settlement_batch(logic: BackendLogic, req: SettlementBatchRequest) -> SettlementBatch:
    chosen = []
    for payment in logic.ledger.values():
        if payment.station_id != req.station_id:
            continue
        times = _activity(logic, payment)
        if any((req.since is None or req.since <= t) and t < req.until for t in times):
            chosen.append(_transaction(logic, payment))
    return SettlementBatch(req.station_id, req.since, req.until, tuple(chosen))


def plant(logic: BackendLogic, kind: str, reference: str, amount: Decimal | None) -> Payment:
    """Plant one discrepancy on the payment with our `reference`; the payment after."""
    if kind not in PLANTS:
        raise LedgerError(f"kind: {kind!r} is not one of {', '.join(PLANTS)}")
    payment = next((p for p in logic.ledger.values() if p.reference == reference), None)
    if payment is None:
        raise LedgerError(f"reference {reference!r}: no such payment in the ledger")
    if kind == "reopen":
        if not payment.voided:
            raise LedgerError(f"reference {reference!r}: not voided ({payment.status})")
        payment.voided = False
    elif payment.captured is None:
        raise LedgerError(f"reference {reference!r}: not captured ({payment.status})")
    elif kind == "drop_capture":
        payment.captured = None
        payment.capture_reference = None
        logic.extra_captures.pop(payment.psp_reference, None)
    elif kind == "double_capture":
        logic.extra_captures.setdefault(payment.psp_reference, []).append(
            payment.captured if amount is None else amount)
    else:  # capture_amount
        if amount is None or not amount.is_finite() or amount < 0:
            raise LedgerError("amount: capture_amount needs an amount of at least 0")
        payment.captured = amount
    logic.planted_at[payment.psp_reference] = logic.clock.now()
    return payment
