"""The bank-card hold on the idle screen (pure): what a tap would reserve, the budget
buttons, and that a hold was released (issue 18; the daemon's policy is in
terminal/payment/holds.py, its figures come in the state's `card_hold`).

Provides `hold_texts(s)` (widget id -> text for `card_hold` (the whole sentence, with
the tariff), `budget_title` (the amount in force, "Reserved on your card: 50.00 EUR",
always in view: over the budget buttons, or alone when none are offered) and the
budget buttons `budget_1` ... `budget_4`), `budget_buttons(s)` (the active budget
buttons), `selected_budget(s)` (the button of the budget in force, or ""),
`budget_request(s, button)` (the `budget` op a budget button sends) and
`released_text(s)` (the sentence that a hold was released, while it is recent). Amounts
are formatted like every other price on screen (ui/i18n.py, the kernel's formatting).
A malformed `card_hold` shows nothing, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ui.i18n import amount
from ui.model import HOLD_RELEASED_S
from ui.screen_state import ScreenState
from ui.values import decimal_of

BUDGET_BUTTONS = ("budget_1", "budget_2", "budget_3", "budget_4")


def _hold(s: ScreenState) -> Mapping[str, Any] | None:
    hold = s.state.get("card_hold")
    if not isinstance(hold, Mapping) or not s.state.get("card_payment") or not s.online:
        return None
    if decimal_of(hold.get("amount")) is None or not isinstance(hold.get("currency"), str):
        return None
    return hold


def _choices(hold: Mapping[str, Any] | None) -> list[Decimal]:
    raw = hold.get("choices") if hold is not None else None
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return []
    found = [decimal_of(choice) for choice in raw[:len(BUDGET_BUTTONS)]]
    return [choice for choice in found if choice is not None]


def released_text(s: ScreenState) -> str:
    """"No energy was delivered. The EUR 50.00 ... released." for HOLD_RELEASED_S after
    the daemon said so, else ""."""
    event, at_s = s.model.hold_released, s.model.hold_released_at_s
    if event is None or at_s is None or not 0 <= s.now_s - at_s < HOLD_RELEASED_S:
        return ""
    value, currency = decimal_of(event.get("amount")), event.get("currency")
    if value is None or not isinstance(currency, str):
        return ""
    return s.t("hold_released", amount=amount(value, currency, s.language))


def hold_texts(s: ScreenState) -> dict[str, str]:
    hold = _hold(s)
    texts = {button: "" for button in BUDGET_BUTTONS}
    released = released_text(s)
    if hold is None:
        return {"card_hold": released, "budget_title": "", **texts}
    currency = str(hold["currency"])
    held = amount(decimal_of(hold["amount"]) or Decimal(0), currency, s.language)
    choices = _choices(hold)
    for button, choice in zip(BUDGET_BUTTONS, choices, strict=False):
        texts[button] = amount(choice, currency, s.language)
    # the amount in force, above the fold at 800x480 (the sentence scrolls with the
    # tariff): over the budget buttons (the one in force is marked), or alone
    return {"card_hold": released or s.t("card_hold", amount=held),
            "budget_title": s.t("budget_title", amount=held), **texts}


def budget_buttons(s: ScreenState) -> list[str]:
    return list(BUDGET_BUTTONS[:len(_choices(_hold(s)))])


def selected_budget(s: ScreenState) -> str:
    hold = _hold(s)
    held = decimal_of(hold.get("amount")) if hold is not None else None
    for button, choice in zip(BUDGET_BUTTONS, _choices(hold), strict=False):
        if choice == held:
            return button
    return ""


def budget_request(s: ScreenState, button: str) -> dict[str, Any] | None:
    """The `budget` op of a budget button (the amount as the daemon wrote it)."""
    hold = _hold(s)
    choices = hold.get("choices") if hold is not None else None
    if button not in BUDGET_BUTTONS or not isinstance(choices, Sequence):
        return None
    index = BUDGET_BUTTONS.index(button)
    if index >= len(choices) or not isinstance(choices[index], str):
        return None
    return {"op": "budget", "amount": choices[index]}
