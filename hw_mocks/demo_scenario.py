"""The scripted walk through the terminal that `evterm demo` shows without a display and
the UI tests check: every screen, in every language, photographed.

`Scenario(stack, shots_folder, languages=...)` drives a started hw_mocks.demo_stack.
DemoStack like a driver, the car and the network would, and records each screen it
reaches: `shoot(name)` takes the screen in every language of `languages` (pressing the
language buttons as a driver would), saving `NN-name-LANG.png`, and returns the dumps
(the texts of every widget) by language, so tests assert on what was shown. The steps:

- `idle()`: the welcome screen with the prices and the ways to pay
- `meter_info()`: on a signing meter, its Meter info page (model, serial, public key)
- `rfid_session()`: a charge card is accepted, the car charges until its battery is
  full, waits while the idle fee accrues (on a signing meter its transaction runs until
  the unplug, so the parking time is bounded by the meter's signed times), is
  unplugged; the receipt
- `card_session()`: a bank card is pre-authorised, the car charges with the cap shown,
  the driver presses Stop; the receipt with its QR code and, on a signing meter, its
  signed meter data page (the OCMF QR code for the transparency software)
- `declined_card()`: a card declined by the bank
- `offline_period()`: the network goes down (offline badge), a bank card is refused
  with "only charge cards", a charge card still charges; the network comes back
- `app_session()`: the QR code on the idle screen starts a session from the phone
- `faults()`: the meter fails mid-session (error screen, the receipt bills the last good
  reading), then the power stage reports a fault between sessions (out of order)
- `technician()`: card + PIN on the screen, diagnostics, sessions, meter self-check,
  export to the USB folder, the end-of-day closing (its Z-report on the screen), out of
  service and back
- `report_problem()`, `daemon_restart()` (the screen says
  "reconnecting" and comes back)
Each step returns what it saw; `receipts` collects every receipt text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from hw_mocks.demo_stack import DemoStack
from hw_mocks.rig import Rig, RigError
from hw_mocks.ui_process import UiProcess

LANGUAGES = ("en", "de", "fr", "nl")
Dumps = dict[str, dict[str, Any]]


def _shown(dump: dict[str, Any], screen: str, language: str) -> bool:
    """The screen is up in the language, with what it waits for (the receipt's text)."""
    return (dump["screen"] == screen and dump["language"] == language
            and (screen != "receipt" or bool(dump["receipt_lines"])))


@dataclass
class Scenario:
    stack: DemoStack
    shots: Path
    languages: tuple[str, ...] = LANGUAGES
    say: Callable[[str], None] = lambda text: None
    home_language: str = "en"
    receipts: dict[str, str] = field(default_factory=dict)
    seen: dict[str, Dumps] = field(default_factory=dict)
    _count: int = 0

    @property
    def ui(self) -> UiProcess:
        assert self.stack.screen is not None
        return self.stack.screen

    @property
    def signing_meter(self) -> bool:
        """The stack's meter signs (OCMF): sessions are billed between its signed
        begin and end."""
        from drivers.meter.registermap import load_model

        return load_model(self.stack.meter_model).signs

    @property
    def rig(self) -> Rig:
        assert self.stack.rig is not None
        return self.stack.rig

    @property
    def bank(self) -> str:
        """The prefix of a bank card: "zvt:" when the payment terminal takes them."""
        return "zvt:" if self.stack.payment_terminal == "zvt" else ""

    def accepted(self, card: str) -> dict[str, Any]:
        """Tap `card`; its `tap` event, which must say accepted."""
        tap = self.stack.tap(card)
        if tap["result"] != "accepted":
            raise RigError(f"card {card} was not accepted: {tap}")
        return tap

    def charge(self, energy_wh: int) -> None:
        """Plug the car in and wait until it has taken `energy_wh`."""
        self.stack.plug()
        self.rig.wait_phase("Charging", timeout_s=20)
        self.wait_energy(energy_wh)

    # ---- screens -------------------------------------------------------------------------

    def set_language(self, language: str) -> dict[str, Any]:
        if self.ui.dump()["language"] != language:
            self.ui.press(f"lang_{language}")
        return self.ui.wait_for(f"language {language}", lambda d: d["language"] == language)

    def shoot(self, name: str, screen: str, languages: tuple[str, ...] | None = None) -> Dumps:
        """The current screen (which must be `screen`) in each language: dump + PNG."""
        self.ui.wait_screen(screen)
        dumps: Dumps = {}
        for language in languages or self.languages:
            self.set_language(language)
            dump = self.ui.wait_for(f"{screen} in {language}",
                                    lambda d, s=screen, lang=language: _shown(d, s, lang))
            self._count += 1
            path = self.ui.screenshot(self.shots / f"{self._count:02d}-{name}-{language}.png")
            dumps[language] = {**dump, "file": str(path)}
        self.set_language(self.home_language)
        self.seen[name] = dumps
        self.say(f"  screen {name}: {', '.join(Path(d['file']).name for d in dumps.values())}")
        return dumps

    def wait_energy(self, energy_wh: int, timeout_s: float = 60) -> None:
        self.rig.wait_for(f"{energy_wh} Wh delivered", lambda: Decimal(
            self.rig.state()["energy_wh"] or 0) >= energy_wh, timeout_s)

    def receipt(self, session_id: str, name: str, signed_data: bool = False) -> Dumps:
        """Unplugged: the receipt screen (with `signed_data`, also its signed meter
        data page, as `<name>-signed` in the dumps), then the driver presses Done."""
        rig = self.rig
        rig.wait_phase("Available", timeout_s=30)
        dumps = self.shoot(name, "receipt")
        for language in self.languages:
            self.receipts[f"{session_id} ({language})"] = rig.api(
                "receipt", session_id=session_id, language=language)["text"]
        if signed_data:
            self.ui.wait_for("the signed data button", lambda d: "signed_data" in d["buttons"])
            self.ui.press("signed_data")
            self.ui.wait_for("the OCMF QR code", lambda d: d["screen"] == "signed_data"
                             and bool(d.get("qr")))
            self.seen[f"{name}-signed"] = self.shoot(f"{name}-signed-data", "signed_data")
            self.ui.press("sd_back")
            self.ui.wait_screen("receipt")
        self.ui.press("ack")
        self.ui.wait_screen("idle")
        return dumps

    # ---- steps ---------------------------------------------------------------------------

    def idle(self) -> Dumps:
        self.say("The welcome screen: prices before anything else")
        return self.shoot("idle", "idle")

    def meter_info(self) -> Dumps:
        """A signing meter's Meter info page from the idle screen (none on a plain
        meter: {})."""
        if not self.signing_meter:
            return {}
        self.say("The signing meter's info: model, serial, public key, clock")
        self.ui.wait_for("the meter info button", lambda d: "idle_meter_info" in d["buttons"])
        self.ui.press("idle_meter_info")
        dumps = self.shoot("meter-info", "meter_info")
        self.ui.press("mi_back")
        self.ui.wait_screen("idle")
        return dumps

    def rfid_session(self) -> dict[str, Any]:
        self.say("Session 1: a charge card, the battery fills up, the idle fee accrues")
        rig = self.rig
        tap = self.accepted("rfid-7")
        approved = self.shoot("rfid-approved", "authorising")
        self.charge(2000)
        charging = self.shoot("rfid-charging", "charging")
        rig.wait_phase("Finishing", timeout_s=90)
        finishing = self.shoot("rfid-finishing", "finishing")
        self._wait_idle_fee()
        accruing = self.shoot("rfid-idle-fee", "finishing", (self.home_language,))
        self.stack.unplug()
        receipt = self.receipt(tap["session_id"], "rfid-receipt")
        return {"tap": tap, "approved": approved, "charging": charging,
                "finishing": finishing, "idle_fee": accruing, "receipt": receipt}

    def _wait_idle_fee(self) -> None:
        """Until the idle fee has cost something: it accrues from the moment it starts,
        and the first cent shows at the next reading (the shown cost is priced at the
        last reading)."""
        rig = self.rig

        def accrued() -> bool:
            idle = rig.state().get("idle") or {}
            return bool(idle.get("accruing")) and Decimal(idle.get("accrued") or 0) > 0

        rig.wait_for("the idle fee accruing", accrued, 60)

    def card_session(self) -> dict[str, Any]:
        self.say("Session 2: a bank card, pre-authorised; the driver presses Stop")
        rig = self.rig
        tap = self.accepted(f"{self.bank}visa")
        approved = self.shoot("card-approved", "authorising")
        self.charge(3000)
        charging = self.shoot("card-charging", "charging")
        self.ui.press("stop")
        rig.wait_phase("Finishing", timeout_s=20)
        self.stack.unplug()
        receipt = self.receipt(tap["session_id"], "card-receipt", self.signing_meter)
        return {"tap": tap, "approved": approved, "charging": charging, "receipt": receipt,
                "signed_data": self.seen.get("card-receipt-signed", {})}

    def declined_card(self) -> dict[str, Any]:
        self.say("A card declined by its bank")
        tap = self.stack.tap(f"{self.bank}visa-declined")
        declined = self.shoot("card-declined", "authorising")
        self._back_to_idle()
        return {"tap": tap, "declined": declined}

    def _back_to_idle(self) -> None:
        self.ui.wait_screen("idle", timeout_s=30)

    def offline_period(self) -> dict[str, Any]:
        self.say("The network goes away: charge cards still work, bank cards cannot")
        rig = self.rig
        self.stack.offline()
        idle = self.shoot("offline-idle", "idle")
        refused = self.stack.tap("mastercard")
        refused_dumps = self.shoot("offline-card-refused", "authorising")
        self._back_to_idle()
        tap = self.accepted("rfid-7")  # on the local list: works offline
        self.charge(1500)
        charging = self.shoot("offline-charging", "charging", (self.home_language,))
        self.stack.online()
        stop = self.stack.tap("rfid-7")
        rig.wait_phase("Finishing", timeout_s=20)
        self.stack.unplug()
        receipt = self.receipt(tap["session_id"], "offline-receipt")
        return {"idle": idle, "refused_tap": refused, "refused": refused_dumps,
                "tap": tap, "charging": charging, "stop": stop, "receipt": receipt}

    def app_session(self) -> dict[str, Any]:
        self.say("Session by app: the driver scans the QR code on the screen")
        rig = self.rig
        before = self.ui.dump()
        answer = self.stack.app_start()
        if not answer.get("ok"):
            raise RigError(f"the remote start was refused: {answer}")
        self.charge(1000)
        session_id = rig.state()["session_id"]
        charging = self.shoot("app-charging", "charging", (self.home_language,))
        self.ui.press("stop")
        rig.wait_phase("Finishing", timeout_s=20)
        self.stack.unplug()
        receipt = self.receipt(session_id, "app-receipt")
        after = self.ui.dump()
        return {"qr_before": before.get("qr"), "qr_after": after.get("qr"),
                "answer": answer, "charging": charging, "receipt": receipt}

    def report_problem(self) -> dict[str, Any]:
        self.say("A driver reports a problem from the screen")
        self.ui.press("report")
        self.ui.wait_for("the report panel", lambda d: "report_payment" in d["buttons"])
        panel = self.shoot("report", self.ui.dump()["screen"])
        self.ui.press("report_screen")
        result = self.ui.wait_for("the report's reference", lambda d: any(
            ch.isdigit() for ch in d["widgets"].get("report_result", "")))
        self._count += 1
        self.ui.screenshot(self.shots / f"{self._count:02d}-report-sent-{self.home_language}.png")
        if "report_cancel" in result["buttons"]:
            self.ui.press("report_cancel")
        return {"panel": panel, "result": result}

    def faults(self) -> dict[str, Any]:
        self.say("The meter stops answering mid-session; later the power stage reports a fault")
        rig = self.rig
        tap = self.accepted("rfid-4")
        self.charge(500)
        rig.ev("fault", kind="no_reply")
        # a signing meter: the close first waits for the signed end, which the silent
        # meter cannot give (the daemon's signing requests time out, about 20 s)
        rig.wait_phase("Faulted", timeout_s=60 if self.signing_meter else 20)
        error = self.shoot("meter-fault", "error")
        rig.ev("clear")
        self.stack.unplug()
        receipt = self.receipt(tap["session_id"], "meter-fault-receipt")
        rig.ev("fault", kind="charger_error", code=3)
        out_of_order = self.shoot("charger-fault", "out_of_service")
        rig.ev("clear")
        self._back_to_idle()
        return {"tap": tap, "error": error, "receipt": receipt, "out_of_order": out_of_order}

    def technician(self) -> dict[str, Any]:
        """A technician logs in with card + PIN on the screen, reads the diagnostics,
        looks at the last 30 days' plots, runs the meter self-check, exports a bundle,
        runs the end-of-day closing (its Z-report on the screen), takes the charger out
        of service and, after logging in again, back."""
        from hw_mocks.demo_stack import TECHNICIAN_CARD, TECHNICIAN_PIN

        self.say("A technician: card + PIN, diagnostics, self-check, export, closing, "
                 "out of service")
        ui = self.ui
        tap = self.stack.tap(TECHNICIAN_CARD)
        ui.wait_screen("pin")
        self._type_pin("0000")
        wrong = ui.wait_for("the wrong PIN message", lambda d: "4" in d["widgets"].get(
            "pin_message", ""))
        pin_shot = self._shoot_one("service-pin", wrong)
        self._type_pin(TECHNICIAN_PIN)
        diag = ui.wait_for("the diagnostics", lambda d: d["screen"] == "service" and
                           "20260001" in d["widgets"].get("svc_diag_meter", ""))
        diag_shot = self._shoot_one("service-diagnostics", diag)
        ui.press("svc_tab_sessions")
        sessions = ui.wait_for("the sessions", lambda d: d.get("service_tab") == "sessions"
                               and "svc_receipt_0" in d["buttons"])
        ui.press("svc_receipt_0")
        receipt = ui.wait_for("a receipt", lambda d: "kWh" in d["widgets"].get(
            "svc_receipt_text", ""))
        self._shoot_one("service-sessions", receipt)
        ui.press("svc_tab_plots")  # the last 30 days from the daemon's journal
        plots = ui.wait_for("the last 30 days", lambda d: d.get("service_tab") == "plots"
                            and d["widgets"].get("svc_plots_summary", "").startswith("Last"))
        self._shoot_one("service-plots", plots)
        ui.press("svc_tab_actions")
        ui.wait_for("the actions", lambda d: d.get("service_tab") == "actions")
        ui.press("svc_selfcheck")
        selfcheck = ui.wait_for("the self-check", lambda d: "serial" in d["widgets"].get(
            "svc_action_detail", ""), 30)
        ui.press("svc_export")
        export = ui.wait_for("the export", lambda d: "evterm-diag-" in d["widgets"].get(
            "svc_status", ""), 30)
        ui.press("svc_closing")
        closing = ui.wait_for("the Z-report", lambda d: "Z-REPORT" in d["widgets"].get(
            "svc_action_detail", ""), 30)
        ui.press("svc_out_of_service")
        ui.wait_for("in service offered", lambda d: "svc_in_service" in d["buttons"])
        actions = self._shoot_one("service-actions", ui.dump())
        ui.press("svc_logout")
        out_of_order = self.shoot("out-of-service-maintenance", "out_of_service")
        refused = self.stack.tap("rfid-7")
        self.stack.tap(TECHNICIAN_CARD)
        ui.wait_screen("pin")
        self._type_pin(TECHNICIAN_PIN)
        ui.wait_screen("service")
        ui.press("svc_tab_actions")
        ui.wait_for("in service offered", lambda d: "svc_in_service" in d["buttons"])
        ui.press("svc_in_service")
        ui.wait_for("out of service offered", lambda d: "svc_out_of_service" in d["buttons"])
        ui.press("svc_logout")
        back = ui.wait_screen("idle")
        return {"tap": tap, "wrong_pin": wrong, "pin_shot": pin_shot, "diagnostics": diag,
                "diag_shot": diag_shot, "sessions": sessions, "receipt": receipt, "plots": plots,
                "selfcheck": selfcheck, "export": export, "closing": closing,
                "actions": actions,
                "out_of_order": out_of_order, "refused_while_out": refused, "back": back}

    def _type_pin(self, pin: str) -> None:
        for digit in pin:
            self.ui.press(f"pin_{digit}")
        self.ui.press("pin_ok")

    def _shoot_one(self, name: str, dump: dict[str, Any]) -> str:
        """A staff screen (English only, no language bar): one screenshot."""
        self._count += 1
        path = self.ui.screenshot(self.shots / f"{self._count:02d}-{name}-{dump['language']}.png")
        self.say(f"  screen {name}: {path.name}")
        return str(path)

    def daemon_restart(self) -> dict[str, Any]:
        self.say("The terminal's daemon restarts: the screen says so and comes back")
        rig = self.rig
        rig.kill_daemon()
        away = self.ui.wait_screen("reconnecting", timeout_s=15)
        self._count += 1
        self.ui.screenshot(self.shots / f"{self._count:02d}-reconnecting-{away['language']}.png")
        rig.start_daemon()
        back = self.ui.wait_screen("idle", timeout_s=30)
        if self.stack.events is not None:
            self.stack.events.close()
        from hw_mocks.rig import Subscriber

        self.stack.events = Subscriber(rig.socket_path)
        return {"away": away, "back": back}

    def run_all(self) -> None:
        started = time.monotonic()
        self.idle()
        self.meter_info()
        self.rfid_session()
        self.card_session()
        self.declined_card()
        self.offline_period()
        self.app_session()
        self.report_problem()
        self.faults()
        self.technician()
        self.daemon_restart()
        self.say(f"Scenario done in {time.monotonic() - started:.0f} s; "
                 f"{self._count} screenshots in {self.shots}")
