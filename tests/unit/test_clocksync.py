"""The terminal's clock state: the EVTERM_CLOCK_SYNCED override, the adjtimex reading."""

from __future__ import annotations

import sys

import pytest

from terminal.kernel import clocksync
from terminal.kernel.clocksync import (
    ENV,
    STA_UNSYNC,
    TIME_ERROR,
    ClockSyncSettingError,
    check_override,
    kernel_clock_synced,
    synced_from,
    terminal_clock_synced,
)


def test_override_1_says_synchronised_without_asking_the_kernel(monkeypatch):
    monkeypatch.setattr(clocksync, "kernel_clock_synced", lambda: pytest.fail("asked"))
    assert terminal_clock_synced({ENV: "1"}) is True


def test_override_0_says_not_synchronised_without_asking_the_kernel(monkeypatch):
    monkeypatch.setattr(clocksync, "kernel_clock_synced", lambda: pytest.fail("asked"))
    assert terminal_clock_synced({ENV: "0"}) is False


def test_override_is_read_from_the_process_environment(monkeypatch):
    monkeypatch.setenv(ENV, "0")
    assert terminal_clock_synced() is False
    monkeypatch.setenv(ENV, "1")
    assert terminal_clock_synced() is True


@pytest.mark.parametrize("environ", [{}, {ENV: ""}, {ENV: "  "}])
def test_unset_or_empty_asks_the_kernel(monkeypatch, environ):
    monkeypatch.setattr(clocksync, "kernel_clock_synced", lambda: None)
    assert terminal_clock_synced(environ) is None
    monkeypatch.setattr(clocksync, "kernel_clock_synced", lambda: True)
    assert terminal_clock_synced(environ) is True


@pytest.mark.parametrize("value", ["yes", "true", "2", "-1", "01"])
def test_a_bad_override_is_an_error_naming_the_variable_and_the_values(value):
    with pytest.raises(ClockSyncSettingError) as caught:
        check_override({ENV: value})
    message = str(caught.value)
    assert ENV in message and repr(value) in message and "1" in message and "0" in message
    with pytest.raises(ClockSyncSettingError):
        terminal_clock_synced({ENV: value})


def test_check_override_accepts_good_values():
    for environ in ({}, {ENV: "1"}, {ENV: "0"}):
        check_override(environ)


@pytest.mark.parametrize(("state", "status", "expected"), [
    (0, 0, True),                        # TIME_OK, synchronised
    (1, 0x2001, True),                   # TIME_INS (leap second ahead), PLL + NANO
    (0, STA_UNSYNC, False),              # the kernel's flag
    (TIME_ERROR, 0, False),              # the clock state
    (TIME_ERROR, STA_UNSYNC, False),     # as after boot without NTP
    (-1, 0, None),                       # the call failed
])
def test_the_kernel_answer_is_read_from_state_and_status(state, status, expected):
    assert synced_from(state, status) is expected


def test_the_real_call_answers_without_raising(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    answer = kernel_clock_synced()
    if sys.platform.startswith("linux"):
        # the terminal runs Linux: there the kernel must answer
        assert isinstance(answer, bool)
    else:
        assert answer is None
    assert terminal_clock_synced({}) is answer


def test_the_rig_starts_its_daemon_with_the_override(monkeypatch, tmp_path):
    from hw_mocks.rig import Rig

    monkeypatch.delenv(ENV, raising=False)
    assert Rig(tmp_path / "a").daemon_env()[ENV] == "1"  # a scaled clock: synchronised
    assert Rig(tmp_path / "b", clock_synced=False).daemon_env()[ENV] == "0"
    monkeypatch.setenv(ENV, "0")  # `EVTERM_CLOCK_SYNCED=0 evterm demo` shows the fallback
    assert Rig(tmp_path / "c").daemon_env()[ENV] == "0"
    assert Rig(tmp_path / "d", clock_synced=True).daemon_env()[ENV] == "1"
