"""The company VAT number entry page as plain data: what the driver has typed, what the
daemon answered, and the page's own time limit. No Kivy, no screen texts.

The driver of a company car asks for a company receipt on the charging screen ("Company
receipt: add VAT number"); the page shows an on-screen keyboard of our own buttons (A-Z,
0-9, Delete, OK, Cancel), the number as typed, and sends
`{"op": "vat_number", "session_id", "vat_number"}` (docs/local-api.md) only once the
kernel's rule (terminal/kernel/vat.py `check_vat_number`) accepts it. The daemon's
answer: ok, the number as kept is shown on the charging screen ("VAT number: ...", with
a Change button); refused, its reason in words on the page.

Provides:
- the button and widget ids of evterm.kv's page (`VAT_KEYS`: button -> character,
  `VAT_BUTTONS`, `VAT_WIDGETS`, `VAT_OPEN`: the charging screen's button) and
  `VAT_SCREEN`;
- `VAT_TIMEOUT_S` (the page goes back to the charging screen this long after the last
  touch, with the usual warning 20 s before: ui/timeouts_screens.py);
- `VatEntry`: the page's state (open, for which session, typed, the message key, in
  flight) and the numbers given per session;
- `open_entry`, `press_key` (one key: returns the requests to send), `touched`,
  `apply_reply` (the `vat_number` reply or refusal), `on_connection`, `is_open`,
  `given_number`, `refusal_key` (a daemon error -> the locale key saying it).

The snapshot does not carry the number: the UI remembers what the daemon's reply said,
for the session it was given for.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from terminal.kernel.vat import MAX_VAT_CHARS, VatNumberError, check_vat_number

VAT_SCREEN = "vat_entry"
VAT_OPEN = "vat_add"  # on the charging screen: "add VAT number" / "change"
VAT_KEYS: Mapping[str, str] = {f"vat_key_{c}": c
                               for c in string.digits + string.ascii_uppercase}
VAT_CONTROLS = ("vat_delete", "vat_cancel", "vat_ok")
VAT_BUTTONS = (*VAT_KEYS, *VAT_CONTROLS)
VAT_WIDGETS = ("vat_title", "vat_prompt", "vat_typed", "vat_message", *VAT_BUTTONS)
VAT_TIMEOUT_S = 90.0  # the page without a touch, then back to the charging screen

# message keys of ui/locales/*.json shown on the page
MSG_SENDING = "vat_sending"
MSG_INVALID = "vat_invalid"
MSG_FULL = "vat_full"
MSG_SESSION = "vat_refused_session"
MSG_FAILED = "vat_refused"


@dataclass
class VatEntry:
    """The entry page's state; `given` the numbers the daemon kept, per session id."""

    session_id: str | None = None       # the page is open for this session (None: closed)
    typed: str = ""
    message: str = ""                   # a MSG_* key, "" for the prompt
    sending: str | None = None          # the number sent, until the daemon answers
    touched_at_s: float | None = None   # opened or last touched (the page's time limit)
    last_key: str = ""                  # the key pressed last (said by the speech output)
    given: dict[str, str] = field(default_factory=dict)


def is_open(vat: VatEntry, session_id: object, now_s: float) -> bool:
    """The page is open for `session_id` and its time has not run out."""
    return (vat.session_id is not None and vat.session_id == session_id
            and vat.touched_at_s is not None
            and 0 <= now_s - vat.touched_at_s < VAT_TIMEOUT_S)


def given_number(vat: VatEntry, session_id: object, known: object = None) -> str | None:
    """The number given for the session: the daemon's (`known`, the state's
    `vat_number`: it survives a restart of the screen), else the one this screen sent."""
    if not isinstance(session_id, str):
        return None
    return known if isinstance(known, str) and known else vat.given.get(session_id)


def open_entry(vat: VatEntry, session_id: str, now_s: float) -> None:
    """The page opens for the running session, with the number given before, if any."""
    vat.session_id = session_id
    vat.typed = vat.given.get(session_id, "")
    vat.message = ""
    vat.sending = None
    vat.last_key = ""
    vat.touched_at_s = now_s


def close_entry(vat: VatEntry) -> None:
    vat.session_id = None
    vat.typed = vat.message = vat.last_key = ""
    vat.sending = None
    vat.touched_at_s = None


def touched(vat: VatEntry, now_s: float) -> None:
    """A touch anywhere on the page: its full time again."""
    if vat.session_id is not None:
        vat.touched_at_s = now_s


def press_key(vat: VatEntry, button_id: str, now_s: float) -> list[dict[str, Any]]:
    """One button of the page; returns the requests to send (only OK sends)."""
    vat.touched_at_s = now_s
    if button_id == "vat_cancel":
        close_entry(vat)
        return []
    if vat.sending is not None:
        return []  # the daemon is answering: the number stays as sent
    vat.last_key = button_id
    if button_id in VAT_KEYS:
        if len(vat.typed) >= MAX_VAT_CHARS:
            vat.message = MSG_FULL
            return []
        vat.typed += VAT_KEYS[button_id]
        vat.message = ""
    elif button_id == "vat_delete":
        vat.typed = vat.typed[:-1]
        vat.message = ""
    elif button_id == "vat_ok":
        try:
            number = check_vat_number(vat.typed)
        except VatNumberError:
            vat.message = MSG_INVALID
            return []
        vat.sending = number
        vat.message = MSG_SENDING
        return [{"op": "vat_number", "session_id": vat.session_id, "vat_number": number}]
    return []


def refusal_key(error: object) -> str:
    """The locale key that says why the daemon refused (its error names the field)."""
    text = str(error or "")
    if text.startswith("vat_number:"):
        return MSG_INVALID
    if text.startswith("session_id:"):
        return MSG_SESSION
    return MSG_FAILED


def apply_reply(vat: VatEntry, message: Mapping[str, Any]) -> None:
    """The daemon's answer to `vat_number`: kept (the page closes, the charging screen
    shows the number) or refused (its reason on the page, the number stays to correct)."""
    sent, vat.sending = vat.sending, None
    if message.get("ok") is False:
        vat.message = refusal_key(message.get("error"))
        return
    number = message.get("vat_number")
    if vat.session_id is not None and isinstance(number, str):
        vat.given[vat.session_id] = number
    elif vat.session_id is not None and sent is not None:
        vat.given[vat.session_id] = sent
    close_entry(vat)


def on_connection(vat: VatEntry, connected: bool) -> None:
    """A request in flight is lost with the connection: say so, keep what was typed."""
    if vat.sending is not None:
        vat.sending = None
        vat.message = MSG_FAILED


def forget_other_sessions(vat: VatEntry, session_id: object) -> None:
    """A new snapshot: numbers of sessions other than the running one are forgotten and
    the page of another session closes."""
    for other in [key for key in vat.given if key != session_id]:
        del vat.given[other]
    if vat.session_id is not None and vat.session_id != session_id:
        close_entry(vat)
