"""PC/SC readers (pcscd, pyscard): RFID/NFC cards and contactless payment cards.

Provides `PcscReaders(terminal, name_filter=(), *, read_timeout_s=5.0)`, a
`drivers.readers.reader.CardReader` (built by `open_pcsc(settings)`):
- `start(emit)`: a monitor thread watches every reader whose name contains one of
  `name_filter` (empty: every reader) and calls `emit` with `drivers.readers.events`
  objects. `stop()` ends it within about `poll_timeout_s` (0.2 s).
  `states()`: reader name -> "ready"/"absent", plus "*" -> "ready" or "service_down"
  for pcscd itself.
- One tap per insertion: when a card comes into a reader's field (or is there when the
  reader is first seen), the thread connects (T=1 or T=0), asks the UID
  (`FF CA 00 00 00`) and runs `emv.read_emv(transmit, terminal(), today())`:
  payment card -> `EmvTap`; no payment application -> `RfidTap(uid)`; no application of
  a known scheme -> `TapFailed(code "not_supported")`, of an accepted one (the
  terminal's `accepted_schemes`) -> `TapFailed(code "not_accepted")`, both without a
  second try; a phone asking for confirmation (GPO 6986) -> `TapFailed("see phone for
  instructions - tap again", code "see_phone")`; any other `EmvError` ->
  `TapFailed("card could not be read")` (its reason is logged; it never holds card
  data); card gone mid-read -> `TapFailed("card removed too early - tap again")`.
  A card left in the field is not read again; `at_monotonic_s` is when it was seen.
  A read is bounded by `read_timeout_s` (then `EmvError`, so "card could not be read").
- `currency_numeric` (re-exported from terminal.kernel.money) and `terminal_params(...)`
  build the EMV terminal data (9F1A country, 5F2A currency, 9F02 amount).

Config ([readers] in terminal.config): `pcsc_readers` (name parts, comma-separated) ->
`name_filter`; `pcsc_socket` -> PCSCLITE_CSOCK_NAME, which libpcsclite reads once per
process, so it must be set before the first PC/SC call (terminal/card_cli.py does).

On failure nothing is raised to the caller. A reader that goes away ->
`ReaderState(name, "absent")`, back -> "ready". pcscd gone (no service, service
stopped, invalid context, RPC error) -> `ReaderState("*", "service_down")`; the thread
re-establishes the context with a backoff from 0.2 s growing to 2 s and reports
`ReaderState("*", "ready")` and each reader again when pcscd is back. Each state change
is logged once (key=value), never each retry. A transmit failure is `CardGone` when the
reader then reports the card absent within `gone_check_s` (vpcd and most readers notice
a removal at their next presence poll, ~0.4 s), else `EmvError`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from smartcard import scard

from drivers.readers import emv
from drivers.readers.events import EmvTap, ReaderEvent, ReaderState, RfidTap, TapFailed
from drivers.readers.reader import ReaderSettings
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.money import currency_numeric, to_minor_units

__all__ = ["PcscReaders", "currency_numeric", "terminal_params"]

log = get_logger("pcsc")

PNP_READER = "\\\\?PnP?\\Notification"
SERVICE = "*"  # the pseudo reader name of pcscd itself in states() and ReaderState
GET_UID = bytes.fromhex("FFCA000000")
SW_OK = b"\x90\x00"
REASON_UNREADABLE = "card could not be read"
REASON_REMOVED = "card removed too early - tap again"
REASON_NOT_SUPPORTED = "payment card of an unknown scheme"
REASON_NOT_ACCEPTED = "payment card of a scheme not accepted here"
REASON_SEE_PHONE = "see phone for instructions - tap again"
FAILURE_CODES = {REASON_UNREADABLE: "unreadable", REASON_REMOVED: "removed",
                 REASON_NOT_SUPPORTED: "not_supported", REASON_NOT_ACCEPTED: "not_accepted",
                 REASON_SEE_PHONE: "see_phone"}
NO_SECOND_TRY = frozenset({"not_supported", "not_accepted"})
RELIST_INTERVAL_S = 1.0  # besides the PnP notification, list readers this often

_MASK = 0xFFFFFFFF
SERVICE_DOWN_CODES = frozenset(
    code & _MASK for code in (
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_INVALID_HANDLE,
        scard.SCARD_F_COMM_ERROR,  # pcsc-lite: "RPC transport error", pcscd died
    )
)
CARD_GONE_CODES = frozenset(
    code & _MASK for code in (
        scard.SCARD_W_REMOVED_CARD,
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_W_RESET_CARD,
        scard.SCARD_W_UNPOWERED_CARD,
    )
)
_CODE_NAMES = {
    getattr(scard, name) & _MASK: name
    for name in dir(scard)
    if name.startswith(("SCARD_E_", "SCARD_W_", "SCARD_F_", "SCARD_P_"))
}


def error_name(code: int) -> str:
    """`SCARD_E_NO_SERVICE` & co. for a PC/SC return code."""
    return _CODE_NAMES.get(code & _MASK, f"0x{code & _MASK:08X}")


def terminal_params(country_code: str, currency: str, amount: Decimal,
                    accepted_schemes: tuple[str, ...] | None = None) -> emv.TerminalParams:
    """EMV terminal data: ISO 3166 numeric country, ISO 4217 alpha currency (-> numeric),
    pre-authorisation amount in the currency (-> minor units), the accepted scheme ids
    (None: every known one). ValueError naming the currency when it has no known numeric
    code."""
    return emv.TerminalParams(country_code, currency_numeric(currency),
                              to_minor_units(amount, currency),
                              accepted_schemes=accepted_schemes)


class _ServiceLost(Exception):
    """pcscd went away; the monitor re-establishes its context."""

    def __init__(self, code: int) -> None:
        super().__init__(error_name(code))
        self.code = code


class _Transport:
    """`emv.Transmit` over one card handle: the R-APDU, or CardGone / EmvError."""

    def __init__(self, owner: PcscReaders, ctx: int, reader: str, seen_state: int,
                 hcard: int, protocol: int, deadline_s: float) -> None:
        self._owner = owner
        self._ctx = ctx
        self._reader = reader
        self._seen_state = seen_state
        self._hcard = hcard
        self._protocol = protocol
        self._deadline_s = deadline_s
        self.apdus = 0

    def __call__(self, command: bytes) -> bytes:
        if time.monotonic() > self._deadline_s:
            raise emv.EmvError("card read took too long")
        try:
            code, response = scard.SCardTransmit(self._hcard, self._protocol, list(command))
        except (SystemError, TypeError, ValueError):
            code, response = scard.SCARD_E_INVALID_HANDLE, []
        code &= _MASK
        self.apdus += 1
        if code == scard.SCARD_S_SUCCESS and len(response) >= 2:
            return bytes(response)
        # vpcd answers an empty R-APDU when the card's connection closed mid-command
        what = error_name(code) if code else "empty response"
        if code in CARD_GONE_CODES or code in SERVICE_DOWN_CODES or self._owner._card_gone(
            self._ctx, self._reader, self._seen_state
        ):
            raise emv.CardGone(f"transmit failed: {what}")
        raise emv.EmvError(f"transmit failed: {what}")


class PcscReaders:
    def __init__(
        self,
        terminal: Callable[[], emv.TerminalParams],
        name_filter: tuple[str, ...] = (),
        *,
        read_timeout_s: float = 5.0,
        poll_timeout_s: float = 0.2,
        retry_min_s: float = 0.2,
        retry_max_s: float = 2.0,
        gone_check_s: float = 0.6,
        today: Callable[[], date] = date.today,
    ) -> None:
        self._terminal = terminal
        self.name_filter = tuple(part for part in name_filter if part)
        self.read_timeout_s = read_timeout_s
        self.poll_timeout_s = poll_timeout_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.gone_check_s = gone_check_s
        self._today = today
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: int | None = None
        self._emit: Callable[[ReaderEvent], None] = lambda event: None
        self._down_since_s: float | None = None

    # public API

    def start(self, emit: Callable[[ReaderEvent], None]) -> None:
        """Start the monitor thread; it calls `emit` (thread-safe) with every event
        (drivers.readers.reader.queue_emitter hands them to an asyncio queue)."""
        if self._thread is not None:
            raise RuntimeError("PC/SC monitor already started")
        self._emit = emit
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pcsc-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """End the monitor thread (it notices within poll_timeout_s) and wait for it."""
        self._stop.set()
        ctx = self._ctx
        if ctx is not None:
            with contextlib.suppress(Exception):
                scard.SCardCancel(ctx)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def states(self) -> dict[str, str]:
        with self._lock:
            return dict(self._states)

    # state bookkeeping

    def _set_state(self, reader: str, state: str, detail: str = "") -> None:
        with self._lock:
            if self._states.get(reader) == state:
                return
            self._states[reader] = state
        if reader == SERVICE:
            if state == "service_down":
                self._down_since_s = time.monotonic()
                log.warning("pcscd unavailable", extra=fields(error=detail))
            elif self._down_since_s is None:
                log.info("pcscd available")
            else:
                log.info("pcscd available", extra=fields(
                    down_s=round(time.monotonic() - self._down_since_s, 1)))
                self._down_since_s = None
        else:
            log.info("pc/sc reader %s", state, extra=fields(reader=reader))
        self._emit(ReaderState(reader, state, detail))

    def _service_down(self, code: int) -> None:
        with self._lock:
            readers = [r for r in self._states if r != SERVICE]
            for reader in readers:  # reported again when pcscd is back
                del self._states[reader]
        self._set_state(SERVICE, "service_down", error_name(code))

    def _wanted(self, reader: str) -> bool:
        return not self.name_filter or any(part in reader for part in self.name_filter)

    # the monitor thread

    def _run(self) -> None:
        backoff_s = self.retry_min_s
        while not self._stop.is_set():
            try:
                code, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            except SystemError:
                code, ctx = scard.SCARD_E_NO_SERVICE, 0
            code &= _MASK
            if code != scard.SCARD_S_SUCCESS:
                self._service_down(code)
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, self.retry_max_s)
                continue
            self._ctx = ctx
            try:
                self._watch(ctx)
                backoff_s = self.retry_min_s
            except _ServiceLost as lost:
                self._service_down(lost.code)
                backoff_s = self.retry_min_s
                self._stop.wait(backoff_s)
            except Exception:  # never let the thread die; log without card data
                log.exception("pc/sc monitor error")
                self._stop.wait(self.retry_max_s)
            finally:
                self._ctx = None
                with contextlib.suppress(Exception):
                    scard.SCardReleaseContext(ctx)

    def _list_readers(self, ctx: int) -> list[str]:
        try:
            code, readers = scard.SCardListReaders(ctx, [])
        except SystemError:
            raise _ServiceLost(scard.SCARD_E_INVALID_HANDLE) from None
        code &= _MASK
        if code == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if code in SERVICE_DOWN_CODES:
            raise _ServiceLost(code)
        if code != scard.SCARD_S_SUCCESS:
            log.warning("pc/sc reader list failed", extra=fields(error=error_name(code)))
            return []
        return [r for r in readers if self._wanted(r)]

    def _watch(self, ctx: int) -> None:
        """Serve one context until stop() (returns) or pcscd goes away (_ServiceLost)."""
        known: dict[str, int] = {}  # reader -> state last reported by pcscd
        pnp_state = scard.SCARD_STATE_UNAWARE
        relist = True
        last_list_s = 0.0
        self._set_state(SERVICE, "ready")
        poll_ms = max(1, int(self.poll_timeout_s * 1000))
        while not self._stop.is_set():
            if relist or time.monotonic() - last_list_s >= RELIST_INTERVAL_S:
                self._update_readers(ctx, known)
                relist = False
                last_list_s = time.monotonic()
            request = [(r, s) for r, s in known.items()] + [(PNP_READER, pnp_state)]
            try:
                code, changes = scard.SCardGetStatusChange(ctx, poll_ms, request)
            except SystemError:
                raise _ServiceLost(scard.SCARD_E_INVALID_HANDLE) from None
            code &= _MASK
            if code in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
                continue
            if code in SERVICE_DOWN_CODES:
                raise _ServiceLost(code)
            if code != scard.SCARD_S_SUCCESS:  # e.g. SCARD_E_UNKNOWN_READER: a reader left
                relist = True
                self._stop.wait(0.05)
                continue
            seen_s = time.monotonic()
            for reader, event_state, _atr in changes:
                state = event_state & ~scard.SCARD_STATE_CHANGED
                if reader == PNP_READER:
                    if event_state & scard.SCARD_STATE_CHANGED:
                        relist = True
                    pnp_state = state
                    continue
                if reader not in known:
                    continue
                if event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                    relist = True
                    continue
                previous = known[reader]
                known[reader] = state
                if self._inserted(previous, state):
                    if state & scard.SCARD_STATE_MUTE:
                        self._failed(reader, REASON_UNREADABLE, seen_s, "card mute")
                    else:
                        self._read_card(ctx, reader, state, seen_s)

    @staticmethod
    def _inserted(previous: int, state: int) -> bool:
        if not state & scard.SCARD_STATE_PRESENT:
            return False
        if not previous & scard.SCARD_STATE_PRESENT:
            return True
        return (previous >> 16) != (state >> 16)  # pcsc-lite's event counter: re-inserted

    def _update_readers(self, ctx: int, known: dict[str, int]) -> None:
        readers = self._list_readers(ctx)
        for reader in readers:
            if reader not in known:
                known[reader] = scard.SCARD_STATE_UNAWARE
                self._set_state(reader, "ready")
        for reader in list(known):
            if reader not in readers:
                del known[reader]
                self._set_state(reader, "absent")

    def _card_gone(self, ctx: int, reader: str, seen_state: int) -> bool:
        """After a transmit failure: does the reader report the card gone (absent, or
        removed and inserted again) within gone_check_s?"""
        deadline_s = time.monotonic() + self.gone_check_s
        state = seen_state
        while (remaining_s := deadline_s - time.monotonic()) > 0:
            try:
                code, changes = scard.SCardGetStatusChange(
                    ctx, max(1, int(remaining_s * 1000)), [(reader, state)])
            except SystemError:
                return True
            code &= _MASK
            if code == scard.SCARD_E_TIMEOUT:
                return False
            if code != scard.SCARD_S_SUCCESS:
                return True  # the reader or pcscd went away: the card is gone for us
            new = changes[0][1] & ~scard.SCARD_STATE_CHANGED
            if not new & scard.SCARD_STATE_PRESENT or (new >> 16) != (seen_state >> 16):
                return True
            state = new
        return False

    def _failed(self, reader: str, reason: str, seen_s: float, detail: str,
                tap_again: bool = True) -> None:
        log.warning("card read failed", extra=fields(reader=reader, reason=reason,
                                                     detail=detail))
        code = FAILURE_CODES[reason]
        self._emit(TapFailed(reader, reason, tap_again and code not in NO_SECOND_TRY, seen_s,
                             code))

    def _read_card(self, ctx: int, reader: str, state: int, seen_s: float) -> None:
        try:
            code, hcard, protocol = scard.SCardConnect(
                ctx, reader, scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T1 | scard.SCARD_PROTOCOL_T0)
        except SystemError:
            raise _ServiceLost(scard.SCARD_E_INVALID_HANDLE) from None
        code &= _MASK
        if code in SERVICE_DOWN_CODES:
            raise _ServiceLost(code)
        if code in CARD_GONE_CODES:
            self._failed(reader, REASON_REMOVED, seen_s, error_name(code))
            return
        if code != scard.SCARD_S_SUCCESS:
            self._failed(reader, REASON_UNREADABLE, seen_s, error_name(code))
            return
        transport = _Transport(self, ctx, reader, state, hcard, protocol,
                               seen_s + self.read_timeout_s)
        try:
            event = self._identify(reader, transport, seen_s)
        finally:
            with contextlib.suppress(Exception):
                scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
        if event is not None:
            self._emit(event)

    def _identify(self, reader: str, transmit: _Transport,
                  seen_s: float) -> RfidTap | EmvTap | None:
        """The tap event, or None after a failure was reported."""
        try:
            answer = transmit(GET_UID)
            uid = answer[:-2].hex().upper() if answer[-2:] == SW_OK and answer[:-2] else None
            read = emv.read_emv(transmit, self._terminal(), self._today())
        except emv.CardGone as exc:
            self._failed(reader, REASON_REMOVED, seen_s, str(exc))
            return None
        except emv.NotEmvCard as exc:
            if uid is None:
                self._failed(reader, REASON_UNREADABLE, seen_s, f"no uid; {exc.reason}",
                             tap_again=False)
                return None
            log.info("card read", extra=fields(reader=reader, kind="rfid", uid=uid,
                                               apdus=transmit.apdus,
                                               read_ms=_ms_since(seen_s)))
            return RfidTap(reader, uid, "iso14443", seen_s)
        except emv.SchemeNotAccepted as exc:
            self._failed(reader, REASON_NOT_ACCEPTED, seen_s, exc.reason)
            return None
        except emv.UnsupportedCard as exc:
            self._failed(reader, REASON_NOT_SUPPORTED, seen_s, exc.reason)
            return None
        except emv.SeePhone as exc:
            self._failed(reader, REASON_SEE_PHONE, seen_s, exc.reason)
            return None
        except emv.EmvError as exc:
            self._failed(reader, REASON_UNREADABLE, seen_s, exc.reason)
            return None
        except Exception as exc:  # a bug; its message might hold card data: type only
            self._failed(reader, REASON_UNREADABLE, seen_s,
                         f"unexpected {type(exc).__name__}")
            return None
        log.info("card read", extra=fields(reader=reader, kind="emv", scheme=read.scheme,
                                           aid=read.aid, apdus=transmit.apdus,
                                           read_ms=_ms_since(seen_s)))
        return EmvTap(reader, read, seen_s)


def _ms_since(start_s: float) -> int:
    return round((time.monotonic() - start_s) * 1000)


def open_pcsc(settings: ReaderSettings) -> PcscReaders:
    """The PC/SC readers of `settings` (drivers.readers.reader.open_readers)."""
    if settings.pcsc_socket:
        os.environ["PCSCLITE_CSOCK_NAME"] = settings.pcsc_socket
    assert settings.terminal_params is not None, "PC/SC readers need terminal_params"
    return PcscReaders(settings.terminal_params, settings.pcsc_readers)
