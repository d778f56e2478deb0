"""terminal.kernel.money: ISO 4217 exponents, half-up rounding, minor units, number formatting."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from terminal.kernel.money import (
    CURRENCY_EXPONENTS,
    CurrencyError,
    Money,
    format_number,
    from_minor_units,
    is_currency,
    minor_unit_exponent,
    plain,
    round_half_up,
    round_money,
    to_minor_units,
)

D = Decimal


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("EUR", 2),
        ("USD", 2),
        ("GBP", 2),
        ("CHF", 2),
        ("SEK", 2),
        ("NOK", 2),
        ("DKK", 2),
        ("PLN", 2),
        ("CZK", 2),
        ("HUF", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("CLF", 4),
    ],
)
def test_minor_unit_exponent(code: str, exponent: int) -> None:
    assert minor_unit_exponent(code) == exponent


@pytest.mark.parametrize("code", ["EUX", "eur", "", "XAU", None])
def test_unknown_currency(code: str) -> None:
    with pytest.raises(CurrencyError, match="unknown currency"):
        minor_unit_exponent(code)
    assert not is_currency(code)


def test_table_has_only_valid_codes() -> None:
    assert len(CURRENCY_EXPONENTS) > 150
    assert all(len(c) == 3 and c.isupper() for c in CURRENCY_EXPONENTS)


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        (D("1.005"), "EUR", "1.01"),
        (D("2.675"), "EUR", "2.68"),
        (D("1.004999"), "EUR", "1.00"),
        (D("-1.005"), "EUR", "-1.01"),
        (D("0.5"), "JPY", "1"),
        (D("99.5"), "JPY", "100"),
        (D("98.4999"), "JPY", "98"),
        (D("0.0005"), "KWD", "0.001"),
        (D("0.4545"), "BHD", "0.455"),
        (Fraction(1, 3), "EUR", "0.33"),
        (Fraction(2, 3), "EUR", "0.67"),
        (Fraction(1, 200), "EUR", "0.01"),
        (Fraction(-1, 200), "EUR", "-0.01"),
        (Fraction(5, 2), "JPY", "3"),
        (7, "EUR", "7.00"),
    ],
)
def test_round_money_half_up(amount: Decimal | Fraction | int, currency: str, rounded: str) -> None:
    assert str(round_money(amount, currency)) == rounded


def test_round_half_up_places() -> None:
    assert str(round_half_up(Fraction(1, 8), 2)) == "0.13"
    assert str(round_half_up(D("0.125"), 2)) == "0.13"
    assert str(round_half_up(Fraction(1, 6), 4)) == "0.1667"


def test_minor_units() -> None:
    assert to_minor_units(D("12.345"), "EUR") == 1235
    assert to_minor_units(D("779"), "JPY") == 779
    assert to_minor_units(Fraction(1, 3), "KWD") == 333
    assert from_minor_units(1235, "EUR") == D("12.35")
    assert str(from_minor_units(455, "KWD")) == "0.455"


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (D("1234567.891"), {"decimal_sep": ",", "group_sep": "."}, "1.234.567,891"),
        (D("1234.5"), {"decimal_sep": ".", "group_sep": ",", "min_places": 2}, "1,234.50"),
        (D("0.59"), {"decimal_sep": ","}, "0,59"),
        (D("-1234"), {"group_sep": "\u202f"}, "-1\u202f234"),
        (D("123"), {"group_sep": "."}, "123"),
        (D("5E+1"), {}, "50"),
        (D("0"), {"min_places": 2}, "0.00"),
        (D("1.5"), {"min_places": 0}, "1.5"),
    ],
)
def test_format_number(value: Decimal, kwargs: dict[str, object], text: str) -> None:
    assert format_number(value, **kwargs) == text  # type: ignore[arg-type]


def test_plain_has_no_exponent() -> None:
    assert plain(D("1E+3")) == "1000"
    assert plain(D("1E-7")) == "0.0000001"


def test_money_rounds_on_creation() -> None:
    money = Money(D("12.345"), "EUR")
    assert money.amount == D("12.35")
    assert money.minor_units == 1235
    assert str(money) == "12.35 EUR"
    with pytest.raises(CurrencyError):
        Money(D(1), "XXX")
