"""The daemon's local API: a Unix socket speaking JSON lines (docs/local-api.md).

Clients (the touchscreen UI, `evterm session ...`, the service CLI) send one JSON
object per line, `{"op": NAME, "id": ANY, ...}`, and get one reply line with the same
`id` and `"ok": true|false`. A client that sent `{"op": "subscribe"}` also receives
every message the daemon publishes (state snapshots, events). Several clients may be
connected; a slow or dead client never blocks the daemon: its queue is bounded and it
is dropped when the queue overflows. A malformed line is answered with an error that
names what was wrong, and nothing else happens. Who may connect is set by the socket's
file permissions (`[localapi] socket_mode`); what a client may do, by its role, taken
from the peer's credentials (SO_PEERCRED) when it connects: root and the daemon's own
user have the service role, every other user the driver role (the touchscreen's
intents only). Each op is routed for the service role, for both roles with one handler,
or with a narrower handler for the driver role (`route`); an op not routed for a
client's role is refused with `op: ... needs the service role`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from enum import Enum
from pathlib import Path
from typing import Any

from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.redact import shown

log = get_logger("localapi")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_LINE_BYTES = 64 * 1024
QUEUE_LIMIT = 256
MAX_DEPTH = 8  # objects and arrays nested in a request
MAX_INTEGER_DIGITS = 20
MAX_ID_CHARS = 64


class RequestError(Exception):
    """A request the daemon refuses; the message is sent to the client."""


class Role(Enum):
    DRIVER = "driver"  # the touchscreen: the driver's intents, technician ops by login
    SERVICE = "service"  # root and the daemon's own user: every op


def default_service_uids() -> frozenset[int]:
    """Root and the user the daemon runs as."""
    return frozenset({0, os.geteuid()})


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The user id of the process at the other end of a Unix socket (SO_PEERCRED), None
    where the platform does not tell."""
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return None
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option,
                                                              struct.calcsize("3i")))
    except OSError:
        return None
    return uid


class _Client:
    def __init__(self, writer: asyncio.StreamWriter, role: Role = Role.DRIVER) -> None:
        self.writer = writer
        self.role = role
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)
        self.subscribed = False

    def send(self, message: dict[str, Any]) -> bool:
        """Queue a line; False when the client is too slow and must go."""
        line = (json.dumps(message, sort_keys=True, default=str) + "\n").encode()
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            return False
        return True

    async def pump(self) -> None:
        while (line := await self.queue.get()) is not None:
            self.writer.write(line)
            await self.writer.drain()


