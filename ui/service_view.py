"""What the technician's two screens show, as plain data: the PIN pad (`pin`) and the
service menu (`service`). No Kivy; ui/view.py calls in here and ui/app.py copies the
result onto the widgets, like every other screen.

Provides `pin_view(svc, state, language)` and `service_view(svc, state, language,
now_s)`: (texts by widget id, active buttons, tone) of each screen, `plots_of(svc,
language)` (the "30 days" tab's texts and plots, ui/service_plots.py) and
`locked_for_s(state)` (the lockout left by the daemon's clock). The PIN pad shows one
dot per digit typed, never the digits. The diagnostics' texts come from
ui/service_diag.py; technician texts from the same catalogues as the driver's
(ui/locales). On failure: odd diagnostics are shown with what is there, never an
exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ui.i18n import supported, tr
from ui.service_diag import DIAG_SECTIONS, DiagnosticsText, recent_sessions, session_id
from ui.service_model import (
    ACTIONS,
    PIN_DIGITS,
    PIN_MAX_DIGITS,
    PIN_MIN_DIGITS,
    RESTART_CONFIRM_S,
    SERVICE_TABS,
    SESSION_ROWS,
    ServiceModel,
    service_state,
)
from ui.service_plots import PlotView, plots_view
from ui.values import out_of_service, time_of

DOTS = "\u25cf"  # one per digit typed


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


def plots_of(svc: ServiceModel, language: str) -> tuple[dict[str, str], tuple[PlotView, ...]]:
    """The "30 days" tab: its texts and its four plots (ui/service_plots.py)."""
    return plots_view(svc.daily, supported(language), svc.daily_error)


class _Menu:
    def __init__(self, svc: ServiceModel, state: Mapping[str, Any], language: str,
                 now_s: float) -> None:
        self.svc = svc
        self.state = state
        self.language = supported(language)
        self.now_s = now_s
        self.loading = not svc.diagnostics
        now = time_of(svc.diagnostics_at) or time_of(state.get("now"))
        self.text = DiagnosticsText(svc.diagnostics, self.language, now,
                                    state.get("timezone"), state.get("metering"))
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
        texts |= plots_of(svc, self.language)[0]
        buttons = [f"svc_tab_{tab}" for tab in SERVICE_TABS] + ["svc_logout"]
        if svc.tab == "sessions":
            buttons += [f"svc_receipt_{row}"
                        for row, session in enumerate(self.sessions)
                        if session_id(session) is not None
                        and session.get("has_receipt") is not False]
        elif svc.tab == "actions":
            busy = {what.split(":", 1)[1] for what in svc.in_flight.values()
                    if what.startswith("service_action:")}
            out = out_of_service(self.state) is not None
            for button, action in ACTIONS.items():
                if action in busy or (action == "out_of_service" and out) or (
                        action == "in_service" and not out):
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

    # ---- diagnostics ----

    def _diagnostics(self) -> dict[str, str]:
        texts: dict[str, str] = {}
        for section in DIAG_SECTIONS:
            texts[f"svc_h_{section}"] = self.t(f"svc_h_{section}")
            texts[f"svc_diag_{section}"] = self.t("svc_loading") if self.loading \
                else self.text.section(section)
        texts["svc_diag_signing_key"] = "" if self.loading else self.text.signing_key()
        if self.text.metering is None:  # an older daemon: no signing block at all
            texts["svc_h_signing"] = texts["svc_diag_signing"] = ""
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
        out = out_of_service(self.state)
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
        if svc.z_report_text:
            detail.append(svc.z_report_text)
        texts["svc_action_detail"] = "\n".join(detail)
        return texts
