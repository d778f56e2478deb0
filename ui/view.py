"""What the touchscreen shows, as plain data: the daemon's state and events in, a `View`
out (screen name, the text of every widget by id, price and receipt lines, QR payload,
progress). No Kivy here, so every text the driver sees is unit-tested without a display;
ui/app.py only copies a View onto the widgets.

Provides:
- `UiModel`: the daemon's last `state`, the connection flag, the last card feedback,
  the receipt fetched for `receipt_pending`, the report panel and the language chosen
  on screen (until the daemon's state confirms it).
- `apply_message(model, message, now_s)`: folds one line from the local API (a reply
  with `op` or a pushed message with `type`) into the model and returns the requests
  the UI must send in answer (e.g. `{"op": "receipt", ...}` for a new receipt_pending or
  a language change while a receipt is shown).
- `press(model, button_id, now_s)`: what a touch on a button does (model change and
  requests to send); buttons not active in the current view are ignored.
- `set_connected(model, connected)`: the connection went up or down.
- `tick(model, now_s)`: once a second; the requests due (the service menu's
  diagnostics refresh, its idle logout).
- `build_view(model, now_s) -> View`: the screen for the model at monotonic time now_s.
  Screen order: daemon away -> reconnecting; a technician logged in at this screen ->
  service; the daemon waiting for a technician's PIN -> pin (ui/service_view.py has
  both); receipt pending (phase Available) ->
  receipt; card feedback (FEEDBACK_S), a card being checked or phase
  Authorizing/Authorized -> authorising; Charging/SuspendedEV/SuspendedEVSE -> charging;
  Finishing -> finishing; Faulted -> error; set out of service by a technician, not
  accepting sessions or every reader down with no app start -> out_of_service; else idle.

Times: elapsed times, the idle-fee countdown and the receipt timeout come from the
daemon's clock (`now`, `elapsed_s` in the state); `now_s` (the UI's monotonic clock)
only times the UI's own feedback (how long a tap result stays, retries).

On failure: a state with missing or malformed fields is shown with neutral values
(0.000 kWh, empty texts), never an exception; `build_view` logs an unexpected error and
shows the error screen rather than taking the app down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from terminal.kernel.driver_texts import driver_message
from terminal.kernel.logsetup import fields, get_logger
from ui import service_view as staff
from ui.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    amount,
    energy,
    format_elapsed,
    format_power,
    language_name,
    tr,
)
from ui.values import decimal_of, time_of

log = get_logger("ui.view")

SCREENS = ("idle", "authorising", "charging", "finishing", "receipt", "error",
           "out_of_service", "reconnecting", *staff.STAFF_SCREENS)

# Widget ids whose text the view fills. Labels and buttons in ui/evterm.kv carry these ids.
TOP_BAR = ("station", "operator", "badge_offline", "support", "report",
           "lang_en", "lang_de", "lang_fr", "lang_nl")
SCREEN_WIDGETS: Mapping[str, tuple[str, ...]] = {
    "idle": ("idle_title", "idle_connector", "price_headline", "price_title", "pay_ways",
             "app_hint"),
    "authorising": ("auth_title", "auth_detail", "auth_cap"),
    "charging": ("charging_title", "energy", "energy_label", "power", "power_label",
                 "elapsed", "elapsed_label", "cost", "cost_label", "cap", "stop_hint",
                 "stop"),
    "finishing": ("finish_title", "finish_energy", "finish_cost", "idle_fee", "unplug"),
    "receipt": ("receipt_title", "receipt_hint", "ack"),
    "error": ("error_title", "error_detail"),
    "out_of_service": ("oos_title", "oos_detail"),
    "reconnecting": ("reconnect_title", "reconnect_detail"),
    "pin": staff.PIN_WIDGETS,
    "service": staff.SERVICE_WIDGETS,
}
# The "report a problem" panel (over any screen): category buttons and a result line.
REPORT_WIDGETS = ("report_title", "report_payment", "report_charging", "report_screen",
                  "report_damage", "report_other", "report_cancel", "report_result")
REPORT_CATEGORIES = ("payment", "charging", "screen", "damage", "other")

LANGUAGE_BUTTONS: Mapping[str, str] = {f"lang_{code}": code for code in LANGUAGES}

# How the authorising screen colours its outcome (text says it too: colour is never alone).
TONES = ("waiting", "ok", "attention", "refused")
_TONE_OF_RESULT = {"accepted": "ok", "declined": "refused", "error": "refused",
                   "tap_again": "attention", "in_use": "attention", "info": "attention",
                   "stopping": "attention"}

FEEDBACK_S = 6.0  # how long a tap result stays on screen
CHECKING_S = 30.0  # "checking card" at most this long when no decision arrives
RECEIPT_RETRY_S = 5.0  # a receipt request unanswered or refused is sent again after this
REPORT_TIMEOUT_S = 60.0  # the report panel closes itself after this long untouched
STOP_PENDING_S = 10.0  # the stop button says "stopping" at most this long

CHARGING_PHASES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})
RECEIPT_PHASES = frozenset({"Available", "Completed", "Rejected"})  # connector free again
AUTH_PHASES = frozenset({"Authorizing", "Authorized"})
# Tap results that belong to a new driver, shown over a pending receipt; "info" and
# "stopping" come from the previous session's own card.
RESULTS_OVER_RECEIPT = frozenset({"accepted", "declined", "tap_again", "error", "in_use"})
AUTH_TITLES: Mapping[str, str] = {
    "accepted": "auth_approved", "declined": "auth_declined", "stopping": "auth_stopping",
    "in_use": "auth_in_use", "info": "auth_info", "tap_again": "auth_tap_again",
    "error": "auth_error",
}
FINISH_TITLES: Mapping[str, str] = {
    "StoppedByEV": "finish_full", "CostLimitReached": "finish_limit",
    "EnergyLimitReached": "finish_limit", "Timeout": "finish_timeout",
    "MeterFault": "finish_fault", "ChargerFault": "finish_fault",
}


@dataclass
class UiModel:
    """Everything the UI knows: the daemon's last state and the events worth showing."""

    state: dict[str, Any] | None = None       # last `state` snapshot (None before the first)
    connected: bool = False                   # the local API connection is up
    tap: dict[str, Any] | None = None         # last `tap` event
    tap_at_s: float | None = None             # monotonic time it arrived
    card_present_at_s: float | None = None    # last `card_present` (before the decision)
    receipt: dict[str, Any] | None = None     # reply of the `receipt` op for receipt_pending
    report_open: bool = False                 # the report panel is shown
    report_result: str | None = None          # "sending", "sent" (with reference), "failed"
    report_reference: int | None = None
    default_language: str = DEFAULT_LANGUAGE  # before the daemon says otherwise
    language: str | None = None               # chosen on screen, until the state confirms it
    card_kind: str | None = None              # `kind` of the last card_present: rfid/card
    receipt_language: str | None = None       # language of `receipt`
    receipt_request: tuple[str, str] | None = None  # (session_id, language) asked for
    receipt_request_at_s: float | None = None
    receipt_failed: bool = False              # the daemon refused the last receipt request
    receipt_acked: str | None = None          # session whose receipt the driver closed
    report_at_s: float | None = None          # last touch on the report panel
    stop_requested_at_s: float | None = None  # the stop button was pressed
    session_ended: dict[str, Any] | None = None  # last `session_ended` event
    service: staff.ServiceModel = field(default_factory=staff.ServiceModel)  # technician


