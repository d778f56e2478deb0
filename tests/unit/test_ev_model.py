import pytest

from hw_mocks.ev_model import Fault, FaultSpecError, PowerCurve


def test_curve_phases():
    c = PowerCurve(max_power_w=100_000, ramp_s=10, constant_s=100, taper_s=50,
                   taper_end_power_w=0)
    assert c.power_w(5) == 50_000
    assert c.power_w(50) == 100_000
    assert c.power_w(135) == 50_000
    assert c.power_w(200) == 0.0
    assert c.full_after_s == 160


def test_energy_is_the_integral_of_power():
    c = PowerCurve(max_power_w=150_000, ramp_s=20, constant_s=60, taper_s=40,
                   taper_end_power_w=10_000)
    steps = 100_000
    t_end = 150.0
    dt = t_end / steps
    numeric_wh = sum(c.power_w((i + 0.5) * dt) * dt for i in range(steps)) / 3600
    assert c.energy_wh(t_end) == pytest.approx(numeric_wh, rel=1e-4)
    # closed form: ramp 20 s avg 75 kW + 60 s at 150 kW + taper 40 s avg 80 kW
    assert c.energy_wh(t_end) == pytest.approx((75_000 * 20 + 150_000 * 60 + 80_000 * 40) / 3600)


@pytest.mark.parametrize(
    ("text", "message"),
    [("melt", "unknown fault 'melt'"), ("frozen@x", "expected KIND[@START_S][+DURATION_S]"),
     ("frozen+0", "duration > 0"), ("frozen@-1", "start must be >= 0")],
    ids=["unknown", "bad-start", "zero-duration", "negative-start"],
)
def test_bad_fault_specs_name_the_problem(text, message):
    with pytest.raises(FaultSpecError, match=message.replace("[", r"\[").replace("+", r"\+")):
        Fault.parse(text, ("frozen",))


def test_fault_window_and_json():
    fault = Fault.parse("frozen@2.5+10", ("frozen",))
    assert not fault.active(2.4) and fault.active(2.5) and not fault.active(12.5)
    assert fault.to_json() == {"kind": "frozen", "start_s": 2.5, "end_s": 12.5}
