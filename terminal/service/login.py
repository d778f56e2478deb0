"""Technician login: the PIN window, the lockout and the idle logout (docs/service.md).

Provides:
- `Login` (one technician's token: who, since when, last op), `PinWindow` (a technician
  card tapped; its PIN is due within `pin_window_s`) and `Lockout` (wrong PINs and
  lockouts, journaled as `pin_lockout`).
- `Logins(deps)`: the state machine behind the local-API ops `service_login` and
  `service_logout`. A technician card tapped while no session runs opens a PIN window;
  the right PIN within it gives a token (at most `MAX_LOGINS` at a time, the oldest goes
  first); every other op needs the token (`logged_in`) and refreshes its idle timer
  (`idle_logout_s`, then logged out). `max_failed_pins` wrong PINs in a row lock PIN
  entry for `lockout_s`, doubled with each further lockout up to `max_lockout_s`; a good
  PIN resets both counts. The lockout survives a restart (`load`). PINs are checked in a
  worker thread, one at a time.

Every login, logout, failure and lockout goes to the audit log with the technician's
masked card id. On failure: a refused op raises `RequestError` whose message starts with
the field at fault (`pin:`, `wait_card_s:`, `card:`, `locked:`, `token:`) and changes
nothing but the failure counts; requests without a valid token are only logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.kernel.logsetup import fields, get_logger
from terminal.localapi import RequestError
from terminal.service.pins import check_pin, load_pins, mask_id, verify_pin
from terminal.service.port import ServiceDeps, audit

log = get_logger("service")

KEY_PIN_LOCKOUT = "pin_lockout"
MAX_WAIT_CARD_S = 120.0
MAX_LOGINS = 4  # open logins at a time (touchscreen, SSH); the oldest goes first


@dataclass
class Login:
    technician: str
    started_at: datetime
    last_op_s: float  # the clock's monotonic seconds
    diagnostics_audited: bool = False


@dataclass(frozen=True)
class PinWindow:
    technician: str
    reader: str
    opened_s: float


@dataclass
class Lockout:
    failures: int = 0  # wrong PINs since the last good PIN or lockout
    lockouts: int = 0  # lockouts since the last good PIN
    locked_until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"failures": self.failures, "lockouts": self.lockouts,
                "locked_until": iso_utc(self.locked_until) if self.locked_until else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lockout:
        until = data.get("locked_until")
        return cls(int(data.get("failures", 0)), int(data.get("lockouts", 0)),
                   datetime.fromisoformat(until) if until else None)


class Logins:
    """The technicians' logins, the open PIN window and the PIN lockout."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps
        self.config = deps.config.service
        self.clock = deps.clock
        self.lockout = Lockout()
        self.window: PinWindow | None = None
        self.logins: dict[str, Login] = {}
        self._window_opened = asyncio.Event()
        self._pin_lock = asyncio.Lock()



    async def load(self) -> None:
        """The PIN lockout as journaled."""
        saved = await self.deps.store.call(self.deps.tables.get, KEY_PIN_LOCKOUT)
        self.lockout = Lockout.from_json(saved) if saved else Lockout()

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """`service` of the status snapshot: none, pin, locked or active."""
        now_s = self.clock.monotonic_s()
        login = self._newest_login(now_s)
        window = self._open_window(now_s)
        locked_until = self._locked_until(now)
        state: dict[str, Any] = {"state": "none", "technician": None, "locked_until": None,
                                 "pin_until": None}
        if login is not None:
            state.update(state="active", technician=mask_id(login.technician))
        elif locked_until is not None:
            state.update(state="locked", locked_until=iso_utc(locked_until),
                         technician=mask_id(window.technician) if window else None)
        elif window is not None:
            until = now + timedelta(seconds=window.opened_s + self.config.pin_window_s
                                    - now_s)
            state.update(state="pin", technician=mask_id(window.technician),
                         pin_until=iso_utc(until))
        return state

    async def technician_tapped(self, id_token: str, reader: str) -> None:
        """A technician card at a free connector: the PIN window opens."""
        technician = id_token.upper()
        self.window = PinWindow(technician, reader, self.clock.monotonic_s())
        log.warning("technician card: PIN window open",
                    extra=fields(technician=mask_id(technician), reader=reader))
        await audit(self.deps, "service_card", {"technician": mask_id(technician),
                                           "reader": reader})
        opened, self._window_opened = self._window_opened, asyncio.Event()
        opened.set()
        self.deps.session.publish_state()

    async def op_keep_pin(self, request: dict[str, Any]) -> dict[str, Any]:
        """`service_keep_pin`: somebody touched the PIN pad, the open PIN window gets its
        full `pin_window_s` again (WCAG 2.2.1); refused when no window is open."""
        now_s = self.clock.monotonic_s()
        window = self._open_window(now_s)
        if window is None:
            raise RequestError("card: no PIN window is open; tap a technician card first")
        self.window = replace(window, opened_s=now_s)
        return {"state": self.deps.session.publish_state()}

    async def expire(self) -> None:
        """Close an expired PIN window and log idle technicians out (after every poll)."""
        now_s = self.clock.monotonic_s()
        if self.window is not None and self._open_window(now_s) is None:
            log.info("PIN window closed", extra=fields(technician=mask_id(
                self.window.technician)))
            self.window = None
        for token, login in list(self.logins.items()):
            if now_s - login.last_op_s >= self.config.idle_logout_s:
                await self.logout(token, "idle")

    def _open_window(self, now_s: float) -> PinWindow | None:
        window = self.window
        if window is None or now_s - window.opened_s >= self.config.pin_window_s:
            return None
        return window

    def _newest_login(self, now_s: float) -> Login | None:
        alive = [login for login in self.logins.values()
                 if now_s - login.last_op_s < self.config.idle_logout_s]
        return max(alive, key=lambda login: login.started_at, default=None)

    def _locked_until(self, now: datetime) -> datetime | None:
        until = self.lockout.locked_until
        return until if until is not None and until > now else None

    async def op_login(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            pin = check_pin(request.get("pin"))
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        wait_s = request.get("wait_card_s", 0)
        if isinstance(wait_s, bool) or not isinstance(wait_s, int | float) \
                or not 0 <= wait_s <= MAX_WAIT_CARD_S:
            raise RequestError(f"wait_card_s: expected 0 to {MAX_WAIT_CARD_S:g} seconds, "
                               f"got {wait_s!r:.20}")
        if wait_s and self._open_window(self.clock.monotonic_s()) is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._window_opened.wait(), wait_s / self.clock.speed)
        async with self._pin_lock:
            return await self._login(pin, wait_s)

    async def _login(self, pin: str, wait_s: float) -> dict[str, Any]:
        now = self.clock.now()
        locked_until = self._locked_until(now)
        window = self._open_window(self.clock.monotonic_s())
        if locked_until is not None:
            if window is not None:  # a card was tapped: worth an audit row
                await audit(self.deps, "service_login_failed", {
                    "technician": mask_id(window.technician), "reason": "locked"})
            raise RequestError(self._locked_text(locked_until, now))
        if window is None:
            waited = f" (none within {wait_s:g} s)" if wait_s else ""
            raise RequestError(f"card: tap a technician card first{waited}")
        encoded = self._pin_hash(window.technician)
        good = await asyncio.to_thread(verify_pin, pin, encoded)
        if not good:
            await self._wrong_pin(window, now)
        if self.lockout != Lockout():
            self.lockout = Lockout()
            await self.deps.store.call(self.deps.tables.put, KEY_PIN_LOCKOUT,
                                       self.lockout.to_json(), now)
        self.window = None
        token = secrets.token_urlsafe(24)
        while len(self.logins) >= MAX_LOGINS:
            oldest = min(self.logins, key=lambda t: self.logins[t].started_at)
            await self.logout(oldest, "replaced")
        self.logins[token] = Login(window.technician, now, self.clock.monotonic_s())
        technician = mask_id(window.technician)
        log.warning("technician logged in", extra=fields(technician=technician,
                                                         reader=window.reader))
        await audit(self.deps, "service_login", {"technician": technician, "reader": window.reader})
        self.deps.session.publish_state()
        return {"token": token, "technician": technician,
                "expires_in_s": self.config.idle_logout_s}

    def _pin_hash(self, technician: str) -> str:
        path = self.config.pins_file
        if not path:
            raise RequestError("pin: no PIN file is configured ([service] pins_file); "
                               "nobody can log in")
        try:
            pins = load_pins(path)
        except (OSError, ValueError) as exc:
            log.error("pins file unusable", extra=fields(error=exc))
            raise RequestError(f"pin: the PIN file cannot be used ({exc})") from None
        encoded = pins.get(technician)
        if encoded is None:
            raise RequestError("pin: no PIN is set for this technician card (evterm "
                               "service set-pin)")
        return encoded

    def _locked_text(self, until: datetime, now: datetime) -> str:
        left_s = math.ceil((until - now).total_seconds())
        return f"locked: too many wrong PINs; try again in {left_s} s"

    async def _wrong_pin(self, window: PinWindow, now: datetime) -> None:
        lock = self.lockout
        lock.failures += 1
        technician = mask_id(window.technician)
        left = self.config.max_failed_pins - lock.failures
        await audit(self.deps, "service_login_failed", {"technician": technician,
                                                   "reason": "wrong_pin",
                                                   "failures": lock.failures})
        log.warning("wrong technician PIN", extra=fields(technician=technician,
                                                         failures=lock.failures))
        if left > 0:
            await self.deps.store.call(self.deps.tables.put, KEY_PIN_LOCKOUT, lock.to_json(), now)
            attempts = "attempt" if left == 1 else "attempts"
            raise RequestError(f"pin: wrong PIN ({left} {attempts} left)")
        lock.lockouts += 1
        lock.failures = 0
        delay_s = min(self.config.lockout_s * 2 ** (lock.lockouts - 1),
                      self.config.max_lockout_s)
        lock.locked_until = now + timedelta(seconds=delay_s)
        self.window = None
        await self.deps.store.call(self.deps.tables.put, KEY_PIN_LOCKOUT, lock.to_json(), now)
        await audit(self.deps, "service_lockout", {"technician": technician,
                                              "lockouts": lock.lockouts, "delay_s": delay_s,
                                              "locked_until": iso_utc(lock.locked_until)})
        log.error("technician PIN entry locked", extra=fields(
            technician=technician, lockouts=lock.lockouts, delay_s=delay_s))
        self.deps.session.publish_state()
        raise RequestError(self._locked_text(lock.locked_until, now))

    async def logged_in(self, request: dict[str, Any]) -> Login:
        """The login the request's token names, its idle timer refreshed; RequestError
        naming `token` otherwise."""
        token = request.get("token")
        if not isinstance(token, str) or not token:
            log.warning("service op without a token", extra=fields(op=request.get("op")))
            raise RequestError("token: log in first (service_login)")
        login = self.logins.get(token)
        now_s = self.clock.monotonic_s()
        if login is not None and now_s - login.last_op_s >= self.config.idle_logout_s:
            await self.logout(token, "idle")
            login = None
        if login is None:
            log.warning("service op with an unknown or expired token",
                        extra=fields(op=request.get("op")))
            raise RequestError("token: unknown or expired; log in first (service_login)")
        login.last_op_s = now_s
        return login

    async def logout(self, token: str, reason: str) -> None:
        login = self.logins.pop(token, None)
        if login is None:
            return
        technician = mask_id(login.technician)
        log.warning("technician logged out", extra=fields(technician=technician,
                                                          reason=reason))
        await audit(self.deps, "service_logout", {"technician": technician, "reason": reason})
        self.deps.session.publish_state()

    async def op_logout(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self.logged_in(request)
        await self.logout(str(request["token"]), "requested")
        return {"technician": mask_id(login.technician)}
