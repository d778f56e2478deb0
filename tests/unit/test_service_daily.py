"""The service op `service_report_daily` in process (terminal.service.daily): a live
token is needed; the last 30 local days, today last, each session of the journal on
the day it closed with its receipt's energy and gross; the currency; an older journal
without the status table reads no status rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from terminal.localapi import RequestError
from terminal.report.daily import totals
from terminal.service.daily import DAYS
from tests.unit.test_service import IDLE_S, Ctx, charging, pin_hash, run  # noqa: F401


def test_the_last_30_days_hold_the_session_just_charged(tmp_path, pin_hash):  # noqa: F811
    async def body(ctx: Ctx) -> None:
        with pytest.raises(RequestError, match=r"^token: .*log in first"):
            await ctx.op("service_report_daily", token="not-a-token")
        token = await ctx.login()
        empty = await ctx.op("service_report_daily", token=token)
        assert (empty["days"], len(empty["rows"]), empty["currency"]) == (DAYS, DAYS, "EUR")
        assert totals(empty["rows"]) == {"sessions": 0, "energy_wh": "0", "gross": "0.00",
                                         "faults": 0}
        session_id = await charging(ctx)
        await ctx.poll(8, step_s=20)
        await ctx.action(token, "stop_session")
        await ctx.poll(2)
        ctx.car.plugged = False
        await ctx.poll(2)
        receipt = (await ctx.op("service_receipt", token=token, session_id=session_id,
                                language="en"))["receipt"]
        reply = await ctx.op("service_report_daily", token=token)
        rows = reply["rows"]
        # FakeClock: 2026-11-21 ~10:00 UTC, 11:00 in Berlin
        assert (reply["timezone"], reply["first_day"]) == ("Europe/Berlin", "2026-10-23")
        assert rows[-1]["date"] == "2026-11-21" and rows[0]["date"] == "2026-10-23"
        assert [row["sessions"] for row in rows] == [0] * (DAYS - 1) + [1]
        today = rows[-1]
        assert Decimal(today["energy_wh"]) == Decimal(receipt["energy_wh"]) > 0
        assert Decimal(today["gross"]) == Decimal(receipt["amount_charged"]) > 0
        assert today["faults"] == 0
        assert ctx.audit_kinds().count("service_report_daily") == 2
        ctx.clock.advance(IDLE_S)
        with pytest.raises(RequestError, match=r"^token: "):
            await ctx.op("service_report_daily", token=token)

    run(tmp_path, pin_hash, body, station={"timezone": "Europe/Berlin"})
