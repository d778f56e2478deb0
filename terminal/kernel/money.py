"""Money: ISO 4217 currencies, half-up rounding to the minor unit, number formatting.

The project's one money module. Amounts are `decimal.Decimal` (or exact
`fractions.Fraction` inside calculations), never float. Everything that shows,
prints, stores or sends an amount rounds it here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

# ISO 4217 active currency codes by minor-unit exponent (list one, 2025).
_BY_EXPONENT: dict[int, str] = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: (
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD "
        "BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP "
        "ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR "
        "JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU "
        "MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR "
        "RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
        "TMT TOP TRY TTD TWD TZS UAH USD USN UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
    ),
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}

CURRENCY_EXPONENTS: dict[str, int] = {
    code: exponent for exponent, codes in _BY_EXPONENT.items() for code in codes.split()
}
"""ISO 4217 code -> number of minor-unit digits (EUR 2, JPY 0, KWD 3)."""

_CODE = re.compile(r"[A-Z]{3}")


class CurrencyError(ValueError):
    """A currency code that is not an active ISO 4217 code with a minor unit."""


def minor_unit_exponent(currency: str) -> int:
    """Number of decimal digits of the currency's minor unit; CurrencyError if unknown."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise CurrencyError(
            f"unknown currency {currency!r}; allowed: an ISO 4217 code such as "
            "EUR, USD, GBP, CHF, JPY, KWD"
        ) from None


# ISO 4217 numeric codes (EMV 5F2A) of the currencies a European charger may price in
CURRENCY_NUMERIC = {
    "EUR": "978", "GBP": "826", "CHF": "756", "USD": "840", "SEK": "752", "NOK": "578",
    "DKK": "208", "PLN": "985", "CZK": "203", "HUF": "348", "RON": "946", "BGN": "975",
    "ISK": "352", "CAD": "124",
}


def currency_numeric(currency: str) -> str:
    """The ISO 4217 numeric code; ValueError naming the currency when it is not known."""
    try:
        return CURRENCY_NUMERIC[currency]
    except KeyError:
        raise ValueError(f"currency {currency!r}: no ISO 4217 numeric code known; known: "
                         f"{', '.join(sorted(CURRENCY_NUMERIC))}") from None


def optional_amount(text: str) -> Decimal | None:
    """An amount from config text; "" means none."""
    return Decimal(text) if text else None


def is_currency(currency: object) -> bool:
    """True if `currency` is a known ISO 4217 code (upper case)."""
    return (
        isinstance(currency, str)
        and bool(_CODE.fullmatch(currency))
        and (currency in CURRENCY_EXPONENTS)
    )


def round_half_up(value: Decimal | Fraction | int, places: int) -> Decimal:
    """Round exactly to `places` decimal digits, halves away from zero."""
    if isinstance(value, Decimal):
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    exact = Fraction(value) * 10**places
    magnitude = (abs(exact.numerator) * 2 + exact.denominator) // (2 * exact.denominator)
    units = -magnitude if exact < 0 else magnitude
    return Decimal(units).scaleb(-places)


def round_money(amount: Decimal | Fraction | int, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit: 1.005 EUR -> 1.01, 99.5 JPY -> 100."""
    return round_half_up(amount, minor_unit_exponent(currency))


def to_minor_units(amount: Decimal | Fraction | int, currency: str) -> int:
    """Amount in minor units (cents) after half-up rounding: 12.345 EUR -> 1235."""
    exponent = minor_unit_exponent(currency)
    return int(round_half_up(amount, exponent).scaleb(exponent))


def from_minor_units(units: int, currency: str) -> Decimal:
    """Decimal amount of `units` minor units: 1235 EUR -> Decimal('12.35')."""
    return Decimal(units).scaleb(-minor_unit_exponent(currency))


def plain(value: Decimal) -> str:
    """Decimal as a plain string without exponent: Decimal('1E+2') -> '100'."""
    return format(value, "f")


def format_number(
    value: Decimal, *, decimal_sep: str = ".", group_sep: str = "", min_places: int = 0
) -> str:
    """Format a decimal with locale separators, keeping all its digits.

    At least `min_places` fraction digits are shown (zeros added, never rounded);
    integer digits are grouped by three with `group_sep` when it is not empty.
    format_number(Decimal('1234.5'), decimal_sep=',', group_sep='.', min_places=2)
    -> '1.234,50'.
    """
    text = plain(abs(value))
    whole, _, fraction = text.partition(".")
    fraction = fraction.ljust(min_places, "0")
    if group_sep:
        head = len(whole) % 3 or 3
        whole = group_sep.join(
            [whole[:head]] + [whole[i : i + 3] for i in range(head, len(whole), 3)]
        )
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}{decimal_sep}{fraction}" if fraction else f"{sign}{whole}"


@dataclass(frozen=True)
class Money:
    """An amount in a currency, rounded to the currency's minor unit on creation."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", round_money(self.amount, self.currency))

    @property
    def minor_units(self) -> int:
        """Amount in minor units, e.g. cents."""
        return to_minor_units(self.amount, self.currency)

    def __str__(self) -> str:
        return f"{plain(self.amount)} {self.currency}"
