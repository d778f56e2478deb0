"""Report dicts in the schema "evterm.report/1" (docs/reports.md) for the renderers' tests:
`make_report()` is a month of a busy station with realistic, mutually consistent figures
(totals = sum of the days, net + VAT = gross, shares = count / total), `empty_report()`
a period without sessions. Built here so the renderers' tests do not depend on the
report builder."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
STATION = "DE*EVT*E0001"


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def _percent(part: Decimal | int, whole: Decimal | int) -> str:
    if not whole:
        return "0.0"
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP))


def _utilisation(rng: random.Random, weeks: Decimal) -> list[dict[str, Any]]:
    rows = []
    for weekday in range(7):
        for hour in range(24):
            busy = 0.0 if hour < 6 else (0.85 if 11 <= hour <= 14 and weekday < 5 else 0.35)
            busy = busy * (0.6 if weekday >= 5 else 1.0) * rng.uniform(0.7, 1.15)
            busy = min(busy, 1.0)
            slot_s = round(3600 * float(weeks), 1)
            occupied_s = round(busy * slot_s, 1)
            rows.append({
                "weekday": weekday, "hour": hour,
                "sessions_started": int(busy * 4 * float(weeks)),
                "occupied_s": occupied_s, "slot_s": slot_s,
                "occupancy_percent": _percent(Decimal(str(occupied_s)), Decimal(str(slot_s))),
            })
    return rows


def make_report(days: int = 30, seed: int = 20) -> dict[str, Any]:
    """A station's month: 30 days of sessions, card and RFID, faults, an outage."""
    rng = random.Random(seed)
    start = date(2026, 11, 1)
    since = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # midnight in Berlin (CET)
    until = since + timedelta(days=days)
    daily, gross_total, energy_total, sessions_total = [], Decimal(0), Decimal(0), 0
    faults_total = 0
    for offset in range(days):
        sessions = rng.randint(4, 18)
        energy_wh = Decimal(sum(rng.randint(9_000, 48_000) for _ in range(sessions)))
        gross = (energy_wh / 1000 * Decimal("0.59")).quantize(CENT, ROUND_HALF_UP)
        faults = rng.choice((0, 0, 0, 1, 2))
        daily.append({"date": (start + timedelta(days=offset)).isoformat(),
                      "sessions": sessions, "energy_wh": str(energy_wh),
                      "gross": str(gross), "faults": faults})
        gross_total += gross
        energy_total += energy_wh
        sessions_total += sessions
        faults_total += faults
    net = (gross_total / Decimal("1.19")).quantize(CENT, ROUND_HALF_UP)
    vat = gross_total - net
    card = sessions_total * 3 // 5
    rfid = sessions_total - card
    card_gross = (gross_total * card / sessions_total).quantize(CENT, ROUND_HALF_UP)
    card_wh = (energy_total * card / sessions_total).quantize(Decimal(1))
    refunds = Decimal("12.40")
    return {
        "schema": "evterm.report/1",
        "station_ids": [STATION],
        "generated_at": (until + timedelta(hours=2)).isoformat(),
        "period": {"since": since.isoformat(), "until": until.isoformat(),
                   "timezone": "Europe/Berlin"},
        "currency": "EUR",
        "totals": {"sessions": sessions_total, "sessions_with_energy": sessions_total - 2,
                   "energy_wh": str(energy_total), "energy_kwh": str(energy_total / 1000),
                   "gross": str(gross_total), "net": str(net), "vat": str(vat),
                   "no_vat": "0.00", "refunds": str(refunds),
                   "gross_after_refunds": str(gross_total - refunds)},
        "by_vat_rate": [{"percent": "19", "sessions": sessions_total, "net": str(net),
                         "vat": str(vat), "gross": str(gross_total)}],
        "payment_mix": [
            {"method": "card", "sessions": card, "share_percent": _percent(card,
                                                                           sessions_total),
             "energy_wh": str(card_wh), "gross": str(card_gross)},
            {"method": "rfid", "sessions": rfid, "share_percent": _percent(rfid,
                                                                           sessions_total),
             "energy_wh": str(energy_total - card_wh), "gross": str(gross_total - card_gross)},
        ],
        "distributions": {
            "duration_s": {"count": sessions_total, "mean": 2712.4, "p50": 2460.0,
                           "p90": 4380.0, "p95": 5120.5, "max": 9011.0},
            "energy_wh": {"count": sessions_total, "mean": 28411.2, "p50": 27002.0,
                          "p90": 44120.0, "p95": 46010.0, "max": 47990.0},
            "idle_s": {"count": sessions_total, "mean": 311.0, "p50": 120.0, "p90": 780.0,
                       "p95": 1500.0, "max": 5400.0},
        },
        "utilisation_by_hour_of_week": _utilisation(rng, Decimal(days) / 7),
        "idle_fees": {"sessions": 3, "gross": "7.50"},
        "refunds": {"count": 2, "total": str(refunds)},
        "failures": [{"kind": "meter_fault", "count": 2}, {"kind": "declined_card", "count": 9},
                     {"kind": "charger_fault", "count": faults_total},
                     {"kind": "power_loss", "count": 1},
                     {"kind": "aborted_start", "count": 4}],
        "tap_to_decision_ms": {"count": sessions_total + 9, "mean": 1840.2, "p50": 1620.0,
                               "p90": 3100.0, "p95": 3900.0, "max": 7412.0},
        "availability": {
            "period_s": days * 86400, "available_s": days * 86400 - 5400,
            "unavailable_s": 5400,
            "percent": _percent(days * 86400 - 5400, days * 86400),
            "outages": [{"from": "2026-11-12T09:00:00+00:00", "to": "2026-11-12T10:30:00+00:00",
                         "status": "Faulted", "cause": "charger: isolation fault",
                         "duration_s": 5400.0}],
        },
        "daily": daily,
        "irregularities": [
            {"kind": "energy_without_capture", "at": "2026-11-04T17:20:00+00:00",
             "session_id": "s-0412", "energy_wh": "18250",
             "detail": "Session s-0412 delivered 18.250 kWh but no payment was captured."},
            {"kind": "repeated_declines", "at": "2026-11-20T07:55:00+00:00",
             "session_id": None, "token": "tok-9f3a", "declines": 4,
             "last_at": "2026-11-20T08:04:00+00:00",
             "detail": "Token tok-9f3a was declined 4 times within 10 minutes."},
            {"kind": "meter_counter_jump", "at": "2026-11-25T12:01:00+00:00",
             "session_id": "s-0630", "jump_wh": "250000",
             "detail": "The meter's counter jumped by 250 kWh between two readings."},
        ],
    }


