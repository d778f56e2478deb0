"""The display modes (ui/accessibility.py) without a display: the idle toggles, the modes
kept through a session (charging, finishing, the receipt on offer) and reset once the
connector is free again with no receipt pending; the station's defaults; the toggles'
words in every language; the palettes' contrast (ui/theme.py, WCAG 2.x); and that no
state is shown by colour alone (the kv rules for selected buttons, the card outcomes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_ui_view import LANGUAGES, SESSION, charging_state, connected, daemon_state
from ui import accessibility
from ui.accessibility import DisplayModes, defaults, follow_session, toggle, toggle_texts
from ui.buttons import press
from ui.messages import apply_message
from ui.model import UiModel
from ui.theme import (
    HIGH_CONTRAST,
    MIN_CONTRAST,
    MIN_CONTRAST_HIGH,
    NORMAL,
    TOUCH_U,
    contrast_ratio,
    palette,
)
from ui.view import build_view

KV = Path(__file__).resolve().parents[2] / "ui" / "evterm.kv"
PENDING = {"session_id": SESSION, "until": "2026-11-21T15:00:00Z"}
# every text colour on every surface it is drawn on in evterm.kv (tests/ui measures the
# drawn screens too: tests/ui/test_ui_display_modes.py)
TEXT_ON = [("TEXT", "BG"), ("TEXT", "PANEL"), ("TEXT", "RAISED"), ("TEXT", "RED"),
           ("MUTED", "BG"), ("MUTED", "PANEL"), ("MUTED", "RAISED"), ("INK", "ACCENT"),
           ("INK", "AMBER"), ("INK", "PAPER"), ("ACCENT", "BG"), ("ACCENT", "PANEL"),
           ("AMBER", "BG"), ("ALERT", "BG"), ("ALERT", "PANEL")]


def push(model: UiModel, state: dict[str, Any]) -> None:
    apply_message(model, {"type": "state", "state": state}, 1.0)


def test_the_toggles_are_on_the_idle_screen_and_switch_the_modes():
    model = connected(daemon_state())
    view = build_view(model, 1.0)
    assert "a11y_large_text" in view.buttons and "a11y_high_contrast" in view.buttons
    assert (view.large_text, view.high_contrast) == (False, False)
    assert press(model, "a11y_large_text", 2.0) == []  # the UI's own: nothing sent
    view = build_view(model, 2.0)
    assert (view.large_text, view.high_contrast) == (True, False)
    assert view.texts["a11y_large_text"] == "Large text: on"
    assert view.texts["a11y_high_contrast"] == "High contrast: off"
    press(model, "a11y_high_contrast", 3.0)
    press(model, "a11y_large_text", 3.0)
    view = build_view(model, 3.0)
    assert (view.large_text, view.high_contrast) == (False, True)


def test_the_toggles_are_not_offered_during_a_session():
    model = connected(charging_state())
    view = build_view(model, 1.0)
    assert view.screen == "charging"
    assert not set(accessibility.TOGGLES) & set(view.buttons)
    assert press(model, "a11y_large_text", 1.0) == []
    assert model.modes.large_text is False  # an inactive button does nothing


def test_the_modes_stay_through_the_session_and_its_receipt_then_reset():
    model = connected(daemon_state())
    press(model, "a11y_large_text", 1.0)
    press(model, "a11y_high_contrast", 1.0)
    for phase in ("Authorizing", "Authorized"):
        push(model, daemon_state(phase=phase, session_id=SESSION))
        assert build_view(model, 1.0).large_text
    push(model, charging_state())
    push(model, charging_state(phase="SuspendedEV"))
    push(model, charging_state(phase="Finishing"))
    assert build_view(model, 1.0).high_contrast
    push(model, daemon_state(receipt_pending=PENDING))  # Available, receipt on offer
    view = build_view(model, 1.0)
    assert view.screen == "receipt" and view.large_text and view.high_contrast
    press(model, "ack", 2.0)  # Done: the driver leaves
    push(model, daemon_state())
    view = build_view(model, 2.0)
    assert view.screen == "idle"
    assert (view.large_text, view.high_contrast) == (False, False)
    assert view.texts["a11y_large_text"] == "Large text: off"


def test_a_receipt_that_times_out_resets_the_modes_too():
    model = connected(daemon_state())
    press(model, "a11y_large_text", 1.0)
    push(model, charging_state())
    push(model, daemon_state(receipt_pending=PENDING))
    assert model.modes.large_text
    push(model, daemon_state())  # the daemon's receipt timeout: no longer pending
    assert model.modes.large_text is False


def test_modes_set_on_the_idle_screen_stay_until_a_session_has_run():
    model = connected(daemon_state())
    press(model, "a11y_high_contrast", 1.0)
    for _ in range(3):  # idle snapshots (prices, clock) do not reset the choice
        push(model, daemon_state(now="2026-11-21T14:26:00Z"))
    assert model.modes.high_contrast
    push(model, daemon_state(phase="Faulted", meter_fault="timeout"))  # no session
    push(model, daemon_state())
    assert model.modes.high_contrast


def test_a_reset_returns_to_the_stations_defaults():
    modes = defaults(large_text=True, high_contrast=True)
    toggle(modes, "a11y_large_text")
    assert not modes.large_text and not modes.is_default()
    follow_session(modes, charging_state(), receipt_pending=False)
    follow_session(modes, daemon_state(), receipt_pending=False)
    assert modes.large_text and modes.high_contrast and modes.is_default()
    assert modes.in_session is False


def test_follow_session_ignores_a_missing_snapshot_and_toggle_names_a_bad_id():
    modes = DisplayModes(large_text=True)
    follow_session(modes, None, receipt_pending=False)
    assert modes.large_text
    with pytest.raises(ValueError, match="'stop' is not a display-mode toggle"):
        toggle(modes, "stop")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_toggles_say_their_state_in_words_in_every_language(language):
    off = toggle_texts(DisplayModes(), language)
    on = toggle_texts(DisplayModes(large_text=True, high_contrast=True), language)
    for button in accessibility.TOGGLES:
        assert off[button] != on[button]
        assert off[button].split()[0] == on[button].split()[0]  # the same mode named
    if language != "en":
        assert on != toggle_texts(DisplayModes(large_text=True, high_contrast=True), "en")


# ---- colours ----------------------------------------------------------------------------

def test_the_wcag_contrast_ratio():
    assert contrast_ratio((0, 0, 0, 1), (1, 1, 1, 1)) == pytest.approx(21.0)
    assert contrast_ratio((1, 1, 1, 1), (1, 1, 1, 1)) == pytest.approx(1.0)
    # #777777 on white: 4.48:1 (the classic just-failing grey)
    grey = (0x77 / 255, 0x77 / 255, 0x77 / 255, 1)
    assert contrast_ratio(grey, (1, 1, 1, 1)) == pytest.approx(4.48, abs=0.01)
    # half-transparent black on white is a mid grey
    assert 3 < contrast_ratio((0, 0, 0, 0.5), (1, 1, 1, 1)) < 5


@pytest.mark.parametrize(("theme", "least"), [(NORMAL, MIN_CONTRAST),
                                               (HIGH_CONTRAST, MIN_CONTRAST_HIGH)])
def test_every_text_colour_on_every_surface_meets_the_ratio(theme, least):
    low = {(text, surface): round(contrast_ratio(getattr(theme, text),
                                                 getattr(theme, surface)), 2)
           for text, surface in TEXT_ON
           if contrast_ratio(getattr(theme, text), getattr(theme, surface)) < least}
    assert low == {}


def test_the_kv_file_takes_every_colour_from_the_theme():
    kv = KV.read_text(encoding="utf-8")
    assert "#:set TEXT" not in kv and "#:set RED" not in kv
    used = set(re.findall(r"app\.theme\.([A-Z]+)", kv))
    assert used <= set(NORMAL.__dataclass_fields__)
    # colours as literals only for the report panel's dimmer, the receipt's scroll bars
    # and "transparent"
    literals = re.findall(r"(?:color|rgba|fill|ink|ring):\s*\(?\s*[0-9.]+\s*,", kv)
    assert len(literals) <= 6, literals
    assert palette(True) is HIGH_CONTRAST and palette(False) is NORMAL


def test_the_smallest_touch_target_is_15_mm_on_the_reference_panel():
    px_per_mm = 800 / 154.2
    assert pytest.approx(15 * px_per_mm, abs=0.5) == TOUCH_U / 100 * 480  # 78 px
    kv = KV.read_text(encoding="utf-8")
    assert "height: max(dp(48), app.touch)" in kv  # FlatButton: every driver button


def test_selected_buttons_are_not_marked_by_colour_alone():
    kv = KV.read_text(encoding="utf-8")
    for rule in ("<LangButton>:", "<ModeToggle@FlatButton>:"):
        body = kv[kv.index(rule):].split("\n\n")[0]
        assert "if self.selected" in body  # coloured when selected ...
        assert "underline: self.selected" in body, rule  # ... and underlined


@pytest.mark.parametrize("language", LANGUAGES)
def test_card_outcomes_and_faults_say_it_in_words(language):
    declined = connected(daemon_state(), language=language)
    apply_message(declined, {"type": "tap", "result": "declined", "reason": "do_not_honor",
                             "kind": "card"}, 1.0)
    approved = connected(daemon_state(phase="Authorized", session_id=SESSION),
                         language=language)
    apply_message(approved, {"type": "tap", "result": "accepted", "kind": "card"}, 1.0)
    refused, ok = build_view(declined, 1.5), build_view(approved, 1.5)
    assert (refused.tone, ok.tone) == ("refused", "ok")
    assert refused.texts["auth_title"] and ok.texts["auth_title"]
    assert refused.texts["auth_title"] != ok.texts["auth_title"]
    fault = connected(daemon_state(receipt_pending=PENDING, charger_fault="error 3"),
                      language=language)
    assert build_view(fault, 1.0).texts["receipt_fault"]  # the red banner has words


# ---- operation without fine motor control -----------------------------------------------

def test_no_gesture_needs_two_fingers_or_a_path():
    """Every control is a tap (on_release); nothing reads multi-touch, double taps, long
    presses or a swipe's path; the only drag is scrolling a long list or text, on one
    axis, by its content or its bar, with one finger in any path."""
    sources = {path.name: path.read_text(encoding="utf-8")
               for path in sorted(KV.parent.glob("*.py"))} | {KV.name: KV.read_text("utf-8")}
    for name, text in sources.items():
        for banned in ("Scatter", "is_double_tap", "is_triple_tap", "GestureDatabase",
                       "touch.profile", "long_press", "swipe", "Carousel", "Slider"):
            assert banned not in text, (name, banned)
    app = sources["app.py"]
    # the one touch handler: the report panel swallows touches it does not use (modal)
    assert app.count("def on_touch_move") == 1 and "class ReportPanel" in app
    kv = sources[KV.name]
    presses = re.findall(r"on_(press|release|touch_down|touch_up):", kv)
    assert presses and set(presses) == {"release"}
    scrolls = kv.count("ScrollView:")
    assert scrolls >= 8
    assert kv.count("do_scroll_x: False") == scrolls
    assert kv.count("scroll_type: ['bars', 'content']") == scrolls


def test_a_refused_card_keeps_the_modes_for_the_next_try():
    model = connected(daemon_state())
    press(model, "a11y_large_text", 1.0)
    push(model, daemon_state(phase="Authorizing", session_id=SESSION))
    push(model, daemon_state(phase="Rejected", session_id=SESSION))
    assert build_view(model, 1.0).large_text  # the refusal is read in large text
    push(model, daemon_state())
    assert build_view(model, 2.0).large_text  # no session ran: still on for the retry
