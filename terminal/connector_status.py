"""The connector's status (OCPP ConnectorStatus) journaled each time it changes, for the
operator's availability figure (docs/reports.md, "What the journal keeps for reports").

Provides:
- `connector_status(state, observation, refusal)`: the status and its cause, from what
  the terminal already knows after a poll, in this order:
  Faulted (the meter's fault: "meter_fault"; the charger's own fault or a charger that
  does not answer: "charger_fault"), Occupied (a session open: "session"; a car plugged
  in without one: "plugged"), Unavailable (new sessions refused: "out_of_service",
  "meter_key_changed", "storage", or "refused"), else Available ("ready");
- `StatusLog(store, clock, port, observation)`, run by the daemon:
  `start()` at the daemon's start (after recovery): when the last row is not a clean
  stop, an Unavailable "power_loss" row at the last heartbeat (the outage is counted),
  then a first heartbeat; `after_poll()` (a poll subscriber): the status after each
  poll, journaled when it changed (a new status, or a new cause of a Faulted or
  Unavailable one; the first row of a run has cause "started" unless it is Faulted or
  Unavailable); `run()`: the heartbeat, every `HEARTBEAT_S` of the
  clock's time; `stop()` at a clean stop: Unavailable "stopped".

On failure: a journal write that fails is logged (rate-limited: a failed journal fails
every poll); the row is tried again at the next poll (the status is remembered only
once written). Nothing here stops a poll.
"""

from __future__ import annotations

import asyncio
import contextlib

from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import FaultLogger, fields, get_logger
from terminal.observation import Observation
from terminal.ports import SessionPort
from terminal.session import SessionState
from terminal.store import AsyncStore
from terminal.store.report_tables import STOPPED

log = get_logger("status")

HEARTBEAT_S = 60.0
"""How often (clock time) the daemon notes that it is alive: the resolution with which
an outage after a power loss is dated."""

STARTED = "started"


def connector_status(state: SessionState, seen: Observation,
                     refusal: str | None) -> tuple[str, str]:
    """(status, cause) of the connector now (see the module's docstring)."""
    outcome = seen.outcome
    if outcome is not None and outcome.fault is not None:
        return "Faulted", "meter_fault"
    charger = seen.charger
    if seen.charger_error is not None or (charger is not None and charger.fault):
        return "Faulted", "charger_fault"
    if state.is_open:
        return "Occupied", "session"
    if charger is not None and charger.plugged:
        return "Occupied", "plugged"
    if refusal is not None:
        return "Unavailable", _refusal_cause(refusal)
    return "Available", "ready"


def _refusal_cause(refusal: str) -> str:
    text = refusal.lower()
    if text.startswith("out of service"):
        return "out_of_service"
    if "key" in text and "meter" in text:
        return "meter_key_changed"
    if "storage" in text or "disk" in text or "space" in text:
        return "storage"
    return "refused"


class StatusLog:
    """The connector's status rows and the heartbeat (use from the event loop)."""

    def __init__(self, store: AsyncStore, clock: Clock, port: SessionPort,
                 observation: Observation, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.store = store
        self.clock = clock
        self.port = port
        self.seen = observation
        self.heartbeat_s = heartbeat_s
        self.last: tuple[str, str] | None = None  # the last change written in this run
        self._faults = FaultLogger(log, "connector status journal", 60.0, clock)

    async def start(self) -> bool:
        """At the daemon's start: the outage of an unclean stop journaled (True when
        there was one), then the first heartbeat."""
        now = self.clock.now()
        journal = self.store.store
        lost = await self.store.call(journal.note_power_loss, now)
        if lost:
            log.warning("the daemon did not stop cleanly last time; outage journaled "
                        "from its last heartbeat")
        await self.store.call(journal.beat, now)
        return lost

    async def after_poll(self) -> None:
        status, cause = connector_status(self.port.state, self.seen,
                                         self.port.refusal_reason())
        # a change is a new status, or a new cause of a Faulted or Unavailable one
        key = (status, cause if status in ("Faulted", "Unavailable") else "")
        if key == self.last:
            return
        if self.last is None and status in ("Available", "Occupied"):
            cause = STARTED
        if await self._write(status, cause):
            self.last = key

    async def _write(self, status: str, cause: str) -> bool:
        try:
            await self.store.call(self.store.store.add_status, self.clock.now(), status, cause)
        except Exception as exc:  # tried again at the next poll; logged rate-limited
            self._faults.failed(f"{status}: {type(exc).__name__}: {exc}")
            return False
        self._faults.recovered()
        log.info("connector status", extra=fields(status=status, cause=cause))
        return True

    async def run(self) -> None:
        """The heartbeat, until cancelled."""
        while True:
            await asyncio.sleep(self.heartbeat_s / self.clock.speed)
            try:
                await self.store.call(self.store.store.beat, self.clock.now())
            except Exception as exc:
                log.error("heartbeat not journaled",
                          extra=fields(error=f"{type(exc).__name__}: {exc}"))

    async def stop(self) -> None:
        """A clean stop: Unavailable "stopped" (availability counts the time it is off)."""
        with contextlib.suppress(Exception):
            await self.store.call(self.store.store.beat, self.clock.now())
        await self._write("Unavailable", STOPPED)
