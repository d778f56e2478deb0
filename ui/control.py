"""The UI's automation socket (`evterm ui --control PATH`) and its frame statistics.

Provides `ControlServer(path, execute)` (the socket), `Automation(app)` (the commands,
run against an EvtermApp), `FrameStats` (fed by the app and the window's frames) and
`UiControl(path).cmd(name, **fields)`, a client that needs no Kivy (tests, demo, bench).

For the UI tests, the demo and the benchmark: a Unix stream socket served from a
background thread, one JSON object per line each way. Every command runs on the Kivy
thread (scheduled with the Clock); the reply is `{"ok": true, ...}` or
`{"ok": false, "error": TEXT}`.

- `{"cmd": "dump"}` → `screen`, `language`, `widgets` {id: text} (top bar, current
  screen (on the service screen: its tab shown), the report panel when open, read back
  from the widgets), `buttons` (ids a touch would operate now), `price_lines`,
  `receipt_lines`, `qr` (payload shown or null), `progress` (0..1 or null), `offline`
  (badge shown), `report_open`, `service_tab` (the service menu's tab, null elsewhere),
  `modes` (`large_text`, `high_contrast`, `background`: the window's colour).
  The PIN pad's `pin_dots` shows one dot per digit: no command reveals a typed PIN.
  `timeout_warning`: the time-limit banner's text ("" when none is shown).
- `{"cmd": "touch", "pos": [X, Y]}` → a touch (down and up) at window pixel X, Y (default:
  the middle of the window), dispatched through the window as a finger's would be: it
  restarts the screen's time limits (ui/buttons.py `touch`) and reaches what is there.
- `{"cmd": "press", "id": BUTTON}` → dispatches the button's on_press/on_release as a
  touch would; an unknown or inactive id is an error naming it.
- `{"cmd": "screenshot", "path": FILE}` → a PNG of the whole window taken from the next
  frame drawn (missing folders are created); the reply (`path`, the absolute file name,
  and `size`) comes when the file exists.
- `{"cmd": "stats"}` → `first_frame_s` (process start to the first frame drawn),
  `rss_kb` (VmRSS), `frame_times_ms` (the last 300 intervals between frames; Kivy draws
  only when something changed), `press_to_frame_ms` (per `press`: from the command's
  arrival to the first frame drawn after the widgets showed its effect: at once when the
  press changed the view or sent nothing, else the first view change after the daemon's
  reply, or 1 s after the reply when nothing changed), `presses_unanswered` (no reply
  within 10 s), `update_ms` (the last 300 view refreshes: build_view, plus copying it onto
  the widgets when it changed), `draw_ms` (the last 300 frames: the window's on_draw to
  its buffer swap, the cost of drawing one frame). "Drawn" is taken when the frame is
  handed to the buffer swap.
- `{"cmd": "quit"}` → replies, then stops the app.

A command that does not finish within `timeout_s` (a Kivy thread that does not run) is
answered with an error. The socket file is created with mode 0600 and removed on close.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminal.kernel.logsetup import get_logger

log = get_logger("ui.control")

FRAMES_KEPT = 300
PRESS_TIMEOUT_S = 10.0       # a press whose request gets no reply is given up after this
NO_CHANGE_AFTER_REPLY_S = 1.0
Reply = Callable[[dict[str, Any]], None]


def _on_kivy_thread(callback: Callable[[float], None], delay_s: float = 0) -> None:
    from kivy.clock import Clock  # here, so UiControl works in processes without Kivy

    Clock.schedule_once(callback, delay_s)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), None elsewhere."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    started_ticks = int(fields[19])  # field 22 of proc(5), counted after the comm field
    return uptime_s - started_ticks / os.sysconf("SC_CLK_TCK")


def rss_kb() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class _Press:
    at_s: float                      # perf_counter when the command arrived
    before: Any                      # the View shown when pressed
    ops: set[str] = field(default_factory=set)
    collecting: bool = True          # the button's handlers are running
    replied_s: float | None = None
    shown: bool = False              # the widgets show the result: record at the next frame


class FrameStats:
    """Frame intervals, the first frame, and press-to-frame latencies. Fed by the app
    (request_sent, replied, shown) and by the window's on_flip (the frame is drawn)."""

    def __init__(self) -> None:
        self.first_frame_s: float | None = None
        self.frame_times_ms: deque[float] = deque(maxlen=FRAMES_KEPT)
        self.update_ms: deque[float] = deque(maxlen=FRAMES_KEPT)
        self.draw_ms: deque[float] = deque(maxlen=FRAMES_KEPT)
        self._draw_started_s: float | None = None
        self.press_to_frame_ms: list[float] = []
        self.presses_unanswered = 0
        self._last_frame_s: float | None = None
        self._presses: list[_Press] = []
        self._after_frame: list[Callable[[], None]] = []
        self._on_first_frame: Callable[[float | None], None] | None = None
        self._window: Any = None

    def attach(self, window: Any,
               on_first_frame: Callable[[float | None], None] | None = None) -> None:
        self._window = window
        self._on_first_frame = on_first_frame
        window.bind(on_draw=self._draw_started, on_flip=self._frame)

    def after_next_frame(self, callback: Callable[[], None]) -> None:
        """Run `callback` in the next frame, once it is drawn (before the buffer swap, so
        the back buffer holds it)."""
        self._after_frame.append(callback)
        self._ask_frame()

    def _ask_frame(self) -> None:
        if self._window is not None:
            self._window.canvas.ask_update()

    # ---- presses ---------------------------------------------------------------------

    def press_started(self, at_s: float, before: Any) -> None:
        self._presses.append(_Press(at_s, before))

    def press_dispatched(self, view: Any) -> None:
        """The button's handlers ran; `view` is shown now. A press whose view changed at
        once (the screen answers before the daemon) or that sent nothing is recorded at
        the next frame; one that sent requests waits for their reply and a change."""
        for press in self._presses:
            if press.collecting:
                press.collecting = False
                press.shown = view != press.before or not press.ops
        self._ask_frame()

    def request_sent(self, op: str) -> None:
        for press in self._presses:
            if press.collecting:
                press.ops.add(op)

    def replied(self, op: str) -> None:
        now = time.perf_counter()
        for press in self._presses:
            if not press.collecting and press.replied_s is None and op in press.ops:
                press.replied_s = now

    def shown(self, view: Any, update_ms: float) -> None:
        """The widgets now show `view` (called after every build_view)."""
        self.update_ms.append(update_ms)
        now = time.perf_counter()
        for press in self._presses:
            if press.collecting or press.replied_s is None or press.shown:
                continue
            if view != press.before or now - press.replied_s >= NO_CHANGE_AFTER_REPLY_S:
                press.shown = True
                self._ask_frame()

    # ---- frames ----------------------------------------------------------------------

    def _draw_started(self, *_args: Any) -> None:
        self._draw_started_s = time.perf_counter()

    def _frame(self, *_args: Any) -> None:
        now = time.perf_counter()
        if self._draw_started_s is not None:
            self.draw_ms.append((now - self._draw_started_s) * 1000.0)
            self._draw_started_s = None
        if self._last_frame_s is not None:
            self.frame_times_ms.append((now - self._last_frame_s) * 1000.0)
        self._last_frame_s = now
        if self.first_frame_s is None:
            self.first_frame_s = process_age_s()
            if self._on_first_frame is not None:
                _on_kivy_thread(lambda _dt: self._on_first_frame(self.first_frame_s))
        waiting = []
        for press in self._presses:
            if press.shown:
                self.press_to_frame_ms.append((now - press.at_s) * 1000.0)
            elif now - press.at_s > PRESS_TIMEOUT_S:
                self.presses_unanswered += 1
            else:
                waiting.append(press)
        self._presses = waiting
        callbacks, self._after_frame = self._after_frame, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one bad callback must not break the frame loop
                log.exception("after-frame callback failed")

    def as_dict(self) -> dict[str, Any]:
        return {"first_frame_s": self.first_frame_s, "rss_kb": rss_kb(),
                "frame_times_ms": [round(t, 3) for t in self.frame_times_ms],
                "press_to_frame_ms": [round(t, 3) for t in self.press_to_frame_ms],
                "presses_unanswered": self.presses_unanswered,
                "update_ms": [round(t, 3) for t in self.update_ms],
                "draw_ms": [round(t, 3) for t in self.draw_ms]}


