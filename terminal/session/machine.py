"""The session state machine of one connector: pure (state, event) -> `step`.

Provides `step(state, event, rules) -> Step`: the new state, the records to journal
and the actions to take; an event that does not apply leaves the state unchanged and
says why in `Step.refused`. Nothing here does I/O, reads a clock or draws a random
number. The phases and their transitions: terminal/session/__init__.py and
docs/session.md.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from drivers.charger import EvState
from drivers.meter.reading import MeterReading
from terminal.session.events import (
    AuthorizationAccepted,
    AuthorizationChanged,
    AuthorizationKept,
    AuthorizationRejected,
    AuthorizeRequested,
    Event,
    Recover,
    SignedEnd,
    SignedStart,
    StopRequested,
    Tick,
)
from terminal.session.model import ENDED_PHASES, METERED_PHASES, Phase, Rules, StopReason
from terminal.session.records import (
    Action,
    BeginSigned,
    CloseSession,
    EndSigned,
    OpenSession,
    ReadingRecord,
    Record,
    SetAuthorization,
    SetOutput,
    Transition,
    TxEvent,
)
from terminal.session.state import SessionState, Step


class _Builder:
    """Collects what one step journals and does."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.records: list[Record] = []
        self.actions: list[Action] = []

    def go(
        self, at: datetime, phase: Phase, trigger: str, detail: str = "", **changes: Any
    ) -> None:
        if phase is not self.state.phase:
            self.records.append(Transition(at, self.state.phase, phase, trigger, detail))
            changes["since"] = at
        self.state = replace(self.state, phase=phase, **changes)

    def update(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)

    def tx(self, event_type: str, trigger: str, at: datetime, **data: Any) -> None:
        seq = self.state.seq_no + 1
        self.records.append(TxEvent(event_type, trigger, at, seq, data))
        self.state = replace(self.state, seq_no=seq)

    def output(self, on: bool, at: datetime) -> None:
        self.actions.append(SetOutput(on))
        self.state = replace(self.state, output_on=on, output_off_at=None if on else at)

    def done(self, refused: str | None = None) -> Step:
        return Step(self.state, tuple(self.records), tuple(self.actions), refused)


def _reading_data(reading: MeterReading | None) -> dict[str, Any]:
    if reading is None:
        return {}
    return {
        "meter_wh": str(reading.energy_import_wh),
        "power_w": str(reading.power_w) if reading.power_w is not None else None,
        "meter_time": reading.timestamp.isoformat(),
    }


def step(state: SessionState, event: Event, rules: Rules) -> Step:
    """Apply one event. Events that do not apply leave the state unchanged and say why
    in `Step.refused`."""
    b = _Builder(state)
    if isinstance(event, AuthorizeRequested):
        return _authorize_requested(b, event)
    if isinstance(event, AuthorizationAccepted):
        return _accepted(b, event)
    if isinstance(event, AuthorizationRejected):
        return _rejected(b, event)
    if isinstance(event, StopRequested):
        return _stop_requested(b, event)
    if isinstance(event, AuthorizationChanged):
        return _authorization_changed(b, event)
    if isinstance(event, Tick):
        return _tick(b, event, rules)
    if isinstance(event, Recover):
        return _recover(b, event)
    if isinstance(event, SignedStart):
        return _signed_start(b, event)
    if isinstance(event, SignedEnd):
        return _signed_end(b, event)
    if isinstance(event, AuthorizationKept):
        return _authorization_kept(b, event, rules)
    raise TypeError(f"unknown event {type(event).__name__}")


def _connector_only(state: SessionState) -> SessionState:
    """The state with every session field back at its default; what the connector
    itself knows (phase, plug, output) stays."""
    return SessionState(
        phase=state.phase,
        since=state.since,
        plugged=state.plugged,
        output_on=state.output_on,
        output_off_at=state.output_off_at,
        charger_errors=state.charger_errors,
    )


