"""The technician's screens as plain data: the PIN pad (`pin`) and the service menu
(`service`). No Kivy; ui/view.py calls in here and ui/app.py copies the result onto the
widgets, like every other screen.

Login (docs/local-api.md, service ops): a technician card tapped with no session
running makes the daemon open a PIN window (snapshot `service.state == "pin"`): the PIN
pad shows one dot per digit typed (never the digits) and OK sends
`{"op": "service_login", "pin": ...}`, forgetting the digits at once. The reply's
`token` is kept in this process's memory only (never shown, logged or in a repr) and
goes with every other `service_*` op. Cancel is local: the pad closes, the daemon's PIN
window runs out by itself.

Provides:
- `ServiceModel`: the PIN typed so far, the token, the service menu's tab, the last
  diagnostics, the receipt shown, the action in flight and the status line.
- `staff_screen(svc, state, now_s)`: "pin", "service" or None (the driver's screens).
- `on_state` / `on_tap` / `on_connection`: the token is forgotten when the daemon's
  `service.state` leaves "active" (logout, idle logout), when the connection drops (a
  daemon restart ends every login) and when an op is refused for its token.
- `apply_reply(svc, message, now_s)`: a reply to a `service_*` op; returns requests.
- `press(svc, button, state, language, now_s)`: a PIN pad or service button.
- `tick(svc, screen, now_s)`: diagnostics every DIAG_REFRESH_S while the Diagnostics
  tab is shown; log out after the login's `expires_in_s` without a touch (the refreshes
  would otherwise keep the daemon's idle timer alive for ever).
- `pin_view` / `service_view`: texts, active buttons and tone of the two screens (the
  diagnostics' texts come from ui/service_diag.py).

Technician texts come from the same catalogues as the driver's (ui/locales); the
daemon's own error texts (wrong PIN, lockout, refusals) are shown as the daemon words
them, in English, without the leading field name.

On failure: a reply that does not fit the state (a late reply after logout) is
ignored; a refusal naming `token` ends the login at this screen; odd diagnostics are
shown with what is there (ui/service_diag.py), never an exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from terminal.kernel.logsetup import fields as log_fields
from terminal.kernel.logsetup import get_logger
from ui.i18n import supported, tr
from ui.service_diag import (
    DIAG_SECTIONS,
    DiagnosticsText,
    export_root,
    recent_sessions,
    session_id,
)
from ui.values import time_of

log = get_logger("ui.service")

# ---- widget and button ids ---------------------------------------------------------------

PIN_DIGITS = tuple(f"pin_{digit}" for digit in range(10))
PIN_BUTTONS = (*PIN_DIGITS, "pin_clear", "pin_ok", "pin_cancel")
PIN_WIDGETS = ("pin_title", "pin_prompt", "pin_dots", "pin_message", *PIN_BUTTONS)

SERVICE_TABS = ("diag", "sessions", "actions")
SESSION_ROWS = 10
ACTIONS: Mapping[str, str] = {  # button -> service_action `action`
    "svc_out_of_service": "out_of_service",
    "svc_in_service": "in_service",
    "svc_stop_session": "stop_session",
    "svc_resend": "resend_outbox",
    "svc_selfcheck": "meter_selfcheck",
    "svc_export": "export",
    "svc_restart": "restart",
}
SERVICE_COMMON = ("svc_title", *(f"svc_tab_{tab}" for tab in SERVICE_TABS), "svc_logout",
                  "svc_status")
SERVICE_TAB_WIDGETS: Mapping[str, tuple[str, ...]] = {
    "diag": ("svc_diag_updated", *(f"svc_h_{s}" for s in DIAG_SECTIONS),
             *(f"svc_diag_{s}" for s in DIAG_SECTIONS)),
    "sessions": (*(f"svc_session_{i}" for i in range(SESSION_ROWS)),
                 *(f"svc_receipt_{i}" for i in range(SESSION_ROWS)), "svc_receipt_text"),
    "actions": ("svc_service_state", *ACTIONS, "svc_action_detail"),
}
SERVICE_WIDGETS = (*SERVICE_COMMON, *(w for tab in SERVICE_TABS for w in SERVICE_TAB_WIDGETS[tab]))
STAFF_SCREENS = ("pin", "service")

# ---- timing and limits -------------------------------------------------------------------

PIN_MAX_DIGITS = 12
PIN_MIN_DIGITS = 4
ATTENTION_S = 10.0       # a lockout stays on screen this long after the refusal or tap
DIAG_REFRESH_S = 2.0     # diagnostics while the Diagnostics tab is shown
DIAG_SLACK_S = 0.25      # the UI ticks once a second: due a little early rather than late
DIAG_RETRY_S = 5.0       # an unanswered diagnostics request is sent again after this
RESTART_CONFIRM_S = 5.0  # the second press on Restart must come within this
DEFAULT_IDLE_S = 300.0   # idle logout when the login reply names none
OUT_OF_SERVICE_REASON = "Maintenance"  # what drivers read as the reason (no keyboard here)
DOTS = "\u25cf"          # one per digit typed

_FIELD_PREFIX = re.compile(r"^[a-z_]+: ")


@dataclass
class ServiceModel:
    """The technician's side of the UI. `digits` and `token` never appear in a repr."""

    digits: str = field(default="", repr=False)         # PIN typed so far
    token: str | None = field(default=None, repr=False)
    technician: str | None = None                        # masked id from the login reply
    expires_in_s: float = DEFAULT_IDLE_S
    login_pending: bool = False                          # service_login sent, no reply yet
    login_cancelled: bool = False                        # Cancel pressed while it was
    pin_error: str | None = None                         # the daemon's refusal text
    attention_at_s: float | None = None                  # last refusal or technician tap
    dismissed: bool = False                              # Cancel pressed in this PIN window
    tab: str = "diag"
    last_touch_s: float | None = None
    diagnostics: dict[str, Any] | None = None
    diagnostics_at: str | None = None                    # daemon clock of the last reply
    diag_sent_s: float | None = None                     # request in flight since
    diag_at_s: float | None = None                       # last reply
    receipt_session: str | None = None
    receipt_text: str | None = None
    receipt_error: str | None = None
    in_flight: dict[str, str] = field(default_factory=dict)  # request id -> op or action
    next_id: int = 0
    status: tuple[str, dict[str, Any]] | None = None     # catalogue key and values
    status_tone: str = ""
    checks: list[dict[str, Any]] | None = None           # last meter self-check
    export_path: str | None = None
    restart_armed_s: float | None = None

    def forget(self) -> None:
        """Back to the start: no token, nothing typed, nothing cached (ids keep counting)."""
        fresh = ServiceModel(next_id=self.next_id)
        for item in fields(self):
            setattr(self, item.name, getattr(fresh, item.name))

    def request_id(self, what: str) -> str:
        self.next_id += 1
        request_id = f"svc-{self.next_id}"
        self.in_flight[request_id] = what
        return request_id


