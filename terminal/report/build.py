"""The report: facts in, the one dict (schema "evterm.report/1") every renderer reads.

Provides `build_report(sessions, taps, statuses, *, station_ids, since, until, timezone,
now, thresholds) -> dict`. It makes ONE pass over the sessions (a board holds years of
them: no SessionFact is kept; money in per-key Decimal sums, durations and energies in
compact arrays for the percentiles), then one over the taps and one over the status
rows (the connector's changes only, read twice: availability and the faults per
day). What each figure counts is written in docs/reports.md ("What the report counts").
Decimals are strings, times ISO-8601 UTC, percents strings with one decimal (half-up),
so the JSON is exact and every printed figure can be recomputed from those beside it.

On failure: `ReportError` (e.g. sessions in two currencies).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from terminal.kernel.formatting import station_zone
from terminal.kernel.money import plain
from terminal.report.availability import Availability, SessionSpans
from terminal.report.daily import MAX_DAYS, DailyTally
from terminal.report.facts import ReportError, SessionFact, StatusFact, TapFact, utc_iso
from terminal.report.irregularities import Irregularities, Thresholds
from terminal.report.stats import (
    Distribution,
    HourOfWeek,
    kwh_text,
    money_text,
    percent,
)

SCHEMA = "evterm.report/1"
ZERO = Decimal(0)
FAILURE_KINDS = ("meter_fault", "charger_fault", "power_loss", "declined_card",
                 "aborted_start")
STOP_FAILURES = {"MeterFault": "meter_fault", "ChargerFault": "charger_fault",
                 "PowerLoss": "power_loss"}
DECLINED_PAYMENTS = ("declined", "failed")


class _Rate:
    __slots__ = ("gross", "net", "sessions", "vat")

    def __init__(self) -> None:
        self.sessions = 0
        self.net = ZERO
        self.vat = ZERO
        self.gross = ZERO


class _Method:
    __slots__ = ("energy_wh", "gross", "sessions")

    def __init__(self) -> None:
        self.sessions = 0
        self.energy_wh = ZERO
        self.gross = ZERO


class _Sessions:
    """The per-key accumulators of the session pass."""

    def __init__(self, zone: Any, since: datetime, end: datetime,
                 irregular: Irregularities, declined_taps: set[str]) -> None:
        self.since = since
        self.end = end
        self.irregular = irregular
        self.declined_taps = declined_taps
        self.currency: str | None = None
        self.count = 0
        self.with_energy = 0
        self.energy_wh = ZERO
        self.rates: dict[Decimal | None, _Rate] = {}
        self.methods: dict[str, _Method] = {}
        self.duration = Distribution()
        self.energy = Distribution()
        self.idle = Distribution()
        self.hours = HourOfWeek(zone)
        self.idle_sessions = 0
        self.idle_gross = ZERO
        self.refund_count = 0
        self.refund_total = ZERO
        self.failures = dict.fromkeys(FAILURE_KINDS, 0)
        self.spans = SessionSpans()

    def add(self, s: SessionFact) -> None:
        self._currency(s)
        self.count += 1
        self.energy_wh += s.energy_wh
        opened, closed = s.opened_at, s.closed_at
        if s.energy_wh > 0:
            self.with_energy += 1
            self.energy.add(float(s.energy_wh))
            self.idle.add(s.idle_s)
        self.duration.add(s.duration_s)
        for row in s.vat_rows:
            rate = self._rate(row.percent.normalize())
            rate.sessions += 1
            rate.net += row.net
            rate.vat += row.vat
            rate.gross += row.gross
        if s.no_vat_amount:
            rate = self._rate(None)
            rate.sessions += 1
            rate.net += s.no_vat_amount
            rate.gross += s.no_vat_amount
        method = self.methods.get(s.payment_method)
        if method is None:
            method = self.methods[s.payment_method] = _Method()
        method.sessions += 1
        method.energy_wh += s.energy_wh
        method.gross += s.amount_charged
        self.hours.session(opened, self.since, min(closed, self.end))
        if s.idle_fee > 0:
            self.idle_sessions += 1
            self.idle_gross += s.idle_fee
        for refund in s.refunds:
            self.refund_count += 1
            self.refund_total += refund.amount
        self._failure(s)
        self.spans.add(opened, closed)
        self.irregular.session(s)

    def _rate(self, key: Decimal | None) -> _Rate:
        rate = self.rates.get(key)
        if rate is None:
            rate = self.rates[key] = _Rate()
        return rate

    def _currency(self, s: SessionFact) -> None:
        if not s.currency:
            return
        if self.currency is None:
            self.currency = s.currency
        elif s.currency != self.currency:
            raise ReportError(f"session {s.session_id} is in {s.currency}, earlier ones in "
                              f"{self.currency}: one report covers one currency")

    def _failure(self, s: SessionFact) -> None:
        kind = STOP_FAILURES.get(s.stop_reason or "")
        if kind:
            self.failures[kind] += 1
            return
        card_declined = s.payment_status in DECLINED_PAYMENTS and s.paid_by_card
        if card_declined and s.session_id not in self.declined_taps:
            self.failures["declined_card"] += 1  # a decline no tap row recorded
            return
        if card_declined or s.session_id in self.declined_taps:
            return  # counted with its tap
        if s.energy_wh == 0:
            self.failures["aborted_start"] += 1

    def totals(self) -> dict[str, Any]:
        net = sum((r.net for r in self.rates.values()), ZERO)
        vat = sum((r.vat for r in self.rates.values()), ZERO)
        gross = sum((r.gross for r in self.rates.values()), ZERO)
        no_vat = self.rates[None].net if None in self.rates else ZERO
        return {"sessions": self.count, "sessions_with_energy": self.with_energy,
                "energy_wh": plain(self.energy_wh), "energy_kwh": kwh_text(self.energy_wh),
                "gross": money_text(gross), "net": money_text(net), "vat": money_text(vat),
                "no_vat": money_text(no_vat), "refunds": money_text(self.refund_total),
                "gross_after_refunds": money_text(gross - self.refund_total)}

    def by_vat_rate(self) -> list[dict[str, Any]]:
        keys = sorted(k for k in self.rates if k is not None)
        rows = [{"percent": plain(k), **self._rate_figures(self.rates[k])}
                for k in keys]
        if None in self.rates:
            rows.append({"percent": None, **self._rate_figures(self.rates[None])})
        return rows

    @staticmethod
    def _rate_figures(rate: _Rate) -> dict[str, Any]:
        return {"sessions": rate.sessions, "net": money_text(rate.net),
                "vat": money_text(rate.vat), "gross": money_text(rate.gross)}

    def payment_mix(self) -> list[dict[str, Any]]:
        ordered = sorted(self.methods.items(), key=lambda item: (-item[1].sessions, item[0]))
        return [{"method": name, "sessions": m.sessions,
                 "share_percent": percent(m.sessions, self.count),
                 "energy_wh": plain(m.energy_wh), "gross": money_text(m.gross)}
                for name, m in ordered]


def build_report(sessions: Iterable[SessionFact], taps: Iterable[TapFact],
                 statuses: Iterable[StatusFact], *, station_ids: list[str],
                 since: datetime, until: datetime, timezone: str, now: datetime,
                 thresholds: Thresholds) -> dict[str, Any]:
    """The report of the sessions closed in [since, until) (later ones are skipped), the
    taps and status rows of that period; the period ends at `now` if that is earlier."""
    if until <= since:
        raise ReportError(f"the period is empty: until ({utc_iso(until)}) is not after "
                          f"since ({utc_iso(since)})")
    end = min(until, max(now, since))
    irregular = Irregularities(thresholds)
    decisions = Distribution()
    declined_taps: set[str] = set()
    declined_card_taps = 0
    for tap in taps:
        if not since <= tap.at < until:
            continue
        irregular.tap(tap)
        if tap.decision_ms is not None:
            decisions.add(tap.decision_ms)
        if tap.result == "declined" and tap.kind == "card":
            declined_card_taps += 1
            if tap.session_id:
                declined_taps.add(tap.session_id)
    acc = _Sessions(station_zone(timezone), since, end, irregular, declined_taps)
    acc.hours.period(since, end)
    daily = _daily_tally(since, end, timezone)
    for session in sessions:
        if since <= session.closed_at < until:
            acc.add(session)
            daily.add(session)
    statuses = list(statuses)  # the connector's changes only: few rows, read twice
    availability = Availability(since, end)
    availability.feed(statuses, acc.spans.contains)
    failures = dict(acc.failures)
    failures["declined_card"] += declined_card_taps
    for kind, count in availability.faults_outside.items():
        failures[kind] += count
    return {
        "schema": SCHEMA,
        "station_ids": list(station_ids),
        "generated_at": utc_iso(now),
        "period": {"since": utc_iso(since), "until": utc_iso(until), "timezone": timezone},
        "currency": acc.currency or "",
        "totals": acc.totals(),
        "by_vat_rate": acc.by_vat_rate(),
        "payment_mix": acc.payment_mix(),
        "distributions": {"duration_s": acc.duration.summary(),
                          "energy_wh": acc.energy.summary(),
                          "idle_s": acc.idle.summary()},
        "utilisation_by_hour_of_week": acc.hours.rows(),
        "idle_fees": {"sessions": acc.idle_sessions, "gross": money_text(acc.idle_gross)},
        "refunds": {"count": acc.refund_count, "total": money_text(acc.refund_total)},
        "failures": [{"kind": kind, "count": failures[kind]} for kind in FAILURE_KINDS],
        "tap_to_decision_ms": decisions.summary(),
        "availability": availability.result(),
        "daily": daily.rows(statuses),
        "irregularities": irregular.result(),
    }


def _daily_tally(since: datetime, end: datetime, timezone: str) -> DailyTally:
    """The per-day figures of the period's local days (its last MAX_DAYS when longer)."""
    tz = station_zone(timezone)
    first = since.astimezone(tz).date()
    last = (max(end, since + timedelta(microseconds=1)) - timedelta(microseconds=1)
            ).astimezone(tz).date()
    days = (last - first).days + 1
    if days > MAX_DAYS:
        first, days = last - timedelta(days=MAX_DAYS - 1), MAX_DAYS
    return DailyTally(first_day=first, days=days, timezone=timezone)

