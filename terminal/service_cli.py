"""`evterm service ...`: the technicians' service menu from a shell (SSH), over the
daemon's local API (docs/service.md).

Commands: `login [--wait-card S] [--pin-stdin]`, `logout`, `diag [--json]`, `receipt
SESSION [--language L]`, `out-of-service --reason TEXT`, `in-service`, `stop`, `resend`,
`restart`, `selfcheck`, `export FOLDER`, `closing [--json]` (the end-of-day closing now,
docs/reconciliation.md), `z-report [--json]` (the latest Z-report), `update FOLDER
--version V` (a signed release from the USB stick, docs/updates.md), `wait-idle
[--timeout-s S]` (until no session is open: install.sh before a restart), and `set-pin
--card UID --pins-file F [--pin-stdin]`, which writes the pins file and needs no daemon.

The daemon's socket comes from `--socket`, else from `[localapi] socket_path` of the
config file (`--config`, default /etc/evterm/evterm.toml; only that key is read, so a
config the technician may not wholly read or validate still gives it), else the default
/run/evterm/local.sock when the default config file cannot be read. A daemon that cannot
be reached is named with the socket tried, where that path came from and how to pass
another (`--socket PATH`). The token a login returns is kept in
`$XDG_RUNTIME_DIR/evterm-service-token`, else `~/.cache/evterm/service-token` (mode
0600; `--token-file` elsewhere) and sent with every later command; `logout` removes it.
The PIN is asked for without echo (getpass), or read as one line from stdin with
`--pin-stdin`; it is never shown or written anywhere.

Exit codes: 0 done, 1 refused by the daemon (its message on stderr, naming the field at
fault), 2 bad usage or the daemon cannot be reached.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from terminal.config import DEFAULT_CONFIG_PATH
from terminal.kernel.clock import parse_time
from terminal.kernel.formatting import (
    counted,
    format_age,
    format_duration,
    local_time,
    station_zone,
)
from terminal.kernel.paths import LOCAL_API_SOCKET

TOKEN_NAME = "evterm-service-token"
REQUEST_TIMEOUT_S = 10.0
SLOW_TIMEOUT_S = 60.0  # export (files on a USB stick), the meter self-check, a closing
ACTIONS = {"out-of-service": "out_of_service", "in-service": "in_service",
           "stop": "stop_session", "resend": "resend_outbox", "restart": "restart",
           "selfcheck": "meter_selfcheck", "export": "export", "closing": "closing",
           "z-report": "z_report", "update": "update"}


def register(subparsers: argparse._SubParsersAction) -> None:
    service = subparsers.add_parser(
        "service", help="service menu for technicians (card + PIN login, diagnostics, "
        "actions)")
    where = service.add_mutually_exclusive_group()
    where.add_argument("--config", default=None, help="config file naming the socket")
    where.add_argument("--socket", default=None, help="local API socket path")
    service.add_argument("--token-file", default=None,
                         help="where the login token is kept (default: $XDG_RUNTIME_DIR/"
                         f"{TOKEN_NAME} or ~/.cache/evterm/service-token)")
    sub = service.add_subparsers(dest="service_command", required=True)
    login = sub.add_parser("login", help="log in: tap your technician card, then the PIN")
    login.add_argument("--wait-card", type=float, default=0.0, metavar="S",
                       help="wait up to S seconds for the technician card to be tapped")
    login.add_argument("--pin-stdin", action="store_true",
                       help="read the PIN as one line from stdin")
    sub.add_parser("logout", help="log out")
    diag = sub.add_parser("diag", help="diagnostics: meter, readers, charger, backend, ...")
    diag.add_argument("--json", action="store_true", help="print the diagnostics as JSON")
    receipt = sub.add_parser("receipt", help="show a session's receipt")
    receipt.add_argument("session_id")
    receipt.add_argument("--language", default="en", choices=("en", "de", "fr", "nl"))
    out = sub.add_parser("out-of-service", help="take the charger out of service")
    out.add_argument("--reason", required=True, help="why (shown to drivers)")
    sub.add_parser("in-service", help="put the charger back in service")
    sub.add_parser("stop", help="stop the running session (reason Technician)")
    sub.add_parser("resend", help="send the outbox to the backend now")
    sub.add_parser("restart", help="restart the daemon (clean stop, exit code 75)")
    sub.add_parser("selfcheck", help="meter self-check (two readings, serial, counter)")
    export = sub.add_parser("export", help="write a diagnostics bundle into FOLDER")
    export.add_argument("folder", help="a folder under [service] export_allowed_root")
    update = sub.add_parser("update", help="install a signed release from a copy of the "
                            "release repository in FOLDER (the USB stick; docs/updates.md)")
    update.add_argument("folder", help="a folder under [service] export_allowed_root")
    update.add_argument("--version", required=True, help="the release to install")
    closing = sub.add_parser("closing", help="end-of-day closing now: reconcile the card "
                             "payments, repair what may be, print the Z-report")
    closing.add_argument("--json", action="store_true", help="print the Z-report as JSON")
    z_report = sub.add_parser("z-report", help="print the latest Z-report")
    z_report.add_argument("--json", action="store_true", help="print the Z-report as JSON")
    set_pin = sub.add_parser("set-pin", help="set a technician's PIN in the pins file")
    set_pin.add_argument("--card", required=True, help="the technician card's UID (hex)")
    set_pin.add_argument("--pins-file", required=True, help="[service] pins_file")
    set_pin.add_argument("--pin-stdin", action="store_true",
                         help="read the PIN as one line from stdin")
    wait_idle = sub.add_parser(
        "wait-idle", help="wait until no session is open (before a restart or an upgrade)")
    wait_idle.add_argument("--timeout-s", type=float, default=900.0,
                           help="give up after this long: exit 1 (default 900)")
    wait_idle.add_argument("--interval-s", type=float, default=5.0,
                           help="time between two questions to the daemon (default 5)")
    service.set_defaults(func=run_service_command)


def token_path(args: argparse.Namespace) -> Path:
    if args.token_file:
        return Path(args.token_file)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / TOKEN_NAME
    return Path.home() / ".cache" / "evterm" / "service-token"


def _save_token(path: Path, token: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode("ascii"))
    finally:
        os.close(fd)


def _read_pin(from_stdin: bool, confirm: bool = False) -> str:
    if from_stdin:
        return sys.stdin.readline().strip()
    pin = getpass.getpass("PIN: ")
    if confirm and getpass.getpass("PIN again: ") != pin:
        raise ValueError("pin: the two PINs differ")
    return pin


class SocketUnknown(ValueError):
    """No socket given and the named config file does not say one."""


def socket_path(args: argparse.Namespace) -> tuple[str, str]:
    """(the daemon's socket, where that path came from). Only `[localapi] socket_path`
    of the config file is read. SocketUnknown when `--config FILE` was given and FILE
    cannot be read or parsed."""
    if args.socket:
        return str(args.socket), "--socket"
    config = Path(args.config) if args.config else DEFAULT_CONFIG_PATH
    try:
        data = tomllib.loads(config.read_bytes().decode("utf-8"))
    except OSError as exc:
        if args.config:
            raise SocketUnknown(f"--config {config}: cannot read it ({exc.strerror or exc})"
                                ) from None
        return LOCAL_API_SOCKET, f"the default; {config} cannot be read: " \
            f"{exc.strerror or exc}"
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SocketUnknown(f"{config}: not a TOML file ({exc})") from None
    localapi = data.get("localapi")
    path = localapi.get("socket_path") if isinstance(localapi, dict) else None
    if path is None:
        return LOCAL_API_SOCKET, f"the default; {config} names none"
    if not isinstance(path, str) or not path:
        raise SocketUnknown(f"{config}: localapi.socket_path = {path!r}: expected a path")
    return path, f"localapi.socket_path in {config}"


HOW_TO_PASS = "pass the daemon's socket with: evterm service --socket PATH ..."


def run_service_command(args: argparse.Namespace) -> int:
    command = args.service_command
    if command == "set-pin":
        return _set_pin(args)
    try:
        path, source = socket_path(args)
    except SocketUnknown as exc:
        print(f"evterm service: {exc}; {HOW_TO_PASS}", file=sys.stderr)
        return 2
    if command == "wait-idle":
        return _wait_idle(path, args.timeout_s, args.interval_s)
    token_file = token_path(args)
    if command == "login":
        try:
            pin = _read_pin(args.pin_stdin)
        except (EOFError, KeyboardInterrupt):
            return 2
        message: dict[str, Any] = {"op": "service_login", "pin": pin}
        if args.wait_card > 0:
            message["wait_card_s"] = args.wait_card
            print(f"tap your technician card within {args.wait_card:g} s", file=sys.stderr)
        reply = _request(path, message, REQUEST_TIMEOUT_S + args.wait_card, source)
        if reply is None or not reply.get("ok"):
            return _refused(command, reply)
        _save_token(token_file, str(reply["token"]))
        print(f"logged in as {reply['technician']}; logged out after "
              f"{reply['expires_in_s']:g} s without a command")
        return 0
    token = token_file.read_text(encoding="ascii").strip() if token_file.exists() else None
    message, timeout_s = _message(args, token)
    reply = _request(path, message, timeout_s, source)
    if reply is None or not reply.get("ok"):
        return _refused(command, reply)
    if command == "logout":
        token_file.unlink(missing_ok=True)
    _show(args, reply)
    return 0


def _message(args: argparse.Namespace, token: str | None) -> tuple[dict[str, Any], float]:
    command = args.service_command
    if command == "logout":
        return {"op": "service_logout", "token": token}, REQUEST_TIMEOUT_S
    if command == "diag":
        return {"op": "service_diagnostics", "token": token}, REQUEST_TIMEOUT_S
    if command == "receipt":
        return {"op": "service_receipt", "token": token, "session_id": args.session_id,
                "language": args.language}, REQUEST_TIMEOUT_S
    message: dict[str, Any] = {"op": "service_action", "token": token,
                               "action": ACTIONS[command]}
    if command == "out-of-service":
        message["reason"] = args.reason
    elif command in ("export", "update"):
        message["folder"] = os.path.abspath(args.folder)
        if command == "update":
            message["version"] = args.version
    slow = command in ("export", "selfcheck", "closing")
    return message, SLOW_TIMEOUT_S if slow else REQUEST_TIMEOUT_S


def _request(path: str, message: dict[str, Any], timeout_s: float,
             source: str = "--socket") -> dict[str, Any] | None:
    from terminal.localapi import request

    try:
        return request(path, message, timeout_s)
    except OSError as exc:
        why = exc.strerror or str(exc)
        print(f"evterm service: cannot reach the daemon at {path} (from {source}): {why}",
              file=sys.stderr)
        if source != "--socket":
            print(HOW_TO_PASS, file=sys.stderr)
        return None


def _refused(command: str, reply: dict[str, Any] | None) -> int:
    if reply is None:
        return 2
    error = str(reply.get("error"))
    print(f"evterm service {command}: {error}", file=sys.stderr)
    if error.startswith("token:"):
        print("log in with: evterm service login", file=sys.stderr)
    return 1


def _show(args: argparse.Namespace, reply: dict[str, Any]) -> None:
    command = args.service_command
    if command == "diag":
        diagnostics = reply["diagnostics"]
        print(json.dumps(diagnostics, indent=2, sort_keys=True) if args.json
              else render_report(diagnostics))
    elif command == "receipt":
        print(reply["text"])
    elif command == "logout":
        print(f"logged out ({reply['technician']})")
    elif command == "selfcheck":
        for check in reply["checks"]:
            print(f"{'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['detail']}")
        print("meter self-check " + ("passed" if reply["passed"] else "FAILED"))
    elif command == "export":
        print(f"bundle written: {reply['path']} ({len(reply['files'])} files, "
              f"{reply['bytes']} bytes)")
    elif command == "update":
        print(f"update to {reply['version']} handed to the updater; follow it with: "
              "evterm update status")
    elif command in ("closing", "z-report"):
        print(json.dumps(reply["z_report"], indent=2, sort_keys=True) if args.json
              else reply["text"], end="\n" if args.json else "")
    elif command == "restart":
        print(f"the daemon restarts (exit code {reply['exit_code']})")
    elif command == "resend":
        online = "online" if reply["backend_online"] else "offline"
        print(f"outbox: {outbox_text(reply['pending'], reply.get('oldest_age_s'))}; "
              f"backend {online}")
    elif command in ("out-of-service", "in-service"):
        oos = reply["out_of_service"]
        print("out of service: " + oos["reason"] if oos else "in service")
    else:
        print(f"{command}: done")


def _set_pin(args: argparse.Namespace) -> int:
    from terminal.service.pins import normalize_card, set_pin

    try:
        card = normalize_card(args.card)
        pin = _read_pin(args.pin_stdin, confirm=True)
        set_pin(args.pins_file, card, pin)
    except ValueError as exc:
        print(f"evterm service set-pin: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"evterm service set-pin: {args.pins_file}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        return 2
    print(f"PIN set for card \u2026{card[-4:]} in {args.pins_file}")
    return 0


def _wait_idle(path: str, timeout_s: float, interval_s: float) -> int:
    """0 once the daemon has no session open, 1 when one is still open after timeout_s,
    2 when the daemon cannot be reached."""
    import time

    from terminal.session.model import OPEN_PHASES

    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        reply = _request(path, {"op": "status"}, REQUEST_TIMEOUT_S)
        if reply is None or not reply.get("ok"):
            return _refused("wait-idle", reply)
        phase = str(reply["state"].get("phase"))
        if phase not in OPEN_PHASES:
            print(f"idle: {phase}, no session open")
            return 0
        if time.monotonic() + interval_s > deadline:
            print(f"evterm service wait-idle: a session is still open ({phase}) after "
                  f"{timeout_s:g} s", file=sys.stderr)
            return 1
        time.sleep(max(0.05, interval_s))


# ---- the readable report ----------------------------------------------------------------------


def outbox_text(pending: object, oldest_age_s: object) -> str:
    """'nothing waiting', '1 message waiting, the oldest for 42 s', '3 messages waiting'."""
    count = pending if isinstance(pending, int) else 0
    if not count:
        return "nothing waiting"
    text = f"{counted(count, 'message')} waiting"
    if isinstance(oldest_age_s, int | float) and not isinstance(oldest_age_s, bool):
        text += f", the oldest for {format_age(oldest_age_s)}"
    return text


def _yes(value: object) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _unit(value: object, unit: str) -> str:
    return "-" if value in (None, "") else f"{value} {unit}"


class _Times:
    """The daemon's ISO UTC times in the station's local time with its UTC offset, as the
    receipts print them ([station] timezone from the diagnostics)."""

    def __init__(self, d: dict[str, Any]) -> None:
        station = d.get("station") or {}
        name = station.get("timezone") or ((d.get("config") or {}).get("station") or {}
                                           ).get("timezone")
        self.zone = station_zone(name)

    def __call__(self, value: object) -> str:
        moment = parse_time(value, naive_as_utc=True)
        if moment is None:
            return "-" if value is None else str(value)
        return local_time(moment, self.zone)


def render_report(d: dict[str, Any]) -> str:
    """The diagnostics as a technician reads them in a terminal: labels in words, units
    after the values, times in the station's local time."""
    when = _Times(d)
    station = d.get("station", {})
    meter = d.get("meter", {})
    reading = meter.get("last_reading") or {}
    counters = meter.get("counters", {})
    charger = d.get("charger", {})
    backend = d.get("backend", {})
    storage = d.get("storage", {})
    software = d.get("software", {})
    lines = [f"evterm diagnostics of {station.get('id')} at {when(d.get('generated_at'))}", ""]
    oos = station.get("out_of_service")
    lines.append(f"station   phase {station.get('phase')}, accepting sessions "
                 f"{_yes(station.get('accepting_sessions'))}"
                 + (f" ({station.get('refusal')})" if station.get("refusal") else ""))
    if oos:
        lines.append(f"          OUT OF SERVICE since {when(oos['since'])} by {oos['by']}: "
                     f"{oos['reason']}")
    lines.append(f"meter     {meter.get('model')} at {meter.get('url')}, serial "
                 f"{meter.get('serial') or '-'} (expected "
                 f"{meter.get('expected_serial') or 'any'}), polled every "
                 f"{_unit(meter.get('poll_interval_s'), 's')}")
    if reading:
        lines.append(f"          {_unit(reading.get('energy_wh'), 'Wh')}, "
                     f"{_unit(reading.get('power_w'), 'W')}, "
                     f"{_unit(reading.get('voltage_v'), 'V')}, "
                     f"{_unit(reading.get('current_a'), 'A')} at {when(reading.get('at'))}")
    by_kind = counters.get("errors_by_kind") or {}
    kinds = ", ".join(f"{kind} {count}" for kind, count in by_kind.items())
    lines.append(f"          fault {meter.get('fault') or 'none'}; polls "
                 f"{counters.get('polls')}, failed {counters.get('failed_polls')}"
                 + (f" ({kinds})" if kinds else ""))
    readers = d.get("readers", {})
    named = readers.get("readers") or {}
    if not named:
        lines.append("readers   none seen")
    for i, (name, info) in enumerate(sorted(named.items())):
        tap = info.get("last_tap")
        last = (f"; last tap {when(tap['at'])} {tap['result']}/{tap['reason']}"
                if tap else "")
        lines.append(f"{'readers' if i == 0 else '':<10}{name}: {info.get('state')}{last}")
    lines.append(f"charger   {charger.get('kind')} at {charger.get('url')}: EV state "
                 f"{charger.get('ev_state') or '-'}, plugged {_yes(charger.get('plugged'))}, "
                 f"output wanted {_yes(charger.get('output_wanted'))} / commanded "
                 f"{_yes(charger.get('output_commanded'))} / confirmed "
                 f"{_yes(charger.get('output_confirmed'))}, fault "
                 f"{charger.get('fault') or 'none'}")
    outbox = outbox_text(backend.get("outbox_depth"), backend.get("oldest_undelivered_age_s"))
    lines.append(f"backend   {backend.get('kind')}, connected {_yes(backend.get('connected'))}"
                 f", last acknowledgement {when(backend.get('last_ack_at'))}, outbox {outbox}")
    free = storage.get("free_bytes")
    size = storage.get("database_bytes")
    lines.append(f"storage   {storage.get('database')}: "
                 f"{_mib(size) if isinstance(size, int) else '-'}, "
                 f"{_mib(free) if isinstance(free, int) else '-'} free, storage ok "
                 f"{_yes(storage.get('storage_ok'))}")
    uptime_s = software.get("uptime_s")
    lines.append(f"software  evterm {software.get('version')}, Python {software.get('python')}"
                 f", up {format_duration(uptime_s) if isinstance(uptime_s, int) else '-'}")
    lines += ["", "recent sessions:"]
    for s in d.get("recent_sessions", []) or [{"id": "none"}]:
        if s["id"] == "none":
            lines.append("  none")
            continue
        total = f"{s['total']} {s['currency']}" if s.get("total") else "-"
        lines.append(f"  {s['id']}  {when(s.get('opened_at'))}  {s.get('phase')}  "
                     f"{s.get('stop_reason') or '-'}  {_unit(s.get('energy_wh'), 'Wh')}  "
                     f"{total}")
    lines += ["", "recent faults:"]
    faults = d.get("recent_faults", [])
    lines += [f"  {when(f['at'])}  {f['source']}  {f['event']}  {f.get('fault')}"
              for f in faults]
    if not faults:
        lines.append("  none")
    lines += ["", "configuration (secrets masked):"]
    for section, values in (d.get("config") or {}).items():
        lines.append(f"  [{section}]")
        lines += [f"    {key} = {value!r}" for key, value in values.items()]
    return "\n".join(lines)


def _mib(size: int) -> str:
    return f"{size / 1_048_576:.1f} MiB"
