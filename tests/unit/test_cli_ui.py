"""`evterm ui` builds only the touchscreen's command: the UI process never loads the
drivers, Modbus, PC/SC or cryptography (its memory is the screen's, see bench_ui)."""

from __future__ import annotations

import subprocess
import sys

from terminal.cli import _command_in, build_parser


def test_the_subcommand_is_found_after_global_options():
    assert _command_in(["--log-level", "INFO", "ui", "--socket", "s"]) == "ui"
    assert _command_in(["ui"]) == "ui"
    assert _command_in(["--version"]) is None
    assert _command_in(["session", "status"]) == "session"


def test_ui_parser_has_only_the_ui_command_and_the_full_one_has_all():
    assert build_parser("ui").parse_args(["ui", "--socket", "s"]).command == "ui"
    full = build_parser()
    for command in (["daemon"], ["ui", "--socket", "s"], ["config", "docs"]):
        assert full.parse_args(command).command == command[0]


def test_the_ui_process_does_not_import_the_daemons_libraries():
    code = ("import sys\nfrom terminal.cli import build_parser\nbuild_parser('ui')\n"
            "import ui.view, ui.buttons, ui.messages, ui.client, ui.i18n\n"
            "heavy = ('cryptography', 'pymodbus', 'paho', 'serial', 'smartcard', 'drivers',"
            " 'hw_mocks', 'terminal.daemon', 'terminal.store')\n"
            "print(sorted({m for m in sys.modules if m.startswith(heavy)}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out


def _subparser(parser, *names):
    import argparse

    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_daemon_demo_and_ui_help_describe_the_command():
    full = build_parser()
    for command in ("daemon", "demo", "ui"):
        description = _subparser(full, command).description
        assert description and len(description) > 80, command
    assert "Exit codes" in _subparser(full, "daemon").format_help()


def test_every_sim_meter_option_has_help():
    meter = _subparser(build_parser(), "sim", "meter")
    bare = [a.option_strings for a in meter._actions if a.option_strings and not a.help]
    assert bare == []
