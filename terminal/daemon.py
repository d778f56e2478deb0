"""`evterm daemon --config FILE`: the terminal's one event loop.

Owns the meter (through MeterMonitor), the charger control, the journal (Store on its
own writer thread), the session state machine and the local API. Every poll interval
it reads the meter and the charger, projects the session's cost and energy one poll
plus the stop latency ahead (so a cap stops delivery before it is passed), and feeds a
Tick to the state machine. Each step is journaled in one transaction, then acted on:
output switched, clients told. On start it recovers an open session from the journal
(resume, or close it from the meter's counter) and completes missing receipts.

For the touchscreen the daemon also keeps the screen language (reset to `[ui]
default_language` after `language_reset_s` on the idle screen without a driver's
action), the receipt on offer after a session (until acknowledged or
`receipt_timeout_s`), the code of the app-start QR code (new at start, after each
session and when a remote start used it) and, while Finishing, when the idle fee starts
and what it has cost (probed with RunningPricer.price_if, at most once a minute).

For technicians it carries the service menu (terminal.service: card + PIN login, the
`service_*` ops, out of service — persisted, new sessions refused with the reason).

Exit codes: 0 stopped by signal, 2 bad configuration or tariff, 3 the database is
damaged (the file is left untouched), 4 the local API socket cannot be created, 75
restart asked for from the service menu (after a clean stop; systemd starts it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import os
import secrets
import signal
import string
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from drivers.charger import ChargerControl, ChargerError, ChargerStatus, open_charger
from drivers.meter import Meter, open_meter
from drivers.meter.monitor import MeterMonitor, PollOutcome
from drivers.meter.reading import MeterReading
from terminal import sdnotify
from terminal.billing import Terms, receipt_for_session, refund_lines, sample_of
from terminal.commands import pushed_tariff_path
from terminal.config import Config
from terminal.identification import Identification
from terminal.kernel.clock import Clock, iso_utc
from terminal.kernel.driver_texts import LANGUAGES
from terminal.kernel.locales import LOCALES
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.money import optional_amount
from terminal.kernel.redact import scrub
from terminal.localapi import LocalApi, RequestError
from terminal.pricing import (
    RunningPricer,
    Sample,
    TariffNotApplicableError,
    check_validity,
)
from terminal.pricing.display import tariff_texts
from terminal.pricing.model import Dimension
from terminal.service import RESTART_EXIT_CODE, Service
from terminal.session import (
    ENERGY_PHASES,
    Authorization,
    AuthorizationAccepted,
    CloseSession,
    Event,
    OpenSession,
    Phase,
    ReadingRecord,
    Recover,
    Rules,
    SessionState,
    SetOutput,
    Step,
    StopReason,
    StopRequested,
    Tick,
    Transition,
    state_from_json,
    state_to_json,
    step,
)
from terminal.store import AsyncStore, Store

log = get_logger("daemon")
DATABASE_NAME = "evterm.db"
MAX_TOKEN_CHARS = 64
MAX_PROBLEM_CHARS = 500
PROBLEM_CATEGORIES = ("payment", "charging", "screen", "damage", "other")
START_CODE_ALPHABET = string.ascii_uppercase + "23456789"
START_CODE_CHARS = 8
IDLE_FEE_HORIZON_S = 4 * 3600  # an idle fee further ahead is not announced
IDLE_PROBE_INTERVAL_S = 60.0  # the idle-fee figures are recomputed at most this often


def new_start_code() -> str:
    """A random code for the app-start QR code: 8 of A-Z and 2-9."""
    return "".join(secrets.choice(START_CODE_ALPHABET) for _ in range(START_CODE_CHARS))


def fill_url(template: str, **values: str) -> str:
    """A `[ui]` URL template with its placeholders filled, each value URL-quoted."""
    from urllib.parse import quote

    return template.format(**{key: quote(value, safe="*") for key, value in values.items()})


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
    )


def load_station_terms(config: Config) -> Terms:
    """The terms for sessions starting now: the tariff the backend pushed last (state
    folder), else the configured tariff file (read and parsed once; OSError or
    ValueError naming the problem), time zone, threshold, identity."""
    pushed = pushed_tariff_path(config.station.state_dir)
    source = pushed if pushed.exists() else Path(config.session.tariff_file)
    tariff_json = json.loads(source.read_text(encoding="utf-8"))
    terms = Terms(
        tariff_json=tariff_json,
        timezone=config.station.timezone,
        charging_threshold_w=Decimal(config.session.charging_threshold_w),
        station_id=config.station.id,
        operator=config.station.operator,
    )
    _ = terms.tariff  # parsed and checked here, before anything starts
    return terms


def terms_for(station_terms: Terms, auth: Authorization | None) -> Terms:
    """The terms a session is priced by: the personal tariff that came with its
    authorisation (fleet contracts, checked when accepted), else the station's."""
    if auth is None or auth.tariff_json is None:
        return station_terms
    return dataclasses.replace(station_terms, tariff_json=json.loads(auth.tariff_json))


