"""The charging point model, the meter counting it, the station's control requests and
the charger IO image, all at simulated times passed in (no clock, no sockets)."""

from __future__ import annotations

import math

import pytest

from drivers.charger import ChargerError, EvState
from drivers.charger.modbus_coil import FAULT_CODES, decode_status
from drivers.meter.registermap import load_model
from hw_mocks.ev_model import ChargingPoint, Fault, PointError, PowerCurve
from hw_mocks.meter_sim import JUMP_WH, MeterSimulator
from hw_mocks.station_sim import StationSimulator, io_image

# ramp 10 s to 36 kW, 100 s constant, taper 50 s to 3.6 kW: full after 160 s of charging
CURVE = PowerCurve(max_power_w=36_000, ramp_s=10, constant_s=100, taper_s=50,
                   taper_end_power_w=3_600, voltage_v=400)


def test_energy_is_exact_across_output_and_suspend_toggles():
    point = ChargingPoint()
    point.plug(5, CURVE)
    assert point.ev_state(5) == "C"
    assert point.power_w(8) == 0.0  # asking, output off: nothing flows, EV time stands
    point.set_output(10, True)
    point.set_output(30, False)  # 20 s of charging
    point.suspend(35)
    point.set_output(40, True)  # suspended: the contactor closes, nothing flows
    assert point.output_on(45) and point.power_w(45) == 0.0
    assert point.ev_state(45) == "B"
    point.resume(50)  # from here the curve continues at EV time 20 s
    assert point.power_w(50) == CURVE.power_w(20)
    assert point.delivered_wh(70) == pytest.approx(CURVE.energy_wh(40), rel=1e-12)
    assert point.power_w(70) == CURVE.power_w(40)
    assert point.plugs[0].ev_time_s == pytest.approx(40)


def test_a_full_battery_goes_to_state_b_and_draws_nothing():
    point = ChargingPoint()
    point.plug(0, CURVE)
    point.set_output(0, True)
    assert point.ev_state(159) == "C"
    assert point.power_w(159) > 0
    assert point.ev_state(1000) == "B"
    assert point.power_w(1000) == 0.0
    assert point.output_on(1000)  # the contactor stays as commanded
    assert point.delivered_wh(5000) == pytest.approx(CURVE.energy_wh(CURVE.full_after_s))
    assert point.plugs[0].to_json()["full"] is True


def test_a_welded_contactor_keeps_delivering_after_off():
    point = ChargingPoint()
    point.plug(0, CURVE)
    point.set_output(0, True)
    point.add_fault(20, Fault("contactor_welded", 0))  # a past start starts now
    assert point.faults[0].start_s == 20
    point.set_output(30, False)
    assert not point.output_commanded
    assert point.output_on(40)
    assert point.power_w(40) == CURVE.power_w(40)
    assert point.delivered_wh(40) == pytest.approx(CURVE.energy_wh(40))
    point.suspend(50)  # flows only while the EV asks
    assert point.power_w(60) == 0.0 and point.output_on(60)
    point.clear_faults(70)
    assert not point.output_on(70)
    assert point.delivered_wh(80) == pytest.approx(CURVE.energy_wh(50))


def test_a_welded_contactor_that_was_open_closes_and_then_sticks():
    point = ChargingPoint()
    point.add_fault(0, Fault("contactor_welded"))
    assert not point.output_on(1)
    point.set_output(2, True)
    point.set_output(3, False)
    assert point.output_on(4)


def test_a_stuck_open_contactor_never_closes_until_the_fault_ends():
    point = ChargingPoint()
    point.plug(0, CURVE)
    point.add_fault(0, Fault("contactor_stuck_open", 10, 20))  # 10 s .. 30 s
    point.set_output(5, True)
    assert point.output_on(9)
    assert not point.output_on(10)  # opens at the fault's start
    assert point.power_w(29.9) == 0.0
    assert point.output_on(30)  # and follows the command again at its end
    # 5 s before the fault and 10 s after it (30 .. 40)
    assert point.delivered_wh(40) == pytest.approx(CURVE.energy_wh(15), rel=1e-12)


def test_a_charger_error_is_state_f_with_its_code_and_drops_the_output():
    point = ChargingPoint()
    point.plug(0, CURVE)
    point.set_output(0, True)
    point.add_fault(10, Fault("charger_error", 10, 5, code=3))
    assert point.ev_state(12) == "F"
    assert point.fault_code(12) == 3
    assert not point.output_on(12)
    assert point.power_w(12) == 0.0 and point.voltage_v(12) == 0.0
    assert point.ev_state(15) == "C"  # timed out: the stage comes back as commanded
    assert point.fault_code(15) == 0 and point.output_on(15)
    assert point.delivered_wh(20) == pytest.approx(CURVE.energy_wh(15), rel=1e-12)


