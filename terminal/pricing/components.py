"""A tariff without some of its price dimensions: what a session is billed by when a
dimension cannot be measured lawfully (docs/pricing.md, "Signed metering").

Provides `without_dimensions(tariff, dimensions) -> Tariff`: every price component of
those dimensions removed from every element (so no later element takes its place: in
OCPI the first active element that has a dimension prices it); restrictions and the
other components kept; an element left with no component removed. Removing ENERGY also
drops the tariff's min_price (a minimum is not a measured quantity and would bill the
missing energy in another form). Removing components never changes which element
prices another dimension: the active element of a dimension is the first whose
restrictions hold among those that have a component of it (docs/pricing.md, rule 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from terminal.pricing.model import Dimension, Tariff

TIME_BASED: frozenset[Dimension] = frozenset({Dimension.TIME, Dimension.PARKING_TIME})
"""What an untrusted clock cannot bill (docs/pricing.md, "Untrusted clock")."""


def without_dimensions(tariff: Tariff, dimensions: Iterable[Dimension]) -> Tariff:
    """The tariff without the components of `dimensions` (itself when it has none)."""
    dropped = frozenset(dimensions)
    if not any(c.type in dropped for e in tariff.elements for c in e.price_components):
        return tariff
    elements = []
    for element in tariff.elements:
        kept = tuple(c for c in element.price_components if c.type not in dropped)
        if kept:
            elements.append(replace(element, price_components=kept))
    min_price = None if Dimension.ENERGY in dropped else tariff.min_price
    return replace(tariff, elements=tuple(elements), min_price=min_price)
