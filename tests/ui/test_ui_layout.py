"""Every screen, the driver's and the technician's, in every language at 800x480 and
1280x800, measured through the automation socket (`dump` with `layout`): no clipped
text, no overlapping siblings, no widget outside its parent, no number wrapped away
from its unit, no QR code under 37.5 % of the window height (tests/ui/layout_check.py);
and the receipt's total, energy and payment readable without scrolling (issue 15).

The app runs under Xvfb against tests/ui/fake_localapi.py (a local API serving the
snapshots set here), so a screen is up in a fraction of a second: about a minute per
size on 2 cores.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from terminal.kernel.formatting import format_amount
from terminal.pricing import load_tariff, tariff_texts
from tests.ui.fake_localapi import SESSION, FakeLocalApi
from tests.ui.layout_check import cap_height_mm, layout_problems, widget
from tests.unit.metering_helpers import OCMF, metering, signed_meter
from tests.unit.test_ui_service_view import DIAGNOSTICS

LANGUAGES = ("en", "de", "fr", "nl")
# the layouts follow new texts within a frame or two: a layout is measured once two
# dumps SETTLE_QUIET_S apart (several frames; each dump runs in its own Kivy clock tick,
# after the layout passes the previous tick triggered) show it unchanged
SETTLE_QUIET_S = 0.1
SETTLE_POLL_S = 0.03
SETTLE_TIMEOUT_S = 5.0
MIN_CAP_MM = 4.0
PENDING = {"session_id": SESSION, "until": "2026-12-02T10:35:00Z"}
DEMO_TARIFF = load_tariff(Path(__file__).resolve().parents[2] / "examples" / "tariffs"
                          / "de_dc_hpc_demo.json")
# the unit price in force, worded in every language as the daemon words it
PRICE_NOW = {language: [tariff_texts(DEMO_TARIFF, language)[0]] for language in LANGUAGES}
CHARGING = {"phase": "Charging", "session_id": SESSION, "plugged": True, "output_on": True,
            "energy_wh": "12345.678", "power_w": "148500", "cost_cap": "50.00",
            "cost": {"currency": "EUR", "excl_vat": "6.12", "incl_vat": "7.28",
                     "charging_incl_vat": "7.28", "idle_incl_vat": "0.00",
                     "price_limit": None},
            "price_now": PRICE_NOW,
            "idle_ahead": {"fee_from": "2026-12-02T10:40:00Z", "at_charging_end": False,
                           "currency": "EUR"},
            "session_started_at": "2026-12-02T10:20:00Z", "elapsed_s": 605}
DECLINED = {"type": "tap", "reader": "ACS ACR1252 00 00", "kind": "card",
            "result": "declined", "reason": "do_not_honor", "decision_ms": 812.0}


@pytest.fixture
def fake_api() -> Iterator[FakeLocalApi]:
    folder = tempfile.mkdtemp(prefix="evlay-")
    api = FakeLocalApi(str(Path(folder) / "local.sock"), DIAGNOSTICS).start()
    yield api
    api.close()


def settled_layout(ui: Any, what: str) -> dict[str, Any]:
    """`ui.dump(layout=True)` once the layout has stopped changing: the same for
    SETTLE_QUIET_S; AssertionError naming `what` if it still moves after
    SETTLE_TIMEOUT_S."""
    dump = ui.dump(layout=True)
    stable_since = time.monotonic()
    deadline = stable_since + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
        again = ui.dump(layout=True)
        now = time.monotonic()
        if again != dump:
            dump, stable_since = again, now
        elif now - stable_since >= SETTLE_QUIET_S:
            return dump
    raise AssertionError(f"the layout of {what} still changes after {SETTLE_TIMEOUT_S} s")


class Walk:
    """Puts up each screen in each language and keeps what layout_problems finds."""

    def __init__(self, ui: Any, api: FakeLocalApi, size: str) -> None:
        self.ui, self.api, self.size = ui, api, size
        self.problems: list[str] = []
        self.dumps: dict[str, dict[str, Any]] = {}
        self.count = 0

    def measure(self, name: str, language: str, ready: Callable[[dict[str, Any]], Any]) -> None:
        self.ui.wait_for(f"{name} in {language}", lambda d: d["language"] == language
                         and ready(d), 15)
        dump = settled_layout(self.ui, f"{name} in {language}")
        self.count += 1
        self.dumps[f"{name}-{language}"] = dump
        self.problems += [f"{self.size} {name} {language}: {problem}"
                          for problem in layout_problems(dump)]

    def screen(self, name: str, screen: str, changes: dict[str, Any],
               extra: Callable[[dict[str, Any]], Any] = lambda d: True,
               push: dict[str, Any] | None = None) -> None:
        self.api.reset(**changes)
        for language in LANGUAGES:
            self.api.set_state(language=language)
            if push is not None:
                self.api.push(push)
            self.measure(name, language, lambda d: d["screen"] == screen and extra(d))


def walk_every_screen(ui: Any, api: FakeLocalApi, size: str, walk: Walk | None = None) -> Walk:
    """Every screen in every language, measured by `walk` (a new Walk if None)."""
    walk = walk if walk is not None else Walk(ui, api, size)
    walk.screen("idle", "idle", {}, lambda d: d["qr"] and d["price_lines"])
    walk.screen("idle-offline", "idle", {"backend_online": False}, lambda d: d["offline"])
    walk.screen("approved", "authorising", {"phase": "Authorized", "session_id": SESSION,
                                            "cost_cap": "50.00"})
    walk.screen("declined", "authorising", {}, lambda d: d["widgets"].get("auth_detail"),
                push=DECLINED)
    walk.screen("charging", "charging", CHARGING, lambda d: d["progress"])
    walk.screen("finishing", "finishing", {
        **CHARGING, "phase": "Finishing", "output_on": False, "power_w": "0",
        "stop_reason": "StoppedByEV",
        "idle": {"accruing": False, "fee_from": "2026-12-02T10:40:00Z"}},
        lambda d: d["widgets"].get("idle_fee"))
    walk.screen("finishing-idle-fee", "finishing", {
        **CHARGING, "phase": "Finishing", "output_on": False, "power_w": "0",
        "stop_reason": "StoppedByEV", "idle_ahead": None,
        "cost": {"currency": "EUR", "excl_vat": "6.20", "incl_vat": "7.38",
                 "charging_incl_vat": "7.28", "idle_incl_vat": "0.10", "price_limit": None},
        "idle": {"accruing": True, "fee_from": None, "accrued": "0.10", "currency": "EUR"}},
        lambda d: d["widgets"].get("idle_fee"))
    walk.screen("charging-min-price", "charging", {
        **CHARGING, "cost": {"currency": "EUR", "excl_vat": "4.20", "incl_vat": "5.00",
                             "charging_incl_vat": "0.59", "idle_incl_vat": "0.00",
                             "price_limit": "min_price"}}, lambda d: d["progress"])
    walk.screen("receipt", "receipt", {"receipt_pending": PENDING},
                lambda d: d["receipt_lines"])
    walk.screen("receipt-fault", "receipt", {"receipt_pending": PENDING,
                                             "charger_fault": "error 3"},
                lambda d: d["receipt_lines"])
    walk.screen("error", "error", {"phase": "Faulted", "plugged": True,
                                   "meter_fault": "timeout"})
    walk.screen("out-of-service", "out_of_service", {
        "accepting_sessions": False, "out_of_service": {
            "since": "2026-12-02T10:00:00Z", "by": "\u2026EEFF", "reason": "New cable"}})
    walk.screen("out-of-order", "out_of_service", {"charger_fault": "error 3",
                                                   "readers": {"ACS": "absent"}})
    walk_meter_pages(ui, api, walk)
    # the report panel over the idle screen
    api.reset()
    ui.wait_screen("idle")
    ui.press("report")
    for language in LANGUAGES:
        api.set_state(language=language)
        walk.measure("report", language, lambda d: d["report_open"])
    ui.press("report_cancel")
    # the technician: PIN pad, then the four tabs of the service menu
    walk.screen("pin", "pin", {"service": {"state": "pin", "technician": None,
                                           "locked_until": None}})
    for digit in "1234":
        ui.press(f"pin_{digit}")
    ui.press("pin_ok")
    ui.wait_screen("service")
    for tab, ready in (("diag", lambda d: d["widgets"].get("svc_diag_meter")),
                       ("sessions", lambda d: "svc_receipt_0" in d["buttons"]),
                       ("actions", lambda d: d["widgets"].get("svc_service_state")),
                       ("plots", lambda d: "EUR" in d["widgets"].get("svc_plots_summary", ""))):
        ui.press(f"svc_tab_{tab}")
        if tab == "sessions":
            ui.wait_for("the sessions", lambda d: "svc_receipt_0" in d["buttons"])
            ui.press("svc_receipt_0")
            ready = lambda d: d["widgets"].get("svc_receipt_text", "").count("\n") > 5  # noqa: E731
        for language in LANGUAGES:
            api.set_state(language=language)
            walk.measure(f"service-{tab}", language,
                         lambda d, t=tab, r=ready: d.get("service_tab") == t and r(d))
    ui.press("svc_logout")
    ui.wait_screen("idle")
    # the daemon away
    api.close()
    walk.measure("reconnecting", LANGUAGES[-1], lambda d: d["screen"] == "reconnecting")
    return walk


def walk_meter_pages(ui: Any, api: FakeLocalApi, walk: Walk) -> None:
    """The signing meter's pages: Meter info (its longest: a fault and an untrusted
    clock), the receipt's signed meter data, and the same with a fault in words."""
    api.reset(metering=metering(meter_clock="I", clock_trusted=False,
                                fault="The meter's last self-test failed (error 0x2F)"))
    ui.wait_for("the meter info button", lambda d: "idle_meter_info" in d["buttons"])
    ui.press("idle_meter_info")
    for language in LANGUAGES:
        api.set_state(language=language)
        walk.measure("meter-info", language, lambda d: d["screen"] == "meter_info")
    ui.press("mi_back")
    for name, signed in (("signed-data", signed_meter()), ("signed-data-fault", signed_meter(
            billable_by_energy=False, fault="the end of the transaction was not signed"))):
        api.signed_meter = signed
        api.reset(receipt_pending=PENDING)
        ui.wait_for("the signed data button", lambda d: "signed_data" in d["buttons"])
        ui.press("signed_data")
        for language in LANGUAGES:
            api.set_state(language=language)
            walk.measure(name, language, lambda d: d["screen"] == "signed_data"
                         and d["qr"] == OCMF and "sd_back" in d["buttons"])
        ui.press("sd_back")
    api.signed_meter = signed_meter()


