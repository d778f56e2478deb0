"""The built receipt and its two forms: text (screen, printer) and JSON (backend, e-receipt).

Provides `Receipt` (every number the receipt shows; `to_text()` and `to_json()`) and
`render_text(receipt, language)` (the text in any receipt language: lines of at most
42 characters, in the order docs/receipts.md shows). JSON: schema_version 2, Decimals
as strings, times ISO-8601 with the station's UTC offset, to the second as printed.
Both forms carry the same figures: every figure printed recomputes from the figures
printed beside it (docs/receipts.md, "Every figure recomputes").

Reproducible: both forms are pure functions of the receipt (no clock, no dict-order
randomness), so rendering it twice gives byte-identical text and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from terminal.kernel.formatting import format_amount, format_duration, format_energy
from terminal.kernel.money import plain
from terminal.pricing.display import limit_text, percent
from terminal.pricing.model import Dimension, Price
from terminal.pricing.result import Amount
from terminal.receipt.amounts import GrossAmounts, PrintedLine, Share, VatRate, money_exact
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

SCHEMA_VERSION = 2


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
    """Whole seconds from the printed start to the printed stop time."""
    amounts: GrossAmounts
    """The printed lines, adjustments, cap and VAT per rate (gross, as printed)."""
    adjustment_reason: str | None
    """'min_price' or 'max_price' (a tariff limit changed the total), 'rounding', or None."""
    price_limit: Price | None
    """The tariff's min_price/max_price that changed the total, else None."""
    total: Amount
    """The pricing result's totals; the receipt prints total.incl_vat (prices are gross)."""
    charge_capped: bool
    amount_refunded: Decimal = Decimal(0)
    """Sum of facts.refunds; amount_charged - amount_refunded is what the driver paid."""

    @property
    def charges(self) -> tuple[PrintedLine, ...]:
        """ENERGY, TIME and PARKING_TIME lines: a unit price applied to a billed quantity."""
        return tuple(p for p in self.amounts.lines if p.line.dimension is not Dimension.FLAT)

    @property
    def fees(self) -> tuple[PrintedLine, ...]:
        """FLAT lines: fees per session."""
        return tuple(p for p in self.amounts.lines if p.line.dimension is Dimension.FLAT)

    @property
    def vat_rates(self) -> tuple[VatRate, ...]:
        """One per VAT percent, ascending, of the amount charged."""
        return self.amounts.vat_rates

    @property
    def amount_charged(self) -> Decimal:
        """total.incl_vat, or the authorised amount when the total exceeds it; 0 when no
        energy was delivered (`no_energy`)."""
        return self.amounts.amount_charged

    @property
    def no_energy(self) -> bool:
        """No energy was delivered (meter delta 0 Wh): nothing is charged (build.py)."""
        return self.energy_wh <= 0

    def to_text(self) -> str:
        """The receipt as text in `language`: lines of at most 42 characters, newline at the end."""
        return render_text(self, self.language)

    def to_json(self) -> dict[str, Any]:
        """The receipt as JSON-ready data (schema_version 2); Decimals as strings."""
        facts = self.facts
        tz = zone(facts.timezone)
        labels = labels_for(self.language)
        amounts = self.amounts
        any_vat = _any_vat(self)
        return {
            "schema_version": SCHEMA_VERSION,
            "language": self.language,
            "operator": facts.operator,
            "station_id": facts.station_id,
            "session_id": facts.session_id,
            "tariff_id": self.tariff_id,
            "timezone": facts.timezone,
            "started_at": _second(facts.started_at, tz),
            "stopped_at": _second(facts.stopped_at, tz),
            "duration_s": plain(self.duration_s),
            "meter": {
                "serial": facts.meter_serial,
                "start_wh": plain(facts.meter_start_wh),
                "stop_wh": plain(facts.meter_stop_wh),
            },
            "energy_wh": plain(self.energy_wh),
            "energy_kwh": plain(self.energy_kwh),
            "currency": self.currency,
            "prices_incl_vat": any_vat,
            "charges": [_line_json(line) for line in self.charges],
            "fees": [_line_json(line) for line in self.fees],
            "adjustments": [
                {"reason": self.adjustment_reason, **_share_json(share)}
                for share in amounts.adjustments
            ],
            "price_limit": (
                None
                if self.price_limit is None
                else {
                    "kind": self.adjustment_reason,
                    "excl_vat": plain(self.price_limit.excl_vat),
                    "incl_vat": _opt(self.price_limit.incl_vat),
                }
            ),
            "total": {
                "incl_vat": plain(amounts.total),
                "excl_vat": None if amounts.cap else plain(amounts.net),
            },
            "cap": [_share_json(share) for share in amounts.cap],
            "amount_charged": plain(self.amount_charged),
            "charge_capped": self.charge_capped,
            # only when no energy was delivered: nothing is charged (schema 2 unchanged)
            **({"nothing_charged": True} if self.no_energy else {}),
            "vat": [
                {
                    "percent": plain(rate.percent),
                    "gross": plain(rate.gross),
                    "vat": plain(rate.vat),
                    "net": plain(rate.net),
                }
                for rate in self.vat_rates
            ],
            "no_vat_amount": _opt(amounts.no_vat),
            "net_amount": plain(amounts.net),
            "stop_reason": {"code": facts.stop_reason, "text": stop_sentence(labels, facts)},
            "payment": {
                "method": facts.payment_method,
                "card_scheme": facts.card_scheme,
                "card_last4": facts.card_last4,
                "reference": facts.payment_reference,
                # a company's VAT number, only when one was given (schema 2 unchanged)
                **({"vat_number": facts.vat_number} if facts.vat_number else {}),
                # the external payment terminal's lines, only when it printed some
                **({"terminal_receipt": list(facts.terminal_lines)}
                   if facts.terminal_lines else {}),
                "authorised_amount": (
                    None
                    if facts.authorised_amount is None
                    else plain(money_exact(facts.authorised_amount, self.currency))
                ),
                **_hold_json(self),
            },
            "refunds": [
                {
                    "refund_id": refund.refund_id,
                    "amount": plain(refund.amount),
                    "at": _second(refund.at, tz),
                    "reason": refund.reason,
                }
                for refund in facts.refunds
            ],
            "amount_refunded": plain(self.amount_refunded),
            "amount_paid": plain(self.amount_charged - self.amount_refunded),
            "receipt_url": facts.receipt_url,
            "ocmf": facts.ocmf,
            **_signed_json(facts),
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
    if facts.meter_public_key and not facts.energy_not_billed:
        out += wrap(labels["signed_values"])

    amounts = receipt.amounts
    any_vat = _any_vat(receipt)

    def group_label(name: str, group: Decimal | None) -> str:
        if not any_vat:
            return name
        if group is None:
            return labels["line_no_vat"].format(name=name)
        return labels["line_vat"].format(name=name, vat=percent(locale, group))

    out += rule
    if any_vat:
        out += wrap(labels["amounts_incl_vat"])
    for printed in (*receipt.charges, *receipt.fees):
        out += charge_line(locale, labels, cur, printed, any_vat)
    reason = receipt.adjustment_reason
    if reason is not None:
        for share in amounts.adjustments:
            out += row(group_label(labels[reason], share.group), amount(share.amount, True))
        if receipt.price_limit is not None:
            out += wrap(f"({limit_text(locale, cur, reason, receipt.price_limit, any_vat)})")

    out += rule
    out += row(labels["total_incl_vat" if any_vat else "total"], amount(amounts.total))
    if receipt.charge_capped:
        for share in amounts.cap:
            out += row(group_label(labels["cap"], share.group), amount(share.amount, True))
        out += row(labels["charged"], amount(receipt.amount_charged))
        out += wrap(labels["capped"])
    elif receipt.no_energy:  # the priced total taken off again: nothing is charged
        for share in amounts.cap:
            out += row(group_label(labels["not_charged"], share.group),
                       amount(share.amount, True))
        out += row(labels["charged"], amount(receipt.amount_charged))
        out += wrap(labels["nothing_charged"])
    if any_vat:
        for rate in amounts.vat_rates:
            vat = percent(locale, rate.percent)
            out += wrap(
                labels["vat_incl"].format(vat=vat, tax=amount(rate.vat), gross=amount(rate.gross)),
                "  ",
            )
            out += row(labels["net_row"].format(vat=vat), amount(rate.net))
        if amounts.no_vat is not None:
            out += wrap(labels["no_vat_row"].format(base=amount(amounts.no_vat)), "  ")
        if len(amounts.vat_rates) + (amounts.no_vat is not None) > 1:
            out += row(labels["net_amount"], amount(amounts.net))

    if facts.energy_not_billed:
        out += wrap(labels["energy_not_billed"])
    if facts.time_not_billed:
        out += wrap(labels["time_not_billed"])

    out += rule
    out += wrap(stop_sentence(labels, facts))

    out += rule
    out += row(labels["payment"], payment_text(labels, facts))
    if facts.payment_reference:
        out += row(labels["reference"], facts.payment_reference)
    if facts.vat_number:
        out += row(labels["vat_number"], facts.vat_number)
    hold = card_hold(receipt)
    if hold is not None:  # what the card's hold became (terminal.payment.holds)
        out += row(labels["reserved_on_card"], amount(hold[0]))
        out += row(labels["charged"], amount(hold[1]))
        out += row(labels["released"], amount(hold[2]))
        if hold[1] == 0:
            out += wrap(labels["all_released"])
    elif facts.authorised_amount is not None:
        out += row(labels["authorised"], amount(facts.authorised_amount))
    for refund in facts.refunds:
        when = local_time(locale, refund.at, tz)
        out += row(labels["refund"].format(date=when.split(" ")[0]), amount(-refund.amount))
    if facts.refunds:
        out += row(labels["paid_after_refunds"],
                   amount(receipt.amount_charged - receipt.amount_refunded))
    if facts.terminal_lines:
        out += rule
        out += wrap(labels["terminal_receipt"])
        for line in facts.terminal_lines:
            out += chunks(line) if line else [""]

    if facts.receipt_url or facts.ocmf:
        out += rule
    if facts.receipt_url:
        out += [*wrap(labels["receipt_url"]), *chunks(facts.receipt_url)]
    if facts.ocmf:
        out += [*wrap(labels["ocmf"]), *chunks(facts.ocmf)]
    if facts.meter_public_key:
        out += [*wrap(labels["public_key"]), *chunks(facts.meter_public_key)]
        out += wrap(labels["transparency"])
    return "\n".join(out) + "\n"


def card_hold(receipt: Receipt) -> tuple[Decimal, Decimal, Decimal] | None:
    """A bank card's hold: (reserved on the card, charged, released = reserved -
    charged), None for other payments. Recomputable from the printed figures."""
    facts = receipt.facts
    if facts.payment_method != "card" or facts.authorised_amount is None:
        return None
    reserved = money_exact(facts.authorised_amount, receipt.currency)
    charged = receipt.amount_charged
    return reserved, charged, max(reserved - charged, Decimal(0))


def _hold_json(receipt: Receipt) -> dict[str, Any]:
    hold = card_hold(receipt)
    if hold is None:
        return {}
    return {"reserved": plain(hold[0]), "charged": plain(hold[1]), "released": plain(hold[2])}


def _signed_json(facts: ReceiptFacts) -> dict[str, Any]:
    """The signing meter's block for the e-receipt and the screen (absent for a meter
    that does not sign)."""
    if not facts.meter_public_key:
        return {}
    return {"signed_meter": {
        "meter_serial": facts.meter_serial,
        "start_wh": plain(facts.meter_start_wh),
        "end_wh": plain(facts.meter_stop_wh),
        "public_key": facts.meter_public_key,
        "signing_method": facts.meter_signing_method,
        "qr": facts.transparency_qr,
        "transparency_xml": facts.transparency_xml,
        "billable_by_energy": not facts.energy_not_billed,
        "fault": facts.signed_problem,
        "time_billed": not facts.time_not_billed,
    }}


def _line_json(printed: PrintedLine) -> dict[str, Any]:
    line = printed.line
    return {
        "dimension": line.dimension.value,
        "element": line.element_index,
        "vat_percent": None if line.vat_percent is None else plain(line.vat_percent.normalize()),
        "unit_price_excl_vat": plain(line.unit_price_excl_vat),
        "billed_quantity": plain(line.billed_quantity),
        "unit": line.unit,
        "printed_quantity": plain(printed.quantity),
        "printed_unit": PRINTED_UNITS[printed.per],
        "unit_price": plain(printed.unit_price),
        "amount": plain(printed.amount),
    }


def _share_json(share: Share) -> dict[str, Any]:
    return {
        "vat_percent": None if share.group is None else plain(share.group),
        "amount": plain(share.amount),
    }


def _any_vat(receipt: Receipt) -> bool:
    """Whether the receipt speaks of VAT: some line, adjustment or cap has a VAT rate."""
    return bool(receipt.amounts.vat_rates)


def _second(moment: datetime, tz: ZoneInfo) -> str:
    """ISO-8601 in the station's zone, to the second, as the text prints it."""
    return moment.astimezone(tz).replace(microsecond=0).isoformat()


PRINTED_UNITS = {"kWh": "kWh", "session": "session", "minute": "s", "hour": "s"}
"""The unit of `printed_quantity`: kWh, a count of sessions, or seconds (h:mm:ss)."""


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else plain(value)

