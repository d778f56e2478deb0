import asyncio
import logging
from decimal import Decimal

import pytest

from drivers.meter.monitor import MeterMonitor
from drivers.meter.reading import MeterReadError, MeterReading
from tests.unit.clockfake import FakeClock


class ScriptedMeter:
    """Plays back readings (energy_wh, power_w) or errors, one per poll."""

    def __init__(self, clock: FakeClock, script: list) -> None:
        self.clock = clock
        self.script = list(script)
        self.model = None

    async def read_snapshot(self) -> MeterReading:
        item = self.script.pop(0)
        if isinstance(item, MeterReadError):
            raise item
        energy_wh, power_w, *serial = item
        return MeterReading(
            timestamp=self.clock.now(),
            energy_import_wh=Decimal(energy_wh),
            energy_export_wh=None,
            power_w=Decimal(power_w),
            voltage_v=Decimal(800),
            current_a=Decimal(power_w) / 800,
            serial=serial[0] if serial else "S1",
        )

    def close(self) -> None:
        pass


def run(script, interval_s=1.0, **kw):
    clock = FakeClock()
    monitor = MeterMonitor(ScriptedMeter(clock, script), clock=clock, **kw)
    outcomes = []
    for _ in script:
        outcomes.append(asyncio.run(monitor.poll()))
        clock.advance(interval_s)
    return monitor, outcomes


TIMEOUT = MeterReadError("timeout", "no reply to FC4 0x0000+76")


def test_good_readings_are_billable():
    _, out = run([(1000, 36000), (1010, 36000), (1020, 36000)])
    assert [o.billable for o in out] == [True, True, True]
    assert all(o.fault is None for o in out)


def test_communication_fault_after_n_consecutive_failures_and_recovery():
    _, out = run([(1000, 0), TIMEOUT, TIMEOUT, TIMEOUT, (1000, 0)], max_failed_polls=3)
    assert [o.fault.kind if o.fault else None for o in out] == [
        None, None, None, "communication", None]
    assert out[3].reading is None and out[3].error.startswith("timeout")
    assert out[4].billable


def test_failed_poll_never_returns_an_old_value():
    _, out = run([(1000, 0), TIMEOUT])
    assert out[1].reading is None and not out[1].billable


def test_counter_going_backwards_is_a_latched_fault():
    monitor, out = run([(5000, 0), (4000, 0), (5000, 0), (5001, 0)])
    assert out[1].fault.kind == "counter_backwards"
    assert not any(o.billable for o in out[1:])
    assert "5000 Wh to 4000 Wh" in out[1].fault.detail
    monitor.clear_counter_fault()
    assert monitor.fault is None


def test_jump_beyond_rated_power_is_a_fault():
    # 100 kW rated for 1 s allows ~30.6 Wh + 200 Wh resolution; 1 kWh is a jump
    _, out = run([(1000, 0), (2000, 0)], rated_power_w=100_000)
    assert out[1].fault.kind == "counter_jump"
    assert not out[1].billable


def test_growth_within_rated_power_after_an_outage_is_accepted():
    # 10 s offline at 360 kW = 1000 Wh, rated 400 kW
    _, out = run([(0, 360000), TIMEOUT, TIMEOUT, TIMEOUT, (1000, 360000)],
                 interval_s=2.5, max_failed_polls=3, rated_power_w=400_000)
    assert out[-1].billable and out[-1].fault is None


def test_frozen_counter_with_power_flowing_is_a_fault():
    # 360 kW = 100 Wh/s; threshold 3 x 100 Wh resolution -> latched after > 3 s
    script = [(1000, 360000)] * 6
    _, out = run(script)
    kinds = [o.fault.kind if o.fault else None for o in out]
    assert kinds[:4] == [None, None, None, None]
    assert kinds[4] == "counter_frozen"


def test_standing_counter_without_power_is_fine():
    _, out = run([(1000, 0)] * 20)
    assert all(o.billable for o in out)


def test_serial_mismatch_is_a_fault():
    _, out = run([(1000, 0, "OTHER")], expected_serial="S1")
    assert out[0].fault.kind == "serial_mismatch"
    assert not out[0].billable


def test_repeating_failure_logs_few_lines():
    """Counted on a handler of the test's own, so handlers other tests left on the
    `evterm` loggers (or their propagation) cannot change the count."""
    lines: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record)

    logger = logging.getLogger("evterm.meter")
    handler = Collect(logging.WARNING)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        run([TIMEOUT] * 50, interval_s=0.1, fault_interval_s=60)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    # first failure + the communication fault, nothing per poll
    assert [r.getMessage() for r in lines] == ["meter read failing",
                                               "meter communication fault"]


@pytest.mark.parametrize("kind", ["timeout", "exception", "garbled", "unreachable"])
def test_errors_are_counted_by_kind(kind):
    monitor, _ = run([MeterReadError(kind, "x")])
    assert monitor.stats()["errors_by_kind"] == {kind: 1}
