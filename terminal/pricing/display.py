"""Price texts from a tariff for the touchscreen and receipts, in the driver's language.

Every price component becomes one line with its unit, VAT note and conditions in
plain words; min/max prices follow. Unit prices are shown incl. VAT when the
component has VAT (rounded half-up to 4 decimals, at least the currency's minor
digits); TIME and PARKING_TIME prices per minute when that is exact to two digits
beyond the minor unit, else per hour.

Receipts (terminal/receipt/) say the same things the same way with `percent` (a VAT
rate), `limit_text` (a min/max price that applies) and `shown_unit_price` /
`unit_price_text` (the unit price and its unit exactly as this price list shows them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from terminal.kernel.locales import Locale, get_locale
from terminal.kernel.money import minor_unit_exponent, round_half_up
from terminal.pricing.model import Dimension, Price, PriceComponent, Restrictions, Tariff

UNIT_PRICE_PLACES = 4
_ORDER = (Dimension.ENERGY, Dimension.TIME, Dimension.FLAT, Dimension.PARKING_TIME)


@dataclass(frozen=True)
class DisplayLine:
    """One line of price information; dimension/element None for min/max price lines."""

    text: str
    dimension: Dimension | None = None
    element_index: int | None = None


def tariff_lines(tariff: Tariff, language: str = "en") -> tuple[DisplayLine, ...]:
    """All price lines of a tariff: ENERGY first, then TIME, FLAT, PARKING_TIME, min/max price."""
    locale = get_locale(language)
    any_vat = any(c.vat is not None for e in tariff.elements for c in e.price_components)
    lines = []
    for dimension in _ORDER:
        for index, element in enumerate(tariff.elements):
            restrictions = element.restrictions or Restrictions()
            component = element.component(dimension)
            if component is None or restrictions.reservation is not None:
                continue
            text = _component_line(locale, tariff.currency, component, restrictions, any_vat)
            lines.append(DisplayLine(text, dimension, index))
    for key, limit in (("min_price", tariff.min_price), ("max_price", tariff.max_price)):
        if limit is not None:
            lines.append(DisplayLine(limit_text(locale, tariff.currency, key, limit, any_vat)))
    return tuple(lines)


def tariff_texts(tariff: Tariff, language: str = "en") -> tuple[str, ...]:
    """The texts of `tariff_lines`."""
    return tuple(line.text for line in tariff_lines(tariff, language))


def _unit_price(value: Fraction, currency: str, locale: Locale) -> str:
    exponent = minor_unit_exponent(currency)
    rounded = round_half_up(value, max(UNIT_PRICE_PLACES, exponent))
    digits = format(rounded, "f").rstrip("0").rstrip(".")
    return locale.number(Decimal(digits), exponent)


def unit_price_text(value: Decimal, currency: str, locale: Locale) -> str:
    """A unit price as the price list writes it (the receipt prints `shown_unit_price` so)."""
    return _unit_price(Fraction(value), currency, locale)


def shown_unit_price(
    price_excl_vat: Decimal, vat: Decimal | None, dimension: Dimension, currency: str
) -> tuple[Decimal, str]:
    """The unit price the price list shows and its unit ('kWh', 'session', 'minute', 'hour').

    Incl. VAT when the component has VAT, rounded half-up to 4 decimals (at least the
    currency's minor digits); a TIME or PARKING_TIME price per minute when the shown
    hourly price is exact per minute to two digits beyond the minor unit, else per hour.
    """
    price = Fraction(price_excl_vat)
    if vat is not None:
        price *= 1 + Fraction(vat) / 100
    unit = "session" if dimension is Dimension.FLAT else "kWh"
    if dimension in (Dimension.TIME, Dimension.PARKING_TIME):
        unit = "hour"
        shown_per_hour = Fraction(round_half_up(price, UNIT_PRICE_PLACES))
        if per_minute(shown_per_hour, currency) is not None:
            price, unit = price / 60, "minute"
    places = max(UNIT_PRICE_PLACES, minor_unit_exponent(currency))
    return round_half_up(price, places), unit


def per_minute(price_per_hour: Fraction, currency: str) -> Fraction | None:
    """The price per minute when it is exact to two digits beyond the currency's minor
    unit (a time price is then shown per minute), else None (shown per hour)."""
    price = price_per_hour / 60
    return price if (price * 10 ** (minor_unit_exponent(currency) + 2)).denominator == 1 \
        else None


def percent(locale: Locale, value: Decimal) -> str:
    """A VAT rate in the locale's format: '19%', '19 %', '5,5 %'."""
    return locale.percent.format(n=locale.number(value.normalize() if value else Decimal(0)))


def _component_line(
    locale: Locale, currency: str, component: PriceComponent, r: Restrictions, any_vat: bool
) -> str:
    price, per = shown_unit_price(component.price, component.vat, component.type, currency)
    unit = {"minute": locale.minute, "hour": locale.hour}.get(per, "")
    main = locale.text(
        component.type.value,
        price=unit_price_text(price, currency, locale),
        currency=currency,
        unit=unit,
    )
    if component.vat is not None:
        vat = locale.text("vat", vat=percent(locale, component.vat))
    elif any_vat:
        vat = locale.text("no_vat")
    else:
        vat = ""
    conditions = locale.phrases["condition_sep"].join(_conditions(locale, r))
    key = ("line" if vat else "line_plain") + ("_conditions" if conditions else "")
    return locale.text(key, main=main, vat=vat, conditions=conditions)


def limit_text(locale: Locale, currency: str, key: str, limit: Price, any_vat: bool) -> str:
    """The tariff's min_price or max_price (`key`) in words, incl. VAT when it has one."""
    exponent = minor_unit_exponent(currency)
    value, note = (
        (limit.incl_vat, "incl_vat") if limit.incl_vat is not None else (limit.excl_vat, "excl_vat")
    )
    price = locale.number(round_half_up(value, exponent), exponent)
    amount = locale.text("amount", price=price, currency=currency)
    if any_vat:
        amount = f"{amount} {locale.text(note)}"
    return locale.text(key, amount=amount)


def _clock(minute: int, *, is_end: bool = False) -> str:
    if is_end and minute == 0:
        return "24:00"
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _date(locale: Locale, day: date) -> str:
    return locale.date.format(y=day.year, m=day.month, d=day.day)


def _days(locale: Locale, days: frozenset[int]) -> str:
    ordered = sorted(days)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{locale.days[run[0]]}-{locale.days[run[-1]]}")
        else:
            parts.extend(locale.days[d] for d in run)
    return ", ".join(parts)


def _duration(locale: Locale, seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours} {locale.hour}")
    if minutes:
        parts.append(f"{minutes} {locale.minute}")
    if secs or not parts:
        parts.append(f"{secs} {locale.second}")
    return " ".join(parts)


def _conditions(locale: Locale, r: Restrictions) -> list[str]:
    """Restrictions in plain words, e.g. ['Mon-Fri 18:00-22:00', 'from 50 kW']."""
    found = []
    when = []
    if r.day_of_week and len(r.day_of_week) < 7:
        when.append(_days(locale, r.day_of_week))
    if r.start_time_min is not None and r.end_time_min is not None:
        when.append(
            locale.text(
                "time_window",
                start=_clock(r.start_time_min),
                end=_clock(r.end_time_min, is_end=True),
            )
        )
    elif r.start_time_min is not None:
        when.append(locale.text("from_time", time=_clock(r.start_time_min)))
    elif r.end_time_min is not None:
        when.append(locale.text("until_time", time=_clock(r.end_time_min, is_end=True)))
    if when:
        found.append(" ".join(when))
    last_day = None if r.end_date is None else r.end_date - timedelta(days=1)
    if r.start_date is not None and last_day is not None:
        found.append(
            locale.text(
                "date_range", start=_date(locale, r.start_date), end=_date(locale, last_day)
            )
        )
    elif r.start_date is not None:
        found.append(locale.text("from_date", date=_date(locale, r.start_date)))
    elif last_day is not None:
        found.append(locale.text("until_date", date=_date(locale, last_day)))
    for key, value, name in (
        ("min_kwh", r.min_kwh, "kwh"),
        ("max_kwh", r.max_kwh, "kwh"),
        ("min_power", r.min_power_kw, "kw"),
        ("max_power", r.max_power_kw, "kw"),
        ("min_current", r.min_current_a, "a"),
        ("max_current", r.max_current_a, "a"),
    ):
        if value is not None:
            found.append(
                locale.text(
                    key, **{name: locale.number(value.normalize() if value else Decimal(0))}
                )
            )
    low, high = r.min_duration_s, r.max_duration_s
    if low is not None and high is not None:
        found.append(
            locale.text("duration_range", min=_duration(locale, low), max=_duration(locale, high))
        )
    elif low is not None:
        found.append(locale.text("min_duration", d=_duration(locale, low)))
    elif high is not None:
        found.append(locale.text("max_duration", d=_duration(locale, high)))
    return found
