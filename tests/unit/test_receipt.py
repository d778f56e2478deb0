"""terminal.receipt: content, VAT per rate (gross), capped charge, languages, checks."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from terminal.kernel.locales import LOCALES
from terminal.pricing import (
    PricingResult,
    RunningPricer,
    Sample,
    load_tariff,
    price_session,
)
from terminal.pricing.model import Tariff
from terminal.pricing.result import Amount
from terminal.receipt import (
    STOP_REASONS,
    WIDTH,
    Receipt,
    ReceiptFacts,
    RefundLine,
    build_receipt,
    render_text,
)
from tests.unit.pricing.helpers import at, comp, element, session, tariff

D = Decimal
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tariffs"
DE_HPC = load_tariff(EXAMPLES / "de_dc_hpc_adhoc.json")
US_CA = load_tariff(EXAMPLES / "us_ca_kwh_session_fee.json")
START = "2025-03-01T10:00:00Z"
BERLIN = "Europe/Berlin"
OCMF = (
    'OCMF|{"FV":"1.0","GI":"DCM1","GS":"0012345","PG":"T1","RD":[{"TM":'
    '"2025-03-01T11:00:00,000+0100 S","TX":"B","RV":12345.678,"RU":"kWh"}]}'
    '|{"SD":"3045022100AB"}'
)
URL = "https://receipts.example.com/r/S-2025-000123?k=3f9a1c2d"


def facts(**changes: Any) -> ReceiptFacts:
    """Facts of the DE HPC session: 12345678 -> 12390123 Wh, 16000 s, Visa card."""
    base: dict[str, Any] = {
        "session_id": "S-2025-000123",
        "operator": "EVTerm Charging GmbH",
        "station_id": "DE*EVT*E0001*1",
        "timezone": BERLIN,
        "started_at": at(START),
        "stopped_at": at(START) + timedelta(seconds=16000),
        "meter_serial": "DCM1-0012345",
        "meter_start_wh": D(12345678),
        "meter_stop_wh": D(12390123),
        "stop_reason": "EVDisconnected",
        "payment_method": "card",
        "card_scheme": "Visa",
        "card_last4": "0119",
        "payment_reference": "PSP-8815329842815468",
        "authorised_amount": D("50.00"),
        "receipt_url": URL,
        "ocmf": OCMF,
    }
    base.update(changes)
    return ReceiptFacts(**base)


def de_result() -> PricingResult:
    """DE HPC tariff: 44.445 kWh in 30 min, then idle until 16000 s (27 min idle fee)."""
    return price_session(
        DE_HPC,
        session(START, [(0, 12345678, 150000), (1800, 12390123, 0)], stop_after_s=16000),
        BERLIN,
    )


def de_receipt(language: str = "en", **changes: Any) -> Receipt:
    return build_receipt(facts(**changes), DE_HPC, de_result(), language)


def simple(t: Tariff, energy_wh: int, seconds: int = 600, **changes: Any) -> Receipt:
    """A session on `t` charging `energy_wh` from a zero meter, stopped at `seconds`."""
    language = changes.pop("language", "en")
    result = price_session(t, session(START, [(0, 0, 50000), (seconds, energy_wh, 0)]), BERLIN)
    found = {
        "meter_start_wh": D(0),
        "meter_stop_wh": D(energy_wh),
        "stopped_at": at(START) + timedelta(seconds=seconds),
        "authorised_amount": None,
    }
    found.update(changes)
    return build_receipt(facts(**found), t, result, language)


def row(label: str, value: str) -> str:
    """A text line with `value` right-aligned to the receipt width."""
    return label + value.rjust(WIDTH - len(label))


def assert_narrow(text: str) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_wide, too_wide


# Content --------------------------------------------------------------------------------


def test_english_receipt_shows_every_field_a_receipt_needs() -> None:
    receipt = de_receipt()
    assert receipt.to_text() == (
        "Charging receipt\n"
        "EVTerm Charging GmbH\n"
        "Station                     DE*EVT*E0001*1\n"
        "Session                      S-2025-000123\n"
        "Tariff                   DE-HPC-ADHOC-2025\n"
        "Start           2025-03-01 11:00:00 +01:00\n"
        "Stop            2025-03-01 15:26:40 +01:00\n"
        "Duration                           4:26:40\n"
        "------------------------------------------\n"
        "Meter                         DCM1-0012345\n"
        "Meter start                 12,345.678 kWh\n"
        "Meter stop                  12,390.123 kWh\n"
        "Energy delivered                44.445 kWh\n"
        "------------------------------------------\n"
        "Prices and amounts incl. VAT\n"
        "Energy, 19% VAT\n"
        "  44.445 kWh x 0.59 EUR/kWh      26.22 EUR\n"
        "Idle fee, 19% VAT\n"
        "  0:27:00 x 0.10 EUR/min          2.70 EUR\n"
        "------------------------------------------\n"
        "Total incl. VAT                  28.92 EUR\n"
        "incl. 19% VAT 4.62 EUR of 28.92 EUR\n"
        "Net (19% VAT)                    24.30 EUR\n"
        "------------------------------------------\n"
        "The vehicle was disconnected.\n"
        "------------------------------------------\n"
        "Payment                     Visa •••• 0119\n"
        "Reference             PSP-8815329842815468\n"
        "Reserved on card                 50.00 EUR\n"
        "Charged                          28.92 EUR\n"
        "Released                         21.08 EUR\n"
        "------------------------------------------\n"
        "E-receipt\n"
        "https://receipts.example.com/r/S-2025-0001\n"
        "23?k=3f9a1c2d\n"
        "Signed meter data (OCMF)\n"
        'OCMF|{"FV":"1.0","GI":"DCM1","GS":"0012345\n'
        '","PG":"T1","RD":[{"TM":"2025-03-01T11:00:\n'
        '00,000+0100 S","TX":"B","RV":12345.678,"RU\n'
        '":"kWh"}]}|{"SD":"3045022100AB"}\n'
    )


def test_json_carries_everything_the_text_shows() -> None:
    data = de_receipt().to_json()
    assert data == {
        "schema_version": 2,
        "language": "en",
        "operator": "EVTerm Charging GmbH",
        "station_id": "DE*EVT*E0001*1",
        "session_id": "S-2025-000123",
        "tariff_id": "DE-HPC-ADHOC-2025",
        "timezone": "Europe/Berlin",
        "started_at": "2025-03-01T11:00:00+01:00",
        "stopped_at": "2025-03-01T15:26:40+01:00",
        "duration_s": "16000",
        "meter": {"serial": "DCM1-0012345", "start_wh": "12345678", "stop_wh": "12390123"},
        "energy_wh": "44445",
        "energy_kwh": "44.445",
        "currency": "EUR",
        "prices_incl_vat": True,
        "charges": [
            {
                "dimension": "ENERGY",
                "element": 1,
                "vat_percent": "19",
                "unit_price_excl_vat": "0.4958",
                "billed_quantity": "44.445",
                "unit": "kWh",
                "printed_quantity": "44.445",
                "printed_unit": "kWh",
                "unit_price": "0.5900",
                "amount": "26.22",
            },
            {
                "dimension": "PARKING_TIME",
                "element": 0,
                "vat_percent": "19",
                "unit_price_excl_vat": "5.042",
                "billed_quantity": "0.45",
                "unit": "h",
                "printed_quantity": "1620",
                "printed_unit": "s",
                "unit_price": "0.1000",
                "amount": "2.70",
            },
        ],
        "fees": [],
        "adjustments": [],
        "price_limit": None,
        "total": {"incl_vat": "28.92", "excl_vat": "24.30"},
        "cap": [],
        "amount_charged": "28.92",
        "charge_capped": False,
        "vat": [{"percent": "19", "gross": "28.92", "vat": "4.62", "net": "24.30"}],
        "no_vat_amount": None,
        "net_amount": "24.30",
        "stop_reason": {"code": "EVDisconnected", "text": "The vehicle was disconnected."},
        "payment": {
            "method": "card",
            "card_scheme": "Visa",
            "card_last4": "0119",
            "reference": "PSP-8815329842815468",
            "authorised_amount": "50.00",
            "reserved": "50.00",
            "charged": "28.92",
            "released": "21.08",
        },
        "refunds": [],
        "amount_refunded": "0",
        "amount_paid": "28.92",
        "receipt_url": URL,
        "ocmf": OCMF,
    }


def test_json_round_trips_through_json_dumps() -> None:
    data = de_receipt("de").to_json()
    text = json.dumps(data, ensure_ascii=False)
    assert json.loads(text) == data
    assert data["schema_version"] == 2
    assert data["language"] == "de"
    assert data["stop_reason"]["text"] == "Das Fahrzeug wurde getrennt."


def test_energy_is_the_meter_delta_with_three_decimals() -> None:
    receipt = de_receipt()
    assert receipt.energy_wh == D(44445)
    assert receipt.energy_kwh == D("44.445")
    assert row("Energy delivered", "44.445 kWh") in receipt.to_text().splitlines()


def test_energy_of_fractional_wh_readings_rounds_half_up_to_three_decimals() -> None:
    t = tariff(element(comp("ENERGY", "0.30", 19)))
    result = price_session(t, session(START, [(0, "100.25", 50000), (600, "1100.75", 0)]))
    receipt = build_receipt(
        facts(meter_start_wh=D("100.25"), meter_stop_wh=D("1100.75"), timezone="UTC"), t, result
    )
    assert receipt.energy_kwh == D("1.001")
    lines = receipt.to_text().splitlines()
    assert row("Meter start", "0.10025 kWh") in lines
    assert row("Energy delivered", "1.001 kWh") in lines


def test_times_are_station_local_with_the_utc_offset() -> None:
    summer = at("2025-07-01T10:00:00Z")
    t = tariff(element(comp("ENERGY", "0.30", 19)))
    result = price_session(t, session(summer, [(0, 0, 50000), (3661, 1000, 0)]), BERLIN)
    receipt = build_receipt(
        facts(
            started_at=summer,
            stopped_at=summer + timedelta(seconds=3661),
            meter_start_wh=D(0),
            meter_stop_wh=D(1000),
        ),
        t,
        result,
        "de",
    )
    lines = receipt.to_text().splitlines()
    assert row("Beginn", "01.07.2025 12:00:00 +02:00") in lines
    assert row("Ende", "01.07.2025 13:01:01 +02:00") in lines
    assert row("Dauer", "1:01:01") in lines
    assert receipt.to_json()["started_at"] == "2025-07-01T12:00:00+02:00"


# VAT per rate ---------------------------------------------------------------------------

TWO_RATES = tariff(element(comp("ENERGY", "0.3333", 19), comp("FLAT", "0.3333", "7")))


def test_two_vat_rates_each_with_the_vat_contained_in_its_gross_amount() -> None:
    # Gross unit prices as the price list shows them: 0.3333 x 1.19 = 0.3966 EUR/kWh,
    # 0.3333 x 1.07 = 0.3566 EUR. Lines: 1.007 x 0.3966 = 0.3994 -> 0.40 (19 %),
    # 1 x 0.3566 -> 0.36 (7 %); total 0.76 incl. VAT. VAT per rate from the gross:
    # 0.40 x 19/119 = 0.0639 -> 0.06, 0.36 x 7/107 = 0.0236 -> 0.02.
    receipt = simple(TWO_RATES, 1007)
    assert receipt.total.incl_vat == D("0.76")
    assert [(r.percent, r.gross, r.vat, r.net) for r in receipt.vat_rates] == [
        (D(7), D("0.36"), D("0.02"), D("0.34")),
        (D(19), D("0.40"), D("0.06"), D("0.34")),
    ]
    lines = receipt.to_text().splitlines()
    assert "incl. 7% VAT 0.02 EUR of 0.36 EUR" in lines
    assert row("Net (7% VAT)", "0.34 EUR") in lines
    assert "incl. 19% VAT 0.06 EUR of 0.40 EUR" in lines
    assert row("Net (19% VAT)", "0.34 EUR") in lines
    assert row("Total excl. VAT", "0.68 EUR") in lines
    assert "Session fee, 7% VAT" in lines
    assert row("  1.007 kWh x 0.3966 EUR/kWh", "0.40 EUR") in lines
    assert row("  1 x 0.3566 EUR", "0.36 EUR") in lines


@pytest.mark.parametrize("energy_wh", range(1000, 60000, 997), ids=lambda wh: f"{wh}Wh")
def test_vat_per_rate_is_contained_in_the_gross_and_adds_up_to_the_total(energy_wh: int) -> None:
    receipt = simple(TWO_RATES, energy_wh)
    amounts = receipt.amounts
    for rate in receipt.vat_rates:
        exact = rate.gross * rate.percent / (100 + rate.percent)
        assert rate.vat == exact.quantize(D("0.01"), rounding="ROUND_HALF_UP")
        assert rate.net == rate.gross - rate.vat
    assert sum((r.gross for r in receipt.vat_rates), D(0)) == receipt.amount_charged
    lines = sum((p.amount for p in amounts.lines), D(0))
    adjustments = sum((a.amount for a in amounts.adjustments), D(0))
    assert lines + adjustments == receipt.total.incl_vat
    assert all(r.vat >= 0 and r.net >= 0 for r in receipt.vat_rates)


def test_lines_without_vat_are_no_vat_applicable_not_zero_percent() -> None:
    t = tariff(element(comp("ENERGY", "0.50", 19), comp("FLAT", "1.00")))
    receipt = simple(t, 10000)
    assert [r.percent for r in receipt.vat_rates] == [D(19)]
    assert receipt.amounts.no_vat == D("1.00")
    text = receipt.to_text()
    lines = text.splitlines()
    assert "Session fee, no VAT" in lines
    assert "No VAT applicable on 1.00 EUR" in lines
    assert "incl. 19% VAT 0.95 EUR of 5.95 EUR" in lines
    assert row("Total incl. VAT", "6.95 EUR") in lines
    assert row("Total excl. VAT", "6.00 EUR") in lines
    assert "0%" not in text
    data = receipt.to_json()
    assert data["no_vat_amount"] == "1.00"
    assert data["fees"][0]["vat_percent"] is None
    assert data["vat"] == [{"percent": "19", "gross": "5.95", "vat": "0.95", "net": "5.00"}]


def test_zero_percent_vat_is_a_rate() -> None:
    t = tariff(element(comp("ENERGY", "0.50", 0)))
    receipt = simple(t, 10000)
    assert [(r.percent, r.vat) for r in receipt.vat_rates] == [(D(0), D("0.00"))]
    assert "incl. 0% VAT 0.00 EUR of 5.00 EUR" in receipt.to_text().splitlines()


def test_tariff_without_any_vat_shows_a_plain_total() -> None:
    result = price_session(
        US_CA, session(START, [(0, 0, 150000), (3600, 40000, 0)], stop_after_s=3720)
    )
    receipt = build_receipt(
        facts(
            timezone="America/Los_Angeles",
            meter_start_wh=D(0),
            meter_stop_wh=D(40000),
            stopped_at=at(START) + timedelta(seconds=3720),
            card_scheme="Mastercard",
            card_last4="4444",
            authorised_amount=None,
        ),
        US_CA,
        result,
    )
    text = receipt.to_text()
    lines = text.splitlines()
    assert "VAT" not in text
    assert row("Start", "2025-03-01 02:00:00 -08:00") in lines
    assert "Energy" in lines
    assert row("  40.000 kWh x 0.48 USD/kWh", "19.20 USD") in lines
    assert "Idle fee" in lines
    assert row("  0:02:00 x 0.40 USD/min", "0.80 USD") in lines
    assert "Session fee" in lines
    assert row("Total", "21.00 USD") in lines
    assert receipt.vat_rates == ()
    assert receipt.amounts.no_vat == D("21.00")


def test_vat_without_any_vat_rate_is_refused() -> None:
    # e.g. a one-sided max_price on a tariff without VAT: the totals disagree
    result = price_session(US_CA, session(START, [(0, 0, 150000), (600, 10000, 0)]))
    broken = dataclasses.replace(result, total=Amount(D("5.80"), D("6.00")))
    with pytest.raises(ValueError, match=r"result\.total"):
        build_receipt(
            facts(meter_start_wh=D(0), meter_stop_wh=D(10000), authorised_amount=None),
            US_CA,
            broken,
        )


def test_total_incl_vat_below_excl_vat_is_refused() -> None:
    t = tariff(element(comp("ENERGY", "0.50", 19)))
    result = price_session(t, session(START, [(0, 0, 50000), (600, 10000, 0)]))
    broken = dataclasses.replace(result, total=Amount(D("5.00"), D("4.00")))
    with pytest.raises(ValueError, match=r"total\.incl_vat"):
        build_receipt(facts(meter_start_wh=D(0), meter_stop_wh=D(10000)), t, broken)


# Price limits and the capped charge -------------------------------------------------------

MIN_PRICE = tariff(
    element(comp("ENERGY", "0.50", 19)), min_price={"excl_vat": "5.00", "incl_vat": "5.95"}
)


def test_min_price_applied_is_said_and_adds_up() -> None:
    receipt = simple(MIN_PRICE, 2000)
    assert receipt.adjustment_reason == "min_price"
    lines = receipt.to_text().splitlines()
    assert row("  2.000 kWh x 0.595 EUR/kWh", "1.19 EUR") in lines
    assert row("Minimum price applied, 19% VAT", "+4.76 EUR") in lines
    assert "(Minimum price 5.95 EUR incl. VAT)" in lines
    assert row("Total incl. VAT", "5.95 EUR") in lines
    assert "incl. 19% VAT 0.95 EUR of 5.95 EUR" in lines
    assert row("Net (19% VAT)", "5.00 EUR") in lines
    data = receipt.to_json()
    assert data["adjustments"] == [{"reason": "min_price", "vat_percent": "19", "amount": "4.76"}]
    assert data["price_limit"] == {"kind": "min_price", "excl_vat": "5.00", "incl_vat": "5.95"}


def test_min_price_in_german() -> None:
    lines = simple(MIN_PRICE, 2000, language="de").to_text().splitlines()
    assert "Mindestpreis angewendet, 19 % MwSt." in lines
    assert " " * (WIDTH - 9) + "+4,76 EUR" in lines
    assert "(Mindestpreis 5,95 EUR inkl. MwSt.)" in lines


def test_max_price_applied() -> None:
    t = tariff(
        element(comp("ENERGY", "0.50", 19)), max_price={"excl_vat": "10.00", "incl_vat": "11.90"}
    )
    receipt = simple(t, 30000)
    assert receipt.total == Amount(D("10.00"), D("11.90"))
    lines = receipt.to_text().splitlines()
    assert row("  30.000 kWh x 0.595 EUR/kWh", "17.85 EUR") in lines
    assert row("Maximum price applied, 19% VAT", "-5.95 EUR") in lines
    assert "incl. 19% VAT 1.90 EUR of 11.90 EUR" in lines


def test_min_price_on_a_session_without_energy_is_printed_and_not_charged() -> None:
    receipt = simple(MIN_PRICE, 0)
    assert receipt.amount_charged == D("0.00") and receipt.no_energy
    assert [(r.percent, r.gross, r.vat, r.net) for r in receipt.vat_rates] == [
        (D(19), D("0.00"), D("0.00"), D("0.00"))
    ]
    lines = receipt.to_text().splitlines()
    assert row("Minimum price applied, 19% VAT", "+5.95 EUR") in lines
    assert row("Not charged, 19% VAT", "-5.95 EUR") in lines  # the tariff's VAT rate


FLAT_FEE = tariff(element(comp("ENERGY", "0.50", 19), comp("FLAT", "2.00", 19)),
                  element(comp("PARKING_TIME", "6.00", 19)))
NOTHING = {"en": ("No energy was delivered: nothing is charged.", "Charged", "0.00 EUR"),
           "de": ("Es wurde keine Energie geliefert: es wird nichts berechnet.", "Belastet",
                  "0,00 EUR"),
           "fr": ("Aucune énergie n'a été fournie : rien n'est facturé.", "Débité",
                  "0,00 EUR"),
           "nl": ("Er is geen energie geleverd: er wordt niets in rekening gebracht.",
                  "Afgeschreven", "0,00 EUR")}


@pytest.mark.parametrize("language", sorted(NOTHING))
def test_no_energy_means_nothing_charged_whatever_the_tariff_priced(language: str) -> None:
    """A FLAT fee and parking time on a session that delivered 0 Wh: printed, taken off
    again, 0 charged; the card's hold shows reserved / 0.00 / reserved."""
    receipt = simple(FLAT_FEE, 0, seconds=1200, authorised_amount=D("20.00"),
                     payment_method="card", language=language)
    assert receipt.total.incl_vat > 0  # the tariff priced something
    assert receipt.amount_charged == D("0.00") and not receipt.charge_capped
    sentence, charged, zero = NOTHING[language]
    text = receipt.to_text()
    assert_narrow(text)
    lines = text.splitlines()
    assert sentence in " ".join(lines)
    assert row(charged, zero) in lines
    data = receipt.to_json()
    assert (data["amount_charged"], data["nothing_charged"], data["amount_paid"]) == (
        "0.00", True, "0.00")
    assert data["total"]["excl_vat"] is None
    assert sum(D(c["amount"]) for c in data["cap"]) == -receipt.total.incl_vat
    assert (data["payment"]["reserved"], data["payment"]["charged"],
            data["payment"]["released"]) == ("20.00", "0.00", "20.00")
    if language == "en":
        assert row("Reserved on card", "20.00 EUR") in lines
        assert row("Released", "20.00 EUR") in lines


