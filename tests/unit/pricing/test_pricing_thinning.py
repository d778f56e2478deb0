"""Thinning a session's samples never changes its price (terminal.pricing.thinning).

Random tariffs (every restriction kind: time of day, weekday, dates, durations, kWh,
power, current, reservation) and random long sessions with repeated power levels: the
samples `samples_needed` keeps price exactly like all of them (the whole
`PricingResult`, every line and period), and most samples of a steady session go.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.pricing import Sample, SessionInput, parse_tariff, price_session
from terminal.pricing.model import Tariff
from terminal.pricing.thinning import samples_needed
from tests.unit.pricing.test_pricing_properties import ANCHORS, ZONES, tariffs

THINNING_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


@st.composite
def long_sessions(draw: st.DrawFn) -> tuple[SessionInput, list[bool]]:
    """30-200 samples 1 s to 10 min apart, few distinct power levels (so states
    repeat), some equal timestamps, a few pinned samples
    besides the first and last."""
    start = draw(st.sampled_from(ANCHORS)) + timedelta(seconds=draw(st.integers(0, 86400)))
    t, energy = start, Decimal(0)
    samples, pinned = [], []
    levels = draw(st.lists(st.sampled_from([0, 50, 3700, 11000, 50000, 150000]),
                           min_size=1, max_size=3))
    count = draw(st.integers(30, 200))
    for i in range(count):
        if i:
            step_s = draw(st.sampled_from([0, 1, 1, 1, 5, 60, 600]))
            t += timedelta(seconds=step_s)
            if step_s:  # no energy in zero time (the engine refuses it)
                energy += Decimal(draw(st.integers(0, 2000))) / 4
        power = Decimal(draw(st.sampled_from(levels)))
        samples.append(Sample(t, energy, power, power / 400))
        pinned.append(i in (0, count - 1) or draw(st.integers(0, 30)) == 0)
    threshold = Decimal(draw(st.sampled_from([0, 100])))
    return SessionInput(start, t, tuple(samples), threshold), pinned


def kept(session: SessionInput, needed: list[bool]) -> SessionInput:
    samples = tuple(s for s, keep in zip(session.samples, needed, strict=True) if keep)
    return SessionInput(session.start, session.stop, samples, session.charging_threshold_w)


@THINNING_SETTINGS
@given(tariffs(), long_sessions(), st.sampled_from(ZONES),
       st.sampled_from([None, 60.0, 900.0]))
def test_the_kept_samples_price_exactly_like_all_of_them(
    t: Tariff, drawn: tuple[SessionInput, list[bool]], tz: str, max_gap_s: float | None
) -> None:
    session, pinned = drawn
    needed = samples_needed(t, session.samples, pinned, tz, session.charging_threshold_w,
                            max_gap_s)
    assert all(needed[i] for i, pin in enumerate(pinned) if pin)
    assert price_session(t, kept(session, needed), tz) == price_session(t, session, tz)
    if max_gap_s is not None:  # a gap over max_gap_s only where nothing was dropped
        indices = [i for i, keep in enumerate(needed) if keep]
        times = session.samples
        assert all(j == i + 1 or (times[j].t - times[i].t).total_seconds() <= max_gap_s
                   for i, j in pairwise(indices))


def test_a_steady_charge_keeps_only_a_few_samples() -> None:
    """An hour at 150 kW, one sample a second, under a time-of-day tariff whose price
    changes at 17:00 in the middle of it: 3601 samples, the price kept by a handful."""
    tariff = parse_tariff({"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.60"), "step_size": 1}],
         "restrictions": {"start_time": "17:00", "end_time": "21:00"}},
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.40"), "step_size": 1}]},
    ]})
    start = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)
    samples = tuple(Sample(start + timedelta(seconds=i), Decimal(i * 125) / 3 // 1,
                           Decimal(150_000), Decimal(375)) for i in range(3601))
    session = SessionInput(start, samples[-1].t, samples, Decimal(100))
    pinned = [i in (0, 3600) for i in range(3601)]
    needed = samples_needed(tariff, samples, pinned, "UTC", Decimal(100))
    assert sum(needed) <= 4  # start, around 17:00, stop
    assert price_session(tariff, kept(session, needed), "UTC") == price_session(
        tariff, session, "UTC")
    with_curve = samples_needed(tariff, samples, pinned, "UTC", Decimal(100), 900.0)
    assert 5 <= sum(with_curve) <= 8  # one reading at least every 15 minutes
