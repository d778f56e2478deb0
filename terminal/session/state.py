"""The state of one connector and its session, the result of a step, and their JSON.

Provides `SessionState` (frozen; what the machine knows between two events), `Step`
(the new state, the records to journal, the actions to take, or why the event was
refused) and `state_to_json` / `state_from_json` (the state is journaled with every
step and read back at start).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drivers.meter.reading import MeterReading
from terminal.session.model import OPEN_PHASES, Authorization, Phase, StopReason
from terminal.session.records import Action, Record


@dataclass(frozen=True)
class SessionState:
    phase: Phase = Phase.AVAILABLE
    since: datetime | None = None
    session_id: str | None = None
    id_token: str | None = None
    authorization: Authorization | None = None
    authorized_at: datetime | None = None  # or the driver's last AuthorizationKept
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
    # signing meter (Rules.signed_metering): the meter's transaction: None, "starting",
    # "running", "ending", "ended"; why the session cannot be billed by energy; the close
    # waiting for the signed end ({"phase", "reason", "detail"})
    meter_tx: str | None = None
    signed_problem: str | None = None
    closing: dict[str, Any] | None = None

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
