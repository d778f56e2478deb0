"""What the daemon tells the technician's side: its replies to `service_*` ops and the
events that end a login.

Provides:
- `on_state` / `on_tap` / `on_connection`: the token is forgotten when the daemon's
  `service.state` leaves "active" (logout, idle logout) and when the connection drops
  (a daemon restart ends every login); a technician card tapped opens the PIN pad again.
- `apply_reply(svc, message, now_s)`: a reply to one of our `service_*` requests
  (matched by `op` and our `id`); returns the requests to send (the first diagnostics
  after a login, the logout of a login cancelled while it was checked).

The daemon's own error texts (wrong PIN, lockout, refusals) are kept as the daemon words
them, in English, without the leading field name. On failure: a reply that does not fit
the state (a late reply after logout) is ignored; a refusal naming `token` ends the
login at this screen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from terminal.kernel.logsetup import fields as log_fields
from terminal.kernel.logsetup import get_logger
from ui.service_model import ACTIONS, ServiceModel, service_state

log = get_logger("ui.service")

_FIELD_PREFIX = re.compile(r"^[a-z_]+: ")


def on_state(svc: ServiceModel, state: Mapping[str, Any]) -> None:
    """A snapshot: a logout the daemon pushed (idle, or from the CLI) ends the UI's too."""
    current = service_state(state)
    if svc.token is not None and current not in ("active", "pin"):
        log.info("service login ended by the daemon", extra=log_fields(state=current))
        svc.forget()
        return
    if current == "none" or current is None:  # the PIN window closed
        svc.digits = ""
        svc.dismissed = False
        svc.pin_error = None


def on_tap(svc: ServiceModel, tap: Mapping[str, Any], now_s: float) -> None:
    """A `tap` event; a technician card (result "service") opens the PIN pad again."""
    if tap.get("result") == "service" and svc.token is None:
        svc.dismissed = False
        svc.attention_at_s = now_s


def on_connection(svc: ServiceModel, connected: bool) -> None:
    """The connection went up or down: a daemon restart ends every login, and a request
    in flight is lost either way."""
    svc.forget()


def apply_reply(svc: ServiceModel, message: Mapping[str, Any],
                now_s: float) -> list[dict[str, Any]]:
    """A reply to one of our `service_*` requests (matched by `op` and our `id`)."""
    request_id = message.get("id")
    what = svc.in_flight.pop(request_id, None) if isinstance(request_id, str) else None
    op = message.get("op") if isinstance(message.get("op"), str) else (what or "").split(":")[0]
    ok = message.get("ok") is not False
    error = str(message.get("error") or "")
    if op == "service_login":
        return _login_reply(svc, message, ok, error, now_s)
    if svc.token is None or op == "service_logout":
        return []  # a late reply after the login ended
    if not ok and _names_token(error):
        log.info("service token refused; logged out", extra=log_fields(op=op))
        svc.forget()
        return []
    if op == "service_diagnostics":
        svc.diag_sent_s = None
        if ok and isinstance(message.get("diagnostics"), Mapping):
            svc.diagnostics = dict(message["diagnostics"])
            svc.diag_at_s = now_s
            stamp = svc.diagnostics.get("generated_at") or svc.diagnostics.get("now")
            svc.diagnostics_at = stamp if isinstance(stamp, str) else None
        elif not ok:
            svc.set_status("svc_failed", "refused", action="svc_tab_diag", error=error)
    elif op == "service_report_daily":
        svc.daily_sent_s = None
        if ok and isinstance(message.get("rows"), list):
            svc.daily = {key: message.get(key) for key in ("rows", "currency", "days",
                                                           "first_day", "timezone")}
            svc.daily_error = None
            svc.daily_at_s = now_s
        elif not ok:
            svc.daily_error = _human(error)
    elif op == "service_receipt":
        if what is not None and svc.receipt_session is not None:
            if ok:
                text = message.get("text")
                if not isinstance(text, str):
                    text = message.get("receipt") if isinstance(message.get("receipt"), str) \
                        else ""
                svc.receipt_text = text
                svc.receipt_error = None
            else:
                svc.receipt_error = _human(error)
    elif op == "service_action":
        action = what.split(":", 1)[1] if what and ":" in what else str(message.get("action"))
        _action_reply(svc, action, message, ok, error)
    return []


