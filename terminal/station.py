"""The composition root: builds every part of the terminal with what it depends on.

Provides:
- `build_station(config, clock, store, meter, charger, station_terms)` -> `Station`:
  every component constructed once, each given its dependencies in its constructor,
  in this order: the backend link, the session's money, the screen's state, the local
  API, the last poll and its subscribers, the meter's monitor, the out-of-service gate,
  the daemon (the session port), the authoriser, card payment (built-in or ZVT,
  `[payment] terminal`; the ZVT terminal's card wait joins the readers) and its
  end-of-day closing (`closings_for`, docs/reconciliation.md: the gateway's settlement
  batch, or the ZVT terminal's End-of-day with repairs at the terminal), the driver's
  local-API routes, the service menu's login, the tap handler and the readers, the
  service menu, the backend commands and inbox, the offline-token recheck and the status
  board. Only registrations follow: the local API's routes, the backend link's listener and the
  poll subscribers (docs/architecture.md; the connector's status log,
  terminal.connector_status, is one: its rows and the taps' (TapLog) feed the report).
  ValueError naming the config key when a key file or the tariff's currency does not
  fit.
- `Station.zvt_link`: the ZVT terminal's connection owner (`end_of_day()`), or None.
- `Station.start()` / `close()`: the link, the readers and the background tasks
  (settlement, the daily closing, offline-token recheck, the journal's retention).
- `run_station(config, clock, started_s)`: what `evterm daemon` runs: opens the
  journal, the meter and the charger, builds the station, recovers, serves the local
  API, tells systemd (READY/WATCHDOG/STATUS) and runs the poll loop until a signal.
  Exit codes: 0 stopped by signal, 2 bad configuration or tariff, 3 the database is
  damaged or holds less than its journal marker says (left untouched), 4 the local
  API socket cannot be created, 75 restart asked for from the service menu.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from drivers.charger import ChargerControl, open_charger
from drivers.meter import Meter, open_meter
from drivers.meter.monitor import MeterMonitor
from drivers.meter.signing import SigningMeter
from drivers.readers.reader import ReaderSettings, open_readers
from terminal import sdnotify
from terminal.backend.api import Backend
from terminal.backend.commands import Commands, pushed_tariff_path
from terminal.backend.factory import create_backend
from terminal.backend.inbox import BackendInbox
from terminal.billing import Terms
from terminal.cdr import site_of
from terminal.config import Config
from terminal.connector_status import StatusLog
from terminal.daemon import Daemon
from terminal.driver_api import DriverApi
from terminal.identification.auth import Authorizer
from terminal.identification.intake import Identification
from terminal.identification.recheck import OfflineRecheck
from terminal.identification.tap_log import TapLog
from terminal.identification.taps import TapHandler
from terminal.kernel.cards import parse_schemes
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.money import currency_numeric, optional_amount
from terminal.localapi import LocalApi
from terminal.observation import Observation, PollSignal
from terminal.payment.card import CardPayments
from terminal.payment.closing import Closings, ClosingSettings, parse_closing_time
from terminal.payment.crypto import KeyFileError, load_gateway_key, load_token_key
from terminal.payment.holds import parse_budget_choices
from terminal.payment.ledger import GatewayLedger, ZvtLedger
from terminal.payment.port import ZVT, PaymentSettings, PaymentTerminal
from terminal.payment.zvt import ZvtPayments
from terminal.payment.zvt import on_acknowledged as zvt_acknowledged
from terminal.payment.zvt_link import ZvtLink
from terminal.payment.zvt_repairs import ZvtRepairs
from terminal.pricing.display import tariff_texts
from terminal.retention import Retention, RetentionSettings
from terminal.screen import Screen
from terminal.service import Service
from terminal.service.login import Logins
from terminal.service.port import OutOfService, ServiceDeps
from terminal.session import Authorization
from terminal.session_pricing import SessionPricing, terms_for
from terminal.signed.verify import load_pyocmf
from terminal.signed_metering import SignedMetering
from terminal.status import StatusBoard
from terminal.store import AsyncStore, Store, StoreError
from terminal.store.auth_tables import AuthStore
from terminal.update.layout import Layout
from terminal.update.relay import FirmwareRelay

log = get_logger("station")

DATABASE_NAME = "evterm.db"
SETTLE_INTERVAL_S = 10.0
SIGNING_REFRESH_S = 60.0  # a signing meter's key and clock state asked again
FIRMWARE_RELAY_S = 2.0  # the updater's journal read for new FirmwareStatus reports


def database_path(config: Config) -> Path:
    return Path(config.station.state_dir) / DATABASE_NAME


def load_station_terms(config: Config) -> Terms:
    """The terms for sessions starting now: the tariff the backend pushed last (state
    folder), else the configured tariff file (read and parsed once; OSError or
    ValueError naming the problem), time zone, threshold, identity."""
    pushed = pushed_tariff_path(config.station.state_dir)
    source = pushed if pushed.exists() else Path(config.session.tariff_file)
    tariff_json = json.loads(source.read_text(encoding="utf-8"))
    terms = Terms(
        tariff_json=tariff_json,
        timezone=config.station.timezone,
        charging_threshold_w=Decimal(config.session.charging_threshold_w),
        station_id=config.station.id,
        operator=config.station.operator,
    )
    _ = terms.tariff  # parsed and checked here, before anything starts
    return terms


def payment_settings(config: Config, currency: str) -> PaymentSettings:
    pay = config.payment
    return PaymentSettings(
        station_id=config.station.id,
        currency=currency,
        preauth_amount=Decimal(pay.preauth_amount),
        offline_floor_limit=optional_amount(pay.offline_floor_limit),
        request_timeout_s=config.backend.request_timeout_s,
        accepted_schemes=parse_schemes(pay.accepted_schemes),
        fault_interval_s=config.logging.fault_interval_s,
        budget_choices=parse_budget_choices(pay.budget_choices),
        hold_grace_s=pay.hold_grace_s,
    )


def zvt_payments(config: Config, currency: str, store: AsyncStore, clock: Clock,
                 publish: Callable[[dict[str, Any]], None]) -> ZvtPayments:
    """Card payment through the ZVT payment terminal (`[payment] terminal = zvt`);
    ValueError naming the key when `[zvt] host` or the token key is missing."""
    from drivers.zvt.client import ZvtClient

    pay, zvt = config.payment, config.zvt
    if not zvt.host:
        raise ValueError("zvt.host: payment.terminal = zvt needs the payment terminal's "
                         "address")
    if not pay.token_key_file:
        raise ValueError("payment.token_key_file: payment.terminal = zvt needs the fleet "
                         "tokenisation key (a card's token)")
    try:
        token_key = load_token_key(pay.token_key_file, pay.token_key_id)
        client = ZvtClient(zvt.host, zvt.port, password=int(zvt.password), currency=currency,
                           connect_timeout_s=zvt.connect_timeout_s,
                           response_timeout_s=zvt.response_timeout_s,
                           on_acknowledged=zvt_acknowledged)
    except KeyFileError as exc:
        raise ValueError(f"payment: {exc}") from None
    except ValueError as exc:  # a currency without an ISO 4217 number
        raise ValueError(f"session.tariff_file: {exc}") from None
    link = ZvtLink(client, read_card_timeout_s=zvt.read_card_timeout_s, retry_s=zvt.retry_s)
    return ZvtPayments(payment_settings(config, currency), token_key, link, store, clock,
                       publish)


def card_payments(config: Config, currency: str, backend: Backend, store: AsyncStore,
                  clock: Clock, publish: Callable[[dict[str, Any]], None]
                  ) -> PaymentTerminal | None:
    """Card payment as configured: the ZVT terminal (`[payment] terminal = zvt`), the
    built-in path, or None when `[payment]` names no keys."""
    pay = config.payment
    if pay.terminal == ZVT:
        return zvt_payments(config, currency, store, clock, publish)
    if not pay.token_key_file and not pay.gateway_key_file:
        return None
    if not (pay.token_key_file and pay.gateway_key_file):
        raise ValueError("payment.token_key_file and payment.gateway_key_file: card payment "
                         "needs both (or neither, for no card payment)")
    try:
        token_key = load_token_key(pay.token_key_file, pay.token_key_id)
        gateway_key = load_gateway_key(pay.gateway_key_file)
    except KeyFileError as exc:
        raise ValueError(f"payment: {exc}") from None
    return CardPayments(payment_settings(config, currency), token_key, gateway_key, backend,
                        store, clock, publish)


def closings_for(config: Config, currency: str, backend: Backend, store: AsyncStore,
                 clock: Clock, zvt: ZvtPayments | None = None) -> Closings:
    """The end-of-day closing (docs/reconciliation.md), daily at `[payment]
    closing_time`: against the gateway's settlement batch with repairs at the gateway
    (the built-in card path), or, when the ZVT path `zvt` is given, the ZVT terminal's
    End-of-day with repairs at the terminal (both through its one connection owner)."""
    settings = ClosingSettings(
        station_id=config.station.id,
        closing_time=parse_closing_time(config.payment.closing_time),
        timezone=config.station.timezone,
        request_timeout_s=config.backend.request_timeout_s,
    )
    if zvt is not None:
        return Closings(ZvtLedger(zvt.link.end_of_day, currency, clock), backend, store,
                        clock, settings, ZvtRepairs(zvt))
    ledger = GatewayLedger(backend, config.station.id, currency,
                           config.backend.request_timeout_s)
    return Closings(ledger, backend, store, clock, settings)


def reader_settings(config: Config, pricing: SessionPricing,
                    screen: Screen | None = None) -> ReaderSettings:
    """`[readers]` for drivers.readers; EMV cards are told, at the moment of the tap, the
    station tariff's currency (ValueError naming session.tariff_file when it has no ISO
    4217 number) and the amount authorised (9F02): the budget the driver picked on the
    screen (`Screen.budget`, the hold the tap places), else `[payment] preauth_amount`.
    The reader's thread reads `screen.budget` once per tap (one attribute read)."""
    readers = config.readers
    terminal_params = None
    if readers.pcsc:
        from drivers.readers.pcsc import terminal_params as emv_params

        try:
            currency_numeric(pricing.station_terms.tariff.currency)
        except ValueError as exc:
            raise ValueError(f"session.tariff_file: {exc}") from None
        country = config.payment.country_code
        default_amount = Decimal(config.payment.preauth_amount)
        accepted = parse_schemes(config.payment.accepted_schemes)

        def terminal_params() -> Any:
            budget = screen.budget if screen is not None else None
            amount = budget if budget is not None else default_amount
            return emv_params(country, pricing.station_terms.tariff.currency, amount,
                              accepted)

    return ReaderSettings(
        pcsc=readers.pcsc,
        pcsc_readers=tuple(p.strip() for p in readers.pcsc_readers.split(",") if p.strip()),
        pcsc_socket=readers.pcsc_socket,
        terminal_params=terminal_params,
        serial_rfid_device=readers.serial_rfid_device,
        serial_rfid_baud=readers.serial_rfid_baud,
    )


