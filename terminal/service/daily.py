"""The service menu's last 30 days: the local-API op `service_report_daily` (the plots of
the service screen, docs/service.md, "Last 30 days").

Provides `DailyFigures(deps, logins)` with `op_report_daily(request)`: for a logged-in
technician (its `token`, as every service op), the station's last `DAYS` local days up
to today (terminal.report.daily.daily_rows, in `[station] timezone`), read from the
journal on the store's thread (the loop is not blocked while years of sessions are
scanned), and the currency; each answer is in the audit log (`service_report_daily`):

    {"days": 30, "first_day": "2026-11-04", "timezone": "Europe/Berlin",
     "currency": "EUR", "rows": [{"date", "sessions", "energy_wh", "gross", "faults"}]}

The connector's status rows come from `facts.iter_status` (faults outside sessions). The
currency is the sessions' (the receipts'), else the price list's.

On failure: a refused op raises RequestError naming the field (`token:`, `report:`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from terminal.localapi import RequestError
from terminal.report import facts
from terminal.report.daily import daily_rows, zone
from terminal.report.facts import ReportError, SessionFact
from terminal.service.login import Logins
from terminal.service.pins import mask_id
from terminal.service.port import ServiceDeps, audit

DAYS = 30


def read_daily(conn: sqlite3.Connection, station_id: str, timezone: str, today: date,
               days: int = DAYS) -> tuple[list[dict[str, Any]], str]:
    """(the rows of the `days` local days ending with `today`, the sessions' currency);
    run on the store's thread."""
    tz = zone(timezone)
    first_day = today - timedelta(days=days - 1)
    since = datetime.combine(first_day, time(), tz)
    until = datetime.combine(today + timedelta(days=1), time(), tz)
    currencies: set[str] = set()

    def sessions() -> Iterator[SessionFact]:
        for session in facts.iter_sessions(conn, station_id, since, until):
            if session.currency:
                currencies.add(session.currency)
            yield session

    rows = daily_rows(sessions(), facts.iter_status(conn, since, until),
                      first_day=first_day, days=days, timezone=timezone)
    return rows, ",".join(sorted(currencies))


class DailyFigures:
    """`service_report_daily` for the service screen's plots."""

    def __init__(self, deps: ServiceDeps, logins: Logins) -> None:
        self.deps = deps
        self.logins = logins

    async def op_report_daily(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self.logins.logged_in(request)
        config = self.deps.config
        timezone = config.station.timezone
        today = self.deps.clock.now().astimezone(zone(timezone)).date()
        store = self.deps.store
        try:
            rows, currency = await store.call(read_daily, store.store.conn, config.station.id,
                                              timezone, today)
        except (ReportError, sqlite3.Error) as exc:
            raise RequestError(f"report: the journal cannot be read ({exc})") from None
        if not currency:
            price_list = self.deps.snapshot().get("price_list") or {}
            currency = str(price_list.get("currency") or "")
        await audit(self.deps, "service_report_daily",
                    {"technician": mask_id(login.technician), "first_day": rows[0]["date"]})
        return {"days": DAYS, "first_day": rows[0]["date"], "timezone": timezone,
                "currency": currency, "rows": rows}