def assert_receipt_summary_readable(walk: Walk) -> None:
    """Total, energy and payment: drawn, not inside the scrolled receipt, inside the
    screen between the top and the bottom bar, capital height >= 4 mm on a 7" panel."""
    for language in LANGUAGES:
        dump = walk.dumps[f"receipt-{language}"]
        width, _height = dump["window"]
        bottom_bar = widget(dump, "report")  # the bottom bar's top edge
        bar_top = bottom_bar["pos"][1] + bottom_bar["size"][1]
        for name in ("receipt_total", "receipt_energy", "receipt_payment", "receipt_paid"):
            entry = widget(dump, name)
            assert not entry["scrolled"], (language, name)
            assert entry["pos"][1] >= bar_top - 1, (language, name, entry["pos"], bar_top)
            assert entry["pos"][1] + entry["size"][1] <= dump["window"][1], (language, name)
            label = widget(dump, f"{name}_label")
            for shown in (entry, label):
                mm = cap_height_mm(shown["font_size"], width)
                assert mm >= MIN_CAP_MM, (language, shown["id"], shown["font_size"], mm)
        assert "1111" in widget(dump, "receipt_payment")["text"]
        assert "4111111111111111" not in str(dump)
        assert widget(dump, "receipt_qr")["drawn"] > 0


