"""A tariff compiled for fast pricing: restrictions as bit masks over the elements.

Bit i stands for element i. Energy, power and current restrictions are turned into
sorted thresholds; the index of a value among them (`bisect_right`) selects a
precomputed mask of the elements whose restriction holds. Time restrictions (time
of day, date, weekday, duration) are evaluated at the instants of `CutSchedule`.
The active element per dimension depends only on the combined mask, so it is
memoised per mask.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime
from decimal import Context, Decimal, Inexact
from fractions import Fraction
from zoneinfo import ZoneInfo

from terminal.pricing.calendar import US_PER_S, CutSchedule, local_time
from terminal.pricing.model import Dimension, PriceComponent, Restrictions, Tariff

ACTIVE_DIMENSIONS = (Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME, Dimension.FLAT)
"""Order of the element indices in an active tuple; -1 means free in that period."""

Active = tuple[int, int, int, int]
MINUTES_PER_DAY = 1440
_EXACT_SCALE = Context(prec=200, traps=[Inexact])


def _threshold_masks(
    count: int, bounds: list[tuple[Decimal | None, Decimal | None]]
) -> tuple[list[Decimal], list[int]]:
    """Thresholds and, per bisect_right index, the mask of elements with min <= v < max."""
    thresholds = sorted({b for pair in bounds for b in pair if b is not None})
    masks = []
    for index in range(len(thresholds) + 1):
        mask = 0
        for element in range(count):
            low, high = bounds[element]
            low_ok = low is None or thresholds.index(low) < index
            high_ok = high is None or thresholds.index(high) >= index
            if low_ok and high_ok:
                mask |= 1 << element
        masks.append(mask)
    return thresholds, masks


def _scaled(value: Decimal | None, factor: int) -> Decimal | None:
    return None if value is None else _EXACT_SCALE.multiply(value, Decimal(factor))


def _calendar_check(r: Restrictions) -> Callable[[datetime], bool]:
    start = r.start_time_min
    # end_time "00:00" is the end of the day (OCPI: "to stop at end of the day use 00:00")
    end = None if r.end_time_min is None else (r.end_time_min or MINUTES_PER_DAY)
    days = r.day_of_week

    def holds(local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        if start is not None and end is not None:
            in_window = start <= minute < end if start < end else (minute >= start or minute < end)
            if not in_window:
                return False
        elif (start is not None and minute < start) or (end is not None and minute >= end):
            return False
        day = local.date()
        if r.start_date is not None and day < r.start_date:
            return False
        if r.end_date is not None and day >= r.end_date:
            return False
        return not days or local.weekday() in days

    return holds


_PER_UNIT = {
    Dimension.ENERGY: 1000,  # Wh per kWh
    Dimension.TIME: 3600 * US_PER_S,  # µs per hour
    Dimension.PARKING_TIME: 3600 * US_PER_S,
    Dimension.FLAT: 1,
}


def _rate(component: PriceComponent) -> tuple[Fraction, Fraction]:
    vat = Fraction(0) if component.vat is None else Fraction(component.vat) / 100
    return Fraction(component.price) / _PER_UNIT[component.type], 1 + vat


class CompiledTariff:
    """Restrictions of one tariff in one time zone, ready for a session starting at start_us."""

    def __init__(self, tariff: Tariff, zone: ZoneInfo, start_us: int) -> None:
        self.tariff = tariff
        self.zone = zone
        self.start_us = start_us
        elements = tariff.elements
        count = len(elements)
        none = Restrictions()
        rs = [e.restrictions or none for e in elements]
        self.usable = sum(1 << i for i, r in enumerate(rs) if r.reservation is None)
        self.energy_th, self.energy_masks = _threshold_masks(
            count, [(_scaled(r.min_kwh, 1000), _scaled(r.max_kwh, 1000)) for r in rs]
        )
        self.power_th, self.power_masks = _threshold_masks(
            count, [(_scaled(r.min_power_kw, 1000), _scaled(r.max_power_kw, 1000)) for r in rs]
        )
        self.current_th, self.current_masks = _threshold_masks(
            count, [(r.min_current_a, r.max_current_a) for r in rs]
        )
        self._timed = [
            (
                1 << i,
                _calendar_check(r) if r.has_calendar else None,
                None if r.min_duration_s is None else r.min_duration_s * US_PER_S,
                None if r.max_duration_s is None else r.max_duration_s * US_PER_S,
            )
            for i, r in enumerate(rs)
            if r.has_calendar or r.min_duration_s is not None or r.max_duration_s is not None
        ]
        self._has_calendar = any(r.has_calendar for r in rs)
        self._untimed = ((1 << count) - 1) & ~sum(bit for bit, _, _, _ in self._timed)
        wall_minutes = {m for r in rs for m in (r.start_time_min, r.end_time_min) if m is not None}
        duration_cuts = [
            start_us + s * US_PER_S
            for r in rs
            for s in (r.min_duration_s, r.max_duration_s)
            if s is not None
        ]
        # the calendar changes every day only with a time window or some (not all) weekdays;
        # dates alone change it at their own midnights
        daily = any(
            r.start_time_min is not None or r.end_time_min is not None or 0 < len(r.day_of_week) < 7
            for r in rs
        )
        dates = {d for r in rs for d in (r.start_date, r.end_date) if d is not None}
        self.cuts = CutSchedule(
            zone, start_us, wall_minutes if daily else None, duration_cuts, dates
        )
        self.components: list[tuple[PriceComponent | None, ...]] = [
            tuple(e.component(d) for d in ACTIVE_DIMENSIONS) for e in elements
        ]
        self.rates: list[tuple[tuple[Fraction, Fraction] | None, ...]] = [
            tuple(None if c is None else _rate(c) for c in components)
            for components in self.components
        ]
        """Per element and dimension: (price per Wh / µs / fee, VAT factor), exact."""
        self._by_dimension = [
            [i for i, e in enumerate(elements) if e.component(d) is not None]
            for d in ACTIVE_DIMENSIONS
        ]
        self._memo: dict[int, Active] = {}

    def time_mask(self, instant_us: int) -> int:
        """Mask of elements whose time restrictions hold at an instant (µs)."""
        mask = self._untimed
        local = local_time(self.zone, instant_us) if self._has_calendar else None
        elapsed_us = instant_us - self.start_us
        for bit, holds, low_us, high_us in self._timed:
            if holds is not None and not holds(local):  # type: ignore[arg-type]
                continue
            if (low_us is not None and elapsed_us < low_us) or (
                high_us is not None and elapsed_us >= high_us
            ):
                continue
            mask |= bit
        return mask

    def energy_index(self, energy_wh: Decimal) -> int:
        """Index of an energy among the kWh thresholds."""
        return bisect_right(self.energy_th, energy_wh)

    def sample_mask(self, power_w: Decimal, current_a: Decimal) -> int:
        """Mask of elements whose power and current restrictions hold for a sample."""
        return (
            self.power_masks[bisect_right(self.power_th, power_w)]
            & self.current_masks[bisect_right(self.current_th, current_a)]
            & self.usable
        )

    def active(self, mask: int) -> Active:
        """First element per dimension (ENERGY, TIME, PARKING_TIME, FLAT) in `mask`, or -1."""
        found = self._memo.get(mask)
        if found is None:
            found = tuple(  # type: ignore[assignment]
                next((i for i in candidates if mask >> i & 1), -1)
                for candidates in self._by_dimension
            )
            self._memo[mask] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]
