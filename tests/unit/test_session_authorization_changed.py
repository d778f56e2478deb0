"""AuthorizationChanged: the running session's authorisation replaced for the same token
(a token accepted offline confirmed, or rejected and held to MaxEnergyOnInvalidId)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from terminal.session import (
    Authorization,
    AuthorizationChanged,
    AuthorizeRequested,
    CloseSession,
    Phase,
    SetAuthorization,
    SetOutput,
    StopReason,
    StopRequested,
    Transition,
    state_from_json,
    state_to_json,
)
from terminal.store import Store
from tests.unit.session_helpers import T0, Driver


def at(t_s: float):
    return T0 + timedelta(seconds=t_s)


def offline_session() -> Driver:
    """TOKEN1 accepted offline (recheck, no caps), energy offered at t=1, charging at t=2
    from a 10 kWh meter start."""
    d = Driver()
    d.authorize(0, recheck=True)
    d.tick(1, 10_000, 0)
    d.tick(2, 10_000, 50_000, projected_energy_wh=Decimal(0))
    assert d.state.phase is Phase.CHARGING
    return d


def changed(d: Driver, t_s: float, **changes: object) -> AuthorizationChanged:
    assert d.state.authorization is not None
    return AuthorizationChanged(at(t_s), replace(d.state.authorization, **changes))


def test_a_confirmation_for_the_same_token_replaces_the_authorisation():
    d = offline_session()
    before = d.state
    event = changed(d, 3, recheck=False, cost_cap=Decimal("40.00"))
    result = d.send(event)
    assert result.refused is None
    assert result.records == (SetAuthorization(event.authorization),)
    assert result.actions == ()
    assert d.state.authorization == event.authorization
    assert d.state.authorization.recheck is False
    assert d.state.authorization.cost_cap == Decimal("40.00")
    # nothing else moves: same phase, same session, no transition, no tx event
    assert replace(d.state, authorization=before.authorization) == before


def test_a_change_before_energy_is_accepted_too():
    d = Driver()
    d.authorize(0, recheck=True)
    assert d.state.phase is Phase.AUTHORIZED
    result = d.send(changed(d, 1, recheck=False))
    assert result.refused is None and d.state.authorization.recheck is False
    assert d.state.phase is Phase.AUTHORIZED


def test_a_change_for_another_token_is_refused():
    d = offline_session()
    before = d.state
    other = Authorization(id_token="SOMEONE-ELSE", source="local",
                          energy_cap_wh=Decimal(1))
    result = d.send(AuthorizationChanged(at(3), other))
    assert result.refused == "the authorisation is for another token"
    assert result.records == () and result.actions == ()
    assert d.state == before


@pytest.mark.parametrize("situation", ["available", "authorizing", "completed"])
def test_a_change_without_an_authorised_session_is_refused(situation):
    d = Driver()
    if situation == "authorizing":  # a session, but nothing authorised yet
        d.send(AuthorizeRequested(at(0), "S-1", "TOKEN1", "rfid"))
    elif situation == "completed":
        d.authorize(0)
        d.send(StopRequested(at(1), StopReason.LOCAL, "TOKEN1"))
        assert d.state.phase is Phase.COMPLETED
    before = d.state
    auth = Authorization(id_token="TOKEN1", source="local", energy_cap_wh=Decimal(1))
    result = d.send(AuthorizationChanged(at(5), auth))
    assert result.refused == "no authorised session"
    assert result.records == () and result.actions == ()
    assert d.state == before


def test_a_lowered_energy_cap_stops_at_the_next_tick_that_reaches_it():
    d = offline_session()
    d.send(changed(d, 3, energy_cap_wh=Decimal(1_000)))
    below = d.tick(4, 10_900, 50_000, projected_energy_wh=Decimal(999))
    assert d.state.phase is Phase.CHARGING and below.actions == ()
    reached = d.tick(5, 10_990, 50_000, projected_energy_wh=Decimal(1_000))
    assert reached.actions == (SetOutput(False),)
    assert d.state.phase is Phase.FINISHING
    assert d.state.stop_reason is StopReason.ENERGY_LIMIT
    [transition] = [r for r in reached.records if isinstance(r, Transition)]
    assert (transition.from_phase, transition.to_phase, transition.trigger) == (
        Phase.CHARGING, Phase.FINISHING, "EnergyLimitReached")
    d.tick(6, 10_990, 0, ev="A", output_on=False)
    [close] = d.records(CloseSession)
    assert close.stop_reason is StopReason.ENERGY_LIMIT


def test_a_cap_below_what_was_already_delivered_stops_at_once():
    d = offline_session()
    d.tick(3, 12_000, 50_000, projected_energy_wh=Decimal(2_000))
    d.send(changed(d, 4, energy_cap_wh=Decimal(500)))  # MaxEnergyOnInvalidId
    assert d.state.phase is Phase.CHARGING  # the change itself switches nothing
    d.tick(5, 12_050, 50_000, projected_energy_wh=Decimal(2_050))
    assert d.state.phase is Phase.FINISHING
    assert d.state.stop_reason is StopReason.ENERGY_LIMIT


def test_without_the_change_the_same_ticks_keep_charging():
    d = offline_session()
    d.tick(4, 10_900, 50_000, projected_energy_wh=Decimal(999))
    d.tick(5, 10_990, 50_000, projected_energy_wh=Decimal(1_000))
    assert d.state.phase is Phase.CHARGING and d.state.stop_reason is None


def test_the_new_authorisation_is_journaled_and_survives_a_restart(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    d = Driver()
    for result in (d.authorize(0, recheck=True), d.tick(1, 10_000, 0)):
        store.commit(result.records, state_to_json(result.state), session_id="S-1", at=T0)
    event = changed(d, 2, recheck=False, energy_cap_wh=Decimal(750))
    result = d.send(event)
    store.commit(result.records, state_to_json(result.state), session_id="S-1", at=at(2))
    row = store.session("S-1")
    assert Authorization.from_json(json.loads(row["authorization_json"])) == (
        event.authorization)
    restored = state_from_json(store.connector_state())
    assert restored.authorization == event.authorization
    store.close()
