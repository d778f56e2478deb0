"""The built receipt and its two forms: text (screen, printer) and JSON (backend, e-receipt).

Provides `Receipt` (every number the receipt shows; `to_text()` and `to_json()`) and
`render_text(receipt, language)` (the text in any receipt language: lines of at most
42 characters, in the order of STANDARDS.md §2). JSON: schema_version 1, Decimals as
strings, times ISO-8601 with the station's UTC offset.

Reproducible: both forms are pure functions of the receipt (no clock, no dict-order
randomness), so rendering it twice gives byte-identical text and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from terminal.kernel.formatting import format_amount, format_duration, format_energy
from terminal.kernel.money import plain
from terminal.pricing.display import limit_text, percent
from terminal.pricing.model import Price
from terminal.pricing.result import Amount, ChargeLine
from terminal.receipt.amounts import VatRate, money_exact
from terminal.receipt.facts import ReceiptFacts, zone
from terminal.receipt.labels import LABELS
from terminal.receipt.layout import WIDTH, chunks, row, wrap
from terminal.receipt.wording import (
    charge_line,
    labels_for,
    local_time,
    payment_text,
    reading,
    receipt_locale,
    stop_sentence,
)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Receipt:
    """A session receipt: every number it shows, ready to render (`to_text`) or send (`to_json`).

    `language` is the language of `to_text()` and of the texts in `to_json()`; another
    language (a reprint for another driver) is `render_text(receipt, language)`.
    """

    facts: ReceiptFacts
    language: str
    currency: str
    tariff_id: str | None
    energy_wh: Decimal
    """Meter delta, meter_stop_wh - meter_start_wh (the legal quantity)."""
    energy_kwh: Decimal
    """energy_wh / 1000 rounded half-up to exactly 3 decimals."""
    duration_s: Decimal
    charges: tuple[ChargeLine, ...]
    """ENERGY, TIME and PARKING_TIME lines: a unit price applied to a billed quantity."""
    fees: tuple[ChargeLine, ...]
    """FLAT lines: fees per session."""
    adjustment_excl_vat: Decimal
    """subtotal - sum of the lines (excl. VAT): rounding, or a min/max price."""
    adjustment_reason: str | None
    """'min_price' or 'max_price' (a tariff limit changed the total), 'rounding', or None."""
    price_limit: Price | None
    """The tariff's min_price/max_price that changed the total, else None."""
    subtotal_excl_vat: Decimal
    vat_rates: tuple[VatRate, ...]
    """One per VAT percent, ascending; the VAT amounts add up to total incl. - excl. VAT."""
    no_vat_base_excl_vat: Decimal | None
    """Part of the subtotal with no VAT applicable (not 0 %); None if there is none."""
    total: Amount
    amount_charged: Decimal
    """total.incl_vat, or the authorised amount when the total exceeds it."""
    charge_capped: bool
    amount_refunded: Decimal = Decimal(0)
    """Sum of facts.refunds; amount_charged - amount_refunded is what the driver paid."""

    def to_text(self) -> str:
        """The receipt as text in `language`: lines of at most 42 characters, newline at the end."""
        return render_text(self, self.language)

    def to_json(self) -> dict[str, Any]:
        """The receipt as JSON-ready data (schema_version 1); Decimals as strings."""
        facts = self.facts
        tz = zone(facts.timezone)
        labels = labels_for(self.language)
        return {
            "schema_version": SCHEMA_VERSION,
            "language": self.language,
            "operator": facts.operator,
            "station_id": facts.station_id,
            "session_id": facts.session_id,
            "tariff_id": self.tariff_id,
            "timezone": facts.timezone,
            "started_at": facts.started_at.astimezone(tz).isoformat(),
            "stopped_at": facts.stopped_at.astimezone(tz).isoformat(),
            "duration_s": plain(self.duration_s),
            "meter": {
                "serial": facts.meter_serial,
                "start_wh": plain(facts.meter_start_wh),
                "stop_wh": plain(facts.meter_stop_wh),
            },
            "energy_wh": plain(self.energy_wh),
            "energy_kwh": plain(self.energy_kwh),
            "currency": self.currency,
            "charges": [_line_json(line) for line in self.charges],
            "fees": [_line_json(line) for line in self.fees],
            "adjustment": (
                None
                if self.adjustment_reason is None
                else {"reason": self.adjustment_reason, "excl_vat": plain(self.adjustment_excl_vat)}
            ),
            "price_limit": (
                None
                if self.price_limit is None
                else {
                    "kind": self.adjustment_reason,
                    "excl_vat": plain(self.price_limit.excl_vat),
                    "incl_vat": _opt(self.price_limit.incl_vat),
                }
            ),
            "subtotal_excl_vat": plain(self.subtotal_excl_vat),
            "vat": [
                {
                    "percent": plain(rate.percent),
                    "base_excl_vat": plain(rate.base_excl_vat),
                    "vat": plain(rate.vat),
                }
                for rate in self.vat_rates
            ],
            "no_vat_base_excl_vat": _opt(self.no_vat_base_excl_vat),
            "total": {
                "excl_vat": plain(self.total.excl_vat),
                "incl_vat": plain(self.total.incl_vat),
            },
            "amount_charged": plain(self.amount_charged),
            "charge_capped": self.charge_capped,
            "stop_reason": {"code": facts.stop_reason, "text": stop_sentence(labels, facts)},
            "payment": {
                "method": facts.payment_method,
                "card_scheme": facts.card_scheme,
                "card_last4": facts.card_last4,
                "reference": facts.payment_reference,
                "authorised_amount": (
                    None
                    if facts.authorised_amount is None
                    else plain(money_exact(facts.authorised_amount, self.currency))
                ),
            },
            "refunds": [
                {
                    "refund_id": refund.refund_id,
                    "amount": plain(refund.amount),
                    "at": refund.at.astimezone(tz).isoformat(),
                    "reason": refund.reason,
                }
                for refund in facts.refunds
            ],
            "amount_refunded": plain(self.amount_refunded),
            "amount_paid": plain(self.amount_charged - self.amount_refunded),
            "receipt_url": facts.receipt_url,
            "ocmf": facts.ocmf,
        }


