"""What the service menu shows of the terminal: diagnostics, recent faults and the meter
self-check (docs/service.md, "Diagnostics").

Provides `Diagnostics(deps, readers)`:
- `report()`: the meter, readers, charger, backend, storage, software, the configuration
  with secrets masked (terminal.service.redaction), recent sessions and recent faults
  (newest first: the faults noted here merged with the journal's session faults).
- `after_poll()`: after each of the daemon's polls, notes each change of the meter's or
  the charger's fault and wakes a running self-check.
- `meter_selfcheck()`: two of the daemon's own polls at least a poll interval apart (the
  meter is never read by two tasks at once): both read, the serial is the expected one,
  the counter never goes back and moves with the power (stands still without), no meter
  fault.
- `backend(figures, now)`: the backend link's section (also the resend action's reply).

On failure: nothing is refused here. A section whose source is missing shows None (no
reading yet, readers not attached, free space unreadable); a self-check that gets no
poll or no reading in time reports a failed `read` check instead of raising. Errors of
the journal (sqlite3) reach the caller unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import time
from collections import deque
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from terminal import __version__
from terminal.kernel.clock import iso_utc
from terminal.service.port import ReaderStatus, ServiceDeps
from terminal.service.redaction import redact_config
from terminal.store.space import storage_low

RECENT_SESSIONS = 10
RECENT_FAULTS = 20


class Diagnostics:
    """The diagnostics' own state: recent faults, charger poll counts, readers."""

    def __init__(self, deps: ServiceDeps, readers: ReaderStatus) -> None:
        self.deps = deps
        self.clock = deps.clock
        self.readers = readers
        self.faults: deque[dict[str, Any]] = deque(maxlen=RECENT_FAULTS)
        self._fault_seen: dict[str, str | None] = {"meter": None, "charger": None}
        self.charger_polls = 0
        self.charger_errors = 0
        self._polled = asyncio.Event()
        self.started_at = deps.clock.now()
        self.started_s = time.monotonic()


    def after_poll(self) -> None:
        """After every poll: fault changes noted, the meter self-check woken."""
        self.note_faults()
        polled, self._polled = self._polled, asyncio.Event()
        polled.set()

    async def report(self) -> dict[str, Any]:
        """Every section of the service menu's diagnostics (docs/service.md)."""
        deps = self.deps
        now = self.clock.now()
        store = deps.store
        tables = self.deps.tables
        figures = await store.call(tables.backend_figures)
        sessions = await store.call(tables.sessions, RECENT_SESSIONS)
        faults = list(self.faults) + await store.call(tables.session_faults, RECENT_FAULTS)
        faults.sort(key=lambda f: str(f["at"]), reverse=True)
        schema = await store.call(lambda: store.store.schema_version)
        return {
            "generated_at": iso_utc(now),
            "station": {"id": deps.config.station.id, "timezone": deps.config.station.timezone,
                        "phase": deps.session.state.phase.value,
                        "session_id": deps.session.state.session_id,
                        "accepting_sessions": (deps.session.refusal_reason() is None),
                        "refusal": deps.session.refusal_reason(),
                        "out_of_service": self.deps.out_of_service.value},
            "meter": self._meter(),
            "readers": self._readers(),
            "charger": self._charger(),
            "backend": self.backend(figures, now),
            "storage": self._storage(schema),
            "software": {"version": __version__, "python": platform.python_version(),
                         "platform": platform.platform(), "pid": os.getpid(),
                         "started_at": iso_utc(self.started_at),
                         "uptime_s": round(time.monotonic() - self.started_s)},
            "config": redact_config(deps.config),
            "recent_sessions": sessions,
            "recent_faults": faults[:RECENT_FAULTS],
        }

    def _meter(self) -> dict[str, Any]:
        deps = self.deps
        cfg = deps.config.meter
        monitor = deps.monitor
        outcome = deps.observation.outcome
        reading = outcome.reading if outcome and outcome.reading else monitor.last_good
        fault = monitor.fault
        return {
            "model": cfg.model, "url": cfg.url, "unit_id": cfg.unit_id,
            "serial": reading.serial if reading else None,
            "expected_serial": cfg.expected_serial or None,
            "last_reading": None if reading is None else {
                "energy_wh": str(reading.energy_import_wh),
                "power_w": _text(reading.power_w), "voltage_v": _text(reading.voltage_v),
                "current_a": _text(reading.current_a), "at": iso_utc(reading.timestamp)},
            "last_error": outcome.error if outcome else None,
            "fault": str(fault) if fault else None,
            "fault_since": iso_utc(fault.since) if fault else None,
            "poll_interval_s": cfg.poll_interval_s,
            "counters": monitor.stats(),
        }

    def _readers(self) -> dict[str, Any]:
        cfg = self.deps.config.readers
        states = self.readers.states()
        taps = self.readers.last_taps()
        names = sorted(set(states) | set(taps))
        return {
            "pcsc": cfg.pcsc, "serial_rfid_device": cfg.serial_rfid_device or None,
            "readers": {name: {"state": states.get(name), "last_tap": taps.get(name)}
                        for name in names},
            "dropped_taps": self.readers.dropped_taps,
        }

    def _charger(self) -> dict[str, Any]:
        deps = self.deps
        cfg = deps.config.charger
        status = deps.observation.charger
        return {
            "kind": cfg.kind, "url": cfg.url, "unit_id": cfg.unit_id,
            "ev_state": status.ev_state.name if status else None,
            "plugged": status.plugged if status else None,
            "output_wanted": deps.session.state.output_on,
            "output_commanded": status.output_commanded if status else None,
            "output_confirmed": status.output_on if status else None,
            "fault": status.fault if status else deps.observation.charger_error,
            "counters": {"polls": self.charger_polls, "failed_polls": self.charger_errors},
        }

    def backend(self, figures: dict[str, Any], now: datetime) -> dict[str, Any]:
        oldest = figures["oldest_pending_at"]
        age_s = None
        if oldest:
            age_s = max(0, round((now - datetime.fromisoformat(oldest)).total_seconds()))
        return {
            "kind": self.deps.config.backend.kind,
            "connected": self.deps.link.online,
            "last_ack_at": figures["last_delivered_at"],
            "outbox_depth": figures["pending"],
            "oldest_undelivered_at": oldest,
            "oldest_undelivered_age_s": age_s,
            "counters": dict(self.deps.link.stats),
        }

    def _storage(self, schema: int) -> dict[str, Any]:
        state_dir = Path(self.deps.config.station.state_dir)
        database = self.deps.store.store.path
        size = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                size += database.with_name(database.name + suffix).stat().st_size
        try:
            free: int | None = shutil.disk_usage(state_dir).free
        except OSError:
            free = None
        return {"state_dir": str(state_dir), "database": str(database),
                "database_bytes": size, "free_bytes": free, "schema_version": schema,
                "storage_ok": storage_low(database.parent,
                                          self.deps.config.backend.min_free_storage_mb) is None,
                "min_free_storage_mb": self.deps.config.backend.min_free_storage_mb}

    def note_faults(self) -> None:
        """Remember each change of the meter's or the charger's fault (recent faults)."""
        deps = self.deps
        self.charger_polls += 1
        if deps.observation.charger_error:
            self.charger_errors += 1
        meter_fault = deps.monitor.fault
        charger = deps.observation.charger
        now = iso_utc(self.clock.now())
        current = {"meter": str(meter_fault) if meter_fault else None,
                   "charger": charger.fault if charger else deps.observation.charger_error}
        for source, fault in current.items():
            if fault == self._fault_seen[source]:
                continue
            before = self._fault_seen[source]
            self._fault_seen[source] = fault
            event = "raised" if fault else "cleared"
            self.faults.appendleft({"at": now, "source": source, "event": event,
                                    "fault": fault or before})

    # ---- the meter self-check ----------------------------------------------------------------

    async def _next_poll(self, timeout_s: float) -> Any:
        """The daemon's next poll outcome (None when no poll came within `timeout_s`)."""
        try:
            await asyncio.wait_for(self._polled.wait(), timeout_s)
        except TimeoutError:
            return None
        return self.deps.observation.outcome

    async def meter_selfcheck(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Two of the daemon's polls at least a poll interval apart: both read, the serial
        is the expected one, the counter never goes back and moves with the power (stands
        still without). (checks [{name, ok, detail}], the two readings)."""
        cfg = self.deps.config.meter
        speed = self.clock.speed
        timeout_s = max(5.0, (3 * cfg.poll_interval_s + cfg.timeout_s) / speed)
        first = await self._next_poll(timeout_s)
        first_s = self.clock.monotonic_s()
        second = first
        while first is not None:
            second = await self._next_poll(timeout_s)
            if second is None or self.clock.monotonic_s() - first_s >= cfg.poll_interval_s:
                break
        outcomes = [first, second]
        readings = [o.reading for o in outcomes if o is not None and o.reading is not None]
        shown = [{"energy_wh": str(r.energy_import_wh), "power_w": _text(r.power_w),
                  "serial": r.serial, "at": iso_utc(r.timestamp)} for r in readings]
        if first is None or second is None:
            return [_check("read", False, f"no meter poll within {timeout_s:g} s (is the "
                           "daemon's loop running?)")], shown
        if len(readings) < 2:
            error = next((o.error for o in outcomes if o.reading is None), "no reading")
            return [_check("read", False, f"the meter did not answer: {error}")], shown
        one, two = readings
        gap_s = (two.timestamp - one.timestamp).total_seconds()
        checks = [_check("read", True, f"two readings {gap_s:g} s apart")]
        expected = cfg.expected_serial
        serials = {one.serial, two.serial}
        if expected:
            ok = serials == {expected}
            checks.append(_check("serial", ok, f"meter reports {two.serial}, expected "
                                 f"{expected}"))
        else:
            checks.append(_check("serial", len(serials) == 1,
                                 f"meter reports {two.serial}; no expected_serial configured"))
        delta_wh = two.energy_import_wh - one.energy_import_wh
        checks.append(_check("counter_not_backwards", delta_wh >= 0,
                             f"{one.energy_import_wh} Wh then {two.energy_import_wh} Wh"))
        checks.append(self._counter_follows_power(one, two, delta_wh, gap_s))
        fault = self.deps.monitor.fault
        checks.append(_check("no_fault", fault is None,
                             str(fault) if fault else "no meter fault"))
        return checks, shown

    def _counter_follows_power(self, one: Any, two: Any, delta_wh: Decimal,
                               gap_s: float) -> dict[str, Any]:
        from drivers.meter.monitor import resolution_wh

        powers = [max(r.power_w or Decimal(0), Decimal(0)) for r in (one, two)]
        if not any(powers):
            return _check("counter_follows_power", delta_wh == 0,
                          f"no power; the counter moved {delta_wh} Wh")
        expected_wh = sum(powers) / 2 * Decimal(str(gap_s)) / 3600
        step_wh = resolution_wh(two.energy_import_wh)
        if expected_wh < 2 * step_wh:
            return _check("counter_follows_power", True,
                          f"{powers[1]} W for {gap_s:g} s is about {expected_wh:.0f} Wh, "
                          f"too little to see the counter (steps up to {step_wh} Wh) move")
        return _check("counter_follows_power", delta_wh > 0,
                      f"{powers[1]} W for {gap_s:g} s: about {expected_wh:.0f} Wh expected, "
                      f"counter moved {delta_wh} Wh")


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
