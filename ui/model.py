"""What the driver's side of the UI knows and what it shows, as plain data.

Provides `UiModel` (the daemon's last `state`, the connection flag, the last card
feedback, the receipt fetched for `receipt_pending`, the report panel, the language
chosen on screen until the daemon's state confirms it, and the technician's
`ServiceModel`; the company VAT number page's `VatEntry`), `View` (one screen as
data: its name, the text of every widget by id,
price and receipt lines, QR payload, progress, tone, active buttons),
`current_language(model)` and `pending_receipt(model)`; the daemon's phase groups the
screens tell apart; and how long what the model remembers counts (FEEDBACK_S, ...,
INFO_TIMEOUT_S: a meter page opened over idle, charging or the receipt).

Times: elapsed times, the idle-fee countdown and the receipt timeout come from the
daemon's clock (`now`, `elapsed_s` in the state); `now_s` (the UI's monotonic clock)
only times the UI's own feedback (how long a tap result stays, retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ui.accessibility import DisplayModes
from ui.i18n import DEFAULT_LANGUAGE, LANGUAGES
from ui.service_model import ServiceModel
from ui.service_plots import PlotView
from ui.vat_entry import VatEntry

FEEDBACK_S = 6.0  # how long a tap result stays on screen
CHECKING_S = 30.0  # "checking card" at most this long when no decision arrives
RECEIPT_RETRY_S = 5.0  # a receipt request unanswered or refused is sent again after this
REPORT_TIMEOUT_S = 60.0  # the report panel closes itself after this long untouched
STOP_PENDING_S = 10.0  # the stop button says "stopping" at most this long
INFO_TIMEOUT_S = REPORT_TIMEOUT_S  # a meter page goes back by itself after this untouched
HOLD_RELEASED_S = 60.0  # "the amount reserved on your card has been released" stays this long

CHARGING_PHASES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})
RECEIPT_PHASES = frozenset({"Available", "Completed", "Rejected"})  # connector free again
AUTH_PHASES = frozenset({"Authorizing", "Authorized"})
# Tap results that belong to a new driver, shown over a pending receipt; "info" and
# "stopping" come from the previous session's own card.
RESULTS_OVER_RECEIPT = frozenset({"accepted", "declined", "tap_again", "error", "in_use"})


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
    info_screen: str | None = None            # a meter page opened: meter_info, signed_data
    info_from: str | None = None              # the screen it was opened from
    info_phase: Any = None                    # the daemon's phase then
    info_at_s: float | None = None            # opened or last touched
    service: ServiceModel = field(default_factory=ServiceModel)  # technician
    state_at_s: float | None = None           # when the last snapshot arrived (monotonic)
    touch_sent_at_s: float | None = None      # the last `touch` sent (a touch anywhere)
    modes: DisplayModes = field(default_factory=DisplayModes)  # large text, contrast
    hold_released: dict[str, Any] | None = None  # last `hold_released` event (a card hold
    hold_released_at_s: float | None = None      # voided without energy) and when it came
    vat: VatEntry = field(default_factory=VatEntry)  # the VAT number page (ui/vat_entry.py)


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
    plots: tuple[PlotView, ...] = ()                  # service, "30 days": the bar plots
    timeout_warning: str = ""                         # a time limit is near (banner)
    timeout_speech: str = ""                          # the same for the speech output
    large_text: bool = False                          # display modes (ui/accessibility.py)
    high_contrast: bool = False
    budget_selected: str = ""                         # the budget button in force (idle)


def close_info(model: UiModel) -> None:
    """Close the meter page (Back, a card tap, a new connection)."""
    model.info_screen = model.info_from = model.info_phase = model.info_at_s = None


def current_language(model: UiModel) -> str:
    """The language the screen shows: chosen on screen, else the daemon's, else default."""
    for candidate in (model.language, (model.state or {}).get("language"),
                      model.default_language):
        if candidate in LANGUAGES:
            return str(candidate)
    return DEFAULT_LANGUAGE


def pending_receipt(model: UiModel) -> Mapping[str, Any] | None:
    """The daemon's `receipt_pending`, unless the driver has closed it already."""
    pending = (model.state or {}).get("receipt_pending")
    if not isinstance(pending, Mapping) or not isinstance(pending.get("session_id"), str):
        return None
    if pending["session_id"] == model.receipt_acked:
        return None
    return pending