def render_text(receipt: Receipt, language: str | None = None) -> str:
    """The receipt as text in `language` (default: the receipt's), lines <= 42 characters.

    ValueError for an unsupported language (the message names the allowed ones).
    """
    locale = receipt_locale(receipt.language if language is None else language)
    labels = LABELS[locale.code]
    facts = receipt.facts
    cur = receipt.currency
    tz = zone(facts.timezone)

    def amount(value: Decimal, sign: bool = False) -> str:
        text = format_amount(value, cur, locale.code)
        return f"+{text}" if sign and value > 0 else text

    rule = ["-" * WIDTH]
    out: list[str] = [*wrap(labels["title"]), *wrap(facts.operator)]
    out += row(labels["station"], facts.station_id)
    out += row(labels["session"], facts.session_id)
    if receipt.tariff_id:
        out += row(labels["tariff"], receipt.tariff_id)
    out += row(labels["start"], local_time(locale, facts.started_at, tz))
    out += row(labels["stop"], local_time(locale, facts.stopped_at, tz))
    out += row(labels["duration"], format_duration(receipt.duration_s))

    out += rule
    if facts.meter_serial:
        out += row(labels["meter"], facts.meter_serial)
    out += row(labels["meter_start"], reading(locale, facts.meter_start_wh))
    out += row(labels["meter_stop"], reading(locale, facts.meter_stop_wh))
    out += row(labels["energy"], format_energy(receipt.energy_wh, locale.code))

    any_vat = bool(receipt.vat_rates)
    out += rule
    if any_vat:
        out += wrap(labels["amounts_excl_vat"])
    for line in (*receipt.charges, *receipt.fees):
        out += charge_line(locale, labels, cur, line, any_vat)
    reason = receipt.adjustment_reason
    if reason is not None:
        out += row(labels[reason], amount(receipt.adjustment_excl_vat, True))
        if receipt.price_limit is not None:
            out += wrap(f"({limit_text(locale, cur, reason, receipt.price_limit, any_vat)})")

    out += rule
    if any_vat:
        out += row(labels["subtotal"], amount(receipt.subtotal_excl_vat))
        for rate in receipt.vat_rates:
            label = labels["vat_row"].format(
                vat=percent(locale, rate.percent), base=amount(rate.base_excl_vat)
            )
            out += row(label, amount(rate.vat))
        if receipt.no_vat_base_excl_vat is not None:
            out += wrap(labels["no_vat_row"].format(base=amount(receipt.no_vat_base_excl_vat)))
        out += row(labels["total_incl_vat"], amount(receipt.total.incl_vat))
    else:
        out += row(labels["total"], amount(receipt.total.incl_vat))

    out += rule
    out += wrap(stop_sentence(labels, facts))

    out += rule
    out += row(labels["payment"], payment_text(labels, facts))
    if facts.payment_reference:
        out += row(labels["reference"], facts.payment_reference)
    if facts.authorised_amount is not None:
        out += row(labels["authorised"], amount(facts.authorised_amount))
    if receipt.charge_capped:
        out += row(labels["charged"], amount(receipt.amount_charged))
        out += wrap(labels["capped"])
    for refund in facts.refunds:
        when = local_time(locale, refund.at, tz)
        out += row(labels["refund"].format(date=when.split(" ")[0]), amount(-refund.amount))
    if facts.refunds:
        out += row(labels["paid_after_refunds"],
                   amount(receipt.amount_charged - receipt.amount_refunded))

    if facts.receipt_url or facts.ocmf:
        out += rule
    if facts.receipt_url:
        out += [*wrap(labels["receipt_url"]), *chunks(facts.receipt_url)]
    if facts.ocmf:
        out += [*wrap(labels["ocmf"]), *chunks(facts.ocmf)]
    return "\n".join(out) + "\n"


def _line_json(line: ChargeLine) -> dict[str, Any]:
    return {
        "dimension": line.dimension.value,
        "element": line.element_index,
        "unit_price_excl_vat": plain(line.unit_price_excl_vat),
        "vat_percent": None if line.vat_percent is None else plain(line.vat_percent.normalize()),
        "billed_quantity": plain(line.billed_quantity),
        "unit": line.unit,
        "excl_vat": plain(line.excl_vat),
        "incl_vat": plain(line.incl_vat),
    }


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else plain(value)

