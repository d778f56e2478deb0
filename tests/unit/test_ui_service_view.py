"""ui.service_view through ui.view: the technician's PIN pad and service menu as plain
data — the dots (never the digits), the requests sent with the login token, the
daemon's refusals shown, the token kept and forgotten, diagnostics rendered from a reply
shaped like terminal/service.py's, the actions and their confirm, the refresh timer, and
the driver's out-of-service screen in every language."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ui import service_model as staff
from ui.buttons import press, tick
from ui.i18n import tr
from ui.messages import apply_message, set_connected
from ui.model import UiModel
from ui.view import build_view
from ui.widgets import REPORT_WIDGETS, SCREEN_WIDGETS, TOP_BAR

LANGUAGES = ("en", "de", "fr", "nl")
TOKEN = "q1Zx-secret-token-value"
PIN = "2468"
SESSION = "5b0e6a6e-3c1f-4a59-9f57-0d8c5e0e2b11"
NB = "\u00a0"
DIAGNOSTICS: dict[str, Any] = {  # shaped like terminal/service.py Service.diagnostics()
    "generated_at": "2026-11-21T14:25:00Z",
    "station": {"id": "DE*EVT*E0001*1", "timezone": "Europe/Berlin", "phase": "Available",
                "accepting_sessions": True},
    "meter": {"model": "sim-dc-meter", "url": "tcp://127.0.0.1:5020", "unit_id": 1,
              "serial": "SIM00012345", "expected_serial": "SIM00012345",
              "last_reading": {"energy_wh": "123456.7", "power_w": "7350",
                               "voltage_v": "401.24", "current_a": "18.3",
                               "at": "2026-11-21T14:24:59Z"},
              "last_error": None, "fault": None, "fault_since": None,
              "poll_interval_s": 1.0,
              "counters": {"polls": 8123, "failed_polls": 2,
                           "errors_by_kind": {"timeout": 2}}},
    "readers": {"pcsc": True, "serial_rfid_device": "/dev/ttyUSB0",
                "readers": {"*": {"state": "ready", "last_tap": None},
                            "ACS ACR1252 00 00": {"state": "ready", "last_tap": {
                                "at": "2026-11-21T14:20:01Z", "kind": "rfid",
                                "result": "service", "reason": "technician"}},
                            "/dev/ttyUSB0": {"state": "absent", "last_tap": None}},
                "dropped_taps": 0},
    "charger": {"kind": "modbus", "ev_state": "C", "plugged": True, "output_wanted": True,
                "output_commanded": True, "output_confirmed": False, "fault": None,
                "counters": {"polls": 8120, "failed_polls": 0}},
    "backend": {"kind": "mqtt", "connected": False, "last_ack_at": "2026-11-20T22:10:00Z",
                "outbox_depth": 3, "oldest_undelivered_at": "2026-11-21T14:24:18Z",
                "oldest_undelivered_age_s": 42, "counters": {}},
    "storage": {"state_dir": "/var/lib/evterm", "database": "/var/lib/evterm/evterm.db",
                "database_bytes": 1_843_200, "free_bytes": 12_400_000_000,
                "schema_version": 5, "storage_ok": True},
    "software": {"version": "0.9.0", "python": "3.11.7", "uptime_s": 30300},
    "config": {"service": {"export_allowed_root": "/media/usb", "pins_file": "/etc/p.json"},
               "payment": {"terminal_key": "***"}},
    "recent_sessions": [
        {"id": SESSION, "opened_at": "2026-11-21T13:02:05Z",
         "started_at": "2026-11-21T13:02:11Z", "stopped_at": "2026-11-21T13:40:02Z",
         "phase": "Completed", "stop_reason": "StoppedByEV", "energy_wh": "42316",
         "total": "24.97", "currency": "EUR", "has_receipt": True},
        {"id": "0c4d0c2a-8f4e-4d1b-9a55-1f2c3d4e5f60", "opened_at": "2026-11-20T18:11:30Z",
         "started_at": None, "phase": "Rejected", "stop_reason": "DeAuthorized",
         "energy_wh": None, "total": None, "currency": None, "has_receipt": False},
    ],
    "recent_faults": [  # newest first, as terminal/service.py sorts them
        {"at": "2026-11-21T11:52:40Z", "source": "meter", "event": "cleared",
         "fault": "timeout"},
        {"at": "2026-11-21T11:52:31Z", "source": "meter", "event": "raised",
         "fault": "timeout"},
    ],
}


def daemon_state(service: str = "none", **changes: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "station_id": "DE*EVT*E0001*1", "phase": "Available", "session_id": None,
        "plugged": False, "output_on": False, "meter_fault": None, "charger_fault": None,
        "price_list": {"currency": "EUR", "texts": {c: ["0.59 EUR/kWh"] for c in LANGUAGES}},
        "backend_online": True, "accepting_sessions": True, "card_payment": True,
        "readers": {"*": "ready"}, "language": "en", "languages": list(LANGUAGES),
        "operator": "EVTerm Charging GmbH", "support_phone": "+49 30 1234567",
        "now": "2026-11-21T14:25:00Z", "receipt_pending": None, "app_start": None,
        "service": {"state": service, "technician": "\u20261234" if service != "none"
                    else None, "locked_until": None, "pin_until": None},
        "out_of_service": None,
    }
    state.update(changes)
    return state


def model_with(state: dict[str, Any], now_s: float = 0.0) -> UiModel:
    model = UiModel()
    set_connected(model, True)
    apply_message(model, {"ok": True, "op": "subscribe", "state": state}, now_s)
    return model


def push(model: UiModel, state: dict[str, Any], now_s: float = 0.0) -> list[dict[str, Any]]:
    return apply_message(model, {"type": "state", "state": state}, now_s)


def type_pin(model: UiModel, digits: str, now_s: float = 1.0) -> None:
    for digit in digits:
        assert press(model, f"pin_{digit}", now_s) == []


def reply(request: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The daemon's ok reply to `request` (its op and id echoed)."""
    return {"id": request.get("id"), "ok": True, "op": request["op"], **fields}


