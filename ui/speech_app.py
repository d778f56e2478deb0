"""The speech output in the Kivy app: switches, on-screen buttons, the speaker.

Provides `SpeechUi(app, output)`, built by ui/app.py once the root exists:
- the long press: a touch held `LONG_PRESS_S` in the bottom-left 20 x 20 mm corner of
  any screen toggles speech (the touch then does nothing else: a button under it is
  released without acting);
- the keys (the board's GPIO keys as keyboard keys): F1 toggles, F2 repeats, F3 pauses,
  F4 quieter, F5 louder (the new step is said at the new volume: ui/speech_volume.py);
- headphones: a thread polls the ALSA "Headphone Jack" control (ui/speech_jack.py)
  every second where the board has one;
- while speech is on, a bar (ui/speech.kv: Repeat, Pause, and on the receipt screen
  "Read receipt aloud"; below them Quieter and Louder) over the top right of the screen
  area;
- `shown(view)` after every screen build: what ui/speech_control.py decides to say goes
  to the `Speaker` thread (ui/speech.py), which never blocks this loop.
`state()` is what the automation socket's `speech` command reports.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.core.window import Window
from kivy.factory import Factory
from kivy.lang import Builder
from kivy.uix.behaviors import ButtonBehavior

from terminal.kernel.logsetup import fields, get_logger
from ui.i18n import tr
from ui.model import View
from ui.screen_state import ScreenState
from ui.speech import Speaker
from ui.speech_control import KEY_ACTIONS, LONG_PRESS_S, Say, SpeechControl, in_corner
from ui.speech_jack import POLL_S, JackReader, alsa_jack_reader
from ui.speech_texts import key_of, receipt_speech, text_of
from ui.speech_volume import STEPS, volume_words

log = get_logger("ui.speech")

KV_FILE = Path(str(files("ui").joinpath("speech.kv")))


class SpeechUi:
    def __init__(self, app: Any, output: str | None = None,
                 jack: JackReader | None = None) -> None:
        self.app = app
        self.control = SpeechControl()
        self.speaker = Speaker(output)
        self.said: list[dict[str, Any]] = []
        self._hold: Any = None
        self._view: View | None = None
        if str(KV_FILE) not in Builder.files:
            Builder.load_file(str(KV_FILE))
        self.bar = Factory.SpeechBar()
        self.bar.speech = self
        Window.bind(on_touch_down=self._touch_down, on_touch_up=self._touch_up,
                    on_key_down=self._key_down)
        self._jack = jack or alsa_jack_reader()
        self._closed = threading.Event()
        threading.Thread(target=self._poll_jack, name="speech-jack", daemon=True).start()

    # ---- what to say -------------------------------------------------------------------

    def _texts(self, controls: bool = False) -> tuple[str, str]:
        """What to say now; nothing (logged) when a figure cannot be said: the screen
        built it, the speech must not take the UI down."""
        now_s = time.monotonic()
        view = self._view or self.app.view
        s = ScreenState(self.app.model, now_s)
        try:
            return (text_of(view, s, controls) if view is not None else "", s.language)
        except Exception:
            log.exception("speech text failed", extra=fields(
                screen=view.screen if view is not None else None))
            return "", s.language

    def _speak(self, say: Say | None) -> None:
        if say is None:
            return
        view = self._view or self.app.view
        if say.kind == "on" and view is not None:
            self.control.last_key = key_of(view)  # said with "on": a change is news
        self.speaker.say(say.text, say.language, say.amplitude)
        self.said.append({"kind": say.kind, "language": say.language, "text": say.text,
                          "amplitude": say.amplitude})
        del self.said[:-20]
        self._show_bar()

    def shown(self, view: View) -> None:
        """After each screen build (ui/app.py refresh)."""
        self._view = view
        if not self.control.on:
            return
        before = self.control.on
        self._speak(self.control.update(view, lambda: self._texts()[0], time.monotonic()))
        if before and not self.control.on:
            self.speaker.stop()
        self._show_bar()

    def toggle(self) -> None:
        text, language = self._texts(controls=True)
        self._speak(self.control.toggle(f"{tr('speech_on', language)} {text}", language,
                                        tr("speech_off", language), time.monotonic()))

    def repeat(self) -> None:
        text, language = self._texts()
        self._speak(self.control.repeat(text, language, time.monotonic()))

    def pause(self) -> None:
        text, language = self._texts()
        self._speak(self.control.pause(tr("speech_paused", language), text, language,
                                       time.monotonic()))

    def read_receipt(self) -> None:
        if not self.control.on:
            return
        text = receipt_speech(self.app.model, time.monotonic())
        language = self._view.language if self._view is not None else "en"
        if text:
            self.control.touched(time.monotonic())
            self._speak(Say(text, language, "receipt"))

    def volume(self, delta: int) -> None:
        """One step quieter (delta < 0) or louder, confirmed by speech."""
        language = self._view.language if self._view is not None else "en"
        self._speak(self.control.change_volume(
            delta, lambda volume: volume_words(volume, language), language,
            time.monotonic()))

    def quieter(self) -> None:
        self.volume(-1)

    def louder(self) -> None:
        self.volume(+1)

    def do(self, action: str) -> None:
        {"toggle": self.toggle, "repeat": self.repeat, "pause": self.pause,
         "read_receipt": self.read_receipt, "quieter": self.quieter,
         "louder": self.louder}[action]()

    # ---- switches ----------------------------------------------------------------------

    def _touch_down(self, _window: Any, touch: Any) -> bool:
        self.control.touched(time.monotonic())
        x, y = touch.pos
        if in_corner(x, y, Window.height):
            self._cancel_hold()
            self._hold = Clock.schedule_once(partial(self._held, touch), LONG_PRESS_S)
        return False

    def _touch_up(self, _window: Any, _touch: Any) -> bool:
        self._cancel_hold()
        return False

    def _cancel_hold(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None

    def _held(self, touch: Any, _dt: float) -> None:
        """Held long enough: toggle, and the button under the finger does not act."""
        self._hold = None
        if not in_corner(*touch.pos, Window.height):
            return
        for ref in list(getattr(touch, "grab_list", ())):
            widget = ref() if callable(ref) else ref
            if isinstance(widget, ButtonBehavior):
                touch.ungrab(widget)
                widget.state = "normal"
        self.toggle()

    def _key_down(self, _window: Any, key: int, _scancode: int, _codepoint: Any,
                  _modifiers: Any) -> bool:
        name = Window._system_keyboard.keycode_to_string(key) if \
            Window._system_keyboard else None
        action = KEY_ACTIONS.get(str(name))
        if action is None:
            return False
        self.do(action)
        return True

    def _poll_jack(self) -> None:
        """Off the Kivy thread (amixer takes a few ms): each reading to the loop."""
        if self._jack() is None:
            return  # the board cannot tell: no polling, the corner and keys remain
        while True:
            Clock.schedule_once(partial(self._jack_changed, self._jack()), 0)
            if self._closed.wait(POLL_S):
                return

    def _jack_changed(self, plugged: bool | None, _dt: float) -> None:
        text, language = self._texts(controls=True)
        self._speak(self.control.on_jack(plugged, f"{tr('speech_on', language)} {text}",
                                         language, tr("speech_off", language),
                                         time.monotonic()))
        if not self.control.on:
            self._show_bar()

    # ---- the bar -----------------------------------------------------------------------

    def _show_bar(self) -> None:
        bar, root = self.bar, self.app.root
        view = self._view
        language = view.language if view is not None else "en"
        bar.repeat_text = tr("speech_repeat", language)
        bar.pause_text = tr("speech_resume" if self.control.paused else "speech_pause",
                            language)
        bar.receipt_text = tr("speech_read_receipt", language)
        bar.quieter_text = tr("speech_quieter", language)
        bar.louder_text = tr("speech_louder", language)
        bar.receipt_shown = view is not None and view.screen == "receipt"
        if self.control.on and bar.parent is None and root is not None:
            root.add_widget(bar)
        elif not self.control.on and bar.parent is not None:
            bar.parent.remove_widget(bar)

    # ---- the automation socket (ui/control.py: speech, key, hold) ----------------------

    def press_key(self, name: str) -> bool:
        """A key as the board's GPIO keys send it, through the window's key event."""
        keyboard = Window._system_keyboard
        code = keyboard.string_to_keycode(name) if keyboard is not None else -1
        if code is None or code < 0:
            raise ValueError(f"key: unknown key {name!r}")
        return bool(Window.dispatch("on_key_down", code, 0, None, []))

    def hold(self, x: float, y: float, hold_s: float, done: Any) -> None:
        """A real touch at window pixel (x, y) from the bottom left, held hold_s, then
        lifted; `done()` after the lift."""
        from kivy.base import EventLoop
        from kivy.input.providers.mouse import MouseMotionEvent

        touch = MouseMotionEvent("speech-hold", "hold",
                                 [x / Window.width, y / Window.height, "left"],
                                 is_touch=True, type_id="touch")
        EventLoop.post_dispatch_input("begin", touch)

        def lift(_dt: float) -> None:
            EventLoop.post_dispatch_input("end", touch)
            done()

        Clock.schedule_once(lift, hold_s)

    def state(self) -> dict[str, Any]:
        return {"on": self.control.on, "paused": self.control.paused,
                "jack": self.control.jack, "output": self.speaker.output,
                "volume": self.control.volume.step, "volume_steps": STEPS,
                "requests": len(self.speaker.requests), "said": list(self.said),
                "bar": self.bar.parent is not None}

    def close(self) -> None:
        self._closed.set()
        self.speaker.close()
