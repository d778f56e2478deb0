"""`evterm daemon` and `evterm session ...`: run the terminal, drive it from a shell.

`evterm session` talks to a running daemon over the local API socket (from the config
file, or `--socket`), so a technician over SSH and the tests use the same path as the
touchscreen. `session start` and `session list` need the service role (root or the
daemon's user; docs/local-api.md), and `start` a technician's login (`evterm service
login`; its token file is read) unless the daemon runs with `[localapi]
dev_free_start`.

`evterm daemon` creates what it writes (the journal, its WAL, the log file) for its own
user alone: umask 077, the state folder 0700.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from terminal.config import DEFAULT_CONFIG_PATH, ConfigError, config_warnings, load_config
from terminal.kernel.formatting import station_zone
from terminal.kernel.logsetup import get_logger, setup_logging

DAEMON_UMASK = 0o077  # the journal, its WAL and the log: the daemon's user alone
STATE_DIR_MODE = 0o700


def register(subparsers: argparse._SubParsersAction) -> None:
    daemon = subparsers.add_parser(
        "daemon", help="run the terminal (meter, charger, sessions)",
        description="The terminal itself: polls the meter and the charger, runs the sessions "
        "(journaled in SQLite before anything is acted on), the card readers, card payment, "
        "the backend link and the local API for the touchscreen and `evterm session` / "
        "`evterm service`. Under systemd: Type=notify with a watchdog (docs/deployment.md). "
        "Exit codes: 0 stopped, 2 bad configuration, 3 the journal cannot be opened safely, "
        "75 restart asked for (service menu).")
    daemon.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="TOML config file")
    daemon.add_argument("--clock-speed", type=float, default=1.0,
                        help="run time this many times faster (demos and tests only)")
    daemon.add_argument("--clock-anchor", type=float, default=None,
                        help="epoch seconds the scaled clock starts from (default: now)")
    daemon.set_defaults(func=run_daemon_command)

    session = subparsers.add_parser("session", help="start/stop/show sessions of a running daemon")
    where = session.add_mutually_exclusive_group()
    where.add_argument("--config", default=None, help="config file naming the socket")
    where.add_argument("--socket", default=None, help="local API socket path")
    sub = session.add_subparsers(dest="session_command", required=True)
    start = sub.add_parser("start", help="authorise a session (local/app start)")
    start.add_argument("--id-token", required=True)
    start.add_argument("--source", choices=("local", "app"), default="local")
    start.add_argument("--cost-cap", help="cap incl. VAT in the tariff currency, e.g. 25.00")
    start.add_argument("--energy-cap-wh", help="energy cap in Wh")
    start.add_argument("--token-file", default=None,
                       help="the technician's login token, as `evterm service login` keeps "
                       "it (default: that command's default)")
    stop = sub.add_parser("stop", help="stop charging")
    stop.add_argument("--id-token")
    stop.add_argument("--reason", choices=("Local", "Remote", "Technician"), default="Local")
    status = sub.add_parser("status", help="the daemon's current state (a table; --json "
                            "for machines)")
    status.add_argument("--json", action="store_true",
                        help="print the daemon's state as JSON (times in ISO UTC)")
    receipt = sub.add_parser("receipt", help="print a receipt (default: the latest)")
    receipt.add_argument("session_id", nargs="?")
    receipt.add_argument("--language", default="en", choices=("en", "de", "fr", "nl"))
    receipt.add_argument("--json", action="store_true", help="print the receipt's JSON")
    listing = sub.add_parser("list", help="recent sessions (a table; --json for machines)")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--json", action="store_true",
                         help="print the sessions as JSON (times in ISO UTC)")
    session.set_defaults(func=run_session_command)


def run_daemon_command(args: argparse.Namespace) -> int:
    from terminal.kernel.clock import make_clock
    from terminal.station import run_station

    started_s = time.monotonic()
    os.umask(DAEMON_UMASK)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from terminal.kernel.clocksync import ClockSyncSettingError, check_override

    try:
        check_override()
    except ClockSyncSettingError as exc:
        print(f"evterm daemon: {exc}", file=sys.stderr)
        return 2
    if config.localapi.dev_free_start and started_by_systemd():
        print("evterm daemon: localapi.dev_free_start is for development only and refused "
              "under systemd: it lets root and the daemon's user start sessions with any id "
              "token", file=sys.stderr)
        return 2
    try:
        state_warning = make_state_dir(Path(config.station.state_dir))
        setup_logging(config.logging.level, log_file=config.service.log_file or None)
    except OSError as exc:
        print(f"evterm daemon: {exc}", file=sys.stderr)
        return 2
    if state_warning:
        get_logger("daemon").warning(state_warning)
    for warning in config_warnings(config):  # dev_free_start, MQTT without TLS, ...
        get_logger("config").warning("%s", warning)
    if args.clock_speed <= 0:
        print(f"evterm daemon: --clock-speed must be > 0, got {args.clock_speed}",
              file=sys.stderr)
        return 2
    clock = make_clock(args.clock_speed, args.clock_anchor)
    try:
        return asyncio.run(run_station(config, clock, started_s))
    except KeyboardInterrupt:
        return 0


def started_by_systemd() -> bool:
    """Whether this process is a systemd service's main process (its invocation id set,
    its parent the service manager), not a child of something systemd runs (a CI job)."""
    return bool(os.environ.get("INVOCATION_ID")) and os.getppid() == 1


def make_state_dir(path: Path) -> str | None:
    """The state folder (journal, WAL, pushed tariffs), created 0700. An existing folder
    is left as it is (it may be shared); returned is a warning when others may enter
    it (the files in it are created 0600 all the same)."""
    try:
        path.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise OSError(f"station.state_dir {path}: cannot create: {exc.strerror}") from None
    if mode & 0o077:
        return f"station.state_dir {path}: mode {mode:04o} lets other users in; make it 0700"
    return None


def _socket_path(args: argparse.Namespace) -> str:
    if args.socket:
        return str(args.socket)
    config = load_config(args.config or DEFAULT_CONFIG_PATH)
    return config.localapi.socket_path


def _login_token(args: argparse.Namespace) -> str | None:
    """The technician's login token from `evterm service login`, if there is one."""
    from terminal.service_cli import token_path

    path = token_path(args)
    try:
        return path.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def run_session_command(args: argparse.Namespace) -> int:
    from terminal.localapi import request

    try:
        path = _socket_path(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    command = args.session_command
    message: dict[str, object] = {"op": command}
    if command == "start":
        message.update(id_token=args.id_token, source=args.source)
        if args.cost_cap:
            message["cost_cap"] = args.cost_cap
        if args.energy_cap_wh:
            message["energy_cap_wh"] = args.energy_cap_wh
        if (login := _login_token(args)) is not None:
            message["token"] = login
    elif command == "stop":
        message["reason"] = args.reason
        if args.id_token:
            message["id_token"] = args.id_token
    elif command == "receipt":
        message["language"] = args.language
        if args.session_id:
            message["session_id"] = args.session_id
    elif command == "list":
        message = {"op": "sessions", "limit": args.limit}
    try:
        reply = request(path, message)
    except OSError as exc:
        print(f"evterm session: cannot reach the daemon at {path}: {exc}", file=sys.stderr)
        return 2
    if not reply.get("ok"):
        print(f"evterm session {command}: {reply.get('error')}", file=sys.stderr)
        return 1
    if command == "receipt" and not args.json:
        print(reply["text"])
    elif command == "receipt":
        print(json.dumps(reply["receipt"], indent=2, sort_keys=True))
    else:
        _print_reply(command, args, reply, path)
    return 0


def _print_reply(command: str, args: argparse.Namespace, reply: dict[str, Any],
                 path: str) -> None:
    """status and list: a table for people, --json for machines (one time format)."""
    from terminal.localapi import request
    from terminal.session_view import machine_json, sessions_table, status_table

    if getattr(args, "json", False) or command not in ("status", "list"):
        print(machine_json(reply))
    elif command == "status":
        print(status_table(reply["state"]))
    else:
        state = request(path, {"op": "status"}).get("state") or {}
        print(sessions_table(reply["sessions"], station_zone(state.get("timezone"))))
