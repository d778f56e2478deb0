"""`evterm card read`: wait for one card on a PC/SC reader and print what it is.

`evterm card read [--config FILE] [--reader NAME] [--timeout S]` prints ONE JSON object
on stdout:
- RFID/NFC card: `{"type": "rfid", "uid": "04A1B2C3D4E5F6", "reader": ...}`
- payment card: `{"type": "emv", "token", "token_key_id", "masked_pan", "scheme", "aid",
  "label", "expiry_ok", "reader"}`; the token is terminal.payment.crypto.tokenize() with the key
  from `[payment] token_key_file` / `token_key_id`, or null without a key. Never the PAN.
- unreadable card: `{"error": reason, "code", "tap_again": bool, "reader": ...}`, exit 1;
  `code` is the `TapFailed` code (unreadable, removed, see_phone, not_supported,
  not_accepted).
The masked number shows the first 6 and last 4 digits (terminal.kernel.cards.mask_pan).

Config: `--config FILE`, else /etc/evterm/evterm.toml when it exists, else the built-in
defaults. `[readers] pcsc_socket` sets PCSCLITE_CSOCK_NAME unless the environment
already has it; `[readers] pcsc_readers` (or `--reader`, a part of the reader name)
selects readers; `[payment] accepted_schemes` the card applications read (a card of
none of them: `not_accepted`). The EMV terminal data: country `[payment] country_code`, amount
`[payment] preauth_amount`, currency that of `[session] tariff_file` (EUR without a
config), as ISO 4217 numeric (terminal.kernel.money.CURRENCY_NUMERIC).

On failure: a bad config or key file, no pcscd, no reader or no card within
`--timeout` seconds: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from terminal.cliargs import positive_number
from terminal.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ConfigError,
    PaymentConfig,
    ReadersConfig,
    load_config,
)
from terminal.kernel.cards import mask_pan, parse_schemes
from terminal.kernel.logsetup import ROOT_LOGGER, get_logger
from terminal.payment.crypto import KeyFileError, TokenKey, load_token_key, tokenize

DEFAULT_CURRENCY = "EUR"
READER_WAIT_S = 1.0  # after pcscd answered: how long to wait for a (matching) reader


class CardReadError(Exception):
    """Setup failed: the message is the one line for stderr (exit 2)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands."""
    card = subparsers.add_parser("card", help="card reader tools (PC/SC)")
    sub = card.add_subparsers(dest="card_command", required=True)
    read = sub.add_parser(
        "read", help="wait for one card on a PC/SC reader and print it as JSON",
        description="Prints one JSON object: the UID of an RFID card, or the token, masked "
        "number, scheme and AID of a payment card (never the card number).",
    )
    read.add_argument("--config", default=None, metavar="FILE",
                      help=f"TOML config (default: {DEFAULT_CONFIG_PATH} if it exists)")
    read.add_argument("--reader", default=None, metavar="NAME",
                      help="use readers whose name contains NAME (default: [readers] "
                      "pcsc_readers, else every reader)")
    read.add_argument("--timeout", type=positive_number, default=30.0, metavar="S",
                      help="how long to wait for a card (default 30)")
    read.set_defaults(func=run_read)


@dataclass(frozen=True)
class _Setup:
    name_filter: tuple[str, ...]
    country_code: str
    currency: str
    preauth_amount: Decimal
    accepted_schemes: tuple[str, ...]
    token_key: TokenKey | None
    socket_path: str


def _load(args: argparse.Namespace) -> _Setup:
    config: Config | None = None
    path = args.config or (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None)
    if path is not None:
        try:
            config = load_config(path)
        except ConfigError as exc:
            raise CardReadError(" ".join(str(exc).split())) from None
    readers = config.readers if config else ReadersConfig()
    payment = config.payment if config else PaymentConfig()
    currency = DEFAULT_CURRENCY
    if config is not None:
        from terminal.pricing import TariffError, load_tariff

        try:
            currency = load_tariff(config.session.tariff_file).currency
        except (OSError, TariffError) as exc:
            raise CardReadError(f"[session] tariff_file {config.session.tariff_file}: "
                                f"{exc}") from None
    token_key = None
    if payment.token_key_file:
        try:
            token_key = load_token_key(payment.token_key_file, payment.token_key_id)
        except KeyFileError as exc:
            raise CardReadError(str(exc)) from None
    if args.reader:
        name_filter: tuple[str, ...] = (args.reader,)
    else:
        name_filter = tuple(p.strip() for p in readers.pcsc_readers.split(",") if p.strip())
    if readers.pcsc_socket and "PCSCLITE_CSOCK_NAME" not in os.environ:
        os.environ["PCSCLITE_CSOCK_NAME"] = readers.pcsc_socket  # before any PC/SC call
    socket_path = os.environ.get("PCSCLITE_CSOCK_NAME", "/run/pcscd/pcscd.comm")
    return _Setup(name_filter, payment.country_code, currency,
                  Decimal(payment.preauth_amount), parse_schemes(payment.accepted_schemes),
                  token_key, socket_path)


def expiry_ok(expiry_yymm: str | None, today: date) -> bool | None:
    """A card is valid through the last day of its expiry month; None when unknown."""
    if expiry_yymm is None:
        return None
    year, month = 2000 + int(expiry_yymm[:2]), int(expiry_yymm[2:])
    return (year, month) >= (today.year, today.month)


def describe(event: Any, token_key: TokenKey | None, today: date) -> tuple[dict[str, Any], int]:
    """The JSON object and exit code for a tap event (never the card number)."""
    from drivers.readers.events import EmvTap, RfidTap

    if isinstance(event, RfidTap):
        return {"type": "rfid", "uid": event.uid, "reader": event.reader}, 0
    if isinstance(event, EmvTap):
        card = event.read.card
        return {
            "type": "emv",
            "token": tokenize(card, token_key) if token_key else None,
            "token_key_id": token_key.key_id if token_key else None,
            "masked_pan": mask_pan(card.pan),
            "scheme": event.read.scheme,
            "aid": event.read.aid,
            "label": event.read.label,
            "expiry_ok": expiry_ok(card.expiry_yymm, today),
            "reader": event.reader,
        }, 0
    return {"error": event.reason, "code": event.code, "tap_again": event.tap_again,
            "reader": event.reader}, 1


async def _wait_for_card(setup: _Setup, timeout_s: float) -> Any:
    from drivers.readers.events import ReaderState
    from drivers.readers.pcsc import SERVICE, PcscReaders, terminal_params
    from drivers.readers.reader import queue_emitter

    try:
        params = terminal_params(setup.country_code, setup.currency, setup.preauth_amount,
                                 setup.accepted_schemes)
    except ValueError as exc:
        raise CardReadError(str(exc)) from None
    queue: asyncio.Queue = asyncio.Queue()
    readers = PcscReaders(lambda: params, setup.name_filter)
    readers.start(queue_emitter(asyncio.get_running_loop(), queue))
    deadline_s = time.monotonic() + timeout_s
    reader_deadline_s: float | None = None
    have_reader = False
    try:
        while True:
            now_s = time.monotonic()
            until_s = deadline_s if have_reader or reader_deadline_s is None else min(
                deadline_s, reader_deadline_s)
            try:
                event = await asyncio.wait_for(queue.get(), max(0.0, until_s - now_s))
            except TimeoutError:
                if time.monotonic() >= deadline_s and have_reader:
                    raise CardReadError(f"no card within {timeout_s:g} s") from None
                wanted = f" matching {', '.join(setup.name_filter)!r}" \
                    if setup.name_filter else ""
                raise CardReadError(f"no PC/SC reader{wanted} found") from None
            if isinstance(event, ReaderState):
                if event.reader == SERVICE:
                    if event.state == "service_down" and not have_reader:
                        raise CardReadError(f"no PC/SC service: pcscd not reachable at "
                                            f"{setup.socket_path} ({event.detail})")
                    if event.state == "ready" and reader_deadline_s is None:
                        reader_deadline_s = time.monotonic() + READER_WAIT_S
                elif event.state == "ready":
                    have_reader = True
                continue
            return event
    finally:
        await asyncio.get_running_loop().run_in_executor(None, readers.stop)


def run_read(args: argparse.Namespace) -> int:
    if logging.getLogger(ROOT_LOGGER).getEffectiveLevel() >= logging.WARNING:
        get_logger("pcsc").setLevel(logging.ERROR)  # stderr: our one line, not the log's
    try:
        setup = _load(args)
        event = asyncio.run(_wait_for_card(setup, args.timeout))
    except CardReadError as exc:
        print(f"evterm card read: {exc}", file=sys.stderr)
        return 2
    output, code = describe(event, setup.token_key, date.today())
    print(json.dumps(output), flush=True)
    return code
