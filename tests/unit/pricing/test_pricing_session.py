"""Session input validation and the incremental pricer's API."""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from terminal.pricing import (
    PricingInputError,
    RunningPricer,
    Sample,
    SessionInputError,
    parse_session,
    price_session,
    station_zone,
)
from tests.unit.pricing.helpers import D, at, comp, element, session, tariff

GOOD: dict[str, Any] = {
    "start": "2025-01-06T10:00:00Z",
    "stop": "2025-01-06T11:00:00Z",
    "charging_threshold_w": 50,
    "samples": [
        {"t": "2025-01-06T10:00:00Z", "energy_wh": 0, "power_w": 11000, "current_a": 16},
        {"t": "2025-01-06T10:30:00Z", "energy_wh": 5500.5, "power_w": 11000, "current_a": 16},
        {"t": "2025-01-06T10:45:00+00:00", "energy_wh": 8000, "power_w": 0},
    ],
}


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def test_good_session_parses_exactly() -> None:
    s = parse_session(GOOD)
    assert s.samples[1].energy_wh == Decimal("5500.5")
    assert s.samples[2].current_a == 0
    assert s.charging_threshold_w == 50
    assert s.stop - s.start == timedelta(hours=1)


INVALID = [
    (["samples", 0, "t"], "2025-01-06T10:00:01Z", "samples[0].t", "the session start"),
    (["samples", 2, "t"], "2025-01-06T10:20:00Z", "samples[2].t", "at or after samples[1].t"),
    (["samples", 2, "energy_wh"], 5000, "samples[2].energy_wh", ">= samples[1].energy_wh"),
    (["samples", 1, "power_w"], -1, "samples[1].power_w", ">= 0"),
    (["samples", 1, "energy_wh"], "5", "samples[1].energy_wh", "a number"),
    (["samples", 1, "t"], "2025-01-06T10:30:00", "samples[1].t", "with a UTC offset"),
    (["samples", 1, "volts"], 400, "samples[1].volts", "a known field"),
    (["stop"], "2025-01-06T10:44:00Z", "stop", "at or after the last sample"),
    (["stop"], "2025-01-06T09:00:00Z", "stop", "at or after start"),
    (["start"], "soon", "start", "ISO 8601"),
    (["samples"], [], "samples", "at least 1 item"),
    (["charging_threshold_w"], -5, "charging_threshold_w", ">= 0"),
]


@pytest.mark.parametrize(
    ("path", "value", "reported", "allowed"), INVALID, ids=[i[2] + "=" + str(i[1]) for i in INVALID]
)
def test_invalid_session_is_named(path: list[Any], value: Any, reported: str, allowed: str) -> None:
    with pytest.raises(SessionInputError) as caught:
        parse_session(_with(path, value))
    assert caught.value.path == reported
    assert allowed in caught.value.allowed
    assert str(caught.value).startswith(f"{reported}: invalid value ")


def test_missing_field_is_named() -> None:
    data = copy.deepcopy(GOOD)
    del data["samples"][1]["energy_wh"]
    with pytest.raises(SessionInputError, match=r"samples\[1\].energy_wh: .*required"):
        parse_session(data)


def test_same_timestamp_with_more_energy_is_rejected() -> None:
    data = _with(["samples", 2, "t"], "2025-01-06T10:30:00Z")
    with pytest.raises(SessionInputError, match=r"samples\[2\].energy_wh: .*same timestamp"):
        parse_session(data)


def test_bad_json_text() -> None:
    with pytest.raises(SessionInputError, match=r"<json>: .*valid JSON"):
        parse_session('{"start": ')


T = tariff(element(comp("ENERGY", "0.30"), comp("PARKING_TIME", "6.00")))
START = at("2025-01-06T10:00:00Z")


