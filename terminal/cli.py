"""The `evterm` command: one entry point, subcommands registered by their modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from terminal import __version__
from terminal.config import DEFAULT_CONFIG_PATH, check_file, render_reference
from terminal.kernel.logsetup import setup_logging


def _config_check(args: argparse.Namespace) -> int:
    return check_file(args.file, sys.stdout, sys.stderr)


def _config_docs(args: argparse.Namespace) -> int:
    print(render_reference())
    return 0


def _register_config(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="check a configuration file, print its reference")
    sub = config.add_subparsers(dest="config_command", required=True)
    check = sub.add_parser("check", help="validate a TOML configuration file")
    check.add_argument("file", nargs="?", default=str(DEFAULT_CONFIG_PATH))
    check.set_defaults(func=_config_check)
    docs = sub.add_parser("docs", help="print the configuration reference (Markdown)")
    docs.set_defaults(func=_config_docs)


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv (the first word that is not an option or its value)."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI; for `ui` only the touchscreen's command, so the UI process does not load
    the drivers, Modbus and cryptography it never uses (its memory is the screen's); for
    `report` only the report's (it starts fast beside the daemon)."""
    parser = argparse.ArgumentParser(
        prog="evterm", description="Payment terminal firmware for a public DC charger"
    )
    parser.add_argument("--version", action="version", version=f"evterm {__version__}")
    parser.add_argument("--log-level", default="WARNING",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    subparsers = parser.add_subparsers(dest="command", required=True)
    from ui import cli as ui_cli

    if command == "ui":
        ui_cli.register(subparsers)
        return parser
    from terminal.report import cli as report_cli

    if command == "report":  # on the board beside the daemon: no drivers, no simulators
        report_cli.register(subparsers)
        return parser
    from drivers.meter import cli as meter_cli
    from hw_mocks import cli as sim_cli
    from hw_mocks import demo
    from terminal import card_cli, daemon_cli, service_cli
    from terminal.pricing import cli as price_cli
    from terminal.signed import cli as ocmf_cli
    from terminal.update import cli as update_cli
    from terminal.update import release as release_cli

    meter_cli.register(subparsers)
    sim_cli.register(subparsers)
    price_cli.register(subparsers)
    demo.register(subparsers)
    daemon_cli.register(subparsers)
    card_cli.register(subparsers)
    service_cli.register(subparsers)
    ocmf_cli.register(subparsers)
    update_cli.register(subparsers)
    release_cli.register(subparsers)
    report_cli.register(subparsers)
    ui_cli.register(subparsers)
    _register_config(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_command_in(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