@dataclass
class Station:
    config: Config
    clock: Clock
    store: AsyncStore
    api: LocalApi
    backend: Backend
    pricing: SessionPricing
    screen: Screen
    observation: Observation
    daemon: Daemon
    authorizer: Authorizer
    payments: PaymentTerminal | None
    service: Service
    taps: TapHandler
    identification: Identification
    commands: Commands
    inbox: BackendInbox
    recheck: OfflineRecheck
    driver_api: DriverApi
    status: StatusBoard
    settle_wake: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closings: Closings | None = None
    status_log: StatusLog | None = None  # the connector's status rows, the heartbeat
    tap_log: TapLog | None = None

    async def start(self) -> None:
        """The backend link, the background tasks and the readers."""
        await self.backend.start()
        self.tasks.append(asyncio.create_task(self.recheck.run(SETTLE_INTERVAL_S),
                                              name="recheck"))
        if self.payments is not None:
            self.tasks.append(asyncio.create_task(
                self.payments.run(SETTLE_INTERVAL_S, self.settle_wake), name="settle"))
        if self.closings is not None:
            self.tasks.append(asyncio.create_task(self.closings.run(), name="closing"))
        retention = Retention(RetentionSettings.from_config(self.config.retention), self.store,
                              self.clock)
        self.tasks.append(asyncio.create_task(retention.run(), name="retention"))
        if self.daemon.signing is not None:
            self.tasks.append(asyncio.create_task(
                self.daemon.signing.run(SIGNING_REFRESH_S), name="signing-meter"))
        relay = FirmwareRelay(Layout(self.config.update.root_dir).journal_path, self.store,
                              self.clock, self.backend)
        self.tasks.append(asyncio.create_task(relay.run(FIRMWARE_RELAY_S),
                                              name="firmware-relay"))
        if self.status_log is not None:
            self.tasks.append(asyncio.create_task(self.status_log.run(), name="heartbeat"))
        await self.identification.start()

    @property
    def zvt_link(self) -> ZvtLink | None:
        """The ZVT terminal's connection owner (its `end_of_day()`), when there is one."""
        return self.payments.link if isinstance(self.payments, ZvtPayments) else None

    async def close(self) -> None:
        await self.identification.close()
        if self.zvt_link is not None:
            await self.zvt_link.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.backend.close()

    async def recover(self) -> dict[str, Any]:
        """The service menu's durable state, then the session (terminal.daemon); with a
        signing meter, its key and clock first, and a transaction it still holds that no
        session waits for is ended afterwards."""
        await self.service.load()
        signing = self.daemon.signing
        if signing is not None:
            await signing.refresh()
        report = await self.daemon.recover()
        if self.status_log is not None:
            try:
                await self.status_log.start()  # an outage since the last heartbeat
            except (sqlite3.Error, OSError) as exc:
                log.error("the outage before this start could not be journaled",
                          extra=fields(error=str(exc)))
        if signing is not None:
            await self.daemon.settle_signed()  # the open session's own end first
            state = self.daemon.state
            keep = state.session_id if state.meter_tx in ("running", "ending") else None
            try:
                await signing.reconcile(keep)
            except (sqlite3.Error, OSError) as exc:  # a full disk: the next begin retries
                log.error("a transaction the meter holds could not be journaled",
                          extra=fields(error=str(exc)))
        return report

    async def shutdown(self) -> None:
        """Energy off, the local API closed, the hardware and the journal released."""
        await self.api.close()
        if self.tap_log is not None:
            await self.tap_log.drain()
        if self.status_log is not None:
            await self.status_log.stop()
        await self.daemon.shutdown()


