"""The daemon's front desk: card readers, the backend link, authorisation and card payment.

Provides `Identification.build(daemon, config)` (ValueError naming the config key when
a key file or the tariff currency does not fit) and then `start()` / `close()`:
- the backend (`[backend]`), the `Authorizer` over the journal's auth tables, and, when
  `[payment] token_key_file` and `gateway_key_file` are set, `CardPayments`;
- the PC/SC readers (`[readers] pcsc`, `pcsc_readers`, `pcsc_socket`) and the serial
  125 kHz reader (`serial_rfid_device`), whose events go through one queue to the
  `TapHandler`, one tap at a time;
- the payment settlement loop, woken when a session closes or the backend comes back;
- the backend's pushes: refunds (recorded on the session and its receipt), local list
  updates, connectivity (published on the local API), and its commands (remote start
  and stop, tariff update, reconcile, diagnostics: terminal.commands);
- the offline-token recheck (MaxEnergyOnInvalidId) and the daemon's hooks: storage check
  for new sessions, outbox wake-up after each commit, the link state for `offline`.
`snapshot()` adds the readers' and the backend's state to the daemon's status.

On failure: a reader or the backend that is down is reported, never fatal; taps queue
up to `QUEUE_SIZE` and further ones are dropped with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from drivers.readers.events import ReaderEvent, RfidTap
from drivers.readers.serial_rfid import SerialRfidReader
from terminal.auth import Authorizer, AuthStore
from terminal.backend_api import Backend
from terminal.backend_factory import create_backend
from terminal.backend_messages import LocalListUpdate, Refund
from terminal.card_payment import CardPayments, PaymentSettings
from terminal.commands import Commands
from terminal.config import Config
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.money import currency_numeric, optional_amount
from terminal.payment import KeyFileError, load_gateway_key, load_token_key
from terminal.periodic import run_periodically
from terminal.protocol import ProtocolError
from terminal.session import AuthorizationChanged, StopReason, StopRequested
from terminal.taps import TapHandler, token_type_of

if TYPE_CHECKING:
    from terminal.daemon import Daemon

log = get_logger("identification")

QUEUE_SIZE = 32
SERIAL_STATES = {"connected": "ready", "disconnected": "absent", "stopped": "absent"}
SETTLE_INTERVAL_S = 10.0


def card_payments(daemon: Daemon, config: Config, backend: Backend) -> CardPayments | None:
    """Card payment as configured, or None when `[payment]` names no keys."""
    pay = config.payment
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
    settings = PaymentSettings(
        station_id=config.station.id,
        currency=daemon.station_terms.tariff.currency,
        preauth_amount=Decimal(pay.preauth_amount),
        offline_floor_limit=optional_amount(pay.offline_floor_limit),
        request_timeout_s=config.backend.request_timeout_s,
    )
    return CardPayments(settings, token_key, gateway_key, backend, daemon.store, daemon.clock)


@dataclass
class Identification:
    daemon: Daemon
    config: Config
    backend: Backend
    authorizer: Authorizer
    payments: CardPayments | None
    taps: TapHandler
    commands: Commands
    queue: asyncio.Queue[ReaderEvent] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    settle_wake: asyncio.Event = field(default_factory=asyncio.Event)
    recheck_wake: asyncio.Event = field(default_factory=asyncio.Event)
    readers: list[Any] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    dropped_taps: int = 0

    @classmethod
    def build(cls, daemon: Daemon, config: Config) -> Identification:
        backend = create_backend(config.backend, config.station.id, daemon.store, daemon.clock)
        authorizer = Authorizer(config.auth, backend, AuthStore(daemon.store.store.conn),
                                daemon.clock, station_id=config.station.id,
                                run_store=daemon.store.call)
        payments = card_payments(daemon, config, backend)
        if config.readers.pcsc:
            try:  # EMV cards are told the currency as its ISO 4217 number
                currency_numeric(daemon.station_terms.tariff.currency)
            except ValueError as exc:
                raise ValueError(f"session.tariff_file: {exc}") from None
        taps = TapHandler(daemon, authorizer, payments)
        ident = cls(daemon, config, backend, authorizer, payments, taps, Commands(daemon))
        backend.set_listener(ident)
        if payments is not None:
            payments.on_receipt_changed = ident._receipt_changed
        daemon.on_session_closed = ident.settle_wake.set
        daemon.storage_ok = getattr(backend, "storage_ok", lambda: True)
        daemon.after_commit = getattr(backend, "wake", None)
        daemon.link_online = lambda: backend.online
        return ident

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.backend.start()
        self.tasks.append(asyncio.create_task(self._consume(), name="taps"))
        self.tasks.append(asyncio.create_task(self._recheck_loop(), name="recheck"))
        if self.payments is not None:
            self.tasks.append(asyncio.create_task(
                self.payments.run(SETTLE_INTERVAL_S, self.settle_wake), name="settle"))
        readers = self.config.readers
        if readers.pcsc:
            self._start_pcsc(loop)
        if readers.serial_rfid_device:
            self._start_serial(loop)

    def _start_pcsc(self, loop: asyncio.AbstractEventLoop) -> None:
        from drivers.readers.emv import TerminalParams
        from drivers.readers.pcsc import PcscReaders, terminal_params

        readers = self.config.readers
        if readers.pcsc_socket:
            os.environ["PCSCLITE_CSOCK_NAME"] = readers.pcsc_socket
        country = self.config.payment.country_code
        amount = Decimal(self.config.payment.preauth_amount)

        def params() -> TerminalParams:  # the tariff's currency at the moment of the tap
            return terminal_params(country, self.daemon.station_terms.tariff.currency, amount)

        names = tuple(part.strip() for part in readers.pcsc_readers.split(",") if part.strip())
        pcsc = PcscReaders(params, names)
        pcsc.start(loop, self.queue)  # type: ignore[arg-type]
        self.readers.append(pcsc)

    def _start_serial(self, loop: asyncio.AbstractEventLoop) -> None:
        device = self.config.readers.serial_rfid_device

        def on_tag(tag_id: str) -> None:
            self._offer(RfidTap(device, tag_id, "em4100", time.monotonic()))

        reader = SerialRfidReader(device, self.config.readers.serial_rfid_baud)
        reader.start(loop, on_tag)
        self.readers.append(reader)

    def _offer(self, event: ReaderEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped_taps += 1
            log.warning("card tap dropped: too many waiting",
                        extra=fields(reader=getattr(event, "reader", "?"),
                                     dropped=self.dropped_taps))

    async def _consume(self) -> None:
        while True:
            event = await self.queue.get()
            await self.taps.handle(event)

    async def close(self) -> None:
        for reader in self.readers:
            reader.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.backend.close()

    # ---- what the backend pushes ---------------------------------------------------------

    async def on_refund(self, refund: Refund) -> None:
        """Record a refund; ProtocolError (answered to the backend) when it does not fit."""
        if self.payments is None:
            log.error("refund refused: card payment is not configured",
                      extra=fields(refund=refund.refund_id))
            raise ProtocolError("body", "card payment is not configured on this terminal")
        if not await self.payments.on_refund(refund):
            raise ProtocolError("body", "refund refused: no captured payment it fits "
                                "(see the terminal's log)")

    async def on_local_list(self, update: LocalListUpdate) -> None:
        result = await self.authorizer.apply_list_update(update)
        log.info("local list update", extra=fields(version=update.version,
                                                   type=update.update_type,
                                                   status=result.status, reason=result.reason))
        if result.status != "Accepted":
            raise ProtocolError("update.version", result.reason or result.status)
        await self.daemon.store.call(self.daemon.store.store.add_audit, "local_list",
                                     {"by": "backend", "version": update.version,
                                      "type": update.update_type}, self.daemon.clock.now())

    async def on_connectivity(self, online: bool) -> None:
        log.info("backend link", extra=fields(online=online))
        self.daemon.api.publish({"type": "connectivity", "backend_online": online})
        if online:
            self.settle_wake.set()
            self.recheck_wake.set()

    # ---- tokens accepted offline although unknown ----------------------------------------

    async def recheck_offline_token(self) -> None:
        """Ask the backend about the running session's token if it was accepted offline
        without being known (OfflineTxForUnknownIdEnabled). Rejected now: the session may
        take at most `[auth] max_energy_on_invalid_id_wh` in all (OCPP
        MaxEnergyOnInvalidId); before any energy it is stopped at once."""
        daemon = self.daemon
        state = daemon.state
        auth = state.authorization
        if not (state.is_open and auth is not None and auth.recheck):
            return
        decision = await self.authorizer.recheck(auth.id_token, token_type_of(auth.id_token),
                                                 daemon.clock.now())
        if decision is None:
            return  # still unreachable
        now = daemon.clock.now()
        if decision.accepted:
            await daemon.apply(AuthorizationChanged(now, replace(auth, recheck=False)))
            log.info("token accepted offline confirmed by the backend",
                     extra=fields(session=state.session_id))
            return
        cap = Decimal(self.config.auth.max_energy_on_invalid_id_wh)
        if auth.energy_cap_wh is not None:
            cap = min(cap, auth.energy_cap_wh)
        await daemon.apply(AuthorizationChanged(now, replace(auth, recheck=False,
                                                             energy_cap_wh=cap)))
        log.warning("token accepted offline was rejected by the backend; energy capped",
                    extra=fields(session=state.session_id, reason=decision.reason_code,
                                 energy_cap_wh=cap))
        if not daemon.state.has_energy:
            await daemon.apply(StopRequested(now, StopReason.REMOTE))

    async def _recheck_loop(self) -> None:
        await run_periodically(self.recheck_offline_token, SETTLE_INTERVAL_S, self.recheck_wake,
                               lambda exc: log.error("offline token recheck failed; retrying",
                                                     exc_info=exc))

    async def on_command(self, name: str, message: Any) -> dict[str, Any]:
        """A command from the backend (terminal.commands), as its typed model or a dict;
        ProtocolError when refused."""
        body = message.to_json() if hasattr(message, "to_json") else dict(message)
        return await self.commands.handle(name, body)

    async def _receipt_changed(self, session_id: str) -> None:
        self.daemon.api.publish({"type": "receipt_updated", "session_id": session_id})

    # ---- status ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        states: dict[str, str] = dict(self.taps.readers)
        for reader in self.readers:
            if isinstance(reader, SerialRfidReader):
                states[reader.device] = SERIAL_STATES.get(reader.state, reader.state)
        return {
            "backend_online": self.backend.online,
            "accepting_sessions": self.daemon.accepting_sessions(),
            "card_payment": self.payments is not None,
            "readers": states,
        }
