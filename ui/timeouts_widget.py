"""The time-limit warning banner of the touchscreen (Kivy), registered with the Factory.

Provides `TimeoutBanner`: a label (drawn by its rule in ui/evterm.kv: dark text on amber,
10:1 contrast, over the top bar, the whole width) that ui/app.py puts over the screen
while `View.timeout_warning` is not empty. A touch on it is a touch anywhere (the app's
window hook has restarted the time limits already) and goes no further, so it never
presses a button hidden under it. `touch_at(sx, sy)`: a touch down and up at a point
of the window (0..1 of its width and height) through Kivy's input dispatch, for the
automation socket's `touch` command.
"""

from __future__ import annotations

from typing import Any

from kivy.base import EventLoop
from kivy.factory import Factory
from kivy.input.motionevent import MotionEvent
from kivy.uix.label import Label


class TimeoutBanner(Label):
    def on_touch_down(self, touch: Any) -> bool:
        return bool(self.collide_point(*touch.pos))

    def on_touch_up(self, touch: Any) -> bool:
        return bool(self.collide_point(*touch.pos))


class _Finger(MotionEvent):
    """One synthetic finger at a relative window position."""

    def __init__(self, sx: float, sy: float) -> None:
        super().__init__("automation", 1, {"sx": sx, "sy": sy}, is_touch=True,
                         type_id="touch")
        self.profile = ["pos"]

    def depack(self, args: Any) -> None:
        self.sx, self.sy = args["sx"], args["sy"]
        super().depack(args)


def touch_at(sx: float, sy: float) -> None:
    """A touch down and up at (sx, sy), fractions of the window's width and height."""
    finger = _Finger(sx, sy)
    EventLoop.post_dispatch_input("begin", finger)
    EventLoop.post_dispatch_input("end", finger)


Factory.register("TimeoutBanner", cls=TimeoutBanner)