def signed_metering(config: Config, clock: Clock, journal: AsyncStore, meter: Meter,
                    pricing: SessionPricing) -> SignedMetering | None:
    """The signing meter's transactions, when the meter signs (docs/eichrecht.md)."""
    model = getattr(meter, "model", None)  # test doubles may have none
    if model is None or not model.signs:
        return None
    load_pyocmf()  # at start, not at the first document

    def tariff_text(auth: Authorization | None) -> str:
        terms = terms_for(pricing.station_terms, auth)
        texts = tariff_texts(terms.tariff, "en")
        name = terms.tariff.id or "tariff"
        return f"{name}: " + "; ".join(texts)

    async def audit(kind: str, detail: dict[str, Any]) -> None:
        await journal.call(journal.store.add_audit, kind, detail, clock.now())

    return SignedMetering(cast(SigningMeter, meter), journal, clock,
                          timeout_s=config.meter.signing_timeout_s, tariff_text=tariff_text,
                          audit=audit, registered_key_hex=config.meter.public_key)


def build_station(config: Config, clock: Clock, store: Store, meter: Meter,
                  charger: ChargerControl, station_terms: Terms) -> Station:
    journal = AsyncStore(store)
    backend = create_backend(config.backend, config.station.id, journal, clock)
    pricing = SessionPricing(station_terms, config.meter.poll_interval_s,
                             config.session.stop_latency_s,
                             site_of(config.station.id, config.cdr))
    screen = Screen(config.ui, config.station.id, clock)
    status: StatusBoard | None = None  # built last, from every part

    def snapshot() -> dict[str, Any]:
        return status.snapshot() if status is not None else {}

    api = LocalApi(config.localapi.socket_path, int(config.localapi.socket_mode, 8),
                   snapshot=snapshot)
    observation = Observation()
    polled = PollSignal()
    monitor = MeterMonitor(
        meter,
        max_failed_polls=config.meter.max_failed_polls,
        rated_power_w=config.meter.rated_power_w,
        expected_serial=config.meter.expected_serial,
        fault_interval_s=config.logging.fault_interval_s,
        clock=clock,
    )
    settle_wake = asyncio.Event()
    recheck_wake = asyncio.Event()
    out_of_service = OutOfService()
    signing = signed_metering(config, clock, journal, meter, pricing)
    daemon = Daemon(config, clock, journal, meter, charger, monitor, pricing, screen, backend,
                    observation=observation, polled=polled, clients=api,
                    gates=(out_of_service, *([signing] if signing else [])),
                    settle_wake=settle_wake, signing=signing)
    authorizer = Authorizer(config.auth, backend, AuthStore(store.conn), clock,
                            station_id=config.station.id, run_store=journal.call)
    payments = card_payments(config, station_terms.tariff.currency, backend, journal, clock,
                             api.publish)
    closings = (closings_for(config, station_terms.tariff.currency, backend, journal, clock,
                             zvt=payments if isinstance(payments, ZvtPayments) else None)
                if payments is not None else None)
    holds = payments.settings.holds if payments is not None else None  # None: no bank cards
    driver_api = DriverApi(config, clock, journal, daemon, screen, pricing, snapshot,
                           holds=holds)
    service_deps = ServiceDeps(config, clock, journal, daemon, observation, monitor, backend,
                               out_of_service, snapshot, driver_api.receipt,
                               daemon.request_restart, closings)
    logins = Logins(service_deps)
    driver_api.logged_in = logins.logged_in  # `start` needs a technician's login
    tap_log = TapLog(journal, clock)
    taps = TapHandler(daemon, clock, config.session, screen, authorizer, payments,
                      logins.technician_tapped, tap_log=tap_log)
    readers = open_readers(reader_settings(config, pricing, screen))
    if isinstance(payments, ZvtPayments):
        readers.append(payments.link)  # the payment terminal's card wait
    identification = Identification(readers, taps)
    service = Service(service_deps, logins, identification)
    polled.subscribe(service.after_poll)
    status_log = StatusLog(journal, clock, daemon, observation)
    polled.subscribe(status_log.after_poll)
    commands = Commands(config, clock, journal, daemon, screen, pricing, snapshot)
    inbox = BackendInbox(journal, clock, authorizer, payments, commands, api.publish,
                         wake_on_online=(settle_wake, recheck_wake))
    backend.set_listener(inbox)
    recheck = OfflineRecheck(daemon, authorizer, clock,
                             Decimal(config.auth.max_energy_on_invalid_id_wh), recheck_wake)
    status = StatusBoard(config, clock, daemon, observation, pricing, screen, service, backend,
                         identification.states, holds,
                         signing.status if signing is not None else None)
    driver_api.register(api)
    service.register(api)
    return Station(config, clock, journal, api, backend, pricing, screen, observation, daemon,
                   authorizer, payments, service, taps, identification, commands, inbox,
                   recheck, driver_api, status, settle_wake, closings=closings,
                   status_log=status_log, tap_log=tap_log)