def database_path(config: Config) -> Path:
    return Path(config.station.state_dir) / DATABASE_NAME


@dataclass(frozen=True)
class IdleProbe:
    """The idle-fee figures of one Finishing phase, as computed at `at`."""

    key: tuple[str | None, datetime | None]  # (session id, Finishing entered at)
    at: datetime
    info: dict[str, Any] | None
    fee_from: datetime | None


@dataclass
class Observation:
    """The last poll: what the meter and the charger said."""

    outcome: PollOutcome | None = None
    charger: ChargerStatus | None = None
    charger_error: str | None = None
    at_monotonic_s: float | None = None
    interval_s: float = 0.0


class Daemon:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: Store,
        meter: Meter,
        charger: ChargerControl,
        station_terms: Terms,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = AsyncStore(store)
        self.meter = meter
        self.charger = charger
        self.rules = rules_from(config)
        self.monitor = MeterMonitor(
            meter,
            max_failed_polls=config.meter.max_failed_polls,
            rated_power_w=config.meter.rated_power_w,
            expected_serial=config.meter.expected_serial,
            fault_interval_s=config.logging.fault_interval_s,
            clock=clock,
        )
        self.station_terms = station_terms  # for sessions starting now
        self.state = SessionState()
        self.terms: Terms | None = None
        self.pricer: RunningPricer | None = None
        self.seen = Observation()
        self.api = LocalApi(config.localapi.socket_path, int(config.localapi.socket_mode, 8))
        self.api.snapshot = self.snapshot
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.last_poll_monotonic_s: float | None = None  # time.monotonic(), for the watchdog
        self.journal_failed = False
        self.on_session_closed: Callable[[], None] | None = None  # e.g. wake settlement
        self.storage_ok: Callable[[], bool] = lambda: True  # the backend link's disk check
        self.after_commit: Callable[[], None] | None = None  # e.g. wake the outbox pump
        self.link_online: Callable[[], bool] = lambda: True  # the backend link is up
        self._price_list: tuple[Terms, dict[str, Any]] | None = None
        self.extra_status: Callable[[], dict[str, Any]] | None = None  # readers, backend
        # the touchscreen's state (docs/local-api.md)
        self.language = config.ui.default_language
        self.start_code = new_start_code()
        self.receipt_pending: tuple[str, datetime] | None = None  # (session id, closed at)
        self._last_intent_at: datetime | None = None
        self._idle_since: datetime | None = None
        self._idle_probe: IdleProbe | None = None
        # the technicians' service menu (terminal.service, docs/service.md)
        self.service = Service(self)
        self.exit_code = 0  # RESTART_EXIT_CODE after the service menu's restart

    def accepting_sessions(self) -> bool:
        """New sessions only while every step can be journaled and queued for the
        backend (the journal is writable, the disk is not nearly full) and a
        technician has not taken the terminal out of service."""
        return self.refusal_reason() is None

    def refusal_reason(self) -> str | None:
        """Why new sessions are refused now; None while they are accepted."""
        if (out_of_service := self.service.refusal()) is not None:
            return out_of_service
        if self.journal_failed or not self.storage_ok():
            return "the terminal cannot record sessions right now (storage)"
        return None

    def request_restart(self, delay_s: float = 0.2) -> None:
        """The service menu's restart: stop cleanly in a moment (the reply goes out
        first) and exit with RESTART_EXIT_CODE, for systemd to start the daemon again."""
        self.exit_code = RESTART_EXIT_CODE
        log.warning("restart requested from the service menu")
        asyncio.get_running_loop().call_later(delay_s, self.stop)

    # ---- terms and pricing ------------------------------------------------------------

    def _new_pricer(self, terms: Terms) -> RunningPricer:
        return RunningPricer(terms.tariff, terms.timezone, terms.charging_threshold_w)

    def _feed(self, reading: MeterReading) -> None:
        if self.pricer is not None:
            self.pricer.add_sample(sample_of(reading))

    def _projection(self, reading: MeterReading | None) -> tuple[Decimal | None, ...]:
        """(projected cost incl. VAT, projected energy since start, cost so far)."""
        state, pricer = self.state, self.pricer
        if pricer is None or reading is None or state.start_reading is None:
            return None, None, None
        if pricer.sample_count == 0:
            return None, None, None
        horizon_s = (
            max(self.config.meter.poll_interval_s, self.seen.interval_s)
            + self.config.session.stop_latency_s
        )
        power_w = max(reading.power_w or Decimal(0), Decimal(0))
        energy_wh = reading.energy_import_wh + power_w * Decimal(str(horizon_s)) / 3600
        ahead = Sample(
            reading.timestamp + timedelta(seconds=horizon_s),
            energy_wh,
            power_w,
            reading.current_a or Decimal(0),
        )
        try:
            projected = pricer.price_if(ahead)
        except ValueError as exc:
            log.warning("cost projection failed", extra=fields(error=exc))
            return None, None, None
        cost = pricer.cost_so_far().incl_vat
        return (
            projected.total.incl_vat,
            energy_wh - state.start_reading.energy_import_wh,
            cost,
        )

    # ---- applying steps ---------------------------------------------------------------

    async def apply(self, event: Event) -> Step:
        async with self._lock:
            result = await self._apply(event)
        if result.records or result.actions:
            self.api.publish({"type": "state", "state": self.snapshot()})
        return result

    async def _apply(self, event: Event) -> Step:
        result = step(self.state, event, self.rules)
        if result.refused or (not result.records and not result.actions):
            self.state = result.state
            return result
        session_id = result.state.session_id or self.state.session_id
        new_readings = [r for r in result.records if isinstance(r, ReadingRecord)]
        terms_json = receipt_url = None
        if any(r.kind == "start" for r in new_readings):
            self.terms = terms_for(self.station_terms, result.state.authorization)
            self.pricer = self._new_pricer(self.terms)
            terms_json = self.terms.to_json()
            if self.config.ui.receipt_url and session_id:
                receipt_url = fill_url(self.config.ui.receipt_url,
                                       station_id=self.config.station.id, session_id=session_id)
        close = next((r for r in result.records if isinstance(r, CloseSession)), None)
        receipt = None
        if close is not None and close.stop_reading is not None and session_id:
            receipt = await self._receipt_on_close(session_id, result, new_readings)
        try:
            await self.store.call(
                self.store.store.commit,
                result.records,
                state_to_json(result.state),
                session_id=session_id,
                station_id=self.config.station.id,
                tariff_json=terms_json,
                receipt_url=receipt_url,
                receipt=receipt,
                at=self.clock.now(),
                offline=not self.link_online(),
            )
        except Exception:
            # what cannot be journaled cannot be billed: no energy until it can
            if not self.journal_failed:
                log.critical("journal commit failed; energy delivery held off",
                             exc_info=True, extra=fields(session=session_id))
            self.journal_failed = True
            await self._set_output(False)
            raise
        if self.journal_failed:
            log.warning("journal writable again", extra=fields(session=session_id))
            self.journal_failed = False
        if self.after_commit is not None:
            self.after_commit()
        self.state = result.state
        for record in new_readings:
            try:
                self._feed(record.reading)
            except ValueError as exc:
                log.error("running cost: reading refused", extra=fields(error=exc))
        if any(isinstance(r, OpenSession) for r in result.records):
            self.receipt_pending = None  # the next driver is here
        if close is not None:
            self.pricer = None
            self.terms = None
            self._idle_probe = None
            self.start_code = new_start_code()
            if receipt is not None and session_id:
                self.receipt_pending = (session_id, close.at)
        self._log(result, session_id)
        for action in result.actions:
            if isinstance(action, SetOutput):
                await self._set_output(action.on)
        if close is not None:
            self.api.publish({"type": "session_ended", "session_id": session_id,
                              "stop_reason": close.stop_reason, "phase": close.phase})
            if self.on_session_closed is not None:
                self.on_session_closed()
        return result

    async def _receipt_on_close(
        self, session_id: str, result: Step, new_readings: list[ReadingRecord]
    ) -> tuple[dict[str, Any], str] | None:
        store = self.store.store
        try:
            journaled = [r for _, r in await self.store.call(store.readings, session_id)]
            readings = journaled + [r.reading for r in new_readings]
            row = await self.store.call(store.session, session_id)
            assert row is not None
            close = next(r for r in result.records if isinstance(r, CloseSession))
            row = {**row, "stop_reason": close.stop_reason.value if close.stop_reason else None,
                   "phase": close.phase.value}
            return receipt_for_session(row, readings)
        except Exception:
            # the session still closes; the receipt is retried at the next start
            log.exception("receipt failed; it will be rebuilt at the next start",
                          extra=fields(session=session_id))
            return None

    def _log(self, result: Step, session_id: str | None) -> None:
        for record in result.records:
            if isinstance(record, Transition):
                log.info(
                    "session phase",
                    extra=fields(session=session_id, phase=record.to_phase.value,
                                 previous=record.from_phase.value, trigger=record.trigger,
                                 detail=record.detail),
                )

    async def _set_output(self, on: bool) -> None:
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
        # charger first: when it reports the EV unplugged or the output off, the meter
        # reading taken after it already holds every Wh that flowed
        await self._read_charger()
        outcome = await self.monitor.poll()
        self.seen.outcome = outcome
        reading = outcome.reading if outcome.billable else None
        fault = outcome.fault
        async with self._lock:
            projected_cost, projected_energy, cost = self._projection(reading)
            tick = Tick(
                at=self.clock.now(),
                reading=reading,
                meter_fault=str(fault) if fault else None,
                charger=self.seen.charger,
                charger_error=self.seen.charger_error,
                projected_cost=projected_cost,
                projected_energy_wh=projected_energy,
                cost_so_far=cost,
            )
            result = await self._apply(tick)
            status = self.seen.charger
            wanted = self.state.output_on and not self.journal_failed
            if status is not None and status.output_commanded != wanted:
                await self._set_output(wanted)
        self._reset_language_when_idle(self.clock.now())
        await self.service.after_poll()
        self.api.publish({"type": "state", "state": self.snapshot()})
        return result

    async def run_loop(self) -> None:
        interval_s = self.config.meter.poll_interval_s
        while not self._stopping.is_set():
            started = self.clock.monotonic_s()
            try:
                await self.poll_once()
            except Exception:
                # bad data must not stop metering; the error is logged with its cause
                log.exception("poll failed")
            self.last_poll_monotonic_s = time.monotonic()  # a completed poll, even a failed one
            remaining = interval_s - (self.clock.monotonic_s() - started)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stopping.wait(), remaining / self.clock.speed
                    )

    def stop(self) -> None:
        self._stopping.set()

    # ---- recovery ---------------------------------------------------------------------

    async def recover(self) -> dict[str, Any]:
        """Load the connector state; resume or close an open session; finish receipts."""
        store = self.store.store
        await self.service.load()
        saved = await self.store.call(store.connector_state)
        self.state = state_from_json(saved) if saved else SessionState()
        report: dict[str, Any] = {"open_session": self.state.session_id if self.state.is_open
                                  else None}
        if self.state.is_open:
            report.update(await self._recover_open())
        for session_id in await self.store.call(store.sessions_without_receipt):
            await self._complete_receipt(session_id)
        return report

    async def _recover_open(self) -> dict[str, Any]:
        state = self.state
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
            await self._set_output(False)
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
            await self._rebuild_pricer(state.session_id)
        await self.apply(Recover(
            at=self.clock.now(),
            resume=resume,
            reading=reading,
            meter_fault=str(fault) if fault else None,
        ))
        detail = {
            "resumed": self.state.is_open,
            "plugged": bool(status and status.plugged),
            "authorization_valid": auth_valid,
            "phase": self.state.phase.value,
        }
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

    async def _rebuild_pricer(self, session_id: str) -> None:
        store = self.store.store
        row = await self.store.call(store.session, session_id)
        if row is None or row["tariff_json"] is None:
            return
        self.terms = Terms.from_json(row["tariff_json"])
        self.pricer = self._new_pricer(self.terms)
        for _, reading in await self.store.call(store.readings, session_id):
            self._feed(reading)

    async def _complete_receipt(self, session_id: str) -> None:
        store = self.store.store
        row = await self.store.call(store.session, session_id)
        readings = [r for _, r in await self.store.call(store.readings, session_id)]
        try:
            receipt = receipt_for_session(row, readings)  # type: ignore[arg-type]
        except Exception:
            log.exception("receipt cannot be built", extra=fields(session=session_id))
            return
        await self.store.call(store.add_receipt, session_id, receipt, self.clock.now())
        log.info("receipt completed after restart", extra=fields(session=session_id))

    # ---- local API ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        state = self.state
        outcome = self.seen.outcome
        reading = outcome.reading if outcome and outcome.billable else None
        energy = None
        if state.start_reading is not None and state.last_reading is not None:
            energy = state.last_reading.energy_import_wh - state.start_reading.energy_import_wh
        cost = None
        if self.pricer is not None and self.pricer.sample_count:
            running = self.pricer.cost_so_far()
            cost = {"currency": running.currency, "excl_vat": str(running.excl_vat),
                    "incl_vat": str(running.incl_vat)}
        auth = state.authorization
        now = self.clock.now()
        started_at, elapsed_s = self._session_times(now)
        return {
            "station_id": self.config.station.id,
            "phase": state.phase.value,
            "session_id": state.session_id,
            "plugged": state.plugged,
            "output_on": state.output_on,
            "energy_wh": str(energy) if energy is not None else None,
            "power_w": str(reading.power_w) if reading and reading.power_w is not None else None,
            "cost": cost,
            "cost_cap": str(auth.cost_cap) if auth and auth.cost_cap is not None else None,
            "energy_cap_wh": (str(auth.energy_cap_wh)
                              if auth and auth.energy_cap_wh is not None else None),
            "stop_reason": state.stop_reason.value if state.stop_reason else None,
            "since": iso_utc(state.since) if state.since else None,
            "meter_fault": str(outcome.fault) if outcome and outcome.fault else None,
            "charger_fault": (self.seen.charger.fault if self.seen.charger
                              else self.seen.charger_error),
            "price_list": self.price_list(),
            "language": self.language,
            "languages": list(LANGUAGES),
            "operator": self.config.station.operator,
            "support_phone": self.config.ui.support_phone or None,
            "now": iso_utc(now),
            "session_started_at": iso_utc(started_at) if started_at else None,
            "elapsed_s": elapsed_s,
            "idle": self.idle_fee(now),
            "receipt_pending": self.pending_receipt(now),
            "app_start": self.app_start(),
            "accepting_sessions": self.accepting_sessions(),
            **self.service.snapshot(now),
            **(self.extra_status() if self.extra_status is not None else {}),
        }

    def price_list(self) -> dict[str, Any]:
        """The station's tariff as the screen shows it before a driver commits: its id,
        currency and the price texts in every supported language."""
        terms = self.station_terms
        cached = self._price_list
        if cached is None or cached[0] is not terms:
            tariff = terms.tariff
            texts = {code: list(tariff_texts(tariff, code)) for code in LOCALES}
            cached = self._price_list = (terms, {"tariff_id": tariff.id,
                                                 "currency": tariff.currency,
                                                 "texts": texts})
        return cached[1]

    # ---- the touchscreen's state ----------------------------------------------------------

    def note_intent(self) -> None:
        """A driver did something (a tap, a button): the idle screen's language timer
        starts again."""
        self._last_intent_at = self.clock.now()

    def rotate_start_code(self) -> None:
        """A new app-start code: the QR code on screen changes, the old one is refused."""
        self.start_code = new_start_code()

    def app_start(self) -> dict[str, str] | None:
        template = self.config.ui.app_start_url
        if not template:
            return None
        url = fill_url(template, station_id=self.config.station.id, code=self.start_code)
        return {"url": url, "code": self.start_code}

    def pending_receipt(self, now: datetime) -> dict[str, str] | None:
        """The latest closed session's receipt while it is offered on screen."""
        if self.receipt_pending is None:
            return None
        session_id, closed_at = self.receipt_pending
        until = closed_at + timedelta(seconds=self.config.ui.receipt_timeout_s)
        if now >= until:
            self.receipt_pending = None
            return None
        return {"session_id": session_id, "until": iso_utc(until)}

    def _session_times(self, now: datetime) -> tuple[datetime | None, int | None]:
        """(session start = its first reading, seconds since then; for a session that
        ended, its duration up to the stop reading)."""
        state = self.state
        if state.start_reading is None:
            return None, None
        started = state.start_reading.timestamp
        end = now
        if not state.is_open and state.last_reading is not None:
            end = state.last_reading.timestamp
        return started, max(0, int((end - started).total_seconds()))

    def _reset_language_when_idle(self, now: datetime) -> None:
        """Back to the default language after `[ui] language_reset_s` on the idle screen
        (no session open, no receipt on offer) without a driver's action."""
        if self.state.is_open or self.pending_receipt(now) is not None:
            self._idle_since = None
            return
        if self._idle_since is None:
            self._idle_since = now
        default = self.config.ui.default_language
        if self.language == default:
            return
        quiet_since = max(self._idle_since, self._last_intent_at or self._idle_since)
        if (now - quiet_since).total_seconds() >= self.config.ui.language_reset_s:
            log.info("screen language reset", extra=fields(previous=self.language,
                                                           language=default))
            self.language = default

    def idle_fee(self, now: datetime) -> dict[str, Any] | None:
        """While Finishing: when the idle (PARKING_TIME) fee starts (`fee_from`, within
        IDLE_FEE_HORIZON_S, None when already accruing or none is ahead), whether it
        accrues now and what it has cost so far (incl. VAT). Probed once per Finishing
        phase and then at most every IDLE_PROBE_INTERVAL_S (and when fee_from passes)."""
        state = self.state
        if state.phase is not Phase.FINISHING or self.pricer is None \
                or self.pricer.sample_count == 0 or state.last_reading is None:
            return None
        key = (state.session_id, state.since)
        probe = self._idle_probe
        if (probe is None or probe.key != key
                or (now - probe.at).total_seconds() >= IDLE_PROBE_INTERVAL_S
                or (probe.fee_from is not None and now >= probe.fee_from)):
            probe = self._idle_probe = self._probe_idle_fee(key, now)
        return probe.info

    def _probe_idle_fee(self, key: tuple[str | None, datetime | None],
                        now: datetime) -> IdleProbe:
        assert self.pricer is not None and self.state.last_reading is not None
        last = self.state.last_reading
        at = max(now, last.timestamp)
        zero = Decimal(0)
        try:
            # on a copy: the parked car from the last reading on, then 4 h ahead
            probe = copy.deepcopy(self.pricer)
            probe.add_sample(Sample(at, last.energy_import_wh, zero, zero))
            so_far = probe.result()
            ahead = probe.price_if(Sample(at + timedelta(seconds=IDLE_FEE_HORIZON_S),
                                          last.energy_import_wh, zero, zero))
        except ValueError as exc:
            log.warning("idle fee probe failed", extra=fields(error=exc))
            return IdleProbe(key, now, None, None)
        tariff = self.pricer.tariff
        fee_start = None
        for period in ahead.periods:
            index = period.active.parking_time
            if period.end <= at or period.charging or index is None:
                continue
            if any(c.type is Dimension.PARKING_TIME and c.price > 0
                   for c in tariff.elements[index].price_components):
                fee_start = max(period.start, at)
                break
        accrued = next((d.incl_vat for d in so_far.dimensions
                        if d.dimension is Dimension.PARKING_TIME), zero)
        accruing = fee_start is not None and fee_start <= at
        fee_from = None if accruing else fee_start
        info = {"fee_from": iso_utc(fee_from) if fee_from else None, "accruing": accruing,
                "accrued": str(accrued), "currency": so_far.currency}
        return IdleProbe(key, now, info, fee_from)

    def register_api(self) -> None:
        self.api.route("status", self._api_status)
        self.api.route("report_problem", self._api_report_problem)
        self.api.route("start", self._api_start)
        self.api.route("stop", self._api_stop)
        self.api.route("receipt", self._api_receipt)
        self.api.route("sessions", self._api_sessions)
        self.api.route("language", self._api_language)
        self.api.route("ack_receipt", self._api_ack_receipt)
        self.service.register(self.api)

    async def _api_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"state": self.snapshot()}

    def _publish_state(self) -> dict[str, Any]:
        state = self.snapshot()
        self.api.publish({"type": "state", "state": state})
        return state

    async def _api_language(self, request: dict[str, Any]) -> dict[str, Any]:
        """The driver chose the screen's language."""
        language = request.get("language")
        if not isinstance(language, str) or language not in LANGUAGES:
            raise RequestError(f"language: expected one of {', '.join(LANGUAGES)}, got "
                               f"{language!r:.40}")
        self.language = language
        self.note_intent()
        return {"language": language, "state": self._publish_state()}

    async def _api_ack_receipt(self, request: dict[str, Any]) -> dict[str, Any]:
        """The driver is done with the receipt on screen."""
        session_id = request.get("session_id")
        if not isinstance(session_id, str):
            raise RequestError(f"session_id: expected the session id of the receipt on "
                               f"offer (receipt_pending), got {session_id!r:.40}")
        pending = self.pending_receipt(self.clock.now())
        if pending is None or pending["session_id"] != session_id:
            offered = pending["session_id"] if pending else "none"
            raise RequestError(f"session_id: {session_id!r:.40} is not the receipt on offer "
                               f"({offered})")
        self.receipt_pending = None
        self.note_intent()
        return {"session_id": session_id, "state": self._publish_state()}

    async def _api_report_problem(self, request: dict[str, Any]) -> dict[str, Any]:
        """A driver's problem report from the screen: audited and sent to the backend."""
        text = request.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_PROBLEM_CHARS:
            raise RequestError(f"text: expected 1 to {MAX_PROBLEM_CHARS} characters, got "
                               f"{type(text).__name__}")
        category = request.get("category", "other")
        if category not in PROBLEM_CATEGORIES:
            raise RequestError(f"category: expected one of {', '.join(PROBLEM_CATEGORIES)}, "
                               f"got {category!r}")
        detail = {"by": "driver", "category": category, "text": scrub(text.strip()),
                  "session_id": self.state.session_id, "phase": self.state.phase.value}
        audit_id = await self.store.call(self.store.store.add_audit, "problem_report",
                                         detail, self.clock.now())
        self.note_intent()
        log.warning("problem reported at the screen",
                    extra=fields(category=category, reference=audit_id))
        return {"reference": audit_id}

    async def _api_start(self, request: dict[str, Any]) -> dict[str, Any]:
        token = request.get("id_token")
        if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_CHARS:
            raise RequestError(f"id_token: expected a non-empty string of at most "
                               f"{MAX_TOKEN_CHARS} characters, got {token!r}")
        source = request.get("source", "local")
        if source not in ("local", "app"):
            raise RequestError(f"source: expected 'local' or 'app', got {source!r}")
        cost_cap = _decimal_field(request, "cost_cap") or optional_amount(
            self.config.session.default_cost_cap)
        energy_cap = _decimal_field(request, "energy_cap_wh")
        now = self.clock.now()
        try:
            check_validity(self.station_terms.tariff, now)
        except TariffNotApplicableError as exc:
            raise RequestError(
                f"the station has no tariff valid now; charging is not offered ({exc})"
            ) from None
        if (refused := self.refusal_reason()) is not None:
            raise RequestError(refused)
        auth = Authorization(
            id_token=token,
            source=source,
            valid_until=now + timedelta(seconds=self.config.session.authorization_valid_s),
            cost_cap=cost_cap,
            energy_cap_wh=energy_cap,
        )
        result = await self.apply(AuthorizationAccepted(now, str(uuid.uuid4()), auth))
        if result.refused:
            raise RequestError(result.refused)
        self.note_intent()
        return {"session_id": self.state.session_id, "state": self.snapshot()}

    async def _api_stop(self, request: dict[str, Any]) -> dict[str, Any]:
        names = {"Local": StopReason.LOCAL, "Remote": StopReason.REMOTE,
                 "Technician": StopReason.TECHNICIAN}
        reason_name = request.get("reason", "Local")
        if reason_name not in names:
            raise RequestError(f"reason: expected one of {', '.join(names)}, got {reason_name!r}")
        token = request.get("id_token")
        if token is not None and not isinstance(token, str):
            raise RequestError(f"id_token: expected a string, got {token!r}")
        result = await self.apply(StopRequested(self.clock.now(), names[reason_name], token))
        if result.refused:
            raise RequestError(result.refused)
        self.note_intent()
        return {"state": self.snapshot()}

    async def _api_receipt(self, request: dict[str, Any]) -> dict[str, Any]:
        session_id = request.get("session_id")
        store = self.store.store
        if session_id is None:
            recent = await self.store.call(store.sessions, 20)
            session_id = next((s["id"] for s in recent if s["meter_start_wh"] and s["closed_at"]),
                              None)
        if not isinstance(session_id, str):
            raise RequestError("session_id: no session with a receipt")
        found = await self.store.call(store.receipt, session_id)
        if found is None:
            raise RequestError(f"session_id: no receipt for {session_id!r}")
        language = request.get("language", "en")
        if language != "en":
            row = await self.store.call(store.session, session_id)
            readings = [r for _, r in await self.store.call(store.readings, session_id)]
            refunds = refund_lines(await self.store.call(store.refunds, session_id))
            try:
                found = receipt_for_session(row, readings, language,  # type: ignore[arg-type]
                                            refunds)
            except ValueError as exc:
                raise RequestError(f"language: {exc}") from None
        return {"session_id": session_id, "receipt": found[0], "text": found[1]}

    async def _api_sessions(self, request: dict[str, Any]) -> dict[str, Any]:
        limit = request.get("limit", 20)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise RequestError(f"limit: expected an integer from 1 to 1000, got {limit!r}")
        rows = await self.store.call(self.store.store.sessions, limit)
        keep = ("id", "opened_at", "phase", "stop_reason", "meter_start_wh", "meter_stop_wh",
                "started_at", "stopped_at", "closed_at", "source", "detail")
        return {"sessions": [{k: row[k] for k in keep} for row in rows]}

    # ---- lifecycle ----------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop cleanly: energy off (the open session resumes after restart)."""
        if self.state.phase in ENERGY_PHASES or self.state.output_on:
            log.warning("stopping with a session open; output switched off, it resumes "
                        "after restart", extra=fields(session=self.state.session_id))
            await self._set_output(False)
        await self.api.close()
        self.meter.close()
        self.charger.close()
        self.store.close()


