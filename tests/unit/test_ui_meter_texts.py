"""The signing meter on the touchscreen, as plain data in all four languages: the key in
blocks of 4, the clock in words, signed register values never rounded (ui/metering.py);
the "Meter info" page from idle and charging and when it closes; the receipt's "Signed
meter data" page with its OCMF QR code and a fault in words (ui/meter_screens.py,
ui/view.py, ui/buttons.py); the technician's "Signed metering" block
(ui/service_diag.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.metering_helpers import (
    METER_SERIAL,
    METHOD,
    OCMF,
    PLAIN_METERING,
    PUBLIC_KEY,
    metering,
    signed_meter,
)
from tests.unit.test_ui_service_view import DIAGNOSTICS, logged_in
from tests.unit.test_ui_view import (
    SESSION,
    charging_state,
    connected,
    daemon_state,
    receipt_reply,
    receipt_state,
)
from ui.buttons import press
from ui.i18n import tr
from ui.messages import apply_message
from ui.metering import clock_words, key_blocks, register_kwh, technician_lines
from ui.model import INFO_TIMEOUT_S, UiModel
from ui.service_diag import DiagnosticsText
from ui.view import build_view

LANGUAGES = ("en", "de", "fr", "nl")
NB = "\u00a0"
KEY_LINES = [
    "3059 3013 0607 2A86 48CE 3D02",
    "0106 082A 8648 CE3D 0301 0703",
    "4200 045A 4F0B 1C3E 2D7F 6A8B",
    "9C0D 1E2F 3A4B 5C6D 7E8F 9011",
    "2233 4455 6677 8899 00AA BBCC",
    "DDEE FF00 1122 3344 5566 7788",
    "99AA BBCC DDEE FF00 1122 3344",
    "5566 7788 9900 AA",
]


# ---- the pure words ------------------------------------------------------------------------

def test_the_key_in_blocks_of_4_six_a_line_upper_case_every_digit_kept():
    assert key_blocks(PUBLIC_KEY).splitlines() == KEY_LINES
    assert key_blocks(PUBLIC_KEY.lower()) == key_blocks(PUBLIC_KEY)
    assert key_blocks(" 3059 3013\n0607 ") == "3059 3013 0607"  # spaces from the daemon
    assert key_blocks(PUBLIC_KEY).replace(" ", "").replace("\n", "") == PUBLIC_KEY
    assert key_blocks("abcd", per_line=1) == "ABCD"


@pytest.mark.parametrize("key, shown", [
    (None, "-"), ("", "-"), (42, "-"), ("not-a-key!", "not-a-key!")])
def test_a_missing_or_odd_key_is_shown_as_it_came_never_dropped(key, shown):
    assert key_blocks(key) == shown


@pytest.mark.parametrize("language, start, fraction, zero", [
    ("en", "12,345.678", "12,345.6785", "0.000"),
    ("de", "12.345,678", "12.345,6785", "0,000"),
    ("fr", "12\u202f345,678", "12\u202f345,6785", "0,000"),
    ("nl", "12.345,678", "12.345,6785", "0,000"),
])
def test_signed_register_values_in_kwh_with_every_digit(language, start, fraction, zero):
    assert register_kwh("12345678", language) == f"{start}{NB}kWh"
    assert register_kwh("12345678.5", language) == f"{fraction}{NB}kWh"  # never rounded
    assert register_kwh("0", language) == f"{zero}{NB}kWh"
    assert register_kwh(None, language) == register_kwh("x", language) == "-"


@pytest.mark.parametrize("language, words", [
    ("en", ("synchronised", "set, not synchronised (informative)", "not synchronised",
            "relative time since the meter started", "unknown")),
    ("de", ("synchronisiert", "gestellt, nicht synchronisiert (informativ)",
            "nicht synchronisiert", "relative Zeit seit dem Start des Zählers", "unbekannt")),
    ("fr", ("synchronisée", "réglée, non synchronisée (informative)", "non synchronisée",
            "temps relatif depuis le démarrage du compteur", "inconnu")),
    ("nl", ("gesynchroniseerd", "ingesteld, niet gesynchroniseerd (informatief)",
            "niet gesynchroniseerd", "relatieve tijd sinds de start van de meter", "onbekend")),
])
def test_the_meter_clock_in_words(language, words):
    assert tuple(clock_words(letter, language) for letter in ("S", "I", "U", "R", None)) \
        == words
    assert clock_words("X", language) == words[-1]  # a letter OCMF does not know


# ---- the "Meter info" page -----------------------------------------------------------------

def meter_info_model(state: dict[str, Any] | None = None, language: str = "en") -> UiModel:
    model = connected(state or daemon_state(metering=metering()), language=language)
    assert "idle_meter_info" in build_view(model, 1.0).buttons
    press(model, "idle_meter_info", 1.0)
    return model


@pytest.mark.parametrize("language, meter, method, clock, hint", [
    ("en", f"Meter LEM DCBM 400/600, serial number {METER_SERIAL}",
     f"Signature method: {METHOD}", "Meter clock: synchronised",
     "S.A.F.E. transparency software"),
    ("de", f"Zähler LEM DCBM 400/600, Seriennummer {METER_SERIAL}",
     f"Signaturverfahren: {METHOD}", "Uhr des Zählers: synchronisiert",
     "S.A.F.E. Transparenzsoftware"),
    ("fr", f"Compteur LEM DCBM 400/600, numéro de série {METER_SERIAL}",
     f"Méthode de signature{NB}: {METHOD}", f"Horloge du compteur{NB}: synchronisée",
     "logiciel de transparence S.A.F.E."),
    ("nl", f"Meter LEM DCBM 400/600, serienummer {METER_SERIAL}",
     f"Handtekeningmethode: {METHOD}", "Klok van de meter: gesynchroniseerd",
     "S.A.F.E. transparantiesoftware"),
])
def test_meter_info_shows_the_meter_its_key_in_full_and_how_to_check(
        language, meter, method, clock, hint):
    view = build_view(meter_info_model(language=language), 2.0)
    texts = view.texts
    assert view.screen == "meter_info"
    assert texts["mi_title"] == tr("mi_title", language)
    assert texts["mi_meter"] == meter
    assert texts["mi_method"] == method
    assert texts["mi_clock"] == clock
    assert hint in texts["mi_hint"]
    assert texts["mi_key"].splitlines() == KEY_LINES
    assert texts["mi_key_label"] == tr("mi_key_label", language)
    assert texts["mi_fault"] == ""
    assert texts["mi_back"] == tr("back", language)
    assert set(view.buttons) >= {"mi_back", "report", "lang_de"}
    assert "stop" not in view.buttons and "idle_meter_info" not in view.buttons


def test_meter_info_says_an_untrusted_clock_and_a_fault_in_words():
    state = daemon_state(metering=metering(meter_clock="U", clock_trusted=False,
                                           fault="signature check failed"))
    texts = build_view(meter_info_model(state), 2.0).texts
    assert texts["mi_clock"] == ("Meter clock: not synchronised. The times in the signed "
                                 "data do not come from a synchronised clock")
    assert texts["mi_fault"] == "The meter reports a problem: signature check failed"
    de = build_view(meter_info_model(state, "de"), 2.0).texts
    assert de["mi_fault"] == "Der Zähler meldet ein Problem: signature check failed"


@pytest.mark.parametrize("changes", [{}, {"metering": None}, {"metering": PLAIN_METERING},
                                     {"metering": "junk"}])
def test_no_meter_info_button_without_a_signing_meter(changes):
    """An older daemon (no `metering`) or a plain meter: nothing new on screen."""
    for state in (daemon_state(**changes), charging_state(**changes)):
        model = connected(state)
        view = build_view(model, 1.0)
        assert not {"idle_meter_info", "charging_meter_info"} & set(view.buttons)
        assert press(model, "idle_meter_info", 1.0) == []
        assert build_view(model, 1.5).screen == view.screen


def test_meter_info_from_charging_and_back_to_the_stop_button():
    model = connected(charging_state(metering=metering()))
    view = build_view(model, 1.0)
    assert {"stop", "charging_meter_info"} <= set(view.buttons)
    assert view.texts["charging_meter_info"] == "Meter info"
    press(model, "charging_meter_info", 1.0)
    assert build_view(model, 2.0).screen == "meter_info"
    assert press(model, "mi_back", 3.0) == []
    view = build_view(model, 3.0)
    assert view.screen == "charging" and "stop" in view.buttons


def test_meter_info_goes_back_by_itself_and_a_touch_keeps_it_up():
    model = meter_info_model()
    assert build_view(model, 1.0 + INFO_TIMEOUT_S - 0.1).screen == "meter_info"
    assert build_view(model, 1.0 + INFO_TIMEOUT_S).screen == "idle"
    model = meter_info_model()
    press(model, "lang_de", 40.0)  # a touch on the page
    assert build_view(model, 40.0 + INFO_TIMEOUT_S - 0.1).screen == "meter_info"
    assert build_view(model, 40.0 + INFO_TIMEOUT_S).screen == "idle"


def test_a_card_or_a_new_phase_closes_meter_info():
    model = meter_info_model()
    apply_message(model, {"type": "card_present", "reader": "r", "kind": "card"}, 2.0)
    assert build_view(model, 2.1).screen == "authorising"
    model.card_present_at_s = None
    assert build_view(model, 2.2).screen == "idle"  # not back to the page
    model = connected(charging_state(metering=metering()))
    press(model, "charging_meter_info", 1.0)
    apply_message(model, {"type": "state", "state": charging_state(
        metering=metering(), phase="Finishing")}, 2.0)
    assert build_view(model, 2.1).screen == "finishing"
    apply_message(model, {"type": "state", "state": charging_state(metering=metering())}, 3.0)
    assert build_view(model, 3.1).screen == "charging"  # the phase it was opened in


# ---- the receipt's signed meter data -------------------------------------------------------

def signed_receipt_model(language: str = "en", **changes: Any) -> UiModel:
    model = connected(receipt_state(metering=metering()), language=language)
    reply = receipt_reply("en" if language not in ("en", "de") else language)
    reply["receipt"]["signed_meter"] = signed_meter(**changes)
    model.receipt_request = (SESSION, language)
    apply_message(model, reply, 0.5)
    return model


@pytest.mark.parametrize("language, start, end, hint", [
    ("en", "Meter reading at the start: 12,345.678\u00a0kWh",
     "Meter reading at the end: 12,361.553\u00a0kWh", "transparency software"),
    ("de", "Zählerstand zu Beginn: 12.345,678\u00a0kWh",
     "Zählerstand am Ende: 12.361,553\u00a0kWh", "Transparenzsoftware"),
    ("fr", "Index du compteur au début\u00a0: 12\u202f345,678\u00a0kWh",
     "Index du compteur à la fin\u00a0: 12\u202f361,553\u00a0kWh", "logiciel de transparence"),
    ("nl", "Meterstand bij de start: 12.345,678\u00a0kWh",
     "Meterstand aan het einde: 12.361,553\u00a0kWh", "transparantiesoftware"),
])
def test_signed_meter_data_shows_the_ocmf_qr_and_both_register_values(
        language, start, end, hint):
    model = signed_receipt_model(language)
    view = build_view(model, 1.0)
    assert view.screen == "receipt"
    assert {"ack", "signed_data"} <= set(view.buttons)
    assert view.texts["signed_data"] == tr("signed_data", language)
    press(model, "signed_data", 1.0)
    view = build_view(model, 2.0)
    assert view.screen == "signed_data"
    assert view.qr == OCMF  # the daemon's text, unchanged
    assert view.texts["sd_start"] == start
    assert view.texts["sd_end"] == end
    assert METER_SERIAL in view.texts["sd_meter"]
    assert hint in view.texts["sd_hint"]
    assert view.texts["sd_fault"] == ""
    assert "ack" not in view.buttons and "sd_back" in view.buttons
    press(model, "sd_back", 3.0)
    assert build_view(model, 3.0).screen == "receipt"


@pytest.mark.parametrize("language, words", [
    ("en", "The meter reported a problem: this charge cannot be billed by energy "
           "(end document missing)."),
    ("de", "Der Zähler hat ein Problem gemeldet: Dieser Ladevorgang kann nicht nach Energie "
           "abgerechnet werden (end document missing)."),
    ("fr", "Le compteur a signalé un problème\u00a0: cette recharge ne peut pas être "
           "facturée à l'énergie (end document missing)."),
    ("nl", "De meter heeft een probleem gemeld: deze laadbeurt kan niet op energie worden "
           "afgerekend (end document missing)."),
])
def test_not_billable_by_energy_says_the_fault_in_words(language, words):
    model = signed_receipt_model(language, billable_by_energy=False,
                                 fault="end document missing", qr=None)
    press(model, "signed_data", 1.0)
    view = build_view(model, 2.0)
    assert view.texts["sd_fault"] == words
    assert view.qr is None and view.texts["sd_hint"] == tr("sd_no_qr", language)
    model = signed_receipt_model(language, billable_by_energy=False)
    press(model, "signed_data", 1.0)
    assert build_view(model, 2.0).texts["sd_fault"] == tr("sd_not_billable", language)


def test_a_plain_meters_receipt_has_no_signed_data_button():
    model = connected(receipt_state())
    apply_message(model, receipt_reply("en"), 0.5)
    view = build_view(model, 1.0)
    assert view.screen == "receipt" and "signed_data" not in view.buttons
    assert press(model, "signed_data", 1.0) == []


def test_signed_data_goes_back_to_the_receipt_and_done_ends_both():
    model = signed_receipt_model()
    press(model, "signed_data", 1.0)
    assert build_view(model, 1.0 + INFO_TIMEOUT_S).screen == "receipt"
    press(model, "signed_data", 70.0)
    press(model, "lang_de", 71.0)  # the receipt is fetched again; the page stays
    assert build_view(model, 72.0).screen == "signed_data"
    press(model, "sd_back", 73.0)
    press(model, "ack", 74.0)
    assert build_view(model, 75.0).screen == "idle"


# ---- the technician's block ----------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_the_service_menu_shows_the_signing_meter_and_its_key_in_full(language):
    model = logged_in()
    model.state = {**(model.state or {}), "metering": metering(meter_clock="I",
                                                                clock_trusted=False)}
    model.language = language
    texts = build_view(model, 1.5).texts
    assert texts["svc_h_signing"] == tr("svc_h_signing", language)
    lines = texts["svc_diag_signing"].splitlines()
    assert lines == technician_lines(metering(meter_clock="I", clock_trusted=False),
                                     language)
    assert METER_SERIAL in lines[0] and "LEM DCBM 400/600" in lines[0]
    assert METHOD in lines[1]
    assert f"{clock_words('I', language)} (I)" in lines[2]
    assert tr("svc_yes", language) in lines[3] and tr("svc_no", language) in lines[3]
    assert texts["svc_diag_signing_key"].splitlines() == KEY_LINES


def test_the_service_block_in_english_a_plain_meter_and_the_diagnostics_own_metering():
    text = DiagnosticsText(DIAGNOSTICS, "en", None, metering=metering(fault="tamper"))
    assert text.section("signing").splitlines() == [
        f"Meter LEM DCBM 400/600, serial {METER_SERIAL}",
        f"Signature method: {METHOD}", "Meter clock: synchronised (S)",
        "Terminal clock synchronised: yes · times trusted: yes", "Fault: tamper",
        "Public key:"]
    plain = DiagnosticsText(DIAGNOSTICS, "en", None, metering=PLAIN_METERING)
    assert plain.section("signing") == "Plain meter: no signed data"
    assert plain.signing_key() == ""
    own = DiagnosticsText({**DIAGNOSTICS, "metering": metering(meter_serial="X1",
                                                               firmware="2.1")},
                          "en", None, metering=PLAIN_METERING)
    assert own.section("signing").splitlines()[0] == "Meter LEM DCBM 400/600, serial X1"
    assert "firmware: 2.1" in own.section("signing")  # a field added later shows too
