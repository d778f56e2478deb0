"""The EMV read tells the card the amount the tap holds (9F02, EMV Book 3 "Amount,
Authorised"): the budget the driver picked on the screen, else `[payment]
preauth_amount` (terminal.station.reader_settings, read at every tap)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from terminal.config import parse_config
from terminal.screen import Screen
from terminal.station import reader_settings
from tests.unit.clockfake import FakeClock


def test_the_amount_authorised_is_the_budget_in_force_at_each_tap():
    config = parse_config({
        "station": {"id": "ST1", "operator": "Op GmbH"},
        "readers": {"pcsc": True},
        "payment": {"preauth_amount": "50.00", "budget_choices": "20.00, 50.00, 80.00"},
    })
    pricing = SimpleNamespace(station_terms=SimpleNamespace(
        tariff=SimpleNamespace(currency="EUR")))
    screen = Screen(config.ui, "ST1", FakeClock())
    settings = reader_settings(config, pricing, screen)  # type: ignore[arg-type]
    assert settings.terminal_params is not None
    assert settings.terminal_params().amount_minor == 5000  # no pick: the default hold
    screen.choose_budget(Decimal("20.00"))
    assert settings.terminal_params().amount_minor == 2000
    screen.choose_budget(Decimal("80.00"))
    params = settings.terminal_params()
    assert (params.amount_minor, params.currency_code, params.country_code) == (
        8000, "978", config.payment.country_code)
    screen.choose_budget(None)
    assert settings.terminal_params().amount_minor == 5000