def test_per_plug_records_hold_what_each_car_received():
    point = ChargingPoint()
    point.set_output(0, True)
    point.plug(10, CURVE)
    point.unplug(40)
    small = PowerCurve(max_power_w=7_200, ramp_s=0, constant_s=1000, taper_s=0)
    point.plug(50, small)
    first, second = point.plugs
    assert first.to_json() == {
        "plugged_at": 10, "unplugged_at": 40, "delivered_wh": pytest.approx(CURVE.energy_wh(30)),
        "ev_time_s": 30, "full": False,
    }
    assert point.delivered_wh(150) == pytest.approx(200.0)  # 7.2 kW for 100 s
    assert second.unplugged_at_s is None
    assert point.delivered_total_wh == pytest.approx(first.delivered_wh + second.delivered_wh)
    assert point.ev_state(150) == "C"
    point.unplug(160)
    assert point.ev_state(161) == "A"
    assert point.delivered_wh(161) == second.delivered_wh  # the last car's after unplug


@pytest.mark.parametrize(
    ("command", "message"),
    [("unplug", "no car is plugged in"), ("suspend", "no car is plugged in"),
     ("resume", "no car is plugged in")],
)
def test_commands_without_a_car_are_refused(command, message):
    with pytest.raises(PointError, match=message):
        getattr(ChargingPoint(), command)(1.0)


def test_plugging_twice_is_refused_and_time_never_goes_back():
    point = ChargingPoint.charging(CURVE)
    with pytest.raises(PointError, match="already plugged"):
        point.plug(1, CURVE)
    before = point.delivered_wh(50)
    assert point.delivered_wh(20) == before  # an earlier time is the last one seen
    assert point.t_s == 50


# --- the meter at the point ----------------------------------------------------------------


def meter_at(point: ChargingPoint, *faults: Fault) -> MeterSimulator:
    return MeterSimulator(model=load_model("carlo_gavazzi_em580"), point=point,
                          start_energy_wh=1_000.0, faults=list(faults))


def test_the_meter_counts_everything_ever_delivered():
    point = ChargingPoint()
    meter = meter_at(point)
    assert meter.energy_import_wh(5) == 1_000.0
    point.plug(5, CURVE)
    point.set_output(5, True)
    point.unplug(25)
    point.plug(30, CURVE)
    values = meter.values_at(40)
    # first car 20 s of its curve, second car 10 s of its own
    assert values["energy_import_wh"] == pytest.approx(
        1_000 + CURVE.energy_wh(20) + CURVE.energy_wh(10)
    )
    assert values["power_w"] == CURVE.power_w(10)
    assert values["voltage_v"] == 400 and values["current_a"] == CURVE.power_w(10) / 400


@pytest.mark.parametrize("kind", ["frozen", "jump", "reset"])
def test_meter_counter_faults_are_exact_against_the_point(kind):
    point = ChargingPoint.charging(CURVE)
    meter = meter_at(point, Fault(kind, 20, 10))
    true_wh = 1_000 + CURVE.energy_wh(25)
    shown = meter.energy_import_wh(25)
    if kind == "frozen":
        assert shown == pytest.approx(1_000 + CURVE.energy_wh(20))
    elif kind == "jump":
        assert shown == pytest.approx(true_wh + JUMP_WH)
    else:
        assert shown == pytest.approx(CURVE.energy_wh(25) - CURVE.energy_wh(20))
    assert meter.energy_import_wh(30) == pytest.approx(1_000 + CURVE.energy_wh(30))


def test_a_meter_fault_added_now_freezes_at_now():
    point = ChargingPoint.charging(CURVE)
    meter = meter_at(point)
    point.advance(12.5)
    meter.add_fault(Fault("frozen", 12.5))
    assert meter.energy_import_wh(40) == pytest.approx(1_000 + CURVE.energy_wh(12.5))


# --- control requests ----------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


@pytest.fixture
def station():
    now = FakeTime()
    point = ChargingPoint()
    meter = meter_at(point)
    sim = StationSimulator(meter, CURVE, charger_unit=2, t_source=now)
    sim.now = now  # type: ignore[attr-defined]
    return sim


