"""ui.view: which screen and what every widget says, for states like the daemon sends, in
all four languages; the requests the UI sends back; buttons."""

from __future__ import annotations

from typing import Any

import pytest

from terminal.kernel.driver_texts import driver_message
from terminal.kernel.locales import LOCALES
from terminal.pricing import load_tariff
from terminal.pricing.display import tariff_texts
from tests.unit.metering_helpers import metering, signed_meter
from ui.buttons import press
from ui.i18n import tr
from ui.messages import apply_message, set_connected
from ui.model import FEEDBACK_S, RECEIPT_RETRY_S, REPORT_TIMEOUT_S, UiModel, View
from ui.view import build_view, keep_units
from ui.widgets import REPORT_CATEGORIES, REPORT_WIDGETS, SCREEN_WIDGETS, SCREENS, TONES, TOP_BAR

LANGUAGES = ("en", "de", "fr", "nl")
NB = "\u00a0"
TARIFF = load_tariff("examples/tariffs/de_dc_hpc_adhoc.json")
PRICE_TEXTS = {code: list(tariff_texts(TARIFF, code)) for code in LOCALES}
APP_URL = "https://pay.example.com/start/DE*EVT*E0001*1/K7P2M9QX"
SESSION = "5b0e6a6e-3c1f-4a59-9f57-0d8c5e0e2b11"


def daemon_state(**changes: Any) -> dict[str, Any]:
    """A snapshot as Daemon.snapshot + the identification status + the issue 7 fields."""
    state: dict[str, Any] = {
        "station_id": "DE*EVT*E0001*1", "phase": "Available", "session_id": None,
        "plugged": False, "output_on": False, "energy_wh": None, "power_w": None,
        "cost": None, "cost_cap": None, "energy_cap_wh": None, "stop_reason": None,
        "since": "2026-11-21T05:22:18.517Z", "meter_fault": None, "charger_fault": None,
        "price_list": {"tariff_id": "DE-HPC-ADHOC-2025", "currency": "EUR",
                       "texts": PRICE_TEXTS},
        "backend_online": True, "accepting_sessions": True, "card_payment": True,
        "readers": {"*": "ready", "ACS ACR1252 00 00": "ready", "/dev/ttyUSB0": "ready"},
        "language": "en", "languages": list(LANGUAGES), "operator": "EVTerm Charging GmbH",
        "support_phone": "+49 30 1234567", "now": "2026-11-21T14:25:00Z",
        "session_started_at": None, "elapsed_s": None, "idle": None,
        "receipt_pending": None, "app_start": {"url": APP_URL, "code": "K7P2M9QX"},
    }
    state.update(changes)
    return state


def charging_state(**changes: Any) -> dict[str, Any]:
    values = {"phase": "Charging", "session_id": SESSION, "plugged": True, "output_on": True,
              "energy_wh": "0", "power_w": "150000",
              "cost": {"currency": "EUR", "excl_vat": "0.00", "incl_vat": "0.00"},
              "cost_cap": "25.00", "session_started_at": "2026-11-21T14:00:00Z",
              "elapsed_s": 0}
    values.update(changes)
    return daemon_state(**values)


def connected(state: dict[str, Any] | None = None, now_s: float = 0.0,
              language: str | None = None) -> UiModel:
    model = UiModel()
    set_connected(model, True)
    if state is not None:
        if language is not None:
            state = {**state, "language": language}
        apply_message(model, {"ok": True, "op": "subscribe", "state": state}, now_s)
    return model


def view_of(state: dict[str, Any], language: str = "en", now_s: float = 1.0) -> View:
    return build_view(connected(state, language=language), now_s)


# ---- every screen fills exactly its widgets -----------------------------------------------

def screens_by_state() -> dict[str, UiModel]:
    pending = {"session_id": SESSION, "until": "2026-11-21T14:27:00Z"}
    models = {
        "idle": connected(daemon_state()),
        "authorising": connected(daemon_state(phase="Authorized", cost_cap="50.00")),
        "charging": connected(charging_state()),
        "finishing": connected(charging_state(phase="Finishing", output_on=False)),
        "receipt": connected(daemon_state(receipt_pending=pending)),
        "error": connected(daemon_state(phase="Faulted", meter_fault="timeout")),
        "out_of_service": connected(daemon_state(accepting_sessions=False)),
        "reconnecting": UiModel(),
        "pin": connected(daemon_state(service={"state": "pin", "technician": None,
                                               "locked_until": None})),
        "service": connected(daemon_state(service={"state": "active", "technician": "…1234",
                                                   "locked_until": None})),
    }
    models["service"].service.token = "token-from-service-login"  # ui/service_view.py
    models["meter_info"] = connected(daemon_state(metering=metering()))
    press(models["meter_info"], "idle_meter_info", 0.5)
    models["signed_data"] = connected(daemon_state(receipt_pending=pending))
    reply = receipt_reply("en")
    reply["receipt"]["signed_meter"] = signed_meter()
    apply_message(models["signed_data"], reply, 0.2)
    press(models["signed_data"], "signed_data", 0.5)
    models["vat_entry"] = connected(charging_state())
    press(models["vat_entry"], "vat_add", 0.5)  # the company VAT number page
    return models


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_fills_exactly_its_widgets(language):
    seen = set()
    for screen, model in screens_by_state().items():
        model.language = language
        view = build_view(model, 1.0)
        assert view.screen == screen
        assert view.language == language
        expected = {*TOP_BAR, *SCREEN_WIDGETS[screen], *REPORT_WIDGETS}
        assert set(view.texts) == expected, screen
        for widget in (*SCREEN_WIDGETS[screen][:1], "report", "lang_en", "report_title"):
            assert view.texts[widget].strip(), (screen, widget)
        seen.add(screen)
    assert seen == set(SCREENS)