def _decimal_field(request: dict[str, Any], key: str) -> Decimal | None:
    value = request.get(key)
    if value is None:
        return None
    try:
        number = Decimal(str(value)) if isinstance(value, str | int) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0:
        raise RequestError(f"{key}: expected a positive number as text, e.g. \"25.00\", "
                           f"got {value!r}")
    return number


async def run_daemon(config: Config, clock: Clock, started_s: float) -> int:
    from terminal.store import StoreError

    try:
        terms = load_station_terms(config)
    except (OSError, ValueError) as exc:
        print(f"evterm daemon: session.tariff_file: {exc}", file=sys.stderr)
        return 2
    try:
        store = Store.open(database_path(config))
    except StoreError as exc:
        print(f"evterm daemon: refusing to start: {exc}", file=sys.stderr)
        return 3
    meter = open_meter(config.meter.model, config.meter.url, config.meter.unit_id,
                       config.meter.timeout_s, clock)
    charger = open_charger(config.charger.kind, config.charger.url, config.charger.unit_id,
                           config.charger.timeout_s)
    daemon = Daemon(config, clock, store, meter, charger, terms)
    daemon.register_api()
    try:
        ident = Identification.build(daemon, config)
    except ValueError as exc:
        print(f"evterm daemon: {exc}", file=sys.stderr)
        await daemon.shutdown()
        return 2
    daemon.extra_status = ident.snapshot
    daemon.service.attach(ident)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop)
    try:
        sdnotify.notify("STATUS=recovering the journal")
        report = await daemon.recover()
        try:
            await daemon.api.start()
        except OSError as exc:
            print(f"evterm daemon: local API socket: {exc}", file=sys.stderr)
            return 4
        ready = {
            "event": "ready",
            "pid": os.getpid(),
            "database": str(database_path(config)),
            "socket": str(config.localapi.socket_path),
            "phase": daemon.state.phase.value,
            "recovery": report,
            "ready_s": round(time.monotonic() - started_s, 3),
        }
        await ident.start()
        print(json.dumps(ready), flush=True)
        log.info("daemon ready", extra=fields(phase=daemon.state.phase.value,
                                              ready_s=ready["ready_s"]))
        watchdog = systemd_watchdog(daemon)
        sdnotify.notify(f"READY=1\nSTATUS={daemon_status(daemon)}")
        watchdog.start()
        try:
            await daemon.run_loop()
        finally:
            sdnotify.notify("STOPPING=1\nSTATUS=stopping")
            await watchdog.stop()
    finally:
        await ident.close()
        await daemon.shutdown()
    return daemon.exit_code


def daemon_status(daemon: Daemon) -> str:
    """One line for `systemctl status evterm` (sd_notify STATUS=)."""
    fault = daemon.monitor.fault
    meter = f"meter fault: {fault.kind}" if fault else "meter ok"
    out_of_service = daemon.service.refusal()
    return f"{daemon.state.phase.value}; {meter}" + (f"; {out_of_service}"
                                                     if out_of_service else "")


def systemd_watchdog(daemon: Daemon) -> sdnotify.Watchdog:
    """WATCHDOG=1 pings while the loop runs and a poll completed recently: within 3 poll
    intervals plus the reply timeouts one poll may spend on a silent meter and charger
    (a status read and an output command), so a meter that does not answer (a fault the
    daemon handles) keeps the pings going and a stuck poll stops them."""
    config = daemon.config
    max_age_s = (3 * config.meter.poll_interval_s / daemon.clock.speed
                 + config.meter.timeout_s + 2 * config.charger.timeout_s)
    return sdnotify.Watchdog(lambda: daemon.last_poll_monotonic_s, max_age_s,
                             status=lambda: daemon_status(daemon))
