"""The time limits of each screen and their warning, as ui/view.py shows them.

Provides `LIMITS` (the UI's own limits as `ui.timeouts.TimeoutSpec`s), `limits_left(s,
screen, report_open)` (every limit running on the screen shown: (seconds left, kind)),
`warning(s, screen, report_open) -> (banner text, speech text)` (both "" until the
nearest limit is within its warning lead) and `daemon_keep_ops(s, screen)` (the ops a
touch sends so the daemon's own limits start again: `touch`, `service_keep_pin`).

The limits (docs/ui.md "Time limits"):
- receipt (also under its Signed meter data page): the daemon's `receipt_pending.until`;
  a touch sends `touch` and the daemon keeps it `[ui] receipt_timeout_s` from then;
- the idle screen's language reset: the snapshot's `language_reset` `{"at", "language"}`;
  a touch sends `touch` (the daemon's language timer starts again);
- a card approved, the vehicle not plugged in yet (phase Authorized): the snapshot's
  `plug_in_until`; a touch sends `touch` (the daemon's connection timeout starts
  again);
- the report panel and the meter pages: REPORT_TIMEOUT_S / INFO_TIMEOUT_S after the
  last touch (the UI's own, ui/model.py); the company VAT number page: VAT_TIMEOUT_S
  after the last touch (ui/vat_entry.py), then the charging screen;
- the technician's PIN pad: the snapshot's `service.pin_until`; a touch sends
  `service_keep_pin`;
- the service menu: the UI's idle logout, the login's `expires_in_s` after the last
  touch.
A daemon deadline is seen through the snapshot's `now` plus the UI's time since the
snapshot arrived (`UiModel.state_at_s`), so a countdown runs between pushes too.

Texts: `timeout_warning*` (the banner) and `timeout_speech*` (for the speech output,
numbers as words are the speech side's job) in ui/locales/*.json.
"""

from __future__ import annotations

from collections.abc import Mapping

from ui.i18n import language_name
from ui.model import INFO_TIMEOUT_S, REPORT_TIMEOUT_S, pending_receipt
from ui.screen_state import ScreenState
from ui.timeouts import TimeoutSpec, Timer, countdown, left_until
from ui.vat_entry import VAT_SCREEN, VAT_TIMEOUT_S

LIMITS: Mapping[str, TimeoutSpec] = {
    "report": TimeoutSpec("report", REPORT_TIMEOUT_S),
    "info": TimeoutSpec("info", INFO_TIMEOUT_S),
    "vat": TimeoutSpec("vat", VAT_TIMEOUT_S),
}
KIND_SUFFIX = {"screen": "", "page": "_page", "language": "_language", "pin": "_pin",
               "logout": "_logout", "plug": "_plug"}
DAEMON_RECEIPT_SCREENS = ("receipt", "signed_data")


def _since_state_s(s: ScreenState) -> float:
    at = s.model.state_at_s
    return max(0.0, s.now_s - at) if at is not None else 0.0


def _daemon_left(s: ScreenState, deadline: object) -> float | None:
    return left_until(deadline, s.state.get("now"), _since_state_s(s))


def _language_reset(s: ScreenState) -> Mapping[str, object] | None:
    reset = s.state.get("language_reset")
    return reset if isinstance(reset, Mapping) else None


def _pin_until(s: ScreenState) -> object:
    service = s.state.get("service")
    if isinstance(service, Mapping) and service.get("state") == "pin":
        return service.get("pin_until")
    return None


def _waiting_for_plug(s: ScreenState, screen: str) -> bool:
    return screen == "authorising" and s.phase == "Authorized" \
        and s.state.get("plug_in_until") is not None


def limits_left(s: ScreenState, screen: str, report_open: bool) -> list[tuple[float, str]]:
    """(seconds left, kind) of every limit running on `screen` now."""
    model, now_s = s.model, s.now_s
    running: list[tuple[float | None, str]] = []
    pending = pending_receipt(model)
    if screen in DAEMON_RECEIPT_SCREENS and pending is not None:
        running.append((_daemon_left(s, pending.get("until")), "screen"))
    if report_open and model.report_at_s is not None:
        running.append((Timer(LIMITS["report"], model.report_at_s).at(now_s).left_s, "page"))
    if screen in ("meter_info", "signed_data") and model.info_at_s is not None:
        running.append((Timer(LIMITS["info"], model.info_at_s).at(now_s).left_s, "page"))
    if screen == VAT_SCREEN and model.vat.touched_at_s is not None:
        running.append((Timer(LIMITS["vat"], model.vat.touched_at_s).at(now_s).left_s, "page"))
    reset = _language_reset(s)
    if screen == "idle" and reset is not None:
        running.append((_daemon_left(s, reset.get("at")), "language"))
    if _waiting_for_plug(s, screen):
        running.append((_daemon_left(s, s.state.get("plug_in_until")), "plug"))
    if screen == "pin":
        running.append((_daemon_left(s, _pin_until(s)), "pin"))
    svc = model.service
    if screen == "service" and svc.last_touch_s is not None:
        running.append((svc.last_touch_s + svc.expires_in_s - now_s, "logout"))
    return [(left, kind) for left, kind in running if left is not None]


def warning(s: ScreenState, screen: str, report_open: bool) -> tuple[str, str]:
    """(banner text, speech text) of the nearest limit within its warning lead, else
    ("", "")."""
    running = limits_left(s, screen, report_open)
    if not running:
        return "", ""
    left_s, kind = min(running)
    shown = countdown(left_s)
    if not shown.warning:
        return "", ""
    values: dict[str, object] = {"seconds": shown.seconds}
    if kind == "language":
        target = (_language_reset(s) or {}).get("language")
        values["default_language"] = language_name(str(target))
    suffix = KIND_SUFFIX[kind]
    return s.t(f"timeout_warning{suffix}", **values), s.t(f"timeout_speech{suffix}", **values)


def daemon_keep_ops(s: ScreenState, screen: str) -> list[dict[str, object]]:
    """What a touch must tell the daemon so its limits on `screen` start again."""
    ops: list[dict[str, object]] = []
    if (screen in DAEMON_RECEIPT_SCREENS and pending_receipt(s.model) is not None) \
            or (screen == "idle" and _language_reset(s) is not None) \
            or _waiting_for_plug(s, screen):
        ops.append({"op": "touch"})
    if screen == "pin" and _pin_until(s) is not None:
        ops.append({"op": "service_keep_pin"})
    return ops
