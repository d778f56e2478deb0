"""Typed, frozen results of pricing: totals, per-dimension subtotals, charge lines, periods.

Amounts are Decimal rounded half-up to the currency's minor unit. Quantities:
ENERGY in kWh, TIME and PARKING_TIME in hours, FLAT as a count; kWh and hours that
are not exact decimals are shown rounded half-up to 6 decimal places.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from terminal.kernel.money import round_half_up
from terminal.pricing.model import Dimension

QUANTITY_PLACES = 6
UNITS: dict[Dimension, str] = {
    Dimension.ENERGY: "kWh",
    Dimension.TIME: "h",
    Dimension.PARKING_TIME: "h",
    Dimension.FLAT: "session",
}
DIMENSION_ORDER = (Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME, Dimension.FLAT)


def display_quantity(value: Fraction, min_places: int) -> Decimal:
    """Half-up to 6 places, trailing zeros dropped down to `min_places`."""
    rounded = round_half_up(value, QUANTITY_PLACES)
    text = format(rounded, "f").rstrip("0")
    whole, _, fraction = text.partition(".")
    return Decimal(
        f"{whole}.{fraction.ljust(min_places, '0')}" if min_places or fraction else whole
    )


@dataclass(frozen=True)
class Amount:
    """An amount excl. and incl. VAT, rounded to the minor unit."""

    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True)
class DimensionTotal:
    """Billed quantity (after step_size) and amounts of one dimension, before min/max price."""

    dimension: Dimension
    billed_quantity: Decimal
    unit: str
    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True)
class ChargeLine:
    """One price component applied in the session: a receipt line."""

    dimension: Dimension
    element_index: int
    unit_price_excl_vat: Decimal
    vat_percent: Decimal | None
    billed_quantity: Decimal
    unit: str
    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True)
class ActiveElements:
    """Index of the tariff element active per dimension in a period (None = free)."""

    energy: int | None
    time: int | None
    parking_time: int | None
    flat: int | None

    def of(self, dimension: Dimension) -> int | None:
        """Active element index of `dimension`."""
        return {
            Dimension.ENERGY: self.energy,
            Dimension.TIME: self.time,
            Dimension.PARKING_TIME: self.parking_time,
            Dimension.FLAT: self.flat,
        }[dimension]


@dataclass(frozen=True)
class Period:
    """A stretch of the session with the same active elements and charging state.

    Pricing cuts the session far finer (at every sample and restriction boundary);
    consecutive pieces with identical state are merged here.
    """

    start: datetime
    end: datetime
    duration_s: Decimal
    energy_wh: Decimal
    charging: bool
    active: ActiveElements


@dataclass(frozen=True)
class PricingResult:
    """The price of a session (or of a session so far, stopped at `stop`)."""

    currency: str
    total: Amount
    dimensions: tuple[DimensionTotal, ...]
    lines: tuple[ChargeLine, ...]
    periods: tuple[Period, ...]
    total_energy_wh: Decimal
    charging_time_s: Decimal
    parking_time_s: Decimal
    start: datetime
    stop: datetime
    price_limit: str | None
    """'min_price' or 'max_price' when a limit changed a total, else None."""

    def dimension(self, dimension: Dimension) -> DimensionTotal:
        """The subtotal of `dimension`."""
        return next(d for d in self.dimensions if d.dimension is dimension)


@dataclass(frozen=True)
class RunningCost:
    """Cost so far during a session, for the live display.

    Quantities consumed so far at their component prices, FLAT fees of the elements
    met so far, VAT per component, min/max price applied, rounded. step_size rounding
    is applied only when the session ends (PricingResult), so this never decreases.
    """

    currency: str
    excl_vat: Decimal
    incl_vat: Decimal
    energy_wh: Decimal
    duration_s: Decimal