def test_control_plug_status_and_fault(station):
    reply = station.handle({"cmd": "plug", "max_power_w": 7_200, "ramp_s": 0})
    assert reply["ok"] and reply["status"]["ev_state"] == "C"
    station.point.set_output(0, True)
    station.now.t_s = 100
    status = station.handle({"cmd": "status"})["status"]
    expected = {"t_s": 100, "ev_state": "C", "plugged": True, "output_commanded": True,
                "output_on": True, "power_w": 7_200, "delivered_wh": pytest.approx(200),
                "energy_import_wh": pytest.approx(1_200), "faults": []}
    assert {key: status[key] for key in expected} == expected
    assert status["plugs"] == [{"plugged_at": 0, "unplugged_at": None,
                                "delivered_wh": pytest.approx(200), "ev_time_s": 100,
                                "full": False}]
    reply = station.handle({"cmd": "fault", "kind": "charger_error", "code": 4,
                            "duration_s": 10})
    status = reply["status"]
    assert status["ev_state"] == "F" and status["charger_fault"] == "emergency stop pressed"
    assert status["faults"] == [{"kind": "charger_error", "start_s": 100, "end_s": 110,
                                 "code": 4, "active": True}]
    station.handle({"cmd": "fault", "kind": "no_reply"})
    assert len(station.meter.faults) == 1
    status = station.handle({"cmd": "clear"})["status"]
    assert status["faults"] == [] and status["ev_state"] == "C" and not station.meter.faults


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "bad JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"cmd": "explode"}', "unknown cmd 'explode'; allowed: plug, unplug"),
        ('{"verb": "plug"}', "unknown cmd None"),
        ('{"cmd": "unplug"}', "no car is plugged in"),
        ('{"cmd": "status", "verbose": true}', "status: unknown option 'verbose'"),
        ('{"cmd": "plug", "max_power": 1}', "unknown option 'max_power'; allowed: max_power_w"),
        ('{"cmd": "plug", "ramp_s": -1}', "ramp_s=-1: must be >= 0"),
        ('{"cmd": "plug", "voltage_v": 0}', "voltage_v=0: must be > 0"),
        ('{"cmd": "plug", "max_power_w": "lots"}', "max_power_w='lots': expected a number"),
        ('{"cmd": "fault", "kind": "meltdown"}', "unknown kind 'meltdown'; allowed: no_reply"),
        ('{"cmd": "fault"}', "unknown kind None"),
        ('{"cmd": "fault", "kind": "frozen", "duration_s": 0}', "duration_s=0: must be > 0"),
        ('{"cmd": "fault", "kind": "charger_error", "code": 99}', "code=99; allowed: 1, 2"),
        ('{"cmd": "fault", "kind": "frozen", "code": 1}', "code is for kind charger_error"),
    ],
    ids=["bad-json", "not-object", "unknown-cmd", "no-cmd", "unplug-empty", "status-option",
         "plug-option", "plug-negative", "plug-zero-voltage", "plug-text", "fault-kind",
         "fault-no-kind", "fault-duration", "fault-code", "fault-code-kind"],
)
def test_bad_control_requests_name_what_was_wrong(station, line, message):
    reply = station.handle_line(line)
    assert reply["ok"] is False
    assert message in reply["error"]
    assert station.handle({"cmd": "status"})["ok"]


def test_the_charger_and_meter_unit_ids_must_differ():
    with pytest.raises(ValueError, match="charger unit 1 is the meter's unit id"):
        StationSimulator(meter_at(ChargingPoint()), CURVE, charger_unit=1)


# --- the charger IO image (simulator side) and its decoding (driver side) ------------------


@pytest.mark.parametrize("state", ["A", "B", "C", "E", "F"])
@pytest.mark.parametrize("fault_code", ["0", "1", "6"])
def test_io_image_round_trips_through_the_driver_decoding(state, fault_code):
    code = int(fault_code)
    coils, inputs, registers = io_image(state, code, output_on=True, commanded=False)
    assert coils == 0
    assert inputs & 1 == (state in "BC")
    assert inputs >> 1 & 1 == (state == "C")
    assert inputs >> 2 & 1 == 1
    assert inputs >> 3 & 1 == bool(code)
    status = decode_status(registers[0], registers[1], output_on=bool(inputs >> 2 & 1),
                           output_commanded=bool(coils & 1))
    assert status.ev_state == EvState(state)
    assert status.fault == (FAULT_CODES[code] if code else None)
    assert status.output_on and not status.output_commanded


@pytest.mark.parametrize(
    ("state_code", "fault_code", "message"),
    [(68, 0, "unknown EV state code 68 in input register 0"),
     (0, 0, "unknown EV state code 0"),
     (65, 42, "unknown fault code 42 in input register 1")],
    ids=["state-D", "state-zero", "fault-42"],
)
def test_unknown_codes_are_a_charger_error_naming_the_value(state_code, fault_code, message):
    with pytest.raises(ChargerError, match=message):
        decode_status(state_code, fault_code, output_on=False, output_commanded=False)


def test_fault_parse_knows_charger_kinds_and_their_default_code():
    fault = Fault.parse("charger_error@5+10", ("charger_error",))
    assert (fault.kind, fault.start_s, fault.end_s, fault.code) == ("charger_error", 5, 15, 1)
    assert Fault.parse("frozen", ("frozen",)).end_s == math.inf
