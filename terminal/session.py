"""The charging session state machine of one connector: pure (state, event) -> step.

`step(state, event, rules)` returns a `Step`: the new state, the records to journal
(one SQLite transaction) and the actions to take. The daemon journals the records,
then acts, in that order, so every billing-relevant fact is on disk before the charger
is switched or the driver is told. Nothing here does I/O, reads a clock or draws a
random number: times and ids arrive in the events.

Phases (OCPP connector/transaction names):

    Available -> Authorizing -> Authorized -> SuspendedEV <-> Charging <-> SuspendedEVSE
                      |             |              \\___________|____________/
                   Rejected     (timeout/stop)                  v
                                                           Finishing -> Completed
    any phase with energy -> Faulted (meter or charger fault)

A session has energy once its start reading is journaled (then the output is switched
on). It ends in Completed, Faulted or Rejected with a stop reason; the connector then
returns to Available when the EV is unplugged, the output is confirmed off and no
fault remains. See docs/session.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from drivers.charger import ChargerStatus, EvState
from drivers.meter.reading import MeterReading


class Phase(enum.StrEnum):
    AVAILABLE = "Available"
    AUTHORIZING = "Authorizing"
    AUTHORIZED = "Authorized"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    COMPLETED = "Completed"
    FAULTED = "Faulted"
    REJECTED = "Rejected"


ENERGY_PHASES = frozenset({Phase.CHARGING, Phase.SUSPENDED_EV, Phase.SUSPENDED_EVSE})
METERED_PHASES = ENERGY_PHASES | {Phase.FINISHING}
OPEN_PHASES = METERED_PHASES | {Phase.AUTHORIZING, Phase.AUTHORIZED}
ENDED_PHASES = frozenset({Phase.COMPLETED, Phase.FAULTED, Phase.REJECTED})


class StopReason(enum.StrEnum):
    """Why energy delivery (and with it the session) ended; OCPP 2.x names where one
    exists, our own for faults the operator must tell apart."""

    LOCAL = "Local"  # the driver: same card tapped again, or the stop button
    REMOTE = "Remote"  # the backend / app
    COST_LIMIT = "CostLimitReached"  # pre-authorised amount or cost cap
    ENERGY_LIMIT = "EnergyLimitReached"
    EV_FULL = "StoppedByEV"  # the EV ended charging (battery full)
    EV_DISCONNECTED = "EVDisconnected"  # unplugged while energy was offered
    METER_FAULT = "MeterFault"
    CHARGER_FAULT = "ChargerFault"
    POWER_LOSS = "PowerLoss"  # the terminal was down and could not resume
    TECHNICIAN = "Technician"
    TIMEOUT = "Timeout"  # never plugged in, or the EV never drew power


@dataclass(frozen=True)
class Authorization:
    """What an accepted authorisation allows. id_token is never a card number (cards
    give a token). Caps are incl. VAT in the tariff's currency / Wh; None = no cap."""

    id_token: str
    source: str  # rfid, card, app, remote, local
    valid_until: datetime | None = None
    cost_cap: Decimal | None = None
    energy_cap_wh: Decimal | None = None
    payment_reference: str | None = None
    card_scheme: str | None = None
    card_last4: str | None = None
    tariff_json: str | None = None  # a personal tariff (fleet contract); None = the station's
    recheck: bool = False  # accepted offline although unknown: ask the backend when back

    def valid_at(self, at: datetime) -> bool:
        return self.valid_until is None or at < self.valid_until

    def to_json(self) -> dict[str, Any]:
        return {
            "id_token": self.id_token,
            "source": self.source,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "cost_cap": str(self.cost_cap) if self.cost_cap is not None else None,
            "energy_cap_wh": str(self.energy_cap_wh) if self.energy_cap_wh is not None else None,
            "payment_reference": self.payment_reference,
            "card_scheme": self.card_scheme,
            "card_last4": self.card_last4,
            "tariff_json": self.tariff_json,
            "recheck": self.recheck,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Authorization:
        def dec(key: str) -> Decimal | None:
            return Decimal(data[key]) if data.get(key) is not None else None

        until = data.get("valid_until")
        return cls(
            id_token=data["id_token"],
            source=data["source"],
            valid_until=datetime.fromisoformat(until) if until else None,
            cost_cap=dec("cost_cap"),
            energy_cap_wh=dec("energy_cap_wh"),
            payment_reference=data.get("payment_reference"),
            card_scheme=data.get("card_scheme"),
            card_last4=data.get("card_last4"),
            tariff_json=data.get("tariff_json"),
            recheck=bool(data.get("recheck", False)),
        )


@dataclass(frozen=True)
class Rules:
    """Session timings and thresholds (from [session] and [charger] config)."""

    connection_timeout_s: float = 120.0
    ev_power_timeout_s: float = 300.0
    ev_finished_after_s: float = 60.0
    output_off_timeout_s: float = 2.0
    charging_threshold_w: Decimal = Decimal(100)
    checkpoint_interval_s: float = 0.0
    meter_value_interval_s: float = 60.0
    max_charger_errors: int = 3


# ---- events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizeRequested:
    """A token was presented; the decision is pending (auth runs outside)."""

    at: datetime
    session_id: str
    id_token: str
    source: str


@dataclass(frozen=True)
class AuthorizationAccepted:
    at: datetime
    session_id: str  # used when no session is pending (remote/app start)
    authorization: Authorization


@dataclass(frozen=True)
class AuthorizationRejected:
    at: datetime
    reason: str  # what the driver is told, e.g. "card declined by your bank"


@dataclass(frozen=True)
class StopRequested:
    at: datetime
    reason: StopReason  # LOCAL, REMOTE or TECHNICIAN
    id_token: str | None = None  # LOCAL: must be the token that started the session


@dataclass(frozen=True)
class Tick:
    """One poll of the hardware. reading: the meter snapshot when billable, else None;
    meter_fault: the meter's fault (communication or counter), None when healthy;
    charger: the charger status, None when it could not be read (charger_error says
    why). projected_*: the session's price (incl. VAT) and energy since start as they
    would be once the energy now flowing has been delivered (the daemon computes them
    from the tariff; None outside a session). cost_so_far: the running cost."""

    at: datetime
    reading: MeterReading | None
    meter_fault: str | None
    charger: ChargerStatus | None
    charger_error: str | None = None
    projected_cost: Decimal | None = None
    projected_energy_wh: Decimal | None = None
    cost_so_far: Decimal | None = None


@dataclass(frozen=True)
class AuthorizationChanged:
    """The running session's authorisation changed for the same token: the backend
    confirmed a token accepted offline (recheck cleared), or rejected it (energy cap
    lowered to MaxEnergyOnInvalidId)."""

    at: datetime
    authorization: Authorization


@dataclass(frozen=True)
class Recover:
    """Daemon start with an open session in the journal. resume: the EV is still
    plugged, the authorisation still valid and the charger healthy (otherwise the
    daemon has already switched the output off and confirmed it). reading: a billable
    meter reading taken now (None: the meter could not be read)."""

    at: datetime
    resume: bool
    reading: MeterReading | None
    meter_fault: str | None = None


Event = (
    AuthorizeRequested
    | AuthorizationAccepted
    | AuthorizationRejected
    | StopRequested
    | AuthorizationChanged
    | Tick
    | Recover
)


# ---- records (journaled) and actions --------------------------------------------------


@dataclass(frozen=True)
class OpenSession:
    session_id: str
    at: datetime
    id_token: str
    source: str


@dataclass(frozen=True)
class SetAuthorization:
    authorization: Authorization


@dataclass(frozen=True)
class Transition:
    at: datetime
    from_phase: Phase
    to_phase: Phase
    trigger: str
    detail: str = ""


@dataclass(frozen=True)
class ReadingRecord:
    kind: str  # start, sample, resume, stop
    reading: MeterReading


@dataclass(frozen=True)
class TxEvent:
    """A transaction event for the backend (OCPP TransactionEvent names), to the outbox."""

    event_type: str  # Started, Updated, Ended
    trigger_reason: str
    at: datetime
    seq_no: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CloseSession:
    at: datetime
    phase: Phase
    stop_reason: StopReason | None
    stop_reading: MeterReading | None
    detail: str = ""


Record = OpenSession | SetAuthorization | Transition | ReadingRecord | TxEvent | CloseSession


@dataclass(frozen=True)
class SetOutput:
    on: bool


Action = SetOutput


# ---- state ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionState:
    phase: Phase = Phase.AVAILABLE
    since: datetime | None = None
    session_id: str | None = None
    id_token: str | None = None
    authorization: Authorization | None = None
    authorized_at: datetime | None = None
    start_reading: MeterReading | None = None
    last_reading: MeterReading | None = None  # last journaled reading
    energy_offered_at: datetime | None = None
    ever_charged: bool = False
    ev_paused_since: datetime | None = None
    stop_reason: StopReason | None = None
    output_on: bool = False  # what we command
    output_off_at: datetime | None = None
    seq_no: int = -1  # last TxEvent sequence number sent
    last_update_at: datetime | None = None
    charger_errors: int = 0
    plugged: bool = False

    @property
    def has_energy(self) -> bool:
        return self.start_reading is not None

    @property
    def is_open(self) -> bool:
        return self.phase in OPEN_PHASES


@dataclass(frozen=True)
class Step:
    state: SessionState
    records: tuple[Record, ...] = ()
    actions: tuple[Action, ...] = ()
    refused: str | None = None  # the event did not apply; why (for the requester)


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
    """End energy delivery: output off, idle/parking until unplug."""
    b.output(False, at)
    b.go(at, Phase.FINISHING, reason.value, detail, stop_reason=reason)


def _close(
    b: _Builder,
    at: datetime,
    phase: Phase,
    reason: StopReason | None,
    stop_reading: MeterReading | None,
    detail: str = "",
) -> None:
    """End the session: final reading, Ended event, Completed/Faulted."""
    state = b.state
    reason = state.stop_reason or reason
    if state.output_on:
        b.output(False, at)
    if stop_reading is not None and state.has_energy:
        if state.last_reading is None or stop_reading.timestamp > state.last_reading.timestamp:
            b.records.append(ReadingRecord("stop", stop_reading))
        else:
            stop_reading = state.last_reading
    elif state.has_energy:
        stop_reading = state.last_reading
    if state.has_energy:
        b.tx(
            "Ended",
            reason.value if reason else phase.value,
            at,
            stopped_reason=reason.value if reason else None,
            **_reading_data(stop_reading),
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


def _tick_authorized(b: _Builder, ev: Tick, rules: Rules) -> None:
    state = b.state
    assert state.authorized_at is not None
    if (ev.at - state.authorized_at).total_seconds() >= rules.connection_timeout_s and not (
        state.plugged and ev.reading is not None
    ):
        _close(b, ev.at, Phase.COMPLETED, StopReason.TIMEOUT, None, "no vehicle plugged in")
        return
    if not state.plugged or ev.reading is None or ev.meter_fault:
        return
    if _charger_fault(b, ev, rules):
        return
    b.records.append(ReadingRecord("start", ev.reading))
    b.update(start_reading=ev.reading, last_reading=ev.reading, energy_offered_at=ev.at,
             last_update_at=ev.at)
    b.tx("Started", "EnergyOffered", ev.at, id_token=state.id_token,
         source=state.authorization.source if state.authorization else None,
         **_reading_data(ev.reading))
    b.go(ev.at, Phase.SUSPENDED_EV, "EnergyOffered")
    b.output(True, ev.at)


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


def _recover(b: _Builder, ev: Recover) -> Step:
    state = b.state
    if not state.is_open:
        return b.done(refused="no open session to recover")
    if state.phase is Phase.AUTHORIZING:
        _close(b, ev.at, Phase.COMPLETED, StopReason.POWER_LOSS, None,
               "authorisation interrupted by a restart")
        return b.done()
    if not state.has_energy:
        if not ev.resume:
            _close(b, ev.at, Phase.COMPLETED, StopReason.POWER_LOSS, None,
                   "restart before energy delivery")
        return b.done()
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


# ---- persistence of the state (journaled with every step) -----------------------------

_DATETIME_FIELDS = ("since", "authorized_at", "energy_offered_at", "ev_paused_since",
                    "output_off_at", "last_update_at")
_READING_FIELDS = ("start_reading", "last_reading")


def state_to_json(state: SessionState) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in SessionState.__dataclass_fields__:
        value = getattr(state, name)
        if value is None:
            data[name] = None
        elif name in _DATETIME_FIELDS:
            data[name] = value.isoformat()
        elif name in _READING_FIELDS:
            data[name] = value.to_record()
        elif name == "authorization":
            data[name] = value.to_json()
        elif isinstance(value, enum.Enum):
            data[name] = value.value
        else:
            data[name] = value
    return data


def state_from_json(data: dict[str, Any]) -> SessionState:
    values: dict[str, Any] = {}
    for name in SessionState.__dataclass_fields__:
        if name not in data:
            continue
        value = data[name]
        if value is None:
            values[name] = None
        elif name in _DATETIME_FIELDS:
            values[name] = datetime.fromisoformat(value)
        elif name in _READING_FIELDS:
            values[name] = MeterReading.from_record(value)
        elif name == "authorization":
            values[name] = Authorization.from_json(value)
        elif name == "phase":
            values[name] = Phase(value)
        elif name == "stop_reason":
            values[name] = StopReason(value)
        else:
            values[name] = value
    return SessionState(**values)
