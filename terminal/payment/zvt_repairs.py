"""The end-of-day closing on the ZVT path: what the journal alone can find, and the
repairs done at the terminal (docs/reconciliation.md "The ZVT path", docs/zvt.md).

The ZVT terminal's End-of-day gives totals per card group only: it cannot name a
transaction, and it says nothing about reservations still open. So the closing compares
those totals (terminal.payment.reconcile) and adds what the journal itself shows:

- `journal_findings(stale, period_payments, currency)`: pure.
  - `stale`: ZVT payments still in flight (requested, approved, capture or void
    pending) whose session closed before the closing's staleness bound, each with the
    session's bill (terminal.store.closings `stale`). One booking still owed
    (capture pending, or approved with a bill above 0) is a `missing_capture` repaired
    by booking it; otherwise it is an open reservation nobody will book: an
    `orphan_hold`, repaired by releasing it at the terminal.
  - `period_payments`: the period's ZVT payments; one the terminal refused or could not
    confirm ('failed') is a `booking_failed` finding for the operator (its reason).
- `ZvtRepairs(payments)`: the `Repairer` (terminal.payment.repairs) of the ZVT path: a
  repair is `ZvtPayments.settle_now(reference)`, the settlement's own steps through the
  terminal's one connection owner: 'void_pending' / 'capture_pending' and
  'booking_sent' are committed before Reversal (06 30) / Book total (06 24) is sent,
  and after a loss the terminal's last transaction tells whether it was done. A repair
  sent again (a crash, the terminal unreachable) therefore never books or releases
  twice. Outcome: 'done' when the payment ended captured or voided, 'refused' when it
  ended failed (the reason) or is unknown, 'waiting' when the terminal cannot be
  reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from drivers.zvt.client import ZvtError
from terminal.kernel.logsetup import fields, get_logger
from terminal.payment.reconcile import Finding, FindingKind, RepairKind, zvt_group
from terminal.store import PaymentRow, PaymentStatus

if TYPE_CHECKING:
    from terminal.payment.zreport import Repair
    from terminal.payment.zvt import ZvtPayments

log = get_logger("payment")

ZERO = Decimal(0)
# in flight: the settlement moves these on; left long after the session, they are stuck
STUCK = (PaymentStatus.REQUESTED, PaymentStatus.APPROVED, PaymentStatus.CAPTURE_PENDING,
         PaymentStatus.VOID_PENDING)
ACTION_FAILED = ("compare the payment terminal's receipts and end-of-day with this payment; "
                 "book it or give the money back through the acquirer's back office")


def journal_findings(stale: Sequence[tuple[PaymentRow, Decimal | None]],
                     period_payments: Sequence[PaymentRow], currency: str
                     ) -> list[Finding]:
    findings = []
    for payment, bill in stale:
        group = zvt_group(payment.scheme)
        owed = payment.status is PaymentStatus.CAPTURE_PENDING or (
            payment.status is PaymentStatus.APPROVED and (bill or ZERO) > 0)
        if owed:
            amount = payment.amount_captured if payment.status is \
                PaymentStatus.CAPTURE_PENDING else min(bill or ZERO,
                                                       payment.amount_approved or ZERO)
            findings.append(Finding(FindingKind.MISSING_CAPTURE, group, payment.currency,
                                    payment.reference, payment.psp_reference, amount, None,
                                    repair=RepairKind.CAPTURE))
        else:
            findings.append(Finding(FindingKind.ORPHAN_HOLD, group, payment.currency,
                                    payment.reference, payment.psp_reference, None,
                                    payment.amount_approved, repair=RepairKind.VOID))
    for payment in period_payments:
        if payment.status is PaymentStatus.FAILED:
            findings.append(Finding(FindingKind.BOOKING_FAILED, zvt_group(payment.scheme),
                                    payment.currency or currency, payment.reference,
                                    payment.psp_reference, payment.amount_captured, None,
                                    action=f"{ACTION_FAILED} ({payment.reason or 'failed'})"))
    return findings


class ZvtRepairs:
    """Repairs at the ZVT terminal, through ZvtPayments (the connection's one owner)."""

    path = "zvt"

    def __init__(self, payments: ZvtPayments) -> None:
        self.payments = payments

    async def send(self, repair: Repair) -> Repair:
        try:
            payment = await self.payments.settle_now(repair.payment_reference)
        except (ZvtError, OSError) as exc:
            log.warning("closing repair waits for the ZVT terminal", extra=fields(
                reference=repair.payment_reference, kind=repair.kind, error=str(exc)))
            return repair.outcome("waiting", "payment terminal unreachable")
        if payment is None:
            return repair.outcome("refused", "no ZVT payment with this reference")
        log.info("closing repair at the ZVT terminal", extra=fields(
            reference=repair.payment_reference, kind=repair.kind,
            status=payment.status.value))
        if payment.status is PaymentStatus.CAPTURED:
            return repair.outcome("done", None if repair.kind == "capture" else "booked")
        if payment.status is PaymentStatus.VOIDED:
            return repair.outcome("done", None if repair.kind == "void" else "released")
        if payment.status is PaymentStatus.FAILED:
            return repair.outcome("refused", payment.reason or "failed")
        return repair.outcome("waiting", f"payment still {payment.status.value}")