def refusal(request: dict[str, Any], error: str) -> dict[str, Any]:
    return {"id": request.get("id"), "ok": False, "op": request["op"], "error": error}


def logged_in(now_s: float = 1.0, diagnostics: dict[str, Any] | None = DIAGNOSTICS
              ) -> UiModel:
    """A model on the service screen: PIN typed, login reply, diagnostics answered."""
    model = model_with(daemon_state("pin"))
    type_pin(model, PIN, now_s)
    [login] = press(model, "pin_ok", now_s)
    [diag] = apply_message(model, reply(login, token=TOKEN, technician="\u20261234",
                                        expires_in_s=300), now_s)
    push(model, daemon_state("active"), now_s)
    if diagnostics is not None:
        assert apply_message(model, reply(diag, diagnostics=copy.deepcopy(diagnostics)),
                             now_s) == []
    return model


# ---- the PIN pad -------------------------------------------------------------------------

def test_pin_screen_shows_a_dot_per_digit_and_never_the_digits():
    model = model_with(daemon_state("pin"))
    view = build_view(model, 1.0)
    assert view.screen == "pin"
    assert set(view.texts) == {*TOP_BAR, *SCREEN_WIDGETS["pin"], *REPORT_WIDGETS}
    assert view.texts["pin_dots"] == ""
    assert view.texts["pin_title"] == "Technician login"
    assert "pin_ok" not in view.buttons and "pin_clear" not in view.buttons
    assert not {"report", "lang_en", "lang_de"} & set(view.buttons)  # staff: no driver bar

    type_pin(model, "9713")
    view = build_view(model, 1.0)
    assert view.texts["pin_dots"] == "\u25cf \u25cf \u25cf \u25cf"
    assert {"pin_ok", "pin_clear", "pin_cancel", *staff.PIN_DIGITS} <= set(view.buttons)
    shown = " ".join(v for k, v in view.texts.items() if k not in staff.PIN_DIGITS)
    assert "9713" not in shown and "9713" not in repr(view)
    assert "9713" not in repr(model) and "9713" not in repr(model.service)

    type_pin(model, "12345678")  # 12 digits at most
    view = build_view(model, 1.0)
    assert view.texts["pin_dots"].count("\u25cf") == 12
    assert not set(staff.PIN_DIGITS) & set(view.buttons)
    assert press(model, "pin_clear", 1.0) == []
    assert build_view(model, 1.0).texts["pin_dots"] == ""


