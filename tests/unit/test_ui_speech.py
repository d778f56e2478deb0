"""Speech output (EN 301 549 5.1.3): what is said for every screen in every language,
amounts and units in words, never a PIN or card digit; when it speaks (SpeechControl),
the headphone jack decision with a fake reader, the speaker's WAV output; the volume
steps (F4/F5) and their reset, QR codes announced with what they are for, the on/off
state spoken on every press."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.ui.fake_localapi import receipt_body, receipt_text
from tests.unit.test_ui_view import SESSION, connected, daemon_state, screens_by_state
from ui.i18n import catalogue, placeholders
from ui.messages import apply_message
from ui.model import View
from ui.speech_control import IDLE_RESET_S, KEY_ACTIONS, SpeechControl, in_corner
from ui.speech_jack import parse_cget
from ui.speech_texts import NEVER_SPOKEN, SPOKEN_WIDGETS, receipt_speech, speech_key, speech_text
from ui.speech_words import spoken, spoken_amount, spoken_duration, spoken_energy
from ui.view import build_view
from ui.widgets import SCREEN_WIDGETS, SCREENS

LANGUAGES = ("en", "de", "fr", "nl")
UNIT_MARKS = re.compile(r"\d\s?(?:EUR|kWh|kW|%|min)\b|\d\s?%|\d+:\d\d|\u2022|\u25cf")


def receipt_model(language: str):
    model = connected(daemon_state(receipt_pending={"session_id": SESSION,
                                                    "until": "2026-11-21T14:29:00Z"}),
                      language=language)
    apply_message(model, {"ok": True, "op": "receipt", "session_id": SESSION,
                          "text": receipt_text(language), "receipt": receipt_body(language)},
                  0.3)
    return model


def every_screen(language: str):
    models = screens_by_state()
    models["receipt"] = receipt_model(language)
    for screen, model in models.items():
        model.language = language
        yield screen, model


def test_speech_keys_in_every_catalogue_with_the_same_placeholders():
    english = {k: v for k, v in catalogue("en").items() if k.startswith("speech_")}
    assert len(english) >= 30
    for language in LANGUAGES[1:]:
        for key, text in english.items():
            assert catalogue(language)[key].strip(), (language, key)
            assert placeholders(catalogue(language)[key]) == placeholders(text), key


def test_spoken_widgets_are_widgets_of_their_screen():
    for screen, ids in SPOKEN_WIDGETS.items():
        assert set(ids) <= set(SCREEN_WIDGETS[screen]) - NEVER_SPOKEN, screen
    assert set(SPOKEN_WIDGETS) == set(SCREENS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_is_spoken_without_digits_of_cards_or_units_in_symbols(language):
    seen = set()
    for screen, model in every_screen(language):
        assert build_view(model, 1.0).screen == screen
        text = speech_text(model, 1.0)
        assert text.strip(), (language, screen)
        assert not UNIT_MARKS.search(text), (language, screen, text)
        assert "1111" not in text  # the card's last 4 digits of the receipt
        seen.add(screen)
    assert seen == set(SCREENS)


@pytest.mark.parametrize(("language", "expected"), [
    ("en", "59 cents per kilowatt hour"), ("de", "59 Cent pro Kilowattstunde"),
    ("fr", "59 centimes par kilowattheure"), ("nl", "59 cent per kilowattuur")])
def test_unit_price_in_words(language, expected):
    line = {"en": "0.59 EUR/kWh", "de": "0,59 EUR/kWh", "fr": "0,59 EUR/kWh",
            "nl": "0,59 EUR/kWh"}[language]
    assert spoken(line, language) == expected
    idle = dict(every_screen(language))["idle"]
    assert expected in speech_text(idle, 1.0)


def test_exact_texts():
    assert speech_text(dict(every_screen("en"))["authorising"], 1.0) == \
        "Approved. Plug in your vehicle. Pre-authorised amount: 50 euros."
    assert speech_text(dict(every_screen("de"))["authorising"], 1.0) == \
        "Freigegeben. Bitte schließen Sie Ihr Fahrzeug an. Reservierter Betrag: 50 Euro."
    charging = connected(daemon_state(
        phase="Charging", session_id=SESSION, plugged=True, energy_wh="23500",
        power_w="150000", cost={"currency": "EUR", "incl_vat": "12.40"},
        elapsed_s=725, cost_cap=None))
    assert speech_text(charging, 1.0) == (
        "Charging. To stop, hold the same card on the reader or press Stop. "
        "Energy delivered: 23.5 kilowatt hours. Cost including VAT: 12 euros 40. "
        "Power: 150 kilowatts. Duration: 12 minutes 5 seconds.")
    charging.language = "fr"
    assert "23,5 kilowattheures" in speech_text(charging, 1.0)
    assert "12 euros 40" in speech_text(charging, 1.0)
    receipt = speech_text(receipt_model("en"), 1.0)
    assert receipt == ("Your receipt. Total: 9 euros 37. Energy delivered: 15.875 kilowatt "
                       "hours. Amount charged: 9 euros. Paid with: Payment card, Visa. On the "
                       "left of the screen is a QR code: scan it with your phone to keep your "
                       "receipt as an e-receipt. Press Read receipt aloud to hear the full "
                       "receipt, or Done to finish.")


def test_words_for_amounts_energy_durations_and_times():
    assert spoken_amount(Decimal("12.40"), "EUR", "en") == "12 euros 40"
    assert spoken_amount(Decimal("1.00"), "EUR", "de") == "1 Euro"
    assert spoken_amount(Decimal("0.01"), "EUR", "en") == "1 cent"
    assert spoken_amount(Decimal("0.595"), "EUR", "de") == "59,5 Cent"
    assert spoken_amount(Decimal("4.20"), "CHF", "en") == "4.2 CHF"
    assert spoken_energy(Decimal("23500"), "nl") == "23,5 kilowattuur"
    assert spoken_energy(Decimal("1000"), "en") == "1 kilowatt hour"
    assert spoken_duration(3661, "de") == "1 Stunde 1 Minute 1 Sekunde"
    assert spoken("1.234,56 EUR", "de") == "1234 Euro 56"
    assert spoken("Idle fee 0.10 EUR/min (after 10 min) 10:00-18:30", "en") == \
        "Idle fee 10 cents per minute (after 10 minutes) 10 o'clock-18 30"
    assert spoken("Tarif 2,40 EUR/h 10:00", "fr") == "Tarif 2 euros 40 par heure 10 heures"


def test_pin_and_card_numbers_are_never_spoken():
    assert spoken("Visa \u2022\u2022\u2022\u2022\u00a01234", "en") == "Visa"
    assert spoken("PIN \u25cf\u25cf\u25cf\u25cf", "en") == "PIN"
    said = spoken("card 4111 1111 1111 1111 and 5500-0000-0000-0004", "en")
    assert not re.search(r"\d", said)
    pin = dict(every_screen("en"))["pin"]
    pin.service.pin = "4711"
    for digit_text in (speech_text(pin, 1.0), str(speech_key(pin, 1.0))):
        assert "4711" not in digit_text and "\u25cf" not in digit_text
    full = receipt_speech(receipt_model("en"), 1.0)
    assert "Charging receipt" in full and "9 euros 37" in full
    assert "1111" not in full and "\u2022" not in full


def test_key_ignores_running_figures_but_not_the_screen():
    model = connected(daemon_state(phase="Charging", session_id=SESSION, energy_wh="100",
                                   elapsed_s=5))
    before = speech_key(model, 1.0)
    apply_message(model, {"type": "state", "state": {**model.state, "energy_wh": "900",
                                                     "elapsed_s": 6}}, 2.0)
    assert speech_key(model, 2.0) == before
    apply_message(model, {"type": "state", "state": {**model.state,
                                                     "phase": "Finishing"}}, 3.0)
    assert speech_key(model, 3.0) != before


def view(screen: str, title: str = "t", language: str = "en") -> View:
    key = SPOKEN_WIDGETS[screen][0]
    return View(screen=screen, language=language, texts={key: title})


def test_control_toggle_update_repeat_pause_and_reset_after_the_session():
    control = SpeechControl()
    assert control.update(view("idle"), lambda: "x", 0) is None  # off: silent
    on = control.toggle("on text", "en", "off", 1.0)
    assert on.kind == "on" and control.on
    assert control.update(view("idle"), lambda: "idle", 1.1) is None  # said with "on"
    say = control.update(view("authorising", "Approved"), lambda: "approved", 2.0)
    assert say is not None and say.text == "approved"
    assert control.update(view("authorising", "Approved"), lambda: "approved", 2.5) is None
    assert control.repeat("again", "en", 3.0).text == "again"
    assert control.pause("paused", "again", "en", 3.5).kind == "paused"
    assert control.update(view("charging"), lambda: "charging", 4.0) is None  # paused
    assert control.pause("paused", "now", "en", 4.5).text == "now"  # resumes
    control.update(view("receipt"), lambda: "receipt", 5.0)
    said = control.update(view("idle"), lambda: "idle", 6.0)  # the session is over
    assert said is not None and (said.kind, said.text) == ("off", "Speech output off.")
    assert not control.on  # the session is over: the next driver starts without speech


def test_control_switches_off_on_the_idle_screen_after_a_while_untouched():
    control = SpeechControl()
    control.toggle("on", "en", "off", 10.0)
    assert control.update(view("idle"), lambda: "", 10.0 + IDLE_RESET_S - 1) is None
    assert control.on
    control.update(view("idle"), lambda: "", 10.0 + IDLE_RESET_S)
    assert not control.on


def test_headphone_jack_decision_with_a_fake_reader():
    readings = iter([None, None])
    control = SpeechControl()
    for plugged in readings:  # a board that cannot tell: nothing happens
        assert control.on_jack(plugged, "on", "en", "off", 0) is None
    assert not control.on
    control = SpeechControl()
    assert control.on_jack(False, "on", "en", "off", 0) is None
    assert control.on_jack(True, "on", "en", "off", 1).kind == "on" and control.by_jack
    assert control.on_jack(True, "on", "en", "off", 2) is None
    assert control.on_jack(False, "on", "en", "off", 3).kind == "off" and not control.on
    control.toggle("on", "en", "off", 4)  # switched on by hand: unplugging keeps it
    control.on_jack(True, "on", "en", "off", 5)
    control.on_jack(False, "on", "en", "off", 6)
    assert control.on


def test_amixer_answer_and_the_corner_and_the_keys():
    assert parse_cget("numid=12,iface=CARD,name='Headphone Jack'\n  ; type=BOOLEAN\n"
                      "  : values=on\n") is True
    assert parse_cget("  : values=off\n") is False
    assert parse_cget("amixer: Cannot find the given element") is None
    side_px = 20 * 480 / 85.9  # 20 mm on the 7" panel at 800x480: 112 px
    assert in_corner(5, 5, 480) and in_corner(side_px - 1, side_px - 1, 480)
    assert not in_corner(side_px + 2, 5, 480) and not in_corner(5, side_px + 2, 480)
    assert KEY_ACTIONS == {"f1": "toggle", "f2": "repeat", "f3": "pause", "f4": "quieter",
                           "f5": "louder"}


def test_a_time_limit_warning_is_spoken_once_when_it_appears():
    from dataclasses import replace as _replace

    from ui.model import UiModel
    from ui.screen_state import ScreenState
    from ui.speech_texts import key_of, text_of
    from ui.view import build_view

    fields = View.__dataclass_fields__
    assert "timeout_speech" in fields
    model = UiModel()
    view = build_view(model, 0.0)
    warned = _replace(view, timeout_speech="The screen will return to the start in 20 seconds.")
    later = _replace(view, timeout_speech="The screen will return to the start in 19 seconds.")
    assert key_of(warned) != key_of(view)  # appears: said
    assert key_of(later) == key_of(warned)  # counting down: not said again
    s = ScreenState(model, 0.0)
    assert text_of(warned, s) == "The screen will return to the start in 20 seconds."


# ---- volume (EN 301 549 5.1.3.11 to 5.1.3.13) ------------------------------------------


def test_volume_steps_stop_at_the_ends_and_get_louder():
    from ui.speech_volume import AMPLITUDES, DEFAULT_STEP, STEPS, SpeechVolume

    assert STEPS >= 5 and 1 < DEFAULT_STEP < STEPS
    assert list(AMPLITUDES) == sorted(set(AMPLITUDES)) and AMPLITUDES[-1] <= 200
    volume = SpeechVolume()
    assert volume.step == DEFAULT_STEP
    assert volume.change(+1) and volume.step == DEFAULT_STEP + 1
    while volume.change(+1):
        pass
    assert volume.step == STEPS and not volume.change(+1)
    assert volume.amplitude == AMPLITUDES[-1]
    while volume.change(-1):
        pass
    assert volume.step == 1 and volume.amplitude == AMPLITUDES[0]
    volume.reset()
    assert volume.step == DEFAULT_STEP
    with pytest.raises(ValueError, match="between 1 and"):
        SpeechVolume(STEPS + 1)


@pytest.mark.parametrize(("language", "four", "five"), [
    ("en", "Volume 4 of 5.", "Volume 5 of 5. This is the loudest."),
    ("de", "Lautstärke 4 von 5.", "Lautstärke 5 von 5. Das ist die lauteste Stufe."),
    ("fr", "Volume 4 sur 5.", "Volume 5 sur 5. C'est le volume le plus fort."),
    ("nl", "Volume 4 van 5.", "Volume 5 van 5. Dit is het luidst.")])
def test_each_volume_change_is_spoken_at_the_new_volume(language, four, five):
    from ui.speech_volume import AMPLITUDES, DEFAULT_AMPLITUDE, volume_words

    control = SpeechControl()
    words = lambda volume: volume_words(volume, language)  # noqa: E731
    assert control.change_volume(+1, words, language, 0.5) is None  # off: nothing
    assert control.volume.amplitude == DEFAULT_AMPLITUDE
    control.toggle("on", language, "off", 1.0)
    say = control.change_volume(+1, words, language, 2.0)
    assert (say.kind, say.text, say.amplitude) == ("volume", four, AMPLITUDES[3])
    say = control.change_volume(+1, words, language, 3.0)
    assert (say.text, say.amplitude) == (five, AMPLITUDES[4])
    assert control.change_volume(+1, words, language, 4.0).text == five  # at the end
    assert control.repeat("again", language, 5.0).amplitude == AMPLITUDES[4]
    for _ in range(5):
        quietest = control.change_volume(-1, words, language, 6.0)
    assert quietest.amplitude == AMPLITUDES[0]
    assert quietest.text.startswith(four.replace("4", "1")) and quietest.text != \
        four.replace("4", "1")  # "... This is the quietest."


def test_volume_returns_to_the_default_whenever_speech_switches_off():
    from ui.speech_volume import AMPLITUDES, DEFAULT_AMPLITUDE, DEFAULT_STEP

    def louder(control: SpeechControl) -> None:
        control.change_volume(+1, lambda v: f"{v.step}", "en", 1.5)
        control.change_volume(+1, lambda v: f"{v.step}", "en", 1.6)
        assert control.volume.amplitude == AMPLITUDES[-1]

    control = SpeechControl()  # switched off by F1: "off" said at the driver's volume
    control.toggle("on", "en", "off", 1.0)
    louder(control)
    off = control.toggle("on", "en", "off", 2.0)
    assert off.kind == "off" and off.amplitude == AMPLITUDES[-1]
    assert control.volume.step == DEFAULT_STEP
    assert control.toggle("on", "en", "off", 3.0).amplitude == DEFAULT_AMPLITUDE

    control = SpeechControl()  # after the session: the next driver at the default
    control.toggle("on", "en", "off", 1.0)
    louder(control)
    control.update(view("charging"), lambda: "charging", 2.0)
    control.update(view("receipt"), lambda: "receipt", 3.0)
    assert control.volume.amplitude == AMPLITUDES[-1]  # kept during the session
    control.update(view("idle"), lambda: "idle", 4.0)
    assert not control.on and control.volume.step == DEFAULT_STEP

    control = SpeechControl()  # nobody there: the idle reset
    control.toggle("on", "en", "off", 1.0)
    louder(control)
    control.update(view("idle"), lambda: "", 1.6 + IDLE_RESET_S)  # from the last key
    assert not control.on and control.volume.step == DEFAULT_STEP

    control = SpeechControl()  # headphones pulled out
    control.on_jack(False, "on", "en", "off", 0.0)
    control.on_jack(True, "on", "en", "off", 1.0)
    louder(control)
    assert control.on_jack(False, "on", "en", "off", 2.0).amplitude == AMPLITUDES[-1]
    assert control.volume.step == DEFAULT_STEP


def test_the_speaker_renders_each_text_at_its_volume():
    from ui.speech import Speaker, espeak_args
    from ui.speech_volume import DEFAULT_AMPLITUDE

    assert espeak_args("de", stdout=True, amplitude=140)[-3:] == ["-a", "140", "--stdout"]
    args = espeak_args("en")
    assert args[args.index("-a") + 1] == str(DEFAULT_AMPLITUDE)
    speaker = Speaker("none")
    try:
        speaker.say("Volume 5 of 5.", "en", 140)
        speaker.say("hello", "en")
        assert [r.amplitude for r in speaker.requests] == [140, DEFAULT_AMPLITUDE]
    finally:
        speaker.close()


def test_volume_keys_and_buttons_have_words_in_every_language():
    for language in LANGUAGES:
        texts = catalogue(language)
        assert texts["speech_quieter"] and texts["speech_louder"]
        assert "F4" in texts["speech_controls"] and "F5" in texts["speech_controls"]
    assert KEY_ACTIONS["f4"] == "quieter" and KEY_ACTIONS["f5"] == "louder"


# ---- QR codes (5.1.3.6) and the on/off state (5.6.1) -----------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_qr_codes_are_announced_with_what_they_are_for(language):
    from ui.speech_texts import QR_SPEECH

    screens = dict(every_screen(language))
    for screen, (hint, key) in QR_SPEECH.items():
        model = screens[screen]
        shown = build_view(model, 1.0)
        assert shown.qr, screen  # the code is on screen
        text = speech_text(model, 1.0)
        announced = spoken(catalogue(language)[key], language)
        assert announced in text, (language, screen)
        assert "QR" in announced, (language, screen)
        assert not shown.texts.get(hint) or shown.texts[hint] not in text  # not twice
    purposes = {"en": ("app", "receipt", "transparency"), "de": ("App", "Beleg",
                "Transparenz"), "fr": ("application", "reçu", "transparence"),
                "nl": ("app", "bon", "transparantie")}[language]
    for (_screen, (_hint, key)), word in zip(QR_SPEECH.items(), purposes, strict=True):
        assert word in catalogue(language)[key], (language, key)


def test_no_qr_announcement_without_a_qr_code():
    idle = dict(every_screen("en"))["idle"]
    idle.state = {**idle.state, "app_start": None}
    assert not build_view(idle, 1.0).qr
    assert "QR code" not in speech_text(idle, 1.0)


def test_every_f1_press_says_the_new_state():
    control = SpeechControl()
    kinds = [control.toggle("Speech output on. x", "en", "Speech output off.", t)
             for t in (1.0, 2.0, 3.0, 4.0)]
    assert [(k.kind, k.text.split(".")[0]) for k in kinds] == [
        ("on", "Speech output on"), ("off", "Speech output off"),
        ("on", "Speech output on"), ("off", "Speech output off")]
    for language in LANGUAGES:
        assert catalogue(language)["speech_on"] != catalogue(language)["speech_off"]


def test_a_refused_card_leaves_speech_on_for_the_next_try():
    control = SpeechControl()
    control.toggle("on", "en", "off", 1.0)
    control.update(view("authorising", "Card declined"), lambda: "declined", 2.0)
    assert control.update(view("idle"), lambda: "idle", 3.0) is not None  # spoken
    assert control.on


@pytest.mark.parametrize("text", [
    "541333******1234", "xxxx xxxx xxxx 1234", "5413 33XX XXXX 1234",
    "4111  1111  1111  1111", "4111/1111/1111/1111", "4111\u00a01111\n1111 1111",
])
def test_no_digit_of_a_card_number_in_any_form_is_spoken(text):
    said = spoken(f"Card {text} declined", "en")
    assert not any(part in said for part in ("4111", "5413", "541333", "1234")), said


def test_a_receipt_time_is_spoken_as_a_clock_time_without_the_offset():
    said = spoken("Start 21.11.2026 10:05:07 +01:00", "en")
    assert "hour" not in said and "+" not in said and "10" in said, said
