"""The technician on the touchscreen against the whole terminal (hw_mocks/demo_stack.py:
real pcscd + vpcd with the technician card tapped by `evterm sim tap`, the daemon, the
station and backend simulators, mosquitto): card + PIN, a wrong PIN first, diagnostics
read from the simulated hardware, a receipt reprinted, the last 30 days' plots (their
totals the journal's sessions), the meter self-check, an export
bundle on the "USB stick", the end-of-day closing with its Z-report (it reaches the
backend too), out of service (drivers are refused and see why) and back. Everything a
technician does is in the audit log and reaches the backend."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from hw_mocks.cards import TEST_PANS
from hw_mocks.demo_scenario import Scenario
from hw_mocks.demo_stack import STATION_ID, TECHNICIAN_CARD, TECHNICIAN_PIN, DemoStack
from terminal.kernel.money import round_half_up
from terminal.report.facts import iter_sessions, open_read_only
from terminal.store import Store
from tests.ui.test_ui_scenarios import png_facts


def assert_plots_are_the_journals(widgets: dict[str, str], database: Path) -> None:
    """The "30 days" tab's totals are the journal's sessions of these days."""
    conn = open_read_only(database)
    try:
        sessions = list(iter_sessions(conn, STATION_ID))
    finally:
        conn.close()
    assert sessions, "the scenario's session is in the journal"
    energy_wh = sum((s.energy_wh for s in sessions), Decimal(0))
    gross = sum((s.amount_charged for s in sessions), Decimal(0))
    kwh = round_half_up(energy_wh / 1000, 1)
    assert widgets["svc_plot_sessions_total"] == f"Total 30 days: {len(sessions)}"
    assert widgets["svc_plot_energy_total"] == f"Total 30 days: {kwh:,} kWh"
    assert widgets["svc_plot_revenue_total"] == f"Total 30 days: {gross:,} EUR"
    assert widgets["svc_plots_summary"].startswith(f"Last 30 days: sessions {len(sessions)}, ")


def test_technician_logs_in_with_card_and_pin_and_takes_the_charger_out_and_back(scenario):
    scenario.rfid_session()  # a session to see among the recent ones
    seen = scenario.technician()
    stack = scenario.stack
    assert seen["tap"]["result"] == "service"
    wrong = seen["wrong_pin"]
    assert wrong["widgets"]["pin_message"] == "Wrong PIN (4 attempts left)"
    assert "0000" not in json.dumps(wrong) and TECHNICIAN_PIN not in json.dumps(seen)

    widgets = seen["diagnostics"]["widgets"]
    assert "20260001" in widgets["svc_diag_meter"]  # the simulated meter's serial
    assert "connected" in widgets["svc_diag_backend"]
    assert "ready" in widgets["svc_diag_readers"]
    assert widgets["svc_diag_software"] and widgets["svc_diag_storage"]
    assert "Charging receipt" in seen["receipt"]["widgets"]["svc_receipt_text"]
    assert_plots_are_the_journals(seen["plots"]["widgets"], stack.rig.database)
    assert "passed" in seen["selfcheck"]["widgets"]["svc_status"].lower() or \
        "ok" in seen["selfcheck"]["widgets"]["svc_action_detail"].lower()

    bundle_path = re.search(r"(/\S*evterm-diag-\S+)", seen["export"]["widgets"]["svc_status"])
    assert bundle_path, seen["export"]["widgets"]["svc_status"]
    bundle = Path(bundle_path.group(1).rstrip(".,"))
    assert bundle.parent == stack.usb and bundle.is_dir()
    key_texts = [p.read_bytes().strip() for p in (stack.folder / "token.key",
                                                   stack.backend.gateway_private)]
    files = [file for file in bundle.rglob("*") if file.is_file()]
    assert bundle / "facts" / "sessions.jsonl" in files
    for file in files:
        data = file.read_bytes()
        assert not any(key in data for key in key_texts), file
        assert not any(pan.encode() in data for pan in TEST_PANS.values()), file

    closing = seen["closing"]["widgets"]  # the end-of-day closing's Z-report on screen
    assert "Z-REPORT" in closing["svc_action_detail"]
    assert "TOTALS PER SCHEME" in closing["svc_action_detail"]
    closing_id = re.search(r"Closing (z\d+): \d+ findings", closing["svc_status"])
    assert closing_id, closing["svc_status"]

    for language, dump in seen["out_of_order"].items():
        assert dump["screen"] == "out_of_service"
        assert dump["widgets"]["oos_title"], language
    assert seen["out_of_order"]["en"]["widgets"]["oos_title"] == "Out of service - maintenance"
    assert seen["refused_while_out"]["result"] == "declined"
    assert seen["back"]["screen"] == "idle"
    assert stack.rig.state()["out_of_service"] is None

    store = Store.open(stack.rig.database, create=False)
    try:
        kinds = [row["kind"] for row in store.audit()]
    finally:
        store.close()
    assert {"service_login", "service_login_failed", "service_action",
            "service_logout"} <= set(kinds), kinds
    view = stack.wait_delivered()  # every audit row reached the backend, once
    delivered = [e["payload"]["kind"] for e in view["events"] if e["kind"] == "Audit"]
    assert sorted(delivered) == sorted(kinds), (delivered, kinds)
    assert all(e["station_id"] == STATION_ID for e in view["events"] if "station_id" in e)
    assert f"z-report:{closing_id.group(1)}" in {e["idempotency_key"] for e in view["events"]
                                                  if e["kind"] == "z_report"}


@pytest.fixture
def large_scenario() -> Iterator[Scenario]:
    """The whole terminal with the UI at 1280x800 and a short idle logout (30 s of the
    daemon's clock: 1 s real at 30x)."""
    folder = Path(tempfile.mkdtemp(prefix="evui-"))
    stack = DemoStack(folder / "s", speed=30.0, ui_size="1280x800",
                      service={"idle_logout_s": 30})
    try:
        stack.start()
        yield Scenario(stack, folder / "shots")
    finally:
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_pin_pad_at_1280x800_restart_needs_a_second_press_and_idle_logout(large_scenario):
    scenario, stack = large_scenario, large_scenario.stack
    ui = scenario.ui
    assert stack.tap(TECHNICIAN_CARD)["result"] == "service"
    pad = ui.wait_screen("pin")
    assert "report" not in pad["buttons"] and "lang_de" not in pad["buttons"]
    for digit in TECHNICIAN_PIN[:3]:
        ui.press(f"pin_{digit}")
    typed = ui.dump()
    assert typed["widgets"]["pin_dots"] == "\u25cf \u25cf \u25cf"  # dots, never digits
    assert TECHNICIAN_PIN[:3] not in json.dumps(typed)
    shot = ui.screenshot(scenario.shots / "pin-1280.png")
    assert png_facts(shot)[:2] == (1280, 800)
    ui.press(f"pin_{TECHNICIAN_PIN[3]}")
    ui.press("pin_ok")
    ui.wait_screen("service")
    ui.press("svc_tab_actions")
    ui.wait_for("the actions", lambda d: d.get("service_tab") == "actions")
    ui.press("svc_restart")
    assert ui.dump()["widgets"]["svc_restart"] == "Press again to restart"
    assert stack.rig.daemon.poll() is None  # one press restarts nothing
    # no touch for longer than idle_logout_s: the daemon logs the technician out and the
    # screen goes back to the driver's
    ui.wait_screen("idle", timeout_s=15)
    assert stack.rig.state()["service"]["state"] == "none"
    assert stack.rig.daemon.poll() is None


def test_a_restart_from_the_service_menu_brings_the_daemon_back(scenario):
    """The demo supervises the daemon as systemd would: the service menu's restart (exit
    code 75) is followed by a new daemon, and the screen comes back by itself."""
    from terminal.ports import RESTART_EXIT_CODE

    stack, ui = scenario.stack, scenario.ui
    assert stack.tap(TECHNICIAN_CARD)["result"] == "service"
    ui.wait_screen("pin")
    for digit in TECHNICIAN_PIN:
        ui.press(f"pin_{digit}")
    ui.press("pin_ok")
    ui.wait_screen("service")
    ui.press("svc_tab_actions")
    ui.wait_for("the actions", lambda d: d.get("service_tab") == "actions")
    first = stack.rig.daemon
    ui.press("svc_restart")
    ui.press("svc_restart")  # the second press restarts
    stack.rig.wait_for("the daemon's exit", lambda: first.poll() is not None, 30)
    assert first.returncode == RESTART_EXIT_CODE
    # the supervisor counts the restart once the new daemon is ready: wait for that too
    stack.rig.wait_for("a new daemon", lambda: stack.supervisor.restarts >= 1
                       and stack.rig.daemon is not first
                       and stack.rig.state()["phase"] == "Available", 30)
    assert stack.supervisor.restarts == 1
    ui.wait_screen("idle", timeout_s=30)
    assert stack.tap("rfid-7")["result"] == "accepted"  # the events come from the new one
