"""The price texts say what the engine does (issue 15): for every example tariff and every
restriction its lines put into words, the claim is written down here in each language
(when the component starts or stops applying) and sample sessions priced by the engine
show it holds. A duration counts from the start of the session: an idle fee with
`min_duration` 600 starts 10 min after the start of charging, at once for a car that
stopped charging before (not 10 min after it went idle)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from terminal.pricing import Dimension, RunningPricer, Sample, Tariff, load_tariff, tariff_lines
from terminal.pricing.model import Restrictions

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples" / "tariffs").glob("*.json"))
ZONES = {"DE": "Europe/Berlin", "NL": "Europe/Amsterdam", "US": "America/Los_Angeles"}
LANGUAGES = ("en", "de", "fr", "nl")
HOUR = {"en": "h", "de": "h", "fr": "h", "nl": "u"}
# what each duration restriction claims, in words ({d}: the duration)
CLAIMS = {
    "min_duration_s": {"en": "from {d} after the start of charging",
                       "de": "ab {d} nach Ladebeginn",
                       "fr": "à partir de {d} après le début de la charge",
                       "nl": "vanaf {d} na het begin van het laden"},
    "max_duration_s": {"en": "for the first {d} after the start of charging",
                       "de": "in den ersten {d} nach Ladebeginn",
                       "fr": "pendant les {d} suivant le début de la charge",
                       "nl": "de eerste {d} na het begin van het laden"},
}
CHECKED = {"min_duration_s", "max_duration_s", "start_time_min", "end_time_min", "day_of_week"}
POWER_W = Decimal(150_000)
STEP = timedelta(seconds=60)


def duration_words(seconds: int, language: str) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} {HOUR[language]}"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    parts += [f"{secs} s"] if secs or not parts else []
    return " ".join(parts)


def restricted_components() -> list[tuple[Path, int, Dimension]]:
    found = []
    for path in EXAMPLES:
        tariff = load_tariff(path)
        for index, element in enumerate(tariff.elements):
            if element.restrictions is not None:
                found += [(path, index, c.type) for c in element.price_components]
    return found


def session(start: datetime, charging_until: datetime, stop: datetime) -> list[Sample]:
    """A sample a minute: charging at 150 kW until `charging_until`, then parked."""
    samples, t, energy = [], start, Decimal(0)
    while t <= stop:
        on = t < charging_until
        samples.append(Sample(t, energy, POWER_W if on else Decimal(0),
                              Decimal(200) if on else Decimal(0)))
        if on:
            energy += POWER_W * Decimal(STEP.total_seconds()) / 3600
        t += STEP
    return samples


def priced(tariff: Tariff, zone: str, samples: list[Sample]) -> RunningPricer:
    pricer = RunningPricer(tariff, zone)
    for sample in samples:
        pricer.add_sample(sample)
    return pricer


def applies_from(tariff: Tariff, zone: str, samples: list[Sample], index: int,
                 dimension: Dimension) -> list[tuple[datetime, datetime]]:
    """The stretches in which element `index` bills `dimension` (PARKING_TIME only while
    not charging, TIME only while charging)."""
    spans = []
    for period in priced(tariff, zone, samples).result().periods:
        if period.active.of(dimension) != index or period.end <= period.start:
            continue
        if dimension is Dimension.PARKING_TIME and period.charging:
            continue
        if dimension is Dimension.TIME and not period.charging:
            continue
        if spans and spans[-1][1] == period.start:
            spans[-1] = (spans[-1][0], period.end)
        else:
            spans.append((period.start, period.end))
    return spans


def fee(tariff: Tariff, zone: str, samples: list[Sample], dimension: Dimension) -> Decimal:
    return priced(tariff, zone, samples).result().dimension(dimension).incl_vat


def a_day(zone: str, days: frozenset[int], listed: bool) -> datetime | None:
    """Noon of a day in March 2026 whose weekday is (or is not) in `days`."""
    for offset in range(7):
        day = datetime(2026, 3, 2 + offset, 12, 0, tzinfo=ZoneInfo(zone))  # Mon 2 March
        if not days or (day.weekday() in days) == listed:
            return day
    return None


@pytest.mark.parametrize(("path", "index", "dimension"), restricted_components(),
                         ids=lambda v: v.name if isinstance(v, Path) else str(v))
def test_each_restriction_in_words_holds_in_the_engine(path: Path, index: int,
                                                       dimension: Dimension) -> None:
    tariff = load_tariff(path)
    zone = ZONES[str(tariff.country_code)]
    r = tariff.elements[index].restrictions or Restrictions()
    present = {f.name for f in dataclasses.fields(r)
               if getattr(r, f.name) not in (None, frozenset())}
    assert present <= CHECKED, f"no claim check for {present - CHECKED} of {path.name}"
    texts = {lang: next(line.text for line in tariff_lines(tariff, lang)
                        if (line.dimension, line.element_index) == (dimension, index))
             for lang in LANGUAGES}
    start = a_day(zone, r.day_of_week, True)
    assert start is not None

    if r.min_duration_s is not None:
        d = timedelta(seconds=r.min_duration_s)
        for lang in LANGUAGES:
            claim = CLAIMS["min_duration_s"][lang].format(d=duration_words(r.min_duration_s, lang))
            assert claim in texts[lang], (lang, texts[lang])
        # the car stops charging halfway: it applies from start + d, not d after that
        early = session(start, start + d / 2, start + d + 10 * STEP)
        assert applies_from(tariff, zone, early, index, dimension)[0][0] == start + d
        if dimension is Dimension.PARKING_TIME:
            at_d = [s for s in early if s.t <= start + d]
            assert fee(tariff, zone, at_d, dimension) == 0
            one_more = Sample(start + d + timedelta(seconds=1), at_d[-1].energy_wh,
                              Decimal(0), Decimal(0))
            assert fee(tariff, zone, [*at_d, one_more], dimension) > 0
            # a car still charging at start + d pays it from the moment it stops
            late = session(start, start + d + 5 * STEP, start + d + 10 * STEP)
            assert applies_from(tariff, zone, late, index, dimension)[0][0] \
                == start + d + 5 * STEP
        else:
            charging = session(start, start + d + 10 * STEP, start + d + 10 * STEP)
            assert applies_from(tariff, zone, charging, index, dimension)[0][0] == start + d

    if r.max_duration_s is not None:
        d = timedelta(seconds=r.max_duration_s)
        for lang in LANGUAGES:
            claim = CLAIMS["max_duration_s"][lang].format(d=duration_words(r.max_duration_s, lang))
            assert claim in texts[lang], (lang, texts[lang])
        parked_from = start if dimension is Dimension.PARKING_TIME else start + 2 * d
        spans = applies_from(tariff, zone, session(start, parked_from, start + 2 * d),
                             index, dimension)
        assert spans[-1][1] == start + d

    if r.start_time_min is not None and r.end_time_min is not None:
        begin_h, begin_m = divmod(r.start_time_min, 60)
        end_h, end_m = divmod(r.end_time_min, 60)
        window = f"{begin_h:02d}:{begin_m:02d}-{end_h or 24 if not end_m else end_h:02d}:" \
                 f"{end_m:02d}"
        for lang in LANGUAGES:
            assert window in texts[lang], (lang, texts[lang])
        assert dimension is not Dimension.PARKING_TIME  # the examples' windows: charging
        opens = start.replace(hour=begin_h, minute=begin_m)
        spans = applies_from(tariff, zone, session(opens - 10 * STEP, opens + 10 * STEP,
                                                   opens + 10 * STEP), index, dimension)
        assert spans[0][0] == opens  # from the window's first minute, not before
        closes = opens.replace(hour=end_h, minute=end_m)
        if closes <= opens:
            closes += timedelta(days=1)
        spans = applies_from(tariff, zone, session(closes - 10 * STEP, closes + 10 * STEP,
                                                   closes + 10 * STEP), index, dimension)
        assert spans[-1][1] == closes  # until the window ends
        other = a_day(zone, r.day_of_week, False) if r.day_of_week else None
        if other is not None:  # on a day not named, never
            opens = other.replace(hour=begin_h, minute=begin_m)
            assert applies_from(tariff, zone, session(opens, opens + 10 * STEP,
                                                      opens + 10 * STEP),
                                index, dimension) == []


def test_the_demo_car_full_after_10_05_pays_the_idle_fee_from_when_it_stops_charging() -> None:
    """The tariff's words and the engine agree on the demo case: idle fee 'from 10 min after
    the start of charging'; full after 10:05, unplugged at 11:05: one minute of idle fee."""
    tariff = load_tariff(next(p for p in EXAMPLES if p.name == "de_dc_hpc_demo.json"))
    start = datetime(2026, 3, 4, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    full = start + timedelta(minutes=10, seconds=5)
    samples = session(start, start + 11 * STEP, start + 10 * STEP)  # still charging at 10:00
    samples.append(Sample(full, samples[-1].energy_wh + 200, Decimal(0), Decimal(0)))
    samples.append(Sample(full + STEP, samples[-1].energy_wh, Decimal(0), Decimal(0)))
    assert fee(tariff, "Europe/Berlin", samples, Dimension.PARKING_TIME) == Decimal("0.10")
    assert "(from 10 min after the start of charging)" in tariff_lines(tariff, "en")[1].text
