"""What a step journals and does: the records (one SQLite transaction) and the actions.

Provides the records `OpenSession`, `SetAuthorization`, `Transition`, `ReadingRecord`,
`TxEvent` (a transaction event for the backend's outbox) and `CloseSession`, their
union `Record`, and the actions `SetOutput`, `BeginSigned`, `EndSigned` (`Action`).
The daemon journals the records, then acts, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drivers.meter.reading import MeterReading
from terminal.session.model import Authorization, Phase, StopReason


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


@dataclass(frozen=True)
class BeginSigned:
    """Ask the signing meter to begin the session's transaction (the output stays off
    until its signed begin is journaled)."""

    session_id: str
    authorization: Authorization | None


@dataclass(frozen=True)
class EndSigned:
    """Ask the signing meter to end the session's transaction; `reason` is the OCMF end
    reason (E end, L local, R remote, A abort, P power failure)."""

    session_id: str
    reason: str


Action = SetOutput | BeginSigned | EndSigned
