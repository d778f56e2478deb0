"""Each irregularity of the report, found and not found (the thresholds' edges)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from terminal.config import parse_config
from terminal.report.irregularities import Thresholds, short_token, thresholds_from
from tests.unit.report_helpers import T0, kinds, refund, report, session, tap

D = Decimal


def test_energy_without_capture() -> None:
    not_captured = session(1, payment_status="approved")
    no_payment = session(2, payment_status=None, payment_via=None, amount_captured=None)
    result = report([session(0), not_captured, no_payment,
                     session(3, payment_method="rfid", payment_status=None,
                             payment_via=None, amount_captured=None),  # not a card
                     session(4, energy_wh="0", gross="0.00", payment_status="voided",
                             amount_captured=None)])  # nothing delivered
    found = [i for i in result["irregularities"] if i["kind"] == "energy_without_capture"]
    assert [i["session_id"] for i in found] == ["S1", "S2"]
    assert found[0]["payment_status"] == "approved"
    assert "approved, not captured" in found[0]["detail"]
    assert "no card payment" in found[1]["detail"]


def test_capture_differs_from_receipt() -> None:
    result = report([session(0), session(1, amount_captured=D("10.00"))])
    (item,) = result["irregularities"]
    assert item["kind"] == "capture_differs_from_receipt"
    assert (item["amount_captured"], item["amount_charged"], item["difference"]) == (
        "10.00", "11.90", "-1.90")
    assert "10.00 EUR" in item["detail"] and "11.90 EUR" in item["detail"]


def test_refund_over_threshold_and_not_at_it() -> None:
    result = report([session(0, refunds=(refund("20.00"),)),
                     session(1, refunds=(refund("20.01", reason="broken plug"),))])
    (item,) = result["irregularities"]
    assert (item["kind"], item["session_id"], item["amount"]) == (
        "refund_over_threshold", "S1", "20.01")
    assert "broken plug" in item["detail"]
    assert kinds(report([session(1, refunds=(refund("20.01"),))],
                        thresholds=Thresholds(refund_threshold=D("50")))) == []


def test_meter_counter_jump_and_backwards() -> None:
    sessions = [session(0, meter_start_wh=D(1000), meter_stop_wh=D(21000)),
                session(1, meter_start_wh=D(21050), meter_stop_wh=D(41050)),  # +50: fine
                session(2, meter_start_wh=D(41200), meter_stop_wh=D(61200)),  # +150
                session(3, meter_start_wh=D(61000), meter_stop_wh=D(81000)),  # backwards
                session(4, meter_serial="M2", meter_start_wh=D(5), meter_stop_wh=D(9))]
    found = report(sessions)["irregularities"]
    assert [(i["kind"], i["session_id"], i["jump_wh"]) for i in found] == [
        ("meter_counter_jump", "S2", "150"), ("meter_counter_jump", "S3", "-200")]
    assert found[0]["previous_session_id"] == "S1"
    assert "ran backwards" in found[1]["detail"]


def test_long_idle() -> None:
    long = session(1, minutes=75, stopped_at=T0 + timedelta(hours=1, minutes=5))  # 70 min
    short = session(2, minutes=65, stopped_at=T0 + timedelta(hours=2, minutes=5))  # 60 min
    found = report([long, short])["irregularities"]
    assert [(i["kind"], i["session_id"], i["idle_s"]) for i in found] == [
        ("long_idle", "S1", 4200.0)]


def test_repeated_declines_of_one_token_within_the_window() -> None:
    token = "k1.abcdef0123456789"
    burst = [tap(T0 + timedelta(minutes=m), result="declined", token=token,
                 reason="card_declined") for m in (0, 4, 9)]
    spread = [tap(T0 + timedelta(hours=1, minutes=m), result="declined", token="other-1")
              for m in (0, 6, 12)]  # three, but never three within 10 minutes
    result = report([], burst + spread + [tap(T0, token=token)])
    (item,) = result["irregularities"]
    assert (item["kind"], item["declines"], item["token"]) == (
        "repeated_declines", 3, "k1.abc…")
    assert token not in str(result)  # never the token in full
    assert short_token(token) == "k1.abc…"


def test_thresholds_come_from_the_report_section() -> None:
    config = parse_config({"station": {"id": "ST1", "operator": "Op"},
                           "report": {"refund_threshold": "35.00", "long_idle_s": 1800,
                                      "decline_repeats": 5, "decline_window_s": 300,
                                      "meter_jump_wh": 10}})
    assert thresholds_from(config.report) == Thresholds(D("35.00"), 1800.0, 5, 300.0, D(10))
    default = parse_config({"station": {"id": "ST1", "operator": "Op"}})
    assert thresholds_from(default.report) == Thresholds()
