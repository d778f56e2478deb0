"""Price display texts in English and German (plus French and Dutch)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from terminal.kernel.formatting import format_amount, format_energy
from terminal.kernel.locales import LOCALES
from terminal.pricing import Dimension, load_tariff, tariff_lines, tariff_texts
from tests.unit.pricing.helpers import comp, element, tariff

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tariffs"
DE_HPC = load_tariff(EXAMPLES / "de_dc_hpc_adhoc.json")
NL_TOD = load_tariff(EXAMPLES / "nl_time_of_day.json")
US_CA = load_tariff(EXAMPLES / "us_ca_kwh_session_fee.json")


def test_german_hpc_tariff_in_english() -> None:
    assert tariff_texts(DE_HPC, "en") == (
        "0.59 EUR/kWh incl. 19% VAT",
        "Idle fee 0.10 EUR/min incl. 19% VAT (from 4 h after the start of charging)",
    )


def test_german_hpc_tariff_in_german() -> None:
    assert tariff_texts(DE_HPC, "de") == (
        "0,59 EUR/kWh inkl. 19 % MwSt.",
        "Blockiergebühr 0,10 EUR/min inkl. 19 % MwSt. (ab 4 h nach Ladebeginn)",
    )


def test_time_of_day_tariff() -> None:
    assert tariff_texts(NL_TOD, "en") == (
        "0.69 EUR/kWh incl. 21% VAT (Mon-Fri 17:00-21:00)",
        "0.40 EUR/kWh incl. 21% VAT (23:00-07:00)",
        "0.55 EUR/kWh incl. 21% VAT",
        "Session fee 0.35 EUR incl. 21% VAT",
    )
    assert tariff_texts(NL_TOD, "de")[0] == "0,69 EUR/kWh inkl. 21 % MwSt. (Mo-Fr 17:00-21:00)"
    assert tariff_texts(NL_TOD, "nl")[0] == "0,69 EUR/kWh incl. 21% btw (ma-vr 17:00-21:00)"
    assert tariff_texts(NL_TOD, "fr")[3] == "Frais de session 0,35 EUR TVA 21\u202f% incluse"


def test_us_tariff_without_vat_has_no_vat_note() -> None:
    assert tariff_texts(US_CA, "en") == (
        "0.48 USD/kWh",
        "Session fee 1.00 USD",
        "Idle fee 0.40 USD/min (from 45 min after the start of charging)",
        "Maximum price 150.00 USD",
    )


def test_lines_name_dimension_and_element() -> None:
    lines = tariff_lines(US_CA)
    assert [(ln.dimension, ln.element_index) for ln in lines] == [
        (Dimension.ENERGY, 0),
        (Dimension.FLAT, 0),
        (Dimension.PARKING_TIME, 1),
        (None, None),
    ]


MIXED = tariff(
    element(
        comp("ENERGY", "0.65", 19),
        comp("FLAT", "1.00"),
        day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
        start_time="18:00",
        end_time="22:00",
        min_power=50,
    ),
    element(
        comp("TIME", "1.00", 19), start_date="2025-01-01", end_date="2025-07-01", max_duration=1800
    ),
    element(
        comp("TIME", "2.40", 19),
        min_current=32,
        max_kwh="22.5",
        min_duration=3600,
        max_duration=5400,
    ),
    element(comp("PARKING_TIME", "3"), day_of_week=["SATURDAY", "SUNDAY"], start_time="08:00"),
    element(comp("ENERGY", "0.2"), reservation="RESERVATION"),
    min_price={"excl_vat": 2, "incl_vat": "2.38"},
    max_price={"excl_vat": 1000, "incl_vat": 1190},
)


def test_conditions_and_vat_notes_in_english() -> None:
    assert tariff_texts(MIXED, "en") == (
        "0.7735 EUR/kWh incl. 19% VAT (Mon-Fri 18:00-22:00, from 50 kW)",
        "Charging time 1.19 EUR/h incl. 19% VAT"
        " (2025-01-01 to 2025-06-30, for the first 30 min after the start of charging)",
        "Charging time 0.0476 EUR/min incl. 19% VAT"
        " (up to 22.5 kWh, from 32 A, from 1 h to 1 h 30 min after the start of charging)",
        "Session fee 1.00 EUR no VAT (Mon-Fri 18:00-22:00, from 50 kW)",
        "Idle fee 0.05 EUR/min no VAT (Sat, Sun from 08:00)",
        "Minimum price 2.38 EUR incl. VAT",
        "Maximum price 1,190.00 EUR incl. VAT",
    )


def test_conditions_and_vat_notes_in_german() -> None:
    assert tariff_texts(MIXED, "de") == (
        "0,7735 EUR/kWh inkl. 19 % MwSt. (Mo-Fr 18:00-22:00, ab 50 kW)",
        "Ladezeit 1,19 EUR/h inkl. 19 % MwSt."
        " (01.01.2025 bis 30.06.2025, in den ersten 30 min nach Ladebeginn)",
        "Ladezeit 0,0476 EUR/min inkl. 19 % MwSt."
        " (bis 22,5 kWh, ab 32 A, von 1 h bis 1 h 30 min nach Ladebeginn)",
        "Startgebühr 1,00 EUR keine MwSt. (Mo-Fr 18:00-22:00, ab 50 kW)",
        "Blockiergebühr 0,05 EUR/min keine MwSt. (Sa, So ab 08:00)",
        "Mindestpreis 2,38 EUR inkl. MwSt.",
        "Höchstpreis 1.190,00 EUR inkl. MwSt.",
    )


def test_window_to_midnight_and_until() -> None:
    t = tariff(
        element(comp("ENERGY", "0.3"), start_time="20:00", end_time="00:00"),
        element(comp("ENERGY", "0.2"), end_time="06:00", max_power="3.7"),
    )
    assert tariff_texts(t, "en") == (
        "0.30 EUR/kWh (20:00-24:00)",
        "0.20 EUR/kWh (until 06:00, below 3.7 kW)",
    )


def test_zero_digit_currency_prices() -> None:
    t = tariff(element(comp("ENERGY", 55, 10), comp("FLAT", 100)), currency="JPY")
    assert tariff_texts(t, "en") == ("60.5 JPY/kWh incl. 10% VAT", "Session fee 100 JPY no VAT")


def test_language_tags_and_unsupported_language() -> None:
    assert tariff_texts(DE_HPC, "de-DE") == tariff_texts(DE_HPC, "de")
    with pytest.raises(ValueError, match="'xx' is not supported; allowed: de, en, fr, nl"):
        tariff_texts(DE_HPC, "xx")


def test_all_locales_have_the_same_phrases() -> None:
    keys = {code: set(locale.phrases) for code, locale in LOCALES.items()}
    assert all(k == keys["en"] for k in keys.values())


@pytest.mark.parametrize(
    ("amount", "currency", "language", "text"),
    [
        (Decimal("1234.5"), "EUR", "de", "1.234,50 EUR"),
        (Decimal("1234.5"), "EUR", "en", "1,234.50 EUR"),
        (Decimal("12.345"), "EUR", "fr", "12,35 EUR"),
        (Decimal("778.975"), "JPY", "en", "779 JPY"),
        (Decimal("0.4545"), "KWD", "nl", "0,455 KWD"),
    ],
)
def test_format_amount(amount: Decimal, currency: str, language: str, text: str) -> None:
    assert format_amount(amount, currency, language) == text


def test_format_energy() -> None:
    assert format_energy(Decimal("12345.6"), "de") == "12,346 kWh"
    assert format_energy(Decimal(0), "en") == "0.000 kWh"
