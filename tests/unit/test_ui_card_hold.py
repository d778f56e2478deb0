"""The bank-card hold on the idle screen (ui/card_hold.py, issue 18): the amount reserved
before the tap in every language (through the kernel's amount formatting), the budget
buttons and the op they send, the budget in force marked, the sentence that a hold was
released, and the same in the speech text; nothing without card payment or offline."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from terminal.kernel.formatting import format_amount
from tests.unit.test_ui_view import connected, daemon_state
from ui.buttons import press
from ui.card_hold import BUDGET_BUTTONS
from ui.i18n import tr
from ui.messages import apply_message
from ui.model import HOLD_RELEASED_S
from ui.speech_texts import speech_text
from ui.view import build_view

LANGUAGES = ("en", "de", "fr", "nl")
HOLD = {"amount": "50.00", "currency": "EUR", "choices": ["20.00", "50.00", "80.00"],
        "budget": None, "grace_s": 180.0}


def idle_with_hold(**hold: Any) -> dict[str, Any]:
    return daemon_state(card_hold={**HOLD, **hold})


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_idle_screen_says_what_a_bank_card_reserves(language):
    view = build_view(connected(idle_with_hold(), language=language), 1.0)
    held = format_amount(Decimal("50.00"), "EUR", language)
    assert view.screen == "idle"
    assert view.texts["card_hold"] == tr("card_hold", language, amount=held)
    assert held in view.texts["card_hold"]
    assert [view.texts[b] for b in BUDGET_BUTTONS] == [
        format_amount(Decimal(v), "EUR", language)
        for v in ("20.00", "50.00", "80.00")] + [""]
    assert [b for b in view.buttons if b.startswith("budget_")] == [
        "budget_1", "budget_2", "budget_3"]
    assert view.budget_selected == "budget_2"  # the default hold is the 50.00 button
    # the amount in force above the budget buttons: in view at 800x480 (the sentence
    # scrolls with the tariff; tests/ui/test_ui_layout.py measures it)
    assert view.texts["budget_title"] == tr("budget_title", language, amount=held)


def test_the_english_sentence_is_the_one_the_issue_asks_for():
    view = build_view(connected(idle_with_hold()), 1.0)
    assert view.texts["card_hold"] == (
        "Bank card: 50.00 EUR is reserved on your card and released after charging; "
        "you pay only what you charge.")


def test_a_budget_button_sends_the_budget_op_and_the_pick_is_marked():
    model = connected(idle_with_hold())
    assert press(model, "budget_1", 1.0) == [{"op": "budget", "amount": "20.00"}]
    assert press(model, "budget_4", 1.0) == []  # not offered: inactive
    apply_message(model, {"type": "state", "state": idle_with_hold(amount="20.00",
                                                                   budget="20.00")}, 2.0)
    view = build_view(model, 2.0)
    assert view.budget_selected == "budget_1"
    assert "20.00 EUR is reserved" in view.texts["card_hold"]
    assert view.texts["budget_title"] == "Reserved on your card: 20.00 EUR"


@pytest.mark.parametrize("changes", [
    {"card_payment": False}, {"backend_online": False}, {"card_hold": None},
    {"card_hold": {"amount": "x", "currency": "EUR"}}, {"card_hold": "50.00"},
])
def test_no_hold_and_no_budget_without_card_payment_online(changes):
    view = build_view(connected({**idle_with_hold(), **changes}), 1.0)
    assert view.texts["card_hold"] == "" and view.texts["budget_title"] == ""
    assert not set(BUDGET_BUTTONS) & set(view.buttons)


def test_no_budget_buttons_when_none_are_offered_the_amount_is_still_in_view():
    view = build_view(connected(idle_with_hold(choices=[])), 1.0)
    assert view.texts["card_hold"].startswith("Bank card: 50.00 EUR")
    assert view.texts["budget_title"] == "Reserved on your card: 50.00 EUR"
    assert view.budget_selected == ""
    assert not set(BUDGET_BUTTONS) & set(view.buttons)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_released_hold_is_said_on_the_idle_screen_for_a_while(language):
    model = connected(idle_with_hold(), language=language)
    apply_message(model, {"type": "hold_released", "session_id": "S-1", "amount": "50.00",
                          "currency": "EUR"}, 10.0)
    text = build_view(model, 11.0).texts["card_hold"]
    assert text == tr("hold_released", language,
                      amount=format_amount(Decimal("50.00"), "EUR",
                                           language))
    later = build_view(model, 10.0 + HOLD_RELEASED_S).texts["card_hold"]
    assert later == tr("card_hold", language, amount=format_amount(
        Decimal("50.00"), "EUR", language))


def test_the_english_released_sentence():
    model = connected(idle_with_hold())
    apply_message(model, {"type": "hold_released", "amount": "50.00", "currency": "EUR"}, 1.0)
    assert build_view(model, 1.0).texts["card_hold"] == (
        "No energy was delivered. The 50.00 EUR reserved on your card has been released.")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_hold_and_the_budgets_are_spoken(language):
    model = connected(idle_with_hold(), language=language)
    spoken = speech_text(model, 1.0)
    word = {"en": "reserved", "de": "reserviert", "fr": "réservés", "nl": "gereserveerd"}
    assert word[language] in spoken
    assert tr("budget_title", language, amount="").rstrip(":\u00a0 ") in spoken
    model_released = connected(idle_with_hold(), language=language)
    apply_message(model_released, {"type": "hold_released", "amount": "50.00",
                                   "currency": "EUR"}, 1.0)
    assert speech_text(model_released, 1.0) != spoken
