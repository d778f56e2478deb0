"""Numbers, money, energy, power, durations and clock times as they are spoken.

espeak-ng reads digits in its voice's language, but not units or currency codes, and a
German voice reads "0,59" as "null Komma fünf neun". These functions write what the
screen shows as words for the speech output (ui/speech_texts.py), in the screen's
language, with the unit and currency words of ui/locales/*.json (`speech_*` keys):

- `spoken_amount(value, currency, language)`: "12 euros 40", "59 cents", "1 euro";
- `spoken_energy(energy_wh, language)`: "23.5 kilowatt hours" (trailing zeros dropped);
- `spoken_power(power_w, language)`, `spoken_duration(seconds, language)`;
- `spoken(text, language)`: a screen text (the daemon's tariff words included) with each
  number and its unit or currency in words: "0.59 EUR/kWh" -> "59 cents per kilowatt
  hour", "0:12:05" -> "12 minutes 5 seconds", "10:00" -> "10 o'clock", "19 %" -> "19
  percent". Card masks with the digits after them ("•••• 1234"), PIN dots and anything
  that could be a card number (terminal.kernel.redact) are taken out: they are never
  spoken.

Currencies other than the euro keep their ISO code after the amount.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from terminal.kernel.locales import get_locale
from terminal.kernel.money import round_half_up
from terminal.kernel.redact import scrub
from ui.i18n import supported, tr

CURRENCY_WORDS = {"EUR": ("eur", "cent")}  # code -> catalogue stems (speech_<stem>_one)
MASK_CHARS = "\u2022\u25cf*xX"  # •, ● (PIN dots), * and x as card masks print them
# a run of digits and mask characters (single separators between them) that holds a
# mask: a masked card number, with the digits on both sides of the mask; not inside a
# word ("Exxon")
_CARD_RUN = re.compile(r"(?<![A-Za-z])[0-9\u2022\u25cf*xX](?:[ /.\-]?[0-9\u2022\u25cf*xX])+"
                       r"(?![A-Za-z])")
_LONG_DIGITS = re.compile(r"\d(?:[ /.\-]?\d){11,}")  # 12+ digits: never spoken
# a date with a time of day (a receipt's start/stop): the time as a clock time, the
# UTC offset left out
_DATE_TIME = re.compile(r"(\d{1,2}[./-]\d{1,2}[./-]\d{2,4})[ T](\d{1,2}):(\d{2})(?::\d{2})?"
                        r"(?:\s?[+-]\d{2}:?\d{2})?")
_DURATION = re.compile(r"(?<![\d:])(\d+):([0-5]\d):([0-5]\d)(?![\d:])")
_CLOCK = re.compile(r"(?<![\d:])([01]?\d|2[0-4]):([0-5]\d)(?![\d:])")
_SPACE = "[ \u00a0\u202f]"


def _words(stem: str, count: Decimal, language: str) -> str:
    return tr(f"speech_{stem}_{'one' if count == 1 else 'many'}", language)


def _number(value: Decimal, language: str) -> str:
    """A decimal as espeak should read it: no trailing zeros, the language's decimal
    separator, no group separators ("23,5", "1500")."""
    text = format(value.normalize(), "f")
    return text.replace(".", get_locale(supported(language)).decimal_sep)


def spoken_amount(value: Decimal, currency: str, language: str) -> str:
    """'12 euros 40', '59 cents', '1 euro', '-3 euros'; a sub-cent unit price keeps its
    decimals in cents ('59,5 Cent'); other currencies: '12.4 CHF'."""
    words = CURRENCY_WORDS.get(currency.upper())
    if words is None:
        return f"{_number(value, language)} {currency}"
    major_stem, minor_stem = words
    sign = "-" if value < 0 else ""
    value = abs(value)
    major = int(value)
    minor = (value - major) * 100
    if major == 0 and minor != 0:
        return f"{sign}{_number(minor, language)} {_words(minor_stem, minor, language)}"
    major_text = f"{sign}{major} {_words(major_stem, Decimal(major), language)}"
    if minor == 0:
        return major_text
    return f"{major_text} {_number(minor, language)}"


def spoken_energy(energy_wh: Decimal, language: str) -> str:
    """Energy in kWh as the screen shows it (3 decimals), trailing zeros dropped."""
    kwh = round_half_up(Decimal(energy_wh) / 1000, 3)
    return f"{_number(kwh, language)} {_words('kwh', kwh, language)}"


def spoken_power(power_w: Decimal, language: str) -> str:
    kw = round_half_up(Decimal(power_w) / 1000, 1)
    return f"{_number(kw, language)} {tr('speech_kw', language)}"


def spoken_duration(seconds: int | Decimal, language: str) -> str:
    """'1 hour 5 minutes', '12 minutes 5 seconds', '0 seconds'."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute"), (secs, "second")]
    said = [f"{n} {_words(stem, Decimal(n), language)}" for n, stem in parts if n]
    return " ".join(said) or f"0 {_words('second', Decimal(0), language)}"


