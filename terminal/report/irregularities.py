"""What an operator should look at: the report's irregularities, found while streaming.

Provides:
- `Thresholds` (from the `[report]` config section: refund_threshold, long_idle_s,
  decline_repeats within decline_window_s, meter_jump_wh) and `thresholds_from(config)`;
- `Irregularities`: fed every session (oldest close first) and every tap (oldest
  first), it keeps only what the checks need (the last session per meter, the recent
  declines per token) and lists, each as a dict with `kind`, `at`, `session_id`, a
  `detail` sentence and the figures it names:
  - `energy_without_capture`: energy delivered and an amount charged, paid by card (the
    built-in reader or the ZVT terminal) and not captured, or a card session without
    a payment;
  - `capture_differs_from_receipt`: the amount captured is not the receipt's amount;
  - `refund_over_threshold`: one refund above `refund_threshold`;
  - `meter_counter_jump`: a session's start reading differs from the previous session's
    stop reading of the same meter by more than `meter_jump_wh`, or runs backwards;
  - `long_idle`: the car stayed plugged in after charging longer than `long_idle_s`;
  - `repeated_declines`: `decline_repeats` or more declined taps of one token within
    `decline_window_s` (the token shortened to its first 6 characters and "…").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.kernel.money import plain
from terminal.report.facts import SessionFact, TapFact, utc_iso
from terminal.report.stats import money_text

TOKEN_SHOWN = 6


@dataclass(frozen=True, slots=True)
class Thresholds:
    refund_threshold: Decimal = Decimal("20.00")
    long_idle_s: float = 3600.0
    decline_repeats: int = 3
    decline_window_s: float = 600.0
    meter_jump_wh: Decimal = Decimal(100)


def thresholds_from(report_config: Any) -> Thresholds:
    """The thresholds of a `[report]` section (terminal.config ReportConfig)."""
    return Thresholds(refund_threshold=Decimal(report_config.refund_threshold),
                      long_idle_s=float(report_config.long_idle_s),
                      decline_repeats=int(report_config.decline_repeats),
                      decline_window_s=float(report_config.decline_window_s),
                      meter_jump_wh=Decimal(report_config.meter_jump_wh))


def short_token(token: str) -> str:
    """A token as the report shows it: never in full."""
    return token[:TOKEN_SHOWN] + "…"



class Irregularities:
    """The irregularities of a stream of sessions and taps."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.found: list[dict[str, Any]] = []
        self._last_stop: dict[str, tuple[Decimal, str]] = {}  # meter -> (stop_wh, session)
        self._declines: dict[str, deque[datetime]] = {}

    def _add(self, kind: str, at: datetime, session_id: str | None, detail: str,
             **figures: Any) -> None:
        self.found.append({"kind": kind, "at": utc_iso(at), "session_id": session_id,
                           "detail": detail, **figures})

    def session(self, s: SessionFact) -> None:
        self._capture(s)
        self._refunds(s)
        self._meter(s)
        if s.stopped_at is not None and s.energy_wh > 0 \
                and s.idle_s > self.thresholds.long_idle_s:
            self._add("long_idle", s.closed_at, s.session_id,
                      f"The car stayed plugged in {_minutes(s.idle_s)} after charging "
                      f"ended (more than {_minutes(self.thresholds.long_idle_s)}).",
                      idle_s=round(s.idle_s, 1), long_idle_s=self.thresholds.long_idle_s)

    def _capture(self, s: SessionFact) -> None:
        status = s.payment_status
        captured = s.amount_captured
        if status == "captured" and captured == s.amount_charged:
            return  # the usual case, quickly
        charged = money_text(s.amount_charged)
        if s.energy_wh > 0 and s.amount_charged > 0 and s.paid_by_card:
            if s.payment_status is None:
                self._add("energy_without_capture", s.closed_at, s.session_id,
                          f"{plain(s.energy_wh)} Wh delivered and {charged} {s.currency} "
                          "charged to a card, but the session has no card payment.",
                          energy_wh=plain(s.energy_wh), amount_charged=charged,
                          payment_status=None)
            elif s.payment_status != "captured":
                self._add("energy_without_capture", s.closed_at, s.session_id,
                          f"{plain(s.energy_wh)} Wh delivered and {charged} {s.currency} "
                          f"charged, but the card payment is {s.payment_status}, "
                          "not captured.",
                          energy_wh=plain(s.energy_wh), amount_charged=charged,
                          payment_status=s.payment_status)
        if captured is not None and captured != s.amount_charged:
            self._add("capture_differs_from_receipt", s.closed_at, s.session_id,
                      f"The card was charged {money_text(captured)} {s.currency} but the "
                      f"receipt says {charged} {s.currency}.",
                      amount_captured=money_text(captured), amount_charged=charged,
                      difference=money_text(captured - s.amount_charged))

    def _refunds(self, s: SessionFact) -> None:
        if not s.refunds:
            return
        limit = self.thresholds.refund_threshold
        for refund in s.refunds:
            if refund.amount > limit:
                self._add("refund_over_threshold", refund.at, s.session_id,
                          f"A refund of {money_text(refund.amount)} {s.currency} is above "
                          f"the threshold of {money_text(limit)} {s.currency}"
                          + (f" ({refund.reason})." if refund.reason else "."),
                          amount=money_text(refund.amount), threshold=money_text(limit))

    def _meter(self, s: SessionFact) -> None:
        if s.meter_serial is None:
            return
        last = self._last_stop.get(s.meter_serial)
        if last is not None and s.meter_start_wh is not None:
            stop_wh, previous = last
            jump = s.meter_start_wh - stop_wh
            if jump < 0 or jump > self.thresholds.meter_jump_wh:
                how = ("ran backwards" if jump < 0 else
                       f"jumped by more than {plain(self.thresholds.meter_jump_wh)} Wh")
                self._add("meter_counter_jump", s.opened_at, s.session_id,
                          f"Meter {s.meter_serial}'s counter {how} between two sessions: "
                          f"{plain(stop_wh)} Wh at the end of the previous one, "
                          f"{plain(s.meter_start_wh)} Wh at the start of this one.",
                          meter_serial=s.meter_serial, previous_session_id=previous,
                          previous_stop_wh=plain(stop_wh),
                          start_wh=plain(s.meter_start_wh), jump_wh=plain(jump))
        if s.meter_stop_wh is not None:
            self._last_stop[s.meter_serial] = (s.meter_stop_wh, s.session_id)

    def tap(self, tap: TapFact) -> None:
        if tap.result != "declined" or not tap.token:
            return
        window = self.thresholds.decline_window_s
        recent = self._declines.setdefault(tap.token, deque())
        while recent and (tap.at - recent[0]).total_seconds() > window:
            recent.popleft()
        recent.append(tap.at)
        if len(recent) >= self.thresholds.decline_repeats:
            shown = short_token(tap.token)
            self._add("repeated_declines", recent[0], tap.session_id,
                      f"Token {shown} was declined {len(recent)} times within "
                      f"{_minutes(window)} ({tap.kind}, last reason {tap.reason}).",
                      token=shown, declines=len(recent), window_s=window,
                      last_at=utc_iso(tap.at))
            recent.clear()  # the next burst is a new irregularity
        if len(self._declines) > 10_000:  # forget tokens whose declines are long past
            self._declines = {k: v for k, v in self._declines.items()
                              if v and (tap.at - v[-1]).total_seconds() <= window}

    def result(self) -> list[dict[str, Any]]:
        """The irregularities, oldest first."""
        return sorted(self.found, key=lambda item: (item["at"], item["kind"]))


def _minutes(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{round(seconds / 60)} min"