def test_ok_sends_service_login_and_forgets_the_digits_at_once():
    model = model_with(daemon_state("pin"))
    type_pin(model, "13")
    assert press(model, "pin_ok", 1.0) == []  # fewer than 4 digits: OK is inactive
    type_pin(model, "57")
    [request] = press(model, "pin_ok", 1.0)
    assert request["op"] == "service_login" and request["pin"] == "1357"
    assert isinstance(request["id"], str)
    assert model.service.digits == ""
    view = build_view(model, 1.2)
    assert view.texts["pin_dots"] == ""
    assert view.texts["pin_message"] == "Checking the PIN…"
    assert view.buttons == ("pin_cancel",)  # nothing else while the PIN is checked


@pytest.mark.parametrize(("error", "shown"), [
    ("pin: wrong PIN (4 attempts left)", "Wrong PIN (4 attempts left)"),
    ("locked: too many wrong PINs; try again in 30 s",
     "Too many wrong PINs; try again in 30 s"),
    ("card: tap a technician card first", "Tap a technician card first"),
    ("pin: no PIN is set for this technician card (evterm service set-pin)",
     "No PIN is set for this technician card (evterm service set-pin)"),
])
def test_the_daemons_refusal_is_shown_on_the_pin_pad(error, shown):
    model = model_with(daemon_state("pin"))
    type_pin(model, "1111")
    [request] = press(model, "pin_ok", 1.0)
    assert apply_message(model, refusal(request, error), 1.5) == []
    view = build_view(model, 1.6)
    assert view.screen == "pin"
    assert view.texts["pin_message"] == shown
    assert view.tone == "refused"
    assert model.service.token is None
    type_pin(model, "2")  # typing again clears the message
    assert build_view(model, 1.7).texts["pin_message"] == ""


def test_lockout_counts_down_with_the_daemons_clock_then_the_driver_screen_returns():
    model = model_with(daemon_state("pin"))
    type_pin(model, "1111")
    [request] = press(model, "pin_ok", 1.0)
    apply_message(model, refusal(request, "locked: too many wrong PINs; try again in 30 s"),
                  1.0)
    locked = daemon_state("locked", now="2026-11-21T14:25:00Z")
    locked["service"]["locked_until"] = "2026-11-21T14:25:29.200Z"
    push(model, locked, 1.1)
    view = build_view(model, 2.0)
    assert view.screen == "pin"
    assert view.texts["pin_message"] == \
        "Locked after too many wrong PINs - try again in 30 s"
    assert view.buttons == ("pin_cancel",)  # no digits while locked
    assert build_view(model, 1.0 + staff.ATTENTION_S + 0.1).screen == "idle"
    # a technician card tapped while locked shows the lockout again
    apply_message(model, {"type": "tap", "reader": "r", "kind": "rfid", "result": "service",
                          "reason": "technician"}, 30.0)
    assert build_view(model, 30.5).screen == "pin"
    # German
    model.language = "de"
    assert build_view(model, 30.5).texts["pin_message"] == tr("pin_locked", "de", seconds=30)


