"""The session state machine, event by event: every phase, stop reason and timeout."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from terminal.session import (
    AuthorizationRejected,
    AuthorizeRequested,
    CloseSession,
    Phase,
    ReadingRecord,
    Recover,
    SetOutput,
    StopReason,
    StopRequested,
    Transition,
    TxEvent,
    state_from_json,
    state_to_json,
)
from tests.unit.session_helpers import RULES, T0, Driver, charger, reading


def at(t_s: float):
    return T0 + timedelta(seconds=t_s)


def charging_session(**auth: object) -> Driver:
    """Authorised, plugged, energy offered at t=1 and charging from t=2 (10 kWh start)."""
    d = Driver()
    d.authorize(0, **auth)
    d.tick(1, 10_000, 0)
    d.tick(2, 10_000, 50_000)
    assert d.state.phase is Phase.CHARGING
    return d


def test_full_session_from_authorisation_to_available():
    d = Driver()
    first = d.authorize(0)
    assert d.state.phase is Phase.AUTHORIZED
    assert [type(r).__name__ for r in first.records] == [
        "OpenSession", "Transition", "SetAuthorization", "Transition"]
    d.tick(0.5, 10_000, 0, ev="A")  # not plugged yet
    assert d.state.phase is Phase.AUTHORIZED
    offered = d.tick(1, 10_000, 0)
    assert d.state.phase is Phase.SUSPENDED_EV
    assert offered.actions == (SetOutput(True),)
    assert ReadingRecord("start", reading(1, 10_000, 0)) in offered.records
    started = [r for r in offered.records if isinstance(r, TxEvent)]
    assert [(e.event_type, e.seq_no) for e in started] == [("Started", 0)]
    d.tick(2, 10_000, 50_000)
    assert d.state.phase is Phase.CHARGING
    d.tick(62, 10_833.333, 50_000)
    d.tick(63, 10_850, 0, ev="B")  # the EV stops asking: paused, not yet full
    assert d.state.phase is Phase.SUSPENDED_EV
    d.tick(100, 10_850, 0, ev="B")
    assert d.state.phase is Phase.SUSPENDED_EV
    full = d.tick(123, 10_850, 0, ev="B")
    assert d.state.phase is Phase.FINISHING
    assert d.state.stop_reason is StopReason.EV_FULL
    assert full.actions == (SetOutput(False),)
    d.tick(200, 10_850, 0, ev="B", output_on=False)
    done = d.tick(300, 10_850, 0, ev="A", output_on=False)
    assert d.state.phase is Phase.COMPLETED
    close = [r for r in done.records if isinstance(r, CloseSession)]
    assert close == [CloseSession(at(300), Phase.COMPLETED, StopReason.EV_FULL,
                                  reading(300, 10_850, 0), "")]
    ended = [r for r in done.records if isinstance(r, TxEvent) and r.event_type == "Ended"]
    assert ended[0].data["stopped_reason"] == "StoppedByEV"
    d.tick(301, 10_850, 0, ev="A", output_on=False)
    assert d.state.phase is Phase.AVAILABLE
    seqs = [e.seq_no for e in d.records(TxEvent)]
    assert seqs == list(range(len(seqs)))  # gap-free per session
    kinds = [r.kind for r in d.records(ReadingRecord)]
    assert kinds[0] == "start" and kinds.count("start") == 1
    assert all(k == "sample" for k in kinds[1:])


def test_every_poll_is_journaled_and_updates_are_periodic():
    d = charging_session()
    for i in range(3, 200):
        d.tick(i, 10_000 + 14 * i, 50_000)
    samples = [r for r in d.records(ReadingRecord) if r.kind == "sample"]
    assert len(samples) == 198  # t=2 .. t=199, one per poll (t=1 is the start)
    updates = [e for e in d.records(TxEvent) if e.event_type == "Updated"]
    assert [u.at for u in updates] == [at(61), at(121), at(181)]
    assert updates[0].data["meter_wh"] == str(10_000 + 14 * 61)


def test_checkpoint_interval_journals_less_often():
    d = Driver(rules=replace(RULES, checkpoint_interval_s=10))
    d.authorize(0)
    d.tick(1, 10_000, 0)
    for i in range(2, 42):
        d.tick(i, 10_000 + 10 * i, 50_000)
    samples = [r.reading.timestamp for r in d.records(ReadingRecord) if r.kind == "sample"]
    assert samples == [at(11), at(21), at(31), at(41)]


@pytest.mark.parametrize(
    ("reason", "token", "expected"),
    [
        (StopReason.LOCAL, "TOKEN1", StopReason.LOCAL),
        (StopReason.LOCAL, None, StopReason.LOCAL),
        (StopReason.REMOTE, None, StopReason.REMOTE),
        (StopReason.TECHNICIAN, None, StopReason.TECHNICIAN),
    ],
    ids=["same-card", "stop-button", "remote", "technician"],
)
def test_stop_requests_end_delivery_then_idle_until_unplug(reason, token, expected):
    d = charging_session()
    stop = d.send(StopRequested(at(10), reason, token))
    assert stop.actions == (SetOutput(False),)
    assert d.state.phase is Phase.FINISHING
    assert d.state.stop_reason is expected
    d.tick(11, 10_100, 0, ev="B", output_on=False)
    d.tick(500, 10_100, 0, ev="A", output_on=False)
    assert d.state.phase is Phase.COMPLETED
    assert d.records(CloseSession)[0].stop_reason is expected


def test_another_card_cannot_stop_the_session():
    d = charging_session()
    refused = d.send(StopRequested(at(10), StopReason.LOCAL, "SOMEONE-ELSE"))
    assert refused.refused == "this is not the card that started the session"
    assert d.state.phase is Phase.CHARGING and not refused.records


def test_cost_cap_stops_delivery_before_it_is_passed():
    d = charging_session(cost_cap=Decimal("20.00"))
    d.tick(3, 10_100, 50_000, projected_cost=Decimal("19.99"))
    assert d.state.phase is Phase.CHARGING
    capped = d.tick(4, 10_200, 50_000, projected_cost=Decimal("20.00"))
    assert d.state.phase is Phase.FINISHING
    assert d.state.stop_reason is StopReason.COST_LIMIT
    assert capped.actions == (SetOutput(False),)


def test_cost_cap_reached_by_idle_fee_ends_the_session_while_parked():
    d = charging_session(cost_cap=Decimal("20.00"))
    d.send(StopRequested(at(10), StopReason.LOCAL))
    d.tick(100, 10_500, 0, ev="B", output_on=False, projected_cost=Decimal("19.00"))
    assert d.state.phase is Phase.FINISHING
    d.tick(900, 10_500, 0, ev="B", output_on=False, projected_cost=Decimal("20.10"))
    assert d.state.phase is Phase.COMPLETED
    assert d.records(CloseSession)[0].stop_reason is StopReason.LOCAL
    refused = d.authorize(901)  # the parked car still blocks the connector
    assert refused.refused == "the previous vehicle is still plugged in"


def test_energy_cap():
    d = charging_session(energy_cap_wh=Decimal(5000))
    d.tick(3, 14_000, 50_000, projected_energy_wh=Decimal(4_999))
    assert d.state.phase is Phase.CHARGING
    d.tick(4, 14_900, 50_000, projected_energy_wh=Decimal(5_014))
    assert d.state.stop_reason is StopReason.ENERGY_LIMIT


def test_never_plugged_times_out():
    d = Driver()
    d.authorize(0)
    d.tick(119, 10_000, 0, ev="A")
    assert d.state.phase is Phase.AUTHORIZED
    d.tick(120, 10_000, 0, ev="A")
    assert d.state.phase is Phase.COMPLETED
    close = d.records(CloseSession)[0]
    assert close.stop_reason is StopReason.TIMEOUT and close.stop_reading is None
    assert not d.records(ReadingRecord) and not d.records(TxEvent)
    d.tick(121, 10_000, 0, ev="A")
    assert d.state.phase is Phase.AVAILABLE


def test_ev_never_draws_power_times_out():
    d = Driver()
    d.authorize(0)
    d.tick(1, 10_000, 0)
    d.tick(300, 10_000, 0)
    assert d.state.phase is Phase.SUSPENDED_EV
    d.tick(301, 10_000, 0)
    assert d.state.phase is Phase.FINISHING
    assert d.state.stop_reason is StopReason.TIMEOUT


def test_meter_fault_ends_with_the_last_good_reading():
    d = charging_session()
    d.tick(3, 10_100, 50_000)
    d.tick(4, None)  # a failed poll: nothing happens yet
    assert d.state.phase is Phase.CHARGING
    fault = d.tick(7, None, meter_fault="communication: 3 consecutive failed polls")
    assert d.state.phase is Phase.FAULTED
    assert fault.actions == (SetOutput(False),)
    close = next(r for r in fault.records if isinstance(r, CloseSession))
    assert close.stop_reason is StopReason.METER_FAULT
    assert close.stop_reading == reading(3, 10_100, 50_000)  # never a made-up value
    assert not [r for r in fault.records if isinstance(r, ReadingRecord)]
    d.tick(8, None, ev="A", output_on=False, meter_fault="communication: still")
    assert d.state.phase is Phase.FAULTED  # out of order while the fault lasts
    d.tick(9, 10_200, 0, ev="A", output_on=False)
    assert d.state.phase is Phase.AVAILABLE


@pytest.mark.parametrize(
    ("status_kwargs", "ticks", "detail"),
    [
        ({"fault": "power stage over-temperature"}, 1, "power stage over-temperature"),
        ({"ev": "F"}, 1, "vehicle state F (control pilot error)"),
    ],
    ids=["charger-fault", "pilot-error"],
)
def test_charger_fault_ends_the_session(status_kwargs, ticks, detail):
    d = charging_session()
    status = charger(**{"output_on": True, **status_kwargs})
    result = d.tick(3, 10_100, 50_000, charger_status=status)
    assert d.state.phase is Phase.FAULTED
    close = next(r for r in result.records if isinstance(r, CloseSession))
    assert (close.stop_reason, close.detail) == (StopReason.CHARGER_FAULT, detail)
    assert close.stop_reading == reading(3, 10_100, 50_000)


def test_charger_not_answering_three_times_is_a_fault():
    d = charging_session()
    for t in (3, 4):
        d.tick(t, 10_100, 50_000, charger_status=None, charger_error="timeout")
        assert d.state.phase is Phase.CHARGING
    d.tick(5, 10_150, 50_000, charger_status=None, charger_error="timeout")
    assert d.state.phase is Phase.FAULTED
    assert d.records(CloseSession)[0].detail == "charger not answering: timeout"


def test_output_not_confirmed_off_is_a_charger_fault():
    d = charging_session()
    d.send(StopRequested(at(10), StopReason.LOCAL))
    d.tick(11, 10_200, 50_000, output_on=True)  # still on after 1 s: allowed
    assert d.state.phase is Phase.FINISHING
    d.tick(12, 10_230, 50_000, output_on=True)
    assert d.state.phase is Phase.FAULTED
    close = d.records(CloseSession)[0]
    assert close.stop_reason is StopReason.LOCAL  # why charging ended stays recorded
    assert close.detail == "output still on 2 s after it was switched off"


def test_unplugged_while_charging():
    d = charging_session()
    d.tick(5, 10_300, 0, ev="A", output_on=False)
    assert d.state.phase is Phase.COMPLETED
    assert d.records(CloseSession)[0].stop_reason is StopReason.EV_DISCONNECTED


def test_suspended_evse_when_the_power_stage_does_not_deliver():
    d = charging_session()
    d.tick(3, 10_100, 0, output_on=False, charger_status=charger("C", False, commanded=True))
    assert d.state.phase is Phase.SUSPENDED_EVSE
    d.tick(4, 10_100, 40_000, output_on=True)
    assert d.state.phase is Phase.CHARGING


def test_rejected_authorisation_and_back_to_available():
    d = Driver()
    d.send(AuthorizeRequested(at(0), "S-9", "CARD9", "rfid"))
    assert d.state.phase is Phase.AUTHORIZING
    d.send(AuthorizationRejected(at(1), "card declined by your bank"))
    assert d.state.phase is Phase.REJECTED
    close = d.records(CloseSession)[0]
    assert close.phase is Phase.REJECTED and close.detail == "card declined by your bank"
    d.tick(2, 10_000)
    assert d.state.phase is Phase.AVAILABLE


def test_a_second_authorisation_is_refused_while_busy():
    d = charging_session()
    refused = d.authorize(5)
    assert refused.refused == "a session is already charging"
    assert d.state.session_id == "S-1"


def test_recover_resumes_a_charging_session():
    d = charging_session()
    d.tick(3, 10_100, 50_000)
    resumed = d.send(Recover(at(100), resume=True, reading=reading(100, 11_400, 50_000)))
    assert d.state.phase is Phase.SUSPENDED_EV
    assert resumed.actions == (SetOutput(True),)
    assert ReadingRecord("resume", reading(100, 11_400, 50_000)) in resumed.records
    d.tick(101, 11_414, 50_000)
    assert d.state.phase is Phase.CHARGING


def test_recover_closes_with_the_meters_counter_when_it_cannot_resume():
    d = charging_session()
    d.tick(3, 10_100, 50_000)
    closed = d.send(Recover(at(100), resume=False, reading=reading(100, 11_400, 0)))
    assert d.state.phase is Phase.COMPLETED
    close = next(r for r in closed.records if isinstance(r, CloseSession))
    assert close.stop_reason is StopReason.POWER_LOSS
    assert close.stop_reading == reading(100, 11_400, 0)  # the downtime's energy is billed
    assert ReadingRecord("stop", reading(100, 11_400, 0)) in closed.records


def test_recover_without_a_meter_reading_bills_to_the_last_journaled_one():
    d = charging_session()
    d.tick(3, 10_100, 50_000)
    d.send(Recover(at(100), resume=True, reading=None, meter_fault="communication: down"))
    assert d.state.phase is Phase.FAULTED
    close = d.records(CloseSession)[0]
    assert close.stop_reason is StopReason.POWER_LOSS
    assert close.stop_reading == reading(3, 10_100, 50_000)


def test_recover_before_energy():
    d = Driver()
    d.authorize(0)
    d.send(Recover(at(30), resume=True, reading=reading(30, 10_000)))
    assert d.state.phase is Phase.AUTHORIZED  # still waiting for the plug
    d.send(Recover(at(40), resume=False, reading=reading(40, 10_000)))
    assert d.state.phase is Phase.COMPLETED
    assert d.records(CloseSession)[0].stop_reason is StopReason.POWER_LOSS


def test_state_survives_json_round_trip():
    d = charging_session(cost_cap=Decimal("25.50"))
    d.tick(3, 10_100, 50_000)
    assert state_from_json(state_to_json(d.state)) == d.state
    assert state_from_json(state_to_json(Driver().state)) == Driver().state


def test_transitions_name_their_trigger():
    d = charging_session()
    d.send(StopRequested(at(10), StopReason.REMOTE))
    last = d.records(Transition)[-1]
    assert (last.from_phase, last.to_phase, last.trigger) == (
        Phase.CHARGING, Phase.FINISHING, "Remote")


def test_docs_list_exactly_the_stop_reasons():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "session.md").read_text()
    section = doc.split("## Stop reasons", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    assert sorted(documented) == sorted(reason.value for reason in StopReason)
    assert len(documented) == len(set(documented))
