"""A long gap between samples costs per change of the active tariff elements, not per
day: a restriction boundary that changes nothing does not cut the interval (and the
price stays exact: the same as with a sample at every boundary)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from terminal.pricing import Sample, SessionInput, engine, parse_tariff, price_session

START = datetime(2025, 3, 7, 9, 0, tzinfo=UTC)
ALWAYS = {  # a restriction that holds on every day: local midnight is a boundary, nothing changes
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.40"), "step_size": 1},
                              {"type": "PARKING_TIME", "price": Decimal("1.20"),
                               "step_size": 60}],
         "restrictions": {"start_date": "2020-01-01",
                          "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
                                          "FRIDAY", "SATURDAY", "SUNDAY"]}},
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.90"), "step_size": 1}]},
    ],
}


def _session(days: int, every_day: bool = False) -> SessionInput:
    """Parked, 1 kWh a day for `days` days: two samples, or one more each day."""
    stop = START + timedelta(days=days)
    samples = [Sample.of(START, 0, 0)]
    if every_day:  # the same energy curve, sampled every day too
        samples += [Sample.of(START + timedelta(days=d), 1000 * d, 0) for d in range(1, days)]
    samples.append(Sample.of(stop, 1000 * days, 0))
    return SessionInput(START, stop, tuple(samples))


def _count_pieces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    bill = engine._Meter._bill

    def counting(self: Any, *args: Any) -> None:
        calls[0] += 1
        bill(self, *args)

    monkeypatch.setattr(engine._Meter, "_bill", counting)
    return calls


def test_a_30_day_gap_is_one_piece_when_no_boundary_changes_the_tariff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tariff = parse_tariff(ALWAYS)
    calls = _count_pieces(monkeypatch)
    result = price_session(tariff, _session(30), "Europe/Berlin")
    assert calls[0] == 1  # was one piece per boundary (32: each local midnight, a DST jump)
    assert len(result.periods) == 1
    assert result.total.excl_vat == Decimal("12.00") + Decimal("864.00")  # 30 kWh + 720 h


def test_the_gap_prices_as_if_sampled_at_every_boundary() -> None:
    tariff = parse_tariff({**ALWAYS, "elements": [
        {**ALWAYS["elements"][0], "restrictions": {"start_time": "08:00", "end_time": "20:00"}},
        ALWAYS["elements"][1]]})
    sparse = price_session(tariff, _session(30), "Europe/Berlin")
    dense = price_session(tariff, _session(30, every_day=True), "Europe/Berlin")
    assert sparse.total == dense.total
    assert sparse.lines == dense.lines


NEW_PRICE_FROM = {  # dates only: from 2025-03-20 (local) energy costs 0.50 instead of 0.40
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.50"), "step_size": 1}],
         "restrictions": {"start_date": "2025-03-20"}},
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.40"), "step_size": 1}]},
    ],
}


def _probes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from terminal.pricing import calendar

    calls = [0]
    offset = calendar._offset

    def counting(*args: Any) -> Any:
        calls[0] += 1
        return offset(*args)

    monkeypatch.setattr(calendar, "_offset", counting)
    return calls


@pytest.mark.parametrize("days", [30, 3650])
def test_date_restrictions_cost_nothing_per_day_of_a_gap(
    monkeypatch: pytest.MonkeyPatch, days: int
) -> None:
    probes = _probes(monkeypatch)
    result = price_session(parse_tariff(NEW_PRICE_FROM), _session(days), "Europe/Berlin")
    assert probes[0] < 100  # the hours around one date, whatever the gap (was 25 a day)
    assert len(result.periods) == 2


def test_a_date_boundary_in_a_gap_prices_as_if_sampled_every_day() -> None:
    tariff = parse_tariff(NEW_PRICE_FROM)
    sparse = price_session(tariff, _session(30), "Europe/Berlin")
    dense = price_session(tariff, _session(30, every_day=True), "Europe/Berlin")
    assert sparse.total == dense.total and sparse.lines == dense.lines
    # 2025-03-07 10:00 -> 2025-03-20 00:00 Berlin at 0.40, the rest at 0.50 (1 kWh a day)
    assert sparse.periods[1].start == datetime(2025, 3, 19, 23, 0, tzinfo=UTC)