def test_cancel_is_local_and_a_new_technician_tap_opens_the_pad_again():
    model = model_with(daemon_state("pin"))
    type_pin(model, "12")
    assert press(model, "pin_cancel", 1.0) == []  # no op: the daemon's window runs out
    assert model.service.digits == ""
    assert build_view(model, 1.1).screen == "idle"
    push(model, daemon_state("pin"), 2.0)  # the window is still open: stays dismissed
    assert build_view(model, 2.1).screen == "idle"
    tap = {"type": "tap", "reader": "r", "kind": "rfid", "result": "service",
           "reason": "technician", "message": "technician"}
    apply_message(model, tap, 3.0)
    view = build_view(model, 3.1)
    assert view.screen == "pin"  # not the authorising screen with "Something went wrong"
    assert view.texts["pin_dots"] == ""
    push(model, daemon_state("none"), 4.0)  # the window ran out
    assert build_view(model, 4.1).screen == "idle"
    push(model, daemon_state("pin"), 5.0)  # a later window opens the pad by itself
    assert build_view(model, 5.1).screen == "pin"


# ---- the token ---------------------------------------------------------------------------

def test_login_keeps_the_token_in_memory_and_sends_it_with_every_op():
    model = model_with(daemon_state("pin"))
    type_pin(model, PIN)
    [login] = press(model, "pin_ok", 1.0)
    requests = apply_message(model, reply(login, token=TOKEN, technician="\u20261234",
                                          expires_in_s=300), 1.1)
    assert requests == [{"op": "service_diagnostics", "token": TOKEN,
                         "id": requests[0]["id"]}]
    view = build_view(model, 1.2)  # the snapshot still says "pin": the login is there
    assert view.screen == "service" and view.service_tab == "diag"
    assert view.texts["svc_title"] == "Service menu - technician \u20261234"
    assert view.texts["svc_status"] == "Logged in as technician \u20261234"
    assert view.texts["svc_diag_meter"] == "Loading…"
    push(model, daemon_state("active"), 1.3)
    view = build_view(model, 1.4)
    assert view.screen == "service"
    assert TOKEN not in repr(view) and TOKEN not in repr(model)
    assert all(TOKEN not in text for text in view.texts.values())
    assert {"svc_tab_diag", "svc_tab_sessions", "svc_tab_actions", "svc_logout"} \
        <= set(view.buttons)
    assert not {"report", "lang_de"} & set(view.buttons)
    assert press(model, "svc_tab_actions", 2.0) == []
    [action] = press(model, "svc_resend", 2.1)
    assert action["token"] == TOKEN


def test_the_active_state_published_before_the_login_reply_keeps_the_login():
    """The daemon publishes the snapshot ("active") before it replies with the token."""
    model = model_with(daemon_state("pin"))
    type_pin(model, PIN)
    [login] = press(model, "pin_ok", 1.0)
    push(model, daemon_state("active"), 1.1)
    view = build_view(model, 1.1)
    assert view.screen == "pin" and view.texts["pin_message"] == "Checking the PIN…"
    [request] = apply_message(model, reply(login, token=TOKEN, technician="\u20261234",
                                           expires_in_s=300), 1.2)
    assert request["op"] == "service_diagnostics"  # not a logout
    assert build_view(model, 1.3).screen == "service"


def test_logout_button_sends_service_logout_and_returns_to_the_drivers_screens():
    model = logged_in()
    assert press(model, "svc_logout", 2.0) == [{"op": "service_logout", "token": TOKEN}]
    assert model.service.token is None
    assert build_view(model, 2.1).screen == "idle"  # even before the daemon's "none"
    push(model, daemon_state("none"), 2.2)
    assert build_view(model, 2.3).screen == "idle"


@pytest.mark.parametrize("how", ["idle_logout_pushed", "daemon_restart", "token_refused"])
def test_the_token_is_forgotten(how):
    model = logged_in()
    if how == "idle_logout_pushed":
        push(model, daemon_state("none"), 5.0)
    elif how == "daemon_restart":
        set_connected(model, False)
        assert build_view(model, 5.0).screen == "reconnecting"
        set_connected(model, True)
        push(model, daemon_state("active"), 5.1)  # even if another login is active
    else:
        [request] = tick(model, 5.0)
        apply_message(model, refusal(
            request, "token: unknown or expired; log in first (service_login)"), 5.1)
    assert model.service.token is None
    assert model.service.diagnostics is None
    assert build_view(model, 5.2).screen == "idle"
    assert tick(model, 9.0) == []  # nothing is sent without a token


