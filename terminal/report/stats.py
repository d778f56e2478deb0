"""The report's arithmetic: distributions, percents, money sums and hour-of-week slots.

Provides:
- `Distribution`: values kept in a compact `array('d')` (8 bytes each: 5 years of
  sessions are a few MB), summarised as count, mean, p50, p90, p95 and max with the
  nearest-rank percentile (the smallest value with at least p % of the values at or
  below it: `sorted[ceil(p / 100 * n) - 1]`; always a value that occurred);
- `percent(part, whole)`: a share in percent as text with one decimal, rounded half-up
  ("58.3"; "0.0" for an empty whole);
- `money_text(amount)` / `kwh_text(energy_wh)`: the JSON's strings (Wh: kernel `plain`);
- `HourOfWeek`: occupied seconds, sessions started and the seconds of each of the week's
  168 local hours (Monday 00:00 = slot 0) in the station's time zone, DST included:
  time is cut at every local full hour, each piece counted in the local hour it falls
  in (a DST week has one hour more or less; the slots' seconds say so).
"""

from __future__ import annotations

import math
from array import array
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from terminal.kernel.money import format_number, plain, round_half_up

HOURS_OF_WEEK = 168
PERCENTILES = (50, 90, 95)


class Distribution:
    """Values of one quantity (durations, energy, decision times) and their summary."""

    def __init__(self, percentiles: tuple[int, ...] = PERCENTILES) -> None:
        self.values = array("d")
        self.percentiles = percentiles

    def add(self, value: float) -> None:
        self.values.append(value)

    def summary(self, digits: int = 1) -> dict[str, Any]:
        """count, mean, p<N>..., max, rounded to `digits`; None figures when empty."""
        count = len(self.values)
        out: dict[str, Any] = {"count": count}
        if not count:
            out.update({"mean": None, **{f"p{p}": None for p in self.percentiles},
                        "max": None})
            return out
        ordered = sorted(self.values)
        out["mean"] = round(math.fsum(ordered) / count, digits)
        for p in self.percentiles:
            out[f"p{p}"] = round(nearest_rank(ordered, p), digits)
        out["max"] = round(ordered[-1], digits)
        return out


def nearest_rank(ordered: list[float], p: float) -> float:
    """The nearest-rank p-th percentile of sorted values (not empty)."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def percent(part: float | Decimal | int, whole: float | Decimal | int) -> str:
    """part / whole in percent, one decimal, half-up; "0.0" when whole is 0."""
    if not whole:
        return "0.0"
    return str(round_half_up(Decimal(str(part)) * 100 / Decimal(str(whole)), 1))


def money_text(amount: Decimal) -> str:
    """An amount with at least two decimals ("12.30", "0.00")."""
    return format_number(amount, min_places=2)


def kwh_text(energy_wh: Decimal) -> str:
    """Energy in kWh, exact: the Wh with the point moved three places ("123.456")."""
    return plain(energy_wh.scaleb(-3))


class HourOfWeek:
    """Sessions started, occupied seconds and slot seconds per local hour of the week."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.started = [0] * HOURS_OF_WEEK
        self.occupied_s = array("d", bytes(8 * HOURS_OF_WEEK))
        self.slot_s = array("d", bytes(8 * HOURS_OF_WEEK))

    def session(self, opened: datetime, since: datetime, until: datetime) -> None:
        """A session opened at `opened` (counted as started when at or after `since`),
        occupying [max(opened, since), until)."""
        if opened >= since:
            local = opened.astimezone(self.zone)
            self.started[local.weekday() * 24 + local.hour] += 1
            into_hour_s = local.minute * 60 + local.second + local.microsecond / 1e6
            length_s = (until - opened).total_seconds()
            if 0 < length_s <= 3600 - into_hour_s:  # the usual case: within one hour
                self.occupied_s[local.weekday() * 24 + local.hour] += length_s
                return
            _spread(self.occupied_s, self.zone, opened, until)
        else:
            _spread(self.occupied_s, self.zone, since, until)

    def period(self, since: datetime, until: datetime) -> None:
        _spread(self.slot_s, self.zone, since, until)

    def rows(self) -> list[dict[str, Any]]:
        return [{"weekday": i // 24, "hour": i % 24,
                 "sessions_started": self.started[i],
                 "occupied_s": round(self.occupied_s[i], 1),
                 "slot_s": round(self.slot_s[i], 1),
                 "occupancy_percent": percent(round(self.occupied_s[i], 1),
                                              round(self.slot_s[i], 1))}
                for i in range(HOURS_OF_WEEK)]


def _spread(into: array, zone: tzinfo, since: datetime, until: datetime) -> None:
    """Adds the seconds of [since, until) to the local hour-of-week slots they fall in.

    Each piece runs to the next local full hour; zones change their offset only at a
    local full hour, so a piece never spans two offsets."""
    at = since
    while at < until:
        local = at.astimezone(zone)
        into_hour_s = local.minute * 60 + local.second + local.microsecond / 1e6
        end = min(at + timedelta(seconds=3600 - into_hour_s), until)
        into[local.weekday() * 24 + local.hour] += (end - at).total_seconds()
        at = end