# ---- which screen ------------------------------------------------------------------------


def service_state(state: Mapping[str, Any] | None) -> str | None:
    service = (state or {}).get("service")
    value = service.get("state") if isinstance(service, Mapping) else None
    return value if isinstance(value, str) else None


def staff_screen(svc: ServiceModel, state: Mapping[str, Any] | None, now_s: float) -> str | None:
    """"service" while logged in, "pin" while the daemon waits for the PIN (or a lockout
    was just announced), None for the driver's screens."""
    current = service_state(state)
    if svc.token is not None and current in ("active", "pin"):
        return "service"  # "pin": the snapshot after the login is on its way
    if svc.dismissed:
        return None
    if svc.login_pending and current in ("pin", "active", "locked"):
        return "pin"  # the daemon publishes "active" just before its login reply
    if current == "pin":
        return "pin"
    if current == "locked" and svc.attention_at_s is not None \
            and 0 <= now_s - svc.attention_at_s < ATTENTION_S:
        return "pin"
    return None


# ---- events from the daemon ----------------------------------------------------------------


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
            _set_status(svc, "svc_failed", "refused", action="svc_tab_diag", error=error)
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
    return [_diagnostics_request(svc, now_s)]


def _action_reply(svc: ServiceModel, action: str, message: Mapping[str, Any], ok: bool,
                  error: str) -> None:
    label = _ACTION_BUTTON.get(action, "svc_tab_actions")
    if not ok:
        _set_status(svc, "svc_failed", "refused", action=label, error=error)
        return
    if action == "meter_selfcheck":
        checks = message.get("checks")
        svc.checks = [dict(c) for c in checks if isinstance(c, Mapping)] \
            if isinstance(checks, list) else []
        passed = message.get("passed")
        if not isinstance(passed, bool):
            passed = bool(svc.checks) and all(c.get("ok") is True for c in svc.checks)
        _set_status(svc, "svc_done_selfcheck_ok" if passed else "svc_done_selfcheck_failed",
                     "ok" if passed else "refused")
    elif action == "export":
        path = message.get("path")
        svc.export_path = path if isinstance(path, str) else None
        _set_status(svc, "svc_done_export", "ok", path=svc.export_path or "-")
    elif action == "resend_outbox":
        pending = message.get("pending")
        pending = pending if isinstance(pending, int) and not isinstance(pending, bool) else "-"
        if message.get("backend_online") is False:
            _set_status(svc, "svc_done_resend_offline", "attention", pending=pending)
        else:
            _set_status(svc, "svc_done_resend", "ok", pending=pending)
    else:
        _set_status(svc, _DONE.get(action, "svc_done"), "ok")


