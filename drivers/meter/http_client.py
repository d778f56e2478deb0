"""A small HTTP/1.1 client for meters with an HTTP/JSON API (standard library only).

Provides `HttpEndpoint` (an `http://HOST:PORT` meter URL, parsed and checked),
`HttpAnswer` (status, reason, body) and `request(endpoint, method, path, body,
timeout_s)`: one request on its own connection ("Connection: close"), so a meter that
rebooted or dropped a connection never leaves a half-used socket behind.

Failures raise `HttpFailure(kind, detail)`: kind "unreachable" (no connection, or the
connection closed before a complete answer), "timeout" (no complete answer within
`timeout_s`), "garbled" (an answer that is not HTTP). An HTTP error status is not a
failure here: the caller decides which statuses it expects.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from drivers.meter.transport import TransportError, host_problem

MAX_ANSWER_BYTES = 1024 * 1024
_URL_HELP = "http://HOST:PORT"


@dataclass(frozen=True)
class HttpEndpoint:
    host: str
    port: int

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_http_url(url: str, device: str = "meter") -> HttpEndpoint:
    """`http://HOST[:PORT]` (port 80 by default, as the LEM DCBM's); TransportError
    naming `device` and what is wrong for anything else."""
    shown = repr(url) if len(url) <= 60 else repr(url[:60]) + f"... ({len(url)} chars)"
    if len(url) > 1024 or not url.isprintable():
        raise TransportError(f"bad {device} URL {shown}: expected {_URL_HELP}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TransportError(f"bad {device} URL {shown}: {exc}; expected {_URL_HELP}") from None
    if parts.scheme != "http":
        raise TransportError(f"unsupported {device} URL {shown}; expected {_URL_HELP} "
                             "(the meter's HTTP API; TLS is not supported)")
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise TransportError(f"bad port in {device} URL {shown}: a port from 1 to 65535")
    host = parts.hostname
    if not host:
        raise TransportError(f"no host in {device} URL {shown}; expected {_URL_HELP}")
    if parts.username is not None or parts.path not in ("", "/") or parts.query \
            or parts.fragment:
        raise TransportError(f"bad {device} URL {shown}: nothing may follow HOST:PORT; "
                             f"expected {_URL_HELP}")
    if why := host_problem(host):
        raise TransportError(f"bad host {host!r} in {device} URL: {why}")
    return HttpEndpoint(host, port or 80)


class HttpFailure(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    reason: str
    body: bytes

    def json(self) -> Any:
        """The body as JSON, numbers with a fraction as Decimal (exact); ValueError."""
        from decimal import Decimal

        return json.loads(self.body.decode("utf-8"), parse_float=Decimal)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


async def request(endpoint: HttpEndpoint, method: str, path: str, body: Any = None,
                  timeout_s: float = 1.0) -> HttpAnswer:
    """Send one request (`body` as JSON when given) and read the whole answer."""
    where = f"{method} {endpoint.describe()}{path}"
    try:
        return await asyncio.wait_for(_exchange(endpoint, method, path, body, where), timeout_s)
    except TimeoutError:
        raise HttpFailure("timeout", f"{where}: no answer within {timeout_s:g} s") from None


async def _exchange(endpoint: HttpEndpoint, method: str, path: str, body: Any,
                    where: str) -> HttpAnswer:
    try:
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    except ConnectionRefusedError:
        raise HttpFailure("unreachable", f"{where}: connection refused (nothing listens on "
                                         f"port {endpoint.port})") from None
    except OSError as exc:
        raise HttpFailure("unreachable", f"{where}: {exc.strerror or exc}") from None
    try:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
                "Accept: application/json, text/plain\r\nConnection: close\r\n")
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        writer.write(head.encode("latin-1") + b"\r\n" + payload)
        await writer.drain()
        return await _read_answer(reader, where)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise HttpFailure("unreachable", f"{where}: connection lost before a complete "
                                         f"answer ({type(exc).__name__})") from None
    finally:
        writer.close()


async def _read_answer(reader: asyncio.StreamReader, where: str) -> HttpAnswer:
    status_line = await reader.readline()
    if not status_line:
        raise HttpFailure("unreachable", f"{where}: the meter closed the connection "
                                         "without an answer")
    parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpFailure("garbled", f"{where}: not an HTTP answer: {status_line[:60]!r}")
    status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
    length: int | None = None
    while True:
        line = await reader.readline()
        if not line:
            raise HttpFailure("unreachable", f"{where}: connection lost in the headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            if not value.strip().isdigit() or int(value) > MAX_ANSWER_BYTES:
                raise HttpFailure("garbled", f"{where}: bad Content-Length {value.strip()!r}")
            length = int(value)
    if length is None:
        body = await reader.read(MAX_ANSWER_BYTES)
    else:
        body = await reader.readexactly(length)
    return HttpAnswer(status, reason, body)
