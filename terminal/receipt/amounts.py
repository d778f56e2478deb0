"""The amounts a receipt adds to the pricing result: the VAT per rate, and exact amounts.

Provides `VatRate` (the part of the subtotal taxed at one percent and its VAT),
`vat_breakdown(tariff, result)` (the subtotal split into VAT rates: bases and VAT
rounded half-up per rate, any remainder to the highest rate, so the rows add up to the
totals exactly; ReceiptError when the totals cannot be split) and
`money_exact(amount, currency)` (an amount in whole minor units of the currency, or
ReceiptError). No pricing of its own: every total comes from the PricingResult.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from terminal.kernel.money import minor_unit_exponent, plain, round_money
from terminal.pricing.model import Tariff
from terminal.pricing.result import PricingResult
from terminal.receipt.facts import ReceiptError


@dataclass(frozen=True)
class VatRate:
    """VAT of one rate: the part of the subtotal taxed at `percent` and its VAT."""

    percent: Decimal
    base_excl_vat: Decimal
    vat: Decimal


def money_exact(amount: Decimal, currency: str, name: str = "authorised_amount") -> Decimal:
    """`amount` with exactly the currency's minor digits; ReceiptError if it has finer digits."""
    rounded = round_money(amount, currency)
    if rounded != amount:
        raise ReceiptError(
            name,
            amount,
            f"an amount in whole minor units of {currency} "
            f"({minor_unit_exponent(currency)} decimal places)",
        )
    return rounded


def vat_breakdown(
    tariff: Tariff, result: PricingResult
) -> tuple[tuple[VatRate, ...], Decimal | None]:
    """Split the subtotal into VAT rates and the total VAT into per-rate amounts.

    Bases: the subtotal in proportion to the lines' amounts excl. VAT per rate (lines with
    no VAT form their own group); VAT per rate: base x percent; each rounded half-up to
    the minor unit, the remainder of each sum to the highest VAT rate. When no line has
    an amount (e.g. a min_price on an empty session) the subtotal goes to the tariff's
    highest VAT rate.
    """
    currency = result.currency
    subtotal = result.total.excl_vat
    vat_total = result.total.incl_vat - result.total.excl_vat
    sums: dict[Decimal | None, Decimal] = {}
    for line in result.lines:
        key = None if line.vat_percent is None else line.vat_percent.normalize()
        sums[key] = sums.get(key, Decimal(0)) + line.excl_vat
    line_sum = sum(sums.values(), Decimal(0))
    rates = sorted(k for k in sums if k is not None)
    if not line_sum:
        tariff_rates = sorted(
            {
                c.vat.normalize()
                for e in tariff.elements
                for c in e.price_components
                if c.vat is not None
            }
        )
        sums = {}
        if tariff_rates and (subtotal or vat_total):
            rates = tariff_rates[-1:]
            sums[rates[0]] = Decimal(0)
        elif subtotal:
            sums[None] = Decimal(0)
    if vat_total and not rates:
        raise ReceiptError(
            "result.total",
            f"{plain(result.total.excl_vat)} excl. / {plain(result.total.incl_vat)} incl. VAT",
            "equal totals excl. and incl. VAT when no line has VAT",
        )
    if vat_total < 0:
        raise ReceiptError(
            "result.total.incl_vat",
            result.total.incl_vat,
            f"an amount at or above total.excl_vat ({plain(result.total.excl_vat)})",
        )
    largest: Decimal | None = rates[-1] if rates else None
    bases = {
        key: (
            round_money(Fraction(subtotal) * Fraction(part) / Fraction(line_sum), currency)
            if line_sum
            else Decimal(0)
        )
        for key, part in sums.items()
    }
    if bases:
        bases[largest] += subtotal - sum(bases.values(), Decimal(0))
    vats = {
        rate: round_money(Fraction(bases[rate]) * Fraction(rate) / 100, currency) for rate in rates
    }
    if vats:
        assert largest is not None
        vats[largest] += vat_total - sum(vats.values(), Decimal(0))
    for key, value in [*bases.items(), *vats.items()]:
        if value < 0:
            raise ReceiptError(
                "result.total",
                f"{plain(result.total.excl_vat)} excl. / {plain(result.total.incl_vat)} incl. VAT",
                f"totals that split into VAT rates without a negative amount (rate {key})",
            )
    vat_rates = tuple(VatRate(rate, bases[rate], vats[rate]) for rate in rates)
    return vat_rates, bases.get(None)
