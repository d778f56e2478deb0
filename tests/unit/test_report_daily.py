"""terminal.report.daily: one row per local day (DST days of 23 and 25 hours, empty days
as zeros), sessions on the day they closed, faults of sessions and of status rows no
session explains, and totals that are the sums of the rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from terminal.report.daily import FAULT_STOPS, daily_rows, ended_by_fault, totals
from terminal.report.facts import ReportError, SessionFact, StatusFact
from terminal.session.model import StopReason

BERLIN = "Europe/Berlin"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fact(closed: str, energy_wh: str = "10000", gross: str = "5.90", *,
         stop_reason: str | None = "Local", phase: str = "Completed",
         duration_s: float = 1800, **changes: Any) -> SessionFact:
    closed_at = utc(closed)
    opened_at = closed_at - timedelta(seconds=duration_s)
    values: dict[str, Any] = dict(
        station_id="DE*EVT*E0001", session_id=f"s-{closed}", opened_at=opened_at,
        started_at=opened_at + timedelta(seconds=30), stopped_at=closed_at,
        closed_at=closed_at, source="rfid", payment_method="rfid", id_token="T1",
        stop_reason=stop_reason, final_phase=phase, meter_serial="M1",
        meter_start_wh=Decimal(0), meter_stop_wh=Decimal(energy_wh),
        energy_wh=Decimal(energy_wh), currency="EUR", receipt_present=True,
        amount_charged=Decimal(gross), net_amount=Decimal(gross), no_vat_amount=Decimal(0),
        vat_rows=(), idle_fee=Decimal(0), payment_status=None, payment_via=None,
        card_scheme=None, amount_approved=None, amount_captured=None, refunds=())
    values.update(changes)
    return SessionFact(**values)


def status(at: str, value: str, cause: str = "") -> StatusFact:
    return StatusFact(utc(at), value, cause)


def by_date(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["date"]: row for row in rows}


def test_every_day_is_present_and_empty_days_are_zeros():
    rows = daily_rows([], [], first_day=date(2026, 11, 4), days=30, timezone=BERLIN)
    assert [row["date"] for row in rows][:2] == ["2026-11-04", "2026-11-05"]
    assert rows[-1]["date"] == "2026-12-03" and len(rows) == 30
    assert {(r["sessions"], r["energy_wh"], r["gross"], r["faults"]) for r in rows} == {
        (0, "0", "0.00", 0)}
    assert totals(rows) == {"sessions": 0, "energy_wh": "0", "gross": "0.00", "faults": 0}


def test_a_session_counts_on_the_local_day_it_closed_across_the_autumn_dst_change():
    # 2026-10-25 in Berlin has 25 hours: 2026-10-24T22:00Z .. 2026-10-25T23:00Z
    sessions = [fact("2026-10-24T21:59:00", "1000", "0.59"),   # 23:59 CEST: the 24th
                fact("2026-10-24T22:00:00", "2000", "1.18"),   # 00:00 CEST: the 25th
                fact("2026-10-25T22:59:00", "3000", "1.77"),   # 23:59 CET: the 25th
                fact("2026-10-25T23:00:00", "4000", "2.36"),   # 00:00 CET: the 26th
                fact("2026-10-30T12:00:00", "9999", "9.99")]   # after the period
    rows = daily_rows(sessions, [], first_day=date(2026, 10, 24), days=3, timezone=BERLIN)
    shown = by_date(rows)
    assert (shown["2026-10-24"]["sessions"], shown["2026-10-24"]["energy_wh"]) == (1, "1000")
    assert shown["2026-10-25"] == {"date": "2026-10-25", "sessions": 2, "energy_wh": "5000",
                                   "gross": "2.95", "faults": 0}
    assert (shown["2026-10-26"]["sessions"], shown["2026-10-26"]["gross"]) == (1, "2.36")
    assert totals(rows) == {"sessions": 4, "energy_wh": "10000", "gross": "5.90", "faults": 0}


def test_the_spring_dst_day_has_23_hours():
    # 2026-03-29 in Berlin: 2026-03-28T23:00Z .. 2026-03-29T22:00Z
    sessions = [fact("2026-03-28T22:59:00"), fact("2026-03-28T23:00:00"),
                fact("2026-03-29T21:59:00"), fact("2026-03-29T22:00:00")]
    rows = daily_rows(sessions, [], first_day=date(2026, 3, 28), days=3, timezone=BERLIN)
    assert [row["sessions"] for row in rows] == [1, 2, 1]
    utc_rows = daily_rows(sessions, [], first_day=date(2026, 3, 28), days=3, timezone="UTC")
    assert [row["sessions"] for row in utc_rows] == [2, 2, 0]


def test_faults_are_fault_ended_sessions_and_faulted_statuses_no_session_explains():
    faulted_session = fact("2026-12-01T10:30:00", stop_reason="MeterFault", duration_s=3600)
    power_loss = fact("2026-12-02T08:00:00", stop_reason="PowerLoss")
    phase_faulted = fact("2026-12-02T09:00:00", stop_reason=None, phase="Faulted")
    statuses = [
        status("2026-12-01T09:30:00", "Occupied", "started"),
        status("2026-12-01T10:30:20", "Faulted", "meter_fault"),  # the session's own
        status("2026-12-01T11:00:00", "Available", "repaired"),
        status("2026-12-02T03:00:00", "Faulted", "charger_fault"),  # outside any session
        status("2026-12-02T03:05:00", "Faulted", "charger_fault"),  # still the same fault
        status("2026-12-02T04:00:00", "Available", "repaired"),
        status("2026-12-02T23:30:00", "Faulted", "power_loss"),  # the 3rd, local time
    ]
    rows = daily_rows([faulted_session, power_loss, phase_faulted], statuses,
                      first_day=date(2026, 12, 1), days=3, timezone=BERLIN)
    assert [row["faults"] for row in rows] == [1, 3, 1]
    assert totals(rows)["faults"] == 5
    assert [row["sessions"] for row in rows] == [1, 2, 0]


def test_the_fault_stop_reasons_are_the_session_machines():
    expected = {StopReason.METER_FAULT, StopReason.CHARGER_FAULT, StopReason.POWER_LOSS}
    assert expected == FAULT_STOPS
    assert not ended_by_fault(fact("2026-12-01T10:00:00", stop_reason="Technician"))
    assert ended_by_fault(fact("2026-12-01T10:00:00", stop_reason="ChargerFault"))


def test_money_and_energy_stay_decimal_strings_summed_exactly():
    sessions = [fact("2026-12-01T10:00:00", "0.1", "0.10"),
                fact("2026-12-01T11:00:00", "0.2", "0.20")]
    [row] = daily_rows(sessions, [], first_day=date(2026, 12, 1), days=1, timezone="UTC")
    assert (row["energy_wh"], row["gross"]) == ("0.3", "0.30")


@pytest.mark.parametrize(("days", "timezone", "message"), [
    (0, "UTC", r"^days: expected 1 to 3660, got 0$"),
    (True, "UTC", r"^days: "),
    (30, "Mars/Olympus", r"^timezone: 'Mars/Olympus' is not an IANA time zone$"),
])
def test_bad_arguments_are_named(days, timezone, message):
    with pytest.raises(ReportError, match=message):
        daily_rows([], [], first_day=date(2026, 12, 1), days=days, timezone=timezone)
