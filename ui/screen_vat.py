"""The words of the company VAT number entry page and of its part of the charging screen
(pure; ui/view.py puts them in the View, ui/vat_entry.py has the page's state).

Provides `entry_texts(s)` (the page: title, prompt, the number as typed, the message,
the keys' labels), `charging_texts(s)` (the charging screen's button, "Company receipt:
add VAT number" or "Change VAT number", and "VAT number: DE123456789" once the daemon
kept one), `entry_screen(s, base)` (the page instead of `base` while it is open for the
running session) and `spoken_key(button_id, s)` (what the speech output says for a key
just pressed: the character, or the control's name).
"""

from __future__ import annotations

from ui.model import CHARGING_PHASES
from ui.screen_state import ScreenState
from ui.vat_entry import VAT_KEYS, VAT_OPEN, VAT_SCREEN, given_number, is_open

CURSOR = "_"


def entry_screen(s: ScreenState, base: str) -> str:
    """VAT_SCREEN over the charging screen while the page is open for its session."""
    if base == "charging" and s.phase in CHARGING_PHASES \
            and is_open(s.model.vat, s.state.get("session_id"), s.now_s):
        return VAT_SCREEN
    return base


def entry_texts(s: ScreenState) -> dict[str, str]:
    vat = s.model.vat
    texts = {"vat_title": s.t("vat_title"),
             "vat_prompt": s.t("vat_prompt"),
             "vat_typed": vat.typed + CURSOR,
             "vat_message": s.t(vat.message) if vat.message else "",
             "vat_delete": s.t("vat_delete"),
             "vat_ok": s.t("pin_ok"),  # "OK", as on the PIN pad
             "vat_cancel": s.t("vat_cancel")}
    texts |= {button: char for button, char in VAT_KEYS.items()}
    return texts


def charging_texts(s: ScreenState) -> dict[str, str]:
    number = given_number(s.model.vat, s.state.get("session_id"), s.state.get("vat_number"))
    if number is None:
        return {VAT_OPEN: s.t("vat_add"), "vat_given": ""}
    return {VAT_OPEN: s.t("vat_change"), "vat_given": s.t("vat_given", number=number)}


def spoken_key(button_id: str, s: ScreenState) -> str:
    """A key just pressed, as the speech output says it ("D", "7", "Delete")."""
    if button_id in VAT_KEYS:
        return VAT_KEYS[button_id]
    if button_id == "vat_delete":
        return s.t("vat_delete")
    return ""
