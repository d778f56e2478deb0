"""The backend over a Unix socket: the terminal's side of the loopback backend.

Provides `LoopbackBackend(socket_path, station_id, request_timeout_s)`, a `Backend`
(terminal.backend.api) that talks to `evterm sim backend-loopback` (or any server
speaking the same JSON lines, docs/authorisation.md) over ONE persistent connection:

- On connect it says `hello` with the station id; only after the answer is it online.
- Requests carry a correlation id (`id`) and are matched to their answers, which may
  come in any order. Pushes (`refund`, `local_list`) arrive on the same connection and
  go to the listener one after the other, in the order they came, as do connectivity
  changes (`on_connectivity(True/False)`).
- The connection is kept up: when the server goes away the link is offline and it
  reconnects with exponential backoff from `reconnect_min_s` (default 0.2 s) to
  `reconnect_max_s` (default 5 s).

Config: `[backend] socket_path`, `request_timeout_s` (per request, default 5 s).

On failure: a request while offline raises BackendUnavailable at once (no waiting);
no answer within `request_timeout_s`, a lost connection or an error answer raise
BackendUnavailable. A line from the server that is not JSON, too long, answers no
pending request or does not validate is logged and dropped; nothing crashes the link.
An exception from the listener is logged; delivery of later pushes goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from terminal.backend.api import (
    BackendListener,
    BackendUnavailable,
    NoListener,
    RequestsOverOneChannel,
    deliver_in_order,
)
from terminal.backend.messages import LocalListUpdate, MessageError, Refund
from terminal.kernel.logsetup import FaultLogger, fields, get_logger

log = get_logger("backend")

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 256 * 1024
T = TypeVar("T")


class LoopbackBackend(RequestsOverOneChannel):
    def __init__(
        self,
        socket_path: str | Path,
        station_id: str,
        request_timeout_s: float = 5.0,
        *,
        reconnect_min_s: float = 0.2,
        reconnect_max_s: float = 5.0,
    ) -> None:
        self.socket_path = str(socket_path)
        self.station_id = station_id
        self.request_timeout_s = request_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self._listener: BackendListener = NoListener()
        self._online = False
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._events: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._event_task: asyncio.Task[None] | None = None
        self._faults = FaultLogger(log, "backend link")
        self.stats = {"dropped_lines": 0, "listener_errors": 0, "connects": 0}

    # ---- Backend ------------------------------------------------------------------------

    def storage_ok(self) -> bool:
        return True  # requests only: nothing is queued on disk for this link

    def wake(self) -> None:
        return None  # no outbox pump

    async def start(self) -> None:
        """Connect in the background; returns after the first attempt (at most
        request_timeout_s), online or not."""
        if self._task is not None:
            return
        self._first_attempt = asyncio.Event()
        self._event_task = asyncio.create_task(deliver_in_order(self._events, self.stats),
                                               name="backend-events")
        self._task = asyncio.create_task(self._run(), name="backend-link")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self.request_timeout_s)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._disconnect("closed")
        event_task, self._event_task = self._event_task, None
        if event_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._events.join(), 2)
            event_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await event_task

    # ---- requests -----------------------------------------------------------------------

    async def _request(self, op: str, body: dict[str, Any],
                       parse: Callable[[Any], T]) -> T:
        if not self._online:
            raise BackendUnavailable("offline: not connected to the backend")
        reply = await self._call(op, {"body": body})
        try:
            return parse(reply.get("body"))
        except MessageError as exc:
            log.warning("malformed answer from the backend", extra=fields(op=op, error=exc))
            raise BackendUnavailable(f"malformed answer to {op}: {exc}") from None

    async def _call(self, op: str, extra: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for the answer with its id."""
        writer = self._writer
        if writer is None:
            raise BackendUnavailable("offline: not connected to the backend")
        request_id = str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = (json.dumps({"op": op, "id": request_id, **extra}) + "\n").encode()
        try:
            async with self._write_lock:
                writer.write(line)
                await writer.drain()
            reply = await asyncio.wait_for(future, self.request_timeout_s)
        except TimeoutError:
            raise BackendUnavailable(
                f"no answer to {op} within {self.request_timeout_s:g} s") from None
        except (ConnectionError, OSError) as exc:
            raise BackendUnavailable(f"cannot send {op}: {exc}") from None
        finally:
            self._pending.pop(request_id, None)
        if not reply.get("ok"):
            raise BackendUnavailable(f"the backend refused {op}: {reply.get('error')}")
        return reply

    # ---- the link -----------------------------------------------------------------------

    async def _run(self) -> None:
        delay_s = self.reconnect_min_s
        while True:
            try:
                connected = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not end the link for good
                log.exception("backend link failed")
                connected = False
            self._first_attempt.set()
            if connected:
                delay_s = self.reconnect_min_s
            await asyncio.sleep(delay_s)
            if not connected:
                delay_s = min(delay_s * 2, self.reconnect_max_s)

    async def _connect_once(self) -> bool:
        """One connection: connect, hello, read until it ends. True when it got online."""
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path,
                                                                limit=MAX_LINE_BYTES)
        except OSError as exc:
            self._faults.failed(f"{self.socket_path}: {exc.strerror or exc}")
            return False
        self._writer = writer
        reading = asyncio.create_task(self._read(reader), name="backend-read")
        try:
            try:
                await self._call("hello", {"station_id": self.station_id,
                                           "v": PROTOCOL_VERSION})
            except BackendUnavailable as exc:
                self._faults.failed(f"hello: {exc.reason}")
                return False
            self._faults.recovered()
            self.stats["connects"] += 1
            log.info("backend link online", extra=fields(socket=self.socket_path))
            self._set_online(True)
            self._first_attempt.set()
            await reading
            log.warning("backend link lost", extra=fields(socket=self.socket_path))
            return True
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            await self._disconnect("connection to the backend lost")

    async def _disconnect(self, reason: str) -> None:
        writer, self._writer = self._writer, None
        if self._online:
            self._set_online(False)
        self._fail_pending(reason)
        self._pending.clear()
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE_BYTES; the rest arrives as junk
                    self._drop("line too long", f"more than {MAX_LINE_BYTES} bytes")
                    continue
                except (ConnectionError, OSError):
                    return
                if not line:
                    return
                if line.strip():
                    self._on_line(line)
        finally:
            self._fail_pending("connection to the backend lost")

    def _drop(self, why: str, detail: str) -> None:
        self.stats["dropped_lines"] += 1
        log.warning("backend line dropped", extra=fields(why=why, detail=detail[:200]))

    def _on_line(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._drop("not JSON", str(exc))
            return
        if not isinstance(message, dict):
            self._drop("not a JSON object", type(message).__name__)
            return
        if "push" in message:
            self._on_push(message)
            return
        request_id = message.get("id")
        future = self._pending.get(request_id) if isinstance(request_id, str) else None
        if future is None:
            self._drop("answers no pending request", f"id={request_id!r}")
            return
        if not future.done():
            future.set_result(message)

    def _on_push(self, message: dict[str, Any]) -> None:
        kind = message.get("push")
        try:
            if kind == "refund":
                refund = Refund.from_json(message.get("body"))
                self._events.put_nowait(lambda: self._listener.on_refund(refund))
            elif kind == "local_list":
                update = LocalListUpdate.from_json(message.get("body"))
                self._events.put_nowait(lambda: self._listener.on_local_list(update))
            else:
                self._drop("unknown push", repr(kind))
        except MessageError as exc:
            self._drop(f"malformed {kind} push", str(exc))