def test_a_login_reply_after_cancel_is_logged_out_again():
    model = model_with(daemon_state("pin"))
    type_pin(model, PIN)
    [login] = press(model, "pin_ok", 1.0)
    press(model, "pin_cancel", 1.1)
    requests = apply_message(model, reply(login, token=TOKEN, technician="\u20261234",
                                          expires_in_s=300), 1.2)
    assert requests == [{"op": "service_logout", "token": TOKEN}]
    assert model.service.token is None


def test_late_replies_after_logout_are_ignored():
    model = logged_in()
    [request] = tick(model, 3.0)
    press(model, "svc_logout", 3.1)
    assert apply_message(model, reply(request, diagnostics=DIAGNOSTICS), 3.2) == []
    assert model.service.diagnostics is None


# ---- diagnostics -------------------------------------------------------------------------

def test_diagnostics_are_rendered_section_by_section():
    view = build_view(logged_in(), 1.5)
    texts = view.texts
    assert texts["svc_diag_updated"] == "Updated 15:25:00 +01:00"
    assert [texts[f"svc_h_{s}"] for s in staff.DIAG_SECTIONS] == [
        "Energy meter", "", "Power unit", "Card readers", "Backend link", "Storage",
        "Software", "Recent faults"]  # no `metering` from this daemon: no signing block
    assert texts["svc_diag_signing"] == texts["svc_diag_signing_key"] == ""
    meter = texts["svc_diag_meter"].splitlines()
    assert meter[:6] == ["Model: sim-dc-meter", "Serial number: SIM00012345 (as expected)",
                         "123.457 kWh · 7.4 kW", "401.2 V · 18.3 A",
                         "Read at 15:24:59 +01:00", "Fault: none"]
    assert "counters: polls 8123, failed polls 2, timeout 2" in meter
    assert "poll interval 1 s · unit id 1" in meter or "unit id 1 · poll interval 1 s" \
        in meter  # the unit after the value, never "poll interval s 1.0"
    assert not any("interval s" in line for line in meter)
    assert texts["svc_diag_charger"].splitlines()[:3] == [
        "State: C", "Output: commanded on, confirmed off", "Fault: none"]
    assert "plugged: yes" in texts["svc_diag_charger"]
    readers = texts["svc_diag_readers"].splitlines()
    assert readers[:3] == ["pcscd: ready",
                           "ACS ACR1252 00 00: ready, last card 15:20:01 +01:00 service",
                           "/dev/ttyUSB0: absent"]
    assert "pcsc: yes" in readers
    assert texts["svc_diag_backend"].splitlines() == [
        "Link: mqtt, NOT connected", "Last acknowledgement: 2026-11-20 23:10 +01:00",
        "Outbox: 3 waiting, oldest 42 s"]
    assert texts["svc_diag_storage"].splitlines()[:3] == [
        "Database: 1.8 MB", "Free space: 12.4 GB", "Folder: /var/lib/evterm"]
    assert texts["svc_diag_software"].splitlines()[:2] == [
        "Software version: 0.9.0", "Python version: 3.11.7"]
    assert texts["svc_diag_faults"].splitlines() == [  # newest first
        "12:52:40 +01:00 meter cleared: timeout", "12:52:31 +01:00 meter raised: timeout"]
    assert "***" not in " ".join(texts.values())  # the config is not shown


def test_times_are_the_stations_local_time_from_the_status_before_the_diagnostics():
    model = logged_in(diagnostics=None)
    out = {"since": "2026-07-01T12:00:00Z", "by": "\u20261234", "reason": "Maintenance"}
    push(model, daemon_state("active", timezone="America/New_York", out_of_service=out,
                             now="2026-07-01T12:05:00Z"), 1.2)
    press(model, "svc_tab_actions", 1.3)
    texts = build_view(model, 1.4).texts
    assert texts["svc_service_state"] == "Out of service since 08:00:00 -04:00: Maintenance"


