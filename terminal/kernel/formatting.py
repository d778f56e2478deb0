"""Amounts, energy, times and counts as the screen, the receipts, the service menu and
the CLIs print them, in the reader's language.

Times: `local_time(moment, zone, language)` is the receipt's "21.11.2026 10:00:00
+01:00" (the station's local time with its UTC offset); `local_clock(moment, zone,
language, today)` the short form of the service screens ("10:00:03 +01:00" on the day of
`today`, else "21.11.2026 10:00 +01:00"); `station_zone(name)` the ZoneInfo of a
`[station] timezone` (UTC for a missing or unknown name). `format_age(seconds)` is
"42 s", "3 min" or "2 h"; `counted(count, word)` "1 message", "3 messages".
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

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


def station_zone(name: object) -> tzinfo:
    """The station's time zone by its IANA name; UTC when missing or unknown."""
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            pass
    return UTC


def _offset(local: datetime) -> str:
    offset = local.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(moment: datetime, zone: tzinfo, language: str = "en") -> str:
    """The receipt's time: the local date in the language's format, the time to the
    second and the UTC offset: '21.11.2026 10:00:00 +01:00'."""
    local = moment.astimezone(zone)
    day = get_locale(language).date.format(y=local.year, m=local.month, d=local.day)
    return f"{day} {local:%H:%M:%S} {_offset(local)}"


def local_clock(moment: datetime, zone: tzinfo, language: str = "en",
                today: datetime | None = None) -> str:
    """A service screen's time: '10:00:03 +01:00' on the local day of `today`, else
    '21.11.2026 10:00 +01:00'."""
    local = moment.astimezone(zone)
    if today is not None and today.astimezone(zone).date() == local.date():
        return f"{local:%H:%M:%S} {_offset(local)}"
    day = get_locale(language).date.format(y=local.year, m=local.month, d=local.day)
    return f"{day} {local:%H:%M} {_offset(local)}"


def format_age(seconds: float | int | Decimal) -> str:
    """How long ago, rounded down: '42 s' under 2 min, '3 min' under 2 h, else '5 h'."""
    whole = max(0, int(seconds))
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    return f"{whole // 3600} h"


def counted(count: int, word: str, plural: str | None = None) -> str:
    """'1 message', '0 messages', '3 messages' (English)."""
    return f"{count} {word if count == 1 else plural or word + 's'}"