def assert_hold_in_view(walk: Walk) -> None:
    """The bank card's hold before the tap (issue 18): "Reserved on your card: 50.00 EUR"
    and the budget buttons drawn without scrolling, between the top and the bottom bar,
    in every language (the long sentence may scroll with the tariff)."""
    for language in LANGUAGES:
        dump = walk.dumps[f"idle-{language}"]
        bottom_bar = widget(dump, "report")
        bar_top = bottom_bar["pos"][1] + bottom_bar["size"][1]
        held = format_amount(Decimal("50.00"), "EUR", language)
        title = widget(dump, "budget_title")
        assert held in title["text"] and title["text"] != held, (language, title["text"])
        for name in ("budget_title", "budget_1", "budget_2", "budget_3"):
            entry = widget(dump, name)
            assert not entry["scrolled"], (language, name)
            assert entry["size"][1] > 0, (language, name)
            assert entry["pos"][1] >= bar_top - 1, (language, name, entry["pos"], bar_top)
            assert entry["pos"][1] + entry["size"][1] <= dump["window"][1], (language, name)
        assert widget(dump, "budget_2")["text"] == held


@pytest.mark.parametrize("size", ["800x480", "1280x800"])
def test_every_screen_in_every_language_is_laid_out_cleanly(fake_api, ui_process, size):
    started = time.monotonic()
    ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size=size)
    walk = walk_every_screen(ui, fake_api, size)
    print(f"{size}: {walk.count} screens measured in {time.monotonic() - started:.0f} s")
    assert walk.count == 22 * 4 + 1
    assert walk.problems == [], "\n".join(walk.problems)
    assert_receipt_summary_readable(walk)
    assert_hold_in_view(walk)
