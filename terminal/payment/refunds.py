"""Refunds the backend made, recorded on their session, for either payment path.

Provides `record_refund(store, clock, publish, refund)`: a refund (full or partial) of
a captured payment is checked (the payment found by its PSP reference, captured, the
reference and currency its own, the amount in minor units and, with the refunds
before it, at most what was captured), recorded once per refund id (a duplicate is
ignored) and the session's receipt rebuilt with it, and its OCPI CDR corrected (a
Credit CDR and a new CDR, docs/cdr.md); False (logged) when it does not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from terminal.backend.messages import Refund
from terminal.billing import bill_from_journal
from terminal.cdr import dumps, loads
from terminal.cdr.credit import corrections
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.money import round_money
from terminal.store import PaymentStatus

if TYPE_CHECKING:
    from terminal.store import AsyncStore, Store

log = get_logger("payment")


def _corrected_cdrs(store: Store, session_id: str, key: str, at: datetime) -> list[str]:
    """A Credit CDR for the session's CDR and the new CDR after its refunds (OCPI
    2.2.1, terminal.cdr.credit); none when the session has no CDR. Store thread."""
    current = store.cdr(session_id)
    charged = store.amount_charged(session_id)
    if current is None or charged is None:
        return []
    refunded = sum((Decimal(r["amount"]) for r in store.refunds(session_id)), Decimal(0))
    credit, corrected = corrections(loads(current), amount_paid=charged - refunded,
                                    refunded=refunded, key=key, at=at)
    return [dumps(credit), dumps(corrected)]


async def record_refund(journal: AsyncStore, clock: Clock,
                        publish: Callable[[dict[str, Any]], None] | None,
                        refund: Refund) -> bool:
    store = journal.store
    payment = await journal.call(store.payment, psp_reference=refund.psp_reference)
    problem = None
    if payment is None:
        problem = "no payment with this PSP reference"
    elif payment.status is not PaymentStatus.CAPTURED:
        problem = f"the payment is {payment.status}, not captured"
    elif refund.reference not in (payment.reference, payment.session_id):
        problem = f"reference {refund.reference} is not this payment's"
    elif refund.currency != payment.currency:
        problem = f"currency {refund.currency} differs from the payment's"
    elif refund.amount <= 0 or round_money(refund.amount, refund.currency) != refund.amount:
        problem = f"amount {refund.amount} is not a positive amount in minor units"
    else:
        done = sum((Decimal(r["amount"]) for r in
                    await journal.call(store.refunds, payment.session_id)
                    if r["refund_id"] != refund.refund_id), Decimal(0))
        captured = payment.amount_captured
        if captured is None:
            problem = f"payment {payment.reference} has no amount captured"
        elif done + refund.amount > captured:
            problem = (f"refunds would add up to {done + refund.amount}, more than the "
                       f"{captured} captured")
    if problem is not None:
        log.error("refund refused", extra=fields(refund=refund.refund_id,
                                                 psp_reference=refund.psp_reference,
                                                 reason=problem))
        return False
    assert payment is not None
    session_id = payment.session_id
    added = await journal.call(
        store.add_refund, refund_id=refund.refund_id, reference=payment.reference,
        session_id=session_id, amount=refund.amount, currency=refund.currency,
        reason=refund.reason, at=clock.now(),
    )
    if not added:
        log.info("refund already recorded", extra=fields(refund=refund.refund_id))
        return True
    bill = await journal.call(bill_from_journal, store, session_id)
    assert bill is not None
    now = clock.now()
    cdrs = await journal.call(_corrected_cdrs, store, session_id, refund.refund_id, now)
    await journal.call(store.replace_receipt, session_id, bill.receipt, now,
                       refund.refund_id, cdrs)
    if publish is not None:
        publish({"type": "receipt_updated", "session_id": session_id})
    log.info("refund recorded", extra=fields(session=session_id, refund=refund.refund_id,
                                             amount=refund.amount))
    return True
