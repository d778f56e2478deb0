"""The company VAT number entry page without Kivy: the entry model (ui/vat_entry.py),
what the page and the charging screen show (ui/screen_vat.py through ui/view.py), what
the buttons send, the daemon's replies, the page's time limit and its speech."""

from __future__ import annotations

import pytest

from terminal.kernel.vat import MAX_VAT_CHARS
from tests.unit.test_ui_view import SESSION, charging_state, connected
from ui.buttons import press, touch
from ui.i18n import LANGUAGES, tr
from ui.messages import apply_message, set_connected
from ui.model import UiModel
from ui.speech_texts import speech_key, speech_text
from ui.speech_words import spoken
from ui.vat_entry import (
    MSG_FAILED,
    MSG_FULL,
    MSG_INVALID,
    MSG_SENDING,
    MSG_SESSION,
    VAT_BUTTONS,
    VAT_KEYS,
    VAT_SCREEN,
    VAT_TIMEOUT_S,
    VatEntry,
    apply_reply,
    open_entry,
    press_key,
    refusal_key,
)
from ui.view import build_view


def typed(vat: VatEntry, text: str, now_s: float = 1.0) -> list[dict[str, object]]:
    sent: list[dict[str, object]] = []
    for char in text:
        sent += press_key(vat, f"vat_key_{char}", now_s)
    return sent


def open_page(now_s: float = 1.0) -> UiModel:
    model = connected(charging_state())
    assert "vat_add" in build_view(model, now_s).buttons
    assert press(model, "vat_add", now_s) == []
    assert build_view(model, now_s).screen == VAT_SCREEN
    return model


# ---- the entry model ------------------------------------------------------------------

