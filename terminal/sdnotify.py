"""systemd's service notification protocol (sd_notify) without libsystemd.

systemd hands a Type=notify service the address of a Unix datagram socket in
`$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace); the service sends it
newline-separated `KEY=value` lines: `READY=1` when it serves, `STATUS=...` for
`systemctl status`, `WATCHDOG=1` to prove it is alive, `STOPPING=1` when it shuts down.
With `WatchdogSec=` set, systemd also sets `$WATCHDOG_USEC` (the timeout, microseconds)
and `$WATCHDOG_PID` (the process meant to ping); a service silent for that long is
killed with SIGABRT and, with `Restart=on-failure`, started again.

Provides:
- `notify(message)`: one datagram to `$NOTIFY_SOCKET`; False when there is none (run by
  hand, in tests, in the demo) or the send failed. It never blocks (MSG_DONTWAIT) and
  never raises.
- `watchdog_interval_s()`: the watchdog timeout in seconds, None when there is none or
  `$WATCHDOG_PID` names another process.
- `Watchdog`: an asyncio task sending `WATCHDOG=1` every half interval, but only while a
  heartbeat (e.g. the daemon's last completed meter poll, `time.monotonic()` seconds) is
  younger than `max_age_s`. Because it runs on the event loop, a loop blocked by a
  synchronous call stops the pings by itself; a stuck poll stops them through the
  heartbeat's age. An optional `status()` text goes along (`STATUS=...`) whenever it
  changes.

Config: none of its own; `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` come
from systemd (evterm.service: Type=notify, NotifyAccess=main, WatchdogSec=30).

On failure: a socket that cannot be reached is logged once (WARNING) and `notify`
returns False; the service keeps running (systemd then restarts it when the watchdog
expires, which is the point of the watchdog).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping

from terminal.kernel.logsetup import fields, get_logger

log = get_logger("sdnotify")
STATUS_ONLY_INTERVAL_S = 10.0  # STATUS refresh when NOTIFY_SOCKET is set but no watchdog
_warned: set[str] = set()


def socket_address(value: str) -> str | bytes | None:
    """The sendto() address for a `$NOTIFY_SOCKET` value: a path, or the abstract name
    (leading NUL) for `@name`; None for anything else (empty, relative, vsock:...)."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `message` (e.g. "READY=1\\nSTATUS=serving") to `$NOTIFY_SOCKET`."""
    env = os.environ if environ is None else environ
    where = env.get("NOTIFY_SOCKET", "")
    if not where:
        return False
    address = socket_address(where)
    if address is None:
        _warn_once(where, "unsupported NOTIFY_SOCKET address")
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), socket.MSG_DONTWAIT, address)
    except OSError as exc:
        _warn_once(where, f"notification not sent: {exc.strerror or exc}")
        return False
    return True


def _warn_once(where: str, what: str) -> None:
    if where not in _warned:
        _warned.add(where)
        log.warning(what, extra=fields(notify_socket=where))


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """`$WATCHDOG_USEC` in seconds; None when unset, not a positive integer, or when
    `$WATCHDOG_PID` is set to another process than this one."""
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


class Watchdog:
    """Pings systemd's watchdog from the running asyncio loop while `heartbeat_s()` (a
    `time.monotonic()` value, or None before the first beat) is at most `max_age_s`
    old. Before the first beat the age counts from `start()`.

    Healthy, it pings every `interval_s / 2`; after a skipped ping it checks again every
    `interval_s / 10`, so a short stall delays the next ping instead of dropping a
    whole period. `pings` and `skipped` count what it did (for tests and diagnostics).
    """

    def __init__(
        self,
        heartbeat_s: Callable[[], float | None],
        max_age_s: float,
        interval_s: float | None = None,
        status: Callable[[], str] | None = None,
        environ: Mapping[str, str] | None = None,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.heartbeat_s = heartbeat_s
        self.max_age_s = max_age_s
        self.environ = os.environ if environ is None else environ
        self.interval_s = interval_s if interval_s is not None else watchdog_interval_s(
            self.environ)
        self.status = status
        self.monotonic_s = monotonic_s
        self.pings = 0
        self.skipped = 0
        self._started_s = 0.0
        self._last_status: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.environ.get("NOTIFY_SOCKET"))

    def alive(self) -> bool:
        """The heartbeat is recent enough to vouch for the service."""
        beat = self.heartbeat_s()
        since = self._started_s if beat is None else beat
        return self.monotonic_s() - since <= self.max_age_s

    def start(self) -> bool:
        """Start pinging on the running loop; False (nothing started) without
        `$NOTIFY_SOCKET`."""
        if not self.enabled or self._task is not None:
            return False
        self._started_s = self.monotonic_s()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="watchdog")
        log.info("systemd notification started", extra=fields(
            watchdog_s=self.interval_s, max_heartbeat_age_s=round(self.max_age_s, 3)))
        return True

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def _message(self, ping: bool) -> str:
        lines = ["WATCHDOG=1"] if ping else []
        if self.status is not None:
            text = self.status().replace("\n", " ")
            if text != self._last_status:
                self._last_status = text
                lines.append(f"STATUS={text}")
        return "\n".join(lines)

    async def _run(self) -> None:
        period_s = self.interval_s / 2 if self.interval_s else STATUS_ONLY_INTERVAL_S
        retry_s = period_s / 5
        was_alive = True
        while True:
            ping = self.interval_s is not None and self.alive()
            if self.interval_s is not None and ping != was_alive:
                beat = self.heartbeat_s()
                age_s = None if beat is None else round(self.monotonic_s() - beat, 3)
                if ping:
                    log.warning("watchdog pings resumed", extra=fields(heartbeat_age_s=age_s))
                else:
                    log.error("watchdog pings withheld: heartbeat too old",
                              extra=fields(heartbeat_age_s=age_s, max_s=self.max_age_s))
                was_alive = ping
            message = self._message(ping)
            if message and notify(message, self.environ) and ping:
                self.pings += 1
            elif self.interval_s is not None and not ping:
                self.skipped += 1
            await asyncio.sleep(period_s if ping or self.interval_s is None else retry_s)