def test_diagnostics_in_german_and_a_wrong_meter():
    diagnostics = copy.deepcopy(DIAGNOSTICS)
    diagnostics["meter"]["serial"] = "OTHER999"
    diagnostics["meter"]["fault"] = "timeout"
    diagnostics["backend"]["outbox_depth"] = 0
    model = logged_in(diagnostics=diagnostics)
    model.language = "de"
    texts = build_view(model, 1.5).texts
    meter = texts["svc_diag_meter"].splitlines()
    assert meter[1] == "Seriennummer: OTHER999 - FALSCHER ZÄHLER, erwartet SIM00012345"
    assert meter[2:4] == ["123,457 kWh · 7,4 kW", "401,2 V · 18,3 A"]
    assert "Störung: timeout" in meter
    assert "Warteschlange: alles zugestellt" in texts["svc_diag_backend"]
    assert texts["svc_tab_diag"] == "Diagnose"


@pytest.mark.parametrize("diagnostics", [
    {}, {"meter": None, "readers": [], "backend": "x", "recent_faults": "no"},
    {"meter": {"last_reading": {"energy_wh": "abc", "at": 5}}, "storage": {"free_bytes": "-"},
     "readers": {"r1": "ready"}, "recent_sessions": [{"id": 5}, "junk"]},
])
def test_odd_diagnostics_never_break_the_screen(diagnostics):
    view = build_view(logged_in(diagnostics=diagnostics), 1.5)
    assert view.screen == "service"
    assert all(view.texts[f"svc_diag_{s}"] for s in staff.DIAG_SECTIONS if s != "signing")
    assert view.texts["svc_diag_signing"] == ""  # no `metering` anywhere: no block


def test_diagnostics_refresh_every_2_s_while_the_tab_is_shown():
    model = logged_in(now_s=0.0)
    assert tick(model, 1.0) == []
    [request] = tick(model, 2.0)
    assert request["op"] == "service_diagnostics" and request["token"] == TOKEN
    assert tick(model, 3.0) == []  # in flight: not again
    assert tick(model, 4.0) == []
    apply_message(model, reply(request, diagnostics=DIAGNOSTICS), 4.1)
    assert tick(model, 5.0) == []
    assert len(tick(model, 6.0)) == 1
    assert len(tick(model, 11.5)) == 1  # unanswered for 5 s: asked again
    press(model, "svc_tab_actions", 12.0)
    assert tick(model, 20.0) == []  # the Actions tab needs no refresh


def test_the_ui_logs_out_after_the_idle_time_without_a_touch():
    model = logged_in(now_s=0.0)
    press(model, "svc_tab_sessions", 100.0)
    assert all(r["op"] != "service_logout" for r in tick(model, 399.0))
    assert tick(model, 400.0) == [{"op": "service_logout", "token": TOKEN}]
    assert model.service.token is None


# ---- sessions and receipts -----------------------------------------------------------------

def test_sessions_rows_and_the_receipt_shown_on_request():
    model = logged_in()
    press(model, "svc_tab_sessions", 2.0)
    view = build_view(model, 2.0)
    assert view.service_tab == "sessions"
    assert view.texts["svc_session_0"] == \
        "14:02:11 +01:00 · 42.316 kWh · 24.97 EUR\nStoppedByEV · 5b0e6a6e"
    assert view.texts["svc_session_1"] == "2026-11-20 19:11 +01:00 · - kWh · -\n" \
        "DeAuthorized · 0c4d0c2a"
    assert view.texts["svc_session_2"] == ""
    assert "svc_receipt_0" in view.buttons
    assert "svc_receipt_1" not in view.buttons  # no receipt for a rejected session
    assert view.texts["svc_receipt_text"] == \
        "Press Receipt beside a session to show its receipt here"
    model.language = "fr"
    [request] = press(model, "svc_receipt_0", 3.0)
    assert request == {"op": "service_receipt", "token": TOKEN, "session_id": SESSION,
                       "language": "fr", "id": request["id"]}
    assert build_view(model, 3.0).texts["svc_receipt_text"] == "Chargement du reçu…"
    apply_message(model, reply(request, session_id=SESSION, receipt={},
                               text="RECEIPT\nTotal 24,97 EUR"), 3.1)
    assert build_view(model, 3.2).texts["svc_receipt_text"] == "RECEIPT\nTotal 24,97 EUR"
    [again] = press(model, "svc_receipt_0", 4.0)
    apply_message(model, refusal(again, "session_id: no receipt for it"), 4.1)
    assert build_view(model, 4.2).texts["svc_receipt_text"] == "No receipt for it"


