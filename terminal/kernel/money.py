"""Money: ISO 4217 currencies, half-up rounding to the minor unit, number formatting.

The project's one money module. Amounts are `decimal.Decimal` (or exact
`fractions.Fraction` inside calculations), never float. Everything that shows,
prints, stores or sends an amount rounds it here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

from terminal.kernel.redact import shown

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


# ---- bounds: the largest numbers the terminal handles ------------------------------------

MAX_AMOUNT = Decimal(1_000_000_000)
"""The largest amount (in the currency's major unit) the terminal accepts anywhere: a
cost cap, a hold, a price limit or a unit price. Far above any charging session, and
small enough that every total, sum and rounding stays exact in Decimal arithmetic."""

MAX_PRICE_DECIMALS = 6
"""The most decimals of an amount that is not rounded to the minor unit (a unit price
such as 0.6639 EUR/kWh, or an amount without a known currency)."""

MAX_ENERGY_WH = Decimal(1_000_000_000)
"""The largest energy in Wh (1 GWh) the terminal accepts: an energy cap or a reading."""

_MAX_TEXT_CHARS = 40
_MAX_INT_BITS = 133  # about 40 digits; checked without converting a huge int to text


class AmountError(ValueError):
    """An amount that is not a finite number within the bounds; names the field."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.allowed = allowed
        huge = isinstance(value, int) and value.bit_length() > _MAX_INT_BITS
        self.reason = f"expected {allowed}, got {'a huge integer' if huge else shown(value)}"
        """The message without the field name."""
        super().__init__(f"{field}: {self.reason}")


def check_amount(
    value: object,
    field: str,
    *,
    currency: str | None = None,
    places: int | None = None,
    zero_ok: bool = False,
    maximum: Decimal = MAX_AMOUNT,
) -> Decimal:
    """`value` (Decimal, int or text) as a bounded Decimal; AmountError naming `field`.

    Finite, above 0 (or at least 0 with `zero_ok`), at most `maximum` (MAX_AMOUNT by
    default), with at most `places` decimals: the currency's minor-unit digits when
    `currency` is given, else MAX_PRICE_DECIMALS. Floats are refused (not exact).
    """
    if places is None:
        places = MAX_PRICE_DECIMALS if currency is None else minor_unit_exponent(currency)
    allowed = (f"a number {'from 0' if zero_ok else 'above 0'} up to {plain(maximum)} "
               f"with at most {places} decimals")
    number: Decimal | None = None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value) if value.bit_length() <= _MAX_INT_BITS else None
    elif isinstance(value, str) and len(value) <= _MAX_TEXT_CHARS:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = None
    if (
        number is None
        or not number.is_finite()
        or (number < 0 if zero_ok else number <= 0)
        or number > maximum
        or -number.as_tuple().exponent > places  # type: ignore[operator]
    ):
        raise AmountError(field, value, allowed)
    return number


def check_energy_wh(value: object, field: str, *, zero_ok: bool = False) -> Decimal:
    """An energy in Wh: like check_amount, up to MAX_ENERGY_WH with MAX_PRICE_DECIMALS."""
    return check_amount(value, field, zero_ok=zero_ok, maximum=MAX_ENERGY_WH)


def optional_amount(text: str, field: str = "amount") -> Decimal | None:
    """An amount from config text; "" means none (AmountError naming `field` if bad)."""
    return check_amount(text, field) if text else None


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
