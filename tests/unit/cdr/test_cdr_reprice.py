"""Every CDR built here is re-priced by the independent OCPI engine
(hw_mocks/ocpi_reference.py, written from the spec, no terminal.pricing code) and must
cost exactly what the pricing engine billed: the example tariffs and the tariffs of the
pricing rules over sessions across times of day, kWh thresholds, parking, min/max
price, step sizes and no energy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from hw_mocks.ocpi_reference import check_total, reprice
from terminal.cdr import dumps, loads
from terminal.pricing import Sample, SessionInput, parse_tariff
from terminal.pricing.model import Tariff
from tests.unit.cdr.helpers import cdr_of
from tests.unit.pricing.helpers import comp, element, tariff

D = Decimal
TARIFF_DIR = Path(__file__).resolve().parents[3] / "hw_mocks" / "tariffs"
EXAMPLES = sorted(TARIFF_DIR.glob("*.json"))

RULE_TARIFFS: dict[str, Tariff] = {
    "tod_parking_flat": tariff(
        element(comp("ENERGY", "0.30", "20"), start_time="18:00", end_time="22:00"),
        element(comp("ENERGY", "0.20", "20"), comp("FLAT", "1.00"),
                comp("PARKING_TIME", "6.00", "20", 300)),
    ),
    "kwh_threshold": tariff(
        element(comp("ENERGY", "0.25", "19", 100), max_kwh="5"),
        element(comp("ENERGY", "0.45", "19", 10), comp("TIME", "1.20", "19", 60)),
    ),
    "min_max_price": tariff(
        element(comp("ENERGY", "0.33", "21", 1), comp("FLAT", "0.50", "21")),
        min_price={"excl_vat": "2.00", "incl_vat": "2.42"},
        max_price={"excl_vat": "9.00", "incl_vat": "10.89"},
    ),
    "duration_steps": tariff(
        element(comp("TIME", "0.00", None, 1), max_duration=1800),
        element(comp("TIME", "3.00", "19", 900), comp("ENERGY", "0.40", "19", 1000)),
        element(comp("PARKING_TIME", "9.00", "19", 60), min_duration=600),
    ),
    "flat_by_time_of_day": tariff(
        element(comp("FLAT", "1.00", "19"), comp("ENERGY", "0.50", "19"), start_time="18:00",
                end_time="18:10"),
        element(comp("FLAT", "0.40", "19"), comp("TIME", "0.60", "19", 300)),
        element(comp("ENERGY", "0.35", "19", 1)),
    ),
    "weekday_dates_no_vat": tariff(
        element(comp("ENERGY", "0.19"), day_of_week=["SATURDAY", "SUNDAY"]),
        element(comp("ENERGY", "0.29"), start_date="2025-06-01", end_date="2025-07-01"),
        element(comp("ENERGY", "0.39"), comp("FLAT", "0.99")),
        currency="USD",
    ),
}

STARTS = ("2025-06-02T06:40:00", "2025-06-06T17:31:07", "2025-06-07T21:50:00",
          "2025-06-15T23:59:30", "2025-07-03T12:00:00")


def _session(start: str, kw: str, minutes: int, parking_min: int, *,
             step_s: int = 60) -> SessionInput:
    """Charging at `kw` for `minutes` with a sample every `step_s` (energy in odd Wh),
    then `parking_min` minutes not charging."""
    begin = datetime.fromisoformat(start).replace(tzinfo=UTC)
    samples = []
    energy = D("1000000.0")
    power = D(kw) * 1000
    for i in range(0, minutes * 60 // step_s + 1):
        samples.append(Sample(begin + timedelta(seconds=i * step_s), energy, power, D(0)))
        energy += power * step_s / 3600 + D("0.3")
    end = samples[-1].t
    samples[-1] = Sample(end, samples[-1].energy_wh, D(0), D(0))
    for j in range(1, parking_min + 1):
        samples.append(Sample(end + timedelta(minutes=j), samples[-1].energy_wh, D(0), D(0)))
    return SessionInput(begin, samples[-1].t + timedelta(seconds=7), tuple(samples), D(100))


SESSIONS = [
    ("short", dict(kw="11", minutes=3, parking_min=0)),
    ("crosses_5kwh", dict(kw="50", minutes=12, parking_min=2, step_s=37)),
    ("long_parking", dict(kw="22", minutes=40, parking_min=25)),
    ("fast_big", dict(kw="150", minutes=20, parking_min=1, step_s=13)),
]


def _tariffs() -> list[tuple[str, Tariff]]:
    found = [(path.stem, parse_tariff(json.loads(path.read_text()))) for path in EXAMPLES]
    return found + list(RULE_TARIFFS.items())


def _applicable(t: Tariff, start: str) -> bool:
    moment = datetime.fromisoformat(start).replace(tzinfo=UTC)
    return (t.start_date_time is None or t.start_date_time <= moment) and (
        t.end_date_time is None or moment < t.end_date_time)


def test_there_are_example_tariffs() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize(("name", "the_tariff"), _tariffs(), ids=[n for n, _ in _tariffs()])
def test_every_cdr_reprices_to_its_total(name: str, the_tariff: Tariff) -> None:
    checked = 0
    for start in STARTS:
        if not _applicable(the_tariff, start):
            continue
        for tz in ("UTC", "Europe/Berlin"):
            for label, shape in SESSIONS:
                cdr = loads(dumps(cdr_of(the_tariff, _session(start, **shape), tz)))
                assert check_total(cdr, tz) == [], (name, start, tz, label)
                checked += 1
    assert checked >= 8


def test_periods_change_where_the_tariff_changes() -> None:
    t = RULE_TARIFFS["tod_parking_flat"]
    cdr = cdr_of(t, _session("2025-06-02T17:50:00", kw="11", minutes=20, parking_min=30))
    starts = [p["start_date_time"] for p in cdr["charging_periods"]]
    assert "2025-06-02T18:00:00.000Z" in starts
    kinds = {d["type"] for p in cdr["charging_periods"] for d in p["dimensions"]}
    assert kinds == {"ENERGY", "TIME", "PARKING_TIME"}  # OCPI 2.2.1 has no FLAT dimension
    assert sum(D(str(d["volume"])) for p in cdr["charging_periods"]
               for d in p["dimensions"] if d["type"] == "ENERGY") == cdr["total_energy"]


def test_flat_fees_of_each_element_and_a_session_of_no_time() -> None:
    t = RULE_TARIFFS["flat_by_time_of_day"]
    cdr = cdr_of(t, _session("2025-06-02T17:58:00", kw="22", minutes=20, parking_min=5))
    assert check_total(cdr) == []
    assert reprice(cdr).excl_vat > D("1.40")  # both flat fees: 1.00 and 0.40
    begin = datetime(2025, 6, 2, 18, 5, tzinfo=UTC)
    samples = (Sample(begin, D(700), D(5000), D(0)),)
    cdr = cdr_of(t, SessionInput(begin, begin, samples, D(100)))
    assert len(cdr["charging_periods"]) == 1
    assert cdr["total_cost"]["excl_vat"] == D("1.00") and check_total(cdr) == []


def test_min_price_applies_and_reprices() -> None:
    t = RULE_TARIFFS["min_max_price"]
    cdr = cdr_of(t, _session("2025-06-02T10:00:00", kw="3", minutes=2, parking_min=0))
    assert cdr["total_cost"] == {"excl_vat": D("2.00"), "incl_vat": D("2.42")}
    assert check_total(cdr) == []


def test_no_energy_costs_nothing_and_says_so() -> None:
    t = RULE_TARIFFS["tod_parking_flat"]
    begin = datetime(2025, 6, 2, 10, tzinfo=UTC)
    samples = (Sample(begin, D(500), D(0), D(0)),
               Sample(begin + timedelta(minutes=30), D(500), D(0), D(0)))
    cdr = cdr_of(t, SessionInput(begin, samples[-1].t, samples, D(100)),
                 amount_charged=D("0.00"))
    assert cdr["total_cost"] == {"excl_vat": D("0.00"), "incl_vat": D("0.00")}
    assert "nothing is charged" in cdr["remark"]
    assert reprice(cdr).incl_vat > 0  # the tariff would charge: the remark is the reason
    assert check_total(cdr) == []


def test_a_wrong_total_is_caught() -> None:
    t = RULE_TARIFFS["kwh_threshold"]
    cdr = cdr_of(t, _session("2025-06-02T10:00:00", kw="50", minutes=12, parking_min=0))
    cdr["total_cost"] = {"excl_vat": cdr["total_cost"]["excl_vat"] + D("0.01"),
                         "incl_vat": cdr["total_cost"]["incl_vat"]}
    assert check_total(cdr) != []