def _busy(state: SessionState) -> str:
    if state.phase in (Phase.COMPLETED, Phase.FAULTED) and state.plugged:
        return "the previous vehicle is still plugged in"
    if state.phase is Phase.FAULTED:
        return "the charger is out of order"
    return f"a session is already {state.phase.value.lower()}"


def _authorize_requested(b: _Builder, ev: AuthorizeRequested) -> Step:
    if b.state.phase is not Phase.AVAILABLE:
        return b.done(refused=_busy(b.state))
    b.records.append(OpenSession(ev.session_id, ev.at, ev.id_token, ev.source))
    b.state = _connector_only(b.state)
    b.update(session_id=ev.session_id, id_token=ev.id_token)
    b.go(ev.at, Phase.AUTHORIZING, "AuthorizeRequested")
    return b.done()


def _accepted(b: _Builder, ev: AuthorizationAccepted) -> Step:
    auth = ev.authorization
    if b.state.phase is Phase.AVAILABLE:
        request = AuthorizeRequested(ev.at, ev.session_id, auth.id_token, auth.source)
        _authorize_requested(b, request)
    elif b.state.phase is not Phase.AUTHORIZING:
        return b.done(refused=_busy(b.state))
    elif auth.id_token != b.state.id_token:
        return b.done(refused="the authorisation is for another token")
    b.records.append(SetAuthorization(auth))
    b.go(ev.at, Phase.AUTHORIZED, "Authorized", authorization=auth, authorized_at=ev.at)
    return b.done()


def _rejected(b: _Builder, ev: AuthorizationRejected) -> Step:
    if b.state.phase is not Phase.AUTHORIZING:
        return b.done(refused="no authorisation is pending")
    b.go(ev.at, Phase.REJECTED, "Rejected", ev.reason)
    b.records.append(CloseSession(ev.at, Phase.REJECTED, None, None, ev.reason))
    return b.done()


def _authorization_changed(b: _Builder, ev: AuthorizationChanged) -> Step:
    state = b.state
    if not state.is_open or state.authorization is None:
        return b.done(refused="no authorised session")
    if ev.authorization.id_token != state.id_token:
        return b.done(refused="the authorisation is for another token")
    b.records.append(SetAuthorization(ev.authorization))
    b.update(authorization=ev.authorization)
    return b.done()


def _stop_requested(b: _Builder, ev: StopRequested) -> Step:
    state = b.state
    if not state.is_open or state.phase is Phase.FINISHING:
        return b.done(refused="no charging to stop")
    if ev.reason is StopReason.LOCAL and ev.id_token and ev.id_token != state.id_token:
        return b.done(refused="this is not the card that started the session")
    if state.phase in (Phase.AUTHORIZING, Phase.AUTHORIZED):
        _close(b, ev.at, Phase.COMPLETED, ev.reason, None, "stopped before energy delivery")
        return b.done()
    _stop_energy(b, ev.at, ev.reason)
    return b.done()


def _stop_energy(b: _Builder, at: datetime, reason: StopReason, detail: str = "") -> None:
    """End energy delivery: output off, idle/parking until unplug. A signing meter's
    transaction stays open until the session closes: its signed end (at the unplug)
    is the stop reading, and its time bounds the parking time billed."""
    b.output(False, at)
    b.go(at, Phase.FINISHING, reason.value, detail, stop_reason=reason)


_OCMF_END_REASONS = {StopReason.LOCAL: "L", StopReason.REMOTE: "R",
                     StopReason.POWER_LOSS: "P", StopReason.METER_FAULT: "A",
                     StopReason.CHARGER_FAULT: "A"}


def _end_signed(b: _Builder, reason: StopReason | None) -> None:
    """Ask the signing meter to end its transaction (once)."""
    state = b.state
    if state.meter_tx in ("starting", "running") and state.session_id:
        ocmf_reason = _OCMF_END_REASONS.get(reason, "E") if reason else "E"
        b.actions.append(EndSigned(state.session_id, ocmf_reason))
        b.update(meter_tx="ending")


