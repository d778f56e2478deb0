"""Amounts and energy as the screen and the receipts print them, in the driver's language."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from terminal.kernel.locales import get_locale
from terminal.kernel.money import minor_unit_exponent, round_half_up


def format_amount(amount: Decimal, currency: str, language: str = "en") -> str:
    """An amount rounded to the minor unit with the currency code: '12,34 EUR'."""
    locale = get_locale(language)
    exponent = minor_unit_exponent(currency)
    price = locale.number(round_half_up(amount, exponent), exponent)
    return locale.text("amount", price=price, currency=currency)


def format_energy(energy_wh: Decimal, language: str = "en") -> str:
    """Energy in kWh with 3 decimals (HB 44 / receipt style): '12,346 kWh'."""
    kwh = round_half_up(Fraction(energy_wh) / 1000, 3)
    return f"{get_locale(language).number(kwh, 3)} kWh"


def format_duration(seconds: Decimal | Fraction | int) -> str:
    """Seconds as h:mm:ss, rounded half-up to the second ('0:00:00' for negative values):
    the receipt's duration and the screen's elapsed time."""
    total = max(0, int(round_half_up(seconds, 0)))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