# ---- layout (for the layout tests: what is drawn where, at which size) ----------------

_OVERLAP_FREE = ("BoxLayout", "GridLayout", "StackLayout")  # siblings laid side by side


def layout_of(app: Any) -> list[dict[str, Any]]:
    """Every widget drawn now (the window's tree, the current screen only; subtrees that
    are transparent or collapsed to nothing are left out), in window coordinates:
    `i` (index in the list), `parent` (its index, None for the root), `id` (the kv id or
    None), `kind` (class), `layout` (the parent arranges its children side by side:
    "box", else "free": float/anchor layouts, screens, scroll views), `scrolled` (inside
    a ScrollView's content: may extend past the view), `pos`, `size`; Labels also
    `text`, `font_size`, `texture_size`, `needed` (the size the whole text needs at the
    label's width, unshortened: larger than `size` means clipped or cut short) and
    `lines` (the text as wrapped) and `color`; QR codes `drawn` (side of the code in
    pixels); widgets with a `fill` (cards, buttons, bars: what text is drawn on) `fill`;
    buttons `button`: true; bar plots (ui/bar_plot.py) `bars` ([x, y, w, h] each),
    `values` and `bar_colour`."""
    ids = {id(widget): name for name, widget in app.widgets.items()}  # kv ids: proxies
    out: list[dict[str, Any]] = []

    def walk(widget: Any, parent: int | None, scrolled: bool, box: bool) -> None:
        if widget.opacity <= 0 or widget.width <= 0.5 or widget.height <= 0.5:
            return
        x, y = widget.to_window(widget.x, widget.y)
        entry: dict[str, Any] = {
            "i": len(out), "parent": parent,
            "id": ids.get(id(widget.proxy_ref), ids.get(id(widget))),
            "kind": type(widget).__name__, "layout": "box" if box else "free",
            "scrolled": scrolled, "pos": [round(x, 1), round(y, 1)],
            "size": [round(widget.width, 1), round(widget.height, 1)],
        }
        entry.update(_label_facts(widget))
        fill = getattr(widget, "fill", None)  # Cards, buttons, bars: the text's background
        if isinstance(fill, list | tuple) and len(fill) == 4:
            entry["fill"] = [round(float(c), 4) for c in fill]
        if isinstance(widget, _button_class()):
            entry["button"] = True
        facts = getattr(widget, "layout_facts", None)  # bar plots: their bars, values
        if callable(facts):
            entry.update(facts())
        if hasattr(widget, "modules") and hasattr(widget, "_rect"):
            entry["drawn"] = round(float(widget._rect.size[0]), 1) if widget.data else 0.0
        out.append(entry)
        names = [cls.__name__ for cls in type(widget).__mro__]
        side_by_side = any(name in _OVERLAP_FREE for name in names)
        inner = scrolled or "ScrollView" in names
        for child in reversed(widget.children):
            walk(child, entry["i"], inner, side_by_side)

    walk(app.root, None, False, False)
    return out