class LocalApi:
    def __init__(self, path: str | Path, mode: int = 0o660,
                 snapshot: Callable[[], dict[str, Any]] | None = None,
                 service_uids: frozenset[int] | None = None) -> None:
        self.path = Path(path)
        self.mode = mode
        self.handlers: dict[str, Handler] = {}  # the service role's
        self.driver_handlers: dict[str, Handler] = {}  # the driver role's
        # peers with the service role (default: root and the daemon's own user)
        self.service_uids = default_service_uids() if service_uids is None else service_uids
        self._clients: set[_Client] = set()
        self._server: asyncio.AbstractServer | None = None
        self.snapshot = snapshot  # the status snapshot (`subscribe`, `publish_state`)

    def route(self, op: str, handler: Handler, *, driver: Handler | None = None) -> None:
        """`handler` serves `op` for the service role; `driver` serves it for the driver
        role (None: the driver role may not use `op`)."""
        self.handlers[op] = handler
        if driver is not None:
            self.driver_handlers[op] = driver
        else:
            self.driver_handlers.pop(op, None)

    def route_for_all(self, op: str, handler: Handler) -> None:
        """`op` is open to both roles with the same handler: a driver's intent, or an op
        that carries its own authentication (a technician's login token)."""
        self.route(op, handler, driver=handler)

    def role_of(self, uid: int | None) -> Role:
        return Role.SERVICE if uid is not None and uid in self.service_uids else Role.DRIVER

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_socket(self.path)
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_LINE_BYTES
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, self.mode)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for client in list(self._clients):
                client.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def publish(self, message: dict[str, Any]) -> None:
        """Send to every subscriber, never waiting; drop subscribers that lag."""
        for client in list(self._clients):
            if client.subscribed and not client.send(message):
                log.warning("local API client too slow; disconnected")
                self._drop(client)

    def publish_state(self) -> dict[str, Any]:
        """Send the status snapshot to every subscriber; returns it."""
        state = self.snapshot() if self.snapshot else {}
        self.publish({"type": "state", "state": state})
        return state

    def _drop(self, client: _Client) -> None:
        self._clients.discard(client)
        client.writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(writer, self.role_of(peer_uid(writer)))
        self._clients.add(client)
        pump = asyncio.create_task(client.pump())
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the limit
                    client.send({"ok": False, "error": f"line longer than {MAX_LINE_BYTES} bytes"})
                    break
                if not line:
                    break
                if line.strip():
                    client.send(await self._handle(client, line))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(client)
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pump, 2)
            pump.cancel()
            writer.close()

    async def _handle(self, client: _Client, line: bytes) -> dict[str, Any]:
        try:
            request = parse_request(line)
        except RequestError as exc:
            return {"ok": False, "error": str(exc)}
        reply: dict[str, Any] = {"id": request.get("id")} if "id" in request else {}
        op = request.get("op")
        if op == "subscribe":
            client.subscribed = True
            snapshot = self.snapshot() if self.snapshot else {}
            return {**reply, "ok": True, "op": "subscribe", "state": snapshot}
        routes = self.handlers if client.role is Role.SERVICE else self.driver_handlers
        handler = routes.get(op) if isinstance(op, str) else None
        if handler is None and isinstance(op, str) and op in self.handlers:
            log.warning("local API op refused for the driver role", extra=fields(op=op))
            return {**reply, "ok": False, "op": op,
                    "error": f"op: {op} needs the service role (root or the daemon's "
                    "user); this connection has the driver role"}
        if handler is None:
            known = ", ".join(sorted([*routes, "subscribe"]))
            return {**reply, "ok": False, "error": f"unknown op {op!r:.40}; known: {known}"}
        try:
            result = await handler(request)
        except RequestError as exc:
            return {**reply, "ok": False, "op": op, "error": str(exc)}
        except Exception as exc:  # a handler bug must not take the daemon down
            log.exception("local API handler failed", extra=fields(op=op))
            return {**reply, "ok": False, "op": op, "error": f"internal error: {exc}"}
        return {**reply, "ok": True, "op": op, **result}


def parse_request(line: bytes) -> dict[str, Any]:
    """One request line as a JSON object; RequestError naming what is wrong when it is not
    valid UTF-8 JSON, not an object, nested deeper than MAX_DEPTH, holds an integer of
    more than MAX_INTEGER_DIGITS digits or text that is not valid Unicode (a lone
    surrogate), or has an `id` that is not a short string or integer."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"line: not a JSON object: not UTF-8 ({exc.reason} at byte "
                           f"{exc.start})") from None
    if _depth(text) > MAX_DEPTH:  # before parsing: the parser recurses per level
        raise RequestError(f"line: nested deeper than {MAX_DEPTH} levels")
    try:
        request = json.loads(text, parse_int=_bounded_int)
    except RequestError:
        raise
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"line: not a JSON object: {exc}") from None
    if not isinstance(request, dict):
        raise RequestError("a request must be a JSON object with an 'op' field")
    _check_text(request, "")
    request_id = request.get("id")
    if "id" in request and not (
            (isinstance(request_id, str) and len(request_id) <= MAX_ID_CHARS)
            or (isinstance(request_id, int) and not isinstance(request_id, bool))):
        raise RequestError(f"id: expected a string of at most {MAX_ID_CHARS} characters or "
                           f"an integer, got {shown(request_id)}")
    return request


def _depth(text: str) -> int:
    """The deepest nesting of objects and arrays in JSON text (brackets in strings not
    counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise RequestError(f"line: an integer of {len(digits)} digits (at most "
                           f"{MAX_INTEGER_DIGITS})")
    return int(digits)


def _check_text(value: Any, where: str) -> None:
    """Every key and string of the request is valid Unicode (no lone surrogates)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError(f"{where or 'line'}: not valid Unicode text") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where or "line")
            _check_text(item, f"{where}.{key}" if where else str(key)[:40])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{where}[{index}]")


def remove_stale_socket(path: str | Path) -> None:
    """Remove a socket file left by a process that died; anything else at that path is
    an OSError (never replaced)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket; not replacing it")
    os.unlink(path)


def request(path: str | Path, message: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """One request from a blocking client (CLI, tests): send a line, read the reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        sock.sendall((json.dumps(message) + "\n").encode())
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the daemon closed the connection")
            buffer += chunk
    return dict(json.loads(buffer))