def _close(
    b: _Builder,
    at: datetime,
    phase: Phase,
    reason: StopReason | None,
    stop_reading: MeterReading | None,
    detail: str = "",
    signed_end: dict[str, Any] | None = None,
) -> None:
    """End the session: final reading, Ended event (with the signing meter's signed end,
    `signed_end`, when there is one), Completed/Faulted. With energy on a
    signing meter, the close waits for the meter's signed end (output off, Finishing)."""
    state = b.state
    reason = state.stop_reason or reason
    if state.output_on:
        b.output(False, at)
    if state.has_energy and state.meter_tx in ("running", "ending"):
        _end_signed(b, reason)
        if state.closing is None:
            b.go(at, Phase.FINISHING, reason.value if reason else phase.value, detail,
                 stop_reason=reason,
                 closing={"phase": phase.value, "reason": reason.value if reason else None,
                          "detail": detail})
        return
    if not state.has_energy:
        _end_signed(b, reason)  # a begin still under way: the meter ends it
    if stop_reading is not None and state.has_energy:
        if state.last_reading is None or stop_reading.timestamp > state.last_reading.timestamp:
            b.records.append(ReadingRecord("stop", stop_reading))
        else:
            stop_reading = state.last_reading
    elif state.has_energy:
        stop_reading = state.last_reading
    if state.has_energy:
        signed = {"signed_meter_value": signed_end} if signed_end else {}
        b.tx(
            "Ended",
            reason.value if reason else phase.value,
            at,
            stopped_reason=reason.value if reason else None,
            **_reading_data(stop_reading),
            **signed,
        )
    b.go(at, phase, reason.value if reason else phase.value, detail,
         stop_reason=reason, last_reading=stop_reading)
    b.records.append(CloseSession(at, phase, reason, stop_reading if state.has_energy else None,
                                  detail))


def _tick(b: _Builder, ev: Tick, rules: Rules) -> Step:
    charger = ev.charger
    if charger is not None:
        b.update(plugged=charger.plugged, charger_errors=0)
    elif ev.charger_error:
        b.update(charger_errors=b.state.charger_errors + 1)
    phase = b.state.phase
    if phase is Phase.AUTHORIZING:
        return b.done()
    if phase is Phase.AUTHORIZED:
        _tick_authorized(b, ev, rules)
    elif phase in METERED_PHASES:
        _tick_metered(b, ev, rules)
    elif phase in ENDED_PHASES:
        _tick_ended(b, ev)
    return b.done()


def _charger_fault(b: _Builder, ev: Tick, rules: Rules) -> str | None:
    """The charger's fault as text, or None while it is healthy."""
    state = b.state
    charger = ev.charger
    if charger is None:
        if state.charger_errors >= rules.max_charger_errors:
            return f"charger not answering: {ev.charger_error}"
        return None
    if charger.fault:
        return charger.fault
    if charger.ev_state in (EvState.E, EvState.F):
        return f"vehicle state {charger.ev_state.value} (control pilot error)"
    off_at = state.output_off_at
    if (
        not state.output_on
        and charger.output_on
        and off_at is not None
        and (ev.at - off_at).total_seconds() >= rules.output_off_timeout_s
    ):
        return f"output still on {rules.output_off_timeout_s:g} s after it was switched off"
    return None


MAX_PLUG_IN_EXTENSIONS = 10  # the wait to plug in lasts at most this many timeouts


