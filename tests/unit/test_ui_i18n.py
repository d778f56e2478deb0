"""ui.i18n: the catalogues are complete and consistent in every language; number formats."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from terminal.kernel.formatting import format_duration
from ui.i18n import (
    LANGUAGES,
    LOCALES_DIR,
    amount,
    catalogue,
    energy,
    format_power,
    language_name,
    placeholders,
    tr,
)

OTHERS = [language for language in LANGUAGES if language != "en"]


def load_strict(language: str) -> dict[str, str]:
    """The catalogue file, refusing duplicate keys (json.loads keeps the last silently)."""
    def no_duplicates(pairs):
        keys = [key for key, _ in pairs]
        duplicates = {key for key in keys if keys.count(key) > 1}
        assert not duplicates, f"{language}.json: duplicate keys {sorted(duplicates)}"
        return dict(pairs)

    text = (LOCALES_DIR / f"{language}.json").read_text(encoding="utf-8")
    return json.loads(text, object_pairs_hook=no_duplicates)


def test_every_language_has_a_catalogue_file_and_nothing_else():
    assert sorted(p.stem for p in LOCALES_DIR.glob("*.json")) == sorted(LANGUAGES)


@pytest.mark.parametrize("language", OTHERS)
def test_same_keys_and_placeholders_as_english(language):
    english, other = load_strict("en"), load_strict(language)
    assert sorted(other) == sorted(english)
    for key, text in english.items():
        assert placeholders(other[key]) == placeholders(text), (language, key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_empty_or_padded_texts(language):
    for key, text in load_strict(language).items():
        assert text.strip(), (language, key)
        assert text == text.strip(), (language, key)
        assert "  " not in text, (language, key)


@pytest.mark.parametrize("language", OTHERS)
def test_catalogues_are_translated(language):
    english, other = catalogue("en"), catalogue(language)
    same = [key for key in english if english[key] == other[key]
            and not key.startswith("speech_")]  # unit words: "euro", "cent", "per" ...
    assert len(same) <= 3, (language, same)


def test_french_punctuation_has_a_no_break_space():
    for key, text in catalogue("fr").items():
        for mark in (":", "?", "»"):
            assert f" {mark}" not in text, key
        assert "« " not in text, key


def test_tr_fills_placeholders_and_falls_back_to_english():
    assert tr("support", "de", phone="+49 30 1") == "Hotline: +49 30 1"
    assert tr("support", "nl", phone="+31 20 1") == "Klantenservice: +31 20 1"
    assert tr("report", "xx") == "Report a problem"  # no such catalogue: English
    with pytest.raises(KeyError, match="no_such_key"):
        tr("no_such_key", "en")
    with pytest.raises(KeyError):
        tr("support", "en")  # the placeholder must be given
    with pytest.raises(ValueError, match="en, de, fr, nl"):
        catalogue("xx")


def test_language_buttons_name_themselves():
    assert [language_name(code) for code in LANGUAGES] == [
        "English", "Deutsch", "Français", "Nederlands"]


@pytest.mark.parametrize(("language", "power", "money", "kwh"), [
    ("en", "150.0 kW", "1,234.50 EUR", "12.346 kWh"),
    ("de", "150,0 kW", "1.234,50 EUR", "12,346 kWh"),
    ("fr", "150,0 kW", "1\u202f234,50 EUR", "12,346 kWh"),
    ("nl", "150,0 kW", "1.234,50 EUR", "12,346 kWh"),
])
def test_numbers_per_language(language, power, money, kwh):
    assert format_power(Decimal("149950"), language) == power  # half-up to one decimal
    assert amount(Decimal("1234.5"), "EUR", language) == money
    assert energy(Decimal("12345.6"), language) == kwh
    assert energy(Decimal(0), language) == ("0.000 kWh" if language == "en" else "0,000 kWh")


def test_power_and_elapsed_formats():
    assert format_power(Decimal("0"), "en") == "0.0 kW"
    assert format_power(Decimal("7349"), "en") == "7.3 kW"
    assert format_power(Decimal("1234567"), "de") == "1.234,6 kW"
    assert format_duration(0) == "0:00:00"
    assert format_duration(59) == "0:00:59"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(36000 + 61) == "10:01:01"
    assert format_duration(-5) == "0:00:00"
