"""The technician's side of the UI as data: its widget and button ids, its timings, what
it remembers (`ServiceModel`) and which technician screen shows (`staff_screen`).

Login (docs/local-api.md, service ops): a technician card tapped with no session
running makes the daemon open a PIN window (snapshot `service.state == "pin"`): the PIN
pad shows one dot per digit typed (never the digits) and OK sends
`{"op": "service_login", "pin": ...}`, forgetting the digits at once. The reply's
`token` is kept in this process's memory only (never shown, logged or in a repr) and
goes with every other `service_*` op. Cancel is local: the pad closes, the daemon's PIN
window runs out by itself.

Provides:
- the ids of evterm.kv's PIN pad (`PIN_WIDGETS`, `PIN_DIGITS`, `PIN_BUTTONS`) and
  service menu (`SERVICE_TABS`, `SERVICE_COMMON`, `SERVICE_TAB_WIDGETS`,
  `SERVICE_WIDGETS`, `ACTIONS`: button -> service_action; `PLOT_WIDGETS`: the "Last 30
  days" tab's bar plots), `STAFF_SCREENS`;
- the timings and limits (PIN length, lockout notice, diagnostics refresh, restart
  confirm, idle logout);
- `ServiceModel`: the PIN typed so far, the token, the service menu's tab, the last
  diagnostics, the receipt shown, the last 30 days (`daily`), the requests in flight
  and the status line;
- `service_state(state)` and `staff_screen(svc, state, now_s)`: "pin", "service" or
  None (the driver's screens).

The rest of the technician's side: ui/service_replies.py (the daemon's replies and
events), ui/service_buttons.py (touches and the timer), ui/service_view.py (what the
two screens show), ui/service_diag.py (the diagnostics as text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ui.service_diag import DIAG_SECTIONS
from ui.service_plots import PLOTS, plot_widgets

# ---- widget and button ids ---------------------------------------------------------------

PIN_DIGITS = tuple(f"pin_{digit}" for digit in range(10))
PIN_BUTTONS = (*PIN_DIGITS, "pin_clear", "pin_ok", "pin_cancel")
PIN_WIDGETS = ("pin_title", "pin_prompt", "pin_dots", "pin_message", *PIN_BUTTONS)

SERVICE_TABS = ("diag", "sessions", "actions", "plots")
SESSION_ROWS = 10
ACTIONS: Mapping[str, str] = {  # button -> service_action `action`
    "svc_out_of_service": "out_of_service",
    "svc_in_service": "in_service",
    "svc_stop_session": "stop_session",
    "svc_resend": "resend_outbox",
    "svc_selfcheck": "meter_selfcheck",
    "svc_export": "export",
    "svc_restart": "restart",
    "svc_closing": "closing",
}
SERVICE_COMMON = ("svc_title", *(f"svc_tab_{tab}" for tab in SERVICE_TABS), "svc_logout",
                  "svc_status")
SERVICE_TAB_WIDGETS: Mapping[str, tuple[str, ...]] = {
    "diag": ("svc_diag_updated", *(f"svc_h_{s}" for s in DIAG_SECTIONS),
             *(f"svc_diag_{s}" for s in DIAG_SECTIONS), "svc_diag_signing_key"),
    "sessions": (*(f"svc_session_{i}" for i in range(SESSION_ROWS)),
                 *(f"svc_receipt_{i}" for i in range(SESSION_ROWS)), "svc_receipt_text"),
    "actions": ("svc_service_state", *ACTIONS, "svc_action_detail"),
    "plots": plot_widgets(),  # "Last 30 days" (ui/service_plots.py)
}
PLOT_WIDGETS = tuple(f"svc_plot_{kind}" for kind in PLOTS)  # the bar plots (ui/bar_plot.py)
SERVICE_WIDGETS = (*SERVICE_COMMON, *(w for tab in SERVICE_TABS for w in SERVICE_TAB_WIDGETS[tab]))
STAFF_SCREENS = ("pin", "service")

# ---- timing and limits -------------------------------------------------------------------

PIN_MAX_DIGITS = 12
PIN_MIN_DIGITS = 4
ATTENTION_S = 10.0       # a lockout stays on screen this long after the refusal or tap
DIAG_REFRESH_S = 2.0     # diagnostics while the Diagnostics tab is shown
DIAG_SLACK_S = 0.25      # the UI ticks once a second: due a little early rather than late
DIAG_RETRY_S = 5.0       # an unanswered diagnostics request is sent again after this
DAILY_REFRESH_S = 60.0   # the last 30 days are asked again when the tab opens after this
RESTART_CONFIRM_S = 5.0  # the second press on Restart must come within this
DEFAULT_IDLE_S = 300.0   # idle logout when the login reply names none
OUT_OF_SERVICE_REASON = "Maintenance"  # what drivers read as the reason (no keyboard here)


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
    z_report_text: str | None = None                     # the last closing's Z-report
    daily: dict[str, Any] | None = None                  # last service_report_daily reply
    daily_error: str | None = None                       # its refusal
    daily_sent_s: float | None = None                    # request in flight since
    daily_at_s: float | None = None                      # last reply
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

    def set_status(self, key: str, tone: str, **values: Any) -> None:
        """The status line: catalogue `key` with `values`, in `tone`."""
        self.status = (key, values)
        self.status_tone = tone

    def diagnostics_request(self, now_s: float) -> dict[str, Any]:
        """A `service_diagnostics` request, noted as in flight since now_s."""
        self.diag_sent_s = now_s
        return {"op": "service_diagnostics", "token": self.token,
                "id": self.request_id("service_diagnostics")}

    def daily_request(self, now_s: float) -> dict[str, Any]:
        """A `service_report_daily` request (the last 30 days), noted as in flight."""
        self.daily_sent_s = now_s
        return {"op": "service_report_daily", "token": self.token,
                "id": self.request_id("service_report_daily")}

    def daily_due(self, now_s: float) -> bool:
        """The plots tab opened: ask unless a request is in flight (DIAG_RETRY_S) or the
        last reply is younger than DAILY_REFRESH_S."""
        if self.daily_sent_s is not None:
            return not 0 <= now_s - self.daily_sent_s < DIAG_RETRY_S
        return self.daily_at_s is None or not 0 <= now_s - self.daily_at_s < DAILY_REFRESH_S


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
