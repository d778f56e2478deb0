"""The amounts a receipt prints, each recomputable from the figures printed beside it.

Consumer prices are gross (incl. VAT): the price list shows unit prices incl. VAT and
the amount charged is the gross total. So the receipt works in gross amounts:

- `PrintedLine`: a charge line as printed: the billed quantity as printed, the unit
  price the price list shows (`pricing.display.shown_unit_price`) and the amount
  `round_half_up(printed quantity x printed unit price)` to the minor unit (a time
  quantity in whole seconds: x price / 60 per minute, / 3600 per hour);
- `Share`: a part of an adjustment (rounding, min/max price) or of the cap of the
  amount charged, attributed to one VAT group;
- `VatRate`: per VAT rate, the gross amount of that rate, its VAT
  `round_half_up(gross x r / (100 + r))` and the net `gross - VAT`;
- `gross_amounts(...)` builds all of these; `money_exact(amount, currency)` checks an
  amount has whole minor units.

A VAT group is a VAT percent, or None for lines with no VAT applicable (not 0 %).
An amount spread over the groups (an adjustment, the cap) is split in proportion to
the groups' gross amounts, each part rounded half-up to the minor unit (never taking a
group below zero) and the remainder given to the group with the largest amount (among
equals the highest VAT rate); with no amount to go by, all of it goes to the tariff's
highest VAT rate. No pricing of its own: every total comes from the
PricingResult.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from terminal.kernel.money import minor_unit_exponent, plain, round_half_up, round_money
from terminal.pricing.display import shown_unit_price
from terminal.pricing.model import Dimension, Tariff
from terminal.pricing.result import ChargeLine, PricingResult
from terminal.receipt.facts import ReceiptError

Group = Decimal | None
"""A VAT group: the VAT percent (normalized), or None for 'no VAT applicable'."""


@dataclass(frozen=True)
class PrintedLine:
    """A charge line as the receipt prints it; `amount` = quantity x unit price, half-up."""

    line: ChargeLine
    quantity: Decimal
    """kWh (all digits, at least 3 decimals), whole seconds (TIME, PARKING_TIME), a count."""
    unit_price: Decimal
    """The unit price the price list shows: incl. VAT when the line has VAT."""
    per: str
    """'kWh', 'minute', 'hour' or 'session'."""
    amount: Decimal
    """Gross (incl. VAT when the line has VAT), to the minor unit."""

    @property
    def group(self) -> Group:
        return _group(self.line.vat_percent)


@dataclass(frozen=True)
class Share:
    """The part of an adjustment or of the cap that falls on one VAT group (gross)."""

    group: Group
    amount: Decimal


@dataclass(frozen=True)
class VatRate:
    """One VAT rate of the amount charged: gross, VAT = gross x r / (100 + r), net."""

    percent: Decimal
    gross: Decimal
    vat: Decimal
    net: Decimal


@dataclass(frozen=True)
class GrossAmounts:
    """Every amount of a receipt's money part, gross, as printed."""

    lines: tuple[PrintedLine, ...]
    adjustments: tuple[Share, ...]
    """total - sum of the printed lines, per VAT group (only groups with a part)."""
    total: Decimal
    """The priced total incl. VAT (result.total.incl_vat)."""
    cap: tuple[Share, ...]
    """amount charged - total, per VAT group, when the charge is capped; else empty."""
    amount_charged: Decimal
    vat_rates: tuple[VatRate, ...]
    """Per VAT percent, ascending, of the amount charged."""
    no_vat: Decimal | None
    """The part of the amount charged with no VAT applicable; None if there is none."""

    @property
    def net(self) -> Decimal:
        """The amount charged without VAT: sum of the nets and the no-VAT part."""
        return sum((r.net for r in self.vat_rates), self.no_vat or Decimal(0))


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


def printed_line(line: ChargeLine, currency: str) -> PrintedLine:
    """`line` as printed: shown quantity and unit price, and their product half-up."""
    price, per = shown_unit_price(
        line.unit_price_excl_vat, line.vat_percent, line.dimension, currency
    )
    if line.dimension in (Dimension.TIME, Dimension.PARKING_TIME):
        quantity = round_half_up(Fraction(line.billed_quantity) * 3600, 0)
        divisor = 60 if per == "minute" else 3600
        amount = round_money(Fraction(quantity) * Fraction(price) / divisor, currency)
    else:
        quantity = line.billed_quantity.normalize() if line.billed_quantity else Decimal(0)
        amount = round_money(Fraction(quantity) * Fraction(price), currency)
    return PrintedLine(line, quantity, price, per, amount)


