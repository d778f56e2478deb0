import io
import logging

from terminal.kernel.logsetup import FaultLogger, fields, get_logger, setup_logging
from tests.unit.clockfake import FakeClock


def test_lines_carry_key_value_fields():
    stream = io.StringIO()
    setup_logging("INFO", stream)
    get_logger("meter").warning("read failed", extra=fields(kind="timeout", detail="no reply x"))
    line = stream.getvalue().strip()
    assert " WARNING evterm.meter: read failed kind=timeout detail=\"no reply x\"" in line
    assert line[:4].isdigit() and "Z " in line


def test_repeating_fault_is_logged_once_then_at_the_interval_with_a_counter():
    stream = io.StringIO()
    setup_logging("INFO", stream)
    clock = FakeClock()
    faults = FaultLogger(get_logger("meter"), "meter read", interval_s=60, clock=clock)
    for _ in range(600):  # ten a second for a minute
        faults.failed("timeout")
        clock.advance(0.1)
    faults.failed("timeout")
    faults.recovered()
    lines = stream.getvalue().strip().splitlines()
    assert len(lines) == 3
    assert "meter read failing" in lines[0] and "count=1" in lines[0]
    assert "still failing" in lines[1] and "count=601" in lines[1]
    assert "recovered" in lines[2] and "failures=601" in lines[2]


def test_pymodbus_chatter_is_silenced():
    setup_logging("DEBUG", io.StringIO())
    assert logging.getLogger("pymodbus").level == logging.CRITICAL
