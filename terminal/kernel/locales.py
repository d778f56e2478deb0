"""Languages for tariff display texts: number format and phrases, as data.

Adding a language is adding one `Locale` entry to LOCALES; display.py has no
language-specific code. Placeholders: {price} {currency} {unit} {vat} {time} {date}
{start} {end} {kwh} {kw} {a} {d} {min} {max} {amount} {main} {conditions}.

Durations (min_duration, max_duration) count from the start of the session, never from
when the car stopped charging: their phrases say so ("from 10 min after the start of
charging"), so an idle fee's line says when it really starts (docs/pricing.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from terminal.kernel.money import format_number


@dataclass(frozen=True)
class Locale:
    """Number format and phrase templates of one language."""

    code: str
    decimal_sep: str
    group_sep: str
    percent: str
    date: str
    days: tuple[str, str, str, str, str, str, str]
    hour: str
    minute: str
    second: str
    phrases: Mapping[str, str]

    def number(self, value: Decimal, min_places: int = 0) -> str:
        """A decimal in this locale's format, all digits kept."""
        return format_number(
            value, decimal_sep=self.decimal_sep, group_sep=self.group_sep, min_places=min_places
        )

    def text(self, key: str, **values: str) -> str:
        """Phrase `key` filled with `values`."""
        return self.phrases[key].format(**values)


_EN = Locale(
    code="en",
    decimal_sep=".",
    group_sep=",",
    percent="{n}%",
    date="{y:04d}-{m:02d}-{d:02d}",
    days=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    hour="h",
    minute="min",
    second="s",
    phrases={
        "ENERGY": "{price} {currency}/kWh",
        "TIME": "Charging time {price} {currency}/{unit}",
        "PARKING_TIME": "Idle fee {price} {currency}/{unit}",
        "FLAT": "Session fee {price} {currency}",
        "vat": "incl. {vat} VAT",
        "no_vat": "no VAT",
        "line": "{main} {vat}",
        "line_conditions": "{main} {vat} ({conditions})",
        "line_plain": "{main}",
        "line_plain_conditions": "{main} ({conditions})",
        "condition_sep": ", ",
        "time_window": "{start}-{end}",
        "from_time": "from {time}",
        "until_time": "until {time}",
        "from_date": "from {date}",
        "until_date": "until {date}",
        "date_range": "{start} to {end}",
        "min_kwh": "from {kwh} kWh",
        "max_kwh": "up to {kwh} kWh",
        "min_power": "from {kw} kW",
        "max_power": "below {kw} kW",
        "min_current": "from {a} A",
        "max_current": "below {a} A",
        "min_duration": "from {d} after the start of charging",
        "max_duration": "for the first {d} after the start of charging",
        "duration_range": "from {min} to {max} after the start of charging",
        "min_price": "Minimum price {amount}",
        "max_price": "Maximum price {amount}",
        "incl_vat": "incl. VAT",
        "excl_vat": "excl. VAT",
        "amount": "{price} {currency}",
    },
)

_DE = Locale(
    code="de",
    decimal_sep=",",
    group_sep=".",
    percent="{n} %",
    date="{d:02d}.{m:02d}.{y:04d}",
    days=("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"),
    hour="h",
    minute="min",
    second="s",
    phrases={
        "ENERGY": "{price} {currency}/kWh",
        "TIME": "Ladezeit {price} {currency}/{unit}",
        "PARKING_TIME": "Blockiergebühr {price} {currency}/{unit}",
        "FLAT": "Startgebühr {price} {currency}",
        "vat": "inkl. {vat} MwSt.",
        "no_vat": "keine MwSt.",
        "line": "{main} {vat}",
        "line_conditions": "{main} {vat} ({conditions})",
        "line_plain": "{main}",
        "line_plain_conditions": "{main} ({conditions})",
        "condition_sep": ", ",
        "time_window": "{start}-{end}",
        "from_time": "ab {time}",
        "until_time": "bis {time}",
        "from_date": "ab {date}",
        "until_date": "bis {date}",
        "date_range": "{start} bis {end}",
        "min_kwh": "ab {kwh} kWh",
        "max_kwh": "bis {kwh} kWh",
        "min_power": "ab {kw} kW",
        "max_power": "unter {kw} kW",
        "min_current": "ab {a} A",
        "max_current": "unter {a} A",
        "min_duration": "ab {d} nach Ladebeginn",
        "max_duration": "in den ersten {d} nach Ladebeginn",
        "duration_range": "von {min} bis {max} nach Ladebeginn",
        "min_price": "Mindestpreis {amount}",
        "max_price": "Höchstpreis {amount}",
        "incl_vat": "inkl. MwSt.",
        "excl_vat": "zzgl. MwSt.",
        "amount": "{price} {currency}",
    },
)

