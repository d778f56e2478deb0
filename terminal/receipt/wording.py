"""How the receipt says each thing in a language: labels, sentences and value formats.

Provides `receipt_locale(language)` (the kernel Locale of a receipt language; ValueError
naming the supported ones), `labels_for(language)`, `stop_sentence` and `payment_text`
(from the facts), the value formats `local_time` and `reading`,
and `charge_line` (one charge or fee: header and `quantity x unit price   amount`
row). Every word comes from labels.LABELS or the kernel's Locale; a VAT rate, a
min/max price and a unit price (incl. VAT, per minute or per hour) are said as on the
screen's price list (terminal.pricing.display).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from terminal.kernel.formatting import format_amount, format_duration
from terminal.kernel.formatting import local_time as kernel_local_time
from terminal.kernel.locales import Locale, get_locale
from terminal.pricing.display import percent, unit_price_text
from terminal.pricing.model import Dimension
from terminal.receipt.amounts import PrintedLine
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
    locale: Locale, labels: dict[str, str], cur: str, printed: PrintedLine, any_vat: bool
) -> list[str]:
    """A charge or fee: its header (name, VAT rate) and `quantity x unit price   amount`."""
    line = printed.line
    name = labels[line.dimension.value]
    if line.vat_percent is not None:
        header = labels["line_vat"].format(name=name, vat=percent(locale, line.vat_percent))
    elif any_vat:
        header = labels["line_no_vat"].format(name=name)
    else:
        header = name
    price = unit_price_text(printed.unit_price, cur, locale)
    if line.dimension is Dimension.ENERGY:
        quantity = f"{locale.number(printed.quantity, 3)} kWh"
        shown_price = f"{price} {cur}/kWh"
    elif line.dimension is Dimension.FLAT:
        quantity = locale.number(printed.quantity)
        shown_price = f"{price} {cur}"
    else:
        quantity = format_duration(printed.quantity)
        per = locale.minute if printed.per == "minute" else locale.hour
        shown_price = f"{price} {cur}/{per}"
    detail = f"  {quantity} x {shown_price}"
    return [*wrap(header), *row(detail, format_amount(printed.amount, cur, locale.code))]


def local_time(locale: Locale, moment: datetime, zone: ZoneInfo) -> str:
    return kernel_local_time(moment, zone, locale.code)


def reading(locale: Locale, energy_wh: Decimal) -> str:
    """A meter reading in kWh with all its digits, at least 3 decimals."""
    kwh = energy_wh.scaleb(-3).normalize() if energy_wh else Decimal(0)
    return f"{locale.number(kwh, 3)} kWh"
