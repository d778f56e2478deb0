"""The technician's screens of the touchscreen app as a process under Xvfb, against a
stand-in for the daemon's local API (tests/ui/fake_localapi.py): the PIN pad through the
automation socket (dots only, never the digits), the login, the service menu's tabs with
the diagnostics refreshed, a receipt, actions with the restart confirm, logout to the
driver's out-of-service screen; screenshots at 800x480 and 1280x800."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.ui.fake_localapi import PIN, RECEIPT_TEXT, TOKEN, FakeLocalApi
from tests.ui.test_ui_app_smoke import png_size
from ui.service_view import PIN_BUTTONS, SERVICE_TAB_WIDGETS


@pytest.fixture
def api() -> Iterator[FakeLocalApi]:
    folder = Path(tempfile.mkdtemp(prefix="evsvc-"))  # short: socket paths < 108 bytes
    fake = FakeLocalApi(folder / "api.sock").start()
    yield fake
    fake.close()
    shutil.rmtree(folder, ignore_errors=True)


def start_ui(ui_process, api: FakeLocalApi, size: str):
    ui = ui_process(SimpleNamespace(socket_path=api.path), size=size)
    ui.wait_for("the idle screen", lambda d: d["screen"] == "idle", 15)
    return ui


def type_pin(ui, digits: str) -> None:
    for digit in digits:
        ui.press(f"pin_{digit}")


def test_pin_pad_login_service_menu_and_logout(api, ui_process, tmp_path):
    ui = start_ui(ui_process, api, "800x480")
    api.open_pin_window()
    pad = ui.wait_for("the PIN pad", lambda d: d["screen"] == "pin", 10)
    assert set(PIN_BUTTONS) - {"pin_ok", "pin_clear"} <= set(pad["buttons"])
    assert "report" not in pad["buttons"] and "lang_de" not in pad["buttons"]
    assert "lang_en" not in pad["widgets"]  # the language bar is hidden

    type_pin(ui, "1357")
    typed = ui.dump()
    assert typed["widgets"]["pin_dots"] == "\u25cf \u25cf \u25cf \u25cf"
    assert "1357" not in json.dumps(typed)  # nothing reveals the digits
    assert "pin_ok" in typed["buttons"]
    ui.press("pin_ok")
    wrong = ui.wait_for("the wrong PIN message",
                        lambda d: d["widgets"]["pin_message"] == "Wrong PIN (4 attempts left)",
                        10)
    assert wrong["widgets"]["pin_dots"] == ""
    assert api.ops("service_login")[0]["pin"] == "1357"
    ui.screenshot(tmp_path / "pin.png")
    assert png_size(tmp_path / "pin.png") == (800, 480)

    type_pin(ui, PIN)
    ui.press("pin_ok")
    menu = ui.wait_for("the diagnostics", lambda d: d["screen"] == "service"
                       and "SIM00012345" in d["widgets"].get("svc_diag_meter", ""), 10)
    assert menu["service_tab"] == "diag"
    assert set(SERVICE_TAB_WIDGETS["diag"]) <= set(menu["widgets"])
    assert not set(SERVICE_TAB_WIDGETS["actions"]) & set(menu["widgets"])  # other tabs
    assert TOKEN not in json.dumps(menu)
    assert menu["widgets"]["svc_diag_backend"].startswith("Link: mqtt, connected")
    first, started_s = len(api.ops("service_diagnostics")), time.monotonic()
    while len(api.ops("service_diagnostics")) < first + 1:  # every 2 s while shown
        assert time.monotonic() - started_s < 3.5, "the diagnostics are not refreshed"
        time.sleep(0.05)
    assert all(r["token"] == TOKEN for r in api.ops("service_diagnostics"))
    ui.screenshot(tmp_path / "diag.png")

    ui.press("svc_tab_sessions")
    ui.wait_for("the sessions", lambda d: d["service_tab"] == "sessions"
                and "svc_receipt_0" in d["buttons"], 5)
    ui.press("svc_receipt_0")
    ui.wait_for("the receipt", lambda d: d["widgets"]["svc_receipt_text"] == RECEIPT_TEXT, 5)

    ui.press("svc_tab_actions")
    ui.wait_for("the actions", lambda d: d["service_tab"] == "actions", 5)
    ui.press("svc_selfcheck")
    ui.wait_for("the self-check", lambda d: "FAILED counter_follows_power"
                in d["widgets"]["svc_action_detail"], 5)
    ui.press("svc_export")
    ui.wait_for("the export path", lambda d: "/media/usb/evterm-diag-"
                in d["widgets"]["svc_status"], 5)
    assert api.ops("service_action")[-1]["folder"] == "/media/usb"  # the config's root
    ui.press("svc_out_of_service")
    ui.wait_for("in service offered", lambda d: "svc_in_service" in d["buttons"]
                and "svc_out_of_service" not in d["buttons"], 5)
    ui.press("svc_restart")
    armed = ui.dump()
    assert armed["widgets"]["svc_restart"] == "Press again to restart"
    assert all(r.get("action") != "restart" for r in api.ops("service_action"))
    ui.screenshot(tmp_path / "actions.png")

    ui.press("svc_logout")
    driver = ui.wait_for("the driver's screen", lambda d: d["screen"] == "out_of_service", 5)
    assert driver["widgets"]["oos_title"] == "Out of service - maintenance"
    assert driver["widgets"]["oos_detail"].startswith("Reason: Maintenance.")
    assert {"report", "lang_de"} <= set(driver["buttons"])
    assert api.ops("service_logout") == [{"op": "service_logout", "token": TOKEN}]
    refused = ui.control("press", id="svc_tab_diag")
    assert refused["ok"] is False and "not active" in refused["error"]


def test_large_screen_and_idle_logout_pushed_by_the_daemon(api, ui_process, tmp_path):
    ui = start_ui(ui_process, api, "1280x800")
    api.open_pin_window()
    ui.wait_for("the PIN pad", lambda d: d["screen"] == "pin", 10)
    type_pin(ui, PIN)
    ui.screenshot(tmp_path / "pin.png")
    assert png_size(tmp_path / "pin.png") == (1280, 800)
    ui.press("pin_ok")
    ui.wait_for("the service menu", lambda d: d["screen"] == "service", 10)
    api.set_service("none")  # the daemon's idle logout
    ui.wait_for("the idle screen", lambda d: d["screen"] == "idle", 5)
    api.set_service("active")  # a login over SSH: not this screen's
    before = len(api.ops("service_diagnostics"))
    time.sleep(2.2)
    assert ui.dump()["screen"] == "idle"
    assert len(api.ops("service_diagnostics")) == before  # the token is gone