# ---- reconnecting ------------------------------------------------------------------------

def test_reconnecting_before_the_first_state_and_when_the_daemon_goes_away():
    view = build_view(UiModel(), 0.0)
    assert view.screen == "reconnecting"
    assert view.texts["reconnect_title"] == "One moment please"
    assert view.texts["reconnect_detail"] == ("The screen is reconnecting to the charger. "
                                              "A running charge continues.")
    assert view.buttons == ()
    assert view.offline is False

    model = connected(charging_state(), language="de")
    assert build_view(model, 1.0).screen == "charging"
    set_connected(model, False)
    view = build_view(model, 2.0)
    assert view.screen == "reconnecting"
    assert view.texts["reconnect_title"] == "Einen Moment bitte"
    assert view.texts["station"] == "DE*EVT*E0001*1"  # the last state's station id stays
    set_connected(model, True)
    assert build_view(model, 3.0).screen == "charging"


# ---- idle --------------------------------------------------------------------------------

IDLE_TEXTS = {
    "en": ("Pay with: contactless bank card, charge card or app (QR code)", "Connector free",
           "Support: +49 30 1234567", "Report a problem", "Prices"),
    "de": ("Bezahlen mit: Bankkarte (kontaktlos), Ladekarte oder App (QR-Code)",
           "Ladepunkt frei", "Hotline: +49 30 1234567", "Problem melden", "Preise"),
    "fr": (f"Payer par{NB}: carte bancaire sans contact, carte de recharge ou appli (code QR)",
           "Point de charge libre", f"Assistance{NB}: +49 30 1234567", "Signaler un problème",
           "Tarifs"),
    "nl": ("Betalen met: contactloze bankpas, laadpas of app (QR-code)", "Laadpunt vrij",
           "Klantenservice: +49 30 1234567", "Probleem melden", "Tarieven"),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_idle_shows_prices_ways_to_pay_and_the_app_qr(language):
    view = view_of(daemon_state(), language)
    pay_ways, connector, support, report, price_title = IDLE_TEXTS[language]
    assert view.screen == "idle"
    # the daemon's words, a no-break space between each number and its unit (issue 15)
    assert view.texts["price_headline"] == keep_units(PRICE_TEXTS[language][0])
    assert view.price_lines == tuple(keep_units(line) for line in PRICE_TEXTS[language])
    assert [line.replace(NB, " ") for line in view.price_lines] == [
        line.replace(NB, " ") for line in PRICE_TEXTS[language]]
    assert view.texts["pay_ways"] == pay_ways
    assert view.texts["idle_connector"] == connector
    assert view.texts["support"] == support
    assert view.texts["report"] == report
    assert view.texts["price_title"] == price_title
    assert view.texts["station"] == "DE*EVT*E0001*1"
    assert view.texts["operator"] == "EVTerm Charging GmbH"
    assert view.texts["badge_offline"] == ""
    assert [view.texts[f"lang_{c}"] for c in LANGUAGES] == [
        "English", "Deutsch", "Français", "Nederlands"]
    assert view.qr == APP_URL
    assert view.texts["app_hint"]
    assert view.buttons == ("report", "lang_en", "lang_de", "lang_fr", "lang_nl",
                            "a11y_large_text", "a11y_high_contrast")
    assert view.progress is None and view.offline is False


def test_idle_headline_is_the_per_kwh_line_and_the_idle_fee_is_listed():
    view = view_of(daemon_state(), "de")
    assert view.texts["price_headline"] == f"0,59{NB}EUR/kWh inkl. 19{NB}% MwSt."
    # issue 15: never "(ab 4" / "h ...)" on two lines
    assert (f"Blockiergebühr 0,10{NB}EUR/min inkl. 19{NB}% MwSt. (ab 4{NB}h nach Ladebeginn)"
            in view.price_lines)


def test_idle_without_app_start_or_card_payment_and_plugged():
    view = view_of(daemon_state(app_start=None, card_payment=False, plugged=True,
                                support_phone=None))
    assert view.texts["pay_ways"] == "Pay with: charge card"
    assert view.texts["app_hint"] == ""
    assert view.qr is None
    assert view.texts["idle_connector"] == "Vehicle plugged in - ready to start"
    assert view.texts["support"] == ""


OFFLINE_BADGES = {"en": "Offline - only charge cards work",
                  "de": "Offline - nur Ladekarten funktionieren",
                  "fr": "Hors ligne - seules les cartes de recharge fonctionnent",
                  "nl": "Offline - alleen laadpassen werken"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_offline_badge_and_only_charge_cards(language):
    view = view_of(daemon_state(backend_online=False), language)
    assert view.offline is True
    assert view.texts["badge_offline"] == OFFLINE_BADGES[language]
    assert view.qr is None  # app start needs the backend
    assert view.texts["pay_ways"] == {"en": "Pay with: charge card",
                                      "de": "Bezahlen mit: Ladekarte",
                                      "fr": f"Payer par{NB}: carte de recharge",
                                      "nl": "Betalen met: laadpas"}[language]


def test_connectivity_and_reader_events_update_the_last_state():
    model = connected(daemon_state())
    apply_message(model, {"type": "connectivity", "backend_online": False}, 1.0)
    view = build_view(model, 1.0)
    assert view.offline and view.texts["badge_offline"] == OFFLINE_BADGES["en"]
    apply_message(model, {"type": "connectivity", "backend_online": True}, 2.0)
    assert build_view(model, 2.0).texts["badge_offline"] == ""

    model = connected(daemon_state(app_start=None))
    for reader in ("*", "ACS ACR1252 00 00", "/dev/ttyUSB0"):
        apply_message(model, {"type": "reader", "reader": reader, "state": "absent",
                              "detail": "unplugged"}, 3.0)
    view = build_view(model, 3.0)
    assert view.screen == "out_of_service"
    assert view.texts["oos_detail"] == ("The card readers are not working. Please use "
                                        "another charger. Sorry for the inconvenience.")
    apply_message(model, {"type": "reader", "reader": "/dev/ttyUSB0", "state": "ready",
                          "detail": ""}, 4.0)
    assert build_view(model, 4.0).screen == "idle"


def test_readers_down_with_app_start_stays_idle():
    readers = {"*": "service_down", "/dev/ttyUSB0": "absent"}
    assert view_of(daemon_state(readers=readers)).screen == "idle"
    assert view_of(daemon_state(readers=readers, app_start=None)).screen == "out_of_service"


# ---- authorising ---------------------------------------------------------------------------

def tap(result: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"type": "tap", "reader": "ACS ACR1252 00 00", "kind": "card", "result": result,
            "reason": reason, "message": driver_message(reason, "en"), "decision_ms": 812.0,
            **extra}


@pytest.mark.parametrize(("language", "title", "detail"), [
    ("en", "Checking card…", "Asking your bank - one moment please"),
    ("de", "Karte wird geprüft…", "Anfrage bei Ihrer Bank - einen Moment bitte"),
    ("fr", "Vérification de la carte…", "Demande à votre banque - un instant, s'il vous plaît"),
    ("nl", "Kaart wordt gecontroleerd…", "Uw bank wordt gevraagd - een moment geduld"),
])
def test_card_present_says_checking_card(language, title, detail):
    model = connected(daemon_state(), language=language)
    apply_message(model, {"type": "card_present", "reader": "ACS", "kind": "card"}, 10.0)
    view = build_view(model, 10.1)
    assert view.screen == "authorising"
    assert (view.texts["auth_title"], view.texts["auth_detail"]) == (title, detail)
    assert view.texts["auth_cap"] == ""


@pytest.mark.parametrize(("language", "title", "detail", "cap"), [
    ("en", "Approved", "Plug in your vehicle", "Pre-authorised amount: 50.00 EUR"),
    ("de", "Freigegeben", "Bitte schließen Sie Ihr Fahrzeug an", "Reservierter Betrag: 50,00 EUR"),
    ("fr", "Autorisé", "Branchez votre véhicule", f"Montant pré-autorisé{NB}: 50,00 EUR"),
    ("nl", "Goedgekeurd", "Sluit uw voertuig aan", "Gereserveerd bedrag: 50,00 EUR"),
])
def test_approved_plug_in_your_vehicle(language, title, detail, cap):
    model = connected(daemon_state(), language=language)
    apply_message(model, {"type": "card_present", "reader": "ACS", "kind": "card"}, 10.0)
    apply_message(model, tap("accepted", "accepted", session_id=SESSION, offline=False,
                             decided_by="gateway", cost_cap="50.00"), 11.0)
    apply_message(model, {"type": "state", "state": daemon_state(
        phase="Authorized", session_id=SESSION, cost_cap="50.00", language=language)}, 11.0)
    view = build_view(model, 11.5)
    assert view.screen == "authorising"
    assert (view.texts["auth_title"], view.texts["auth_detail"], view.texts["auth_cap"]) == (
        title, detail, cap)
    # Authorized goes on showing it after the feedback time, until the EV is plugged in
    assert build_view(model, 11.0 + FEEDBACK_S + 1).texts["auth_title"] == title


def test_approved_when_already_plugged_and_charging_takes_over():
    model = connected(daemon_state(plugged=True))
    apply_message(model, tap("accepted", "accepted", session_id=SESSION, cost_cap="50.00"), 1.0)
    apply_message(model, {"type": "state", "state": daemon_state(
        phase="Authorized", plugged=True, cost_cap="50.00")}, 1.0)
    assert build_view(model, 1.1).texts["auth_detail"] == "Charging starts in a moment"
    apply_message(model, {"type": "state", "state": charging_state()}, 2.0)
    assert build_view(model, 2.0).screen == "charging"  # not the approval for 6 s more


@pytest.mark.parametrize(("event", "tone"), [
    (None, "waiting"),  # card_present only: checking
    (tap("accepted", "accepted", session_id=SESSION), "ok"),
    (tap("declined", "do_not_honor"), "refused"),
    (tap("error", "terminal_error"), "refused"),
    (tap("tap_again", "tap_again"), "attention"),
    (tap("in_use", "in_use"), "attention"),
])
def test_authorising_tone_follows_the_outcome(event, tone):
    model = connected(daemon_state())
    apply_message(model, {"type": "card_present", "reader": "ACS", "kind": "card"}, 1.0)
    if event is not None:
        apply_message(model, event, 1.2)
    view = build_view(model, 1.3)
    assert (view.screen, view.tone) == ("authorising", tone)
    assert view.tone in TONES
    assert build_view(connected(daemon_state()), 1.0).tone == ""  # other screens: none


@pytest.mark.parametrize(("language", "title", "detail"), [
    ("en", "Not approved", "Card declined by your bank"),
    ("de", "Nicht freigegeben", "Karte von Ihrer Bank abgelehnt"),
    ("fr", "Refusé", "Carte refusée par votre banque"),
    ("nl", "Niet goedgekeurd", "Kaart geweigerd door uw bank"),
])
def test_declined_by_the_bank_in_words(language, title, detail):
    model = connected(daemon_state(), language=language)
    apply_message(model, {"type": "card_present", "reader": "ACS", "kind": "card"}, 20.0)
    apply_message(model, tap("declined", "do_not_honor", session_id=SESSION), 21.0)
    view = build_view(model, 21.0)
    assert view.screen == "authorising"
    assert (view.texts["auth_title"], view.texts["auth_detail"]) == (title, detail)
    # issue 15: the next step, not a dead end (the idle screen offers the app's QR code)
    assert view.texts["auth_cap"] == tr("auth_next_card_or_app", language)
    assert build_view(model, 21.0 + FEEDBACK_S - 0.1).screen == "authorising"
    assert build_view(model, 21.0 + FEEDBACK_S).screen == "idle"


@pytest.mark.parametrize(("result", "reason", "title", "detail"), [
    ("declined", "offline_payment", "Not approved",
     "Charger offline - only charge cards work now"),
    ("declined", "card_not_supported", "Not approved", "Card not accepted here"),
    ("tap_again", "tap_again", "Hold the card on the reader",
     "Card removed too early - please tap again"),
    ("in_use", "in_use", "Charger in use", "This charger is in use"),
    ("stopping", "stopped", "Card recognised", "Charging is stopping"),
    ("info", "unplug", "Charging finished",
     "Charging has ended - unplug the vehicle to finish"),
    ("error", "terminal_error", "Something went wrong", "Charger not available right now"),
])
def test_tap_results_in_words(result, reason, title, detail):
    model = connected(daemon_state())
    apply_message(model, tap(result, reason), 5.0)
    view = build_view(model, 5.5)
    assert view.screen == "authorising"
    assert (view.texts["auth_title"], view.texts["auth_detail"]) == (title, detail)


def test_authorizing_phase_without_a_card_event():
    view = view_of(daemon_state(phase="Authorizing", session_id=SESSION), "nl")
    assert view.screen == "authorising"
    assert view.texts["auth_title"] == "Autorisatie wordt gecontroleerd…"
    assert view.texts["auth_detail"] == "Een moment geduld"


# ---- charging ------------------------------------------------------------------------------

CHARGING_START = {
    "en": ("0.000 kWh", "150.0 kW", "0:00:00", "0.00 EUR", "Cost incl. VAT",
           "Limit: 25.00 EUR", "Charging", "Stop",
           "To stop, hold the same card on the reader or press Stop"),
    "de": ("0,000 kWh", "150,0 kW", "0:00:00", "0,00 EUR", "Kosten inkl. MwSt.",
           "Höchstbetrag: 25,00 EUR", "Ladevorgang läuft", "Beenden",
           "Zum Beenden dieselbe Karte an das Lesegerät halten oder „Beenden“ drücken"),
    "fr": ("0,000 kWh", "150,0 kW", "0:00:00", "0,00 EUR", "Coût TTC",
           f"Plafond{NB}: 25,00 EUR", "Recharge en cours", "Arrêter",
           f"Pour arrêter, présentez la même carte ou appuyez sur «{NB}Arrêter{NB}»"),
    "nl": ("0,000 kWh", "150,0 kW", "0:00:00", "0,00 EUR", "Kosten incl. btw",
           "Limiet: 25,00 EUR", "Bezig met laden", "Stoppen",
           "Stoppen: houd dezelfde kaart tegen de lezer of druk op Stoppen"),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_charging_starts_at_zero(language):
    view = view_of(charging_state(), language)
    texts = view.texts
    assert view.screen == "charging"
    assert (texts["energy"], texts["power"], texts["elapsed"], texts["cost"],
            texts["cost_label"], texts["cap"], texts["charging_title"], texts["stop"],
            texts["stop_hint"]) == CHARGING_START[language]
    assert view.progress == 0.0
    assert "stop" in view.buttons
    assert view.price_lines == () and view.qr is None


@pytest.mark.parametrize(("language", "energy", "power", "cost"), [
    ("en", "12.346 kWh", "149.9 kW", "2.13 EUR"),
    ("de", "12,346 kWh", "149,9 kW", "2,13 EUR"),
    ("fr", "12,346 kWh", "149,9 kW", "2,13 EUR"),
    ("nl", "12,346 kWh", "149,9 kW", "2,13 EUR"),
])
def test_charging_progress(language, energy, power, cost):
    state = charging_state(energy_wh="12345.6", power_w="149949",
                           cost={"currency": "EUR", "excl_vat": "1.79", "incl_vat": "2.13"},
                           elapsed_s=3723)
    view = view_of(state, language)
    assert (view.texts["energy"], view.texts["power"], view.texts["cost"]) == (
        energy, power, cost)
    assert view.texts["elapsed"] == "1:02:03"
    assert view.progress == pytest.approx(2.13 / 25)


def test_charging_large_energy_groups_digits_per_language():
    state = charging_state(energy_wh="1234567")
    assert view_of(state, "en").texts["energy"] == "1,234.567 kWh"
    assert view_of(state, "de").texts["energy"] == "1.234,567 kWh"
    assert view_of(state, "fr").texts["energy"] == "1\u202f234,567 kWh"


def test_charging_energy_cap_and_no_cap_and_suspended_titles():
    view = view_of(charging_state(cost_cap=None, energy_cap_wh="40000", energy_wh="10000"))
    assert view.texts["cap"] == "Limit: 40.000 kWh"
    assert view.progress == pytest.approx(0.25)
    view = view_of(charging_state(cost_cap=None))
    assert view.texts["cap"] == "" and view.progress is None
    over = view_of(charging_state(cost={"currency": "EUR", "excl_vat": "30", "incl_vat": "30"}))
    assert over.progress == 1.0
    assert view_of(charging_state(phase="SuspendedEV")).texts["charging_title"] == (
        "Paused by the vehicle")
    assert view_of(charging_state(phase="SuspendedEVSE"), "de").texts["charging_title"] == (
        "Warten auf die Ladestation")


def test_stop_button_sends_stop_and_says_stopping():
    model = connected(charging_state())
    assert press(model, "stop", 5.0) == [{"op": "stop", "reason": "Local",  # this session
                                          "session_id": model.state["session_id"]}]
    assert model.state["session_id"]
    view = build_view(model, 5.0)
    assert view.texts["stop"] == "Stopping…"
    assert "stop" not in view.buttons
    assert press(model, "stop", 5.1) == []  # not twice
    apply_message(model, {"type": "state", "state": charging_state(
        phase="Finishing", stop_reason="Local")}, 6.0)
    assert build_view(model, 6.0).screen == "finishing"


def test_stop_refused_gives_the_button_back():
    model = connected(charging_state())
    press(model, "stop", 1.0)
    apply_message(model, {"ok": False, "op": "stop", "error": "no session"}, 1.2)
    assert "stop" in build_view(model, 1.3).buttons


def test_malformed_numbers_are_shown_as_zero():
    state = charging_state(energy_wh="lots", power_w=None, cost={"incl_vat": "NaN"},
                           cost_cap="x", elapsed_s="soon")
    view = view_of(state)
    assert view.screen == "charging"
    assert (view.texts["energy"], view.texts["power"], view.texts["elapsed"],
            view.texts["cost"], view.texts["cap"]) == (
        "0.000 kWh", "0.0 kW", "0:00:00", "0.00 EUR", "")


# ---- finishing ---------------------------------------------------------------------------

def finishing_state(idle: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    values = {"phase": "Finishing", "output_on": False, "power_w": "0",
              "energy_wh": "44445", "stop_reason": "StoppedByEV",
              "cost": {"currency": "EUR", "excl_vat": "22.04", "incl_vat": "26.23"},
              "idle": idle, **changes}
    return charging_state(**values)


@pytest.mark.parametrize(("language", "texts"), [
    ("en", ("Charging finished - your vehicle is full", "Energy delivered: 44.445 kWh",
            "Cost incl. VAT: 26.23 EUR", "Idle fee starts in 7 min",
            "Unplug your vehicle to finish")),
    ("de", ("Laden beendet - Ihr Fahrzeug ist voll", "Geladene Energie: 44,445 kWh",
            "Kosten inkl. MwSt.: 26,23 EUR", "Blockiergebühr fällt in 7 min an",
            "Zum Abschluss bitte das Fahrzeug abstecken")),
    ("fr", ("Recharge terminée - la batterie est pleine", f"Énergie délivrée{NB}: 44,445 kWh",
            f"Coût TTC{NB}: 26,23 EUR", "Frais d'occupation dans 7 min",
            "Débranchez votre véhicule pour terminer")),
    ("nl", ("Laden beëindigd - uw voertuig is vol", "Geladen energie: 44,445 kWh",
            "Kosten incl. btw: 26,23 EUR", "Blokkeertarief gaat in over 7 min",
            "Koppel uw voertuig los om af te ronden")),
])
def test_finishing_with_idle_fee_countdown(language, texts):
    idle = {"fee_from": "2026-11-21T14:32:00Z", "accruing": False, "accrued": "0.00",
            "currency": "EUR"}
    view = view_of(finishing_state(idle, now="2026-11-21T14:25:00Z"), language)
    assert view.screen == "finishing"
    assert tuple(view.texts[w] for w in SCREEN_WIDGETS["finishing"]) == texts
    assert view.buttons == ("report", "lang_en", "lang_de", "lang_fr", "lang_nl")


def test_idle_fee_countdown_rounds_up_and_accrual():
    idle = {"fee_from": "2026-11-21T14:32:00Z", "accruing": False, "accrued": "0.00",
            "currency": "EUR"}
    assert view_of(finishing_state(idle, now="2026-11-21T14:25:01.500Z")).texts[
        "idle_fee"] == "Idle fee starts in 7 min"
    assert view_of(finishing_state(idle, now="2026-11-21T14:31:59Z")).texts[
        "idle_fee"] == "Idle fee starts in 1 min"
    accruing = {"fee_from": None, "accruing": True, "accrued": "1.2", "currency": "EUR"}
    assert view_of(finishing_state(accruing)).texts["idle_fee"] == "Idle fee so far 1.20 EUR"
    assert view_of(finishing_state(accruing), "de").texts["idle_fee"] == (
        "Blockiergebühr bisher 1,20 EUR")
    assert view_of(finishing_state(accruing), "fr").texts["idle_fee"] == (
        f"Frais d'occupation jusqu'ici{NB}: 1,20 EUR")
    none = {"fee_from": None, "accruing": False, "accrued": "0.00", "currency": "EUR"}
    assert view_of(finishing_state(none)).texts["idle_fee"] == ""


@pytest.mark.parametrize(("reason", "title"), [
    ("Local", "Charging finished"), ("CostLimitReached", "Charging stopped at your limit"),
    ("Timeout", "Charging stopped - the vehicle took no energy"),
    ("ChargerFault", "Charging stopped by a fault"),
])
def test_finishing_title_says_why(reason, title):
    assert view_of(finishing_state(None, stop_reason=reason)).texts["finish_title"] == title


# ---- receipt -------------------------------------------------------------------------------

RECEIPT_URL = "https://receipts.example.com/r/" + SESSION


def receipt_reply(language: str, url: str | None = RECEIPT_URL) -> dict[str, Any]:
    title = {"en": "Charging receipt", "de": "Ladebeleg"}[language]
    text = f"{title}\nEVTerm Charging GmbH\nTotal incl. VAT     26.23 EUR\n"
    return {"ok": True, "op": "receipt", "session_id": SESSION, "text": text,
            "receipt": {"schema_version": 1, "language": language, "session_id": SESSION,
                        "receipt_url": url}}


def receipt_state(**changes: Any) -> dict[str, Any]:
    pending = {"session_id": SESSION, "until": "2026-11-21T14:29:00Z"}
    return daemon_state(receipt_pending=pending, **changes)


def test_receipt_is_fetched_shown_with_qr_and_acknowledged():
    model = connected(charging_state())
    requests = apply_message(model, {"type": "state", "state": receipt_state()}, 1.0)
    assert requests == [{"op": "receipt", "session_id": SESSION, "language": "en"}]
    assert apply_message(model, {"type": "state", "state": receipt_state()}, 2.0) == []
    view = build_view(model, 2.0)
    assert view.screen == "receipt"
    assert view.texts["receipt_hint"] == "Loading your receipt…"
    assert view.receipt_lines == () and view.qr is None

    assert apply_message(model, receipt_reply("en"), 2.5) == []
    view = build_view(model, 2.5)
    assert view.receipt_lines == ("Charging receipt", "EVTerm Charging GmbH",
                                  "Total incl. VAT     26.23 EUR")
    assert view.qr == RECEIPT_URL
    assert view.texts["receipt_title"] == "Your receipt"
    assert view.texts["receipt_hint"] == "Scan the QR code to keep your receipt"
    assert view.texts["ack"] == "Done"
    assert "ack" in view.buttons
    assert apply_message(model, {"type": "state", "state": receipt_state()}, 3.0) == []

    assert press(model, "ack", 4.0) == [{"op": "ack_receipt", "session_id": SESSION}]
    assert build_view(model, 4.0).screen == "idle"  # at once, before the daemon's state
    apply_message(model, {"ok": True, "op": "ack_receipt"}, 4.1)
    apply_message(model, {"type": "state", "state": daemon_state()}, 4.2)
    assert build_view(model, 4.2).screen == "idle"


def test_receipt_follows_the_language():
    model = connected(receipt_state(), now_s=1.0)
    apply_message(model, receipt_reply("en"), 1.1)
    requests = press(model, "lang_de", 2.0)
    assert requests == [{"op": "language", "language": "de"},
                        {"op": "receipt", "session_id": SESSION, "language": "de"}]
    view = build_view(model, 2.0)
    assert view.language == "de"
    assert view.texts["receipt_title"] == "Ihr Beleg"
    assert view.receipt_lines == ()  # never the English text under German titles
    assert view.texts["receipt_hint"] == "Beleg wird geladen…"
    # the daemon confirms the language: no second request
    reply = {"ok": True, "op": "language", "state": receipt_state(language="de")}
    assert apply_message(model, reply, 2.1) == []
    apply_message(model, receipt_reply("de", url=None), 2.2)
    view = build_view(model, 2.2)
    assert view.receipt_lines[0] == "Ladebeleg"
    assert view.qr is None
    assert view.texts["receipt_hint"] == "Tippen Sie auf „Fertig“, wenn Sie ihn gelesen haben"
    # the daemon falls back to English after language_reset_s: fetched again in English
    requests = apply_message(model, {"type": "state", "state": receipt_state()}, 70.0)
    assert requests == [{"op": "receipt", "session_id": SESSION, "language": "en"}]


def test_receipt_request_retried_and_refusal_shown():
    model = connected(receipt_state(), now_s=1.0)
    apply_message(model, {"ok": False, "op": "receipt", "error": "session_id: no receipt"}, 1.2)
    view = build_view(model, 1.3)
    assert view.screen == "receipt"
    assert view.texts["receipt_hint"] == "The receipt cannot be shown right now"
    assert apply_message(model, {"type": "state", "state": receipt_state()}, 2.0) == []
    assert apply_message(model, {"type": "state", "state": receipt_state()},
                         1.0 + RECEIPT_RETRY_S) == [
        {"op": "receipt", "session_id": SESSION, "language": "en"}]


def test_receipt_updated_is_fetched_again():
    model = connected(receipt_state(), now_s=1.0)
    apply_message(model, receipt_reply("en"), 1.1)
    assert apply_message(model, {"type": "receipt_updated", "session_id": "other"}, 2.0) == []
    assert apply_message(model, {"type": "receipt_updated", "session_id": SESSION}, 2.0) == [
        {"op": "receipt", "session_id": SESSION, "language": "en"}]


def test_a_new_drivers_decline_shows_over_a_pending_receipt():
    model = connected(receipt_state(), now_s=1.0)
    apply_message(model, receipt_reply("en"), 1.1)
    apply_message(model, tap("declined", "declined"), 2.0)
    assert build_view(model, 2.0).texts["auth_detail"] == "Card declined by your bank"
    assert build_view(model, 2.0 + FEEDBACK_S).screen == "receipt"
    apply_message(model, tap("info", "unplug"), 10.0)  # the previous session's own card
    assert build_view(model, 10.0).screen == "receipt"


# ---- errors and out of service ---------------------------------------------------------

@pytest.mark.parametrize(("changes", "detail"), [
    ({"meter_fault": "counter went backwards", "plugged": True},
     "The energy meter is not working. Please unplug your vehicle."),
    ({"charger_fault": "overtemperature"},
     "The charger's power unit reports a fault. Please use another charger."),
    ({}, "The charger has a fault. Please use another charger."),
])
def test_faulted_in_words(changes, detail):
    view = view_of(daemon_state(phase="Faulted", **changes))
    assert view.screen == "error"
    assert view.texts["error_title"] == "Fault - charging stopped"
    assert view.texts["error_detail"] == detail


def test_faulted_in_german():
    view = view_of(daemon_state(phase="Faulted", charger_fault="x", plugged=True), "de")
    assert view.texts["error_title"] == "Störung - Laden gestoppt"
    assert view.texts["error_detail"] == ("Das Leistungsteil der Ladestation meldet eine "
                                          "Störung. Bitte stecken Sie Ihr Fahrzeug ab.")


@pytest.mark.parametrize(("language", "title", "detail"), [
    ("en", "Out of service", "This charger cannot start new sessions right now. Please use "
     "another charger. Sorry for the inconvenience."),
    ("de", "Außer Betrieb", "Diese Ladestation kann gerade keine neuen Ladevorgänge starten. "
     "Bitte nutzen Sie eine andere Ladestation. Entschuldigen Sie die Unannehmlichkeiten."),
    ("fr", "Hors service", "Cette borne ne peut pas démarrer de nouvelle recharge pour le "
     "moment. Veuillez utiliser une autre borne. Veuillez nous excuser pour la gêne "
     "occasionnée."),
    ("nl", "Buiten gebruik", "Deze laadpaal kan nu geen nieuwe laadsessies starten. Gebruik "
     "een andere laadpaal. Excuses voor het ongemak."),
])
def test_out_of_service_when_not_accepting_sessions(language, title, detail):
    view = view_of(daemon_state(accepting_sessions=False), language)
    assert view.screen == "out_of_service"
    assert (view.texts["oos_title"], view.texts["oos_detail"]) == (title, detail)


@pytest.mark.parametrize("changes, words", [
    ({"charger_fault": "over-temperature"}, "power unit"),
    ({"meter_fault": "no_reply"}, "energy meter"),
])
def test_out_of_service_while_the_hardware_reports_a_fault_between_sessions(changes, words):
    view = view_of(daemon_state(**changes))
    assert view.screen == "out_of_service"
    assert words in view.texts["oos_detail"]
    assert view_of(daemon_state()).screen == "idle"


def test_a_running_session_goes_on_showing_when_storage_is_full():
    assert view_of(charging_state(accepting_sessions=False)).screen == "charging"


# ---- language and report panel ---------------------------------------------------------

def test_language_button_switches_at_once_and_a_refusal_reverts_it():
    model = connected(daemon_state())
    assert press(model, "lang_fr", 1.0) == [{"op": "language", "language": "fr"}]
    assert build_view(model, 1.0).texts["report"] == "Signaler un problème"
    # a state sent before the daemon saw the request does not switch back
    apply_message(model, {"type": "state", "state": daemon_state()}, 1.01)
    assert build_view(model, 1.02).language == "fr"
    apply_message(model, {"ok": False, "op": "language", "error": "language: unknown"}, 1.1)
    assert build_view(model, 1.1).language == "en"


def test_default_language_until_the_daemon_says_one():
    model = UiModel(default_language="nl")
    set_connected(model, True)
    state = daemon_state()
    del state["language"]
    apply_message(model, {"type": "state", "state": state}, 0.0)
    assert build_view(model, 0.0).texts["idle_connector"] == "Laadpunt vrij"


def test_report_a_problem_flow():
    model = connected(charging_state(), language="de")
    assert press(model, "report", 1.0) == []
    view = build_view(model, 1.0)
    assert view.report_open
    assert view.texts["report_title"] == "Was ist das Problem?"
    assert view.buttons == ("lang_en", "lang_de", "lang_fr", "lang_nl",
                            *(f"report_{c}" for c in REPORT_CATEGORIES), "report_cancel")
    assert view.texts["report_cancel"] == "Abbrechen"
    requests = press(model, "report_payment", 2.0)
    assert len(requests) == 1
    assert requests[0]["op"] == "report_problem" and requests[0]["category"] == "payment"
    assert 1 <= len(requests[0]["text"]) <= 500
    view = build_view(model, 2.0)
    assert view.texts["report_result"] == "Wird gesendet…"
    assert view.buttons == ("lang_en", "lang_de", "lang_fr", "lang_nl", "report_cancel")
    apply_message(model, {"ok": True, "op": "report_problem", "reference": 42}, 2.2)
    view = build_view(model, 2.2)
    assert view.texts["report_result"] == (
        "Danke - der Betreiber ist informiert (Meldung 42)")
    assert view.texts["report_cancel"] == "Schließen"
    assert press(model, "report_cancel", 3.0) == []
    view = build_view(model, 3.0)
    assert not view.report_open and "stop" in view.buttons


def test_report_failure_names_the_hotline_and_the_panel_times_out():
    model = connected(daemon_state())
    press(model, "report", 1.0)
    press(model, "report_damage", 2.0)
    apply_message(model, {"ok": False, "op": "report_problem", "error": "text: bad"}, 2.1)
    view = build_view(model, 2.1)
    assert view.texts["report_result"] == ("Sorry, the report could not be sent. "
                                           "Please call +49 30 1234567.")
    assert "report_damage" in view.buttons  # may try again
    assert build_view(model, 2.0 + REPORT_TIMEOUT_S).report_open is False


def test_inactive_buttons_do_nothing():
    model = connected(daemon_state())
    assert press(model, "stop", 1.0) == []
    assert press(model, "ack", 1.0) == []
    assert press(model, "report_payment", 1.0) == []
    assert press(model, "nonsense", 1.0) == []
    assert press(UiModel(), "lang_de", 1.0) == []  # reconnecting: nothing to send to


def test_messages_that_are_not_understood_change_nothing():
    model = connected(daemon_state())
    before = build_view(model, 1.0)
    for message in ({"type": "mystery"}, {"op": "sessions", "ok": True, "sessions": []},
                    {"ok": False, "error": "unknown op 'x'"}, {"type": "state", "state": 7},
                    {"type": "reader", "reader": 3}):
        assert apply_message(model, message, 1.0) == []
    assert build_view(model, 1.0) == before


# ---- issue 15: the next step after a declined card; faults over the receipt ---------------

NEXT_STEPS = {
    "en": ("Please try another card, or pay with the app", "Please try another card."),
    "de": ("Bitte versuchen Sie eine andere Karte oder bezahlen Sie per App",
           "Bitte versuchen Sie eine andere Karte."),
    "fr": ("Veuillez essayer une autre carte ou payer avec l'application",
           "Veuillez essayer une autre carte."),
    "nl": ("Probeer een andere kaart of betaal met de app", "Probeer een andere kaart."),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_declined_card_says_what_to_do_next(language):
    with_app, card_only = NEXT_STEPS[language]
    model = connected(daemon_state(), language=language)
    apply_message(model, tap("declined", "do_not_honor"), 5.0)
    assert build_view(model, 5.5).texts["auth_cap"].startswith(with_app)
    # no app start (offline, or none configured): another card only
    for state in (daemon_state(backend_online=False), daemon_state(app_start=None)):
        model = connected(state, language=language)
        apply_message(model, tap("declined", "offline_payment"), 5.0)
        assert build_view(model, 5.5).texts["auth_cap"] == card_only
    # other outcomes keep their own words (no "try another card" after "tap again")
    model = connected(daemon_state(), language=language)
    apply_message(model, tap("tap_again", "tap_again"), 5.0)
    assert build_view(model, 5.5).texts["auth_cap"] == ""


@pytest.mark.parametrize(("changes", "words"), [
    ({"charger_fault": "error 3"}, "power unit"),
    ({"meter_fault": "timeout"}, "energy meter"),
    ({"accepting_sessions": False}, "cannot start new sessions"),
])
def test_a_fault_while_the_receipt_is_shown_is_shown_at_once(changes, words):
    model = connected(receipt_state(), now_s=1.0)
    apply_message(model, receipt_reply("en"), 1.1)
    assert build_view(model, 1.2).texts["receipt_fault"] == ""
    apply_message(model, {"type": "state", "state": receipt_state(**changes)}, 2.0)
    view = build_view(model, 2.0)
    assert view.screen == "receipt"  # the receipt stays reachable
    assert view.receipt_lines and "ack" in view.buttons
    assert view.texts["receipt_fault"].startswith("This charger is out of order now.")
    assert words in view.texts["receipt_fault"]
    assert "another charger" in view.texts["receipt_fault"]
    for language in ("de", "fr", "nl"):
        model.language = language
        fault = build_view(model, 2.0).texts["receipt_fault"]
        assert fault.startswith(tr("receipt_fault", language)), fault
    model.language = "en"
    press(model, "ack", 3.0)
    assert build_view(model, 3.0).screen == "out_of_service"


def full_receipt_reply(language: str, payment: dict[str, Any]) -> dict[str, Any]:
    reply = receipt_reply(language)
    reply["receipt"] |= {"currency": "EUR", "energy_wh": "44445",
                         "total": {"excl_vat": "22.04", "incl_vat": "26.23"},
                         "payment": payment}
    return reply


@pytest.mark.parametrize(("language", "total", "energy", "payment"), [
    ("en", "26.23 EUR", "44.445 kWh", f"Visa \u2022\u2022\u2022\u2022{NB}1111"),
    ("de", "26,23 EUR", "44,445 kWh", f"Visa \u2022\u2022\u2022\u2022{NB}1111"),
])
def test_receipt_summary_total_energy_and_payment(language, total, energy, payment):
    model = connected(receipt_state(), now_s=1.0, language=language)
    card = {"method": "card", "card_scheme": "Visa", "card_last4": "1111",
            "reference": None, "authorised_amount": "50.00"}
    apply_message(model, full_receipt_reply(language, card), 1.1)
    texts = build_view(model, 1.2).texts
    assert (texts["receipt_total"], texts["receipt_energy"], texts["receipt_payment"]) == (
        total.replace(" ", NB) if NB in texts["receipt_total"] else total, energy, payment)
    assert texts["receipt_total_label"] == tr("receipt_total_label", language)
    apply_message(model, full_receipt_reply(language, {"method": "rfid"}), 1.3)
    assert build_view(model, 1.4).texts["receipt_payment"] == tr("receipt_pay_rfid", language)


def test_receipt_summary_says_what_was_charged_when_it_is_not_the_total():
    model = connected(receipt_state(), now_s=1.0)
    reply = full_receipt_reply("en", {"method": "card", "card_scheme": "Visa",
                                      "card_last4": "1111"})
    reply["receipt"] |= {"amount_paid": "26.23"}
    apply_message(model, reply, 1.1)
    texts = build_view(model, 1.2).texts
    assert (texts["receipt_paid_label"], texts["receipt_paid"]) == ("", "")
    reply["receipt"] |= {"amount_charged": "25.00", "charge_capped": True,
                         "amount_paid": "25.00"}
    apply_message(model, reply, 1.3)
    texts = build_view(model, 1.4).texts
    assert texts["receipt_total"] == "26.23 EUR"
    assert (texts["receipt_paid_label"], texts["receipt_paid"]) == ("Charged", "25.00 EUR")
