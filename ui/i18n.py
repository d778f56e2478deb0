"""The touchscreen's texts in English, German, French and Dutch, and the number formats.

Provides:
- `tr(key, language, **values)`: the text `key` of ui/locales/<language>.json with its
  `{placeholders}` filled. A language without a catalogue gets English; a key missing
  from a catalogue falls back to English too (a unit test makes sure none is missing).
- `language_name(language)`: the language's own name for its button ("Deutsch").
- `format_power(power_w, language)`: "150.0 kW" / "150,0 kW", one decimal, half-up.
- `amount` / `energy`: terminal.kernel.formatting.format_amount / format_energy, the same
  formats as the receipts ("12,34 EUR", "12,346 kWh" in German).
- `placeholders(text)`: the placeholder names of a catalogue text (for tests).

Catalogues are flat JSON objects `{key: text}` loaded once and cached. Driver texts for
card decisions (tap reason codes) are not here: they come from terminal.kernel.driver_texts.

On failure: an unknown key raises KeyError naming the key (a programming error the unit
tests catch); a catalogue file that cannot be read raises at first use.
"""

from __future__ import annotations

import json
import string
from decimal import Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path

from terminal.kernel.driver_texts import LANGUAGES
from terminal.kernel.formatting import format_amount, format_energy
from terminal.kernel.locales import get_locale
from terminal.kernel.money import round_half_up

DEFAULT_LANGUAGE = "en"
LOCALES_DIR = Path(str(files("ui").joinpath("locales")))  # package data


@cache
def catalogue(language: str) -> dict[str, str]:
    """All texts of one language (ValueError for a language without a catalogue)."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not supported; allowed: "
                         f"{', '.join(LANGUAGES)}")
    data = json.loads((LOCALES_DIR / f"{language}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{LOCALES_DIR / language}.json: expected an object of texts")
    return data


def supported(language: str | None) -> str:
    """`language` when it has a catalogue, else the default language."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE  # type: ignore[return-value]


def tr(key: str, language: str, **values: object) -> str:
    """Text `key` in `language`, placeholders filled from `values`."""
    texts = catalogue(supported(language))
    template = texts.get(key)
    if template is None:
        template = catalogue(DEFAULT_LANGUAGE).get(key)
        if template is None:
            raise KeyError(f"ui text {key!r} is not in the catalogue")
    return template.format(**values)


def placeholders(text: str) -> frozenset[str]:
    """Names of the `{placeholders}` in a text."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


def language_name(language: str) -> str:
    """The language's name in itself, for its button."""
    return tr("language_name", language)


def amount(value: Decimal, currency: str, language: str) -> str:
    """Money as on the receipt: '12,34 EUR'."""
    return format_amount(value, currency, supported(language))


def energy(energy_wh: Decimal, language: str) -> str:
    """Energy as on the receipt, kWh with 3 decimals: '12,346 kWh'."""
    return format_energy(energy_wh, supported(language))


def format_power(power_w: Decimal, language: str) -> str:
    """Power in kW with one decimal and the language's decimal separator: '150,0 kW'."""
    kw = round_half_up(Decimal(power_w) / 1000, 1)
    return f"{get_locale(supported(language)).number(kw, 1)} kW"