@dataclass(frozen=True)
class View:
    screen: str                                       # one of SCREENS
    language: str
    texts: Mapping[str, str] = field(default_factory=dict)  # widget id -> text
    price_lines: tuple[str, ...] = ()
    receipt_lines: tuple[str, ...] = ()
    qr: str | None = None                             # payload of the screen's QR code
    progress: float | None = None                     # 0..1 of the cap, or None
    tone: str = ""                                    # authorising: one of TONES
    offline: bool = False                             # backend unreachable: badge shown
    buttons: tuple[str, ...] = ()                     # button ids active now
    report_open: bool = False
    service_tab: str = ""                             # service: one of SERVICE_TABS


# ---- model updates -----------------------------------------------------------------------


def current_language(model: UiModel) -> str:
    """The language the screen shows: chosen on screen, else the daemon's, else default."""
    for candidate in (model.language, (model.state or {}).get("language"),
                      model.default_language):
        if candidate in LANGUAGES:
            return str(candidate)
    return DEFAULT_LANGUAGE


def set_connected(model: UiModel, connected: bool) -> None:
    """The local API connection went up or down (a request in flight is lost with it)."""
    model.connected = connected
    staff.on_connection(model.service, connected)
    model.receipt_request = None
    model.receipt_request_at_s = None
    if not connected:
        model.card_present_at_s = None
        model.stop_requested_at_s = None


