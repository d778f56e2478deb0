"""A priced session's charging periods as OCPI 2.2.1 CdrChargingPeriods.

Provides `charging_periods(result, tariff_id, energy_wh)`, `hours(duration_us)`,
`microseconds(start, end)`; OCPI DateTimes are the kernel's `iso_utc` (UTC, to the
millisecond, truncated, Z).
Periods are cut exactly where the pricing engine cut them (terminal.pricing.result
`Period`: the active tariff elements or the charging state changed); each gets the
dimensions the tariff prices by (OCPI 2.2.1 mod_cdrs.asciidoc, "CdrDimensionType"):
ENERGY in kWh (the period's Wh / 1000), TIME in hours while charging, PARKING_TIME in
hours while not. OCPI 2.2.1 has no FLAT dimension: a back office finds the flat fees
from the tariff element active at each period's start (docs/pricing.md, rule 4: once
per distinct element), so a period of no time where a FLAT element first applies is
kept (with a TIME or PARKING_TIME of 0). Hours are the period's microseconds / 3.6e9,
half-up to 12 decimals (so its microseconds are exactly recoverable); the periods'
energies add up to `energy_wh` exactly (the engine's per-period rounding of a kWh
threshold crossing is made up in the last period that delivered energy).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.kernel.money import round_half_up
from terminal.pricing.result import PricingResult

HOUR_PLACES = 12
US_PER_HOUR = 3_600_000_000


def hours(duration_us: int) -> Decimal:
    """Microseconds as hours, half-up to 12 decimals."""
    return round_half_up(Fraction(duration_us, US_PER_HOUR), HOUR_PLACES).normalize()


def microseconds(start: datetime, end: datetime) -> int:
    """Whole microseconds from `start` to `end`."""
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def charging_periods(result: PricingResult, tariff_id: str,
                     energy_wh: Decimal) -> list[dict[str, Any]]:
    """The CdrChargingPeriods of `result`; `energy_wh` the session's exact energy."""
    energies = [p.energy_wh for p in result.periods]
    residual = energy_wh - sum(energies, Decimal(0))
    if residual and energies:
        last = max((i for i, e in enumerate(energies) if e), default=len(energies) - 1)
        energies[last] += residual
    found = []
    flats_seen: set[int] = set()
    for period, period_wh in zip(result.periods, energies, strict=True):
        dimensions: list[dict[str, Any]] = []
        if period_wh:
            dimensions.append({"type": "ENERGY", "volume": (period_wh / 1000).normalize()})
        duration_us = microseconds(period.start, period.end)
        flat = period.active.flat
        new_flat = flat is not None and flat not in flats_seen
        if flat is not None:
            flats_seen.add(flat)
        if duration_us or (not dimensions and (new_flat or not found)):
            # a period of no time is kept where a flat fee's element first applies (and
            # as the only period of a session of no time): OCPI wants a dimension
            kind = "TIME" if period.charging else "PARKING_TIME"
            dimensions.append({"type": kind, "volume": hours(duration_us)})
        if not dimensions:
            continue  # nothing happened here that a price depends on
        found.append({"start_date_time": iso_utc(period.start), "dimensions": dimensions,
                      "tariff_id": tariff_id})
    if not found:  # a session of no time at all: OCPI wants one period
        found.append({"start_date_time": iso_utc(result.start),
                      "dimensions": [{"type": "TIME", "volume": Decimal(0)}],
                      "tariff_id": tariff_id})
    return found