def _authorization_kept(b: _Builder, ev: AuthorizationKept, rules: Rules) -> Step:
    """More time to plug in: the connection timeout counts from the driver's touch (in
    memory only: nothing billable changes, so nothing is journaled), up to
    MAX_PLUG_IN_EXTENSIONS timeouts after the authorisation (a connector and a card's
    hold are never reserved without end). A card hold's grace deadline
    (`Authorization.hold_until`) moves too: to `rules.hold_grace_s` after the touch, at
    most MAX_PLUG_IN_EXTENSIONS graces after the session opened; journaled (the
    authorisation is recorded again), as settlement reads it from the journal."""
    state = b.state
    if state.phase is not Phase.AUTHORIZED or state.authorized_at is None:
        return b.done(refused=f"no session waits to be plugged in ({state.phase.value})")
    first = state.since or state.authorized_at
    latest = first + timedelta(seconds=rules.connection_timeout_s * (MAX_PLUG_IN_EXTENSIONS - 1))
    b.update(authorized_at=min(max(state.authorized_at, ev.at), max(latest, state.authorized_at)))
    auth = state.authorization
    if auth is not None and auth.hold_until is not None and rules.hold_grace_s > 0:
        grace = timedelta(seconds=rules.hold_grace_s)
        hold_until = min(max(auth.hold_until, ev.at + grace),
                         max(first + grace * MAX_PLUG_IN_EXTENSIONS, auth.hold_until))
        if hold_until != auth.hold_until:
            extended = replace(auth, hold_until=hold_until)
            b.records.append(SetAuthorization(extended))
            b.update(authorization=extended)
    return b.done()


HOLD_EXPIRED = "no energy within the card hold's grace period; the hold is released"


def _hold_expired(state: SessionState, at: datetime) -> bool:
    """A card hold's grace deadline passed before any energy (terminal.payment.holds)."""
    auth = state.authorization
    return auth is not None and auth.hold_until is not None and at >= auth.hold_until


def _tick_authorized(b: _Builder, ev: Tick, rules: Rules) -> None:
    state = b.state
    assert state.authorized_at is not None
    if (ev.at - state.authorized_at).total_seconds() >= rules.connection_timeout_s and not (
        state.plugged and ev.reading is not None
    ):
        _close(b, ev.at, Phase.COMPLETED, StopReason.TIMEOUT, None, "no vehicle plugged in")
        return
    if _hold_expired(state, ev.at):
        _close(b, ev.at, Phase.COMPLETED, StopReason.TIMEOUT, None, HOLD_EXPIRED)
        return
    if not state.plugged or ev.reading is None or ev.meter_fault:
        return
    if _charger_fault(b, ev, rules):
        return
    if rules.signed_metering:
        if state.meter_tx is None and state.session_id:
            b.actions.append(BeginSigned(state.session_id, state.authorization))
            b.update(meter_tx="starting")
        return
    _start_energy(b, ev.at, ev.reading)


def _start_energy(b: _Builder, at: datetime, reading: MeterReading,
                  signed: dict[str, Any] | None = None) -> None:
    """The start reading (a signing meter's signed begin) is journaled, then the output
    goes on."""
    state = b.state
    b.records.append(ReadingRecord("start", reading))
    b.update(start_reading=reading, last_reading=reading, energy_offered_at=at,
             last_update_at=at)
    extra = {"signed_meter_value": signed} if signed else {}
    b.tx("Started", "EnergyOffered", at, id_token=state.id_token,
         source=state.authorization.source if state.authorization else None,
         **_reading_data(reading), **extra)
    b.go(at, Phase.SUSPENDED_EV, "EnergyOffered")
    b.output(True, at)


def _signed_start(b: _Builder, ev: SignedStart) -> Step:
    state = b.state
    if (state.phase is not Phase.AUTHORIZED or state.meter_tx != "starting"
            or ev.session_id != state.session_id):
        return b.done(refused="no signed begin is pending")
    if ev.reading is None:
        b.update(meter_tx=None)
        _close(b, ev.at, Phase.COMPLETED, StopReason.METER_FAULT, None,
               f"the meter did not sign the start: {ev.problem or 'no answer'}; "
               "no energy delivered")
        return b.done()
    if not state.plugged:  # unplugged while the meter signed: no energy, its end asked
        _close(b, ev.at, Phase.COMPLETED, StopReason.EV_DISCONNECTED, None,
               "the vehicle was unplugged while the meter signed the start; no energy "
               "delivered")
        return b.done()
    b.update(meter_tx="running")
    _start_energy(b, ev.at, ev.reading, ev.signed)
    return b.done()


