"""The untrusted-clock fallback: a session is billed without its time-based components.

Under German Eichrecht a price that depends on time needs a trusted clock. While the
signing meter's clock (its OCMF time status is not S) or the terminal's clock (not
NTP-synchronised) is not trusted at the session's start or end, the session is billed
without TIME and PARKING_TIME (charging time and parking time are not billed); energy
and flat fees are billed as usual, and the receipt says `UNTRUSTED_CLOCK_NOTE`
(docs/pricing.md, "Untrusted clock").

Provides:
- `clock_trusted(*synced)`: True only when every clock reading given is True (None,
  "could not be read", counts as not synchronised);
- `without_time_components(tariff) -> (tariff, Dropped)`: the tariff with the TIME and
  PARKING_TIME components removed from every element (energy and flat components, every
  restriction, the validity window and min/max price kept; an element left with no
  component removed), and what was dropped;
- `tariff_for_clock(tariff, trusted)`: the tariff unchanged when trusted, else as above.

Removing components never changes which element prices ENERGY or FLAT: the active
element of a dimension is the first whose restrictions hold among those that have a
component of that dimension (rule 3 of docs/pricing.md), so energy and flat amounts are
exactly those of the full tariff.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from terminal.pricing.model import Dimension, PriceComponent, Tariff

TIME_BASED: frozenset[Dimension] = frozenset({Dimension.TIME, Dimension.PARKING_TIME})
UNTRUSTED_CLOCK_NOTE = "clock not synchronised: time-based charges not billed"


@dataclass(frozen=True)
class DroppedComponent:
    """A time-based component not billed: `element_index` is its element's index in
    the original tariff."""

    element_index: int
    component: PriceComponent


@dataclass(frozen=True)
class Dropped:
    """What `without_time_components` removed. `components`: the dropped components in
    tariff order; `original_index[i]`: the index in the original tariff of element `i`
    of the returned tariff (the priced lines' `element` refers to the returned one)."""

    components: tuple[DroppedComponent, ...]
    original_index: tuple[int, ...]

    def __bool__(self) -> bool:
        return bool(self.components)

    @property
    def dimensions(self) -> frozenset[Dimension]:
        """The dimensions of the dropped components (TIME, PARKING_TIME or both)."""
        return frozenset(d.component.type for d in self.components)


def clock_trusted(*synced: bool | None) -> bool:
    """True when every clock state given (meter and terminal, at start and at end) is
    True; a clock that is not synchronised (False) or could not be read (None) is not
    trusted."""
    return all(state is True for state in synced)


def without_time_components(tariff: Tariff) -> tuple[Tariff, Dropped]:
    """The tariff without TIME and PARKING_TIME components, and what was dropped. When
    nothing is dropped the tariff itself is returned."""
    elements = []
    kept_index = []
    dropped = []
    for index, element in enumerate(tariff.elements):
        kept = tuple(c for c in element.price_components if c.type not in TIME_BASED)
        dropped += [DroppedComponent(index, c) for c in element.price_components
                    if c.type in TIME_BASED]
        if kept:
            elements.append(dataclasses.replace(element, price_components=kept))
            kept_index.append(index)
    if not dropped:
        return tariff, Dropped((), tuple(range(len(tariff.elements))))
    reduced = dataclasses.replace(tariff, elements=tuple(elements))
    return reduced, Dropped(tuple(dropped), tuple(kept_index))


def tariff_for_clock(tariff: Tariff, trusted: bool) -> tuple[Tariff, Dropped]:
    """The tariff a session is billed by: unchanged with a trusted clock, else without
    its time-based components."""
    if trusted:
        return tariff, Dropped((), tuple(range(len(tariff.elements))))
    return without_time_components(tariff)