def test_with_energy_the_flat_fee_is_charged_as_before() -> None:
    receipt = simple(FLAT_FEE, 1000, seconds=1200, authorised_amount=D("20.00"))
    assert not receipt.no_energy and "nothing_charged" not in receipt.to_json()
    assert receipt.amount_charged == receipt.total.incl_vat >= D("2.50")
    assert "nothing is charged" not in receipt.to_text()


def test_charge_is_capped_at_the_authorised_amount() -> None:
    receipt = de_receipt(authorised_amount=D("25.00"))
    assert receipt.total.incl_vat == D("28.92")
    assert receipt.amount_charged == D("25.00")
    assert receipt.charge_capped
    lines = receipt.to_text().splitlines()
    assert row("Total incl. VAT", "28.92 EUR") in lines
    assert row("Reserved on card", "25.00 EUR") in lines
    assert row("Released", "0.00 EUR") in lines
    assert row("Capped, 19% VAT", "-3.92 EUR") in lines
    assert row("Charged", "25.00 EUR") in lines
    assert "The total exceeds the authorised amount;" in lines
    # the VAT is that of the amount charged: 25.00 x 19/119 = 3.9916 -> 3.99
    assert "incl. 19% VAT 3.99 EUR of 25.00 EUR" in lines
    assert row("Net (19% VAT)", "21.01 EUR") in lines
    data = receipt.to_json()
    assert data["total"] == {"incl_vat": "28.92", "excl_vat": None}
    assert data["cap"] == [{"vat_percent": "19", "amount": "-3.92"}]
    assert data["vat"] == [{"percent": "19", "gross": "25.00", "vat": "3.99", "net": "21.01"}]
    assert data["amount_charged"] == "25.00"
    assert data["charge_capped"] is True


