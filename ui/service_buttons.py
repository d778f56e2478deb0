"""What a touch on the technician's screens does, and their timer.

Provides `press(svc, button, state, language, now_s)` (a PIN pad or service menu button,
already known to be active: the model changes at once and the requests to send are
returned; the "30 days" tab asks for the last 30 days when it opens) and `tick(svc,
screen, now_s)` (once a second: diagnostics every DIAG_REFRESH_S while the Diagnostics
tab is shown, and the UI's own logout after the
login's `expires_in_s` without a touch, since the refreshes would otherwise keep the
daemon's idle timer alive for ever).

The PIN leaves this process only in the `service_login` request of OK and is forgotten
at once; Cancel is local. Restart wants a second press within RESTART_CONFIRM_S.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terminal.kernel.logsetup import fields as log_fields
from terminal.kernel.logsetup import get_logger
from ui.i18n import supported
from ui.service_diag import export_root, recent_sessions, session_id
from ui.service_model import (
    ACTIONS,
    DIAG_REFRESH_S,
    DIAG_RETRY_S,
    DIAG_SLACK_S,
    OUT_OF_SERVICE_REASON,
    PIN_BUTTONS,
    PIN_DIGITS,
    PIN_MAX_DIGITS,
    RESTART_CONFIRM_S,
    SESSION_ROWS,
    ServiceModel,
)

log = get_logger("ui.service")


def press(svc: ServiceModel, button: str, state: Mapping[str, Any] | None, language: str,
          now_s: float) -> list[dict[str, Any]]:
    """A touch on a PIN pad or service button (already known to be active)."""
    if button in PIN_BUTTONS:
        return _press_pin(svc, button)
    svc.last_touch_s = now_s
    if button != "svc_restart":
        svc.restart_armed_s = None
    if svc.token is None:
        return []
    if button.startswith("svc_tab_"):
        svc.tab = button.removeprefix("svc_tab_")
        if svc.tab in ("diag", "sessions") and _diagnostics_due(svc, now_s):
            return [svc.diagnostics_request(now_s)]
        if svc.tab == "plots" and svc.daily_due(now_s):
            return [svc.daily_request(now_s)]
        return []
    if button == "svc_logout":
        token = svc.token
        svc.forget()
        log.info("service logout at the touchscreen")
        return [{"op": "service_logout", "token": token}]
    if button.startswith("svc_receipt_"):
        return _press_receipt(svc, int(button.removeprefix("svc_receipt_")), language)
    if button == "svc_restart":
        armed = svc.restart_armed_s
        if armed is None or not 0 <= now_s - armed < RESTART_CONFIRM_S:
            svc.restart_armed_s = now_s
            svc.set_status("svc_confirm_restart", "attention",
                           seconds=int(RESTART_CONFIRM_S))
            return []
        svc.restart_armed_s = None
    action = ACTIONS.get(button)
    if action is None:
        return []
    request: dict[str, Any] = {"op": "service_action", "token": svc.token, "action": action}
    if action == "out_of_service":
        request["reason"] = OUT_OF_SERVICE_REASON
    elif action == "export":
        root = export_root(svc.diagnostics)
        if root is not None:
            request["folder"] = root
    elif action == "meter_selfcheck":
        svc.checks = None
    request["id"] = svc.request_id(f"service_action:{action}")
    svc.set_status("svc_busy", "waiting", action=button)
    return [request]


def _press_pin(svc: ServiceModel, button: str) -> list[dict[str, Any]]:
    if button in PIN_DIGITS:
        if len(svc.digits) < PIN_MAX_DIGITS:
            svc.digits += button.removeprefix("pin_")
        svc.pin_error = None
        return []
    if button == "pin_clear":
        svc.digits = ""
        return []
    if button == "pin_cancel":
        svc.digits = ""
        svc.pin_error = None
        svc.login_cancelled = svc.login_pending  # a login that succeeds is ended again
        svc.dismissed = True
        return []
    pin, svc.digits = svc.digits, ""
    svc.login_pending = True
    svc.login_cancelled = False
    svc.pin_error = None
    return [{"op": "service_login", "pin": pin, "id": svc.request_id("service_login")}]


def _press_receipt(svc: ServiceModel, row: int, language: str) -> list[dict[str, Any]]:
    sessions = recent_sessions(svc.diagnostics, SESSION_ROWS)
    if row >= len(sessions):
        return []
    chosen = session_id(sessions[row])
    if chosen is None:
        return []
    svc.receipt_session = chosen
    svc.receipt_text = None
    svc.receipt_error = None
    return [{"op": "service_receipt", "token": svc.token, "session_id": chosen,
             "language": supported(language), "id": svc.request_id("service_receipt")}]


def _diagnostics_due(svc: ServiceModel, now_s: float) -> bool:
    if svc.diag_sent_s is not None:
        return not 0 <= now_s - svc.diag_sent_s < DIAG_RETRY_S
    return svc.diag_at_s is None or not 0 <= now_s - svc.diag_at_s < DIAG_REFRESH_S - DIAG_SLACK_S


def tick(svc: ServiceModel, screen: str, now_s: float) -> list[dict[str, Any]]:
    """Once a second: the diagnostics refresh, and the UI's own idle logout."""
    if svc.token is None:
        return []
    if svc.last_touch_s is not None and now_s - svc.last_touch_s >= svc.expires_in_s:
        token = svc.token
        log.info("service logout: nobody touched the screen",
                 extra=log_fields(idle_s=round(now_s - svc.last_touch_s)))
        svc.forget()
        return [{"op": "service_logout", "token": token}]
    if screen == "service" and svc.tab == "diag" and _diagnostics_due(svc, now_s):
        return [svc.diagnostics_request(now_s)]
    return []