# ---- actions -------------------------------------------------------------------------------

@pytest.mark.parametrize(("button", "action", "extra"), [
    ("svc_out_of_service", "out_of_service", {"reason": "Maintenance"}),
    ("svc_stop_session", "stop_session", {}),
    ("svc_resend", "resend_outbox", {}),
    ("svc_selfcheck", "meter_selfcheck", {}),
    ("svc_export", "export", {"folder": "/media/usb"}),
])
def test_each_action_button_sends_its_action(button, action, extra):
    model = logged_in()
    press(model, "svc_tab_actions", 2.0)
    [request] = press(model, button, 2.1)
    assert request == {"op": "service_action", "token": TOKEN, "action": action,
                       **extra, "id": request["id"]}
    view = build_view(model, 2.2)
    assert view.texts["svc_status"] == f"Working: {tr(button, 'en')}…"
    assert button not in view.buttons  # not twice while in flight
    apply_message(model, refusal(request, "action: busy"), 2.3)
    view = build_view(model, 2.4)
    assert view.texts["svc_status"] == f"{tr(button, 'en')} failed: action: busy"
    assert view.tone == "refused"
    assert button in view.buttons


def test_action_results_in_the_status_line():
    model = logged_in()
    press(model, "svc_tab_actions", 2.0)
    [selfcheck] = press(model, "svc_selfcheck", 2.1)
    checks = [{"name": "read", "ok": True, "detail": "two readings 1 s apart"},
              {"name": "serial", "ok": False, "detail": "meter reports X, expected Y"}]
    apply_message(model, reply(selfcheck, action="meter_selfcheck", passed=False,
                               checks=checks, readings=[]), 3.0)
    view = build_view(model, 3.1)
    assert view.texts["svc_status"] == "Meter self-check FAILED - see the details below"
    assert view.texts["svc_action_detail"].splitlines() == [
        "OK read: two readings 1 s apart", "FAILED serial: meter reports X, expected Y"]
    [export] = press(model, "svc_export", 4.0)
    path = "/media/usb/evterm-diag-DE-EVT-E0001-1-20261121T142500Z"
    apply_message(model, reply(export, action="export", path=path, files=[], bytes=1), 4.1)
    view = build_view(model, 4.2)
    assert view.texts["svc_status"] == f"Diagnostics bundle written to {path}"
    assert view.tone == "ok"
    [resend] = press(model, "svc_resend", 5.0)
    apply_message(model, reply(resend, action="resend_outbox", pending=3,
                               backend_online=False, woken=True), 5.1)
    assert build_view(model, 5.2).texts["svc_status"] == \
        "Outbox: 3 waiting - the backend is not connected"


def test_export_without_diagnostics_leaves_the_folder_to_the_daemon():
    model = logged_in(diagnostics=None)
    press(model, "svc_tab_actions", 2.0)
    [request] = press(model, "svc_export", 2.1)
    assert "folder" not in request


