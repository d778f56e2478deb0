"""Receipt of one charging session: plain text (screen, printer) and JSON (backend, e-receipt).

Provides `ReceiptFacts` (what the session journal holds about a session), `build_receipt`
(facts + tariff + final `PricingResult` -> `Receipt`), `Receipt.to_text()` /
`render_text(receipt, language)` (lines of at most 42 characters) and `Receipt.to_json()`
(schema_version 1, Decimals as strings, times ISO-8601 with the station's UTC offset).
Content follows STANDARDS.md §2; docs/receipts.md explains every line.

Inputs: the facts, the tariff the session was priced with (for its id, min/max price and
VAT rates) and the final PricingResult. Amounts come from the result; this module adds
no pricing of its own, only the VAT breakdown per rate (rates of the lines, bases and
VAT rounded half-up per rate, any remainder to the highest rate, so the rows add up to
the totals exactly) and the amount charged (the total, capped by the authorised amount).

Guarantees:
- Reproducible: the receipt is a pure function of its inputs (no clock, no dict-order
  randomness), so building it twice from the database gives byte-identical text and JSON.
- No card data beyond the last 4 digits: `ReceiptFacts` refuses a `card_last4` that is
  not 1 to 4 digits and a `card_scheme` with digits, and its errors never echo them.
- One energy: the meter delta is the legal quantity; a PricingResult whose energy differs
  from it by more than 1 Wh, or whose totals cannot be split into VAT rates, is refused
  (ValueError): a receipt never shows numbers that contradict each other.
"""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from terminal.kernel.formatting import format_amount, format_energy
from terminal.kernel.locales import Locale, get_locale
from terminal.kernel.money import minor_unit_exponent, plain, round_half_up, round_money
from terminal.pricing.engine import station_zone
from terminal.pricing.errors import PricingInputError
from terminal.pricing.model import Dimension, Price, Tariff
from terminal.pricing.result import Amount, ChargeLine, PricingResult

SCHEMA_VERSION = 1
WIDTH = 42
"""Maximum characters per text line (58 mm receipt printers, the screen's receipt view)."""
ENERGY_TOLERANCE_WH = Decimal(1)
"""Largest allowed difference between the meter delta and the priced energy."""
CARD_MASK = "••••"


class ReceiptError(ValueError):
    """Bad receipt input: names the field, the value (hidden for card data) and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str, *, hide: bool = False) -> None:
        self.field = field
        self.allowed = allowed
        shown = "(not shown)" if hide else _show(value)
        super().__init__(f"{field}: invalid value {shown}; allowed: {allowed}")


def _show(value: Any) -> str:
    return plain(value) if isinstance(value, Decimal) else repr(value)


@dataclass(frozen=True)
class RefundLine:
    """A refund the backend made on this session's payment (full or partial)."""

    refund_id: str
    amount: Decimal  # incl. VAT, tariff currency, > 0
    at: datetime  # aware
    reason: str | None = None