def apply_message(model: UiModel, message: Mapping[str, Any], now_s: float) -> list[dict[str, Any]]:
    """Fold one message from the daemon (reply or push) into the model; returns the
    requests the UI must send in response (e.g. fetch the receipt for receipt_pending)."""
    if not isinstance(message, Mapping):
        return []
    kind = message.get("type")
    if kind is not None:
        return _apply_push(model, str(kind), message, now_s)
    op = message.get("op")
    if (isinstance(op, str) and op.startswith("service_")) or message.get("id") in \
            model.service.in_flight:
        if message.get("ok") is False:
            log.warning("the daemon refused a service request",
                        extra=fields(op=op, error=message.get("error")))
        requests = staff.apply_reply(model.service, message, now_s)
        state = message.get("state")
        if isinstance(state, Mapping):
            _fold_state(model, state)
        return requests
    if message.get("ok") is False:
        _apply_refusal(model, op, message)
        return []
    if op == "subscribe":
        model.receipt_request = None  # a new connection: earlier requests are lost
    if op == "receipt":
        _apply_receipt(model, message)
    elif op == "report_problem":
        model.report_result = "sent"
        reference = message.get("reference")
        model.report_reference = reference if isinstance(reference, int) else None
    state = message.get("state")
    if isinstance(state, Mapping):
        _fold_state(model, state)
    return _receipt_requests(model, now_s)


def _apply_push(model: UiModel, kind: str, message: Mapping[str, Any],
                now_s: float) -> list[dict[str, Any]]:
    if kind == "state":
        state = message.get("state")
        if isinstance(state, Mapping):
            _fold_state(model, state)
        return _receipt_requests(model, now_s)
    if kind == "tap":
        model.tap = dict(message)
        model.tap_at_s = now_s
        staff.on_tap(model.service, message, now_s)
    elif kind == "card_present":
        model.card_present_at_s = now_s
        model.card_kind = message.get("kind") if isinstance(message.get("kind"), str) else None
    elif kind == "connectivity" and model.state is not None:
        model.state = {**model.state, "backend_online": bool(message.get("backend_online"))}
    elif kind == "reader" and model.state is not None:
        reader, reader_state = message.get("reader"), message.get("state")
        if isinstance(reader, str) and isinstance(reader_state, str):
            readers = model.state.get("readers")
            readers = dict(readers) if isinstance(readers, Mapping) else {}
            readers[reader] = reader_state
            model.state = {**model.state, "readers": readers}
    elif kind == "receipt_updated":
        if model.receipt is not None and model.receipt.get("session_id") == message.get(
                "session_id"):
            model.receipt_language = None  # rebuilt (a refund): fetch it again
            model.receipt_request = None
        return _receipt_requests(model, now_s)
    elif kind == "session_ended":
        model.session_ended = dict(message)
    return []


def _apply_refusal(model: UiModel, op: Any, message: Mapping[str, Any]) -> None:
    log.warning("the daemon refused a request",
                extra=fields(op=op, error=message.get("error")))
    if op == "language":
        model.language = None
    elif op == "receipt":
        model.receipt_failed = True
    elif op == "report_problem":
        model.report_result = "failed"
    elif op == "stop":
        model.stop_requested_at_s = None


def _apply_receipt(model: UiModel, message: Mapping[str, Any]) -> None:
    session_id = message.get("session_id")
    body = message.get("receipt")
    request = model.receipt_request
    if request is not None and request[0] == session_id:
        language = request[1]
    else:
        language = body.get("language") if isinstance(body, Mapping) else None
    model.receipt = {"session_id": session_id,
                     "receipt": dict(body) if isinstance(body, Mapping) else {},
                     "text": message.get("text") if isinstance(message.get("text"), str) else ""}
    model.receipt_language = language if isinstance(language, str) else None
    model.receipt_request = None
    model.receipt_request_at_s = None
    model.receipt_failed = False