@pytest.mark.parametrize(
    "authorised", [None, D("28.92"), D(50)], ids=["no-authorisation", "equal", "above"]
)
def test_charge_is_the_total_when_within_the_authorised_amount(authorised: Decimal | None) -> None:
    receipt = de_receipt(authorised_amount=authorised, payment_method="rfid")
    assert receipt.amount_charged == D("28.92")
    assert not receipt.charge_capped
    assert "Charged" not in receipt.to_text()


@pytest.mark.parametrize("language", ["en", "de", "fr", "nl"])
def test_a_card_receipt_says_what_was_reserved_charged_and_released(language: str) -> None:
    from terminal.receipt.labels import LABELS

    labels = LABELS[language]
    receipt = de_receipt(language)
    lines = receipt.to_text().splitlines()
    figures = {}
    for key in ("reserved_on_card", "charged", "released"):
        [line] = [x for x in lines if x.startswith(labels[key] + " ")]
        figures[key] = line[len(labels[key]):].strip()
    # recomputable from the printed figures: released = reserved - charged
    reserved, charged, released = (D(figures[k].split()[0].replace(",", "."))
                                   for k in ("reserved_on_card", "charged", "released"))
    assert (reserved, charged, released) == (D("50.00"), D("28.92"), D("21.08"))
    assert reserved - charged == released
    payment = receipt.to_json()["payment"]
    assert (payment["reserved"], payment["charged"], payment["released"]) == (
        "50.00", "28.92", "21.08")
    assert labels["all_released"] not in receipt.to_text()


