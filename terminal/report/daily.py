"""The report's figures per local day: sessions, energy, revenue and faults.

Provides `daily_rows(sessions, statuses, *, first_day, days, timezone)` (and `DailyTally`,
the same one session at a time): one row per day
of the station's local calendar from `first_day` on, `days` rows, every day present
(zeros included), in the report's "daily" shape (schema "evterm.report/1", the plots of
the service screen and the report's own "daily" both read it):

    {"date": "2026-12-01", "sessions": 3, "energy_wh": "45210", "gross": "17.80",
     "faults": 1}

- a session counts on the local day it closed, with its energy and its receipt's gross
  (`amount_charged`, before refunds);
- faults: the sessions that ended by a fault (stop reason MeterFault, ChargerFault or
  PowerLoss, or the final phase Faulted) on the day they closed, plus every status row
  entering Faulted that no such session explains (a fault outside any session: its time
  is not within FAULT_MATCH_S of a fault-ended session's open..close), on its local day.

Money and energy are Decimal, written as strings; the sum of the rows is the total the
report and the plots print beside them. On failure: ReportError naming the time zone or
the number of days that is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from terminal.report.facts import ReportError, SessionFact, StatusFact

# StopReason.METER_FAULT, CHARGER_FAULT, POWER_LOSS and Phase.FAULTED by value: the report
# reads stored facts and loads nothing of the session machine (nor, through it, drivers/)
FAULT_STOPS = frozenset({"MeterFault", "ChargerFault", "PowerLoss"})
FAULTED_PHASE = "Faulted"
FAULTED = "Faulted"  # StatusFact.status of a faulted connector (OCPP ConnectorStatus)
FAULT_MATCH_S = 60.0  # a Faulted row this close to a fault-ended session is that fault
MAX_DAYS = 3660


def ended_by_fault(session: SessionFact) -> bool:
    """The session ended by a meter, charger or power fault."""
    return session.stop_reason in FAULT_STOPS or session.final_phase == FAULTED_PHASE


def zone(timezone: str) -> ZoneInfo:
    """The IANA time zone `timezone` (ReportError naming it when unknown)."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(f"timezone: {timezone!r} is not an IANA time zone") from None


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def daily_rows(sessions: Iterable[SessionFact], statuses: Iterable[StatusFact], *,
               first_day: date, days: int, timezone: str) -> list[dict[str, Any]]:
    """`days` rows from `first_day` (local dates of `timezone`), oldest first."""
    tally = DailyTally(first_day=first_day, days=days, timezone=timezone)
    for session in sessions:
        tally.add(session)
    return tally.rows(statuses)


class DailyTally:
    """`daily_rows` one session at a time (the report's single pass over the sessions)."""

    def __init__(self, *, first_day: date, days: int, timezone: str) -> None:
        if not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= MAX_DAYS:
            raise ReportError(f"days: expected 1 to {MAX_DAYS}, got {days!r}")
        self.tz = zone(timezone)
        self.dates = [first_day + timedelta(days=offset) for offset in range(days)]
        self.counts = {day: 0 for day in self.dates}
        self.energy_wh = {day: Decimal(0) for day in self.dates}
        self.gross = {day: Decimal("0.00") for day in self.dates}
        self.faults = {day: 0 for day in self.dates}
        self.fault_spans: list[tuple[datetime, datetime]] = []

    def add(self, session: SessionFact) -> None:
        if ended_by_fault(session):
            self.fault_spans.append((session.opened_at, session.closed_at))
        day = local_day(session.closed_at, self.tz)
        if day not in self.counts:
            return
        self.counts[day] += 1
        self.energy_wh[day] += session.energy_wh
        self.gross[day] += session.amount_charged
        if ended_by_fault(session):
            self.faults[day] += 1

    def rows(self, statuses: Iterable[StatusFact]) -> list[dict[str, Any]]:
        faults = dict(self.faults)
        for at in faults_outside_sessions(statuses, self.fault_spans):
            day = local_day(at, self.tz)
            if day in faults:
                faults[day] += 1
        return [{"date": day.isoformat(), "sessions": self.counts[day],
                 "energy_wh": str(self.energy_wh[day]), "gross": str(self.gross[day]),
                 "faults": faults[day]} for day in self.dates]


def faults_outside_sessions(statuses: Iterable[StatusFact],
                            fault_spans: list[tuple[datetime, datetime]]) -> list[datetime]:
    """When the connector entered Faulted with no fault-ended session around it."""
    slack = timedelta(seconds=FAULT_MATCH_S)
    found: list[datetime] = []
    previous: str | None = None
    for status in sorted(statuses, key=lambda row: row.at):
        entering = status.status == FAULTED and previous != FAULTED
        previous = status.status
        if not entering:
            continue
        if any(opened - slack <= status.at <= closed + slack for opened, closed in fault_spans):
            continue
        found.append(status.at)
    return found


def totals(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of `daily_rows`' rows: {"sessions", "energy_wh", "gross", "faults"}."""
    sessions = faults = 0
    energy = Decimal(0)
    money = Decimal("0.00")
    for row in rows:
        sessions += int(row["sessions"])
        faults += int(row["faults"])
        energy += Decimal(row["energy_wh"])
        money += Decimal(row["gross"])
    return {"sessions": sessions, "energy_wh": str(energy), "gross": str(money),
            "faults": faults}