@dataclass(frozen=True)
class ReceiptFacts:
    """What the session journal holds about one session; checked on creation (ReceiptError)."""

    session_id: str
    operator: str
    station_id: str  # EVSE id
    timezone: str  # IANA zone of the station; times on the receipt are local, with the UTC offset
    started_at: datetime  # aware
    stopped_at: datetime  # aware
    meter_serial: str | None
    meter_start_wh: Decimal
    meter_stop_wh: Decimal
    stop_reason: str  # OCPP-style name, e.g. "Local", "EVDisconnected"; others shown as given
    payment_method: str  # "rfid", "app", "card", "local" (free text allowed for others)
    card_scheme: str | None = None  # e.g. "Visa"
    card_last4: str | None = None  # at most the last 4 digits; anything else is refused
    payment_reference: str | None = None
    authorised_amount: Decimal | None = None  # pre-authorised amount / cost cap, incl. VAT
    receipt_url: str | None = None  # e-receipt URL from the backend (the UI draws the QR)
    ocmf: str | None = None  # signed meter data, when the meter signs
    refunds: tuple[RefundLine, ...] = ()  # oldest first

    def __post_init__(self) -> None:
        for name in ("session_id", "operator", "station_id", "stop_reason", "payment_method"):
            _check_text(name, getattr(self, name), required=True)
        for name in ("meter_serial", "payment_reference", "receipt_url", "ocmf"):
            _check_text(name, getattr(self, name), required=False)
        _zone(self.timezone)
        for name in ("started_at", "stopped_at"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise ReceiptError(name, value, "an aware datetime (with a UTC offset)")
        if self.stopped_at < self.started_at:
            raise ReceiptError(
                "stopped_at", self.stopped_at.isoformat(), "a time at or after started_at"
            )
        for name in ("meter_start_wh", "meter_stop_wh", "authorised_amount"):
            value = getattr(self, name)
            if value is None and name == "authorised_amount":
                continue
            object.__setattr__(self, name, _non_negative(name, value))
        if self.meter_stop_wh < self.meter_start_wh:
            raise ReceiptError(
                "meter_stop_wh",
                self.meter_stop_wh,
                f"a reading at or above meter_start_wh ({plain(self.meter_start_wh)})",
            )
        if self.card_last4 is not None and not (
            isinstance(self.card_last4, str)
            and 1 <= len(self.card_last4) <= 4
            and all(c in "0123456789" for c in self.card_last4)
        ):
            raise ReceiptError(
                "card_last4", None, "1 to 4 digits (the last digits of the card only)", hide=True
            )
        if self.card_scheme is not None:
            _check_text("card_scheme", self.card_scheme, required=True, hide=True)
            if any(c.isdigit() for c in self.card_scheme):
                raise ReceiptError(
                    "card_scheme", None, "a scheme name without digits, e.g. Visa", hide=True
                )


def _check_text(name: str, value: Any, *, required: bool, hide: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise ReceiptError(name, value, "a non-empty text", hide=hide)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise ReceiptError(name, value, "text without control characters or line breaks", hide=hide)


def _non_negative(name: str, value: Any) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ReceiptError(name, value, "a Decimal >= 0 (or an int)")
    return value


def _zone(name: str) -> ZoneInfo:
    try:
        return station_zone(name)
    except PricingInputError:
        raise ReceiptError(
            "timezone", name, "an IANA time zone name such as Europe/Berlin or UTC"
        ) from None


@dataclass(frozen=True)
class VatRate:
    """VAT of one rate: the part of the subtotal taxed at `percent` and its VAT."""

    percent: Decimal
    base_excl_vat: Decimal
    vat: Decimal


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
        zone = _zone(facts.timezone)
        labels = _labels(self.language)
        return {
            "schema_version": SCHEMA_VERSION,
            "language": self.language,
            "operator": facts.operator,
            "station_id": facts.station_id,
            "session_id": facts.session_id,
            "tariff_id": self.tariff_id,
            "timezone": facts.timezone,
            "started_at": facts.started_at.astimezone(zone).isoformat(),
            "stopped_at": facts.stopped_at.astimezone(zone).isoformat(),
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
            "stop_reason": {"code": facts.stop_reason, "text": _stop_sentence(labels, facts)},
            "payment": {
                "method": facts.payment_method,
                "card_scheme": facts.card_scheme,
                "card_last4": facts.card_last4,
                "reference": facts.payment_reference,
                "authorised_amount": (
                    None
                    if facts.authorised_amount is None
                    else plain(_money_exact(facts.authorised_amount, self.currency))
                ),
            },
            "refunds": [
                {
                    "refund_id": refund.refund_id,
                    "amount": plain(refund.amount),
                    "at": refund.at.astimezone(zone).isoformat(),
                    "reason": refund.reason,
                }
                for refund in facts.refunds
            ],
            "amount_refunded": plain(self.amount_refunded),
            "amount_paid": plain(self.amount_charged - self.amount_refunded),
            "receipt_url": facts.receipt_url,
            "ocmf": facts.ocmf,
        }


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
    locale = _locale(language)
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
        _money_exact(facts.authorised_amount, currency)

    charges = tuple(line for line in result.lines if line.dimension is not Dimension.FLAT)
    fees = tuple(line for line in result.lines if line.dimension is Dimension.FLAT)
    subtotal = result.total.excl_vat
    adjustment = subtotal - sum((line.excl_vat for line in result.lines), Decimal(0))
    reason = result.price_limit or ("rounding" if adjustment else None)
    limit = None
    if result.price_limit is not None:
        limit = tariff.min_price if result.price_limit == "min_price" else tariff.max_price
    vat_rates, no_vat_base = _vat_breakdown(tariff, result)

    amount_charged = result.total.incl_vat
    capped = facts.authorised_amount is not None and amount_charged > facts.authorised_amount
    if capped:
        assert facts.authorised_amount is not None
        amount_charged = _money_exact(facts.authorised_amount, currency)
    refunded = Decimal(0)
    for number, refund in enumerate(facts.refunds):
        name = f"refunds[{number}].amount"
        if not isinstance(refund.amount, Decimal) or not refund.amount.is_finite() \
                or refund.amount <= 0:
            raise ReceiptError(name, refund.amount, "an amount above 0")
        refunded += _money_exact(refund.amount, currency, name)
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


def _money_exact(amount: Decimal, currency: str, name: str = "authorised_amount") -> Decimal:
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


def _vat_breakdown(
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


# Text ----------------------------------------------------------------------------------

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Charging receipt",
        "station": "Station",
        "session": "Session",
        "tariff": "Tariff",
        "start": "Start",
        "stop": "Stop",
        "duration": "Duration",
        "meter": "Meter",
        "meter_start": "Meter start",
        "meter_stop": "Meter stop",
        "energy": "Energy delivered",
        "amounts_excl_vat": "Prices and amounts excl. VAT",
        "ENERGY": "Energy",
        "TIME": "Charging time",
        "PARKING_TIME": "Idle fee",
        "FLAT": "Session fee",
        "line_vat": "{name}, {vat} VAT",
        "line_no_vat": "{name}, no VAT",
        "rounding": "Rounding",
        "min_price": "Minimum price applied",
        "max_price": "Maximum price applied",
        "subtotal": "Subtotal excl. VAT",
        "vat_row": "VAT {vat} of {base}",
        "no_vat_row": "No VAT applicable on {base}",
        "total_incl_vat": "Total incl. VAT",
        "total": "Total",
        "payment": "Payment",
        "reference": "Reference",
        "authorised": "Authorised amount",
        "charged": "Charged",
        "refund": "Refund {date}",
        "paid_after_refunds": "Paid after refunds",
        "capped": "The total exceeds the authorised amount; the authorised amount was charged.",
        "receipt_url": "E-receipt",
        "ocmf": "Signed meter data (OCMF)",
        "pay_rfid": "RFID card",
        "pay_app": "App",
        "pay_card": "Payment card",
        "pay_local": "Local authorisation",
        "pay_remote": "Started by the operator",
        "stop_Local": "You stopped the session at the charger.",
        "stop_Remote": "The session was stopped remotely (app or operator).",
        "stop_CostLimitReached": "Charging stopped at your cost limit.",
        "stop_EnergyLimitReached": "Charging stopped at your energy limit.",
        "stop_StoppedByEV": "Your vehicle ended charging.",
        "stop_EVDisconnected": "The vehicle was disconnected.",
        "stop_MeterFault": "Charging stopped because of a meter fault.",
        "stop_ChargerFault": "Charging stopped because of a charger fault.",
        "stop_PowerLoss": "Charging stopped because of a power failure.",
        "stop_Technician": "A technician stopped the session.",
        "stop_Timeout": "The session ended after a timeout.",
        "stop_other": "The session ended (reason: {reason}).",
    },
    "de": {
        "title": "Ladebeleg",
        "station": "Ladepunkt",
        "session": "Vorgang",
        "tariff": "Tarif",
        "start": "Beginn",
        "stop": "Ende",
        "duration": "Dauer",
        "meter": "Zähler",
        "meter_start": "Zählerstand Beginn",
        "meter_stop": "Zählerstand Ende",
        "energy": "Geladene Energie",
        "amounts_excl_vat": "Preise und Beträge ohne MwSt.",
        "ENERGY": "Energie",
        "TIME": "Ladezeit",
        "PARKING_TIME": "Blockiergebühr",
        "FLAT": "Startgebühr",
        "line_vat": "{name}, {vat} MwSt.",
        "line_no_vat": "{name}, keine MwSt.",
        "rounding": "Rundung",
        "min_price": "Mindestpreis angewendet",
        "max_price": "Höchstpreis angewendet",
        "subtotal": "Zwischensumme ohne MwSt.",
        "vat_row": "MwSt. {vat} auf {base}",
        "no_vat_row": "Keine MwSt. anwendbar auf {base}",
        "total_incl_vat": "Gesamt inkl. MwSt.",
        "total": "Gesamt",
        "payment": "Zahlung",
        "reference": "Referenz",
        "authorised": "Reservierter Betrag",
        "charged": "Belastet",
        "refund": "Erstattung {date}",
        "paid_after_refunds": "Bezahlt nach Erstattung",
        "capped": "Der Gesamtbetrag übersteigt den reservierten Betrag; belastet wurde der "
        "reservierte Betrag.",
        "receipt_url": "E-Beleg",
        "ocmf": "Signierte Messdaten (OCMF)",
        "pay_rfid": "RFID-Karte",
        "pay_app": "App",
        "pay_card": "Bankkarte",
        "pay_local": "Lokale Freigabe",
        "pay_remote": "Vom Betreiber gestartet",
        "stop_Local": "Sie haben den Ladevorgang an der Ladesäule beendet.",
        "stop_Remote": "Der Ladevorgang wurde aus der Ferne beendet (App oder Betreiber).",
        "stop_CostLimitReached": "Der Ladevorgang endete bei Ihrem Kostenlimit.",
        "stop_EnergyLimitReached": "Der Ladevorgang endete bei Ihrem Energielimit.",
        "stop_StoppedByEV": "Ihr Fahrzeug hat den Ladevorgang beendet.",
        "stop_EVDisconnected": "Das Fahrzeug wurde getrennt.",
        "stop_MeterFault": "Der Ladevorgang endete wegen eines Zählerfehlers.",
        "stop_ChargerFault": "Der Ladevorgang endete wegen einer Störung der Ladesäule.",
        "stop_PowerLoss": "Der Ladevorgang endete wegen eines Stromausfalls.",
        "stop_Technician": "Ein Techniker hat den Ladevorgang beendet.",
        "stop_Timeout": "Der Ladevorgang endete nach einer Zeitüberschreitung.",
        "stop_other": "Der Ladevorgang wurde beendet (Grund: {reason}).",
    },
    "fr": {
        "title": "Reçu de recharge",
        "station": "Point de charge",
        "session": "Session",
        "tariff": "Tarif",
        "start": "Début",
        "stop": "Fin",
        "duration": "Durée",
        "meter": "Compteur",
        "meter_start": "Index début",
        "meter_stop": "Index fin",
        "energy": "Énergie fournie",
        "amounts_excl_vat": "Prix et montants HT",
        "ENERGY": "Énergie",
        "TIME": "Temps de charge",
        "PARKING_TIME": "Frais d'occupation",
        "FLAT": "Frais de session",
        "line_vat": "{name}, TVA {vat}",
        "line_no_vat": "{name}, sans TVA",
        "rounding": "Arrondi",
        "min_price": "Prix minimum appliqué",
        "max_price": "Prix maximum appliqué",
        "subtotal": "Sous-total HT",
        "vat_row": "TVA {vat} sur {base}",
        "no_vat_row": "TVA non applicable sur {base}",
        "total_incl_vat": "Total TTC",
        "total": "Total",
        "payment": "Paiement",
        "reference": "Référence",
        "authorised": "Montant autorisé",
        "charged": "Débité",
        "refund": "Remboursement {date}",
        "paid_after_refunds": "Payé après remboursement",
        "capped": "Le total dépasse le montant autorisé ; le montant autorisé a été débité.",
        "receipt_url": "Reçu électronique",
        "ocmf": "Données de mesure signées (OCMF)",
        "pay_rfid": "Badge RFID",
        "pay_app": "Application",
        "pay_card": "Carte bancaire",
        "pay_local": "Autorisation locale",
        "pay_remote": "Démarrée par l'opérateur",
        "stop_Local": "Vous avez arrêté la session à la borne.",
        "stop_Remote": "La session a été arrêtée à distance (application ou opérateur).",
        "stop_CostLimitReached": "La recharge s'est arrêtée à votre limite de coût.",
        "stop_EnergyLimitReached": "La recharge s'est arrêtée à votre limite d'énergie.",
        "stop_StoppedByEV": "Votre véhicule a terminé la recharge.",
        "stop_EVDisconnected": "Le véhicule a été débranché.",
        "stop_MeterFault": "La recharge s'est arrêtée à cause d'un défaut du compteur.",
        "stop_ChargerFault": "La recharge s'est arrêtée à cause d'un défaut de la borne.",
        "stop_PowerLoss": "La recharge s'est arrêtée à cause d'une coupure de courant.",
        "stop_Technician": "Un technicien a arrêté la session.",
        "stop_Timeout": "La session s'est terminée après un délai dépassé.",
        "stop_other": "La session s'est terminée (motif : {reason}).",
    },
    "nl": {
        "title": "Laadbon",
        "station": "Laadpunt",
        "session": "Sessie",
        "tariff": "Tarief",
        "start": "Start",
        "stop": "Einde",
        "duration": "Duur",
        "meter": "Meter",
        "meter_start": "Meterstand start",
        "meter_stop": "Meterstand einde",
        "energy": "Geleverde energie",
        "amounts_excl_vat": "Prijzen en bedragen excl. btw",
        "ENERGY": "Energie",
        "TIME": "Laadtijd",
        "PARKING_TIME": "Blokkeertarief",
        "FLAT": "Starttarief",
        "line_vat": "{name}, {vat} btw",
        "line_no_vat": "{name}, geen btw",
        "rounding": "Afronding",
        "min_price": "Minimumprijs toegepast",
        "max_price": "Maximumprijs toegepast",
        "subtotal": "Subtotaal excl. btw",
        "vat_row": "Btw {vat} over {base}",
        "no_vat_row": "Geen btw van toepassing op {base}",
        "total_incl_vat": "Totaal incl. btw",
        "total": "Totaal",
        "payment": "Betaling",
        "reference": "Referentie",
        "authorised": "Gereserveerd bedrag",
        "charged": "Afgeschreven",
        "refund": "Terugbetaling {date}",
        "paid_after_refunds": "Betaald na terugbetaling",
        "capped": "Het totaal is hoger dan het gereserveerde bedrag; het gereserveerde bedrag "
        "is afgeschreven.",
        "receipt_url": "E-bon",
        "ocmf": "Ondertekende meetgegevens (OCMF)",
        "pay_rfid": "RFID-pas",
        "pay_app": "App",
        "pay_card": "Betaalkaart",
        "pay_local": "Lokale autorisatie",
        "pay_remote": "Gestart door de exploitant",
        "stop_Local": "U hebt de sessie bij de laadpaal gestopt.",
        "stop_Remote": "De sessie is op afstand gestopt (app of beheerder).",
        "stop_CostLimitReached": "Het laden stopte bij uw kostenlimiet.",
        "stop_EnergyLimitReached": "Het laden stopte bij uw energielimiet.",
        "stop_StoppedByEV": "Uw voertuig heeft het laden beëindigd.",
        "stop_EVDisconnected": "Het voertuig is losgekoppeld.",
        "stop_MeterFault": "Het laden stopte door een meterstoring.",
        "stop_ChargerFault": "Het laden stopte door een storing van de laadpaal.",
        "stop_PowerLoss": "Het laden stopte door een stroomstoring.",
        "stop_Technician": "Een technicus heeft de sessie gestopt.",
        "stop_Timeout": "De sessie is beëindigd na een time-out.",
        "stop_other": "De sessie is beëindigd (reden: {reason}).",
    },
}
"""Receipt labels per language (codes of terminal.kernel.locales.LOCALES)."""

STOP_REASONS = (
    "Local",
    "Remote",
    "CostLimitReached",
    "EnergyLimitReached",
    "StoppedByEV",
    "EVDisconnected",
    "MeterFault",
    "ChargerFault",
    "PowerLoss",
    "Technician",
    "Timeout",
)
"""Stop reasons with a sentence of their own; others are shown as 'ended (reason: X)'."""
PAYMENT_METHODS = ("rfid", "app", "card", "local", "remote")
"""Payment methods with a name per language; others are shown as given."""


def _locale(language: str) -> Locale:
    locale = get_locale(language)
    if locale.code not in _TEXTS:
        raise ValueError(
            f"receipt language {language!r} is not supported; allowed: {', '.join(sorted(_TEXTS))}"
        )
    return locale


def _labels(language: str) -> dict[str, str]:
    return _TEXTS[_locale(language).code]


def render_text(receipt: Receipt, language: str | None = None) -> str:
    """The receipt as text in `language` (default: the receipt's), lines <= 42 characters.

    ValueError for an unsupported language (the message names the allowed ones).
    """
    locale = _locale(receipt.language if language is None else language)
    labels = _TEXTS[locale.code]
    facts = receipt.facts
    cur = receipt.currency
    zone = _zone(facts.timezone)

    def amount(value: Decimal, sign: bool = False) -> str:
        text = format_amount(value, cur, locale.code)
        return f"+{text}" if sign and value > 0 else text

    rule = ["-" * WIDTH]
    out: list[str] = [*_wrap(labels["title"]), *_wrap(facts.operator)]
    out += _row(labels["station"], facts.station_id)
    out += _row(labels["session"], facts.session_id)
    if receipt.tariff_id:
        out += _row(labels["tariff"], receipt.tariff_id)
    out += _row(labels["start"], _local_time(locale, facts.started_at, zone))
    out += _row(labels["stop"], _local_time(locale, facts.stopped_at, zone))
    out += _row(labels["duration"], _hms(receipt.duration_s))

    out += rule
    if facts.meter_serial:
        out += _row(labels["meter"], facts.meter_serial)
    out += _row(labels["meter_start"], _reading(locale, facts.meter_start_wh))
    out += _row(labels["meter_stop"], _reading(locale, facts.meter_stop_wh))
    out += _row(labels["energy"], format_energy(receipt.energy_wh, locale.code))

    any_vat = bool(receipt.vat_rates)
    out += rule
    if any_vat:
        out += _wrap(labels["amounts_excl_vat"])
    for line in (*receipt.charges, *receipt.fees):
        out += _charge_line(locale, labels, cur, line, any_vat)
    if receipt.adjustment_reason is not None:
        out += _row(labels[receipt.adjustment_reason], amount(receipt.adjustment_excl_vat, True))
        if receipt.price_limit is not None:
            out += _wrap(f"({_limit_text(locale, cur, receipt, any_vat)})")

    out += rule
    if any_vat:
        out += _row(labels["subtotal"], amount(receipt.subtotal_excl_vat))
        for rate in receipt.vat_rates:
            label = labels["vat_row"].format(
                vat=_percent(locale, rate.percent), base=amount(rate.base_excl_vat)
            )
            out += _row(label, amount(rate.vat))
        if receipt.no_vat_base_excl_vat is not None:
            out += _wrap(labels["no_vat_row"].format(base=amount(receipt.no_vat_base_excl_vat)))
        out += _row(labels["total_incl_vat"], amount(receipt.total.incl_vat))
    else:
        out += _row(labels["total"], amount(receipt.total.incl_vat))

    out += rule
    out += _wrap(_stop_sentence(labels, facts))

    out += rule
    out += _row(labels["payment"], _payment(labels, facts))
    if facts.payment_reference:
        out += _row(labels["reference"], facts.payment_reference)
    if facts.authorised_amount is not None:
        out += _row(labels["authorised"], amount(facts.authorised_amount))
    if receipt.charge_capped:
        out += _row(labels["charged"], amount(receipt.amount_charged))
        out += _wrap(labels["capped"])
    for refund in facts.refunds:
        when = _local_time(locale, refund.at, zone)
        out += _row(labels["refund"].format(date=when.split(" ")[0]), amount(-refund.amount))
    if facts.refunds:
        out += _row(labels["paid_after_refunds"],
                    amount(receipt.amount_charged - receipt.amount_refunded))

    if facts.receipt_url or facts.ocmf:
        out += rule
    if facts.receipt_url:
        out += [*_wrap(labels["receipt_url"]), *_chunks(facts.receipt_url)]
    if facts.ocmf:
        out += [*_wrap(labels["ocmf"]), *_chunks(facts.ocmf)]
    return "\n".join(out) + "\n"


def _charge_line(
    locale: Locale, labels: dict[str, str], cur: str, line: ChargeLine, any_vat: bool
) -> list[str]:
    name = labels[line.dimension.value]
    if line.vat_percent is not None:
        header = labels["line_vat"].format(name=name, vat=_percent(locale, line.vat_percent))
    elif any_vat:
        header = labels["line_no_vat"].format(name=name)
    else:
        header = name
    exponent = minor_unit_exponent(cur)
    price = line.unit_price_excl_vat
    if line.dimension is Dimension.ENERGY:
        quantity = format_energy(line.billed_quantity * 1000, locale.code)
        unit_price = f"{_price(locale, price, exponent)} {cur}/kWh"
    elif line.dimension is Dimension.FLAT:
        quantity = locale.number(line.billed_quantity)
        unit_price = f"{_price(locale, price, exponent)} {cur}"
    else:
        quantity = _hms(line.billed_quantity * 3600)
        per_minute = Fraction(price) / 60 * 10 ** (exponent + 2)
        if per_minute.denominator == 1:
            shown = Decimal(per_minute.numerator).scaleb(-(exponent + 2))
            unit_price = f"{_price(locale, shown, exponent)} {cur}/{locale.minute}"
        else:
            unit_price = f"{_price(locale, price, exponent)} {cur}/{locale.hour}"
    detail = f"  {quantity} x {unit_price}"
    return [*_wrap(header), *_row(detail, format_amount(line.excl_vat, cur, locale.code))]


def _price(locale: Locale, value: Decimal, exponent: int) -> str:
    """A unit price with all its digits, at least the currency's minor digits."""
    return locale.number(value.normalize() if value else Decimal(0), exponent)


def _percent(locale: Locale, value: Decimal) -> str:
    return locale.percent.format(n=locale.number(value.normalize() if value else Decimal(0)))


def _limit_text(locale: Locale, cur: str, receipt: Receipt, any_vat: bool) -> str:
    limit = receipt.price_limit
    assert limit is not None and receipt.adjustment_reason is not None
    value, note = (
        (limit.incl_vat, "incl_vat") if limit.incl_vat is not None else (limit.excl_vat, "excl_vat")
    )
    text = format_amount(value, cur, locale.code)
    if any_vat:
        text = f"{text} {locale.text(note)}"
    return locale.text(receipt.adjustment_reason, amount=text)


def _stop_sentence(labels: dict[str, str], facts: ReceiptFacts) -> str:
    key = f"stop_{facts.stop_reason}"
    if facts.stop_reason in STOP_REASONS:
        return labels[key]
    return labels["stop_other"].format(reason=facts.stop_reason)


def _payment(labels: dict[str, str], facts: ReceiptFacts) -> str:
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


def _local_time(locale: Locale, moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    offset = local.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    day = locale.date.format(y=local.year, m=local.month, d=local.day)
    return f"{day} {local:%H:%M:%S} {sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _hms(seconds: Decimal) -> str:
    """Seconds as h:mm:ss, rounded half-up to the second."""
    total = int(round_half_up(seconds, 0))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _reading(locale: Locale, energy_wh: Decimal) -> str:
    """A meter reading in kWh with all its digits, at least 3 decimals."""
    kwh = energy_wh.scaleb(-3).normalize() if energy_wh else Decimal(0)
    return f"{locale.number(kwh, 3)} kWh"


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [""]


def _row(label: str, value: str) -> list[str]:
    """Label left, value right-aligned; on two (or more) lines when they do not fit in one."""
    if len(label) + 1 + len(value) <= WIDTH:
        return [label + value.rjust(WIDTH - len(label))]
    indent = label[: len(label) - len(label.lstrip())]
    return [*_wrap(label, indent), *(part.rjust(WIDTH) for part in _wrap(value))]


def _chunks(text: str) -> list[str]:
    """Long data (URL, OCMF) cut every 42 characters: the lines joined give it back exactly."""
    return [text[i : i + WIDTH] for i in range(0, len(text), WIDTH)]