def test_authorised_amount_finer_than_the_minor_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="authorised_amount"):
        de_receipt(authorised_amount=D("25.001"))


# Languages --------------------------------------------------------------------------------


@pytest.mark.parametrize("language", sorted(LOCALES), ids=sorted(LOCALES))
def test_every_language_renders_within_42_characters(language: str) -> None:
    receipt = de_receipt(language, authorised_amount=D("25.00"))
    text = receipt.to_text()
    assert text.endswith("\n")
    assert_narrow(text)
    assert render_text(receipt) == text


def test_german_uses_decimal_comma() -> None:
    lines = de_receipt("de").to_text().splitlines()
    assert row("Geladene Energie", "44,445 kWh") in lines
    assert row("Zählerstand Beginn", "12.345,678 kWh") in lines
    assert row("  44,445 kWh x 0,59 EUR/kWh", "26,22 EUR") in lines
    assert "inkl. 19 % MwSt. 4,62 EUR von 28,92 EUR" in lines
    assert row("Netto (19 % MwSt.)", "24,30 EUR") in lines
    assert row("Gesamt inkl. MwSt.", "28,92 EUR") in lines
    assert row("Zahlung", "Visa •••• 0119") in lines


def test_french_and_dutch() -> None:
    fr = de_receipt("fr").to_text().splitlines()
    assert row("Total TTC", "28,92 EUR") in fr
    assert "dont TVA 19\u202f% 4,62 EUR sur 28,92 EUR" in fr
    assert row("HT (TVA 19\u202f%)", "24,30 EUR") in fr
    assert row("Index début", "12\u202f345,678 kWh") in fr
    nl = de_receipt("nl").to_text().splitlines()
    assert row("  0:27:00 x 0,10 EUR/min", "2,70 EUR") in nl
    assert "incl. 19% btw 4,62 EUR over 28,92 EUR" in nl
    assert row("Totaal incl. btw", "28,92 EUR") in nl