def _fold_state(model: UiModel, state: Mapping[str, Any]) -> None:
    model.state = dict(state)
    staff.on_state(model.service, state)
    if model.language is not None and state.get("language") == model.language:
        model.language = None  # the daemon has taken the choice over
    if state.get("phase") not in CHARGING_PHASES:
        model.stop_requested_at_s = None
    pending = state.get("receipt_pending")
    if not isinstance(pending, Mapping):
        model.receipt = None
        model.receipt_language = None
        model.receipt_request = None
        model.receipt_failed = False
        model.receipt_acked = None


def _receipt_pending(model: UiModel) -> Mapping[str, Any] | None:
    pending = (model.state or {}).get("receipt_pending")
    if not isinstance(pending, Mapping) or not isinstance(pending.get("session_id"), str):
        return None
    if pending["session_id"] == model.receipt_acked:
        return None
    return pending


def _receipt_requests(model: UiModel, now_s: float) -> list[dict[str, Any]]:
    pending = _receipt_pending(model)
    if pending is None:
        return []
    want = (str(pending["session_id"]), current_language(model))
    have = ((model.receipt.get("session_id"), model.receipt_language)
            if model.receipt is not None else None)
    if have == want:
        return []
    if (model.receipt_request == want and model.receipt_request_at_s is not None
            and now_s - model.receipt_request_at_s < RECEIPT_RETRY_S):
        return []
    model.receipt_request = want
    model.receipt_request_at_s = now_s
    return [{"op": "receipt", "session_id": want[0], "language": want[1]}]


# ---- buttons -----------------------------------------------------------------------------


def press(model: UiModel, button_id: str, now_s: float) -> list[dict[str, Any]]:
    """A touch on button `button_id`: updates the model at once (the screen answers
    before the daemon does) and returns the requests to send. Inactive buttons: []."""
    view = build_view(model, now_s)
    if button_id not in view.buttons:
        shown = "pin_digit" if button_id in staff.PIN_DIGITS else button_id  # no PIN in logs
        log.info("inactive button pressed", extra=fields(button=shown, screen=view.screen))
        return []
    if view.screen in staff.STAFF_SCREENS:
        return staff.press(model.service, button_id, model.state, view.language, now_s)
    if button_id in LANGUAGE_BUTTONS:
        model.language = LANGUAGE_BUTTONS[button_id]
        if model.report_open:
            model.report_at_s = now_s
        return [{"op": "language", "language": model.language},
                *_receipt_requests(model, now_s)]
    if button_id == "report":
        model.report_open = True
        model.report_at_s = now_s
        model.report_result = None
        model.report_reference = None
        return []
    if button_id == "report_cancel":
        model.report_open = False
        return []
    if button_id.startswith("report_"):
        category = button_id.removeprefix("report_")
        model.report_result = "sending"
        model.report_at_s = now_s
        phase = (model.state or {}).get("phase")
        text = (f"Problem reported at the touchscreen: {category} "
                f"(screen {view.screen}, phase {phase})")
        return [{"op": "report_problem", "category": category, "text": text}]
    if button_id == "stop":
        model.stop_requested_at_s = now_s
        return [{"op": "stop", "reason": "Local"}]
    if button_id == "ack":
        pending = _receipt_pending(model)
        if pending is None:
            return []
        model.receipt_acked = str(pending["session_id"])
        return [{"op": "ack_receipt", "session_id": model.receipt_acked}]
    return []


def tick(model: UiModel, now_s: float) -> list[dict[str, Any]]:
    """Called once a second: the requests due now (the service menu's refresh)."""
    if model.service.token is None:
        return []
    return staff.tick(model.service, build_view(model, now_s).screen, now_s)


# ---- the view ----------------------------------------------------------------------------


def build_view(model: UiModel, now_s: float) -> View:
    """The screen for the model at monotonic time now_s."""
    try:
        return _Builder(model, now_s).build()
    except Exception:
        log.exception("the screen could not be built from the daemon's state")
        language = current_language(model)
        texts = {"error_title": tr("error_title", language),
                 "error_detail": tr("error_generic", language)}
        return View(screen="error", language=language, texts=texts)


