"""What happens to a session: the events `step` applies.

Provides the events `AuthorizeRequested`, `AuthorizationAccepted`,
`AuthorizationRejected`, `StopRequested`, `Tick` (one poll of the hardware),
`AuthorizationChanged`, `Recover` (daemon start with an open session), `SignedStart`
and `SignedEnd` (a signing meter's answers), `AuthorizationKept` (the driver asks for
more time to plug in), and `Event`,
their union. Times and ids arrive in the events: the machine reads no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from drivers.charger import ChargerStatus
from drivers.meter.reading import MeterReading
from terminal.session.model import Authorization, StopReason


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


@dataclass(frozen=True)
class SignedStart:
    """The signing meter's answer to `BeginSigned`: `reading` is the signed begin value
    as a reading (None when the meter did not sign, or the document failed its checks:
    `problem` says why); `signed` the signedMeterValue for the backend."""

    at: datetime
    session_id: str
    reading: MeterReading | None
    signed: dict[str, Any] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class SignedEnd:
    """The signing meter's answer to `EndSigned`: `reading` the signed end value (None
    when the end could not be signed); `problem`: why the session cannot be billed by
    energy (no end, bad signature, pagination gap, error flag), None when it can."""

    at: datetime
    session_id: str
    reading: MeterReading | None
    signed: dict[str, Any] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class AuthorizationKept:
    """The driver touched the screen while the session waits to be plugged in: the
    connection timeout (`Rules.connection_timeout_s`) counts from `at` again (EN 301 549
    / WCAG 2.2.1: a time limit the user can extend)."""

    at: datetime


Event = (
    AuthorizeRequested
    | AuthorizationAccepted
    | AuthorizationRejected
    | StopRequested
    | AuthorizationChanged
    | Tick
    | Recover
    | SignedStart
    | SignedEnd
    | AuthorizationKept
)