def spoken_clock(hour: int, minute: int, language: str) -> str:
    if minute == 0:
        return tr("speech_clock_full", language, hour=hour)
    return tr("speech_clock", language, hour=hour, minute=f"{minute:02d}")


def _parse(text: str, language: str) -> Decimal | None:
    locale = get_locale(supported(language))
    plain = re.sub(rf"[{re.escape(locale.group_sep)}\u202f]", "", text) \
        if locale.group_sep != locale.decimal_sep else text
    try:
        return Decimal(plain.replace(locale.decimal_sep, "."))
    except InvalidOperation:
        return None


def _number_pattern(language: str) -> str:
    locale = get_locale(supported(language))
    group = re.escape(locale.group_sep)
    decimal = re.escape(locale.decimal_sep)
    return rf"-?(?:\d{{1,3}}(?:[{group}\u202f]\d{{3}})+|\d+)(?:{decimal}\d+)?"


def spoken(text: str, language: str) -> str:
    """`text` with numbers and units in words and card data taken out (module doc)."""
    language = supported(language)
    text = re.sub(r"[\s\u00a0\u202f]+", " ", text)  # one space: no gap hides a number
    text = scrub(text)
    text = _CARD_RUN.sub(_masked_run, text)
    text = _LONG_DIGITS.sub("", text)
    text = _DATE_TIME.sub(lambda m: f"{m[1]} {m[2]}:{m[3]}", text)
    number = _number_pattern(language)
    per_stems = {"kwh": "kwh", "h": "hour", "u": "hour", "min": "minute"}

    def per_unit(m: re.Match[str]) -> str:
        value = _parse(m["n"], language)
        if value is None:
            return m.group()
        unit = _words(per_stems[m["unit"].lower()], Decimal(1), language)
        return f"{spoken_amount(value, m['cur'], language)} {tr('speech_per', language)} {unit}"

    def money(m: re.Match[str]) -> str:
        value = _parse(m["n"], language)
        return m.group() if value is None else spoken_amount(value, m["cur"], language)

    def with_unit(stem: str) -> Callable[[re.Match[str]], str]:
        def replace(m: re.Match[str]) -> str:
            value = _parse(m["n"], language)
            if value is None:
                return m.group()
            return f"{_number(value, language)} {_words(stem, value, language)}"
        return replace

    def percent(m: re.Match[str]) -> str:
        value = _parse(m["n"], language)
        return m.group() if value is None else \
            f"{_number(value, language)} {tr('speech_percent', language)}"

    def kilowatt(m: re.Match[str]) -> str:
        value = _parse(m["n"], language)
        return m.group() if value is None else \
            f"{_number(value, language)} {tr('speech_kw', language)}"

    n = rf"(?P<n>{number})"
    text = re.sub(rf"{n}{_SPACE}?(?P<cur>[A-Z]{{3}})/(?P<unit>kWh|h|u|min)\b", per_unit, text)
    text = re.sub(rf"{n}{_SPACE}?(?P<cur>[A-Z]{{3}})\b", money, text)
    text = re.sub(rf"{n}{_SPACE}?€", lambda m: money_eur(m, language), text)
    text = re.sub(rf"{n}{_SPACE}?kWh\b", with_unit("kwh"), text)
    text = re.sub(rf"{n}{_SPACE}?kW\b", kilowatt, text)
    text = _DURATION.sub(lambda m: spoken_duration(
        int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]), language), text)
    text = _CLOCK.sub(lambda m: spoken_clock(int(m[1]), int(m[2]), language), text)
    text = re.sub(rf"{n}{_SPACE}?min\b", with_unit("minute"), text)
    text = re.sub(rf"{n}{_SPACE}?(?:h|u)\b", with_unit("hour"), text)
    text = re.sub(rf"{n}{_SPACE}?s\b", with_unit("second"), text)
    text = re.sub(rf"{n}{_SPACE}?%", percent, text)
    text = text.replace("\u00a0", " ").replace("\u202f", " ").replace("·", ",")
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _masked_run(m: re.Match[str]) -> str:
    """Drop a run that holds a card mask (two or more mask characters next to a digit,
    or four or more alone); keep anything else (amounts, dates, times)."""
    run = m.group()
    masks = sum(run.count(c) for c in MASK_CHARS)
    digits = sum(c.isdigit() for c in run)
    if masks >= 4 or (masks >= 2 and digits >= 1):
        return ""
    return run


def money_eur(m: re.Match[str], language: str) -> str:
    value = _parse(m["n"], language)
    return m.group() if value is None else spoken_amount(value, "EUR", language)