def empty_report() -> dict[str, Any]:
    """A week without a single session, tap or outage."""
    since = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    until = since + timedelta(days=7)
    zero_dist = {"count": 0, "mean": None, "p50": None, "p90": None, "p95": None,
                 "max": None}
    return {
        "schema": "evterm.report/1", "station_ids": [STATION],
        "generated_at": until.isoformat(),
        "period": {"since": since.isoformat(), "until": until.isoformat(),
                   "timezone": "Europe/Berlin"},
        "currency": "EUR",
        "totals": {"sessions": 0, "sessions_with_energy": 0, "energy_wh": "0",
                   "energy_kwh": "0.000", "gross": "0.00", "net": "0.00", "vat": "0.00",
                   "no_vat": "0.00", "refunds": "0.00", "gross_after_refunds": "0.00"},
        "by_vat_rate": [], "payment_mix": [],
        "distributions": {"duration_s": zero_dist, "energy_wh": zero_dist,
                          "idle_s": zero_dist},
        "utilisation_by_hour_of_week": [
            {"weekday": d, "hour": h, "sessions_started": 0, "occupied_s": 0.0,
             "occupancy_percent": "0.0"} for d in range(7) for h in range(24)],
        "idle_fees": {"sessions": 0, "gross": "0.00"},
        "refunds": {"count": 0, "total": "0.00"},
        "failures": [{"kind": k, "count": 0} for k in
                     ("meter_fault", "declined_card", "charger_fault", "aborted_start")],
        "tap_to_decision_ms": {"count": 0, "mean": None, "p50": None, "p95": None,
                               "max": None},
        "availability": {"period_s": 7 * 86400, "available_s": 7 * 86400,
                         "unavailable_s": 0, "percent": "100.0", "outages": []},
        "daily": [{"date": (date(2026, 12, 1) + timedelta(days=i)).isoformat(), "sessions": 0,
                   "energy_wh": "0", "gross": "0.00", "faults": 0} for i in range(7)],
        "irregularities": [],
    }
