"""ui.timeouts (the timer model) and ui.timeouts_screens (each screen's time limit, its
warning at least 20 s before it fires, in every language, and what a touch anywhere
restarts): EN 301 549 clause 5 / WCAG 2.2.1 "Timing adjustable"."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_ui_view import SESSION, connected, daemon_state
from ui.buttons import TOUCH_SEND_S, touch
from ui.i18n import LANGUAGES, catalogue, language_name, tr
from ui.messages import apply_message
from ui.model import INFO_TIMEOUT_S, REPORT_TIMEOUT_S
from ui.service_model import DEFAULT_IDLE_S
from ui.timeouts import (
    MIN_EXTENSIONS,
    WARNING_S,
    Countdown,
    TimeoutSpec,
    TimeoutSpecError,
    Timer,
    countdown,
    left_until,
)
from ui.view import build_view

NOW = "2026-11-21T14:25:00Z"  # the daemon's `now` in daemon_state()


# ---- the timer model --------------------------------------------------------------------------


def test_a_limit_warns_20_s_before_it_fires_and_expires_at_its_end():
    timer = Timer(TimeoutSpec("receipt", 120), started_s=1000.0)
    assert timer.at(1000.0) == Countdown(120.0, warning=False, expired=False)
    assert not timer.at(1099.9).warning
    assert timer.at(1100.0).warning and timer.at(1100.0).seconds == 20
    assert timer.at(1119.2).seconds == 1  # rounded up: never "0 s" before it fires
    assert timer.at(1120.0).expired and not timer.at(1120.0).warning
    assert timer.at(1120.0).seconds == 0


def test_a_touch_gives_the_full_time_again_at_least_ten_times():
    timer = Timer(TimeoutSpec("report", 60), started_s=0.0)
    now_s = 0.0
    for extension in range(1, 26):
        now_s += 50.0  # in the warning each time
        assert timer.at(now_s).warning
        assert timer.extend(now_s)
        assert timer.extensions == extension
        assert timer.at(now_s).left_s == 60.0 and not timer.at(now_s).warning
    assert timer.extensions_left() is None  # no limit on extensions by default


def test_a_limited_number_of_extensions_is_at_least_ten_and_then_refused():
    timer = Timer(TimeoutSpec("pin", 60, max_extensions=MIN_EXTENSIONS), started_s=0.0)
    for extension in range(MIN_EXTENSIONS):
        assert timer.extend(10.0 * (extension + 1))
    assert timer.extensions_left() == 0
    started = timer.started_s
    assert not timer.extend(timer.started_s + 1)
    assert timer.started_s == started


def test_an_expired_limit_cannot_be_extended():
    timer = Timer(TimeoutSpec("info", 60), started_s=0.0)
    assert not timer.extend(60.0)
    assert timer.at(60.0).expired and timer.extensions == 0


def test_a_limit_shorter_than_the_warning_warns_from_its_start():
    spec = TimeoutSpec("short", 10)
    assert spec.warning_from_s() == 0.0
    assert Timer(spec, 0.0).at(0.0).warning
    assert TimeoutSpec("long", 120).warning_from_s() == 100.0


@pytest.mark.parametrize(("changes", "problem"), [
    ({"timeout_s": 0}, "timeout_s must be > 0"),
    ({"warning_s": 19.9}, "warning_s must be at least 20 s"),
    ({"max_extensions": 9}, "max_extensions must be at least 10"),
])
def test_a_limit_that_breaks_the_rules_is_refused_naming_what(changes, problem):
    values: dict[str, Any] = {"name": "x", "timeout_s": 60, **changes}
    with pytest.raises(TimeoutSpecError, match=f"^x: {problem}"):
        TimeoutSpec(**values)


def test_countdown_and_a_deadline_the_daemon_set():
    assert countdown(25.0) == Countdown(25.0, warning=False, expired=False)
    assert countdown(20.0).warning and countdown(-1.0).expired
    assert left_until("2026-11-21T14:27:00Z", NOW) == 120.0
    assert left_until("2026-11-21T14:27:00.000Z", NOW, since_state_s=1.5) == 118.5
    assert left_until("2026-11-21T15:27:00+01:00", NOW) == 120.0
    for bad in (None, "", "soon", "2026-11-21T14:27:00", 5):
        assert left_until(bad, NOW) is None
        assert left_until("2026-11-21T14:27:00Z", bad) is None


# ---- the screens -------------------------------------------------------------------------------


def receipt_model(until: str = "2026-11-21T14:27:00Z", language: str = "en"):
    state = daemon_state(receipt_pending={"session_id": SESSION, "until": until},
                         language=language)
    return connected(state, now_s=100.0)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_receipt_warns_20_s_before_it_goes_in_every_language(language):
    model = receipt_model(language=language)  # 120 s left when the snapshot came at 100 s
    assert build_view(model, 100.0).screen == "receipt"
    assert build_view(model, 199.0).timeout_warning == ""
    view = build_view(model, 200.0)  # 20 s left by the UI's clock since the snapshot
    assert view.screen == "receipt"
    assert view.timeout_warning == tr("timeout_warning", language, seconds=20)
    assert view.timeout_speech == tr("timeout_speech", language, seconds=20)
    assert "20" in view.timeout_warning and "20" in view.timeout_speech
    assert build_view(model, 210.5).timeout_warning == tr("timeout_warning", language,
                                                          seconds=10)


def test_a_touch_on_the_receipt_asks_the_daemon_to_keep_it_at_most_once_a_second():
    model = receipt_model()
    assert touch(model, 205.0) == [{"op": "touch"}]
    assert touch(model, 205.0 + TOUCH_SEND_S / 2) == []
    assert touch(model, 205.0 + TOUCH_SEND_S) == [{"op": "touch"}]
    # the daemon's answer moves the deadline: the warning is gone
    kept = daemon_state(receipt_pending={"session_id": SESSION, "until": "2026-11-21T14:29:00Z"},
                        now="2026-11-21T14:27:00Z")
    apply_message(model, {"ok": True, "op": "touch", "state": kept}, 206.5)
    assert build_view(model, 206.5).timeout_warning == ""
    assert build_view(model, 206.5 + 100).timeout_warning == tr("timeout_warning", "en",
                                                                 seconds=20)


def test_the_report_panel_warns_and_a_touch_keeps_it_open():
    model = connected(daemon_state(), now_s=0.0)
    from ui.buttons import press
    press(model, "report", 10.0)
    started = 10.0
    for _ in range(12):
        warn_at = started + REPORT_TIMEOUT_S - WARNING_S
        assert build_view(model, warn_at - 0.5).timeout_warning == ""
        view = build_view(model, warn_at)
        assert view.report_open
        assert view.timeout_warning == tr("timeout_warning_page", "en", seconds=20)
        assert touch(model, warn_at + 5) == []  # the UI's own limit: nothing to send
        started = warn_at + 5
        assert build_view(model, started).timeout_warning == ""
    assert build_view(model, started + REPORT_TIMEOUT_S - 0.1).report_open
    assert not build_view(model, started + REPORT_TIMEOUT_S).report_open
    touch(model, started + REPORT_TIMEOUT_S + 1)  # a closed panel does not come back
    assert not build_view(model, started + REPORT_TIMEOUT_S + 1).report_open


def test_a_meter_page_warns_and_a_touch_keeps_it():
    from tests.unit.metering_helpers import metering
    from ui.buttons import press
    model = connected(daemon_state(metering=metering()), now_s=0.0)
    press(model, "idle_meter_info", 1.0)
    warn_at = 1.0 + INFO_TIMEOUT_S - WARNING_S
    view = build_view(model, warn_at)
    assert view.screen == "meter_info"
    assert view.timeout_warning == tr("timeout_warning_page", "en", seconds=20)
    touch(model, warn_at + 10)
    assert build_view(model, warn_at + 10 + INFO_TIMEOUT_S - 1).screen == "meter_info"
    assert build_view(model, warn_at + 10 + INFO_TIMEOUT_S).screen == "idle"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_idle_screen_warns_before_the_language_goes_back(language):
    reset = {"at": "2026-11-21T14:25:25Z", "language": "en"}
    model = connected(daemon_state(language_reset=reset), now_s=0.0, language=language)
    assert build_view(model, 0.0).timeout_warning == ""  # 25 s left
    view = build_view(model, 5.0)
    assert view.screen == "idle"
    assert view.timeout_warning == tr("timeout_warning_language", language, seconds=20,
                                      default_language="English")
    assert "English" in view.timeout_speech
    assert touch(model, 6.0) == [{"op": "touch"}]
    assert touch(model, 10.0) == [{"op": "touch"}]


def test_no_touch_is_sent_on_a_screen_without_a_daemon_limit():
    model = connected(daemon_state(), now_s=0.0)
    assert touch(model, 1.0) == []
    assert build_view(model, 1.0).timeout_warning == ""


def pin_state(pin_until: str | None) -> dict[str, Any]:
    return daemon_state(service={"state": "pin", "technician": "\u2026EEFF",
                                 "locked_until": None, "pin_until": pin_until})


def test_the_pin_pad_warns_and_a_touch_keeps_the_pin_window():
    model = connected(pin_state("2026-11-21T14:26:00Z"), now_s=0.0)
    assert build_view(model, 39.0).screen == "pin"
    assert build_view(model, 39.0).timeout_warning == ""
    assert build_view(model, 40.0).timeout_warning == tr("timeout_warning_pin", "en",
                                                         seconds=20)
    assert touch(model, 41.0) == [{"op": "service_keep_pin"}]


def test_the_service_menu_warns_before_the_idle_logout_and_a_touch_keeps_it():
    model = connected(daemon_state(service={"state": "active", "technician": "\u2026EEFF",
                                            "locked_until": None, "pin_until": None}),
                      now_s=0.0)
    model.service.token = "t" * 32
    model.service.last_touch_s = 0.0
    warn_at = DEFAULT_IDLE_S - WARNING_S
    assert build_view(model, warn_at).screen == "service"
    assert build_view(model, warn_at - 1).timeout_warning == ""
    assert build_view(model, warn_at).timeout_warning == tr("timeout_warning_logout", "en",
                                                            seconds=20)
    assert touch(model, warn_at + 1) == []
    assert model.service.last_touch_s == warn_at + 1
    assert build_view(model, warn_at + 1).timeout_warning == ""


def test_the_nearest_limit_is_the_one_warned_about():
    model = receipt_model()  # the receipt: 120 s left at 100 s
    from ui.buttons import press
    press(model, "report", 120.0)  # the report panel: 60 s from 120 s, ends at 180 s
    view = build_view(model, 165.0)
    assert view.timeout_warning == tr("timeout_warning_page", "en", seconds=15)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_warning_text_says_the_seconds_and_is_translated(language):
    texts = catalogue(language)
    keys = [key for key in texts if key.startswith(("timeout_warning", "timeout_speech"))]
    assert len(keys) == 12
    for key in keys:
        text = tr(key, language, seconds=20, default_language=language_name("en"))
        assert "20" in text
        if language != "en":
            assert text != tr(key, "en", seconds=20, default_language=language_name("en"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_approval_warns_before_the_time_to_plug_in_runs_out(language):
    state = daemon_state(phase="Authorized", session_id=SESSION,
                         plug_in_until="2026-11-21T14:25:30Z")
    model = connected(state, now_s=0.0, language=language)
    assert build_view(model, 9.0).screen == "authorising"
    assert build_view(model, 9.0).timeout_warning == ""
    view = build_view(model, 10.0)
    assert view.timeout_warning == tr("timeout_warning_plug", language, seconds=20)
    assert view.timeout_speech == tr("timeout_speech_plug", language, seconds=20)
    assert touch(model, 11.0) == [{"op": "touch"}]


def test_no_plug_in_warning_once_the_vehicle_charges():
    state = daemon_state(phase="Charging", session_id=SESSION, plug_in_until=None,
                         energy_wh="0", power_w="0", elapsed_s=0,
                         session_started_at="2026-11-21T14:25:00Z")
    model = connected(state, now_s=0.0)
    assert build_view(model, 25.0).timeout_warning == ""
    assert touch(model, 25.0) == []