_ACTION_BUTTON = {action: button for button, action in ACTIONS.items()}
_DONE = {"out_of_service": "svc_done_oos", "in_service": "svc_done_in_service",
         "stop_session": "svc_done_stop", "restart": "svc_done_restart"}


def _set_status(svc: ServiceModel, key: str, tone: str, **values: Any) -> None:
    svc.status = (key, values)
    svc.status_tone = tone


def _names_token(error: str) -> bool:
    return error.split(":", 1)[0].strip() == "token" or "log in first" in error


def _human(error: str) -> str:
    """The daemon's error without its leading field name: "Wrong PIN (4 attempts left)"."""
    text = _FIELD_PREFIX.sub("", error.strip(), count=1) or "refused"
    return text[0].upper() + text[1:]


# ---- buttons -----------------------------------------------------------------------------


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
            return [_diagnostics_request(svc, now_s)]
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
            _set_status(svc, "svc_confirm_restart", "attention",
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
    _set_status(svc, "svc_busy", "waiting", action=button)
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


def _diagnostics_request(svc: ServiceModel, now_s: float) -> dict[str, Any]:
    svc.diag_sent_s = now_s
    return {"op": "service_diagnostics", "token": svc.token,
            "id": svc.request_id("service_diagnostics")}


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
        return [_diagnostics_request(svc, now_s)]
    return []


# ---- the PIN pad -------------------------------------------------------------------------


def pin_view(svc: ServiceModel, state: Mapping[str, Any], language: str
             ) -> tuple[dict[str, str], tuple[str, ...], str]:
    """(texts, active buttons, tone) of the PIN pad."""
    def t(key: str, **values: object) -> str:
        return tr(key, language, **values)

    locked_s = locked_for_s(state)
    if svc.login_pending:
        message, tone = t("pin_checking"), "waiting"
    elif locked_s is not None:
        message, tone = t("pin_locked", seconds=locked_s), "refused"
    elif svc.pin_error:
        message, tone = svc.pin_error, "refused"
    else:
        message, tone = "", ""
    texts = {"pin_title": t("pin_title"), "pin_prompt": t("pin_prompt"),
             "pin_dots": " ".join(DOTS * len(svc.digits)), "pin_message": message,
             "pin_clear": t("pin_clear"), "pin_ok": t("pin_ok"),
             "pin_cancel": t("pin_cancel")}
    texts |= {button: button.removeprefix("pin_") for button in PIN_DIGITS}
    buttons: list[str] = []
    if locked_s is None and not svc.login_pending:
        if len(svc.digits) < PIN_MAX_DIGITS:
            buttons += PIN_DIGITS
        if svc.digits:
            buttons.append("pin_clear")
        if len(svc.digits) >= PIN_MIN_DIGITS:
            buttons.append("pin_ok")
    buttons.append("pin_cancel")
    return texts, tuple(buttons), tone


def locked_for_s(state: Mapping[str, Any]) -> int | None:
    """Seconds of lockout left by the daemon's clock, None when not locked."""
    if service_state(state) != "locked":
        return None
    service = state.get("service")
    until = time_of(service.get("locked_until")) if isinstance(service, Mapping) \
        else None
    now = time_of(state.get("now"))
    if until is None or now is None:
        return None
    return max(1, math.ceil((until - now).total_seconds()))


# ---- the service menu --------------------------------------------------------------------


def service_view(svc: ServiceModel, state: Mapping[str, Any], language: str, now_s: float
                 ) -> tuple[dict[str, str], tuple[str, ...], str]:
    """(texts, active buttons, tone of the status line) of the service menu."""
    return _Menu(svc, state, language, now_s).build()


class _Menu:
    def __init__(self, svc: ServiceModel, state: Mapping[str, Any], language: str,
                 now_s: float) -> None:
        self.svc = svc
        self.state = state
        self.language = supported(language)
        self.now_s = now_s
        self.loading = not svc.diagnostics
        now = time_of(svc.diagnostics_at) or time_of(state.get("now"))
        self.text = DiagnosticsText(svc.diagnostics, self.language, now)
        self.sessions = recent_sessions(svc.diagnostics, SESSION_ROWS)

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.language, **values)

    def build(self) -> tuple[dict[str, str], tuple[str, ...], str]:
        svc = self.svc
        texts = {"svc_title": self.t("svc_title", technician=svc.technician or "-"),
                 "svc_logout": self.t("svc_logout"), "svc_status": self._status()}
        for tab in SERVICE_TABS:
            texts[f"svc_tab_{tab}"] = self.t(f"svc_tab_{tab}")
        texts |= self._diagnostics()
        texts |= self._sessions()
        texts |= self._actions()
        buttons = [f"svc_tab_{tab}" for tab in SERVICE_TABS] + ["svc_logout"]
        if svc.tab == "sessions":
            buttons += [f"svc_receipt_{row}"
                        for row, session in enumerate(self.sessions)
                        if session_id(session) is not None
                        and session.get("has_receipt") is not False]
        elif svc.tab == "actions":
            busy = {what.split(":", 1)[1] for what in svc.in_flight.values()
                    if what.startswith("service_action:")}
            out_of_service = self._out_of_service() is not None
            for button, action in ACTIONS.items():
                if action in busy or (action == "out_of_service" and out_of_service) or (
                        action == "in_service" and not out_of_service):
                    continue
                buttons.append(button)
        return texts, tuple(buttons), svc.status_tone if svc.status else ""

    def _status(self) -> str:
        if self.svc.status is None:
            return ""
        key, values = self.svc.status
        if "action" in values:  # a button's catalogue key: its label in the language shown
            values = {**values, "action": self.t(str(values["action"]))}
        return self.t(key, **values)

    def _out_of_service(self) -> Mapping[str, Any] | None:
        value = self.state.get("out_of_service")
        return value if isinstance(value, Mapping) else None

    # ---- diagnostics ----

    def _diagnostics(self) -> dict[str, str]:
        texts: dict[str, str] = {}
        for section in DIAG_SECTIONS:
            texts[f"svc_h_{section}"] = self.t(f"svc_h_{section}")
            texts[f"svc_diag_{section}"] = self.t("svc_loading") if self.loading \
                else self.text.section(section)
        stamp = self.svc.diagnostics_at
        texts["svc_diag_updated"] = self.t("svc_loading") if self.loading else self.t(
            "svc_updated", time=self.text.clock(stamp) if stamp else "-")
        return texts

    # ---- sessions ----

    def _sessions(self) -> dict[str, str]:
        sessions = self.sessions
        texts = {}
        for row in range(SESSION_ROWS):
            session = sessions[row] if row < len(sessions) else None
            texts[f"svc_session_{row}"] = self.text.session_row(session) if session else ""
            texts[f"svc_receipt_{row}"] = self.t("svc_receipt_button")
        if not sessions:
            texts["svc_session_0"] = self.t("svc_loading") if self.loading \
                else self.t("svc_no_sessions")
        svc = self.svc
        if svc.receipt_session is None:
            receipt = self.t("svc_receipt_hint")
        elif svc.receipt_error is not None:
            receipt = svc.receipt_error
        elif svc.receipt_text is None:
            receipt = self.t("svc_receipt_loading")
        else:
            receipt = svc.receipt_text
        texts["svc_receipt_text"] = receipt
        return texts

    # ---- actions ----

    def _actions(self) -> dict[str, str]:
        svc = self.svc
        texts = {button: self.t(button) for button in ACTIONS}
        if svc.restart_armed_s is not None and 0 <= self.now_s - svc.restart_armed_s \
                < RESTART_CONFIRM_S:
            texts["svc_restart"] = self.t("svc_restart_confirm")
        out = self._out_of_service()
        if out is not None:
            texts["svc_service_state"] = self.t(
                "svc_state_out", since=self.text.clock(out.get("since")),
                reason=out.get("reason") or "-")
        else:
            texts["svc_service_state"] = self.t("svc_state_in")
        detail: list[str] = []
        if svc.checks is not None:
            for check in svc.checks:
                mark = self.t("svc_check_ok" if check.get("ok") is True else "svc_check_failed")
                line = f"{mark} {check.get('name', '?')}"
                if check.get("detail"):
                    line = f"{line}: {check['detail']}"
                detail.append(line)
            if not svc.checks:
                detail.append(self.t("svc_no_checks"))
        if svc.export_path:
            detail.append(self.t("svc_done_export", path=svc.export_path))
        texts["svc_action_detail"] = "\n".join(detail)
        return texts