def test_out_of_service_and_back_follow_the_snapshot():
    model = logged_in()
    press(model, "svc_tab_actions", 2.0)
    view = build_view(model, 2.0)
    assert "svc_out_of_service" in view.buttons and "svc_in_service" not in view.buttons
    assert view.texts["svc_service_state"] == "In service - drivers can charge"
    [request] = press(model, "svc_out_of_service", 2.1)
    out = {"since": "2026-11-21T14:25:00Z", "by": "\u20261234", "reason": "Maintenance"}
    state = daemon_state("active", out_of_service=out, accepting_sessions=False)
    apply_message(model, reply(request, action="out_of_service", out_of_service=out,
                               state=state), 2.2)
    view = build_view(model, 2.3)
    assert view.screen == "service"
    assert view.texts["svc_status"] == "Out of service - drivers see the maintenance screen"
    assert view.texts["svc_service_state"] == "Out of service since 15:25:00 +01:00: Maintenance"
    assert "svc_in_service" in view.buttons and "svc_out_of_service" not in view.buttons
    [back] = press(model, "svc_in_service", 3.0)
    assert back["action"] == "in_service" and "reason" not in back


def test_restart_needs_a_second_press_within_5_s():
    model = logged_in()
    press(model, "svc_tab_actions", 2.0)
    assert press(model, "svc_restart", 2.1) == []
    view = build_view(model, 2.2)
    assert view.texts["svc_restart"] == "Press again to restart"
    assert view.texts["svc_status"] == \
        "Press Restart again within 5 s to restart the software"
    assert view.tone == "attention"
    assert press(model, "svc_restart", 2.1 + staff.RESTART_CONFIRM_S + 0.1) == []  # too late
    [request] = press(model, "svc_restart", 8.0)
    assert request["action"] == "restart"
    apply_message(model, reply(request, action="restart", restarting=True, exit_code=75),
                  8.1)
    assert build_view(model, 8.2).texts["svc_status"] == \
        "Restarting - the screen reconnects by itself"
    # another button in between disarms it
    press(model, "svc_restart", 20.0)
    press(model, "svc_tab_diag", 20.5)
    press(model, "svc_tab_actions", 21.0)
    assert press(model, "svc_restart", 21.5) == []


# ---- the driver's side -----------------------------------------------------------------------

@pytest.mark.parametrize(("language", "title", "detail"), [
    ("en", "Out of service - maintenance", "This charger is being serviced."),
    ("de", "Außer Betrieb - Wartung", "Diese Ladestation wird gerade gewartet."),
    ("fr", "Hors service - maintenance", "Cette borne est en cours de maintenance."),
    ("nl", "Buiten gebruik - onderhoud", "Aan deze laadpaal wordt onderhoud uitgevoerd."),
])
def test_drivers_see_out_of_service_maintenance_in_their_language(language, title, detail):
    """Issue 15: the technician's own words (`reason`, any language, maybe internal) are
    not the driver's: a translated generic text instead; the reason stays in the audit
    log and the service menu."""
    out = {"since": "2026-11-21T14:25:00Z", "by": "\u20261234",
           "reason": "New cable; call Jan at 0171 555"}
    model = model_with(daemon_state(out_of_service=out, accepting_sessions=False,
                                    language=language))
    view = build_view(model, 1.0)
    assert view.screen == "out_of_service"
    assert view.texts["oos_title"] == title
    assert view.texts["oos_detail"] == f"{detail} {tr('oos_other_charger', language)}"
    shown = " ".join(view.texts.values())
    assert "New cable" not in shown and "0171" not in shown
    assert tr("oos_storage", language) not in view.texts["oos_detail"]
    assert {"report", "lang_en"} <= set(view.buttons)  # the driver's bar is back


def test_the_screens_own_reason_is_not_shown_either():
    out = {"since": "2026-11-21T14:25:00Z", "by": "\u20261234", "reason": "Maintenance"}
    view = build_view(model_with(daemon_state(out_of_service=out, language="de")), 1.0)
    assert view.texts["oos_detail"] == (f"{tr('oos_maintenance_detail', 'de')} "
                                        f"{tr('oos_other_charger', 'de')}")


def test_an_active_login_elsewhere_leaves_the_drivers_screen():
    """Logged in over SSH: this screen holds no token and stays the driver's."""
    model = model_with(daemon_state("active"))
    assert build_view(model, 1.0).screen == "idle"
