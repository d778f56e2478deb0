"""Property tests: incremental == batch, running cost never decreases, interpolated
samples change nothing, and the engine agrees with a slow reference pricer.

The reference pricer below is written independently of the engine: it cuts the
session at every sample, every UTC quarter hour (all generated wall-clock
boundaries are quarter hours and the zones used have quarter-hour offsets), every
duration threshold and every kWh crossing, evaluates the restrictions directly at
the start of each piece with exact fractions, then applies rules 3-6 of
docs/pricing.md ("The rules this terminal commits to").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.kernel.money import round_money
from terminal.pricing import RunningPricer, Sample, SessionInput, parse_tariff, price_session
from terminal.pricing.calendar import from_us, to_us
from terminal.pricing.model import Dimension, Restrictions, Tariff

ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
ANCHORS = [
    datetime(2025, 1, 6, 8, 0, tzinfo=UTC),
    datetime(2025, 3, 29, 20, 0, tzinfo=UTC),  # Berlin spring forward next night
    datetime(2025, 3, 8, 22, 0, tzinfo=UTC),  # New York spring forward next night
    datetime(2025, 10, 25, 20, 0, tzinfo=UTC),  # Berlin fall back next night
    datetime(2025, 11, 1, 23, 0, tzinfo=UTC),  # New York fall back next night
]
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
DIMS = ["ENERGY", "TIME", "PARKING_TIME", "FLAT"]

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _pair(draw: st.DrawFn, values: list[object]) -> tuple[object | None, object | None]:
    low, high = sorted(draw(st.lists(st.sampled_from(values), min_size=2, max_size=2, unique=True)))
    kind = draw(st.sampled_from(["low", "high", "both"]))
    return (low if kind != "high" else None), (high if kind != "low" else None)


@st.composite
def restrictions(draw: st.DrawFn) -> dict[str, object] | None:
    r: dict[str, object] = {}
    if draw(st.integers(0, 2)) == 0:
        minutes = draw(st.lists(st.integers(0, 95), min_size=2, max_size=2, unique=True))
        start, end = (f"{m * 15 // 60:02d}:{m * 15 % 60:02d}" for m in minutes)
        kind = draw(st.sampled_from(["both", "start", "end"]))
        if kind != "end":
            r["start_time"] = start
        if kind != "start":
            r["end_time"] = end
    if draw(st.integers(0, 4)) == 0:
        r["day_of_week"] = draw(
            st.lists(st.sampled_from(DAYS), min_size=1, max_size=6, unique=True)
        )
    if draw(st.integers(0, 6)) == 0:
        r["start_date"], r["end_date"] = (
            d
            for d in _pair(
                draw, ["2025-01-06", "2025-01-07", "2025-03-30", "2025-10-26", "2025-11-02"]
            )
        )
    for low_key, high_key, values in (
        (
            "min_kwh",
            "max_kwh",
            [Decimal("0.5"), Decimal(1), Decimal("2.5"), Decimal(10), Decimal(25)],
        ),
        ("min_power", "max_power", [Decimal("3.7"), Decimal(11), Decimal(22), Decimal(50)]),
        ("min_current", "max_current", [Decimal(16), Decimal(32), Decimal(63)]),
        ("min_duration", "max_duration", [300, 1800, 3600, 7200, 14400]),
    ):
        if draw(st.integers(0, 3)) == 0:
            low, high = _pair(draw, values)
            r[low_key], r[high_key] = low, high
    if draw(st.integers(0, 15)) == 0:
        r["reservation"] = "RESERVATION"
    return {k: v for k, v in r.items() if v is not None} or None


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    elements = []
    for _ in range(draw(st.integers(1, 4))):
        kinds = draw(st.lists(st.sampled_from(DIMS), min_size=1, max_size=3, unique=True))
        components = []
        for kind in kinds:
            component: dict[str, object] = {
                "type": kind,
                "price": draw(
                    st.sampled_from(
                        [Decimal(p) for p in ("0", "0.19", "0.25", "0.3333", "2.40", "7.5")]
                    )
                ),
                "step_size": draw(st.sampled_from([1, 1, 60, 100, 300, 900, 1000])),
            }
            vat = draw(st.sampled_from([None, "0", "7", "19", "5.5"]))
            if vat is not None:
                component["vat"] = Decimal(vat)
            components.append(component)
        item: dict[str, object] = {"price_components": components}
        restriction = draw(restrictions())
        if restriction:
            item["restrictions"] = restriction
        elements.append(item)
    data: dict[str, object] = {
        "currency": draw(st.sampled_from(["EUR", "EUR", "JPY", "KWD"])),
        "elements": elements,
    }
    if draw(st.integers(0, 4)) == 0:
        data["min_price"] = {"excl_vat": Decimal(2), "incl_vat": Decimal("2.50")}
    if draw(st.integers(0, 4)) == 0:
        data["max_price"] = {"excl_vat": Decimal(20), "incl_vat": Decimal("23.80")}
    return parse_tariff(data)


@st.composite
def sessions(draw: st.DrawFn) -> SessionInput:
    start = draw(st.sampled_from(ANCHORS)) + timedelta(seconds=draw(st.integers(0, 86400)))
    t, energy = start, Decimal(0)
    samples = []
    for i in range(draw(st.integers(1, 10))):
        if i:
            step_s = draw(st.integers(0, 4 * 3600))
            t += timedelta(seconds=step_s)
            if step_s:  # no energy in zero time
                energy += Decimal(draw(st.integers(0, 40000))) / 2
        power = draw(st.sampled_from([0, 50, 3700, 11000, 22000, 50000, 150000]))
        current = draw(st.sampled_from([0, 6, 16, 32, 63, 200]))
        samples.append(Sample(t, energy, Decimal(power), Decimal(current)))
    stop = t + timedelta(seconds=draw(st.integers(0, 7200)))
    threshold = Decimal(draw(st.sampled_from([0, 100])))
    return SessionInput(start, stop, tuple(samples), threshold)


@PROPERTY_SETTINGS
@given(tariffs(), sessions(), st.sampled_from(ZONES))
def test_incremental_equals_batch_and_reads_do_not_disturb(
    t: Tariff, s: SessionInput, tz: str
) -> None:
    pricer = RunningPricer(t, tz, s.charging_threshold_w)
    for sample in s.samples:
        pricer.add_sample(sample)
        pricer.cost_so_far()
        pricer.result()
        pricer.result(s.stop)
    assert pricer.result(s.stop) == price_session(t, s, tz)


@PROPERTY_SETTINGS
@given(tariffs(), sessions(), st.sampled_from(ZONES))
def test_running_cost_never_decreases(t: Tariff, s: SessionInput, tz: str) -> None:
    pricer = RunningPricer(t, tz, s.charging_threshold_w)
    before = None
    for sample in s.samples:
        pricer.add_sample(sample)
        now = pricer.cost_so_far()
        if before is not None:
            assert now.excl_vat >= before.excl_vat
            assert now.incl_vat >= before.incl_vat
        before = now


@PROPERTY_SETTINGS
@given(tariffs(), sessions(), st.sampled_from(ZONES), st.data())
def test_interpolated_sample_changes_nothing(
    t: Tariff, s: SessionInput, tz: str, data: st.DataObject
) -> None:
    if len(s.samples) < 2:
        return
    i = data.draw(st.integers(0, len(s.samples) - 2))
    a, b = s.samples[i], s.samples[i + 1]
    fraction = Fraction(data.draw(st.integers(1, 9)), 10)
    middle_t = a.t + (b.t - a.t) * float(fraction)  # µs resolution; energy follows exactly
    middle_t = from_us(to_us(middle_t))
    if not a.t < middle_t < b.t:
        return
    share = Fraction(to_us(middle_t) - to_us(a.t), to_us(b.t) - to_us(a.t))
    energy = Fraction(a.energy_wh) + (Fraction(b.energy_wh) - Fraction(a.energy_wh)) * share
    with localcontext(prec=100):
        middle_e = Decimal(energy.numerator) / Decimal(energy.denominator)
    if Fraction(middle_e) != energy:
        return  # not a finite decimal: cannot be a meter sample
    middle = Sample(middle_t, middle_e, a.power_w, a.current_a)
    denser = SessionInput(
        s.start, s.stop, (*s.samples[: i + 1], middle, *s.samples[i + 1 :]), s.charging_threshold_w
    )
    assert price_session(t, denser, tz) == price_session(t, s, tz)


@PROPERTY_SETTINGS
@given(tariffs(), sessions(), st.sampled_from(ZONES))
def test_engine_agrees_with_reference_pricer(t: Tariff, s: SessionInput, tz: str) -> None:
    expected = reference_price(t, s, tz)
    result = price_session(t, s, tz)
    assert (result.total.excl_vat, result.total.incl_vat) == expected["total"]
    for dimension in Dimension:
        got = result.dimension(dimension)
        assert (got.excl_vat, got.incl_vat) == expected[dimension], dimension


# --- reference pricer -------------------------------------------------------------------


def _holds(
    r: Restrictions, local: datetime, energy_wh: Fraction, elapsed_s: Fraction, sample: Sample
) -> bool:
    minute = local.hour * 60 + local.minute
    if r.reservation is not None:
        return False
    start_m = r.start_time_min
    end_m = None if r.end_time_min is None else (r.end_time_min or 24 * 60)  # 00:00 ends the day
    if start_m is not None and end_m is not None:
        in_window = start_m <= minute < end_m if start_m < end_m else not end_m <= minute < start_m
    else:
        in_window = (start_m is None or minute >= start_m) and (end_m is None or minute < end_m)
    if not in_window:
        return False
    checks = [
        r.start_date is None or local.date() >= r.start_date,
        r.end_date is None or local.date() < r.end_date,
        not r.day_of_week or local.weekday() in r.day_of_week,
        r.min_kwh is None or energy_wh >= Fraction(r.min_kwh) * 1000,
        r.max_kwh is None or energy_wh < Fraction(r.max_kwh) * 1000,
        r.min_power_kw is None or sample.power_w >= r.min_power_kw * 1000,
        r.max_power_kw is None or sample.power_w < r.max_power_kw * 1000,
        r.min_current_a is None or sample.current_a >= r.min_current_a,
        r.max_current_a is None or sample.current_a < r.max_current_a,
        r.min_duration_s is None or elapsed_s >= r.min_duration_s,
        r.max_duration_s is None or elapsed_s < r.max_duration_s,
    ]
    return all(checks)


def reference_price(t: Tariff, s: SessionInput, tz: str) -> dict[object, tuple[Decimal, Decimal]]:
    zone = ZoneInfo(tz)
    times = [Fraction(to_us(x.t), 10**6) for x in s.samples]
    energies = [Fraction(x.energy_wh) - Fraction(s.samples[0].energy_wh) for x in s.samples]
    start, stop = times[0], Fraction(to_us(s.stop), 10**6)

    def energy_at(moment: Fraction) -> Fraction:
        for i in range(len(times) - 1):
            if times[i] <= moment <= times[i + 1] and times[i + 1] > times[i]:
                return energies[i] + (energies[i + 1] - energies[i]) * (moment - times[i]) / (
                    times[i + 1] - times[i]
                )
        return energies[-1] if moment >= times[-1] else energies[0]

    cuts = set(times) | {stop}
    quarter = -(-start // 900) * 900
    while quarter < stop:
        cuts.add(Fraction(quarter))
        quarter += 900
    rs = [e.restrictions or Restrictions() for e in t.elements]
    for r in rs:
        for d in (r.min_duration_s, r.max_duration_s):
            if d is not None:
                cuts.add(start + d)
        for kwh in (r.min_kwh, r.max_kwh):
            if kwh is None:
                continue
            th = Fraction(kwh) * 1000
            for i in range(len(times) - 1):
                if energies[i] < th < energies[i + 1]:
                    span = (th - energies[i]) / (energies[i + 1] - energies[i])
                    cuts.add(times[i] + span * (times[i + 1] - times[i]))
    points = sorted(c for c in cuts if start <= c <= stop)
    quantity: dict[tuple[Dimension, int], Fraction] = {}
    flats: list[int] = []
    last_energy = last_time = None
    for a, b in pairwise(points):
        opener = max(i for i in range(len(times)) if times[i] <= a)
        sample = s.samples[opener]
        local = from_us(int(a * 10**6 // 1)).astimezone(zone)
        matching = [
            i for i, r in enumerate(rs) if _holds(r, local, energy_at(a), a - start, sample)
        ]

        def first(dimension: Dimension, matching: list[int] = matching) -> int | None:
            return next((i for i in matching if t.elements[i].component(dimension)), None)

        flat = first(Dimension.FLAT)
        if flat is not None and flat not in flats:
            flats.append(flat)
        energy = energy_at(b) - energy_at(a)
        element = first(Dimension.ENERGY)
        if element is not None:
            quantity[(Dimension.ENERGY, element)] = (
                quantity.get((Dimension.ENERGY, element), 0) + energy
            )
            if energy > 0:
                last_energy = element
        dimension = (
            Dimension.TIME if sample.power_w > s.charging_threshold_w else Dimension.PARKING_TIME
        )
        element = first(dimension)
        if element is not None:
            quantity[(dimension, element)] = quantity.get((dimension, element), 0) + (b - a)
            last_time = (dimension, element)
    # the FLAT element in force at the first sample counts, even for an instant
    local = from_us(int(start * 10**6)).astimezone(zone)
    matching = [
        i for i, r in enumerate(rs) if _holds(r, local, Fraction(0), Fraction(0), s.samples[0])
    ]
    flat = next((i for i in matching if t.elements[i].component(Dimension.FLAT)), None)
    if flat is not None and flat not in flats:
        flats.append(flat)
    for flat in flats:
        quantity[(Dimension.FLAT, flat)] = Fraction(1)
    steps = []
    if last_energy is not None:
        steps.append((Dimension.ENERGY, last_energy))
    if last_time is not None:
        steps.append(last_time)
    for dimension, element in steps:
        step = t.elements[element].component(dimension).step_size  # type: ignore[union-attr]
        total = sum(q for (d, _), q in quantity.items() if d is dimension)
        rounded = -(-total // step) * step
        quantity[(dimension, element)] = quantity.get((dimension, element), 0) + rounded - total
    divisor = {
        Dimension.ENERGY: 1000,
        Dimension.TIME: 3600,
        Dimension.PARKING_TIME: 3600,
        Dimension.FLAT: 1,
    }
    out: dict[object, tuple[Decimal, Decimal]] = {}
    sums = {d: [Fraction(0), Fraction(0)] for d in Dimension}
    for (dimension, element), q in quantity.items():
        component = t.elements[element].component(dimension)
        assert component is not None
        excl = q * Fraction(component.price) / divisor[dimension]
        incl = excl * (1 + Fraction(component.vat or 0) / 100)
        sums[dimension][0] += excl
        sums[dimension][1] += incl
    for dimension in Dimension:
        out[dimension] = (
            round_money(sums[dimension][0], t.currency),
            round_money(sums[dimension][1], t.currency),
        )
    excl = sum(v[0] for v in sums.values())
    incl = sum(v[1] for v in sums.values())
    if t.min_price is not None:
        excl = max(excl, Fraction(t.min_price.excl_vat))
        if t.min_price.incl_vat is not None:
            incl = max(incl, Fraction(t.min_price.incl_vat))
    if t.max_price is not None:
        excl = min(excl, Fraction(t.max_price.excl_vat))
        if t.max_price.incl_vat is not None:
            incl = min(incl, Fraction(t.max_price.incl_vat))
    out["total"] = (round_money(excl, t.currency), round_money(incl, t.currency))
    return out
