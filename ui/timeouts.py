"""Time limits the driver can see coming and extend: a pure timer model.

EN 301 549 clause 5 and WCAG 2.2.1 "Timing adjustable": a screen that goes away by itself
warns at least 20 s before it does, and a simple action (a touch anywhere on the
screen) gives the full time again, at least ten times. No Kivy and no clock here: every
function takes the time it is asked about, so all of it is unit-tested.

Provides:
- `WARNING_S` (20 s: the warning's lead) and `MIN_EXTENSIONS` (10);
- `TimeoutSpec(name, timeout_s, warning_s, max_extensions)`: one time limit; a limit
  shorter than its warning warns from its start;
- `Countdown`: where a limit stands at a moment (`left_s`, `warning`, `expired`, the
  whole `seconds` shown);
- `countdown(left_s, warning_s)` and `left_until(deadline_iso, state_now_iso,
  since_state_s)` (a deadline the daemon set, seen from the UI: its clock's `now` in the
  snapshot plus the UI's own time since that snapshot arrived);
- `Timer(spec, started_s)`: a limit the UI owns, `at(now_s)` and `extend(now_s)` (a
  touch: the full time from now, counted against `max_extensions`; None = no limit on
  extensions).

The limits per screen and who owns them: `ui/timeout_view.py`, docs/ui.md "Time limits".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

WARNING_S = 20.0  # the warning shows at least this long before a limit fires
MIN_EXTENSIONS = 10  # WCAG 2.2.1: the driver may extend at least ten times


class TimeoutSpecError(ValueError):
    """A time limit that cannot be warned about or extended as the rules ask."""


@dataclass(frozen=True)
class TimeoutSpec:
    """One time limit: its length, the warning's lead and how often it may be extended."""

    name: str
    timeout_s: float
    warning_s: float = WARNING_S
    max_extensions: int | None = None  # None: as often as the driver wants

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise TimeoutSpecError(f"{self.name}: timeout_s must be > 0, got {self.timeout_s}")
        if self.warning_s < WARNING_S:
            raise TimeoutSpecError(f"{self.name}: warning_s must be at least {WARNING_S:g} s "
                                   f"(WCAG 2.2.1), got {self.warning_s}")
        if self.max_extensions is not None and self.max_extensions < MIN_EXTENSIONS:
            raise TimeoutSpecError(f"{self.name}: max_extensions must be at least "
                                   f"{MIN_EXTENSIONS} (WCAG 2.2.1), got {self.max_extensions}")

    def warning_from_s(self) -> float:
        """Seconds after the start (or the last extension) at which the warning shows."""
        return max(0.0, self.timeout_s - self.warning_s)


@dataclass(frozen=True)
class Countdown:
    left_s: float    # seconds until the limit fires (0 when it has)
    warning: bool    # the warning is due: the limit fires within its lead
    expired: bool

    @property
    def seconds(self) -> int:
        """The whole seconds the warning says (rounded up: never "0 s" before it fires)."""
        return max(0, math.ceil(self.left_s))


def countdown(left_s: float, warning_s: float = WARNING_S) -> Countdown:
    """Where a limit stands with `left_s` seconds to go."""
    if left_s <= 0:
        return Countdown(left_s=0.0, warning=False, expired=True)
    return Countdown(left_s=left_s, warning=left_s <= warning_s, expired=False)


def left_until(deadline_iso: object, state_now_iso: object, since_state_s: float = 0.0
               ) -> float | None:
    """Seconds until a deadline the daemon set (ISO 8601 with offset), from the daemon's
    `now` in the snapshot plus `since_state_s` (the UI's time since that snapshot came);
    None when either is missing or not a time."""
    deadline, now = _time_of(deadline_iso), _time_of(state_now_iso)
    if deadline is None or now is None:
        return None
    return (deadline - now).total_seconds() - max(0.0, since_state_s)


def _time_of(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass
class Timer:
    """A limit the UI owns: started at `started_s`, extended by touches."""

    spec: TimeoutSpec
    started_s: float
    extensions: int = 0

    def deadline_s(self) -> float:
        return self.started_s + self.spec.timeout_s

    def at(self, now_s: float) -> Countdown:
        return countdown(self.deadline_s() - now_s, self.spec.warning_s)

    def extensions_left(self) -> int | None:
        if self.spec.max_extensions is None:
            return None
        return max(0, self.spec.max_extensions - self.extensions)

    def extend(self, now_s: float) -> bool:
        """A touch: the full time again from now_s. False (nothing changes) once the limit
        has fired or every extension is used."""
        if self.at(now_s).expired or self.extensions_left() == 0:
            return False
        self.started_s = now_s
        self.extensions += 1
        return True