def test_language_tags_and_reprint_in_another_language() -> None:
    receipt = de_receipt("de-DE")
    assert receipt.language == "de"
    assert render_text(receipt, "en") == de_receipt("en").to_text()


@pytest.mark.parametrize("language", ["es", "", "xx-YY"], ids=["es", "empty", "xx-YY"])
def test_unknown_language_names_the_allowed_ones(language: str) -> None:
    with pytest.raises(ValueError, match="allowed: de, en, fr, nl"):
        de_receipt(language)
    with pytest.raises(ValueError, match="allowed: de, en, fr, nl"):
        render_text(de_receipt(), language)


def test_every_language_has_every_receipt_label() -> None:
    from terminal.receipt.labels import LABELS as _TEXTS

    assert set(_TEXTS) == set(LOCALES)
    keys = set(_TEXTS["en"])
    assert all(set(labels) == keys for labels in _TEXTS.values())


@pytest.mark.parametrize("reason", [*STOP_REASONS, "SoftReset"], ids=[*STOP_REASONS, "unknown"])
def test_stop_reason_is_a_sentence_in_every_language(reason: str) -> None:
    for language in sorted(LOCALES):
        sentence = de_receipt(language, stop_reason=reason).to_json()["stop_reason"]["text"]
        assert sentence.endswith(".")
        assert reason not in sentence or reason == "SoftReset"
    assert "The session ended (reason: SoftReset)." in de_receipt(stop_reason="SoftReset").to_text()


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({}, "Visa •••• 0119"),
        ({"payment_method": "rfid", "card_scheme": None, "card_last4": None}, "RFID card"),
        ({"payment_method": "app", "card_last4": "19"}, "App, Visa •••• 19"),
        ({"payment_method": "card", "card_scheme": None}, "•••• 0119"),
        ({"payment_method": "card", "card_last4": None}, "Visa"),
        (
            {"payment_method": "local", "card_scheme": None, "card_last4": None},
            "Local authorisation",
        ),
        ({"payment_method": "voucher", "card_scheme": None, "card_last4": None}, "voucher"),
    ],
    ids=["card", "rfid", "app-with-card", "card-no-scheme", "card-no-digits", "local", "other"],
)
def test_payment_method(changes: dict[str, Any], shown: str) -> None:
    line = f"Payment{shown.rjust(WIDTH - len('Payment'))}"
    assert line in de_receipt(**changes).to_text().splitlines()


# Checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "last4",
    ["01190", "4111111111111111", "12a4", "01 9", "", "١٢٣٤", 1234],
    ids=["five-digits", "pan", "letter", "space", "empty", "arabic-digits", "int"],
)
def test_card_last4_beyond_four_digits_is_refused_without_echo(last4: Any) -> None:
    with pytest.raises(ValueError, match="card_last4") as caught:
        facts(card_last4=last4)
    if isinstance(last4, str) and last4:
        assert last4 not in str(caught.value)


def test_card_scheme_with_digits_is_refused_without_echo() -> None:
    with pytest.raises(ValueError, match="card_scheme") as caught:
        facts(card_scheme="Visa 4111111111111111")
    assert "4111" not in str(caught.value)


@pytest.mark.parametrize("meter_stop_wh", [D(12390121), D(12390125)], ids=["-2Wh", "+2Wh"])
def test_energy_mismatch_is_refused(meter_stop_wh: Decimal) -> None:
    with pytest.raises(ValueError, match="total_energy_wh"):
        de_receipt(meter_stop_wh=meter_stop_wh)


@pytest.mark.parametrize("meter_stop_wh", [D(12390122), D(12390124)], ids=["-1Wh", "+1Wh"])
def test_energy_within_one_wh_is_accepted_and_the_meter_delta_shown(meter_stop_wh: Decimal) -> None:
    receipt = de_receipt(meter_stop_wh=meter_stop_wh)
    assert receipt.energy_wh == meter_stop_wh - D(12345678)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"started_at": datetime(2025, 3, 1, 10)}, "started_at"),
        ({"stopped_at": at(START) - timedelta(seconds=1)}, "stopped_at"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"meter_start_wh": 12345678.0}, "meter_start_wh"),
        ({"meter_stop_wh": D(1)}, "meter_stop_wh"),
        ({"meter_start_wh": D("NaN")}, "meter_start_wh"),
        ({"authorised_amount": D(-1)}, "authorised_amount"),
        ({"operator": " "}, "operator"),
        ({"session_id": "S-1\nS-2"}, "session_id"),
        ({"payment_reference": "REF\x1b[2J"}, "payment_reference"),
    ],
    ids=[
        "naive-start",
        "stop-before-start",
        "unknown-zone",
        "float-reading",
        "meter-going-back",
        "nan-reading",
        "negative-authorisation",
        "blank-operator",
        "newline",
        "escape",
    ],
)
def test_bad_facts_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        facts(**changes)


