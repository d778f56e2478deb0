"""Building a receipt: facts + tariff + final PricingResult -> `Receipt`.

Provides `build_receipt(facts, tariff, result, language)` and `ENERGY_TOLERANCE_WH`.
Amounts come from the result; this module adds no pricing of its own, only the amount
charged (the gross total, capped by the authorised amount; 0 when the session delivered
no energy: see "No energy, nothing charged" below), the printed lines and the
VAT per rate of the amount charged (amounts.gross_amounts), the amount refunded (the
refunds' sum, at most the amount charged) and the duration (from the start and stop
times as printed, to the second).

One energy: the meter delta is the legal quantity; a PricingResult whose energy differs
from it by more than 1 Wh, or whose totals cannot be split into VAT rates, is refused
(ValueError): a receipt never shows numbers that contradict each other.

No energy, nothing charged (docs/pricing.md): a session whose meter delta is 0 Wh is not
charged, whatever its tariff priced (a FLAT fee, time, parking time): its amount charged
is 0, the priced total is printed and taken off again ("Not charged" per VAT group, like
a cap) and the receipt says so. This is the one place of the rule: a card payment
captures the amount charged, so the hold of such a session is released whole
(terminal.payment.holds).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from terminal.kernel.money import plain, round_half_up, round_money
from terminal.pricing.model import Tariff
from terminal.pricing.result import PricingResult
from terminal.receipt.amounts import gross_amounts, money_exact
from terminal.receipt.facts import ReceiptError, ReceiptFacts
from terminal.receipt.model import Receipt
from terminal.receipt.wording import receipt_locale

ENERGY_TOLERANCE_WH = Decimal(1)
"""Largest allowed difference between the meter delta and the priced energy."""


def build_receipt(
    facts: ReceiptFacts, tariff: Tariff, result: PricingResult, language: str = "en"
) -> Receipt:
    """The receipt of a finished session; ValueError (ReceiptError) when the inputs disagree.

    Refused: an unsupported language (the message names the allowed ones), a result in
    another currency than the tariff, a meter delta that differs from
    `result.total_energy_wh` by more than 1 Wh, an authorised amount finer than the
    currency's minor unit, and totals whose VAT cannot be split into the rates of the
    lines (VAT without a VAT rate, or a negative VAT).
    """
    locale = receipt_locale(language)
    currency = tariff.currency
    if result.currency != currency:
        raise ReceiptError("result.currency", result.currency, f"the tariff currency {currency}")
    energy_wh = facts.meter_stop_wh - facts.meter_start_wh
    if abs(energy_wh - result.total_energy_wh) > ENERGY_TOLERANCE_WH:
        raise ReceiptError(
            "result.total_energy_wh",
            result.total_energy_wh,
            f"the meter delta {plain(energy_wh)} Wh within {plain(ENERGY_TOLERANCE_WH)} Wh "
            "(a receipt never shows two different energies)",
        )
    if facts.authorised_amount is not None:
        money_exact(facts.authorised_amount, currency)

    limit = None
    if result.price_limit is not None:
        limit = tariff.min_price if result.price_limit == "min_price" else tariff.max_price

    amount_charged = result.total.incl_vat
    no_energy = energy_wh <= 0
    capped = (not no_energy and facts.authorised_amount is not None
              and amount_charged > facts.authorised_amount)
    if no_energy:
        amount_charged = round_money(Decimal(0), currency)
    elif capped:
        assert facts.authorised_amount is not None
        amount_charged = money_exact(facts.authorised_amount, currency)
    amounts = gross_amounts(tariff, result, amount_charged)
    reason = result.price_limit or ("rounding" if amounts.adjustments else None)
    refunded = Decimal(0)
    for number, refund in enumerate(facts.refunds):
        name = f"refunds[{number}].amount"
        if not isinstance(refund.amount, Decimal) or not refund.amount.is_finite() \
                or refund.amount <= 0:
            raise ReceiptError(name, refund.amount, "an amount above 0")
        refunded += money_exact(refund.amount, currency, name)
    if refunded > amount_charged:
        raise ReceiptError("refunds", plain(refunded),
                           f"refunds adding up to at most the amount charged "
                           f"({plain(amount_charged)})")
    return Receipt(
        facts=facts,
        language=locale.code,
        currency=currency,
        tariff_id=tariff.id,
        energy_wh=energy_wh,
        energy_kwh=round_half_up(Fraction(energy_wh) / 1000, 3),
        duration_s=printed_duration(facts.started_at, facts.stopped_at),
        amounts=amounts,
        adjustment_reason=reason,
        price_limit=limit,
        total=result.total,
        charge_capped=capped,
        amount_refunded=refunded,
    )


def printed_duration(started_at: datetime, stopped_at: datetime) -> Decimal:
    """Whole seconds between the start and stop as printed (to the second, fraction cut)."""
    delta = stopped_at.replace(microsecond=0) - started_at.replace(microsecond=0)
    return Decimal(delta.days * 86400 + delta.seconds)