class _Builder:
    def __init__(self, model: UiModel, now_s: float) -> None:
        self.model = model
        self.now_s = now_s
        self.language = current_language(model)
        self.state: Mapping[str, Any] = model.state or {}
        self.phase = self.state.get("phase")
        self.connected = model.connected and model.state is not None
        self.online = self.state.get("backend_online") is not False
        stop_at = model.stop_requested_at_s
        self.stopping = stop_at is not None and 0 <= now_s - stop_at < STOP_PENDING_S

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.language, **values)

    # ---- which screen ----

    def build(self) -> View:
        feedback = self._feedback()
        screen = self._screen(feedback)
        texts = self._top_bar()
        extra: dict[str, Any] = {}
        buttons: list[str] = []
        if screen == "pin":
            pin_texts, pin_buttons, extra["tone"] = staff.pin_view(
                self.model.service, self.state, self.language)
            texts |= pin_texts
            buttons += pin_buttons
        elif screen == "service":
            menu_texts, menu_buttons, extra["tone"] = staff.service_view(
                self.model.service, self.state, self.language, self.now_s)
            texts |= menu_texts
            buttons += menu_buttons
            extra["service_tab"] = self.model.service.tab
        elif screen == "idle":
            texts |= self._idle(extra)
        elif screen == "authorising":
            texts |= self._authorising(feedback)
            extra["tone"] = self._tone(feedback)
        elif screen == "charging":
            texts |= self._charging(extra)
            if not self.stopping:
                buttons.append("stop")
        elif screen == "finishing":
            texts |= self._finishing()
        elif screen == "receipt":
            texts |= self._receipt(extra)
            buttons.append("ack")
        elif screen == "error":
            texts |= self._error()
        elif screen == "out_of_service":
            texts |= self._out_of_service()
        else:
            texts |= {"reconnect_title": self.t("reconnect_title"),
                      "reconnect_detail": self.t("reconnect_detail")}
        report_open = self._report_open(screen)
        texts |= self._report()
        return View(
            screen=screen,
            language=self.language,
            texts=texts,
            offline=self.connected and not self.online,
            buttons=self._buttons(screen, buttons, report_open),
            report_open=report_open,
            **extra,
        )

    def _feedback(self) -> tuple[str, Mapping[str, Any] | None] | None:
        """("checking", None) while a card is checked, ("tap", event) for a recent result."""
        model, now_s = self.model, self.now_s
        present = model.card_present_at_s
        if (present is not None and 0 <= now_s - present < CHECKING_S
                and (model.tap_at_s is None or present > model.tap_at_s)):
            return ("checking", None)
        if model.tap is not None and model.tap_at_s is not None \
                and 0 <= now_s - model.tap_at_s < FEEDBACK_S:
            if model.tap.get("result") == "service":
                return None  # a technician card: the PIN pad says more
            if model.tap.get("result") == "accepted" and self.phase not in (
                    AUTH_PHASES | RECEIPT_PHASES):
                return None  # energy flows already: the charging screen says more
            return ("tap", model.tap)
        return None

    def _screen(self, feedback: tuple[str, Mapping[str, Any] | None] | None) -> str:
        if not self.connected:
            return "reconnecting"
        staff_screen = staff.staff_screen(self.model.service, self.state, self.now_s)
        if staff_screen is not None:
            return staff_screen
        new_driver = feedback is not None and (
            feedback[0] == "checking"
            or (feedback[1] or {}).get("result") in RESULTS_OVER_RECEIPT)
        if self.phase in RECEIPT_PHASES and _receipt_pending(self.model) and not new_driver:
            return "receipt"
        if feedback is not None or self.phase in AUTH_PHASES:
            return "authorising"
        if self.phase in CHARGING_PHASES:
            return "charging"
        if self.phase == "Finishing":
            return "finishing"
        if self.phase == "Faulted":
            return "error"
        if self._maintenance() is not None or self.state.get("accepting_sessions") is False \
                or self._hardware_fault() or (
                self._readers_down() and not self._app_start()):
            return "out_of_service"
        return "idle"

    def _maintenance(self) -> Mapping[str, Any] | None:
        """The snapshot's `out_of_service` (set by a technician), None when in service."""
        value = self.state.get("out_of_service")
        return value if isinstance(value, Mapping) else None

    def _hardware_fault(self) -> bool:
        """The meter or the power stage reports a fault while no session runs."""
        return bool(self.state.get("meter_fault") or self.state.get("charger_fault"))

    def _readers_down(self) -> bool:
        readers = self.state.get("readers")
        if not isinstance(readers, Mapping) or not readers:
            return False
        return all(state != "ready" for state in readers.values())

    def _app_start(self) -> Mapping[str, Any] | None:
        app = self.state.get("app_start")
        return app if isinstance(app, Mapping) and isinstance(app.get("url"), str) else None

    def _report_open(self, screen: str) -> bool:
        model = self.model
        if not model.report_open or screen in ("reconnecting", *staff.STAFF_SCREENS):
            return False
        return model.report_at_s is None or self.now_s - model.report_at_s < REPORT_TIMEOUT_S

    def _buttons(self, screen: str, own: list[str], report_open: bool) -> tuple[str, ...]:
        if screen == "reconnecting":
            return ()
        if screen in staff.STAFF_SCREENS:
            return tuple(own)  # staff screens: no language bar, no report button
        languages = tuple(LANGUAGE_BUTTONS)
        if report_open:
            categories: tuple[str, ...] = ()
            if self.model.report_result in (None, "failed"):
                categories = tuple(f"report_{c}" for c in REPORT_CATEGORIES)
            return (*languages, *categories, "report_cancel")
        return ("report", *languages, *own)

    # ---- values from the state ----

    def _currency(self) -> str:
        cost = self.state.get("cost")
        for source in (cost, self.state.get("price_list")):
            if isinstance(source, Mapping) and isinstance(source.get("currency"), str):
                return str(source["currency"])
        return "EUR"

    def _amount(self, value: Any) -> str:
        return amount(decimal_of(value) or Decimal(0), self._currency(), self.language)

    def _energy_wh(self) -> Decimal:
        return decimal_of(self.state.get("energy_wh")) or Decimal(0)

    def _cost_incl_vat(self) -> Decimal:
        cost = self.state.get("cost")
        return (decimal_of(cost.get("incl_vat")) if isinstance(cost, Mapping) else None) \
            or Decimal(0)

    def _price_lines(self) -> tuple[str, ...]:
        price_list = self.state.get("price_list")
        texts = price_list.get("texts") if isinstance(price_list, Mapping) else None
        if not isinstance(texts, Mapping):
            return ()
        lines = texts.get(self.language) or texts.get(DEFAULT_LANGUAGE) or ()
        return tuple(str(line) for line in lines) if isinstance(lines, list | tuple) else ()

    # ---- texts per screen ----

    def _top_bar(self) -> dict[str, str]:
        phone = self.state.get("support_phone")
        texts = {
            "station": str(self.state.get("station_id") or ""),
            "operator": str(self.state.get("operator") or ""),
            "badge_offline": self.t("offline_badge") if self.connected and not self.online
            else "",
            "support": self.t("support", phone=phone) if isinstance(phone, str) and phone
            else "",
            "report": self.t("report"),
        }
        for button, code in LANGUAGE_BUTTONS.items():
            texts[button] = language_name(code)
        return texts

    def _idle(self, extra: dict[str, Any]) -> dict[str, str]:
        lines = self._price_lines()
        extra["price_lines"] = lines
        app = self._app_start() if self.online else None
        if app is not None:
            extra["qr"] = str(app["url"])
        ways = []
        if self.state.get("card_payment") and self.online:
            ways.append(self.t("pay_bank_card"))
        ways.append(self.t("pay_charge_card"))
        if app is not None:
            ways.append(self.t("pay_app"))
        joined = ways[0] if len(ways) == 1 else self.t(
            "list_or", first=", ".join(ways[:-1]), last=ways[-1])
        return {
            "idle_title": self.t("idle_title"),
            "idle_connector": self.t("idle_connector_plugged" if self.state.get("plugged")
                                     else "idle_connector_free"),
            "price_headline": lines[0] if lines else self.t("price_none"),
            "price_title": self.t("price_title"),
            "pay_ways": self.t("pay_ways", ways=joined),
            "app_hint": self.t("app_hint") if app is not None else "",
        }

    def _authorising(self, feedback: tuple[str, Mapping[str, Any] | None] | None
                     ) -> dict[str, str]:
        ready = self.t("auth_starting" if self.state.get("plugged") else "auth_plug_in")
        if feedback is not None and feedback[0] == "checking":
            detail = "auth_checking_card" if self.model.card_kind == "card" \
                else "auth_checking_rfid"
            return {"auth_title": self.t("auth_checking"), "auth_detail": self.t(detail),
                    "auth_cap": ""}
        if feedback is not None and feedback[1] is not None:
            tap = feedback[1]
            result = tap.get("result")
            if result == "accepted":
                cap = tap.get("cost_cap") or self.state.get("cost_cap")
                return {"auth_title": self.t("auth_approved"), "auth_detail": ready,
                        "auth_cap": self._cap_text(cap)}
            reason = tap.get("reason")
            return {"auth_title": self.t(AUTH_TITLES.get(str(result), "auth_error")),
                    "auth_detail": driver_message(str(reason or "unavailable"), self.language),
                    "auth_cap": ""}
        if self.phase == "Authorized":
            return {"auth_title": self.t("auth_approved"), "auth_detail": ready,
                    "auth_cap": self._cap_text(self.state.get("cost_cap"))}
        return {"auth_title": self.t("auth_waiting"), "auth_detail": self.t("auth_checking_rfid"),
                "auth_cap": ""}

    def _tone(self, feedback: tuple[str, Mapping[str, Any] | None] | None) -> str:
        if feedback is not None and feedback[1] is not None and feedback[0] != "checking":
            return _TONE_OF_RESULT.get(str(feedback[1].get("result")), "refused")
        if feedback is None and self.phase == "Authorized":
            return "ok"
        return "waiting"

    def _cap_text(self, cost_cap: Any) -> str:
        cap = decimal_of(cost_cap)
        if cap is not None:
            return self.t("auth_cap", amount=self._amount(cap))
        energy_cap = decimal_of(self.state.get("energy_cap_wh"))
        if energy_cap is not None:
            return self.t("auth_energy_cap", energy=energy(energy_cap, self.language))
        return ""

    def _charging(self, extra: dict[str, Any]) -> dict[str, str]:
        title = {"SuspendedEV": "charging_title_ev",
                 "SuspendedEVSE": "charging_title_evse"}.get(str(self.phase), "charging_title")
        energy_wh = self._energy_wh()
        cost = self._cost_incl_vat()
        power_w = decimal_of(self.state.get("power_w")) or Decimal(0)
        elapsed_s = self.state.get("elapsed_s")
        elapsed_s = elapsed_s if isinstance(elapsed_s, int | float) else 0
        cap_text = ""
        cost_cap = decimal_of(self.state.get("cost_cap"))
        energy_cap = decimal_of(self.state.get("energy_cap_wh"))
        if cost_cap is not None and cost_cap > 0:
            cap_text = self.t("cap_cost", amount=self._amount(cost_cap))
            extra["progress"] = _fraction(cost, cost_cap)
        elif energy_cap is not None and energy_cap > 0:
            cap_text = self.t("cap_energy", energy=energy(energy_cap, self.language))
            extra["progress"] = _fraction(energy_wh, energy_cap)
        return {
            "charging_title": self.t(title),
            "energy": energy(energy_wh, self.language),
            "energy_label": self.t("energy_label"),
            "power": format_power(power_w, self.language),
            "power_label": self.t("power_label"),
            "elapsed": format_elapsed(int(elapsed_s)),
            "elapsed_label": self.t("elapsed_label"),
            "cost": self._amount(cost),
            "cost_label": self.t("cost_label"),
            "cap": cap_text,
            "stop_hint": self.t("stop_hint"),
            "stop": self.t("stopping" if self.stopping else "stop"),
        }

    def _finishing(self) -> dict[str, str]:
        title = FINISH_TITLES.get(str(self.state.get("stop_reason")), "finish_done")
        return {
            "finish_title": self.t(title),
            "finish_energy": self.t("finish_energy", energy=energy(self._energy_wh(),
                                                                   self.language)),
            "finish_cost": self.t("finish_cost", amount=self._amount(self._cost_incl_vat())),
            "idle_fee": self._idle_fee(),
            "unplug": self.t("unplug"),
        }

    def _idle_fee(self) -> str:
        idle = self.state.get("idle")
        if not isinstance(idle, Mapping):
            return ""
        if idle.get("accruing"):
            currency = idle.get("currency") if isinstance(idle.get("currency"), str) \
                else self._currency()
            accrued = decimal_of(idle.get("accrued")) or Decimal(0)
            return self.t("idle_fee_so_far", amount=amount(accrued, currency, self.language))
        fee_from, now = time_of(idle.get("fee_from")), time_of(self.state.get("now"))
        if fee_from is None or now is None:
            return ""
        minutes = max(1, math.ceil((fee_from - now).total_seconds() / 60))
        return self.t("idle_fee_in", minutes=minutes)

    def _receipt(self, extra: dict[str, Any]) -> dict[str, str]:
        pending = _receipt_pending(self.model) or {}
        receipt = self.model.receipt
        if receipt is not None and (receipt.get("session_id") != pending.get("session_id")
                                    or self.model.receipt_language != self.language):
            receipt = None  # another session's, or in the language before: fetching
        if receipt is None:
            hint = "receipt_unavailable" if self.model.receipt_failed else "receipt_loading"
        else:
            extra["receipt_lines"] = tuple(str(receipt.get("text") or "").splitlines())
            body = receipt.get("receipt")
            url = body.get("receipt_url") if isinstance(body, Mapping) else None
            if isinstance(url, str) and url:
                extra["qr"] = url
            hint = "receipt_hint_qr" if "qr" in extra else "receipt_hint"
        return {"receipt_title": self.t("receipt_title"), "receipt_hint": self.t(hint),
                "ack": self.t("ack")}

    def _error(self) -> dict[str, str]:
        parts = []
        if self.state.get("meter_fault"):
            parts.append(self.t("error_meter"))
        if self.state.get("charger_fault"):
            parts.append(self.t("error_charger"))
        if not parts:
            parts.append(self.t("error_generic"))
        parts.append(self.t("error_unplug" if self.state.get("plugged")
                            else "error_other_charger"))
        return {"error_title": self.t("error_title"), "error_detail": " ".join(parts)}

    def _out_of_service(self) -> dict[str, str]:
        parts = []
        maintenance = self._maintenance()
        if maintenance is not None:
            reason = maintenance.get("reason")
            # the screen's own reason is what the title says already (and only English):
            # a reason typed over SSH is shown as written
            if isinstance(reason, str) and reason.strip() not in ("", staff.OUT_OF_SERVICE_REASON):
                parts.append(self.t("oos_maintenance_reason",  # the text ends the sentence
                                    reason=reason.strip().rstrip(".")))
        elif self.state.get("accepting_sessions") is False:
            parts.append(self.t("oos_storage"))
        if self.state.get("meter_fault"):
            parts.append(self.t("error_meter"))
        if self.state.get("charger_fault"):
            parts.append(self.t("error_charger"))
        if self._readers_down():
            parts.append(self.t("oos_readers"))
        parts.append(self.t("oos_other_charger"))
        title = "oos_maintenance_title" if maintenance is not None else "oos_title"
        return {"oos_title": self.t(title), "oos_detail": " ".join(parts)}

    def _report(self) -> dict[str, str]:
        model = self.model
        texts = {"report_title": self.t("report_title")}
        for category in REPORT_CATEGORIES:
            texts[f"report_{category}"] = self.t(f"report_{category}")
        done = model.report_result in ("sent", "failed")
        texts["report_cancel"] = self.t("report_close" if done else "report_cancel")
        result = ""
        if model.report_result == "sending":
            result = self.t("report_sending")
        elif model.report_result == "sent":
            result = self.t("report_sent", reference=model.report_reference
                            if model.report_reference is not None else "-")
        elif model.report_result == "failed":
            result = self.t("report_failed")
            phone = self.state.get("support_phone")
            if isinstance(phone, str) and phone:
                result = f"{result} {self.t('report_call', phone=phone)}"
        texts["report_result"] = result
        return texts




def _fraction(part: Decimal, whole: Decimal) -> float:
    return float(min(Decimal(1), max(Decimal(0), part / whole)))



