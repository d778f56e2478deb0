"""Benchmark of the tariff engine; prints one JSON object to stdout.

A 24-hour session with one sample per second (86,400 samples) on a 6-element
tariff (time of day, weekday, power, kWh, duration restrictions), in Europe/Berlin.
Targets: batch pricing under 1 s; incremental add_sample under 50 µs median.
Also: a session of two samples 1 and 30 days apart (a long gap): its time grows with
the periods it reports (changes of the active tariff elements), not with the days;
with date restrictions only, a gap of 365 days costs what a gap of 1 day does.

    .venv/bin/python bench/bench_pricing.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from terminal.pricing import (
    RunningPricer,
    Sample,
    SessionInput,
    Tariff,
    parse_tariff,
    price_session,
)

TARGET_BATCH_S = 1.0
TARGET_INCREMENTAL_MEDIAN_US = 50.0
SESSION_S = 24 * 3600
ZONE = "Europe/Berlin"

TARIFF = {
    "currency": "EUR",
    "min_price": {"excl_vat": 1.0, "incl_vat": 1.19},
    "max_price": {"excl_vat": 400.0, "incl_vat": 476.0},
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.6639, "vat": 19, "step_size": 1}],
            "restrictions": {
                "start_time": "18:00",
                "end_time": "22:00",
                "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
            },
        },
        {
            "price_components": [{"type": "ENERGY", "price": 0.4118, "vat": 19, "step_size": 1}],
            "restrictions": {"max_power": 50},
        },
        {
            "price_components": [{"type": "TIME", "price": 1.2, "vat": 19, "step_size": 60}],
            "restrictions": {"min_kwh": 40, "min_current": 100},
        },
        {
            "price_components": [
                {"type": "PARKING_TIME", "price": 5.042, "vat": 19, "step_size": 60}
            ],
            "restrictions": {"min_duration": 14400, "start_time": "07:00", "end_time": "23:00"},
        },
        {
            "price_components": [{"type": "ENERGY", "price": 0.7479, "vat": 19, "step_size": 100}],
            "restrictions": {"max_kwh": 10},
        },
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.4958, "vat": 19, "step_size": 1},
                {"type": "FLAT", "price": 0.84, "vat": 19, "step_size": 0},
            ]
        },
    ],
}


def build_session() -> SessionInput:
    """24 h from 10:00 local: charging 8 h around 50 kW (crossing the power step), then idle."""
    start = datetime(2025, 3, 7, 9, 0, tzinfo=UTC)  # Friday, 10:00 in Berlin
    samples = []
    energy_dwh = 0  # deci-watt-hours, exact
    for second in range(SESSION_S):
        if second < 8 * 3600:
            power_w = 45_000 + (second % 600) * 20  # 45..57 kW saw tooth
            current_a = power_w // 400
        else:
            power_w, current_a = 0, 0
        samples.append(
            Sample(
                start + timedelta(seconds=second),
                Decimal(energy_dwh).scaleb(-1),
                Decimal(power_w),
                Decimal(current_a),
            )
        )
        energy_dwh += power_w * 10 // 3600
    return SessionInput(start, samples[-1].t + timedelta(seconds=1), tuple(samples))


DATES_TARIFF = {  # a new price from a date on: no boundary but that date's midnight
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.59, "vat": 19, "step_size": 1}],
            "restrictions": {"start_date": "2025-03-20"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.49, "vat": 19, "step_size": 1}]},
    ],
}


def gap_session(days: int) -> SessionInput:
    """Two samples `days` apart (charging 30 kWh, then parked): a long gap between samples."""
    start = datetime(2025, 3, 7, 9, 0, tzinfo=UTC)
    stop = start + timedelta(days=days)
    samples = (
        Sample(start, Decimal(0), Decimal(50_000), Decimal(120)),
        Sample(stop, Decimal(30_000), Decimal(0), Decimal(0)),
    )
    return SessionInput(start, stop, samples)


def time_gap(tariff: Tariff, days: int, repeat: int) -> tuple[float, int]:
    """Best time (s) to price a session with a gap of `days`, and its number of periods."""
    session = gap_session(days)
    runs = []
    periods = 0
    for _ in range(max(repeat, 3)):
        began = time.perf_counter()
        result = price_session(tariff, session, ZONE)
        runs.append(time.perf_counter() - began)
        periods = len(result.periods)
    return min(runs), periods


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="batch runs; the best counts")
    args = parser.parse_args()
    tariff = parse_tariff(TARIFF)
    session = build_session()

    batch_runs = []
    result = None
    for _ in range(args.repeat):
        began = time.perf_counter()
        result = price_session(tariff, session, ZONE)
        batch_runs.append(time.perf_counter() - began)
    assert result is not None

    pricer = RunningPricer(tariff, ZONE, session.charging_threshold_w)
    add_ns = []
    clock = time.perf_counter_ns
    for sample in session.samples:
        began = clock()
        pricer.add_sample(sample)
        add_ns.append(clock() - began)
    cost_ns = []
    for _ in range(1000):
        began = clock()
        pricer.cost_so_far()
        cost_ns.append(clock() - began)
    incremental = pricer.result(session.stop)
    assert incremental == result, "incremental and batch results differ"

    gap_1d_s, gap_1d_periods = time_gap(tariff, 1, args.repeat)
    gap_30d_s, gap_30d_periods = time_gap(tariff, 30, args.repeat)
    dates_tariff = parse_tariff(DATES_TARIFF)
    dates_1d_s, _ = time_gap(dates_tariff, 1, args.repeat)
    dates_365d_s, _ = time_gap(dates_tariff, 365, args.repeat)

    add_us = sorted(ns / 1000 for ns in add_ns)
    batch_s = min(batch_runs)
    median_us = statistics.median(add_us)
    report = {
        "samples": len(session.samples),
        "tariff_elements": len(tariff.elements),
        "batch_price_best_s": round(batch_s, 4),
        "batch_price_runs_s": [round(s, 4) for s in batch_runs],
        "batch_target_s": TARGET_BATCH_S,
        "batch_pass": batch_s < TARGET_BATCH_S,
        "batch_per_sample_us": round(batch_s / len(session.samples) * 1e6, 2),
        "incremental_add_sample_median_us": round(median_us, 2),
        "incremental_add_sample_p99_us": round(add_us[int(len(add_us) * 0.99)], 2),
        "incremental_add_sample_max_us": round(add_us[-1], 2),
        "incremental_target_median_us": TARGET_INCREMENTAL_MEDIAN_US,
        "incremental_pass": median_us < TARGET_INCREMENTAL_MEDIAN_US,
        "cost_so_far_median_us": round(statistics.median(cost_ns) / 1000, 2),
        "incremental_equals_batch": incremental == result,
        "periods": len(result.periods),
        "gap_1_day_price_s": round(gap_1d_s, 5),
        "gap_1_day_periods": gap_1d_periods,
        "gap_30_days_price_s": round(gap_30d_s, 5),
        "gap_30_days_periods": gap_30d_periods,
        "gap_30_days_us_per_period": round(gap_30d_s / gap_30d_periods * 1e6, 1),
        "dates_only_gap_1_day_price_s": round(dates_1d_s, 5),
        "dates_only_gap_365_days_price_s": round(dates_365d_s, 5),
        "total_excl_vat_eur": str(result.total.excl_vat),
        "total_incl_vat_eur": str(result.total.incl_vat),
        "python": platform.python_version(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
