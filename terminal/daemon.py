"""The daemon's core: poll -> step -> commit -> act, recovery and a clean stop.

Provides `Daemon`, built by the composition root (terminal.station) with everything it
uses. It is the `SessionPort` (terminal.ports) of taps, backend commands and the
service menu:
- `apply(event)`: runs `session.step()` (pure), commits the records and the new state
  in one transaction on the store thread (the final bill with the close), then acts:
  switches the charger, feeds the running pricer, tells the screen and the clients;
- `poll_once()` / `run_loop()`: every poll interval the charger and then the meter
  are read, the session's cost and energy projected one poll plus the stop latency
  ahead (terminal.session_pricing) and a Tick fed to the state machine; then the poll
  subscribers run (terminal.observation.PollSignal);
- `recover()`: loads the connector state, resumes or closes an open session from the
  meter's counter, completes receipts missing after a crash;
- `refusal_reason()`: why new sessions are refused (the gates: out of service,
  storage; a journal that cannot be written).

On failure: a commit the storage fails (an SQLite or I/O error) holds energy delivery
off (output off, new sessions refused) until a commit or the write probe each poll
runs while the journal is failed (`probe_journal()`) succeeds again; a value the
journal cannot take is a refused step, never a failed journal. New sessions are also
refused while the journal's disk has less than `[backend] min_free_storage_mb` free
(checked here, whatever the backend). A poll that fails is logged (the first with its
traceback, repeats rate-limited by `[logging] fault_interval_s`) and the loop goes on;
a charger command that fails is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from drivers.charger import ChargerControl, ChargerError
from drivers.meter import Meter
from drivers.meter.monitor import MeterMonitor
from terminal.billing import Bill, bill_from_journal
from terminal.config import Config
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import FaultLogger, fields, get_logger
from terminal.observation import Observation, PollSignal
from terminal.ports import RESTART_EXIT_CODE, Clients, Gate, LinkState
from terminal.screen import Screen
from terminal.session import (
    ENERGY_PHASES,
    BeginSigned,
    CloseSession,
    EndSigned,
    Event,
    OpenSession,
    ReadingRecord,
    Recover,
    Rules,
    SessionState,
    SetOutput,
    Step,
    StopRequested,
    Tick,
    Transition,
    state_from_json,
    state_to_json,
    step,
)
from terminal.session_pricing import SessionPricing
from terminal.signed_metering import SignedMetering
from terminal.signed_requests import SignedRequests
from terminal.store import AsyncStore
from terminal.store.space import storage_low

log = get_logger("daemon")
STORAGE_REFUSAL = "the terminal cannot record sessions right now (storage)"


def rules_from(config: Config) -> Rules:
    s = config.session
    return Rules(
        connection_timeout_s=s.connection_timeout_s,
        ev_power_timeout_s=s.ev_power_timeout_s,
        ev_finished_after_s=s.ev_finished_after_s,
        output_off_timeout_s=config.charger.output_off_timeout_s,
        charging_threshold_w=Decimal(s.charging_threshold_w),
        checkpoint_interval_s=s.checkpoint_interval_s,
        meter_value_interval_s=s.meter_value_interval_s,
        max_charger_errors=config.charger.max_failed_polls,
        hold_grace_s=config.payment.hold_grace_s,
    )


class Daemon:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: AsyncStore,
        meter: Meter,
        charger: ChargerControl,
        monitor: MeterMonitor,
        pricing: SessionPricing,
        screen: Screen,
        link: LinkState,
        *,
        observation: Observation,
        polled: PollSignal,
        clients: Clients,
        gates: Sequence[Gate] = (),
        settle_wake: asyncio.Event | None = None,
        signing: SignedMetering | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.meter = meter
        self.charger = charger
        self.monitor = monitor
        self.pricing = pricing
        self.screen = screen
        self.link = link
        self.seen = observation
        self.polled = polled
        self.clients = clients
        self.gates = tuple(gates)
        self.settle_wake = settle_wake
        self.signing = signing
        self.rules = replace(rules_from(config), signed_metering=signing is not None)
        self.signed_requests = SignedRequests(signing, clock, self.apply, self._apply,
                                              lambda: self.seen.outcome, self._signed_failed)
        self._state = SessionState()
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.last_poll_monotonic_s: float | None = None  # time.monotonic(), for the watchdog
        self.journal_failed = False
        # a stop, or the restart's close, the journal could not take yet
        self.deferred: StopRequested | Recover | None = None
        self._receipts_due = False  # receipts to complete once the journal is writable
        self._poll_faults = FaultLogger(log, "poll", config.logging.fault_interval_s, clock)
        self._journal_faults = FaultLogger(log, "journal write",
                                           config.logging.fault_interval_s, clock)
        self.exit_code = 0  # RESTART_EXIT_CODE after the service menu's restart

    # ---- the port ---------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    def refusal_reason(self) -> str | None:
        """Why new sessions are refused now (a gate, or a journal or disk that cannot
        record them); None while they are accepted."""
        for gate in self.gates:
            if (refused := gate.refusal()) is not None:
                return refused
        if self.journal_failed:
            return STORAGE_REFUSAL
        return self.storage_low()

    def storage_low(self) -> str | None:
        """Why the journal's disk cannot take a new session (below
        `[backend] min_free_storage_mb` free), checked here for every backend kind."""
        return storage_low(self.store.store.path.parent,
                           self.config.backend.min_free_storage_mb)

    def accepting_sessions(self) -> bool:
        return self.refusal_reason() is None

    def publish(self, message: dict[str, Any]) -> None:
        self.clients.publish(message)

    def publish_state(self) -> dict[str, Any]:
        return self.clients.publish_state()

    def request_restart(self, delay_s: float = 0.2) -> None:
        """The service menu's restart: stop cleanly in a moment (the reply goes out
        first) and exit with RESTART_EXIT_CODE, for systemd to start the daemon again."""
        self.exit_code = RESTART_EXIT_CODE
        log.warning("restart requested from the service menu")
        asyncio.get_running_loop().call_later(delay_s, self.stop)

    # ---- applying steps ---------------------------------------------------------------

    async def apply(self, event: Event) -> Step:
        async with self._lock:
            result = await self._apply(event)
        if result.records or result.actions:
            self.publish_state()
        return result

    async def _apply(self, event: Event) -> Step:
        result = step(self._state, event, self.rules)
        if result.refused or (not result.records and not result.actions):
            self._state = result.state
            return result
        if isinstance(event, StopRequested | Recover) and self.journal_failed:
            return self._defer(event)
        try:
            return await self._apply_step(result)
        except (sqlite3.Error, OSError):
            if isinstance(event, StopRequested | Recover):
                return self._defer(event)
            raise

    def _defer(self, event: StopRequested | Recover) -> Step:
        """A stop, or the close after a restart, that the journal cannot take now (the
        storage failed; energy is already held off): kept, and journaled before
        anything else once the journal can be written; the session then ends from what
        the journal holds and its receipt follows. The requester of a stop is told it
        is accepted. A restart's session is then closed, never resumed: what decided a
        resume is stale by then."""
        if isinstance(event, Recover):
            event = Recover(event.at, False, event.reading, event.meter_fault)
        if self.deferred is None or isinstance(event, Recover):
            log.warning("session end kept until the journal can be written",
                        extra=fields(session=self._state.session_id,
                                     event=type(event).__name__))
            self.deferred = event
        return Step(self._state)

    async def _apply_deferred(self) -> None:
        """The kept stop or close, once the journal takes it (each poll tries: its
        commit is the write probe of an open session)."""
        event, self.deferred = self.deferred, None
        if event is None:
            return
        result = step(self._state, event, self.rules)
        if result.refused or (not result.records and not result.actions):
            return  # the session ended meanwhile
        try:
            await self._apply_step(result)
        except (sqlite3.Error, OSError):
            self.deferred = event
            raise

    async def _apply_step(self, result: Step) -> Step:
        session_id = result.state.session_id or self._state.session_id
        new_readings = [r.reading for r in result.records if isinstance(r, ReadingRecord)]
        starts = any(r.kind == "start" for r in result.records if isinstance(r, ReadingRecord))
        terms_json = receipt_url = None
        if starts:
            receipt_url = self.screen.receipt_url(session_id) if session_id else None
            terms_json = self.pricing.begin(result.state.authorization, receipt_url).to_json()
        close = next((r for r in result.records if isinstance(r, CloseSession)), None)
        bill = None
        if close is not None and close.stop_reading is not None and session_id:
            # a signing meter's documents, when this run has them (else the receipt is
            # made from the journal's at the next poll)
            signed = self.signing.summary(session_id) if self.signing else None
            if self.signing is None or signed is not None:
                auth = result.state.authorization
                bill = self.pricing.bill(
                    session_id, auth, auth.source if auth else "",
                    close.stop_reason.value if close.stop_reason else close.phase.value,
                    new_readings, signed)
            else:
                self._receipts_due = True
        await self._commit(result, session_id, terms_json, receipt_url, bill)
        self._state = result.state
        for reading in new_readings:
            self.pricing.feed(reading)
        if any(isinstance(r, OpenSession) for r in result.records):
            self.screen.session_opened()
        if close is not None:
            self.pricing.end()
            if self.signing is not None and session_id:
                self.signing.forget(session_id)  # billed: its documents are in the journal
            self.screen.session_closed(session_id, close.at, bill is not None)
        self._log(result, session_id)
        for action in result.actions:
            if isinstance(action, SetOutput):
                await self.set_output(action.on)
            elif isinstance(action, BeginSigned | EndSigned):
                self.signed_requests.request(action)
        if close is not None:
            self.publish({"type": "session_ended", "session_id": session_id,
                          "stop_reason": close.stop_reason, "phase": close.phase})
            if self.settle_wake is not None:
                self.settle_wake.set()
        return result

    async def _commit(self, result: Step, session_id: str | None, terms_json: str | None,
                      receipt_url: str | None, bill: Bill | None) -> None:
        try:
            await self.store.call(
                self.store.store.commit,
                result.records,
                state_to_json(result.state),
                session_id=session_id,
                station_id=self.config.station.id,
                tariff_json=terms_json,
                receipt_url=receipt_url,
                receipt=bill.receipt if bill is not None else None,
                amount_charged=bill.amount_charged if bill is not None else None,
                cdr_json=bill.cdr_json if bill is not None else None,
                at=self.clock.now(),
                offline=not self.link.online,
            )
        except (sqlite3.Error, OSError):
            # what cannot be journaled cannot be billed: no energy until it can
            if not self._journal_faults.active:
                log.critical("journal commit failed; energy delivery held off",
                             exc_info=True, extra=fields(session=session_id))
            self._journal_faults.failed("commit failed")
            self.journal_failed = True
            await self.set_output(False)
            raise
        if self.journal_failed:
            log.warning("journal writable again", extra=fields(session=session_id))
            self.journal_failed = False
        self._journal_faults.recovered()
        self.link.wake()

    def _log(self, result: Step, session_id: str | None) -> None:
        for record in result.records:
            if isinstance(record, Transition):
                log.info(
                    "session phase",
                    extra=fields(session=session_id, phase=record.to_phase.value,
                                 previous=record.from_phase.value, trigger=record.trigger,
                                 detail=record.detail),
                )

    def _signed_failed(self, session_id: str, exc: Exception) -> None:
        """The journal could not take a signed meter value or its step (SignedRequests
        keeps it and tries again): like a failed commit, no new session meanwhile."""
        if not self._journal_faults.active:
            log.critical("journal write failed under a signed meter value; kept and tried "
                         "again", extra=fields(session=session_id, error=str(exc)))
        self._journal_faults.failed(f"signed meter value: {type(exc).__name__}: {exc}")
        self.journal_failed = True

    async def settle_signed(self) -> None:
        """Wait for the signing meter's answers under way (recovery, tests, stop)."""
        await self.signed_requests.settle()

    async def set_output(self, on: bool) -> None:
        try:
            await self.charger.set_output(on)
        except ChargerError as exc:
            log.error("charger output command failed", extra=fields(on=on, error=exc.detail))

    # ---- polling ----------------------------------------------------------------------

    async def _read_charger(self) -> None:
        try:
            self.seen.charger = await self.charger.status()
            self.seen.charger_error = None
        except ChargerError as exc:
            self.seen.charger = None
            self.seen.charger_error = exc.detail

    async def poll_once(self) -> Step:
        now_s = self.clock.monotonic_s()
        if self.seen.at_monotonic_s is not None:
            self.seen.interval_s = now_s - self.seen.at_monotonic_s
        self.seen.at_monotonic_s = now_s
        if self.journal_failed and not self._state.is_open:
            await self.probe_journal()  # with a session open, its own commits probe
        # charger first: when it reports the EV unplugged or the output off, the meter
        # reading taken after it already holds every Wh that flowed
        await self._read_charger()
        outcome = await self.monitor.poll()
        self.seen.outcome = outcome
        reading = outcome.reading if outcome.billable else None
        fault = outcome.fault
        async with self._lock:
            if self.deferred is not None:
                await self._apply_deferred()
            await self.signed_requests.again()
            start = self._state.start_reading
            projection = self.pricing.projection(
                reading, start.energy_import_wh if start else None, self.seen.interval_s)
            tick = Tick(
                at=self.clock.now(),
                reading=reading,
                meter_fault=str(fault) if fault else None,
                charger=self.seen.charger,
                charger_error=self.seen.charger_error,
                projected_cost=projection.cost,
                projected_energy_wh=projection.energy_wh,
                cost_so_far=projection.cost_so_far,
            )
            result = await self._apply(tick)
            status = self.seen.charger
            wanted = self._state.output_on and not self.journal_failed
            if status is not None and status.output_commanded != wanted:
                await self.set_output(wanted)
        if self._receipts_due and not self.journal_failed:
            await self._complete_receipts()
        self.screen.reset_language_when_idle(self.clock.now(), self._state.is_open)
        await self.polled.fire()
        self.publish_state()
        return result

    async def run_loop(self) -> None:
        interval_s = self.config.meter.poll_interval_s
        while not self._stopping.is_set():
            started = self.clock.monotonic_s()
            try:
                await self.poll_once()
            except Exception as exc:
                # bad data must not stop metering; the first error of a run is logged
                # with its traceback, repeats are counted (rate-limited)
                if not self._poll_faults.active:
                    log.exception("poll failed")
                self._poll_faults.failed(f"{type(exc).__name__}: {exc}")
            else:
                self._poll_faults.recovered()
            self.last_poll_monotonic_s = time.monotonic()  # a completed poll, even a failed one
            remaining = interval_s - (self.clock.monotonic_s() - started)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stopping.wait(), remaining / self.clock.speed
                    )

    def stop(self) -> None:
        self._stopping.set()

    async def probe_journal(self) -> bool:
        """While the journal is failed: once the disk has `min_free_storage_mb` free
        again, try a write; when it succeeds the journal is writable again (new
        sessions accepted). Returns whether the journal is usable. Each poll runs it
        while no session is open (an open session's own commits are its probe), so a
        failed journal recovers with no session open too."""
        if not self.journal_failed:
            return True
        if (low := self.storage_low()) is not None:
            self._journal_faults.failed(f"write probe not tried: {low}")
            return False
        try:
            await self.store.call(self.store.store.probe, self.clock.now())
        except (sqlite3.Error, OSError) as exc:
            self._journal_faults.failed(f"write probe: {type(exc).__name__}: {exc}")
            return False
        log.warning("journal writable again (write probe)")
        self.journal_failed = False
        self.publish_state()
        return True

    # ---- recovery ---------------------------------------------------------------------

    async def recover(self) -> dict[str, Any]:
        """Load the connector state; resume or close an open session; finish receipts."""
        store = self.store.store
        saved = await self.store.call(store.connector_state)
        self._state = state_from_json(saved) if saved else SessionState()
        report: dict[str, Any] = {"open_session": self._state.session_id
                                  if self._state.is_open else None}
        if self._state.is_open:
            report.update(await self._recover_open())
        await self._complete_receipts()
        return report

    async def _complete_receipts(self) -> None:
        """Receipts missing after a crash or a full disk; when the journal cannot take
        them now, again at the first poll after it can."""
        self._receipts_due = False
        try:
            for session_id in await self.store.call(self.store.store.sessions_without_receipt):
                await self._complete_receipt(session_id)
        except (sqlite3.Error, OSError) as exc:
            self._receipts_due = True
            self.journal_failed = True
            self._journal_faults.failed(f"receipt: {type(exc).__name__}: {exc}")

    async def _recover_open(self) -> dict[str, Any]:
        state = self._state
        for _ in range(self.config.charger.max_failed_polls):
            await self._read_charger()
            if self.seen.charger is not None:
                break
            await self.clock.sleep(self.config.meter.poll_interval_s)
        status = self.seen.charger
        now = self.clock.now()
        auth_valid = state.authorization is not None and state.authorization.valid_at(now)
        resume = bool(status and status.plugged and not status.fault and auth_valid)
        if not resume:
            await self.set_output(False)
            await self._confirm_output_off()
        self.monitor.last_good = state.last_reading
        outcome = None
        for _ in range(self.config.meter.max_failed_polls):
            outcome = await self.monitor.poll()
            if outcome.billable or outcome.fault:
                break
            await self.clock.sleep(self.config.meter.poll_interval_s)
        assert outcome is not None
        fault = outcome.fault
        reading = outcome.reading if outcome.billable else None
        if state.has_energy and state.session_id:
            await self._rebuild_pricing(state.session_id)
        await self.apply(Recover(
            at=self.clock.now(),
            resume=resume,
            reading=reading,
            meter_fault=str(fault) if fault else None,
        ))
        detail: dict[str, Any] = {
            "resumed": self._state.is_open and self.deferred is None,
            "plugged": bool(status and status.plugged),
            "authorization_valid": auth_valid,
            "phase": self._state.phase.value,
        }
        if self.deferred is not None:
            detail["closed_when_journal_writable"] = True
        log.warning("open session recovered after restart",
                    extra=fields(session=state.session_id, **detail))
        return detail

    async def _confirm_output_off(self) -> bool:
        deadline = self.clock.monotonic_s() + self.config.charger.output_off_timeout_s
        while True:
            await self._read_charger()
            status = self.seen.charger
            if status is not None and not status.output_on:
                return True
            if self.clock.monotonic_s() >= deadline:
                log.error("charger did not confirm output off",
                          extra=fields(error=self.seen.charger_error))
                return False
            await self.clock.sleep(0.1)

    async def _rebuild_pricing(self, session_id: str) -> None:
        store = self.store.store
        row = await self.store.call(store.session, session_id)
        if row is None or row["tariff_json"] is None:
            return
        readings = [r for _, r in await self.store.call(store.readings, session_id)]
        self.pricing.rebuild(row["tariff_json"], readings, row.get("receipt_url"))

    async def _complete_receipt(self, session_id: str) -> None:
        store = self.store.store
        try:
            bill = await self.store.call(bill_from_journal, store, session_id, "en",
                                         self.pricing.site)
        except Exception:
            log.exception("receipt cannot be built", extra=fields(session=session_id))
            return
        if bill is None:
            return
        await self.store.call(store.add_receipt, session_id, bill.receipt, bill.amount_charged,
                              self.clock.now(), bill.cdr_json)
        log.info("receipt completed after restart", extra=fields(session=session_id))

    # ---- stop -------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop cleanly: energy off (the open session resumes after restart)."""
        if self._state.phase in ENERGY_PHASES or self._state.output_on:
            log.warning("stopping with a session open; output switched off, it resumes "
                        "after restart", extra=fields(session=self._state.session_id))
            await self.set_output(False)
        self.meter.close()
        self.charger.close()
        self.store.close()
