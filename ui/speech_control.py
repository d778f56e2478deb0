"""When the speech output speaks, as pure logic (no Kivy, no processes).

Provides `SpeechControl`: on/off, pause, repeat and what to say after each screen build
(`update(view, state)` -> a `Say` or None), the reset after a session, headphones
(`on_jack(plugged)`), and the switches a blind driver finds without sight:
`in_corner(x, y, window_h)` (the bottom-left 20 x 20 mm corner, where the operator puts
a tactile marker; a long press of `LONG_PRESS_S` there toggles speech) and `KEY_ACTIONS`
(the board's GPIO keys arrive as keyboard keys: F1 toggles, F2 repeats, F3 pauses,
F4 quieter, F5 louder). `change_volume(delta)` moves the speech volume one step
(ui/speech_volume.py) and says the new step at the new volume; every `Say` carries
the volume (espeak-ng's amplitude) it is spoken at.

Reset: speech switches off once a session that ran while it was on is over and the idle
screen is back (like the screen language, the next driver starts without it), and after
`IDLE_RESET_S` on the idle screen without a touch or key. Headphones plugged in switch
it on, pulled out switch it off when they had switched it on. Whenever speech switches
off (by itself after the session, by F1, by the corner, by the headphones) the volume
returns to its default (EN 301 549 5.1.3.13); "Speech output off" is still said at the
volume the driver had.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ui.i18n import tr
from ui.model import View
from ui.speech_texts import key_of
from ui.speech_volume import DEFAULT_AMPLITUDE, SpeechVolume

LONG_PRESS_S = 2.0
CORNER_MM = 20.0
PANEL_HEIGHT_MM = 85.9  # the 7" reference panel's active area is 154.2 x 85.9 mm
IDLE_RESET_S = 120.0
# a session ran: speech goes off when the idle screen is back (a refused card's
# "authorising" feedback is not a session: speech stays on for the next try)
SESSION_SCREENS = frozenset({"charging", "finishing", "receipt"})
KEY_ACTIONS = {"f1": "toggle", "f2": "repeat", "f3": "pause", "f4": "quieter",
               "f5": "louder"}


def in_corner(x: float, y: float, window_h: float, panel_h_mm: float = PANEL_HEIGHT_MM) -> bool:
    """(x, y) in window pixels from the bottom left lies in the 20 x 20 mm corner."""
    side_px = CORNER_MM * window_h / panel_h_mm
    return 0 <= x <= side_px and 0 <= y <= side_px


@dataclass(frozen=True)
class Say:
    """A text to speak now, in the voice of `language`, interrupting what is spoken."""

    text: str
    language: str
    kind: str = "screen"  # screen, on, off, repeat, receipt, paused, volume
    amplitude: int = DEFAULT_AMPLITUDE  # espeak-ng -a (ui/speech_volume.py)


class SpeechControl:
    def __init__(self) -> None:
        self.on = False
        self.paused = False
        self.by_jack = False
        self.jack: bool | None = None
        self.session_seen = False
        self.last_key: tuple[Any, ...] | None = None
        self.last_touch_s = 0.0
        self.spoken = 0  # Say objects returned (for the automation socket)
        self.volume = SpeechVolume()

    def _say(self, text: str, language: str, kind: str) -> Say:
        self.spoken += 1
        return Say(text, language, kind, self.volume.amplitude)

    def toggle(self, text: str, language: str, off_text: str, now_s: float) -> Say:
        """Switched on: say so, the screen and the controls; off: say that."""
        self.last_touch_s = now_s
        if self.on:
            said = self._say(off_text, language, "off")  # at the driver's volume
            self._off()
            return said
        self.on, self.paused, self.session_seen = True, False, False
        return self._say(text, language, "on")

    def _off(self) -> None:
        self.on = self.paused = self.by_jack = self.session_seen = False
        self.last_key = None
        self.volume.reset()  # the next driver starts at the default volume

    def repeat(self, text: str, language: str, now_s: float) -> Say | None:
        self.last_touch_s = now_s
        if not self.on:
            return None
        self.paused = False
        return self._say(text, language, "repeat")

    def pause(self, paused_text: str, text: str, language: str, now_s: float) -> Say | None:
        """Pause stops speaking (a short notice); pressed again, the screen again."""
        self.last_touch_s = now_s
        if not self.on:
            return None
        self.paused = not self.paused
        if self.paused:
            return self._say(paused_text, language, "paused")
        return self._say(text, language, "repeat")

    def change_volume(self, delta: int, words: Callable[[SpeechVolume], str],
                      language: str, now_s: float) -> Say | None:
        """F4/F5 or the bar's buttons: one step quieter (delta < 0) or louder, said at
        the new volume ("Volume 4 of 5"; at an end the step again). Off: nothing."""
        self.last_touch_s = now_s
        if not self.on:
            return None
        self.volume.change(delta)
        return self._say(words(self.volume), language, "volume")

    def touched(self, now_s: float) -> None:
        self.last_touch_s = now_s

    def on_jack(self, plugged: bool | None, text: str, language: str, off_text: str,
                now_s: float) -> Say | None:
        """A headphone jack reading (None: the board cannot tell). Edges only."""
        before, self.jack = self.jack, plugged
        if plugged is None or before is None or plugged == before:
            if plugged and before is None and not self.on:  # plugged in at start
                self.on, self.by_jack, self.paused = True, True, False
                self.last_touch_s = now_s
                return self._say(text, language, "on")
            return None
        if plugged and not self.on:
            self.on, self.by_jack, self.paused = True, True, False
            self.last_touch_s = now_s
            return self._say(text, language, "on")
        if not plugged and self.on and self.by_jack:
            said = self._say(off_text, language, "off")
            self._off()
            return said
        return None

    def update(self, view: View, text: Callable[[], str], now_s: float) -> Say | None:
        """After a screen build: the new text when the screen's state changed."""
        if not self.on:
            return None
        if view.screen in SESSION_SCREENS:
            self.session_seen = True
            self.last_touch_s = now_s
        elif view.screen == "idle" and (
                self.session_seen or now_s - self.last_touch_s >= IDLE_RESET_S):
            said = self._say(tr("speech_off", view.language), view.language, "off")
            self._off()  # the session is over, or nobody is there: the next driver
            return said
        key = key_of(view)
        if key == self.last_key:
            return None
        first = self.last_key is None
        self.last_key = key
        if first or self.paused:
            return None  # the "on" text said this screen already / paused
        return self._say(text(), view.language, "screen")