def _button_class() -> type:
    from kivy.uix.button import Button

    return Button


def _label_facts(widget: Any) -> dict[str, Any]:
    from kivy.core.text import Label as CoreLabel
    from kivy.uix.label import Label

    if not isinstance(widget, Label) or not widget.text:
        return {}
    text_w = widget.text_size[0]
    options = {"text": widget.text, "font_size": widget.font_size,
               "font_name": widget.font_name, "bold": widget.bold,
               "italic": widget.italic, "halign": widget.halign,
               "padding_x": widget.padding[0], "padding_y": widget.padding[1],
               "line_height": widget.line_height,
               "text_size": (text_w, None)}
    needed = CoreLabel(**options)
    needed.refresh()
    lines = []
    for line in getattr(needed, "_cached_lines", []) or []:
        lines.append("".join(word.text for word in line.words))
    return {"text": widget.text, "font_size": round(float(widget.font_size), 2),
            "color": [round(float(c), 4) for c in widget.color],
            "texture_size": [round(v, 1) for v in widget.texture_size],
            "needed": [round(v, 1) for v in needed.content_size],
            "lines": lines}


class CommandError(Exception):
    pass


class Automation:
    """The commands, run on the Kivy thread against an EvtermApp."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def execute(self, command: dict[str, Any], received_s: float, reply: Reply) -> None:
        name = command.get("cmd")
        handler = getattr(self, f"_cmd_{name}", None) if isinstance(name, str) else None
        if handler is None:
            reply({"ok": False, "error": f"cmd: unknown command {name!r}; one of "
                   "dump, press, screenshot, stats, quit, speech, key, hold"})
            return
        try:
            handler(command, received_s, reply)
        except CommandError as exc:
            reply({"ok": False, "error": str(exc)})

    def _cmd_dump(self, command: dict[str, Any], _received_s: float, reply: Reply) -> None:
        dump = self.dump()
        if command.get("layout"):
            dump["window"] = list(self.app.root.size)
            dump["layout"] = layout_of(self.app)
        reply({"ok": True, **dump})

    def dump(self) -> dict[str, Any]:
        app = self.app
        view = app.view
        bar = app.widgets["progress_bar"]
        return {
            "screen": app.root.ids.sm.current,
            "language": view.language if view is not None else None,
            "widgets": {name: app.widgets[name].text for name in app.visible_ids()},
            "buttons": app.active_buttons(),
            "price_lines": app.line_texts("price_lines"),
            "receipt_lines": app.line_texts("receipt_lines"),
            "qr": app.shown_qr(),
            "progress": None if bar.opacity == 0 else round(float(bar.value), 4),
            "offline": app.widgets["badge_offline"].opacity > 0,
            "report_open": bool(app.root.report_open),
            "service_tab": app.widgets["svc_tabs"].current
            if app.root.ids.sm.current == "service" else None,
            "timeout_warning": app.banner.text
            if app.banner is not None and app.banner.parent is not None else "",
            "modes": {"large_text": bool(app.large), "high_contrast": app.theme.name != "normal",
                      "background": [round(float(c), 4) for c in app.theme.BG]},
        }

    def _cmd_touch(self, command: dict[str, Any], _received_s: float, reply: Reply) -> None:
        from ui.timeouts_widget import touch_at  # Kivy: imported only with the app

        width, height = self.app.root.size
        pos = command.get("pos", [width / 2, height / 2])
        if not (isinstance(pos, list | tuple) and len(pos) == 2
                and all(isinstance(v, int | float) for v in pos)
                and 0 <= pos[0] < width and 0 <= pos[1] < height):
            raise CommandError(f"pos: expected [x, y] inside the window {width:g}x{height:g}, "
                               f"got {pos!r:.40}")
        touch_at(float(pos[0]) / max(1.0, width - 1), float(pos[1]) / max(1.0, height - 1))
        reply({"ok": True})

    def _cmd_press(self, command: dict[str, Any], received_s: float, reply: Reply) -> None:
        name = command.get("id")
        button = self.app.buttons.get(name) if isinstance(name, str) else None
        if button is None:
            raise CommandError(f"id: no button {name!r}; buttons: {sorted(self.app.buttons)}")
        if name not in self.app.active_buttons():
            raise CommandError(f"id: button {name!r} is not active now; active: "
                               f"{self.app.active_buttons()}")
        frames = self.app.frames
        frames.press_started(received_s, self.app.view)
        try:
            button.trigger_action(duration=0)
        finally:
            frames.press_dispatched(self.app.view)
        reply({"ok": True})

    def _cmd_screenshot(self, command: dict[str, Any], _received_s: float,
                        reply: Reply) -> None:
        path = command.get("path")
        if not isinstance(path, str) or not path.endswith(".png"):
            raise CommandError("path: a file name ending in .png is required")
        target = Path(path).absolute()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"path: cannot create the folder {str(target.parent)!r}: "
                               f"{exc}") from None

        def take() -> None:
            from kivy.core.window import Window

            try:
                # Kivy appends a counter (name0001.png); move it to the name asked for
                written = Window.screenshot(name=str(target))
                if not written or not os.path.exists(written):
                    raise OSError(f"the window wrote no file for {target}")
                os.replace(written, target)
            except OSError as exc:
                reply({"ok": False, "error": f"screenshot: {exc}"})
                return
            reply({"ok": True, "path": str(target), "size": list(Window.size)})

        self.app.frames.after_next_frame(take)

    def _cmd_stats(self, _command: dict[str, Any], _received_s: float, reply: Reply) -> None:
        reply({"ok": True, **self.app.frames.as_dict()})

    def _cmd_speech(self, command: dict[str, Any], _received_s: float, reply: Reply) -> None:
        """The speech output's state; with `action` (toggle, repeat, pause,
        read_receipt, quieter, louder) that action first (ui/speech_app.py)."""
        action = command.get("action")
        if action is not None:
            if action not in ("toggle", "repeat", "pause", "read_receipt", "quieter",
                              "louder"):
                raise CommandError(f"action: {action!r} is not toggle, repeat, pause, "
                                   "read_receipt, quieter or louder")
            self.app.speech.do(action)
        reply({"ok": True, **self.app.speech.state()})

    def _cmd_key(self, command: dict[str, Any], _received_s: float, reply: Reply) -> None:
        """A key pressed as the board's GPIO keys send it: {"key": "f1"}."""
        try:
            used = self.app.speech.press_key(str(command.get("key")))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        reply({"ok": True, "used": used})

    def _cmd_hold(self, command: dict[str, Any], _received_s: float, reply: Reply) -> None:
        """A touch at window pixel x, y (from the bottom left) held `hold_s` seconds;
        the reply comes after the lift."""
        try:
            x, y = float(command["x"]), float(command["y"])
            hold_s = float(command.get("hold_s", 2.5))
        except (KeyError, TypeError, ValueError):
            raise CommandError("x, y: window pixels are required (hold_s optional)") \
                from None
        self.app.speech.hold(x, y, hold_s, lambda: reply({"ok": True}))

    def _cmd_quit(self, _command: dict[str, Any], _received_s: float, reply: Reply) -> None:
        reply({"ok": True})
        _on_kivy_thread(lambda _dt: self.app.stop(), 0.05)