def test_currency_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="currency"):
        build_receipt(facts(), US_CA, de_result())


def test_long_texts_wrap_within_42_characters() -> None:
    receipt = de_receipt(
        operator="Elektromobilitäts-Infrastruktur Betriebsgesellschaft mbH & Co. KG Niederlassung",
        station_id="DE*EVT*E00000000000000000000000000000000001*1",
        payment_reference="X" * 60,
    )
    assert_narrow(receipt.to_text())


# Reproducibility ----------------------------------------------------------------------------


def test_building_twice_gives_identical_text_and_json() -> None:
    first, second = de_receipt("fr"), de_receipt("fr")
    assert first == second
    assert first.to_text() == second.to_text()
    assert json.dumps(first.to_json()) == json.dumps(second.to_json())


def test_running_pricer_and_batch_give_the_same_receipt() -> None:
    pricer = RunningPricer(DE_HPC, BERLIN)
    start = at(START)
    for seconds, energy_wh, power_w in [(0, 12345678, 150000), (900, 12370000, 150000)]:
        pricer.add_sample(Sample.of(start + timedelta(seconds=seconds), energy_wh, power_w))
    pricer.add_sample(Sample.of(start + timedelta(seconds=1800), 12390123, 0))
    running = pricer.result(start + timedelta(seconds=16000))
    batch = price_session(
        DE_HPC,
        session(
            START,
            [(0, 12345678, 150000), (900, 12370000, 150000), (1800, 12390123, 0)],
            stop_after_s=16000,
        ),
        BERLIN,
    )
    assert build_receipt(facts(), DE_HPC, running).to_text() == (
        build_receipt(facts(), DE_HPC, batch).to_text()
    )
    assert build_receipt(facts(), DE_HPC, running).to_json() == de_receipt().to_json()


# ---- refunds -----------------------------------------------------------------------------

REFUND_AT = datetime.fromisoformat("2025-03-02T09:30:00+00:00")


