"""`evterm sim backend-loopback`: the backend double on a Unix socket;
`evterm sim backend-admin`: its admin client; `evterm sim gateway-keys`: a gateway
key pair for tests and the demo (docs/authorisation.md); `evterm sim backend`: the same
backend as an MQTT 5 client of a broker (hw_mocks.backend_mqtt)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hw_mocks.backend_logic import BackendLogic

ADMIN_ACTIONS = {
    "status": "print the simulator's state",
    "silent": "stop answering terminals (on) or answer again (off)",
    "delay": "answer terminal requests after SECONDS",
    "refund": "refund (part of) a captured payment and push it to the terminals",
    "local-list": "push a local list update (from FILE, or the whole token list)",
    "received": "print every message the terminals sent",
    "ledger": "print the payment ledger",
    "send-raw": "send LINE verbatim to the terminals",
    "disconnect": "drop the terminal connections",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands."""
    serve = subparsers.add_parser(
        "backend-loopback",
        help="the operator's backend (token list + payment gateway) on a Unix socket",
        description="Serves terminal.backend.loopback clients and admin requests on one "
        "socket; prints a JSON ready line; stops on SIGTERM.",
    )
    serve.add_argument("--socket", required=True, metavar="PATH")
    _add_logic_arguments(serve)
    serve.set_defaults(func=run_backend)

    admin = subparsers.add_parser(
        "backend-admin", help="drive a running `sim backend-loopback` (silence, refunds, ...)")
    actions = admin.add_subparsers(dest="backend_action", required=True)
    for action, text in ADMIN_ACTIONS.items():
        parser = actions.add_parser(action, help=text, description=text)
        parser.add_argument("--socket", required=True, metavar="PATH")
        parser.add_argument("--timeout-s", type=float, default=5.0)
        if action == "silent":
            parser.add_argument("state", choices=("on", "off"))
        elif action == "delay":
            parser.add_argument("seconds", type=float)
        elif action == "refund":
            parser.add_argument("psp_reference")
            parser.add_argument("--amount", help="default: all that is left")
            parser.add_argument("--reason")
        elif action == "local-list":
            parser.add_argument("file", nargs="?", help="a LocalListUpdate JSON file")
        elif action == "send-raw":
            parser.add_argument("line")
        if action in ("refund", "local-list", "send-raw", "disconnect"):
            parser.add_argument("--station", help="only this station (default: all)")
        parser.set_defaults(func=run_admin)

    keys = subparsers.add_parser(
        "gateway-keys", help="write a new payment gateway key pair (private + public PEM)")
    keys.add_argument("--out", required=True, metavar="DIR")
    keys.set_defaults(func=run_gateway_keys)

    _register_mqtt(subparsers)


