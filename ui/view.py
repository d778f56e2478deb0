"""What the touchscreen shows, as plain data: `build_view(model, now_s) -> View`, the
screen for the model at monotonic time now_s. No Kivy here, so every text the driver
sees is unit-tested without a display; ui/app.py only copies a View onto the widgets.

Screen order: daemon away -> reconnecting; a technician logged in at this screen ->
service; the daemon waiting for a technician's PIN -> pin (ui/service_view.py has
both); receipt pending (phase Available) -> receipt; card feedback (FEEDBACK_S), a card
being checked or phase Authorizing/Authorized -> authorising;
Charging/SuspendedEV/SuspendedEVSE -> charging (or the company VAT number page over
it while it is open: ui/screen_vat.py); Finishing -> finishing; Faulted ->
error; set out of service by a technician, not accepting sessions or every reader down
with no app start -> out_of_service; else idle. A meter page (meter_info over idle or
charging, signed_data over the receipt) shows instead of the screen it was opened from
while that screen and the daemon's phase stay the same, for INFO_TIMEOUT_S after the
last touch. A time limit near its end (ui/timeouts_screens.py) adds its warning. The
words of each driver screen: ui/screen_texts.py and
ui/meter_screens.py; the active buttons, the report panel and the tone: here.

The UI around it: ui/model.py (UiModel, View), ui/messages.py (the daemon's messages
into the model), ui/buttons.py (touches and the timer), ui/widgets.py (widget ids).

On failure: a state with missing or malformed fields is shown with neutral values
(0.000 kWh, empty texts), never an exception; `build_view` logs an unexpected error and
shows the error screen rather than taking the app down.
"""

from __future__ import annotations

import re
from typing import Any

from terminal.kernel.logsetup import get_logger
from ui import (
    accessibility,
    card_hold,
    meter_screens,
    screen_texts,
    screen_vat,
    timeouts_screens,
)
from ui.i18n import tr
from ui.metering import is_signed, signed_meter_of
from ui.model import (
    AUTH_PHASES,
    CHARGING_PHASES,
    CHECKING_S,
    FEEDBACK_S,
    INFO_TIMEOUT_S,
    RECEIPT_PHASES,
    REPORT_TIMEOUT_S,
    RESULTS_OVER_RECEIPT,
    UiModel,
    View,
    current_language,
    pending_receipt,
)
from ui.screen_state import Feedback, ScreenState
from ui.service_model import STAFF_SCREENS, staff_screen
from ui.service_view import pin_view, plots_of, service_view
from ui.vat_entry import VAT_BUTTONS, VAT_OPEN, VAT_SCREEN
from ui.widgets import LANGUAGE_BUTTONS, REPORT_CATEGORIES

log = get_logger("ui.view")

NO_BREAK = "\u00a0"
# a space between a number and its unit or currency: "10 min", "0,10 EUR", "19 %"
_NUMBER_UNIT = re.compile(r"(?<=\d) (?=(?:kWh|Wh|kW|min|h|s|[A-Z]{3}|€|%)(?![A-Za-z]))")


def keep_units(text: str) -> str:
    """`text` with a no-break space between each number and its unit, so a line never
    wraps between them ("nach 10" / "min")."""
    return _NUMBER_UNIT.sub(NO_BREAK, text)


def build_view(model: UiModel, now_s: float) -> View:
    """The screen for the model at monotonic time now_s."""
    try:
        return _build(ScreenState(model, now_s))
    except Exception:
        log.exception("the screen could not be built from the daemon's state")
        language = current_language(model)
        texts = {"error_title": tr("error_title", language),
                 "error_detail": tr("error_generic", language)}
        return View(screen="error", language=language, texts=texts)