async def run_station(config: Config, clock: Clock, started_s: float) -> int:
    try:
        terms = load_station_terms(config)
    except (OSError, ValueError) as exc:
        print(f"evterm daemon: session.tariff_file: {exc}", file=sys.stderr)
        return 2
    try:
        store = Store.open(database_path(config), marker=True)
    except StoreError as exc:
        print(f"evterm daemon: refusing to start: {exc}", file=sys.stderr)
        return 3
    meter = open_meter(config.meter.model, config.meter.url, config.meter.unit_id,
                       config.meter.timeout_s, clock)
    charger = open_charger(config.charger.kind, config.charger.url, config.charger.unit_id,
                           config.charger.timeout_s)
    try:
        station = build_station(config, clock, store, meter, charger, terms)
    except ValueError as exc:
        print(f"evterm daemon: {exc}", file=sys.stderr)
        meter.close()
        charger.close()
        store.close()
        return 2
    daemon = station.daemon
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop)
    try:
        sdnotify.notify("STATUS=recovering the journal")
        report = await station.recover()
        try:
            await station.api.start()
        except OSError as exc:
            print(f"evterm daemon: local API socket: {exc}", file=sys.stderr)
            return 4
        ready = {
            "event": "ready",
            "pid": os.getpid(),
            "database": str(database_path(config)),
            "socket": str(config.localapi.socket_path),
            "phase": daemon.state.phase.value,
            "recovery": report,
            "ready_s": round(time.monotonic() - started_s, 3),
        }
        await station.start()
        print(json.dumps(ready), flush=True)
        log.info("daemon ready", extra=fields(phase=daemon.state.phase.value,
                                              ready_s=ready["ready_s"]))
        watchdog = systemd_watchdog(station)
        sdnotify.notify(f"READY=1\nSTATUS={daemon_status(station)}")
        watchdog.start()
        try:
            await daemon.run_loop()
        finally:
            sdnotify.notify("STOPPING=1\nSTATUS=stopping")
            await watchdog.stop()
    finally:
        await station.close()
        await station.shutdown()
    return daemon.exit_code


def daemon_status(station: Station) -> str:
    """One line for `systemctl status evterm` (sd_notify STATUS=)."""
    fault = station.daemon.monitor.fault
    meter = f"meter fault: {fault.kind}" if fault else "meter ok"
    out_of_service = station.service.refusal()
    return f"{station.daemon.state.phase.value}; {meter}" + (f"; {out_of_service}"
                                                             if out_of_service else "")


def systemd_watchdog(station: Station) -> sdnotify.Watchdog:
    """WATCHDOG=1 pings while the loop runs and a poll completed recently: within 3 poll
    intervals plus the reply timeouts one poll may spend on a silent meter and charger
    (a status read and an output command), so a meter that does not answer (a fault the
    daemon handles) keeps the pings going and a stuck poll stops them."""
    config, daemon = station.config, station.daemon
    max_age_s = (3 * config.meter.poll_interval_s / daemon.clock.speed
                 + config.meter.timeout_s + 2 * config.charger.timeout_s)
    return sdnotify.Watchdog(lambda: daemon.last_poll_monotonic_s, max_age_s,
                             status=lambda: daemon_status(station))