def test_pricer_names_the_sample_that_goes_back() -> None:
    pricer = RunningPricer(T, "UTC")
    pricer.add_sample(Sample.of(START, 0, 1000))
    pricer.add_sample(Sample.of(START + timedelta(seconds=10), 10, 1000))
    with pytest.raises(SessionInputError) as caught:
        pricer.add_sample(Sample.of(START + timedelta(seconds=5), 20, 1000))
    assert caught.value.path == "samples[2].t"
    assert pricer.sample_count == 2  # the bad sample was not taken


def test_pricer_rejects_naive_timestamps() -> None:
    pricer = RunningPricer(T, "UTC")
    with pytest.raises(SessionInputError, match=r"samples\[0\].t"):
        pricer.add_sample(Sample.of(START.replace(tzinfo=None), 0, 0))


def test_pricer_needs_a_sample_before_reading() -> None:
    with pytest.raises(SessionInputError, match="samples"):
        RunningPricer(T).cost_so_far()


def test_result_stop_before_last_sample() -> None:
    pricer = RunningPricer(T)
    pricer.add_sample(Sample.of(START, 0, 0))
    pricer.add_sample(Sample.of(START + timedelta(minutes=1), 0, 0))
    with pytest.raises(SessionInputError, match="stop: "):
        pricer.result(START)


def test_running_cost_and_result_as_if_stopped_now() -> None:
    pricer = RunningPricer(
        tariff(element(comp("ENERGY", "0.30", 19, 1000), comp("PARKING_TIME", "6.00")))
    )
    pricer.add_sample(Sample.of(START, 0, 7000))
    pricer.add_sample(Sample.of(START + timedelta(minutes=30), "3500", 0))
    running = pricer.cost_so_far()
    # 3.5 kWh x 0.30 = 1.05 (incl 1.2495); the step of 1000 Wh applies only at the end.
    assert (running.excl_vat, running.incl_vat) == (D("1.05"), D("1.25"))
    assert (running.energy_wh, running.duration_s, running.currency) == (D(3500), D(1800), "EUR")
    final = pricer.result(START + timedelta(minutes=40))
    # 4 kWh x 0.30 = 1.20 + 10 min parked x 6.00/h = 1.00.
    assert final.total.excl_vat == D("2.20")
    assert pricer.cost_so_far() == running  # looking ahead changed nothing


def test_price_session_equals_feeding_the_pricer() -> None:
    s = session("2025-01-06T17:00:00Z", [(0, 0, 11000), (1800, 5500, 11000), (3600, 9000, 0)], 4000)
    pricer = RunningPricer(T, "Europe/Berlin")
    for sample in s.samples:
        pricer.add_sample(sample)
    assert pricer.result(s.stop) == price_session(T, s, "Europe/Berlin")


def test_unknown_time_zone() -> None:
    with pytest.raises(PricingInputError) as caught:
        station_zone("Mars/Olympus_Mons")
    assert caught.value.path == "tz"
    assert "IANA" in caught.value.allowed


def test_sample_of_converts_through_text() -> None:
    sample = Sample.of(START, 0.1, 7.4, 16)
    assert (sample.energy_wh, sample.power_w, sample.current_a) == (D("0.1"), D("7.4"), D(16))


def test_price_if_equals_adding_the_sample_and_leaves_the_pricer_unchanged():
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from terminal.pricing import RunningPricer, Sample, load_tariff

    repo = Path(__file__).resolve().parents[3]
    tariff = load_tariff(repo / "examples/tariffs/de_dc_hpc_adhoc.json")
    t0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    pricer = RunningPricer(tariff, "Europe/Berlin", 100)
    twin = RunningPricer(tariff, "Europe/Berlin", 100)
    for i in range(5):
        sample = Sample.of(t0 + timedelta(minutes=i), 1000 + 2500 * i, 150_000)
        pricer.add_sample(sample)
        twin.add_sample(sample)
    ahead = Sample.of(t0 + timedelta(minutes=7), 1000 + 2500 * 6, 150_000)
    projected = pricer.price_if(ahead)
    assert pricer.sample_count == 5
    assert pricer.cost_so_far() == twin.cost_so_far()
    twin.add_sample(ahead)
    assert projected == twin.result()
