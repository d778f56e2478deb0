"""Tariff parsing: valid OCPI 2.2.1 tariffs load exactly; every invalid field is
reported with its JSON path, the value found and what is allowed."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from terminal.pricing import TariffError, load_tariff, parse_tariff
from terminal.pricing.model import Dimension, TariffType

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tariffs"

BASE: dict[str, Any] = {
    "currency": "EUR",
    "min_price": {"excl_vat": 1, "incl_vat": 1.19},
    "max_price": {"excl_vat": 50, "incl_vat": 59.5},
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.3, "vat": 19, "step_size": 1}],
            "restrictions": {
                "start_time": "18:00",
                "end_time": "22:00",
                "min_kwh": 1,
                "max_kwh": 5,
            },
        },
        {"price_components": [{"type": "TIME", "price": 1.2, "vat": 19, "step_size": 60}]},
    ],
}


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Copy of data with the dotted path (list indexes as numbers) set; DELETE removes it."""
    data = copy.deepcopy(data)
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    target: Any = data
    for key in keys[:-1]:
        target = target[key]
    if value is DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


class _Delete:
    def __repr__(self) -> str:  # stable test ids across pytest-xdist workers
        return "DELETE"


DELETE = _Delete()
C0 = "elements.1.price_components.0"
R0 = "elements.0.restrictions"

INVALID = [
    # (where, value, reported path, shown value, allowed contains)
    (C0 + ".price", -0.5, "elements[1].price_components[0].price", "-0.5", "a number >= 0"),
    (C0 + ".price", "0.30", "elements[1].price_components[0].price", '"0.30"', "a number"),
    (C0 + ".price", True, "elements[1].price_components[0].price", "true", "a number"),
    (
        C0 + ".type",
        "POWER",
        "elements[1].price_components[0].type",
        '"POWER"',
        "one of ENERGY, FLAT, PARKING_TIME, TIME",
    ),
    (C0 + ".step_size", 0, "elements[1].price_components[0].step_size", "0", "an integer >= 1"),
    (C0 + ".step_size", 1.5, "elements[1].price_components[0].step_size", "1.5", "an integer >= 1"),
    (C0 + ".step_size", DELETE, "elements[1].price_components[0].step_size", "null", "required"),
    (C0 + ".vat", 120, "elements[1].price_components[0].vat", "120", "<= 100"),
    (C0 + ".vat", -1, "elements[1].price_components[0].vat", "-1", ">= 0"),
    (
        C0 + ".kind",
        "x",
        "elements[1].price_components[0].kind",
        '"x"',
        "a known field: type, price",
    ),
    (R0 + ".start_time", "25:00", "elements[0].restrictions.start_time", '"25:00"', '"HH:MM"'),
    (R0 + ".start_time", "7:00", "elements[0].restrictions.start_time", '"7:00"', '"HH:MM"'),
    (R0 + ".end_time", "18:60", "elements[0].restrictions.end_time", '"18:60"', '"HH:MM"'),
    (
        R0 + ".end_time",
        "18:00",
        "elements[0].restrictions.end_time",
        '"18:00"',
        "different from start_time",
    ),
    (
        R0 + ".start_date",
        "2025-02-30",
        "elements[0].restrictions.start_date",
        '"2025-02-30"',
        '"YYYY-MM-DD"',
    ),
    (
        R0 + ".day_of_week",
        ["MONDAY", "MON"],
        "elements[0].restrictions.day_of_week[1]",
        '"MON"',
        "one of MONDAY, TUESDAY",
    ),
    (R0 + ".day_of_week", "MONDAY", "elements[0].restrictions.day_of_week", '"MONDAY"', "array"),
    (R0 + ".max_kwh", 0.5, "elements[0].restrictions.max_kwh", "0.5", "above min_kwh (1)"),
    (R0 + ".min_kwh", -1, "elements[0].restrictions.min_kwh", "-1", ">= 0"),
    (R0 + ".min_duration", -5, "elements[0].restrictions.min_duration", "-5", "an integer >= 0"),
    (R0 + ".min_kw", 50, "elements[0].restrictions.min_kw", "50", "a known field: start_time"),
    (
        R0 + ".reservation",
        "SOMETIMES",
        "elements[0].restrictions.reservation",
        '"SOMETIMES"',
        "RESERVATION, RESERVATION_EXPIRES",
    ),
    ("currency", "EUX", "currency", '"EUX"', "ISO 4217"),
    ("currency", "eur", "currency", '"eur"', "ISO 4217"),
    ("currency", DELETE, "currency", "null", "required"),
    ("elements", [], "elements", "[]", "at least 1 item"),
    ("elements", {}, "elements", "{}", "a JSON array"),
    ("elements.1.price_components", [], "elements[1].price_components", "[]", "at least 1 item"),
    ("elements.1", "x", "elements[1]", '"x"', "a JSON object"),
    ("type", "CHEAP", "type", '"CHEAP"', "AD_HOC_PAYMENT"),
    ("max_price.excl_vat", 0.5, "max_price.excl_vat", "0.5", ">= min_price.excl_vat (1)"),
    ("max_price.incl_vat", -2, "max_price.incl_vat", "-2", ">= 0"),
    ("min_price", 5, "min_price", "5", "a JSON object"),
    ("start_date_time", "yesterday", "start_date_time", '"yesterday"', "ISO 8601"),
    (
        "tariff_alt_text",
        [{"language": "deu", "text": "x"}],
        "tariff_alt_text[0].language",
        '"deu"',
        "at most 2 characters",
    ),
    ("colour", "red", "colour", '"red"', "a known field"),
]