def _signed_end(b: _Builder, ev: SignedEnd) -> Step:
    """The meter's signed end: the stop reading (none when it could not be signed: then
    the session is not billed by energy), sent to the backend; a close that waited for
    it happens now."""
    state = b.state
    if state.meter_tx != "ending" or ev.session_id != state.session_id or not state.is_open:
        return b.done(refused="no signed end is pending")
    b.update(meter_tx="ended", signed_problem=ev.problem)
    reading = ev.reading
    if ev.signed:
        b.tx("Updated", "SignedDataReceived", ev.at, signed_meter_value=ev.signed,
             **_reading_data(reading))
    if reading is not None:
        b.records.append(ReadingRecord("stop", reading))
        b.update(last_reading=reading)
    closing = state.closing
    if closing is not None:
        b.update(closing=None)
        reason = StopReason(closing["reason"]) if closing["reason"] else None
        _close(b, ev.at, Phase(closing["phase"]), reason, None, closing["detail"], ev.signed)
    return b.done()


def _journal_sample(b: _Builder, ev: Tick, rules: Rules) -> None:
    reading = ev.reading
    last = b.state.last_reading
    if reading is None or (last is not None and reading.timestamp <= last.timestamp):
        return
    due = last is None or (
        (reading.timestamp - last.timestamp).total_seconds() >= rules.checkpoint_interval_s
    )
    if due:
        b.records.append(ReadingRecord("sample", reading))
        b.update(last_reading=reading)
    updated = b.state.last_update_at
    if updated is None or (ev.at - updated).total_seconds() >= rules.meter_value_interval_s:
        cost = {"cost_so_far": str(ev.cost_so_far)} if ev.cost_so_far is not None else {}
        b.tx("Updated", "MeterValuePeriodic", ev.at, **_reading_data(reading), **cost)
        b.update(last_update_at=ev.at)


def _tick_metered(b: _Builder, ev: Tick, rules: Rules) -> None:
    state = b.state
    if state.closing is not None:
        return  # the close waits for the meter's signed end
    if ev.meter_fault:
        _close(b, ev.at, Phase.FAULTED, StopReason.METER_FAULT, None,
               f"meter: {ev.meter_fault}; billed to the last good reading")
        return
    if fault := _charger_fault(b, ev, rules):
        _close(b, ev.at, Phase.FAULTED, StopReason.CHARGER_FAULT, ev.reading, fault)
        return
    _journal_sample(b, ev, rules)
    if ev.charger is not None and not ev.charger.plugged:
        _close(b, ev.at, Phase.COMPLETED, StopReason.EV_DISCONNECTED, ev.reading)
        return
    auth = state.authorization
    if (
        auth is not None
        and auth.cost_cap is not None
        and ev.projected_cost is not None
        and ev.projected_cost >= auth.cost_cap
    ):
        if state.phase is Phase.FINISHING:
            _close(b, ev.at, Phase.COMPLETED, StopReason.COST_LIMIT, ev.reading,
                   "authorised amount reached while parked")
        else:
            _stop_energy(b, ev.at, StopReason.COST_LIMIT)
        return
    if state.phase is Phase.FINISHING:
        return
    if (
        auth is not None
        and auth.energy_cap_wh is not None
        and ev.projected_energy_wh is not None
        and ev.projected_energy_wh >= auth.energy_cap_wh
    ):
        _stop_energy(b, ev.at, StopReason.ENERGY_LIMIT)
        return
    _energy_phase(b, ev, rules)