class ControlServer:
    """Serves the automation socket; `execute(command, received_s, reply)` is called on
    the Kivy thread and may call `reply` later (also on the Kivy thread)."""

    def __init__(self, path: str, execute: Callable[[dict[str, Any], float, Reply], None],
                 timeout_s: float = 15.0) -> None:
        self.path = path
        self._execute = execute
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._closed = threading.Event()

    def start(self) -> ControlServer:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old_umask)
        sock.listen(8)
        self._sock = sock
        threading.Thread(target=self._accept, name="ui-control", daemon=True).start()
        return self

    def close(self) -> None:
        self._closed.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _accept(self) -> None:
        while not self._closed.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="ui-control-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                received_s = time.perf_counter()
                reply = self._handle(line, received_s)
                try:
                    conn.sendall(json.dumps(reply).encode() + b"\n")
                except OSError:
                    return

    def _handle(self, line: bytes, received_s: float) -> dict[str, Any]:
        try:
            command = json.loads(line)
        except ValueError as exc:
            return {"ok": False, "error": f"not a JSON line: {exc}"}
        if not isinstance(command, dict):
            return {"ok": False, "error": "a command is a JSON object {\"cmd\": ...}"}
        done = threading.Event()
        result: dict[str, Any] = {}

        def reply(answer: dict[str, Any]) -> None:
            if not done.is_set():
                result.update(answer)
                done.set()

        def run(_dt: float) -> None:
            try:
                self._execute(command, received_s, reply)
            except Exception as exc:  # a bug in a command: answer it, keep the app
                log.exception("control command failed")
                reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})

        _on_kivy_thread(run)
        if not done.wait(self.timeout_s):
            return {"ok": False, "error": f"no answer within {self.timeout_s} s"}
        return result


class UiControl:
    """A client of the automation socket for tests, the demo and the benchmark (no
    Kivy import): `UiControl(path).cmd("press", id="lang_de")` -> the reply dict."""

    def __init__(self, path: str, timeout_s: float = 20.0) -> None:
        self.path = path
        self.timeout_s = timeout_s

    def cmd(self, cmd: str, **fields: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout_s)
            sock.connect(self.path)
            sock.sendall(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")
            with sock.makefile("rb") as lines:
                line = lines.readline()
        if not line:
            raise ConnectionError(f"the UI closed {self.path} without answering {cmd!r}")
        return dict(json.loads(line))
