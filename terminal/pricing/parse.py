"""Parse and validate an OCPI 2.2.1 Tariff from JSON into the `model` dataclasses.

Every error is a `TariffError` naming the JSON path, the value and what is allowed.
Unknown fields are errors too: a misspelt restriction would otherwise vanish and
change the price silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from terminal.kernel.money import MAX_PRICE_DECIMALS, is_currency
from terminal.pricing.errors import TariffError
from terminal.pricing.fields import MAX_INTEGER, FieldReader, join
from terminal.pricing.model import (
    DAYS_OF_WEEK,
    Dimension,
    DisplayText,
    Price,
    PriceComponent,
    Restrictions,
    Tariff,
    TariffElement,
    TariffType,
)

_READ = FieldReader(TariffError)

_TARIFF_REQUIRED = ("currency", "elements")
_TARIFF_OPTIONAL = (
    "country_code",
    "party_id",
    "id",
    "type",
    "tariff_alt_text",
    "tariff_alt_url",
    "min_price",
    "max_price",
    "start_date_time",
    "end_date_time",
    "energy_mix",
    "last_updated",
)
_RESTRICTION_FIELDS = (
    "start_time",
    "end_time",
    "start_date",
    "end_date",
    "min_kwh",
    "max_kwh",
    "min_current",
    "max_current",
    "min_power",
    "max_power",
    "min_duration",
    "max_duration",
    "day_of_week",
    "reservation",
)
_DIMENSIONS = tuple(d.value for d in Dimension)


def load_tariff(path: str | Path) -> Tariff:
    """Read and parse a tariff JSON file (OSError if it cannot be read)."""
    return parse_tariff(Path(path).read_bytes())


def parse_tariff(source: str | bytes | Mapping[str, Any]) -> Tariff:
    """Parse an OCPI 2.2.1 Tariff from JSON text or from an already decoded object."""
    data = _READ.loads(source) if isinstance(source, str | bytes) else source
    obj = _READ.obj(data, "", required=_TARIFF_REQUIRED, optional=_TARIFF_OPTIONAL)
    currency = obj["currency"]
    if not is_currency(currency):
        raise TariffError(
            "currency", currency, "an ISO 4217 currency code in upper case, e.g. EUR, USD, JPY"
        )
    elements = tuple(
        _element(item, f"elements[{i}]")
        for i, item in enumerate(_READ.array(obj["elements"], "elements", min_items=1))
    )
    tariff_type = None
    if obj.get("type") is not None:
        tariff_type = TariffType(
            _READ.choice(obj["type"], "type", tuple(t.value for t in TariffType))
        )
    min_price = _price(obj["min_price"], "min_price") if obj.get("min_price") is not None else None
    max_price = _price(obj["max_price"], "max_price") if obj.get("max_price") is not None else None
    min_price = _with_incl_vat(min_price, elements, "min_price")
    max_price = _with_incl_vat(max_price, elements, "max_price")
    _check_price_order(min_price, max_price)
    start = _optional_datetime(obj, "start_date_time")
    end = _optional_datetime(obj, "end_date_time")
    if start is not None and end is not None and end <= start:
        raise TariffError(
            "end_date_time", obj["end_date_time"], "a date-time after start_date_time"
        )
    return Tariff(
        currency=currency,
        elements=elements,
        type=tariff_type,
        min_price=min_price,
        max_price=max_price,
        start_date_time=start,
        end_date_time=end,
        tariff_alt_text=_alt_texts(obj.get("tariff_alt_text")),
        tariff_alt_url=_optional_string(obj, "tariff_alt_url", 255),
        id=_optional_string(obj, "id", 36),
        country_code=_optional_string(obj, "country_code", 2),
        party_id=_optional_string(obj, "party_id", 3),
        last_updated=_optional_datetime(obj, "last_updated"),
    )


def _optional_string(obj: Mapping[str, Any], key: str, max_length: int) -> str | None:
    value = obj.get(key)
    return None if value is None else _READ.string(value, key, max_length=max_length)


def _optional_datetime(obj: Mapping[str, Any], key: str) -> Any:
    value = obj.get(key)
    return None if value is None else _READ.timestamp(value, key, naive_is_utc=True)


def _price(value: Any, path: str) -> Price:
    obj = _READ.obj(value, path, required=("excl_vat",), optional=("incl_vat",))
    excl = _READ.amount(obj["excl_vat"], join(path, "excl_vat"))
    incl = None
    if obj.get("incl_vat") is not None:
        incl = _READ.amount(obj["incl_vat"], join(path, "incl_vat"))
    return Price(excl_vat=excl, incl_vat=incl)


def _with_incl_vat(
    limit: Price | None, elements: tuple[TariffElement, ...], path: str
) -> Price | None:
    """A limit without incl_vat gets the one its components imply: equal to excl_vat
    when no component carries VAT, excl_vat x (1 + rate/100) when all share one rate.
    With several rates the incl. VAT limit is ambiguous and must be given."""
    if limit is None or limit.incl_vat is not None:
        return limit
    rates = {c.vat for e in elements for c in e.price_components}
    if rates == {None}:
        return Price(limit.excl_vat, limit.excl_vat)
    if len(rates) == 1:
        (rate,) = rates
        assert rate is not None
        return Price(limit.excl_vat, limit.excl_vat * (1 + rate / 100))
    shown = ", ".join(sorted("none" if r is None else f"{r}%" for r in rates))
    raise TariffError(
        join(path, "incl_vat"),
        None,
        f"an amount: the components have different VAT rates ({shown}), so the "
        "limit incl. VAT cannot be derived",
    )


def _check_price_order(min_price: Price | None, max_price: Price | None) -> None:
    if min_price is None or max_price is None:
        return
    if max_price.excl_vat < min_price.excl_vat:
        raise TariffError(
            "max_price.excl_vat",
            max_price.excl_vat,
            f">= min_price.excl_vat ({min_price.excl_vat})",
        )
    if (
        min_price.incl_vat is not None
        and max_price.incl_vat is not None
        and max_price.incl_vat < min_price.incl_vat
    ):
        raise TariffError(
            "max_price.incl_vat",
            max_price.incl_vat,
            f">= min_price.incl_vat ({min_price.incl_vat})",
        )


def _alt_texts(value: Any) -> tuple[DisplayText, ...]:
    if value is None:
        return ()
    texts = []
    for i, item in enumerate(_READ.array(value, "tariff_alt_text")):
        path = f"tariff_alt_text[{i}]"
        obj = _READ.obj(item, path, required=("language", "text"), optional=())
        language = _READ.string(obj["language"], join(path, "language"), max_length=2)
        texts.append(
            DisplayText(language, _READ.string(obj["text"], join(path, "text"), max_length=512))
        )
    return tuple(texts)


def _element(value: Any, path: str) -> TariffElement:
    obj = _READ.obj(value, path, required=("price_components",), optional=("restrictions",))
    components_path = join(path, "price_components")
    components = []
    seen: dict[Dimension, int] = {}
    for i, item in enumerate(_READ.array(obj["price_components"], components_path, min_items=1)):
        component = _component(item, f"{components_path}[{i}]")
        if component.type in seen:
            raise TariffError(
                f"{components_path}[{i}].type",
                component.type.value,
                f"one component per dimension in an element"
                f" ({components_path}[{seen[component.type]}] has the same type)",
            )
        seen[component.type] = i
        components.append(component)
    restrictions = None
    if obj.get("restrictions") is not None:
        restrictions = _restrictions(obj["restrictions"], join(path, "restrictions"))
    return TariffElement(price_components=tuple(components), restrictions=restrictions)


def _component(value: Any, path: str) -> PriceComponent:
    obj = _READ.obj(value, path, required=("type", "price", "step_size"), optional=("vat",))
    dimension = Dimension(_READ.choice(obj["type"], join(path, "type"), _DIMENSIONS))
    price = _READ.amount(obj["price"], join(path, "price"))
    vat = None
    if obj.get("vat") is not None:
        vat = _READ.number(
            obj["vat"], join(path, "vat"), minimum=0, maximum=100, places=MAX_PRICE_DECIMALS
        )
    # FLAT has no unit for step_size: any integer >= 0 is accepted and ignored.
    minimum_step = 0 if dimension is Dimension.FLAT else 1
    step_size = _READ.integer(obj["step_size"], join(path, "step_size"), minimum=minimum_step)
    return PriceComponent(type=dimension, price=price, step_size=step_size, vat=vat)


def _restrictions(value: Any, path: str) -> Restrictions:
    obj = _READ.obj(value, path, required=(), optional=_RESTRICTION_FIELDS)

    def get(key: str) -> Any:
        return obj.get(key)

    def number(key: str) -> Decimal | None:
        if get(key) is None:
            return None
        return _READ.number(
            get(key), join(path, key), minimum=0, maximum=MAX_INTEGER, places=MAX_PRICE_DECIMALS
        )

    def duration(key: str) -> int | None:
        return None if get(key) is None else _READ.integer(get(key), join(path, key), minimum=0)

    start_time = (
        None
        if get("start_time") is None
        else _READ.time_of_day(get("start_time"), join(path, "start_time"))
    )
    end_time = (
        None
        if get("end_time") is None
        else _READ.time_of_day(get("end_time"), join(path, "end_time"))
    )
    if start_time is not None and start_time == end_time:
        raise TariffError(
            join(path, "end_time"),
            get("end_time"),
            "a time different from start_time (an end before the start wraps past midnight)",
        )
    start_date = (
        None
        if get("start_date") is None
        else _READ.date(get("start_date"), join(path, "start_date"))
    )
    end_date = (
        None if get("end_date") is None else _READ.date(get("end_date"), join(path, "end_date"))
    )
    days: set[int] = set()
    if get("day_of_week") is not None:
        for i, day in enumerate(_READ.array(get("day_of_week"), join(path, "day_of_week"))):
            days.add(
                DAYS_OF_WEEK.index(
                    _READ.choice(day, f"{join(path, 'day_of_week')}[{i}]", DAYS_OF_WEEK)
                )
            )
    reservation = None
    if get("reservation") is not None:
        reservation = _READ.choice(
            get("reservation"), join(path, "reservation"), ("RESERVATION", "RESERVATION_EXPIRES")
        )
    restrictions = Restrictions(
        start_time_min=start_time,
        end_time_min=end_time,
        start_date=start_date,
        end_date=end_date,
        min_kwh=number("min_kwh"),
        max_kwh=number("max_kwh"),
        min_current_a=number("min_current"),
        max_current_a=number("max_current"),
        min_power_kw=number("min_power"),
        max_power_kw=number("max_power"),
        min_duration_s=duration("min_duration"),
        max_duration_s=duration("max_duration"),
        day_of_week=frozenset(days),
        reservation=reservation,
    )
    for low, high in (
        ("start_date", "end_date"),
        ("min_kwh", "max_kwh"),
        ("min_current", "max_current"),
        ("min_power", "max_power"),
        ("min_duration", "max_duration"),
    ):
        if get(low) is not None and get(high) is not None and not get(low) < get(high):
            raise TariffError(
                join(path, high),
                get(high),
                f"a value above {low} ({get(low)}), else the element never applies",
            )
    return restrictions
