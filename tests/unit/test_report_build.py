"""build_report's aggregates from hand-built facts: money per VAT rate (rows sum to the
totals, net + VAT = gross), payment mix, nearest-rank distributions, hour-of-week in
local time (DST weeks), idle fees, refunds, failures without double counting,
tap-to-decision times and availability."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from terminal.report.facts import ReportError, VatRow
from terminal.report.stats import nearest_rank, percent
from tests.unit.report_helpers import (
    T0,
    failures,
    refund,
    report,
    session,
    status,
    tap,
)

D = Decimal


def test_money_per_vat_rate_sums_to_the_totals_and_each_row_recomputes() -> None:
    mixed = session(2, gross="10.00", no_vat_amount=D("2.00"), net_amount=D("8.72"),
                    vat_rows=(VatRow(D("19"), D("6.72"), D("1.28"), D("8.00")),))
    result = report([session(0, gross="11.90"), session(1, gross="5.35", rate="7"),
                     mixed, session(3, gross="0.00", energy_wh="0")])
    rows = result["by_vat_rate"]
    assert [r["percent"] for r in rows] == ["7", "19", None]
    assert rows[1] == {"percent": "19", "sessions": 2, "net": "16.72", "vat": "3.18",
                       "gross": "19.90"}
    assert rows[2] == {"percent": None, "sessions": 1, "net": "2.00", "vat": "0.00",
                       "gross": "2.00"}
    for row in rows:
        assert D(row["net"]) + D(row["vat"]) == D(row["gross"])
    totals = result["totals"]
    for figure in ("net", "vat", "gross"):
        assert sum(D(r[figure]) for r in rows) == D(totals[figure])
    assert totals["gross"] == "27.25"  # the receipts' amounts charged
    assert totals["no_vat"] == "2.00"
    assert (totals["sessions"], totals["sessions_with_energy"]) == (4, 3)
    assert (totals["energy_wh"], totals["energy_kwh"]) == ("60000", "60.000")


def test_refunds_and_idle_fees() -> None:
    result = report([session(0, refunds=(refund("1.50"), refund("0.50"))),
                     session(1, idle_fee=D("3.00")), session(2, idle_fee=D("1.20"))])
    assert result["refunds"] == {"count": 2, "total": "2.00"}
    assert result["idle_fees"] == {"sessions": 2, "gross": "4.20"}
    totals = result["totals"]
    assert totals["refunds"] == "2.00"
    assert D(totals["gross"]) - D(totals["refunds"]) == D(totals["gross_after_refunds"])


def test_payment_mix_shares_are_count_over_total_half_up() -> None:
    sessions = [session(n, payment_method="rfid" if n else "card") for n in range(16)]
    mix = report(sessions)["payment_mix"]
    assert mix[0] == {"method": "rfid", "sessions": 15, "share_percent": "93.8",
                      "energy_wh": "300000", "gross": "178.50"}
    assert mix[1]["share_percent"] == "6.3"  # 6.25 rounded half-up, not to even


def test_percent_rounds_half_up_and_an_empty_whole_is_zero() -> None:
    assert percent(1, 16) == "6.3"
    assert percent(2, 3) == "66.7"
    assert percent(5, 0) == "0.0"


def test_distributions_are_nearest_rank_and_energy_counts_only_sessions_with_energy() -> None:
    sessions = [session(n, minutes=10 * (n + 1)) for n in range(10)]
    sessions.append(session(20, minutes=1, energy_wh="0", gross="0.00"))
    d = report(sessions)["distributions"]
    assert d["duration_s"]["count"] == 11
    assert (d["duration_s"]["p50"], d["duration_s"]["max"]) == (3000.0, 6000.0)
    assert d["energy_wh"]["count"] == 10
    assert d["idle_s"] == {"count": 10, "mean": 300.0, "p50": 300.0, "p90": 300.0,
                           "p95": 300.0, "max": 300.0}
    values = [float(v) for v in range(1, 11)]
    assert (nearest_rank(values, 50), nearest_rank(values, 90),
            nearest_rank(values, 95)) == (5.0, 9.0, 10.0)


def test_an_empty_period_gives_zero_figures_and_no_percentiles() -> None:
    result = report([])
    assert result["totals"]["gross"] == "0.00"
    assert result["by_vat_rate"] == []
    assert result["distributions"]["duration_s"]["p50"] is None
    assert result["availability"]["percent"] == "100.0"


def test_sessions_outside_the_period_are_left_out() -> None:
    late = session(0, at=T0 + timedelta(days=30))
    assert report([session(1), late])["totals"]["sessions"] == 1


def test_two_currencies_in_one_report_are_refused() -> None:
    with pytest.raises(ReportError, match="CHF"):
        report([session(0), session(1, currency="CHF")])


def _slot(result: dict, weekday: int, hour: int) -> dict:
    rows = result["utilisation_by_hour_of_week"]
    return next(r for r in rows if (r["weekday"], r["hour"]) == (weekday, hour))


def test_utilisation_by_hour_of_week_in_local_time() -> None:
    # 08:00 UTC is 09:00 in Berlin (winter); 90 minutes over two local hours
    result = report([session(0, minutes=90)], timezone="Europe/Berlin",
                    since=datetime(2026, 11, 1, 23, 0, tzinfo=UTC))
    rows = result["utilisation_by_hour_of_week"]
    assert len(rows) == 168
    assert _slot(result, 0, 9) == {"weekday": 0, "hour": 9, "sessions_started": 1,
                                   "occupied_s": 3600.0, "slot_s": 3600.0,
                                   "occupancy_percent": "100.0"}
    assert _slot(result, 0, 10)["occupied_s"] == 1800.0
    assert _slot(result, 0, 10)["occupancy_percent"] == "50.0"
    assert sum(r["occupied_s"] for r in rows) == 5400.0
    assert sum(r["slot_s"] for r in rows) == 7 * 86400


def test_a_session_within_one_hour_and_one_begun_before_the_period() -> None:
    since = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    early = session(0, at=since - timedelta(minutes=20), minutes=50)  # 30 min inside
    short = session(1, at=since + timedelta(hours=2, minutes=10), minutes=30)
    result = report([early, short], since=since, days=1)
    assert _slot(result, 0, 8)["occupied_s"] == 1800.0
    assert _slot(result, 0, 8)["sessions_started"] == 0  # opened before the period
    assert _slot(result, 0, 10) | {"slot_s": 0} == {
        "weekday": 0, "hour": 10, "sessions_started": 1, "occupied_s": 1800.0,
        "slot_s": 0, "occupancy_percent": "50.0"}


def test_hour_of_week_across_the_spring_dst_change() -> None:
    # Berlin, Sunday 29 March 2026: 02:00 CET becomes 03:00 CEST (the hour 02 is missing)
    since = datetime(2026, 3, 22, 23, 0, tzinfo=UTC)  # Monday 23 March 00:00 CET
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET
    result = report([session(0, at=start, minutes=60)], since=since, days=7 - 1 / 24,
                    timezone="Europe/Berlin")
    rows = result["utilisation_by_hour_of_week"]
    assert sum(r["slot_s"] for r in rows) == 167 * 3600  # the week has 167 hours
    assert _slot(result, 6, 2)["slot_s"] == 0.0
    assert _slot(result, 6, 2)["occupancy_percent"] == "0.0"
    assert _slot(result, 6, 1)["occupied_s"] == 1800.0  # 01:30-02:00 CET
    assert _slot(result, 6, 3)["occupied_s"] == 1800.0  # 03:00-03:30 CEST
    assert _slot(result, 6, 1)["sessions_started"] == 1


def test_hour_of_week_across_the_autumn_dst_change() -> None:
    # Berlin, Sunday 25 October 2026: 03:00 CEST becomes 02:00 CET (the hour 02 twice)
    since = datetime(2026, 10, 18, 22, 0, tzinfo=UTC)  # Monday 19 October 00:00 CEST
    result = report([], since=since, days=7 + 1 / 24, timezone="Europe/Berlin")
    assert _slot(result, 6, 2)["slot_s"] == 7200.0
    assert sum(r["slot_s"] for r in result["utilisation_by_hour_of_week"]) == 169 * 3600


def test_failures_by_kind() -> None:
    sessions = [
        session(0, stop_reason="MeterFault"),
        session(1, stop_reason="ChargerFault"),
        session(2, stop_reason="PowerLoss", energy_wh="0", gross="0.00"),
        session(3, stop_reason="Timeout", energy_wh="0", gross="0.00"),  # never drew power
        session(4, final_phase="Rejected", stop_reason=None, energy_wh="0", gross="0.00"),
        session(5),  # a normal one
    ]
    assert failures(report(sessions)) == {"meter_fault": 1, "charger_fault": 1,
                                          "power_loss": 1, "declined_card": 0,
                                          "aborted_start": 2}


def test_a_declined_card_counts_once_per_tap() -> None:
    declined = session(1, energy_wh="0", gross="0.00", final_phase="Rejected",
                       payment_status="declined", stop_reason=None)
    taps = [tap(T0, result="declined", session_id="S1", reason="card_declined"),
            tap(T0 + timedelta(hours=2), result="declined", reason="card_declined"),
            tap(T0 + timedelta(hours=3), result="declined", kind="rfid")]  # not a card
    lonely = session(2, energy_wh="0", gross="0.00", payment_status="failed",
                     stop_reason=None)  # a decline without a tap row
    result = failures(report([declined, lonely], taps))
    assert result["declined_card"] == 3  # two card taps + the payment without a tap
    assert result["aborted_start"] == 0  # the declined sessions are counted as declines


def test_a_fault_is_counted_once_when_the_status_log_shows_it_during_the_session() -> None:
    faulted = session(0, stop_reason="ChargerFault")
    statuses = [status(T0 + timedelta(minutes=20), "Faulted", "charger_fault"),
                status(T0 + timedelta(hours=1), "Available", "repaired"),
                status(T0 + timedelta(hours=5), "Faulted", "charger_fault"),  # no session
                status(T0 + timedelta(hours=5, minutes=1), "Faulted", "charger_fault"),
                status(T0 + timedelta(hours=6), "Available", "repaired"),
                status(T0 + timedelta(hours=7), "Faulted", "meter_fault"),
                status(T0 + timedelta(hours=8), "Available", "repaired"),
                status(T0 + timedelta(hours=9), "Unavailable", "power_loss"),
                status(T0 + timedelta(hours=10), "Available", "started")]
    result = failures(report([faulted], statuses=statuses))
    assert result["charger_fault"] == 2  # the session's, and the one outside it
    assert result["meter_fault"] == 1
    assert result["power_loss"] == 1


def test_tap_to_decision_ms_over_taps_with_a_time() -> None:
    taps = [tap(T0 + timedelta(minutes=n), decision_ms=float(100 * (n + 1)))
            for n in range(20)]
    taps.append(tap(T0, decision_ms=None))
    t = report([], taps)["tap_to_decision_ms"]
    assert (t["count"], t["p50"], t["p95"], t["max"]) == (20, 1000.0, 1900.0, 2000.0)
    assert t["mean"] == 1050.0


def test_availability_from_the_status_rows() -> None:
    since = T0
    statuses = [status(since - timedelta(hours=1), "Faulted", "charger_fault"),  # before
                status(since + timedelta(hours=1), "Available", "repaired"),
                status(since + timedelta(hours=4), "Unavailable", "out_of_service"),
                status(since + timedelta(hours=5), "Occupied", "started"),
                status(since + timedelta(hours=6), "Available", "stopped")]
    a = report([], statuses=statuses, since=since, days=10 / 24)["availability"]
    assert (a["period_s"], a["unavailable_s"], a["available_s"]) == (36000.0, 7200.0, 28800.0)
    assert a["percent"] == "80.0"
    assert [(o["status"], o["from"], o["to"]) for o in a["outages"]] == [
        ("Faulted", "2026-11-02T08:00:00+00:00", "2026-11-02T09:00:00+00:00"),
        ("Unavailable", "2026-11-02T12:00:00+00:00", "2026-11-02T13:00:00+00:00")]
    assert a["outages"][1]["cause"] == "out_of_service"


def test_an_outage_still_going_on_ends_with_the_period() -> None:
    statuses = [status(T0, "Faulted", "charger_fault")]
    a = report([], statuses=statuses, since=T0, days=1)["availability"]
    assert a["percent"] == "0.0"
    assert a["outages"][0]["to"] == "2026-11-03T08:00:00+00:00"


def test_the_period_must_not_be_empty() -> None:
    with pytest.raises(ReportError, match="empty"):
        report([], days=0)


def test_the_report_names_its_schema_station_and_period() -> None:
    result = report([], timezone="Europe/Berlin")
    assert result["schema"] == "evterm.report/1"
    assert result["station_ids"] == ["DE*EVT*E0001"]
    assert result["period"] == {"since": "2026-11-02T00:00:00+00:00",
                                "until": "2026-11-09T00:00:00+00:00",
                                "timezone": "Europe/Berlin"}
    assert datetime.fromisoformat(result["generated_at"]).tzinfo == UTC
