"""The pricing rules of docs/pricing.md, case by case, with amounts worked out by hand.

Each case states the arithmetic in its comment. Sessions start on Monday 2025-01-06
unless said otherwise; the time zone is UTC unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from terminal.pricing import Dimension, TariffNotApplicableError
from terminal.pricing.model import Tariff
from terminal.pricing.session import SessionInput
from tests.unit.pricing.helpers import D, at, comp, element, price, session, tariff


@dataclass
class Case:
    name: str
    tariff: Tariff
    session: SessionInput
    excl: str
    incl: str
    tz: str = "UTC"
    dims: dict[Dimension, tuple[str, str, str]] = field(default_factory=dict)
    """dimension -> (billed_quantity, excl_vat, incl_vat)"""
    boundaries: list[str] | None = None
    """start instants of the merged periods (UTC ISO)"""


MON = "2025-01-06T"
E, T, P, F = Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME, Dimension.FLAT

CASES = [
    # 17:30-18:30 at 11 kW, 11000 Wh. 17:30-18:00: 5500 Wh x 0.20 = 1.10;
    # 18:00-18:30: 5500 Wh x 0.30 = 1.65. excl 2.75, incl x1.2 = 3.30.
    Case(
        "switch at 18:00 between two samples",
        tariff(
            element(comp("ENERGY", "0.30", 20), start_time="18:00", end_time="22:00"),
            element(comp("ENERGY", "0.20", 20)),
        ),
        session(MON + "17:30:00Z", [(0, 0, 11000), (3600, 11000, 11000)]),
        "2.75",
        "3.30",
        dims={E: ("11.000", "2.75", "3.30")},
        boundaries=[MON + "17:30:00+00:00", MON + "18:00:00+00:00"],
    ),
    # 21:00-07:00 at 1 kW. Night 22:00-06:00 wraps midnight: 8000 Wh x 0.10 = 0.80;
    # day 21-22 and 06-07: 2000 Wh x 0.40 = 0.80. Total 1.60, no VAT.
    Case(
        "window wrapping midnight",
        tariff(
            element(comp("ENERGY", "0.10"), start_time="22:00", end_time="06:00"),
            element(comp("ENERGY", "0.40")),
        ),
        session(MON + "21:00:00Z", [(0, 0, 1000), (36000, 10000, 1000)]),
        "1.60",
        "1.60",
        boundaries=[MON + "21:00:00+00:00", MON + "22:00:00+00:00", "2025-01-07T06:00:00+00:00"],
    ),
    # Friday 23:00 - Saturday 01:00 UTC at 2 kW. Fri: 2000 Wh x 0.30 = 0.60,
    # Sat: 2000 Wh x 0.50 = 1.00. Total 1.60.
    Case(
        "weekday restriction (UTC)",
        tariff(
            element(comp("ENERGY", "0.50"), day_of_week=["SATURDAY", "SUNDAY"]),
            element(comp("ENERGY", "0.30")),
        ),
        session("2025-01-03T23:00:00Z", [(0, 0, 2000), (7200, 4000, 2000)]),
        "1.60",
        "1.60",
    ),
    # The same session in Berlin starts Saturday 00:00 local: 4000 Wh x 0.50 = 2.00.
    Case(
        "weekday restriction in station time (Europe/Berlin)",
        tariff(
            element(comp("ENERGY", "0.50"), day_of_week=["SATURDAY", "SUNDAY"]),
            element(comp("ENERGY", "0.30")),
        ),
        session("2025-01-03T23:00:00Z", [(0, 0, 2000), (7200, 4000, 2000)]),
        "2.00",
        "2.00",
        tz="Europe/Berlin",
    ),
    # One interval 0-3600 s, 0 -> 15000 Wh: max_kwh 10 is crossed at 2400 s.
    # ENERGY 10000 Wh x 0.20 + 5000 Wh x 0.40 = 4.00; TIME 2400 s x 3.00/h = 2.00,
    # 1200 s x 6.00/h = 2.00. Total 8.00.
    Case(
        "max_kwh crossed between two samples",
        tariff(
            element(comp("ENERGY", "0.20"), comp("TIME", "3.00"), max_kwh=10),
            element(comp("ENERGY", "0.40"), comp("TIME", "6.00")),
        ),
        session(MON + "10:00:00Z", [(0, 0, 15000), (3600, 15000, 15000)]),
        "8.00",
        "8.00",
        dims={E: ("15.000", "4.00", "4.00"), T: ("1.00", "4.00", "4.00")},
        boundaries=[MON + "10:00:00+00:00", MON + "10:40:00+00:00"],
    ),
    # min_kwh 10 (inclusive) crossed at 2400 s: the element starts at exactly 10 kWh.
    Case(
        "min_kwh crossed between two samples",
        tariff(
            element(comp("ENERGY", "0.40"), min_kwh=10),
            element(comp("ENERGY", "0.20")),
        ),
        session(MON + "10:00:00Z", [(0, 0, 15000), (3600, 15000, 15000)]),
        "4.00",
        "4.00",
        boundaries=[MON + "10:00:00+00:00", MON + "10:40:00+00:00"],
    ),
    # Crossing at a non-integer instant: 0 -> 3 Wh in 1 s crosses 1 Wh at 1/3 s.
    # TIME 1 EUR/s for 1/3 s + 2 EUR/s for 2/3 s = 5/3 = 1.666.. -> 1.67; the
    # rounded parts would be 0.33 + 1.33 = 1.66: the total is not their sum.
    Case(
        "fractional crossing instant priced exactly",
        tariff(
            element(comp("TIME", "3600"), max_kwh="0.001"),
            element(comp("TIME", "7200")),
        ),
        session(MON + "10:00:00Z", [(0, 0, 10800), (1, 3, 10800)]),
        "1.67",
        "1.67",
        dims={T: ("0.000278", "1.67", "1.67")},
    ),
    # 0-1800 s at 100 kW (fast, min_power 50 kW): 50000 Wh x 0.59 = 29.50;
    # 1800-3600 s at 40 kW (slow): 20000 Wh x 0.39 = 7.80. Total 37.30.
    Case(
        "power-based element selection",
        tariff(
            element(comp("ENERGY", "0.59"), min_power=50),
            element(comp("ENERGY", "0.39")),
        ),
        session(MON + "10:00:00Z", [(0, 0, 100000), (1800, 50000, 40000), (3600, 70000, 40000)]),
        "37.30",
        "37.30",
    ),
    # min_power is inclusive: exactly 50000 W is fast. 10000 Wh x 0.59 = 5.90.
    Case(
        "min_power inclusive",
        tariff(element(comp("ENERGY", "0.59"), min_power=50), element(comp("ENERGY", "0.39"))),
        session(MON + "10:00:00Z", [(0, 0, 50000), (720, 10000, 50000)]),
        "5.90",
        "5.90",
    ),
    # max_power is exclusive: exactly 50000 W is not below 50 kW. 10000 Wh x 0.39.
    Case(
        "max_power exclusive",
        tariff(element(comp("ENERGY", "0.59"), max_power=50), element(comp("ENERGY", "0.39"))),
        session(MON + "10:00:00Z", [(0, 0, 50000), (720, 10000, 50000)]),
        "3.90",
        "3.90",
    ),
    # Current restriction, 32 A: 16 A for 1 h (1.00/h) then 40 A for 1 h (2.00/h).
    Case(
        "current-based element selection",
        tariff(
            element(comp("TIME", "2.00"), min_current=32),
            element(comp("TIME", "1.00")),
        ),
        session(MON + "10:00:00Z", [(0, 0, 3700, 16), (3600, 3700, 9200, 40), (7200, 12900, 0)]),
        "3.00",
        "3.00",
    ),
    # Charge 0-3 h at 20 kW (60000 Wh x 0.50 = 30.00, incl 35.70); park 3 h - 5:30:20.
    # Idle fee only from 4 h: 1:30:20 = 5420 s, step 60 -> 5460 s x 6.00/h = 9.10,
    # incl 10.829. Totals 39.10 / 46.529 -> 46.53.
    Case(
        "blocking fee after a minimum duration",
        tariff(
            element(comp("PARKING_TIME", "6.00", 19, 60), min_duration=14400),
            element(comp("ENERGY", "0.50", 19)),
        ),
        session(MON + "10:00:00Z", [(0, 0, 20000), (10800, 60000, 0)], stop_after_s=19820),
        "39.10",
        "46.53",
        dims={P: ("1.516667", "9.10", "10.83"), E: ("60.000", "30.00", "35.70")},
    ),
    # 17:00-18:00 3210 Wh at 0.20 (step 500), 18:00-18:30 1111 Wh at 0.40 (step 100).
    # 0.642 + 0.4444; total 4321 Wh rounded with the LAST component's step 100 ->
    # 4400, extra 79 Wh x 0.40 = 0.0316. 1.118 -> 1.12.
    Case(
        "energy step of the last of two ENERGY elements",
        tariff(
            element(comp("ENERGY", "0.20", None, 500), end_time="18:00"),
            element(comp("ENERGY", "0.40", None, 100)),
        ),
        session(MON + "17:00:00Z", [(0, 0, 3210), (3600, 3210, 2222), (5400, 4321, 2222)]),
        "1.12",
        "1.12",
        dims={E: ("4.400", "1.12", "1.12")},
    ),
    # Reversed: 17-18 at 0.40 (3210 Wh = 1.284), from 18:00 0.20 with step 500
    # (1111 Wh = 0.2222); 4321 -> 4500, extra 179 Wh x 0.20 = 0.0358. 1.542 -> 1.54.
    Case(
        "energy step when the coarse step is last",
        tariff(
            element(comp("ENERGY", "0.20", None, 500), start_time="18:00"),
            element(comp("ENERGY", "0.40", None, 100)),
        ),
        session(MON + "17:00:00Z", [(0, 0, 3210), (3600, 3210, 2222), (5400, 4321, 2222)]),
        "1.54",
        "1.54",
        dims={E: ("4.500", "1.54", "1.54")},
    ),
    # OCPI example: charge 149.5 min at 3.00/h (10% VAT, step 60), park 42 min at
    # 5.00/h (20% VAT, step 300). Only the last (PARKING_TIME) is rounded: 45 min.
    # TIME 8970 s = 7.475 (incl 8.2225); parking 3.75 (incl 4.50).
    # 11.225 -> 11.23 (half up); 12.7225 -> 12.72.
    Case(
        "TIME followed by PARKING_TIME",
        tariff(element(comp("TIME", "3.00", 10, 60), comp("PARKING_TIME", "5.00", 20, 300))),
        session(MON + "09:30:00Z", [(0, 0, 11000), (8970, 27408, 0)], stop_after_s=8970 + 2520),
        "11.23",
        "12.72",
        dims={T: ("2.491667", "7.48", "8.22"), P: ("0.75", "3.75", "4.50")},
    ),
    # Parking is free (no PARKING_TIME component), so TIME is the last active time
    # dimension and is rounded: 10 min -> 15 min (step 900) x 2.40/h = 0.60.
    Case(
        "TIME rounded when parking is free",
        tariff(element(comp("TIME", "2.40", None, 900))),
        session(MON + "16:55:00Z", [(0, 0, 7000), (600, 1166, 0)], stop_after_s=720),
        "0.60",
        "0.60",
        dims={T: ("0.25", "0.60", "0.60"), P: ("0.00", "0.00", "0.00")},
    ),
    # OCPI max_price example: FLAT 0.50 (20%) + 50 kWh x 0.25 (10%) = 13.00 / 14.35,
    # clamped to 10.00 / 11.00.
    Case(
        "max_price",
        tariff(
            element(comp("FLAT", "0.50", 20), comp("ENERGY", "0.25", 10)),
            max_price={"excl_vat": 10, "incl_vat": 11},
        ),
        session(MON + "10:00:00Z", [(0, 0, 50000), (3600, 50000, 50000)]),
        "10.00",
        "11.00",
        dims={E: ("50.000", "12.50", "13.75"), F: ("1", "0.50", "0.60")},
    ),
    # Below the cap: 30 kWh -> 7.50 + 0.50 = 8.00; incl 8.25 + 0.60 = 8.85.
    Case(
        "max_price not reached",
        tariff(
            element(comp("FLAT", "0.50", 20), comp("ENERGY", "0.25", 10)),
            max_price={"excl_vat": 10, "incl_vat": 11},
        ),
        session(MON + "10:00:00Z", [(0, 0, 30000), (3600, 30000, 30000)]),
        "8.00",
        "8.85",
    ),
    # OCPI min_price example: 1 kWh x 0.25 = 0.25 / 0.275 -> 0.50 / 0.55.
    Case(
        "min_price",
        tariff(element(comp("ENERGY", "0.25", 10)), min_price={"excl_vat": 0.5, "incl_vat": 0.55}),
        session(MON + "10:00:00Z", [(0, 0, 1000), (3600, 1000, 1000)]),
        "0.50",
        "0.55",
    ),
    # Each side on its own: 2.10 excl (no VAT) stays above 2.00; incl 2.10 < 2.50.
    Case(
        "min_price clamps each side on its own",
        tariff(element(comp("ENERGY", "0.21")), min_price={"excl_vat": 2, "incl_vat": "2.50"}),
        session(MON + "10:00:00Z", [(0, 0, 10000), (3600, 10000, 10000)]),
        "2.10",
        "2.50",
    ),
    # FLAT 1.00 without VAT beside ENERGY 0.30 with 19%: 10 kWh -> 3.00 / 3.57;
    # totals 4.00 / 4.57.
    Case(
        "component without VAT beside one with VAT",
        tariff(element(comp("FLAT", "1.00"), comp("ENERGY", "0.30", 19))),
        session(MON + "10:00:00Z", [(0, 0, 10000), (3600, 10000, 10000)]),
        "4.00",
        "4.57",
        dims={F: ("1", "1.00", "1.00"), E: ("10.000", "3.00", "3.57")},
    ),
    # JPY (0 digits): 12.345 kWh x 55 = 678.975 + 100 = 778.975 -> 779;
    # incl 746.8725 + 100 = 846.8725 -> 847.
    Case(
        "JPY, no minor unit",
        tariff(element(comp("ENERGY", 55, 10), comp("FLAT", 100)), currency="JPY"),
        session(MON + "10:00:00Z", [(0, 0, 12345), (3600, 12345, 0)]),
        "779",
        "847",
        dims={E: ("12.345", "679", "747"), F: ("1", "100", "100")},
    ),
    # KWD (3 digits): 36.36 kWh x 0.0125 = 0.4545 -> 0.455 (half up, not 0.454).
    Case(
        "KWD, three minor digits, half up",
        tariff(element(comp("ENERGY", "0.0125")), currency="KWD"),
        session(MON + "10:00:00Z", [(0, 0, 36360), (3600, 36360, 0)]),
        "0.455",
        "0.455",
    ),
    # BHD (3 digits): 12.345 kWh x 0.0455 = 0.5616975 -> 0.562; incl 10%: 0.61786725 -> 0.618.
    Case(
        "BHD, three minor digits",
        tariff(element(comp("ENERGY", "0.0455", 10)), currency="BHD"),
        session(MON + "10:00:00Z", [(0, 0, 12345), (3600, 12345, 0)]),
        "0.562",
        "0.618",
    ),
    # FLAT once per distinct element: 17-18 el 1 (0.50), 18-22 el 0 (1.00),
    # 22-23 el 1 again (not billed twice). 1.50, count 2.
    Case(
        "FLAT once per distinct active FLAT element",
        tariff(
            element(comp("FLAT", "1.00"), start_time="18:00", end_time="22:00"),
            element(comp("FLAT", "0.50")),
        ),
        session(MON + "17:00:00Z", [(0, 0, 1000), (21600, 6000, 1000)]),
        "1.50",
        "1.50",
        dims={F: ("2", "1.50", "1.50")},
    ),
    # Elements without a FLAT component do not hide the FLAT of a later element.
    Case(
        "first element WITH a component of the dimension",
        tariff(
            element(comp("ENERGY", "0.30")),
            element(comp("FLAT", "2.00"), comp("ENERGY", "0.99")),
        ),
        session(MON + "10:00:00Z", [(0, 0, 1000), (3600, 1000, 1000)]),
        "2.30",
        "2.30",
    ),
    # First 30 min free (max_duration 1800 exclusive), then 0.40/kWh: 1 kW for 1 h
    # -> 500 Wh x 0.40 = 0.20.
    Case(
        "max_duration",
        tariff(
            element(comp("ENERGY", "0.00"), max_duration=1800),
            element(comp("ENERGY", "0.40")),
        ),
        session(MON + "10:00:00Z", [(0, 0, 1000), (3600, 1000, 1000)]),
        "0.20",
        "0.20",
    ),
    # Dates: start_date inclusive, end_date exclusive (local dates). 2025-01-07 is
    # excluded: the 24 h from 01-06 00:00 cost 1000 Wh x 0.10 + 1000 Wh x 0.30.
    Case(
        "start_date inclusive, end_date exclusive",
        tariff(
            element(comp("ENERGY", "0.10"), start_date="2025-01-06", end_date="2025-01-07"),
            element(comp("ENERGY", "0.30")),
        ),
        session(MON + "00:00:00Z", [(0, 0, 1000 / 24), (172800, 2000, 0)]),
        "0.40",
        "0.40",
    ),
    # A reservation element never applies on this terminal.
    Case(
        "reservation element never matches",
        tariff(
            element(comp("TIME", "5.00"), reservation="RESERVATION"),
            element(comp("ENERGY", "0.30")),
        ),
        session(MON + "10:00:00Z", [(0, 0, 1000), (3600, 1000, 1000)]),
        "0.30",
        "0.30",
    ),
    # Charging means power ABOVE the threshold: 100 W with threshold 100 W parks.
    Case(
        "charging threshold",
        tariff(element(comp("TIME", "1.00"), comp("PARKING_TIME", "3.00"))),
        session(
            MON + "10:00:00Z", [(0, 0, 100), (3600, 100, 101), (7200, 201, 0)], threshold_w=100
        ),
        "4.00",
        "4.00",
    ),
    # Stop after the last sample: the last sample's state continues, no energy.
    Case(
        "stop after the last sample",
        tariff(element(comp("ENERGY", "0.30"), comp("TIME", "1.20"))),
        session(MON + "10:00:00Z", [(0, 0, 7000), (1800, 3500, 7000)], stop_after_s=3600),
        "2.25",
        "2.25",
        dims={E: ("3.500", "1.05", "1.05"), T: ("1.00", "1.20", "1.20")},
    ),
    # A zero-length session still pays the session fee.
    Case(
        "zero-length session pays FLAT",
        tariff(element(comp("FLAT", "1.00", 19), comp("ENERGY", "0.30"))),
        session(MON + "10:00:00Z", [(0, 0, 0)]),
        "1.00",
        "1.19",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hand_worked_case(case: Case) -> None:
    result = price(case.tariff, case.session, case.tz)
    assert (str(result.total.excl_vat), str(result.total.incl_vat)) == (case.excl, case.incl)
    for dimension, (quantity, excl, incl) in case.dims.items():
        got = result.dimension(dimension)
        assert (str(got.billed_quantity), str(got.excl_vat), str(got.incl_vat)) == (
            quantity,
            excl,
            incl,
        ), dimension
    if case.boundaries is not None:
        assert [p.start.isoformat() for p in result.periods] == case.boundaries


def test_periods_report_energy_duration_and_elements() -> None:
    result = price(CASES[4].tariff, CASES[4].session)
    first, second = result.periods
    assert (first.duration_s, first.energy_wh, first.charging) == (D(2400), D(10000), True)
    assert (first.active.energy, first.active.time, first.active.flat) == (0, 0, None)
    assert (second.duration_s, second.energy_wh, second.active.energy) == (D(1200), D(5000), 1)
    assert second.end == at(MON + "11:00:00Z")


def test_charge_lines_name_element_price_vat_and_quantity() -> None:
    result = price(
        tariff(
            element(comp("ENERGY", "0.30", 20), start_time="18:00", end_time="22:00"),
            element(comp("ENERGY", "0.20", 20), comp("FLAT", "1.00")),
        ),
        session(MON + "17:30:00Z", [(0, 0, 11000), (3600, 11000, 11000)]),
    )
    lines = [
        (ln.dimension, ln.element_index, str(ln.billed_quantity), str(ln.excl_vat))
        for ln in result.lines
    ]
    assert lines == [(E, 0, "5.500", "1.65"), (E, 1, "5.500", "1.10"), (F, 1, "1", "1.00")]
    assert result.lines[0].vat_percent == D(20)
    assert result.lines[2].vat_percent is None


def test_price_limit_reported() -> None:
    capped = [c for c in CASES if c.name in ("max_price", "min_price", "max_price not reached")]
    limits = [price(c.tariff, c.session).price_limit for c in capped]
    assert limits == ["max_price", None, "min_price"]


def test_totals_and_times() -> None:
    result = price(CASES[11].tariff, CASES[11].session)
    assert result.total_energy_wh == D(60000)
    assert result.charging_time_s == D(10800)
    assert result.parking_time_s == D(19820 - 10800)


class TestTariffValidity:
    T = tariff(
        element(comp("ENERGY", "0.30")),
        start_date_time="2025-01-01T00:00:00Z",
        end_date_time="2025-07-01T00:00:00Z",
    )

    def test_before_start_date_time_is_not_applicable(self) -> None:
        s = session("2024-12-31T23:00:00Z", [(0, 0, 1000), (3600, 1000, 1000)])
        with pytest.raises(TariffNotApplicableError) as caught:
            price(self.T, s)
        assert caught.value.path == "start_date_time"
        assert "not yet valid" in str(caught.value)

    def test_at_end_date_time_is_not_applicable(self) -> None:
        s = session("2025-07-01T00:00:00Z", [(0, 0, 1000)])
        with pytest.raises(TariffNotApplicableError) as caught:
            price(self.T, s)
        assert caught.value.path == "end_date_time"

    def test_tariff_in_force_at_start_stays_for_the_session(self) -> None:
        s = session("2025-06-30T23:00:00Z", [(0, 0, 1000), (7200, 2000, 0)])
        assert price(self.T, s).total.excl_vat == D("0.60")

    def test_start_exactly_at_start_date_time_applies(self) -> None:
        s = session("2025-01-01T00:00:00Z", [(0, 0, 1000), (3600, 1000, 0)])
        assert price(self.T, s).total.excl_vat == D("0.30")


def test_energy_zero_is_the_first_sample() -> None:
    # A meter register reading as energy: the first sample is the zero.
    a = price(
        tariff(element(comp("ENERGY", "0.30"))),
        session(MON + "10:00:00Z", [(0, 5000, 1), (60, 6000, 1)]),
    )
    assert a.total.excl_vat == D("0.30")
    assert a.total_energy_wh == D(1000)


def test_incremental_session_duration_helper() -> None:
    s = session(MON + "10:00:00Z", [(0, 0, 1), (90, 10, 1)])
    assert s.samples[-1].t - s.start == timedelta(seconds=90)


def test_end_time_midnight_is_end_of_day() -> None:
    # end_time "00:00" alone: the whole day (OCPI "to stop at end of the day use 00:00").
    t = tariff(element(comp("ENERGY", "0.50"), end_time="00:00"), element(comp("ENERGY", "0.10")))
    assert price(
        t, session(MON + "22:00:00Z", [(0, 0, 1000), (7200, 2000, 0)])
    ).total.excl_vat == D("1.00")
