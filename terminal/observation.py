"""What the last poll saw, and a signal for whoever waits on the next poll.

- `Observation`: the meter's poll outcome and the charger's status (or its error) of the
  last poll, with when it was taken and the interval since the one before. The poll
  task writes it; the status snapshot and the service menu read it.
- `PollSignal`: what runs after every poll, in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.charger import ChargerStatus
from drivers.meter.monitor import PollOutcome
from drivers.meter.reading import MeterReading


@dataclass
class Observation:
    """The last poll: what the meter and the charger said."""

    outcome: PollOutcome | None = None
    charger: ChargerStatus | None = None
    charger_error: str | None = None
    at_monotonic_s: float | None = None
    interval_s: float = 0.0

    @property
    def billable_reading(self) -> MeterReading | None:
        """The last poll's reading when it may be billed, else None."""
        outcome = self.outcome
        return outcome.reading if outcome is not None and outcome.billable else None


class PollSignal:
    """After every poll the daemon awaits `fire()`, which awaits each subscriber in the
    order they subscribed (the service menu's fault notes, PIN windows, idle logout and
    meter self-check)."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[], Awaitable[None]]] = []

    def subscribe(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._subscribers.append(callback)

    async def fire(self) -> None:
        for callback in self._subscribers:
            await callback()
