"""What a touch does on the driver's screens, and the UI's once-a-second timer.

Provides `press(model, button_id, now_s)` (the model changes at once, so the screen
answers before the daemon does, and the requests to send are returned; a button not
active in the current view is ignored, and a PIN digit is never logged; "Meter info"
and "Signed meter data" open a meter page, its Back closes it; "Company receipt: add VAT
number" opens the entry page, whose keys go to ui/vat_entry.py) and
`tick(model, now_s)` (the requests due now: the service menu's diagnostics refresh and
its idle logout). `touch(model, now_s)`: a touch anywhere on the screen gives every time
limit shown its full time again (ui/timeouts_screens.py) and returns the ops that tell
the daemon (at most one a TOUCH_SEND_S). The technician's buttons go to
ui/service_buttons.py.
"""

from __future__ import annotations

from typing import Any

from terminal.kernel.logsetup import fields, get_logger
from ui import accessibility, card_hold, service_buttons, timeouts_screens, vat_entry
from ui.messages import receipt_requests
from ui.model import UiModel, close_info, pending_receipt
from ui.screen_state import ScreenState
from ui.service_model import PIN_DIGITS, STAFF_SCREENS
from ui.view import build_view
from ui.widgets import INFO_BACK_BUTTONS, INFO_BUTTONS, LANGUAGE_BUTTONS

log = get_logger("ui.view")

TOUCH_SEND_S = 1.0  # a `touch` is sent to the daemon at most this often


def press(model: UiModel, button_id: str, now_s: float) -> list[dict[str, Any]]:
    """A touch on button `button_id`: updates the model at once (the screen answers
    before the daemon does) and returns the requests to send. Inactive buttons: []."""
    view = build_view(model, now_s)
    if button_id not in view.buttons:
        shown = "pin_digit" if button_id in PIN_DIGITS else button_id  # no PIN in logs
        log.info("inactive button pressed", extra=fields(button=shown, screen=view.screen))
        return []
    if view.screen in STAFF_SCREENS:
        return service_buttons.press(model.service, button_id, model.state, view.language, now_s)
    if model.info_screen is not None:
        model.info_at_s = now_s  # a touch keeps a meter page up
    if button_id in INFO_BUTTONS:
        model.info_screen = INFO_BUTTONS[button_id]
        model.info_from = view.screen
        model.info_phase = (model.state or {}).get("phase")
        model.info_at_s = now_s
        return []
    if button_id in INFO_BACK_BUTTONS:
        close_info(model)
        return []
    if button_id in accessibility.TOGGLES:
        accessibility.toggle(model.modes, button_id)
        return []
    if button_id in LANGUAGE_BUTTONS:
        model.language = LANGUAGE_BUTTONS[button_id]
        if model.report_open:
            model.report_at_s = now_s
        return [{"op": "language", "language": model.language},
                *receipt_requests(model, now_s)]
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
    if button_id in card_hold.BUDGET_BUTTONS:
        request = card_hold.budget_request(ScreenState(model, now_s), button_id)
        return [request] if request is not None else []
    if button_id == "stop":
        model.stop_requested_at_s = now_s
        # the session on the screen and no other (the daemon refuses any other id)
        return [{"op": "stop", "reason": "Local",
                 "session_id": (model.state or {}).get("session_id")}]
    if button_id == vat_entry.VAT_OPEN:
        vat_entry.open_entry(model.vat, str((model.state or {}).get("session_id")), now_s)
        return []
    if button_id in vat_entry.VAT_BUTTONS:
        return vat_entry.press_key(model.vat, button_id, now_s)
    if button_id == "ack":
        pending = pending_receipt(model)
        if pending is None:
            return []
        model.receipt_acked = str(pending["session_id"])
        return [{"op": "ack_receipt", "session_id": model.receipt_acked}]
    return []


def tick(model: UiModel, now_s: float) -> list[dict[str, Any]]:
    """Called once a second: the requests due now (the service menu's refresh)."""
    if model.service.token is None:
        return []
    return service_buttons.tick(model.service, build_view(model, now_s).screen, now_s)


def touch(model: UiModel, now_s: float) -> list[dict[str, Any]]:
    """A touch anywhere (before any button acts on it): the time limits of the screen
    shown start again; returns the ops that restart the daemon's."""
    view = build_view(model, now_s)
    if view.report_open:
        model.report_at_s = now_s
    if view.screen in ("meter_info", "signed_data") and model.info_screen is not None:
        model.info_at_s = now_s
    if view.screen == "service" and model.service.token is not None:
        model.service.last_touch_s = now_s
    if view.screen == vat_entry.VAT_SCREEN:
        vat_entry.touched(model.vat, now_s)
    ops = timeouts_screens.daemon_keep_ops(ScreenState(model, now_s), view.screen)
    if not ops or (model.touch_sent_at_s is not None
                   and 0 <= now_s - model.touch_sent_at_s < TOUCH_SEND_S):
        return []
    model.touch_sent_at_s = now_s
    return ops
