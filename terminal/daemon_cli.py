"""`evterm daemon` and `evterm session ...`: run the terminal, drive it from a shell.

`evterm session` talks to a running daemon over the local API socket (from the config
file, or `--socket`), so a technician over SSH and the tests use the same path as the
touchscreen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from terminal.config import DEFAULT_CONFIG_PATH, ConfigError, config_warnings, load_config
from terminal.kernel.logsetup import get_logger, setup_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    daemon = subparsers.add_parser("daemon", help="run the terminal (meter, charger, sessions)")
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
    stop = sub.add_parser("stop", help="stop charging")
    stop.add_argument("--id-token")
    stop.add_argument("--reason", choices=("Local", "Remote", "Technician"), default="Local")
    sub.add_parser("status", help="the daemon's current state")
    receipt = sub.add_parser("receipt", help="print a receipt (default: the latest)")
    receipt.add_argument("session_id", nargs="?")
    receipt.add_argument("--language", default="en", choices=("en", "de", "fr", "nl"))
    receipt.add_argument("--json", action="store_true", help="print the receipt's JSON")
    listing = sub.add_parser("list", help="recent sessions")
    listing.add_argument("--limit", type=int, default=20)
    session.set_defaults(func=run_session_command)


def run_daemon_command(args: argparse.Namespace) -> int:
    from terminal.kernel.clock import make_clock
    from terminal.station import run_station

    started_s = time.monotonic()
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(config.logging.level)
    for warning in config_warnings(config):
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


def _socket_path(args: argparse.Namespace) -> str:
    if args.socket:
        return str(args.socket)
    config = load_config(args.config or DEFAULT_CONFIG_PATH)
    return config.localapi.socket_path


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
        reply.pop("ok", None)
        print(json.dumps(reply, indent=2, sort_keys=True))
    return 0