def test_partial_refund_shows_on_the_receipt_with_what_was_paid() -> None:
    refund = RefundLine("R-1", D("8.92"), REFUND_AT, "goodwill")
    receipt = de_receipt(refunds=(refund,))
    assert receipt.amount_refunded == D("8.92")
    lines = receipt.to_text().splitlines()
    assert row("Refund 2025-03-02", "-8.92 EUR") in lines
    assert row("Paid after refunds", "20.00 EUR") in lines
    data = receipt.to_json()
    assert data["refunds"] == [{"refund_id": "R-1", "amount": "8.92",
                                "at": "2025-03-02T10:30:00+01:00", "reason": "goodwill"}]
    assert data["amount_refunded"] == "8.92"
    assert data["amount_paid"] == "20.00"
    assert all(len(line) <= WIDTH for line in lines)


@pytest.mark.parametrize("language", ["de", "fr", "nl"])
def test_refund_lines_are_translated(language: str) -> None:
    refund = RefundLine("R-1", D("28.92"), REFUND_AT)
    text = de_receipt(language, refunds=(refund,)).to_text()
    word = {"de": "Erstattung", "fr": "Remboursement", "nl": "Terugbetaling"}[language]
    assert word in text
    assert "Refund" not in text


def test_refunds_above_the_amount_charged_are_refused() -> None:
    too_much = (RefundLine("R-1", D("20.00"), REFUND_AT), RefundLine("R-2", D("8.93"), REFUND_AT))
    with pytest.raises(ValueError, match="refunds"):
        de_receipt(refunds=too_much)


@pytest.mark.parametrize("amount", [D("0"), D("-1.00"), D("1.001")])
def test_bad_refund_amounts_are_refused_naming_the_refund(amount: Decimal) -> None:
    with pytest.raises(ValueError, match=r"refunds\[0\]\.amount"):
        de_receipt(refunds=(RefundLine("R-1", amount, REFUND_AT),))


def test_two_rates_with_min_price_cap_and_refund_every_row_per_vat_group() -> None:
    t = tariff(
        element(comp("ENERGY", "0.3333", 19), comp("FLAT", "0.3333", "7")),
        min_price={"excl_vat": "1.00", "incl_vat": "1.15"},
    )
    refund = RefundLine("R-1", D("0.30"), REFUND_AT)
    receipt = simple(t, 1007, authorised_amount=D("1.00"), refunds=(refund,))
    lines = receipt.to_text().splitlines()
    # lines 0.40 (19 %) + 0.36 (7 %) = 0.76; the minimum price adds 0.39, split 0.36:0.40
    assert row("Minimum price applied, 7% VAT", "+0.18 EUR") in lines
    assert row("Minimum price applied, 19% VAT", "+0.21 EUR") in lines
    assert row("Total incl. VAT", "1.15 EUR") in lines
    # capped at 1.00: -0.15 split 0.54:0.61
    assert row("Capped, 7% VAT", "-0.07 EUR") in lines
    assert row("Capped, 19% VAT", "-0.08 EUR") in lines
    assert row("Charged", "1.00 EUR") in lines
    # the VAT of the amount charged, per rate: 0.47 x 7/107 -> 0.03, 0.53 x 19/119 -> 0.08
    assert "incl. 7% VAT 0.03 EUR of 0.47 EUR" in lines
    assert row("Net (7% VAT)", "0.44 EUR") in lines
    assert "incl. 19% VAT 0.08 EUR of 0.53 EUR" in lines
    assert row("Net (19% VAT)", "0.45 EUR") in lines
    assert row("Total excl. VAT", "0.89 EUR") in lines
    assert row("Paid after refunds", "0.70 EUR") in lines
    data = receipt.to_json()
    assert data["adjustments"] == [
        {"reason": "min_price", "vat_percent": "7", "amount": "0.18"},
        {"reason": "min_price", "vat_percent": "19", "amount": "0.21"},
    ]
    assert data["cap"] == [
        {"vat_percent": "7", "amount": "-0.07"},
        {"vat_percent": "19", "amount": "-0.08"},
    ]
    assert data["net_amount"] == "0.89"
    assert data["amount_paid"] == "0.70"


def test_the_payment_terminals_receipt_lines_are_printed_in_every_language() -> None:
    lines = ("** BUCHUNG **", "Nr.: ************0119", "Karte 4111111111111111 ok", "",
             "BETRAG EUR 28,92 " + "x" * 40)
    titles = {"en": "Card terminal receipt", "de": "Beleg des Kartenterminals",
              "fr": "Ticket du terminal de paiement", "nl": "Bon van de betaalterminal"}
    for language, title in titles.items():
        receipt = de_receipt(language, terminal_lines=lines)
        text = receipt.to_text()
        assert title in text and "** BUCHUNG **" in text
        assert "4111111111111111" not in text  # a full card number is scrubbed
        assert_narrow(text)
        shown = receipt.to_json()["payment"]["terminal_receipt"]
        assert shown[1] == "Nr.: ************0119" and "4111111111111111" not in shown[2]
    assert "terminal_receipt" not in de_receipt().to_json()["payment"]
