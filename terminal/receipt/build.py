"""Building a receipt: facts + tariff + final PricingResult -> `Receipt`.

Provides `build_receipt(facts, tariff, result, language)` and `ENERGY_TOLERANCE_WH`.
Amounts come from the result; this module adds no pricing of its own, only the VAT
breakdown per rate (amounts.vat_breakdown), the amount charged (the total, capped by
the authorised amount) and the amount refunded (the refunds' sum, at most the amount
charged).

One energy: the meter delta is the legal quantity; a PricingResult whose energy differs
from it by more than 1 Wh, or whose totals cannot be split into VAT rates, is refused
(ValueError): a receipt never shows numbers that contradict each other.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from terminal.kernel.money import plain, round_half_up
from terminal.pricing.model import Dimension, Tariff
from terminal.pricing.result import PricingResult
from terminal.receipt.amounts import money_exact, vat_breakdown
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

    charges = tuple(line for line in result.lines if line.dimension is not Dimension.FLAT)
    fees = tuple(line for line in result.lines if line.dimension is Dimension.FLAT)
    subtotal = result.total.excl_vat
    adjustment = subtotal - sum((line.excl_vat for line in result.lines), Decimal(0))
    reason = result.price_limit or ("rounding" if adjustment else None)
    limit = None
    if result.price_limit is not None:
        limit = tariff.min_price if result.price_limit == "min_price" else tariff.max_price
    vat_rates, no_vat_base = vat_breakdown(tariff, result)

    amount_charged = result.total.incl_vat
    capped = facts.authorised_amount is not None and amount_charged > facts.authorised_amount
    if capped:
        assert facts.authorised_amount is not None
        amount_charged = money_exact(facts.authorised_amount, currency)
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
    delta = facts.stopped_at - facts.started_at
    duration_s = (
        Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)
    ).normalize()
    return Receipt(
        facts=facts,
        language=locale.code,
        currency=currency,
        tariff_id=tariff.id,
        energy_wh=energy_wh,
        energy_kwh=round_half_up(Fraction(energy_wh) / 1000, 3),
        duration_s=duration_s,
        charges=charges,
        fees=fees,
        adjustment_excl_vat=adjustment,
        adjustment_reason=reason,
        price_limit=limit,
        subtotal_excl_vat=subtotal,
        vat_rates=vat_rates,
        no_vat_base_excl_vat=no_vat_base,
        total=result.total,
        amount_charged=amount_charged,
        charge_capped=capped,
        amount_refunded=refunded,
    )
