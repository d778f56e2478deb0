"""What `evterm meter read` and `evterm sim meter` say when something is wrong: the
wrong model (a hint to check --model), a missing serial device and an unknown host (the
reason, not just "cannot connect"), and a busy port (named)."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.test_meter_read import meter_read


def test_a_wrong_model_gets_the_hint_to_check_it(start_sim):
    sim = start_sim("acrel_djsf1352", "tcp")
    result = meter_read(sim.url, "eastron_sdm630")
    assert result.returncode == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1
    assert "illegal data address" in err
    assert "wrong --model? Shipped models: acrel_djsf1352," in err


def test_a_missing_serial_device_is_named():
    result = meter_read("rtu:///dev/ttyEVTERM-NONE?baud=9600", "eastron_sdm630")
    assert result.returncode == 2
    assert "cannot connect to rtu:///dev/ttyEVTERM-NONE: no such device " \
        "/dev/ttyEVTERM-NONE" in result.stderr


def test_an_unknown_host_is_named():
    result = meter_read("tcp://no-such-meter.invalid:502", "eastron_sdm630")
    assert result.returncode == 2
    assert "cannot connect to tcp://no-such-meter.invalid:502: host not found " \
        "(no-such-meter.invalid" in result.stderr


def test_a_refused_connection_is_named():
    from hw_mocks.ports import free_port

    port = free_port()
    result = meter_read(f"tcp://127.0.0.1:{port}", "eastron_sdm630")
    assert result.returncode == 2
    assert f"connection refused (nothing listens on port {port})" in result.stderr


def test_sim_meter_on_a_busy_port_names_the_port(start_sim):
    sim = start_sim("eastron_sdm630", "tcp")
    port = sim.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "sim", "meter", "--model", "eastron_sdm630",
         "--tcp", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"cannot serve on tcp://127.0.0.1:{port}: port {port} is already in use" \
        in result.stderr
