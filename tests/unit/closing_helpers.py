"""Helpers of the reconciliation tests: journal payments written straight into a real
Store (the session row a payment needs, then the payment in the status asked for, on the
path `via`: 'gateway' or 'zvt')."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from terminal.kernel.clock import iso_utc
from terminal.store import PaymentStatus, Store

TOKEN = "k1." + "ab" * 20


def journal_payment(store: Store, reference: str, status: PaymentStatus, at: datetime, *,
                    scheme: str = "visa", approved: Decimal | None = Decimal("50.00"),
                    captured: Decimal | None = None, psp_reference: str | None = None,
                    currency: str = "EUR", via: str = "gateway") -> None:
    session_id = reference.removesuffix(":pay")
    store.conn.execute(
        "INSERT INTO sessions (id, opened_at, id_token, source, phase, closed_at) "
        "VALUES (?, ?, ?, 'card', 'closed', ?)",
        (session_id, iso_utc(at), TOKEN, iso_utc(at)))
    store.add_payment(reference=reference, session_id=session_id, token=TOKEN,
                      masked_pan="411111******1111", scheme=scheme, last4="1111",
                      currency=currency, amount_requested=Decimal("50.00"), at=at, via=via)
    store.update_payment(reference, at, status=status, amount_approved=approved,
                         psp_reference=psp_reference, amount_captured=captured)