def vat_of(gross: Decimal, percent: Decimal, currency: str) -> Decimal:
    """VAT contained in `gross` at `percent`: gross x r / (100 + r), half-up."""
    return round_money(Fraction(gross) * Fraction(percent) / (100 + Fraction(percent)), currency)


def gross_amounts(
    tariff: Tariff, result: PricingResult, amount_charged: Decimal
) -> GrossAmounts:
    """The printed lines, adjustments, cap and VAT per rate of a session's receipt.

    ReceiptError when the result has VAT but no line or tariff component has a VAT
    rate, when total incl. VAT is below total excl. VAT, or when a group's gross
    amount would become negative.
    """
    currency = result.currency
    total = result.total.incl_vat
    if result.total.incl_vat < result.total.excl_vat:
        raise ReceiptError(
            "result.total.incl_vat",
            result.total.incl_vat,
            f"an amount at or above total.excl_vat ({plain(result.total.excl_vat)})",
        )
    lines = tuple(printed_line(line, currency) for line in result.lines)
    sums: dict[Group, Decimal] = {}
    for printed in lines:
        sums[printed.group] = sums.get(printed.group, Decimal(0)) + printed.amount
    fallback = _fallback_group(tariff, result)
    adjustments = _spread(total - sum(sums.values(), Decimal(0)), sums, fallback, currency)
    for share in adjustments:
        sums[share.group] = sums.get(share.group, Decimal(0)) + share.amount
    if result.total.incl_vat != result.total.excl_vat and not any(k is not None for k in sums):
        raise ReceiptError(
            "result.total",
            f"{plain(result.total.excl_vat)} excl. / {plain(result.total.incl_vat)} incl. VAT",
            "equal totals excl. and incl. VAT when no line has VAT",
        )
    cap: tuple[Share, ...] = ()
    if amount_charged != total:
        cap = _spread(amount_charged - total, sums, fallback, currency)
        for share in cap:
            sums[share.group] = sums.get(share.group, Decimal(0)) + share.amount
    for key, value in sums.items():
        if value < 0:
            raise ReceiptError(
                "result.total",
                f"{plain(result.total.excl_vat)} excl. / {plain(result.total.incl_vat)} incl. VAT",
                f"totals that split into VAT rates without a negative amount (rate {key})",
            )
    rates = sorted(k for k in sums if k is not None)
    vat_rates = []
    for rate in rates:
        vat = vat_of(sums[rate], rate, currency)
        vat_rates.append(VatRate(rate, sums[rate], vat, sums[rate] - vat))
    return GrossAmounts(
        lines=lines,
        adjustments=adjustments,
        total=total,
        cap=cap,
        amount_charged=amount_charged,
        vat_rates=tuple(vat_rates),
        no_vat=sums.get(None),
    )


def _group(percent: Decimal | None) -> Group:
    return None if percent is None else percent.normalize()


def _rates(tariff: Tariff, result: PricingResult) -> list[Decimal]:
    found = {_group(line.vat_percent) for line in result.lines}
    found |= {_group(c.vat) for e in tariff.elements for c in e.price_components}
    return sorted(k for k in found if k is not None)


def _fallback_group(tariff: Tariff, result: PricingResult) -> Group:
    """Where an amount goes with no line amount to go by: the highest rate, else no VAT."""
    rates = _rates(tariff, result)
    return rates[-1] if rates else None


def _spread(
    amount: Decimal, sums: dict[Group, Decimal], fallback: Group, currency: str
) -> tuple[Share, ...]:
    """`amount` split over the groups in proportion to `sums`, half-up, the remainder to
    the group with the largest amount (among equals the highest rate); all to `fallback`
    when the sums are zero. No group ends below zero: a part that would take a group
    below zero stops at zero and the rest goes to the largest group. Zero parts are left
    out."""
    if not amount:
        return ()
    whole = sum(sums.values(), Decimal(0))
    if not whole:
        return (Share(fallback, amount),)
    parts = {
        key: round_money(Fraction(amount) * Fraction(part) / Fraction(whole), currency)
        for key, part in sums.items()
    }
    keys = sorted(parts, key=lambda k: (k is not None, k or Decimal(0)))
    for key in keys:  # a small group is never taken below zero
        parts[key] = max(parts[key], -sums[key])
    largest = max(keys, key=lambda k: (sums[k] + parts[k], k is not None, k or Decimal(0)))
    parts[largest] += amount - sum(parts.values(), Decimal(0))
    return tuple(Share(key, parts[key]) for key in keys if parts[key])
