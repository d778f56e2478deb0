"""The one clock of the terminal: wall time in UTC and a monotonic counter.

Code that needs time takes a `Clock` so tests can drive it; production uses
`SYSTEM_CLOCK`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware datetime in UTC."""

    def monotonic_s(self) -> float:
        """Seconds on a clock that never goes backwards."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic_s(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()


def iso_utc(moment: datetime) -> str:
    """ISO-8601 with milliseconds and a Z suffix, the form used in logs and JSON."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
