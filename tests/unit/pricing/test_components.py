"""A tariff without some dimensions: the untrusted-clock fallback (time-based components
dropped, energy and flat kept) and signed values that cannot bill energy."""

from __future__ import annotations

from terminal.pricing.components import TIME_BASED, without_dimensions
from terminal.pricing.model import Dimension, Restrictions, Tariff
from tests.unit.pricing.helpers import D, comp, element, price, session, tariff


def full_tariff():
    """el 0: ENERGY 0.40 + TIME 3.00/h, 18:00-22:00; el 1: ENERGY 0.30 + TIME 6.00/h +
    PARKING_TIME 12.00/h + FLAT 1.00; el 2: TIME only, from 50 kW. All 19 % VAT."""
    return tariff(
        element(comp("ENERGY", "0.40", "19"), comp("TIME", "3.00", "19"),
                start_time="18:00", end_time="22:00"),
        element(comp("ENERGY", "0.30", "19"), comp("TIME", "6.00", "19"),
                comp("PARKING_TIME", "12.00", "19", step=60), comp("FLAT", "1.00", "19")),
        element(comp("TIME", "9.00", "19"), min_power="50"),
        min_price={"excl_vat": "0.50"}, max_price={"excl_vat": "100"},
    )


def without_time_components(t: Tariff) -> Tariff:
    return without_dimensions(t, TIME_BASED)


def evening():
    """17:30-18:30 UTC charging 11 kW (11 kWh), parked until 19:00."""
    return session("2025-01-06T17:30:00Z", [(0, 0, 11000), (3600, 11000, 0)], 5400)


def test_the_full_tariff_bills_energy_time_parking_and_flat():
    result = price(full_tariff(), evening())
    # ENERGY 5.5 kWh x 0.30 + 5.5 kWh x 0.40 = 3.85; TIME 0.5 h x 6 + 0.5 h x 3 = 4.50;
    # PARKING_TIME 0.5 h x 12 = 6.00; FLAT 1.00: 15.35, incl. 19 % 18.2665
    assert result.total.excl_vat == D("15.35")
    assert result.total.incl_vat == D("18.27")
    assert result.dimension(Dimension.TIME).excl_vat == D("4.50")
    assert result.dimension(Dimension.PARKING_TIME).excl_vat == D("6.00")


def test_without_time_components_bills_only_energy_and_flat():
    reduced = without_time_components(full_tariff())
    result = price(reduced, evening())
    # ENERGY 3.85 + FLAT 1.00 = 4.85, incl. 19 % 5.7715
    assert result.total.excl_vat == D("4.85")
    assert result.total.incl_vat == D("5.77")
    assert result.dimension(Dimension.ENERGY).excl_vat == D("3.85")
    assert result.dimension(Dimension.FLAT).excl_vat == D("1.00")
    assert result.dimension(Dimension.TIME).excl_vat == D("0.00")
    assert result.dimension(Dimension.PARKING_TIME).excl_vat == D("0.00")
    assert {line.dimension for line in result.lines} == {Dimension.ENERGY, Dimension.FLAT}
    assert result.charging_time_s == D("3600") and result.parking_time_s == D("1800")


def test_energy_and_flat_amounts_are_those_of_the_full_tariff():
    full = price(full_tariff(), evening())
    reduced = price(without_time_components(full_tariff()), evening())
    for dimension in (Dimension.ENERGY, Dimension.FLAT):
        assert reduced.dimension(dimension) == full.dimension(dimension)


def test_restrictions_validity_and_limits_are_kept_and_time_only_elements_removed():
    original = full_tariff()
    reduced = without_time_components(original)
    assert len(reduced.elements) == 2  # el 2 had only TIME
    assert reduced.elements[0].restrictions == original.elements[0].restrictions
    assert reduced.elements[0].restrictions == Restrictions(start_time_min=18 * 60,
                                                            end_time_min=22 * 60)
    assert reduced.elements[1].restrictions == original.elements[1].restrictions is None
    assert [c.type for c in reduced.elements[0].price_components] == [Dimension.ENERGY]
    assert [c.type for c in reduced.elements[1].price_components] == [Dimension.ENERGY,
                                                                      Dimension.FLAT]
    assert reduced.elements[1].price_components == (original.elements[1].price_components[0],
                                                    original.elements[1].price_components[3])
    assert (reduced.min_price, reduced.max_price, reduced.currency) == (
        original.min_price, original.max_price, original.currency)


def test_the_energy_price_still_follows_the_time_of_day_restriction():
    reduced = without_time_components(full_tariff())
    result = price(reduced, evening())
    energy = [(line.element_index, line.billed_quantity, line.excl_vat)
              for line in result.lines if line.dimension is Dimension.ENERGY]
    assert sorted(energy) == [(0, D("5.500"), D("2.20")), (1, D("5.500"), D("1.65"))]


def test_a_tariff_of_time_components_costs_nothing_but_its_flat_fee():
    time_tariff = tariff(
        element(comp("TIME", "6.00", "19"), comp("FLAT", "2.00", "19"), max_power="50"),
        element(comp("TIME", "9.00", "19"), comp("PARKING_TIME", "12.00", "19")),
    )
    # 11 kW is below 50 kW: TIME 1 h x 6.00 (el 0), PARKING_TIME 0.5 h x 12.00 (el 1),
    # FLAT 2.00 (el 0): 14.00
    assert price(time_tariff, evening()).total.excl_vat == D("14.00")
    reduced = without_time_components(time_tariff)
    assert len(reduced.elements) == 1
    assert reduced.elements[0].restrictions == time_tariff.elements[0].restrictions
    result = price(reduced, evening())
    assert result.total.excl_vat == D("2.00")
    assert result.total.incl_vat == D("2.38")
    assert [line.dimension for line in result.lines] == [Dimension.FLAT]


def test_a_tariff_of_only_time_components_costs_nothing():
    reduced = without_time_components(
        tariff(element(comp("TIME", "6.00", "19")), element(comp("PARKING_TIME", "12.00"))))
    assert reduced.elements == ()
    result = price(reduced, evening())
    assert (result.total.excl_vat, result.total.incl_vat) == (D("0.00"), D("0.00"))
    assert result.lines == ()


def test_a_tariff_without_time_components_is_returned_as_it_is():
    energy_only = tariff(element(comp("ENERGY", "0.30", "19"), comp("FLAT", "1")))
    assert without_time_components(energy_only) is energy_only


def test_without_energy_bills_time_and_flat_and_drops_the_minimum():
    reduced = without_dimensions(full_tariff(), [Dimension.ENERGY])
    assert reduced.min_price is None and reduced.max_price == full_tariff().max_price
    result = price(reduced, evening())
    # TIME 4.50 + PARKING_TIME 6.00 + FLAT 1.00 = 11.50, incl. 19 % 13.685
    assert result.total.excl_vat == D("11.50")
    assert result.dimension(Dimension.ENERGY).excl_vat == D("0.00")
    assert result.dimension(Dimension.TIME) == price(full_tariff(), evening()).dimension(
        Dimension.TIME)
