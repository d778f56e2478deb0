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

The modules, each with one job:
- model: `Phase` and its groups, `StopReason`, `Authorization`, `Rules`;
- events: what happens (`Tick`, `AuthorizeRequested`, `StopRequested`, ...; `Event`);
- records: what a step journals (`Record`) and does (`SetOutput`, `Action`);
- state: `SessionState`, `Step`, and the state's JSON for the journal;
- machine: `step`, the transitions.
"""

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
from terminal.session.machine import step
from terminal.session.model import (
    ENDED_PHASES,
    ENERGY_PHASES,
    METERED_PHASES,
    OPEN_PHASES,
    Authorization,
    Phase,
    Rules,
    StopReason,
)
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
from terminal.session.state import SessionState, Step, state_from_json, state_to_json

__all__ = [
    "ENDED_PHASES",
    "ENERGY_PHASES",
    "METERED_PHASES",
    "OPEN_PHASES",
    "Action",
    "Authorization",
    "AuthorizationAccepted",
    "AuthorizationChanged",
    "AuthorizationKept",
    "AuthorizationRejected",
    "AuthorizeRequested",
    "BeginSigned",
    "CloseSession",
    "EndSigned",
    "Event",
    "OpenSession",
    "Phase",
    "ReadingRecord",
    "Record",
    "Recover",
    "Rules",
    "SessionState",
    "SetAuthorization",
    "SetOutput",
    "SignedEnd",
    "SignedStart",
    "Step",
    "StopReason",
    "StopRequested",
    "Tick",
    "Transition",
    "TxEvent",
    "state_from_json",
    "state_to_json",
    "step",
]
