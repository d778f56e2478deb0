"""How the receipt says each thing in a language: labels, sentences and value formats.

Provides `receipt_locale(language)` (the kernel Locale of a receipt language; ValueError
naming the supported ones), `labels_for(language)`, `stop_sentence` and `payment_text`
(from the facts), the value formats `local_time`, `reading` and `unit_price`,
and `charge_line` (one charge or fee: header and `quantity x unit price` row). Every
word comes from labels.LABELS or the kernel's Locale; a VAT rate, a min/max price and
whether a time price is shown per minute are said as on the screen's price list
(terminal.pricing.display).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from terminal.kernel.formatting import format_amount, format_duration, format_energy
from terminal.kernel.locales import Locale, get_locale
from terminal.kernel.money import minor_unit_exponent
from terminal.pricing.display import per_minute, percent
from terminal.pricing.model import Dimension
from terminal.pricing.result import ChargeLine
from terminal.receipt.facts import ReceiptFacts
from terminal.receipt.labels import LABELS, PAYMENT_METHODS, STOP_REASONS
from terminal.receipt.layout import row, wrap

CARD_MASK = "••••"


def receipt_locale(language: str) -> Locale:
    """The Locale of `language` (tags like de-DE too); ValueError when receipts lack it."""
    locale = get_locale(language)
    if locale.code not in LABELS:
        raise ValueError(
            f"receipt language {language!r} is not supported; allowed: {', '.join(sorted(LABELS))}"
        )
    return locale


def labels_for(language: str) -> dict[str, str]:
    return LABELS[receipt_locale(language).code]


def stop_sentence(labels: dict[str, str], facts: ReceiptFacts) -> str:
    key = f"stop_{facts.stop_reason}"
    if facts.stop_reason in STOP_REASONS:
        return labels[key]
    return labels["stop_other"].format(reason=facts.stop_reason)


def payment_text(labels: dict[str, str], facts: ReceiptFacts) -> str:
    method = (
        labels[f"pay_{facts.payment_method}"]
        if facts.payment_method in PAYMENT_METHODS
        else facts.payment_method
    )
    card = " ".join(
        part
        for part in (
            facts.card_scheme,
            None if facts.card_last4 is None else f"{CARD_MASK} {facts.card_last4}",
        )
        if part
    )
    if not card:
        return method
    return card if facts.payment_method == "card" else f"{method}, {card}"


def charge_line(
    locale: Locale, labels: dict[str, str], cur: str, line: ChargeLine, any_vat: bool
) -> list[str]:
    name = labels[line.dimension.value]
    if line.vat_percent is not None:
        header = labels["line_vat"].format(name=name, vat=percent(locale, line.vat_percent))
    elif any_vat:
        header = labels["line_no_vat"].format(name=name)
    else:
        header = name
    exponent = minor_unit_exponent(cur)
    price = line.unit_price_excl_vat
    if line.dimension is Dimension.ENERGY:
        quantity = format_energy(line.billed_quantity * 1000, locale.code)
        shown_price = f"{unit_price(locale, price, exponent)} {cur}/kWh"
    elif line.dimension is Dimension.FLAT:
        quantity = locale.number(line.billed_quantity)
        shown_price = f"{unit_price(locale, price, exponent)} {cur}"
    else:
        quantity = format_duration(line.billed_quantity * 3600)
        minute_price = per_minute(Fraction(price), cur)
        if minute_price is not None:
            shown = Decimal(int(minute_price * 10 ** (exponent + 2))).scaleb(-(exponent + 2))
            shown_price = f"{unit_price(locale, shown, exponent)} {cur}/{locale.minute}"
        else:
            shown_price = f"{unit_price(locale, price, exponent)} {cur}/{locale.hour}"
    detail = f"  {quantity} x {shown_price}"
    return [*wrap(header), *row(detail, format_amount(line.excl_vat, cur, locale.code))]


def unit_price(locale: Locale, value: Decimal, exponent: int) -> str:
    """A unit price with all its digits, at least the currency's minor digits."""
    return locale.number(value.normalize() if value else Decimal(0), exponent)


def local_time(locale: Locale, moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    offset = local.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    day = locale.date.format(y=local.year, m=local.month, d=local.day)
    return f"{day} {local:%H:%M:%S} {sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def reading(locale: Locale, energy_wh: Decimal) -> str:
    """A meter reading in kWh with all its digits, at least 3 decimals."""
    kwh = energy_wh.scaleb(-3).normalize() if energy_wh else Decimal(0)
    return f"{locale.number(kwh, 3)} kWh"