_FR = Locale(
    code="fr",
    decimal_sep=",",
    group_sep="\u202f",
    percent="{n}\u202f%",
    date="{d:02d}/{m:02d}/{y:04d}",
    days=("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."),
    hour="h",
    minute="min",
    second="s",
    phrases={
        "ENERGY": "{price} {currency}/kWh",
        "TIME": "Temps de charge {price} {currency}/{unit}",
        "PARKING_TIME": "Frais d'occupation {price} {currency}/{unit}",
        "FLAT": "Frais de session {price} {currency}",
        "vat": "TVA {vat} incluse",
        "no_vat": "sans TVA",
        "line": "{main} {vat}",
        "line_conditions": "{main} {vat} ({conditions})",
        "line_plain": "{main}",
        "line_plain_conditions": "{main} ({conditions})",
        "condition_sep": ", ",
        "time_window": "{start}-{end}",
        "from_time": "à partir de {time}",
        "until_time": "jusqu'à {time}",
        "from_date": "à partir du {date}",
        "until_date": "jusqu'au {date}",
        "date_range": "du {start} au {end}",
        "min_kwh": "à partir de {kwh} kWh",
        "max_kwh": "jusqu'à {kwh} kWh",
        "min_power": "à partir de {kw} kW",
        "max_power": "moins de {kw} kW",
        "min_current": "à partir de {a} A",
        "max_current": "moins de {a} A",
        "min_duration": "à partir de {d} après le début de la charge",
        "max_duration": "pendant les {d} suivant le début de la charge",
        "duration_range": "de {min} à {max} après le début de la charge",
        "min_price": "Prix minimum {amount}",
        "max_price": "Prix maximum {amount}",
        "incl_vat": "TTC",
        "excl_vat": "HT",
        "amount": "{price} {currency}",
    },
)

_NL = Locale(
    code="nl",
    decimal_sep=",",
    group_sep=".",
    percent="{n}%",
    date="{d:02d}-{m:02d}-{y:04d}",
    days=("ma", "di", "wo", "do", "vr", "za", "zo"),
    hour="u",
    minute="min",
    second="s",
    phrases={
        "ENERGY": "{price} {currency}/kWh",
        "TIME": "Laadtijd {price} {currency}/{unit}",
        "PARKING_TIME": "Blokkeertarief {price} {currency}/{unit}",
        "FLAT": "Starttarief {price} {currency}",
        "vat": "incl. {vat} btw",
        "no_vat": "geen btw",
        "line": "{main} {vat}",
        "line_conditions": "{main} {vat} ({conditions})",
        "line_plain": "{main}",
        "line_plain_conditions": "{main} ({conditions})",
        "condition_sep": ", ",
        "time_window": "{start}-{end}",
        "from_time": "vanaf {time}",
        "until_time": "tot {time}",
        "from_date": "vanaf {date}",
        "until_date": "t/m {date}",
        "date_range": "{start} t/m {end}",
        "min_kwh": "vanaf {kwh} kWh",
        "max_kwh": "tot {kwh} kWh",
        "min_power": "vanaf {kw} kW",
        "max_power": "onder {kw} kW",
        "min_current": "vanaf {a} A",
        "max_current": "onder {a} A",
        "min_duration": "vanaf {d} na het begin van het laden",
        "max_duration": "de eerste {d} na het begin van het laden",
        "duration_range": "van {min} tot {max} na het begin van het laden",
        "min_price": "Minimumprijs {amount}",
        "max_price": "Maximumprijs {amount}",
        "incl_vat": "incl. btw",
        "excl_vat": "excl. btw",
        "amount": "{price} {currency}",
    },
)

LOCALES: dict[str, Locale] = {locale.code: locale for locale in (_EN, _DE, _FR, _NL)}
"""Supported display languages by ISO 639-1 code."""


def get_locale(language: str) -> Locale:
    """Locale of an ISO 639-1 code or a tag like 'de-DE'; ValueError if unsupported."""
    code = language.replace("_", "-").split("-")[0].lower() if isinstance(language, str) else ""
    try:
        return LOCALES[code]
    except KeyError:
        raise ValueError(
            f"display language {language!r} is not supported; allowed: {', '.join(sorted(LOCALES))}"
        ) from None
