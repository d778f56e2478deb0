"""OCPI 2.2.1 tariff model: frozen dataclasses built by `parse.parse_tariff`.

Units are those of OCPI: prices per kWh (ENERGY), per hour (TIME, PARKING_TIME) or
per session (FLAT), excl. VAT; `vat` in percent; `step_size` in Wh or seconds;
`min_power`/`max_power` in kW; `min_current`/`max_current` in A; durations in s.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


class Dimension(enum.StrEnum):
    """OCPI TariffDimensionType."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class TariffType(enum.StrEnum):
    """OCPI TariffType."""

    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


DAYS_OF_WEEK: tuple[str, ...] = (
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
    "SUNDAY",
)
"""OCPI DayOfWeek values; the index is `datetime.weekday()`."""


@dataclass(frozen=True)
class Price:
    """OCPI Price: an amount excl. VAT and, optionally, incl. VAT."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None


@dataclass(frozen=True)
class DisplayText:
    """OCPI DisplayText: a text in a language (ISO 639-1)."""

    language: str
    text: str


@dataclass(frozen=True)
class PriceComponent:
    """Price of one dimension: `price` per unit excl. VAT, `vat` percent or None (no VAT)."""

    type: Dimension
    price: Decimal
    step_size: int
    vat: Decimal | None = None


@dataclass(frozen=True)
class Restrictions:
    """OCPI TariffRestrictions; None (or an empty day set) means "no restriction".

    Times of day are minutes after local midnight (0..1439), dates are local dates.
    """

    start_time_min: int | None = None
    end_time_min: int | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current_a: Decimal | None = None
    max_current_a: Decimal | None = None
    min_power_kw: Decimal | None = None
    max_power_kw: Decimal | None = None
    min_duration_s: int | None = None
    max_duration_s: int | None = None
    day_of_week: frozenset[int] = frozenset()
    reservation: str | None = None

    @property
    def has_calendar(self) -> bool:
        """True if a local-time restriction (time of day, date, weekday) is present."""
        return (
            self.start_time_min is not None
            or self.end_time_min is not None
            or self.start_date is not None
            or self.end_date is not None
            or bool(self.day_of_week)
        )


@dataclass(frozen=True)
class TariffElement:
    """Price components that apply while all restrictions hold."""

    price_components: tuple[PriceComponent, ...]
    restrictions: Restrictions | None = None

    def component(self, dimension: Dimension) -> PriceComponent | None:
        """This element's component of `dimension`, or None."""
        for component in self.price_components:
            if component.type is dimension:
                return component
        return None


@dataclass(frozen=True)
class Tariff:
    """OCPI 2.2.1 Tariff (the fields pricing and display use, plus identification)."""

    currency: str
    elements: tuple[TariffElement, ...]
    type: TariffType | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: str | None = None
    id: str | None = None
    country_code: str | None = None
    party_id: str | None = None
    last_updated: datetime | None = None
