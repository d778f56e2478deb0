"""The session machine on a signing meter: the signed begin before the output goes on,
the signed end as the stop reading, a close that waits for it, failures that never
bring a value of our own, and recovery that ends the meter's transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from terminal.session import (
    BeginSigned,
    CloseSession,
    EndSigned,
    Phase,
    ReadingRecord,
    Recover,
    SetOutput,
    SignedEnd,
    SignedStart,
    StopReason,
    StopRequested,
    TxEvent,
    state_from_json,
    state_to_json,
)
from tests.unit.session_helpers import RULES, T0, Driver, reading

SIGNED_RULES = replace(RULES, signed_metering=True)
BEGIN = {"signedMeterData": "OCMF|begin", "signingMethod": "ECDSA-secp256r1-SHA256",
         "encodingMethod": "OCMF", "publicKey": "3059"}
END = {**BEGIN, "signedMeterData": "OCMF|end"}


def at(t_s: float):
    return T0 + timedelta(seconds=t_s)


def started(driver: Driver | None = None) -> Driver:
    """Authorised, plugged, the begin asked and signed at 1000 Wh; charging at 5 kW."""
    d = driver or Driver(rules=SIGNED_RULES)
    d.authorize()
    step = d.tick(1, 1000)
    assert step.actions == (BeginSigned("S-1", d.state.authorization),)
    assert d.state.phase is Phase.AUTHORIZED and not d.state.output_on
    assert d.state.meter_tx == "starting"
    assert not d.records(ReadingRecord)  # nothing is billed before the signed begin
    assert d.tick(2, 1000).actions == ()  # asked once
    step = d.send(SignedStart(at(3), "S-1", reading(3, 1000), BEGIN))
    assert step.actions == (SetOutput(True),)
    assert d.state.meter_tx == "running" and d.state.phase is Phase.SUSPENDED_EV
    started_event = next(r for r in step.records if isinstance(r, TxEvent))
    assert started_event.data["signed_meter_value"] == BEGIN
    d.tick(10, 1010, 5000, output_on=True)
    return d


def test_the_output_goes_on_only_after_the_signed_begin_is_journaled():
    d = started()
    start = d.records(ReadingRecord)[0]
    assert start.kind == "start" and start.reading.energy_import_wh == 1000


def test_the_signed_end_comes_at_the_unplug_and_bounds_the_parking_time():
    """A stop switches the output off; the meter's transaction stays open through the
    parking time (billed by the meter's signed times) and ends when the session closes."""
    d = started()
    step = d.send(StopRequested(at(20), StopReason.LOCAL, "TOKEN1"))
    assert step.actions == (SetOutput(False),)
    assert d.state.phase is Phase.FINISHING and d.state.meter_tx == "running"
    d.tick(25, 1020, 0, output_on=False)  # parking: still journaled
    step = d.tick(300, 1020, 0, ev="A", output_on=False)  # unplugged
    assert EndSigned("S-1", "L") in step.actions and not d.records(CloseSession)
    d.tick(301, 1020, 0, ev="A", output_on=False)
    step = d.send(SignedEnd(at(302), "S-1", reading(302, 1020), END))
    assert d.state.meter_tx == "ended"
    updated = next(r for r in step.records if isinstance(r, TxEvent))
    assert (updated.trigger_reason, updated.data["signed_meter_value"]) == (
        "SignedDataReceived", END)
    close = d.records(CloseSession)[-1]
    assert close.stop_reason is StopReason.LOCAL
    assert close.stop_reading is not None and close.stop_reading.energy_import_wh == 1020
    assert close.stop_reading.timestamp == at(302)
    kinds = [(r.kind, r.reading.energy_import_wh) for r in d.records(ReadingRecord)]
    assert kinds[0] == ("start", 1000) and kinds[-1] == ("stop", 1020)
    ended = next(r for r in d.records(TxEvent) if r.event_type == "Ended")
    assert ended.data["signed_meter_value"] == END and ended.data["meter_wh"] == "1020"


def test_an_unplug_while_charging_waits_for_the_signed_end_before_closing():
    d = started()
    step = d.tick(20, 1030, 5000, ev="A", output_on=True)
    assert EndSigned("S-1", "E") in step.actions and SetOutput(False) in step.actions
    assert not d.records(CloseSession) and d.state.closing is not None
    assert d.tick(21, 1031, 0, ev="A").records == ()  # waiting
    d.send(SignedEnd(at(22), "S-1", reading(22, 1031), END))
    close = d.records(CloseSession)[-1]
    assert close.stop_reason is StopReason.EV_DISCONNECTED and close.phase is Phase.COMPLETED
    assert close.stop_reading is not None and close.stop_reading.energy_import_wh == 1031


def test_an_end_that_could_not_be_signed_closes_with_the_problem_and_no_signed_value():
    d = started()
    d.tick(20, 1030, 5000, ev="A", output_on=True)
    d.send(SignedEnd(at(30), "S-1", None, None, "the end was not signed: no answer"))
    close = d.records(CloseSession)[-1]
    assert d.state.signed_problem == "the end was not signed: no answer"
    # the last live sample, journaled while charging; never billed by energy (the bill
    # reads the problem from the journal's signed values)
    assert close.stop_reading is not None and close.stop_reading.energy_import_wh == 1030
    assert [r.kind for r in d.records(ReadingRecord)] == ["start", "sample", "sample"]


def test_a_begin_the_meter_did_not_sign_delivers_no_energy():
    d = Driver(rules=SIGNED_RULES)
    d.authorize()
    d.tick(1, 1000)
    step = d.send(SignedStart(at(2), "S-1", None, None, "begin: unreachable"))
    assert SetOutput(True) not in step.actions and not d.records(ReadingRecord)
    close = d.records(CloseSession)[-1]
    assert close.stop_reason is StopReason.METER_FAULT and close.stop_reading is None
    assert "did not sign the start" in close.detail


def test_a_stop_before_the_begin_came_ends_the_meters_transaction():
    d = Driver(rules=SIGNED_RULES)
    d.authorize()
    d.tick(1, 1000)
    step = d.send(StopRequested(at(2), StopReason.LOCAL, "TOKEN1"))
    assert EndSigned("S-1", "L") in step.actions
    assert d.send(SignedStart(at(3), "S-1", reading(3, 1000), BEGIN)).refused
    assert not d.state.output_on


def test_recovery_never_resumes_and_ends_the_meters_transaction_with_power_failure():
    d = started()
    d.state = state_from_json(state_to_json(d.state))  # the journaled state after a crash
    step = d.send(Recover(at(100), resume=True, reading=reading(100, 1100, 5000)))
    assert EndSigned("S-1", "P") in step.actions and SetOutput(False) in step.actions
    assert d.state.phase is Phase.FINISHING and not d.records(CloseSession)
    d.send(SignedEnd(at(101), "S-1", reading(101, 1100), END))
    close = d.records(CloseSession)[-1]
    assert close.stop_reason is StopReason.POWER_LOSS
    assert close.stop_reading is not None and close.stop_reading.energy_import_wh == 1100


def test_recovery_of_an_interrupted_begin_closes_without_energy():
    d = Driver(rules=SIGNED_RULES)
    d.authorize()
    d.tick(1, 1000)
    step = d.send(Recover(at(50), resume=True, reading=reading(50, 1000)))
    assert EndSigned("S-1", "P") in step.actions
    assert d.records(CloseSession)[-1].stop_reading is None


def test_recovery_while_parked_ends_the_transaction_and_closes_with_the_signed_end():
    d = started()
    d.send(StopRequested(at(20), StopReason.LOCAL, "TOKEN1"))
    step = d.send(Recover(at(60), resume=True, reading=reading(60, 1020)))
    assert EndSigned("S-1", "L") in step.actions  # the stop's reason stays
    d.send(SignedEnd(at(61), "S-1", reading(61, 1020), END))
    close = d.records(CloseSession)[-1]
    assert close.stop_reading is not None and close.stop_reading.energy_import_wh == 1020
    assert close.stop_reason is StopReason.LOCAL


def test_an_unplug_while_the_meter_signs_the_begin_delivers_no_energy():
    d = Driver(rules=SIGNED_RULES)
    d.authorize()
    d.tick(1, 1000)
    d.tick(2, 1000, ev="A")  # unplugged before the signed begin came back
    step = d.send(SignedStart(at(3), "S-1", reading(3, 1000), BEGIN))
    assert SetOutput(True) not in step.actions and EndSigned("S-1", "E") in step.actions
    close = d.records(CloseSession)[-1]
    assert close.stop_reason is StopReason.EV_DISCONNECTED and close.stop_reading is None
    assert not d.records(ReadingRecord)


def test_touches_extend_the_plug_in_time_at_most_ten_timeouts():
    from terminal.session import AuthorizationKept

    d = Driver()
    d.authorize(0)
    for minute in range(1, 60):  # a touch a minute for an hour
        d.send(AuthorizationKept(at(minute * 60)))
    limit = RULES.connection_timeout_s * 10
    assert (d.state.authorized_at - T0).total_seconds() <= limit - RULES.connection_timeout_s
    d.tick(limit + 1, None, ev="A")
    assert d.records(CloseSession)[-1].stop_reason is StopReason.TIMEOUT
