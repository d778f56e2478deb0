"""`evterm ui`: the touchscreen app, a client of the daemon's local API.

    evterm ui --socket /run/evterm/local.sock [--control PATH] [--size 800x480]
              [--fullscreen] [--language de]

Kivy is imported only when the command runs (the rest of evterm never needs it). Kivy
reads no config file and writes no log file (KIVY_NO_CONFIG, KIVY_NO_FILELOG); its
messages go to stderr at warning level (the missing-libmtdev traceback Kivy logs on
every start is dropped: install Debian's libmtdev1 for mtdev touch input). SDL2 picks
the video driver (X11 with DISPLAY set, else what the board offers, e.g. KMS/DRM). A
window that cannot be opened ends the command with Kivy's error on stderr, non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from typing import Any

from terminal.kernel.paths import LOCAL_API_SOCKET
from ui.i18n import LANGUAGES

DEFAULT_SIZE = (800, 480)
MIN_SIZE = (320, 240)


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{3,5})x(\d{3,5})", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"size: {text!r} is not WIDTHxHEIGHT, e.g. 800x480")
    width, height = int(match[1]), int(match[2])
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise argparse.ArgumentTypeError(
            f"size: {text!r} is smaller than {MIN_SIZE[0]}x{MIN_SIZE[1]}")
    return width, height


def register(subparsers: argparse._SubParsersAction) -> None:
    ui = subparsers.add_parser(
        "ui", help="the touchscreen app (Kivy), a client of the daemon's local API",
        description="The touchscreen: the driver's screens (prices, card, charging, receipt) "
        "and the technicians' service menu, drawn with Kivy from the daemon's state over its "
        "local API socket. It never reads the journal, the keys or the config; when the "
        "daemon is away it says \"reconnecting\" and tries again (docs/ui.md).")
    ui.add_argument("--socket", default=LOCAL_API_SOCKET,
                    help="the daemon's local API socket (default: %(default)s)")
    ui.add_argument("--control", default=None, metavar="PATH",
                    help="serve the automation socket (ui/control.py) at PATH")
    ui.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, metavar="WxH",
                    help="window size in pixels (default 800x480)")
    ui.add_argument("--fullscreen", action="store_true",
                    help="take the whole display (kiosk: no cursor, Escape does not quit)")
    ui.add_argument("--language", choices=LANGUAGES, default=None,
                    help="ask the daemon for this screen language when first connected")
    ui.add_argument("--speech-output", default=None, metavar="OUT",
                    help="where speech goes: aplay (default), espeak, wav:DIR or none "
                    "(default from EVTERM_SPEECH_OUTPUT; docs/ui.md, Speech)")
    ui.add_argument("--large-text", action="store_true",
                    help="large text by default (the driver's toggle returns to it after "
                    "each session)")
    ui.add_argument("--high-contrast", action="store_true",
                    help="high contrast by default (the driver's toggle returns to it after "
                    "each session)")
    ui.set_defaults(func=run)


def _kivy_record_wanted(record: logging.LogRecord) -> bool:
    """Kivy's warnings and errors, without the traceback it logs on every start when
    libmtdev is absent (SDL2 and hidinput still deliver touches)."""
    return record.levelno >= logging.WARNING and not record.getMessage().startswith(
        "Input: MTDev is not supported")


def _configure_kivy(size: tuple[int, int], fullscreen: bool) -> None:
    """Environment and kivy.config settings that must precede the Window import."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONFIG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "MIXED")  # Kivy's handlers on its own logger
    logging.getLogger("kivy").addFilter(_kivy_record_wanted)

    from kivy.config import Config

    Config.set("kivy", "log_level", "warning")
    Config.set("kivy", "exit_on_escape", "0" if fullscreen else "1")
    Config.set("graphics", "width", str(size[0]))
    Config.set("graphics", "height", str(size[1]))
    Config.set("graphics", "resizable", "0" if fullscreen else "1")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "show_cursor", "0" if fullscreen else "1")
    # no multisampling: ~13 MB less and cheaper frames with software GL; text is unaffected
    Config.set("graphics", "multisamples", "0")
    Config.set("input", "mouse", "mouse,multitouch_on_demand")


def run(args: argparse.Namespace) -> int:
    from ui.speech import check_output

    output = getattr(args, "speech_output", None) or os.environ.get("EVTERM_SPEECH_OUTPUT")
    if output:
        try:
            check_output(output)
        except ValueError as exc:
            print(f"evterm ui: --speech-output: {exc}", file=sys.stderr)
            return 2
    _configure_kivy(args.size, args.fullscreen)

    from kivy.clock import Clock

    from ui.app import EvtermApp

    app = EvtermApp(args.socket, args.control, args.language, speech_output=output,
                    modes=(args.large_text, args.high_contrast))

    def stop(_signum: int, _frame: Any) -> None:
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    signal.signal(signal.SIGTERM, stop)
    app.run()
    return 0
