"""The driver's display modes: large text and high contrast (EN 301 549 5.1.4, WCAG
1.4.6), switched with two toggle buttons on the idle screen, kept for the session and
reset after it.

Provides `DisplayModes` (the two switches, the station's defaults they return to, and
whether a session has been seen since they were last set), `defaults(...)`, `TOGGLES`
(button id -> mode), `FIGURES` (the ids of the main figures), `toggle(modes,
button_id)`, `follow_session(modes, state, receipt_pending)` (called with every
snapshot from the daemon: a session's phase marks the modes as in use; once the
connector is free again with no receipt on offer they go back to the defaults, as the
language does) and `toggle_texts(modes, language)` (the buttons'
labels: the mode's name and "on"/"off" in words, never colour alone).

The modes are the UI's own (the daemon does not know them): a UI restart starts with
the defaults (`evterm ui --large-text --high-contrast`, for a station that should always
show them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ui.i18n import tr

LARGE_TEXT_BUTTON = "a11y_large_text"
HIGH_CONTRAST_BUTTON = "a11y_high_contrast"
TOGGLES: Mapping[str, str] = {LARGE_TEXT_BUTTON: "large_text",
                              HIGH_CONTRAST_BUTTON: "high_contrast"}
# the main figures: twice their normal size in large text (ui/evterm.kv, Figure)
FIGURES = ("price_headline", "energy", "cost", "power", "elapsed", "finish_energy",
           "finish_cost")
# the connector is free: no session runs (the receipt of the last one may be on offer)
FREE_PHASES = frozenset({"Available", "Completed", "Rejected"})
# a session runs: the modes reset once the connector is free again
SESSION_PHASES = frozenset({"Authorized", "Charging", "SuspendedEV", "SuspendedEVSE",
                            "Finishing"})


@dataclass
class DisplayModes:
    large_text: bool = False
    high_contrast: bool = False
    default_large_text: bool = False      # what a reset returns to (the station's choice)
    default_high_contrast: bool = False
    in_session: bool = False              # a session ran since the modes were set

    def reset(self) -> None:
        self.large_text = self.default_large_text
        self.high_contrast = self.default_high_contrast
        self.in_session = False

    def is_default(self) -> bool:
        return (self.large_text, self.high_contrast) == (self.default_large_text,
                                                         self.default_high_contrast)


def defaults(large_text: bool = False, high_contrast: bool = False) -> DisplayModes:
    """Modes starting (and reset) to these values."""
    return DisplayModes(large_text=large_text, high_contrast=high_contrast,
                        default_large_text=large_text, default_high_contrast=high_contrast)


def toggle(modes: DisplayModes, button_id: str) -> None:
    """Switch the mode of `button_id` (one of TOGGLES); ValueError for another id."""
    mode = TOGGLES.get(button_id)
    if mode is None:
        raise ValueError(f"button_id: {button_id!r} is not a display-mode toggle")
    setattr(modes, mode, not getattr(modes, mode))


def follow_session(modes: DisplayModes, state: Mapping[str, Any] | None,
                   receipt_pending: bool) -> None:
    """A snapshot arrived. A session's phase (anything but a free connector) marks the
    modes as in use; the connector free again with no receipt on offer resets them."""
    if not isinstance(state, Mapping):
        return
    phase = state.get("phase")
    if phase not in FREE_PHASES:
        if phase in SESSION_PHASES:  # not a card still being checked (it may be refused)
            modes.in_session = True
        return
    if modes.in_session and not receipt_pending:
        modes.reset()


def toggle_texts(modes: DisplayModes, language: str) -> dict[str, str]:
    """The toggles' labels: "Large text: on" (the word says the state, the colour only
    repeats it)."""
    def state(on: bool) -> str:
        return tr("a11y_on" if on else "a11y_off", language)
    return {LARGE_TEXT_BUTTON: tr("a11y_large_text", language, state=state(modes.large_text)),
            HIGH_CONTRAST_BUTTON: tr("a11y_high_contrast", language,
                                     state=state(modes.high_contrast))}
