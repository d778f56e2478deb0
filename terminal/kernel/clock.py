"""The one clock of the terminal: wall time in UTC, a monotonic counter and sleeping.

Code that needs time takes a `Clock` so tests can drive it; production uses
`SYSTEM_CLOCK`. `ScaledClock` runs time faster (for demos and tests, never in the
field): simulated wall time is `anchor + (real_now - anchor) * speed`, a pure function
of real wall time, so separate processes given the same anchor and speed (the daemon, a
restarted daemon, the station simulator) agree on the simulated time without talking.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    speed: float  # simulated seconds per real second (1 in the field)

    def now(self) -> datetime:
        """Aware datetime in UTC."""

    def monotonic_s(self) -> float:
        """Seconds on a clock that never goes backwards."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""


class SystemClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic_s(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """Time running `speed` times faster than real time from the epoch `anchor_s`."""

    def __init__(self, speed: float, anchor_s: float) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        self.speed = speed
        self.anchor_s = anchor_s

    def time_s(self) -> float:
        """Simulated seconds since the Unix epoch."""
        return self.anchor_s + (time.time() - self.anchor_s) * self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time_s(), UTC)

    def monotonic_s(self) -> float:
        return time.monotonic() * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


SYSTEM_CLOCK: Clock = SystemClock()


def make_clock(speed: float = 1.0, anchor_s: float | None = None) -> Clock:
    """The system clock at speed 1, else a ScaledClock (anchor default: now)."""
    if speed == 1.0:
        return SYSTEM_CLOCK
    return ScaledClock(speed, time.time() if anchor_s is None else anchor_s)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 with milliseconds and a Z suffix, the form used in logs and JSON."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: object, *, naive_as_utc: bool = False) -> datetime | None:
    """`value` as a datetime when it is ISO-8601 text with a time zone (or without one,
    taken as UTC, with `naive_as_utc`); None when it is not."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC) if naive_as_utc else None
