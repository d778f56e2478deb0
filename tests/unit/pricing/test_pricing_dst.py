"""Station-local time restrictions across daylight-saving changes (Europe/Berlin).

2025-03-30: 02:00 CET -> 03:00 CEST at 01:00 UTC (the local hour 02:xx does not exist).
2025-10-26: 03:00 CEST -> 02:00 CET at 01:00 UTC (the local hour 02:xx happens twice).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from terminal.pricing.calendar import CutSchedule, from_us, to_us, transitions
from tests.unit.pricing.helpers import D, at, comp, element, price, session, tariff

BERLIN = "Europe/Berlin"
NIGHT = tariff(
    element(comp("ENERGY", "0.20"), start_time="22:00", end_time="06:00"),
    element(comp("ENERGY", "0.40")),
)


def test_spring_forward_shortens_the_night() -> None:
    # 20:00-06:00 UTC at 1 kW. Night 22:00 CET (21:00 UTC) - 06:00 CEST (04:00 UTC)
    # = 7 h: 7000 Wh x 0.20 + 3000 Wh x 0.40 = 2.60 (a fixed +01:00 would give 2.40).
    result = price(
        NIGHT, session("2025-03-29T20:00:00Z", [(0, 0, 1000), (36000, 10000, 1000)]), BERLIN
    )
    assert result.total.excl_vat == D("2.60")
    assert [p.start for p in result.periods] == [
        at("2025-03-29T20:00:00Z"),
        at("2025-03-29T21:00:00Z"),
        at("2025-03-30T04:00:00Z"),
    ]


def test_fall_back_lengthens_the_night() -> None:
    # 19:00-07:00 UTC. Night 22:00 CEST (20:00 UTC) - 06:00 CET (05:00 UTC) = 9 h:
    # 9000 Wh x 0.20 + 3000 Wh x 0.40 = 3.00.
    result = price(
        NIGHT, session("2025-10-25T19:00:00Z", [(0, 0, 1000), (43200, 12000, 1000)]), BERLIN
    )
    assert result.total.excl_vat == D("3.00")
    assert [p.start for p in result.periods][1:] == [
        at("2025-10-25T20:00:00Z"),
        at("2025-10-26T05:00:00Z"),
    ]


def test_repeated_local_hour_matches_twice() -> None:
    # 02:30-03:00 local happens at 00:30-01:00 UTC (CEST) and 01:30-02:00 UTC (CET).
    # 00:00-03:00 UTC at 1 kW: 1000 Wh x 0.50 + 2000 Wh x 0.10 = 0.70.
    t = tariff(
        element(comp("ENERGY", "0.50"), start_time="02:30", end_time="03:00"),
        element(comp("ENERGY", "0.10")),
    )
    result = price(t, session("2025-10-26T00:00:00Z", [(0, 0, 1000), (10800, 3000, 1000)]), BERLIN)
    assert result.total.excl_vat == D("0.70")
    assert [(p.start, p.active.energy) for p in result.periods] == [
        (at("2025-10-26T00:00:00Z"), 1),
        (at("2025-10-26T00:30:00Z"), 0),
        (at("2025-10-26T01:00:00Z"), 1),
        (at("2025-10-26T01:30:00Z"), 0),
        (at("2025-10-26T02:00:00Z"), 1),
    ]


def test_boundary_in_the_spring_gap_takes_effect_at_the_jump() -> None:
    # 02:30 does not exist on 2025-03-30; the window 02:30-04:00 starts when the
    # clock jumps to 03:00 CEST (01:00 UTC) and ends at 04:00 CEST (02:00 UTC).
    t = tariff(
        element(comp("ENERGY", "0.50"), start_time="02:30", end_time="04:00"),
        element(comp("ENERGY", "0.10")),
    )
    result = price(t, session("2025-03-30T00:00:00Z", [(0, 0, 1000), (10800, 3000, 1000)]), BERLIN)
    assert result.total.excl_vat == D("0.70")
    assert [(p.start, p.active.energy) for p in result.periods] == [
        (at("2025-03-30T00:00:00Z"), 1),
        (at("2025-03-30T01:00:00Z"), 0),
        (at("2025-03-30T02:00:00Z"), 1),
    ]


def test_duration_thresholds_are_elapsed_time_not_wall_clock() -> None:
    # Idle fee after 2 h of session across the spring jump: 23:30 CET + 2 h elapsed
    # = 02:30 CEST wall time = 00:30 UTC. 30 min parked at 6.00/h = 3.00.
    t = tariff(element(comp("PARKING_TIME", "6.00"), min_duration=7200))
    result = price(t, session("2025-03-29T22:30:00Z", [(0, 0, 0)], stop_after_s=9000), BERLIN)
    assert result.total.excl_vat == D("3.00")


def test_transitions_found_to_the_second() -> None:
    zone = ZoneInfo(BERLIN)
    start = to_us(at("2025-03-29T12:00:00Z")) // 1_000_000
    found = transitions(zone, start, start + 86400)
    assert [from_us(s * 1_000_000) for s in found] == [at("2025-03-30T01:00:00Z")]


def test_cut_schedule_lists_every_occurrence_and_jump() -> None:
    zone = ZoneInfo(BERLIN)
    start_us = to_us(at("2025-10-25T22:00:00Z"))  # 00:00 CEST on the 26th
    cuts = CutSchedule(zone, start_us, [150, 180], [3600 * 1_000_000 + start_us])
    got = []
    i = 0
    while (c := cuts.cut(i)) < to_us(at("2025-10-26T03:00:00Z")):
        got.append(from_us(c))
        i += 1
    assert got == [
        at("2025-10-25T23:00:00Z"),  # duration threshold 1 h
        at("2025-10-26T00:30:00Z"),  # 02:30 CEST
        at("2025-10-26T01:00:00Z"),  # 03:00 CEST == the jump back to 02:00 CET
        at("2025-10-26T01:30:00Z"),  # 02:30 CET
        at("2025-10-26T02:00:00Z"),  # 03:00 CET
    ]


def test_cut_schedule_without_calendar_ends() -> None:
    cuts = CutSchedule(ZoneInfo("UTC"), 0, None, [5, 3, 3])
    assert [cuts.cut(i) for i in range(2)] == [3, 5]
    assert cuts.cut(2) > 10**20