def _build(s: ScreenState) -> View:
    feedback = _feedback(s)
    screen = _screen(s, feedback)
    texts = screen_texts.top_bar(s)
    extra: dict[str, Any] = {}
    buttons: list[str] = []
    if screen == "pin":
        pin_texts, pin_buttons, extra["tone"] = pin_view(s.model.service, s.state, s.language)
        texts |= pin_texts
        buttons += pin_buttons
    elif screen == "service":
        menu_texts, menu_buttons, extra["tone"] = service_view(
            s.model.service, s.state, s.language, s.now_s)
        texts |= menu_texts
        buttons += menu_buttons
        extra["service_tab"] = s.model.service.tab
        if s.model.service.tab == "plots":
            extra["plots"] = plots_of(s.model.service, s.language)[1]
    elif screen == "idle":
        texts |= screen_texts.idle(s, extra)
        texts |= card_hold.hold_texts(s)
        buttons += card_hold.budget_buttons(s)
        extra["budget_selected"] = card_hold.selected_budget(s)
        if is_signed(s.state):
            buttons.append("idle_meter_info")
        texts |= accessibility.toggle_texts(s.model.modes, s.language)
        buttons += list(accessibility.TOGGLES)
    elif screen == "authorising":
        texts |= screen_texts.authorising(s, feedback)
        extra["tone"] = screen_texts.tone(s, feedback)
    elif screen == "charging":
        texts |= screen_texts.charging(s, extra)
        texts |= screen_vat.charging_texts(s)
        if not s.stopping:
            buttons.append("stop")
            if isinstance(s.state.get("session_id"), str):
                buttons.append(VAT_OPEN)
        if is_signed(s.state):
            buttons.append("charging_meter_info")
    elif screen == VAT_SCREEN:
        texts |= screen_vat.entry_texts(s)
        buttons += VAT_BUTTONS
    elif screen == "finishing":
        texts |= screen_texts.finishing(s)
    elif screen == "receipt":
        texts |= screen_texts.receipt(s, extra)
        buttons.append("ack")
        if signed_meter_of(s.receipt(any_language=True)) is not None:
            buttons.append("signed_data")
    elif screen == "meter_info":
        texts |= meter_screens.meter_info(s)
        buttons.append("mi_back")
    elif screen == "signed_data":
        texts |= meter_screens.signed_data(s, extra)
        buttons.append("sd_back")
    elif screen == "error":
        texts |= screen_texts.error(s)
    elif screen == "out_of_service":
        texts |= screen_texts.out_of_service(s)
    else:
        texts |= screen_texts.reconnecting(s)
    report_open = _report_open(s, screen)
    texts |= screen_texts.report(s)
    if "price_lines" in extra:  # the daemon's tariff words: wrapped by the screen
        extra["price_lines"] = tuple(keep_units(line) for line in extra["price_lines"])
        texts["price_headline"] = keep_units(texts.get("price_headline", ""))
    extra["timeout_warning"], extra["timeout_speech"] = timeouts_screens.warning(
        s, screen, report_open)
    return View(
        screen=screen,
        language=s.language,
        texts=texts,
        offline=s.connected and not s.online,
        buttons=_buttons(s, screen, buttons, report_open),
        report_open=report_open,
        large_text=s.model.modes.large_text,
        high_contrast=s.model.modes.high_contrast,
        **extra,
    )


def _feedback(s: ScreenState) -> Feedback:
    """("checking", None) while a card is checked, ("tap", event) for a recent result."""
    model, now_s = s.model, s.now_s
    present = model.card_present_at_s
    if (present is not None and 0 <= now_s - present < CHECKING_S
            and (model.tap_at_s is None or present > model.tap_at_s)):
        return ("checking", None)
    if model.tap is not None and model.tap_at_s is not None \
            and 0 <= now_s - model.tap_at_s < FEEDBACK_S:
        if model.tap.get("result") == "service":
            return None  # a technician card: the PIN pad says more
        if model.tap.get("result") == "accepted" and s.phase not in (
                AUTH_PHASES | RECEIPT_PHASES):
            return None  # energy flows already: the charging screen says more
        return ("tap", model.tap)
    return None


def _screen(s: ScreenState, feedback: Feedback) -> str:
    screen = screen_vat.entry_screen(s, _base_screen(s, feedback))
    model = s.model
    if model.info_screen is None or model.info_from != screen \
            or model.info_phase != s.phase or model.info_at_s is None \
            or not 0 <= s.now_s - model.info_at_s < INFO_TIMEOUT_S:
        return screen
    if model.info_screen == "meter_info" and is_signed(s.state):
        return "meter_info"
    if model.info_screen == "signed_data" \
            and signed_meter_of(s.receipt(any_language=True)) is not None:
        return "signed_data"
    return screen


def _base_screen(s: ScreenState, feedback: Feedback) -> str:
    if not s.connected:
        return "reconnecting"
    staff = staff_screen(s.model.service, s.state, s.now_s)
    if staff is not None:
        return staff
    new_driver = feedback is not None and (
        feedback[0] == "checking"
        or (feedback[1] or {}).get("result") in RESULTS_OVER_RECEIPT)
    if s.phase in RECEIPT_PHASES and pending_receipt(s.model) and not new_driver:
        return "receipt"
    if feedback is not None or s.phase in AUTH_PHASES:
        return "authorising"
    if s.phase in CHARGING_PHASES:
        return "charging"
    if s.phase == "Finishing":
        return "finishing"
    if s.phase == "Faulted":
        return "error"
    if s.maintenance() is not None or s.state.get("accepting_sessions") is False \
            or s.hardware_fault() or (s.readers_down() and not s.app_start()):
        return "out_of_service"
    return "idle"


def _report_open(s: ScreenState, screen: str) -> bool:
    model = s.model
    if not model.report_open or screen in ("reconnecting", *STAFF_SCREENS):
        return False
    return model.report_at_s is None or s.now_s - model.report_at_s < REPORT_TIMEOUT_S


def _buttons(s: ScreenState, screen: str, own: list[str], report_open: bool) -> tuple[str, ...]:
    if screen == "reconnecting":
        return ()
    if screen in (*STAFF_SCREENS, VAT_SCREEN):
        return tuple(own)  # staff screens, the keyboard: no language bar, no report button
    languages = tuple(LANGUAGE_BUTTONS)
    if report_open:
        categories: tuple[str, ...] = ()
        if s.model.report_result in (None, "failed"):
            categories = tuple(f"report_{c}" for c in REPORT_CATEGORIES)
        return (*languages, *categories, "report_cancel")
    return ("report", *languages, *own)
