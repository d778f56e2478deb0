"""Availability of the charge point (AFIR) from its status rows, and the faults they show.

Provides `Availability`: fed the connector's status rows oldest first (each status holds
from its `at` until the next row), it measures the time in Faulted or Unavailable inside
the period, lists each outage (from, to, status, cause; an outage still going on at the
period's end ends there) and counts the entries into Faulted that happened outside every
session (a fault during a session is the session's stop reason: counted once, there),
and the power losses outside sessions (Unavailable with the cause `power_loss`).
Before the first row the connector counts as Available (the journal starts with it). A
row at the period's very start is the status in force then (the journal's and the
bundle's first row): its outage counts, but it is no new fault of the period.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from datetime import datetime
from typing import Any

from terminal.report.facts import StatusFact, utc_iso
from terminal.report.stats import percent

OUTAGE_STATUSES = ("Faulted", "Unavailable")


class Availability:
    def __init__(self, since: datetime, end: datetime) -> None:
        self.since = since
        self.end = end
        self.outages: list[dict[str, Any]] = []
        self.unavailable_s = 0.0
        self.faults_outside: dict[str, int] = {"meter_fault": 0, "charger_fault": 0,
                                               "power_loss": 0}
        self._current: StatusFact | None = None

    def feed(self, rows: Any, in_session: Callable[[datetime], bool]) -> None:
        """All status rows, oldest first; `in_session(at)`: whether a session was open."""
        for row in rows:
            self._row(row, in_session)
        self._close(self.end)

    def _row(self, row: StatusFact, in_session: Callable[[datetime], bool]) -> None:
        previous = self._current
        if row.at >= self.end:
            return
        if row.status == "Faulted" and (previous is None or previous.status != "Faulted") \
                and row.at > self.since and not in_session(row.at):
            kind = "meter_fault" if "meter" in row.cause.lower() else "charger_fault"
            self.faults_outside[kind] += 1
        if row.status == "Unavailable" and row.cause == "power_loss" \
                and row.at > self.since and not in_session(row.at):
            self.faults_outside["power_loss"] += 1
        if previous is not None and previous.status == row.status:
            return  # the same status again: the outage (or not) goes on
        self._close(row.at)
        self._current = row

    def _close(self, until: datetime) -> None:
        """Ends the current status at `until`, counting its part inside the period."""
        row = self._current
        if row is None or row.status not in OUTAGE_STATUSES:
            return
        start = max(row.at, self.since)
        stop = min(until, self.end)
        if stop <= start:
            return
        self.unavailable_s += (stop - start).total_seconds()
        self.outages.append({"from": utc_iso(start), "to": utc_iso(stop), "status": row.status,
                             "cause": row.cause,
                             "duration_s": round((stop - start).total_seconds(), 1)})

    def result(self) -> dict[str, Any]:
        period_s = max(0.0, (self.end - self.since).total_seconds())
        unavailable_s = round(self.unavailable_s, 1)
        available_s = round(period_s - unavailable_s, 1)
        return {"period_s": round(period_s, 1), "available_s": available_s,
                "unavailable_s": unavailable_s, "percent": percent(available_s, period_s),
                "outages": self.outages}


class SessionSpans:
    """The open..close spans of the sessions (compact), to ask whether one was open."""

    def __init__(self) -> None:
        self.opened = array("d")
        self.closed = array("d")
        self._ordered = True

    def add(self, opened: datetime, closed: datetime) -> None:
        moment = closed.timestamp()
        if self.closed and moment < self.closed[-1]:
            self._ordered = False
        self.opened.append(opened.timestamp())
        self.closed.append(moment)

    def contains(self, at: datetime) -> bool:
        if not self._ordered:  # sessions of a bundle may come in another order
            pairs = sorted(zip(self.closed, self.opened, strict=True))
            self.closed = array("d", (c for c, _ in pairs))
            self.opened = array("d", (o for _, o in pairs))
            self._ordered = True
        moment = at.timestamp()
        i = bisect_left(self.closed, moment)
        return i < len(self.closed) and self.opened[i] <= moment

