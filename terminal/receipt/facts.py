"""What a receipt is built from: the facts of one session, checked when they are created.

Provides `ReceiptFacts` (what the session journal holds about a session), `RefundLine`
(a refund on the session's payment), `ReceiptError` (bad receipt input, a ValueError)
and `zone(name)` (the station's time zone, or ReceiptError).

No card data beyond the last 4 digits: `ReceiptFacts` refuses a `card_last4` that is
not 1 to 4 digits and a `card_scheme` with digits, and its errors never echo them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from terminal.kernel.money import plain
from terminal.kernel.redact import scrub
from terminal.kernel.vat import VatNumberError, check_vat_number
from terminal.pricing.engine import station_zone
from terminal.pricing.errors import PricingInputError


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
    ocmf: str | None = None  # signed meter data (the end document), when the meter signs
    meter_public_key: str | None = None  # the signing meter's key (hex), when it signs
    transparency_qr: str | None = None  # what the QR for the transparency software holds
    energy_not_billed: bool = False  # the signed values are incomplete or invalid
    signed_problem: str | None = None  # why (English, for the operator and the e-receipt)
    meter_signing_method: str | None = None  # e.g. ECDSA-secp256r1-SHA256
    transparency_xml: str | None = None  # the documents as the transparency software reads
    time_not_billed: bool = False  # a clock was not synchronised (docs/pricing.md)
    refunds: tuple[RefundLine, ...] = ()  # oldest first
    vat_number: str | None = None  # the driver's company's, when one was given
    # the external payment terminal's receipt lines (ZVT), card numbers scrubbed
    terminal_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("session_id", "operator", "station_id", "stop_reason", "payment_method"):
            _check_text(name, getattr(self, name), required=True)
        for name in ("meter_serial", "payment_reference", "receipt_url", "ocmf",
                     "meter_public_key", "transparency_qr", "meter_signing_method"):
            _check_text(name, getattr(self, name), required=False)
        object.__setattr__(self, "terminal_lines",
                           tuple(scrub(str(line)) for line in self.terminal_lines))
        zone(self.timezone)
        if self.vat_number is not None:
            try:
                object.__setattr__(self, "vat_number", check_vat_number(self.vat_number))
            except VatNumberError as exc:
                raise ReceiptError("vat_number", self.vat_number, exc.problem) from None
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


def zone(name: str) -> ZoneInfo:
    """The station's time zone `name`; ReceiptError when it is not an IANA zone."""
    try:
        return station_zone(name)
    except PricingInputError:
        raise ReceiptError(
            "timezone", name, "an IANA time zone name such as Europe/Berlin or UTC"
        ) from None