def _login_reply(svc: ServiceModel, message: Mapping[str, Any], ok: bool, error: str,
                 now_s: float) -> list[dict[str, Any]]:
    cancelled = svc.login_cancelled or not svc.login_pending
    svc.login_pending = False
    svc.login_cancelled = False
    if not ok:
        if not cancelled:
            svc.pin_error = _human(error)
            svc.attention_at_s = now_s
        return []
    token = message.get("token")
    if not isinstance(token, str) or not token:
        svc.pin_error = "no token in the reply"
        return []
    if cancelled:  # Cancel was pressed while the PIN was checked: do not stay logged in
        return [{"op": "service_logout", "token": token}]
    svc.forget()
    svc.token = token
    technician = message.get("technician")
    svc.technician = technician if isinstance(technician, str) else None
    expires = message.get("expires_in_s")
    if isinstance(expires, int | float) and not isinstance(expires, bool) and expires > 0:
        svc.expires_in_s = float(expires)
    svc.last_touch_s = now_s
    svc.status = ("svc_logged_in", {"technician": svc.technician or "-"})
    svc.status_tone = "ok"
    log.info("service login at the touchscreen", extra=log_fields(technician=svc.technician))
    return [svc.diagnostics_request(now_s)]


def _action_reply(svc: ServiceModel, action: str, message: Mapping[str, Any], ok: bool,
                  error: str) -> None:
    label = _ACTION_BUTTON.get(action, "svc_tab_actions")
    if not ok:
        svc.set_status("svc_failed", "refused", action=label, error=error)
        return
    if action == "meter_selfcheck":
        checks = message.get("checks")
        svc.checks = [dict(c) for c in checks if isinstance(c, Mapping)] \
            if isinstance(checks, list) else []
        passed = message.get("passed")
        if not isinstance(passed, bool):
            passed = bool(svc.checks) and all(c.get("ok") is True for c in svc.checks)
        svc.set_status("svc_done_selfcheck_ok" if passed else "svc_done_selfcheck_failed",
                       "ok" if passed else "refused")
    elif action == "export":
        path = message.get("path")
        svc.export_path = path if isinstance(path, str) else None
        svc.set_status("svc_done_export", "ok", path=svc.export_path or "-")
    elif action == "closing":
        text, report = message.get("text"), message.get("z_report")
        svc.z_report_text = text if isinstance(text, str) else None
        report = report if isinstance(report, Mapping) else {}
        svc.set_status("svc_done_closing", "attention" if report.get("remaining") else "ok",
                       closing=report.get("closing_id", "-"),
                       findings=len(report.get("findings") or ()),
                       remaining=len(report.get("remaining") or ()))
    elif action == "resend_outbox":
        pending = message.get("pending")
        pending = pending if isinstance(pending, int) and not isinstance(pending, bool) else "-"
        if message.get("backend_online") is False:
            svc.set_status("svc_done_resend_offline", "attention", pending=pending)
        else:
            svc.set_status("svc_done_resend", "ok", pending=pending)
    else:
        svc.set_status(_DONE.get(action, "svc_done"), "ok")


_ACTION_BUTTON = {action: button for button, action in ACTIONS.items()}
_DONE = {"out_of_service": "svc_done_oos", "in_service": "svc_done_in_service",
         "stop_session": "svc_done_stop", "restart": "svc_done_restart"}


def _names_token(error: str) -> bool:
    return error.split(":", 1)[0].strip() == "token" or "log in first" in error


def _human(error: str) -> str:
    """The daemon's error without its leading field name: "Wrong PIN (4 attempts left)"."""
    text = _FIELD_PREFIX.sub("", error.strip(), count=1) or "refused"
    return text[0].upper() + text[1:]