def _add_logic_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the simulated CSMS + gateway both simulators serve."""
    parser.add_argument("--gateway-key", required=True, metavar="PRIVATE_PEM",
                        help="the gateway's X25519 private key (evterm sim gateway-keys)")
    parser.add_argument("--tokens", metavar="FILE.json",
                        help="JSON array of local list entries the CSMS knows")
    parser.add_argument("--rules", metavar="FILE.json",
                        help="JSON object {card number: {\"decline\": REASON} | "
                        "{\"partial\": \"AMOUNT\"} | {\"approve\": true}} over the defaults")
    parser.add_argument("--cache-ttl-s", type=float, default=3600.0,
                        help="cache expiry given with accepted tokens (default 3600)")
    parser.add_argument("--token-key", metavar="FILE",
                        help="the fleet tokenisation key (hex); with it, each card token "
                        "is checked against the card in the envelope")
    parser.add_argument("--token-key-id", default="k1")


def _logic(args: argparse.Namespace) -> BackendLogic:
    """The simulated CSMS + gateway the options describe; ValueError naming a bad file."""
    from hw_mocks.backend_logic import (
        BackendLogic,
        load_gateway_private_key,
        load_rules,
        load_tokens,
    )
    from terminal.payment.crypto import load_token_key

    return BackendLogic(
        load_gateway_private_key(args.gateway_key),
        load_tokens(args.tokens) if args.tokens else (),
        load_rules(args.rules) if args.rules else None,
        cache_ttl_s=args.cache_ttl_s,
        token_key=load_token_key(args.token_key, args.token_key_id)
        if args.token_key else None,
    )


def run_backend(args: argparse.Namespace) -> int:
    from hw_mocks.backend_loopback import run_forever

    try:
        logic = _logic(args)
    except ValueError as exc:
        print(f"evterm sim backend-loopback: {exc}", file=sys.stderr)
        return 2
    return run_forever(logic, args.socket)


def _admin_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    action = args.backend_action
    station = {"station_id": args.station} if getattr(args, "station", None) else {}
    if action == "silent":
        return "silent", {"on": args.state == "on"}
    if action == "delay":
        return "delay", {"delay_s": args.seconds}
    if action == "refund":
        return "push_refund", {"psp_reference": args.psp_reference, "amount": args.amount,
                               "reason": args.reason, **station}
    if action == "local-list":
        if args.file is None:
            return "push_local_list", station
        with open(args.file, encoding="utf-8") as handle:
            return "push_local_list", {"update": json.load(handle), **station}
    if action == "send-raw":
        return "send_raw", {"line": args.line, **station}
    return action, station


def run_admin(args: argparse.Namespace) -> int:
    from hw_mocks.backend_admin import admin

    try:
        cmd, values = _admin_request(args)
        reply = admin(args.socket, cmd, socket_timeout_s=args.timeout_s, **values)
    except (OSError, ValueError) as exc:
        print(f"evterm sim backend-admin {args.backend_action}: {exc}", file=sys.stderr)
        return 2
    if not reply.get("ok"):
        print(f"evterm sim backend-admin {args.backend_action}: {reply.get('error')}",
              file=sys.stderr)
        return 2
    print(json.dumps(reply))
    return 0


def run_gateway_keys(args: argparse.Namespace) -> int:
    from hw_mocks.backend_logic import generate_gateway_keys

    try:
        private, public = generate_gateway_keys(args.out)
    except OSError as exc:
        print(f"evterm sim gateway-keys: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"private_key": str(private), "public_key": str(public)}))
    return 0


def _register_mqtt(subparsers: argparse._SubParsersAction) -> None:
    mqtt = subparsers.add_parser(
        "backend",
        help="the operator's backend (CSMS + payment gateway) as an MQTT 5 client",
        description="Answers terminal requests, records events and statuses, sends "
        "commands; admin on a Unix socket; prints a JSON ready line; stops on SIGTERM.",
    )
    mqtt.add_argument("--host", default="127.0.0.1")
    mqtt.add_argument("--port", type=int, required=True)
    mqtt.add_argument("--tls-ca", metavar="PEM", help="CA of the broker's certificate; "
                      "with --cert and --key: MQTT over TLS with a client certificate")
    mqtt.add_argument("--cert", metavar="PEM", help="the backend's client certificate")
    mqtt.add_argument("--key", metavar="PEM", help="its private key")
    mqtt.add_argument("--client-id", default="evterm-backend-sim")
    _add_logic_arguments(mqtt)
    mqtt.add_argument("--operator-key", metavar="PRIVATE_PEM",
                      help="the operator's Ed25519 key that signs tariffs and lists "
                      "(default: a new one; its public PEM is in the ready line)")
    mqtt.add_argument("--admin-socket", metavar="PATH",
                      help="Unix socket for admin requests (JSON lines)")
    mqtt.add_argument("--station-timezone", default="UTC", metavar="ZONE",
                      help="IANA time zone of the stations: the local time a CDR's tariff "
                      "restrictions are re-priced in (default UTC)")
    mqtt.set_defaults(func=run_backend_mqtt)


def _zone(name: str) -> str:
    """`name` when it is an IANA time zone; ValueError naming the option otherwise."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--station-timezone: {name!r} is not an IANA time zone, e.g. "
                         "Europe/Berlin") from None
    return name


def run_backend_mqtt(args: argparse.Namespace) -> int:
    from hw_mocks.backend_mqtt import (
        BackendMqtt,
        TlsFiles,
        load_operator_private_key,
        run_forever,
    )

    tls_args = (args.tls_ca, args.cert, args.key)
    try:
        if any(tls_args) and not all(tls_args):
            raise ValueError("--tls-ca, --cert and --key go together")
        sim = BackendMqtt(
            _logic(args), args.host, args.port,
            tls=TlsFiles(*tls_args) if all(tls_args) else None,
            operator_key=load_operator_private_key(args.operator_key)
            if args.operator_key else None,
            client_id=args.client_id,
            station_timezone=_zone(args.station_timezone),
        )
    except ValueError as exc:
        print(f"evterm sim backend: {exc}", file=sys.stderr)
        return 2
    return run_forever(sim, args.admin_socket)
