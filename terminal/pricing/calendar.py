"""Station-local time for restrictions: instants where wall-clock conditions can change.

Instants are integer microseconds since the Unix epoch (UTC). A time-of-day, date
or weekday restriction is a condition on the station's local wall clock, evaluated
at an instant. It can only change where the wall clock passes one of its boundary
times (every occurrence of it: both folds of an ambiguous time) or where the clock
jumps (a daylight-saving transition). `CutSchedule` lists exactly those instants, plus
the session-duration thresholds, lazily day by day, so a session of any length works.

DST decisions (see docs/pricing.md): a boundary inside the spring-forward gap takes
effect at the jump (the first instant the clock shows a later time); a boundary that
occurs twice on a fall-back night is passed twice, so wall-clock windows follow the
clock the driver sees.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_S = 1_000_000
_ONE_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_HOUR_S = 3600
_LOOKAHEAD_US = 26 * 3600 * US_PER_S  # more than any UTC offset plus a DST shift
INFINITY_US = 1 << 80


def to_us(moment: datetime) -> int:
    """Aware datetime -> microseconds since the epoch."""
    return (moment - EPOCH) // _ONE_US


def from_us(instant_us: int) -> datetime:
    """Microseconds since the epoch -> aware UTC datetime."""
    return EPOCH + timedelta(microseconds=instant_us)


def local_time(zone: ZoneInfo, instant_us: int) -> datetime:
    """Station-local wall-clock time of an instant."""
    return from_us(instant_us).astimezone(zone)


def _wall_instant(zone: ZoneInfo, day: date, minute: int, fold: int) -> int:
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone, fold=fold)
    return to_us(wall)


def _offset(zone: ZoneInfo, instant_s: int) -> timedelta | None:
    return datetime.fromtimestamp(instant_s, zone).utcoffset()


def transitions(zone: ZoneInfo, from_s: int, to_s: int) -> list[int]:
    """UTC-offset changes of `zone` in (from_s, to_s], in seconds (hourly probe + bisection)."""
    found = []
    low, low_offset = from_s, _offset(zone, from_s)
    while low < to_s:
        high = min(low + _HOUR_S, to_s)
        high_offset = _offset(zone, high)
        if high_offset != low_offset:
            a, b = low, high
            while b - a > 1:
                middle = (a + b) // 2
                if _offset(zone, middle) == low_offset:
                    a = middle
                else:
                    b = middle
            found.append(b)
        low, low_offset = high, high_offset
    return found


_LAST_DAY = date(9998, 12, 31)  # beyond it, a date boundary is out of any session's reach


def _date_cuts(zone: ZoneInfo, start_us: int, dates: Iterable[date]) -> list[int]:
    """The instants where the local date passes one of `dates` (local midnight, both
    folds) and the UTC-offset changes around them (a jump over midnight)."""
    first_day = local_time(zone, start_us).date() - _DAY
    found = []
    for day in dates:
        if not first_day <= day <= _LAST_DAY:
            continue
        for fold in (0, 1):
            found.append(_wall_instant(zone, day, 0, fold))
        midnight_s = _wall_instant(zone, day, 0, 0) // US_PER_S
        for change_s in transitions(zone, midnight_s - 26 * _HOUR_S, midnight_s + 26 * _HOUR_S):
            found.append(change_s * US_PER_S)
    return found


class CutSchedule:
    """Ascending instants (µs) after the session start where time restrictions can change.

    `cut(i)` is the i-th instant; the list grows one local day at a time as asked for
    when a restriction depends on the time of day or the weekday (`wall_minutes`).
    Without one (`wall_minutes` None) the list is known at once: the duration cuts and
    the midnights of the restrictions' `dates`, then INFINITY_US; so a gap between
    samples costs nothing per day.
    """

    def __init__(
        self,
        zone: ZoneInfo,
        start_us: int,
        wall_minutes: Iterable[int] | None,
        duration_cuts_us: Iterable[int],
        dates: Iterable[date] = (),
    ) -> None:
        self._zone = zone
        self._start_us = start_us
        self._minutes = None if wall_minutes is None else sorted(set(wall_minutes) | {0})
        cuts = set(duration_cuts_us)
        if self._minutes is None:  # only these dates' midnights (day by day covers them)
            cuts.update(_date_cuts(zone, start_us, dates))
        self._heap = [c for c in cuts if c > start_us]
        heapq.heapify(self._heap)
        self._cuts: list[int] = []
        self._day = local_time(zone, start_us).date() - _DAY
        self._probed_s: int | None = None  # UTC-offset changes are known up to here

    def cut(self, index: int) -> int:
        """The index-th cut instant (INFINITY_US past the last one)."""
        cuts = self._cuts
        while index >= len(cuts):
            self._extend()
        return cuts[index]

    def _extend(self) -> None:
        if self._minutes is None:
            self._cuts.extend(sorted(self._heap))
            self._cuts.append(INFINITY_US)
            self._heap = []
            return
        day, zone, heap = self._day, self._zone, self._heap
        for minute in self._minutes:
            for fold in (0, 1):
                heapq.heappush(heap, _wall_instant(zone, day, minute, fold))
        first_s = _wall_instant(zone, day, 0, 0) // US_PER_S - 2 * _HOUR_S
        last_s = _wall_instant(zone, day + _DAY, 0, 0) // US_PER_S + 2 * _HOUR_S
        if self._probed_s is not None:  # each hour is probed once, not once per day
            first_s = max(first_s, self._probed_s)
        if first_s < last_s:
            for change_s in transitions(zone, first_s, last_s):
                heapq.heappush(heap, change_s * US_PER_S)
            self._probed_s = last_s
        self._day = day = day + _DAY
        bound = to_us(datetime(day.year, day.month, day.day, tzinfo=UTC)) - _LOOKAHEAD_US
        last = self._cuts[-1] if self._cuts else self._start_us
        while heap and heap[0] < bound:
            instant = heapq.heappop(heap)
            if instant > last:
                self._cuts.append(instant)
                last = instant
