"""Which meter samples a session's price needs: the rest can go without changing a cent.

Provides `samples_needed(tariff, samples, pinned, zone, charging_threshold_w,
max_gap_s)`: per sample, True when it must stay so that pricing the kept samples gives
exactly the same `PricingResult` as pricing them all (the retention job thins old
sessions with it and checks the result by pricing both).

The engine bills the interval between two samples with the state of the first one
(which elements its power and current allow, and whether it counts as charging), and
interpolates linearly between them only where a time restriction changes or a kWh
threshold is crossed. So a sample between two kept ones may go when:
- it is not pinned (start, resume and stop readings are);
- its time lies strictly between theirs (equal times are kept: the engine does not
  bill a zero-length step);
- it has the same state as the last kept sample;
- no time-restriction change (a cut of the tariff's schedule) lies strictly between
  the two kept samples, and no kWh threshold lies in the energy between them;
- the gap between the two kept samples stays within `max_gap_s` (None: no limit), so
  a coarse load curve remains.
Energies and durations add up exactly (Decimal, integer microseconds), so billing the
merged interval once gives the same totals as billing its pieces.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from decimal import Context, Decimal
from zoneinfo import ZoneInfo

from terminal.pricing.calendar import US_PER_S, to_us
from terminal.pricing.compiled import CompiledTariff
from terminal.pricing.engine import station_zone
from terminal.pricing.model import Tariff
from terminal.pricing.session import Sample

_EXACT = Context(prec=200)


def samples_needed(tariff: Tariff, samples: Sequence[Sample], pinned: Sequence[bool],
                   zone: str | ZoneInfo = "UTC", charging_threshold_w: Decimal = Decimal(0),
                   max_gap_s: float | None = None) -> list[bool]:
    """Per sample, whether the price needs it (see the module's rules). The first and
    the last sample are always needed."""
    count = len(samples)
    keep = [True] * count
    if count <= 2:
        return keep
    compiled = CompiledTariff(tariff, station_zone(zone), to_us(samples[0].t))
    times = [to_us(sample.t) for sample in samples]
    e0 = samples[0].energy_wh
    energies = [_EXACT.subtract(sample.energy_wh, e0) for sample in samples]
    states = [(compiled.sample_mask(s.power_w, s.current_a), s.power_w > charging_threshold_w)
              for s in samples]
    thresholds = compiled.energy_th
    max_gap_us = None if max_gap_s is None else int(max_gap_s * US_PER_S)
    cut_pos = 0
    anchor = 0
    for i in range(1, count - 1):
        t_a, t_b = times[anchor], times[i + 1]
        while compiled.cuts.cut(cut_pos) <= t_a:
            cut_pos += 1
        k = bisect_right(thresholds, energies[anchor])
        droppable = (
            not pinned[i]
            and t_a < times[i] < t_b
            and states[i] == states[anchor]
            and compiled.cuts.cut(cut_pos) >= t_b
            and not (k < len(thresholds) and thresholds[k] <= energies[i + 1])
            and (max_gap_us is None or t_b - t_a <= max_gap_us)
        )
        if droppable:
            keep[i] = False
        else:
            anchor = i
    return keep