def _energy_phase(b: _Builder, ev: Tick, rules: Rules) -> None:
    """Charging / SuspendedEV / SuspendedEVSE from what the charger and meter say."""
    charger = ev.charger
    if charger is None or ev.reading is None:  # a failed poll tells nothing new
        return
    state = b.state
    power = ev.reading.power_w or Decimal(0)
    if not charger.output_on:
        b.go(ev.at, Phase.SUSPENDED_EVSE, "ChargingStateChanged",
             "the power stage is not delivering")
    elif power > rules.charging_threshold_w:
        b.go(ev.at, Phase.CHARGING, "ChargingStateChanged", ev_paused_since=None, ever_charged=True)
        return
    else:
        b.go(ev.at, Phase.SUSPENDED_EV, "ChargingStateChanged")
    state = b.state
    if not state.ever_charged:
        if _hold_expired(state, ev.at):
            _stop_energy(b, ev.at, StopReason.TIMEOUT, HOLD_EXPIRED)
            return
        offered = state.energy_offered_at or ev.at
        if (ev.at - offered).total_seconds() >= rules.ev_power_timeout_s:
            _stop_energy(b, ev.at, StopReason.TIMEOUT, "the vehicle drew no power")
        return
    if charger.ev_state is EvState.B and charger.output_on:
        paused = state.ev_paused_since or ev.at
        b.update(ev_paused_since=paused)
        if (ev.at - paused).total_seconds() >= rules.ev_finished_after_s:
            _stop_energy(b, ev.at, StopReason.EV_FULL, "the vehicle ended charging")
    else:
        b.update(ev_paused_since=None)


def _tick_ended(b: _Builder, ev: Tick) -> None:
    state = b.state
    charger = ev.charger
    if state.phase is not Phase.REJECTED:
        if charger is None or charger.plugged or charger.output_on or charger.fault:
            return
        if state.phase is Phase.FAULTED and ev.meter_fault:
            return
    b.go(ev.at, Phase.AVAILABLE, "Idle")
    b.state = _connector_only(b.state)


def _recover_signed(b: _Builder, ev: Recover) -> Step:
    """A session on a signing meter never resumes after a restart: the meter's
    transaction is ended (reason P, power failure) and the session billed from its
    signed begin and end only."""
    state = b.state
    if state.meter_tx == "ending":  # the end asked before the restart: ask again
        b.update(meter_tx="running")
    b.output(False, ev.at)
    _close(b, ev.at, Phase.COMPLETED, StopReason.POWER_LOSS, None,
           "closed after restart with the meter's signed end")
    return b.done()


def _recover(b: _Builder, ev: Recover) -> Step:
    state = b.state
    if not state.is_open:
        return b.done(refused="no open session to recover")
    if state.phase is Phase.AUTHORIZING:
        _close(b, ev.at, Phase.COMPLETED, StopReason.POWER_LOSS, None,
               "authorisation interrupted by a restart")
        return b.done()
    if state.meter_tx == "starting":
        _close(b, ev.at, Phase.COMPLETED, StopReason.POWER_LOSS, None,
               "the meter's signed begin was interrupted by a restart; no energy delivered")
        return b.done()
    if not state.has_energy:
        if not ev.resume:
            _close(b, ev.at, Phase.COMPLETED, StopReason.POWER_LOSS, None,
                   "restart before energy delivery")
        return b.done()
    if state.meter_tx is not None:
        return _recover_signed(b, ev)
    if ev.reading is None:
        phase = Phase.FAULTED if ev.meter_fault else Phase.COMPLETED
        detail = f"meter unreadable after restart ({ev.meter_fault or 'no reading'}); "
        _close(b, ev.at, phase, StopReason.POWER_LOSS, None,
               detail + "billed to the last journaled reading")
        return b.done()
    if not ev.resume:
        _close(b, ev.at, Phase.COMPLETED, StopReason.POWER_LOSS, ev.reading,
               "closed after restart with the meter's counter")
        return b.done()
    b.records.append(ReadingRecord("resume", ev.reading))
    b.update(last_reading=ev.reading)
    b.tx("Updated", "ResumedAfterRestart", ev.at, **_reading_data(ev.reading))
    if state.phase is Phase.FINISHING:
        b.output(False, ev.at)
        return b.done()
    b.go(ev.at, Phase.SUSPENDED_EV, "ResumedAfterRestart", ev_paused_since=None)
    b.output(True, ev.at)
    return b.done()