@pytest.mark.parametrize(
    ("where", "value", "path", "shown", "allowed"),
    INVALID,
    ids=[f"{c[0]}={c[1]!r}" for c in INVALID],
)
def test_invalid_field_is_named(
    where: str, value: Any, path: str, shown: str, allowed: str
) -> None:
    with pytest.raises(TariffError) as caught:
        parse_tariff(_set(BASE, where, value))
    error = caught.value
    assert error.path == path
    assert allowed in error.allowed
    message = str(error)
    assert message.startswith(f"{path}: invalid value {shown}; allowed: ")
    assert isinstance(error, ValueError)


def test_duplicate_dimension_in_element() -> None:
    data = _set(
        BASE,
        "elements.1.price_components",
        [
            {"type": "TIME", "price": 1, "step_size": 1},
            {"type": "TIME", "price": 2, "step_size": 1},
        ],
    )
    with pytest.raises(
        TariffError, match=r"elements\[1\].price_components\[1\].type: .*one component"
    ):
        parse_tariff(data)


def test_end_date_time_before_start() -> None:
    data = {
        **BASE,
        "start_date_time": "2025-02-01T00:00:00Z",
        "end_date_time": "2025-01-01T00:00:00Z",
    }
    with pytest.raises(TariffError, match=r"end_date_time: .* after start_date_time"):
        parse_tariff(data)


@pytest.mark.parametrize(
    ("text", "shown"),
    [("{", "Expecting property name"), ('{"currency": NaN}', "NaN"), (b"\xff", "UTF-8")],
)
def test_bad_json_text(text: str | bytes, shown: str) -> None:
    with pytest.raises(TariffError) as caught:
        parse_tariff(text)
    assert caught.value.path == "<json>"
    assert shown in str(caught.value)


def test_root_must_be_an_object() -> None:
    with pytest.raises(TariffError, match="<root>: invalid value \\[\\]; allowed: a JSON object"):
        parse_tariff("[]")


def test_valid_tariff_parses_exactly_from_text() -> None:
    text = json.dumps(BASE).replace('"price": 0.3', '"price": 0.1')
    t = parse_tariff(text)
    assert t.currency == "EUR"
    assert t.elements[0].price_components[0].price == Decimal("0.1")
    r = t.elements[0].restrictions
    assert r is not None
    assert (r.start_time_min, r.end_time_min, r.min_kwh, r.max_kwh) == (1080, 1320, 1, 5)
    assert t.elements[1].component(Dimension.TIME) is not None
    assert t.elements[1].component(Dimension.ENERGY) is None
    assert t.min_price is not None and t.min_price.incl_vat == Decimal("1.19")


def test_floats_from_python_objects_go_through_their_text() -> None:
    t = parse_tariff(_set(BASE, C0 + ".price", 0.1))
    assert t.elements[1].price_components[0].price == Decimal("0.1")


def test_ocpi_fields_are_kept() -> None:
    t = parse_tariff(
        {
            **BASE,
            "country_code": "DE",
            "party_id": "EVT",
            "id": "T1",
            "type": "AD_HOC_PAYMENT",
            "tariff_alt_url": "https://example.com/t1",
            "energy_mix": {"is_green_energy": True},
            "start_date_time": "2025-01-01T00:00:00",
            "last_updated": "2025-01-01T00:00:00Z",
            "tariff_alt_text": [{"language": "en", "text": "Cheap"}],
        }
    )
    assert (t.country_code, t.party_id, t.id, t.type) == (
        "DE",
        "EVT",
        "T1",
        TariffType.AD_HOC_PAYMENT,
    )
    assert (
        t.start_date_time is not None and t.start_date_time.utcoffset() is not None
    )  # naive = UTC
    assert t.tariff_alt_text[0].text == "Cheap"


def test_flat_step_size_zero_is_accepted() -> None:
    t = parse_tariff(_set(BASE, C0, {"type": "FLAT", "price": 1, "step_size": 0}))
    assert t.elements[1].price_components[0].step_size == 0


def test_empty_day_of_week_means_every_day() -> None:
    t = parse_tariff(_set(BASE, R0 + ".day_of_week", []))
    assert t.elements[0].restrictions is not None
    assert t.elements[0].restrictions.day_of_week == frozenset()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_example_tariffs_load(path: Path) -> None:
    t = load_tariff(path)
    assert t.elements


@pytest.mark.parametrize(
    ("vats", "expected_incl"),
    [((None, None), Decimal(150)), ((Decimal(19), Decimal(19)), Decimal("178.50"))],
    ids=["no-vat", "one-rate"],
)
def test_limit_without_incl_vat_gets_the_one_its_components_imply(vats, expected_incl):
    components = [
        {"type": kind, "price": 0.5, "step_size": 1, **({"vat": v} if v is not None else {})}
        for kind, v in zip(("ENERGY", "FLAT"), vats, strict=True)
    ]
    tariff = parse_tariff({"currency": "USD", "elements": [{"price_components": components}],
                           "max_price": {"excl_vat": 150}})
    assert tariff.max_price.incl_vat == expected_incl


def test_limit_without_incl_vat_and_mixed_rates_is_refused():
    components = [{"type": "ENERGY", "price": 0.5, "step_size": 1, "vat": 19},
                  {"type": "FLAT", "price": 1, "step_size": 1}]
    with pytest.raises(TariffError) as err:
        parse_tariff({"currency": "EUR", "elements": [{"price_components": components}],
                      "min_price": {"excl_vat": 5}})
    assert err.value.path == "min_price.incl_vat"
    assert "different VAT rates" in str(err.value)