def test_the_keyboard_has_every_letter_and_digit_and_three_controls():
    assert sorted(VAT_KEYS.values()) == sorted("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    assert len(VAT_BUTTONS) == 39
    assert {"vat_delete", "vat_ok", "vat_cancel"} <= set(VAT_BUTTONS)


def test_keys_type_delete_takes_the_last_one_back():
    vat = VatEntry()
    open_entry(vat, SESSION, 0.0)
    assert typed(vat, "DE12") == []
    assert vat.typed == "DE12"
    press_key(vat, "vat_delete", 1.0)
    assert vat.typed == "DE1"
    for _ in range(5):
        press_key(vat, "vat_delete", 1.0)
    assert vat.typed == ""


def test_no_more_than_the_rules_limit_is_typed():
    vat = VatEntry()
    open_entry(vat, SESSION, 0.0)
    typed(vat, "DE" + "1" * 25)
    assert len(vat.typed) == MAX_VAT_CHARS
    assert vat.message == MSG_FULL
    press_key(vat, "vat_delete", 1.0)
    assert vat.message == ""


@pytest.mark.parametrize("number", ["", "D", "DE1", "1E123456789", "D1234567"])
def test_ok_checks_the_kernels_rule_before_sending(number):
    vat = VatEntry()
    open_entry(vat, SESSION, 0.0)
    typed(vat, number)
    assert press_key(vat, "vat_ok", 2.0) == []
    assert vat.message == MSG_INVALID
    assert vat.sending is None


def test_ok_sends_the_number_for_the_open_session_once():
    vat = VatEntry()
    open_entry(vat, SESSION, 0.0)
    typed(vat, "DE123456789")
    sent = press_key(vat, "vat_ok", 2.0)
    assert sent == [{"op": "vat_number", "session_id": SESSION, "vat_number": "DE123456789"}]
    assert vat.message == MSG_SENDING
    assert press_key(vat, "vat_ok", 2.5) == []  # in flight: not sent twice
    assert press_key(vat, "vat_key_A", 2.5) == [] and vat.typed == "DE123456789"


@pytest.mark.parametrize(("error", "key"), [
    ("vat_number: expected a VAT number: a two-letter country prefix ...", MSG_INVALID),
    ("session_id: 'x' is not the open session on the screen", MSG_SESSION),
    ("journal: the disk is full", MSG_FAILED),
    (None, MSG_FAILED)])
def test_a_refusal_is_said_in_words_and_the_number_stays_to_correct(error, key):
    assert refusal_key(error) == key
    vat = VatEntry()
    open_entry(vat, SESSION, 0.0)
    typed(vat, "DE123456789")
    press_key(vat, "vat_ok", 2.0)
    apply_reply(vat, {"ok": False, "op": "vat_number", "error": error})
    assert vat.message == key and vat.typed == "DE123456789" and vat.sending is None
    assert vat.session_id == SESSION and vat.given == {}


def test_the_kept_number_is_the_daemons_and_the_page_closes():
    vat = VatEntry()
    open_entry(vat, SESSION, 0.0)
    typed(vat, "DE123456789")
    press_key(vat, "vat_ok", 2.0)
    apply_reply(vat, {"ok": True, "op": "vat_number", "vat_number": "DE123456789"})
    assert vat.given == {SESSION: "DE123456789"}
    assert vat.session_id is None
    open_entry(vat, SESSION, 3.0)  # Change: the page starts from the number given
    assert vat.typed == "DE123456789"


# ---- the screens ----------------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_charging_screen_offers_the_page_and_then_shows_the_number(language):
    model = open_page()
    model.language = language
    view = build_view(model, 1.0)
    assert view.texts["vat_title"] == tr("vat_title", language)
    assert view.texts["vat_key_Q"] == "Q"
    assert "report" not in view.buttons and "lang_en" not in view.buttons
    for char in "DE123456789":
        press(model, f"vat_key_{char}", 2.0)
    assert build_view(model, 2.0).texts["vat_typed"].startswith("DE123456789")
    sent = press(model, "vat_ok", 3.0)
    assert sent == [{"op": "vat_number", "session_id": SESSION, "vat_number": "DE123456789"}]
    apply_message(model, {"ok": True, "op": "vat_number", "vat_number": "DE123456789",
                          "state": charging_state()}, 3.5)
    view = build_view(model, 4.0)
    assert view.screen == "charging"
    assert view.texts["vat_given"] == tr("vat_given", language, number="DE123456789")
    assert "DE123456789" in view.texts["vat_given"]
    assert view.texts["vat_add"] == tr("vat_change", language)
    assert "vat_add" in view.buttons


def test_charging_screen_before_any_number():
    model = connected(charging_state())
    view = build_view(model, 1.0)
    assert view.texts["vat_add"] == tr("vat_add", "en") == "Company receipt: add VAT number"
    assert view.texts["vat_given"] == ""


def test_a_refusal_shows_on_the_page():
    model = open_page()
    for char in "DE123456789":
        press(model, f"vat_key_{char}", 2.0)
    press(model, "vat_ok", 2.0)
    apply_message(model, {"ok": False, "op": "vat_number",
                          "error": "session_id: 'x' is not the open session"}, 2.5)
    view = build_view(model, 3.0)
    assert view.screen == VAT_SCREEN
    assert view.texts["vat_message"] == tr("vat_refused_session", "en")


def test_a_lost_connection_while_sending_says_it_was_not_saved():
    model = open_page()
    for char in "DE123456789":
        press(model, f"vat_key_{char}", 2.0)
    press(model, "vat_ok", 2.0)
    set_connected(model, False)
    set_connected(model, True)
    assert model.vat.message == MSG_FAILED and model.vat.sending is None


def test_cancel_and_the_end_of_charging_close_the_page():
    model = open_page()
    press(model, "vat_key_D", 2.0)
    press(model, "vat_cancel", 2.0)
    assert build_view(model, 2.0).screen == "charging"
    assert model.vat.given == {}
    press(model, "vat_add", 3.0)
    apply_message(model, {"type": "state", "state": charging_state(phase="Finishing")}, 3.5)
    assert build_view(model, 4.0).screen == "finishing"


def test_another_session_does_not_see_the_number():
    model = open_page()
    for char in "DE123456789":
        press(model, f"vat_key_{char}", 2.0)
    press(model, "vat_ok", 2.0)
    apply_message(model, {"ok": True, "op": "vat_number", "vat_number": "DE123456789",
                          "state": charging_state()}, 2.5)
    apply_message(model, {"type": "state",
                          "state": charging_state(session_id="another-session")}, 3.0)
    assert build_view(model, 3.0).texts["vat_given"] == ""


def test_the_page_warns_20_s_before_it_times_out_and_a_touch_extends_it():
    model = open_page(now_s=0.0)
    assert build_view(model, VAT_TIMEOUT_S - 21).timeout_warning == ""
    warned = build_view(model, VAT_TIMEOUT_S - 20)
    assert warned.screen == VAT_SCREEN
    assert warned.timeout_warning == tr("timeout_warning_page", "en", seconds=20)
    assert warned.timeout_speech
    assert touch(model, VAT_TIMEOUT_S - 10) == []  # the UI's own limit: nothing to send
    assert build_view(model, VAT_TIMEOUT_S + 5).screen == VAT_SCREEN
    assert build_view(model, 2 * VAT_TIMEOUT_S - 10 + 0.1).screen == "charging"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_page_is_spoken_and_then_each_key_as_pressed(language):
    model = open_page()
    model.language = language
    text = speech_text(model, 1.0)
    assert text.startswith(tr("vat_title", language))
    assert spoken(tr("speech_vat", language), language).rstrip(".") in text
    before = speech_key(model, 1.0)
    press(model, "vat_key_D", 2.0)
    assert speech_key(model, 2.0) != before  # a key is a new thing to say
    assert speech_text(model, 2.0) == "D."
    press(model, "vat_key_7", 2.0)
    assert speech_text(model, 2.0) == "7."
    press(model, "vat_delete", 2.0)
    assert speech_text(model, 2.0) == f"{tr('vat_delete', language)}."
    press(model, "vat_ok", 2.0)
    assert speech_text(model, 2.0) == spoken(f"{tr('vat_invalid', language)}.", language)
    # Repeat with the controls (speech switched on): the whole page, the number spelled
    press(model, "vat_key_E", 2.0)
    assert "D E" in speech_text(model, 2.0, controls=True)


def test_the_number_the_daemon_keeps_is_shown_after_a_restart_of_the_screen():
    from ui.vat_entry import VatEntry, given_number

    fresh = VatEntry()  # a restarted screen remembers nothing it sent
    assert given_number(fresh, "S1", "DE123456789") == "DE123456789"
    assert given_number(fresh, "S1", None) is None
    assert given_number(fresh, None, "DE123456789") is None
