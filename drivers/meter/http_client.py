"""A small HTTP/1.1 client for meters with an HTTP/JSON API (standard library only).

Provides `parse_http_url(url, device, allowed_options)` -> `HttpEndpoint` (host, port
and the query options of an `http://HOST[:PORT][?option=value&...]` URL, checked),
`HttpAnswer` (status, reason, body; `json()` with exact Decimal fractions, `text()`)
and `request(endpoint, method, path, body, timeout_s)`: one request on its own
connection ("Connection: close"), so a meter that rebooted or dropped a connection
never leaves a half-used socket behind. It runs on asyncio streams: the event loop
never waits on a socket, and a cancelled request closes its connection at once.

Failures raise `HttpFailure(kind, detail)`: kind "unreachable" (host not found, no
connection, or the connection closed before a complete answer), "timeout" (no complete
answer within `timeout_s`, connecting included), "garbled" (an answer that is not
HTTP, or longer than MAX_ANSWER_BYTES). An HTTP error status is not a failure here:
the caller decides which statuses it expects.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from drivers.meter.transport import MAX_URL_CHARS, TransportError, _shown, host_problem

MAX_ANSWER_BYTES = 256 * 1024  # a meter's answers are a few kB; more is not a meter
MAX_HEADER_LINES = 100


@dataclass(frozen=True)
class HttpEndpoint:
    host: str
    port: int
    options: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_http_url(url: str, device: str = "meter",
                   allowed_options: tuple[str, ...] = ()) -> HttpEndpoint:
    """`http://HOST[:PORT][?option=value&...]` (port 80 by default; only the options
    in `allowed_options`); TransportError naming `device` and what is wrong."""
    expected = "http://HOST:PORT" + ("?" + "&".join(f"{o}=..." for o in allowed_options)
                                     if allowed_options else "")
    shown = _shown(url)
    if len(url) > MAX_URL_CHARS or not url.isprintable():
        raise TransportError(f"bad {device} URL {shown}: too long or unprintable (at most "
                             f"{MAX_URL_CHARS} characters); expected {expected}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TransportError(f"bad {device} URL {shown}: {exc}; expected {expected}") from None
    if parts.scheme != "http":
        raise TransportError(f"unsupported {device} URL {shown}: this {device} speaks HTTP "
                             f"(TLS is not supported); expected {expected}")
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise TransportError(f"bad port in {device} URL {shown}: a port from 1 to 65535")
    host = parts.hostname
    if not host:
        raise TransportError(f"no host in {device} URL {shown}; expected {expected}")
    if why := host_problem(host):
        raise TransportError(f"bad host {_shown(host)} in {device} URL: {why}")
    if parts.username is not None or parts.path not in ("", "/") or parts.fragment \
            or (parts.query and not allowed_options):
        what = "nothing but options" if allowed_options else "nothing"
        raise TransportError(f"bad {device} URL {shown}: {what} may follow HOST:PORT; "
                             f"expected {expected}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(allowed_options))
    if unknown:
        raise TransportError(f"unknown option {unknown[0]!r} in {device} URL {shown}; "
                             f"allowed: {', '.join(allowed_options)}")
    return HttpEndpoint(host, port or 80, {k: v[-1] for k, v in query.items()})


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
        """The body as JSON, numbers with a fraction as Decimal (exact); ValueError
        when it is not JSON (or not UTF-8)."""
        return json.loads(self.body.decode("utf-8"), parse_float=Decimal)

    def text(self, errors: str = "replace") -> str:
        """The body as UTF-8 text; with errors="strict" a ValueError (UnicodeDecodeError)
        when it is not UTF-8."""
        return self.body.decode("utf-8", errors=errors)


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
    except socket.gaierror as exc:
        raise HttpFailure("unreachable", f"{where}: host not found "
                                         f"({exc.strerror or exc})") from None
    except ConnectionRefusedError:
        raise HttpFailure("unreachable", f"{where}: connection refused (nothing listens on "
                                         f"port {endpoint.port})") from None
    except OSError as exc:
        raise HttpFailure("unreachable", f"{where}: {exc.strerror or exc}") from None
    try:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        host = endpoint.describe().removeprefix("http://")
        head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
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
    status_line = await _line(reader, where)
    if not status_line:
        raise HttpFailure("unreachable", f"{where}: the meter closed the connection "
                                         "without an answer")
    parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpFailure("garbled", f"{where}: not an HTTP answer: {status_line[:60]!r}")
    status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
    length: int | None = None
    chunked = False
    for _ in range(MAX_HEADER_LINES):
        line = await _line(reader, where)
        if not line:
            raise HttpFailure("unreachable", f"{where}: connection lost in the headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            if not value.isdigit() or int(value) > MAX_ANSWER_BYTES:
                raise HttpFailure("garbled", f"{where}: bad Content-Length {value[:30]!r} "
                                             f"(at most {MAX_ANSWER_BYTES} bytes)")
            length = int(value)
        elif name == "transfer-encoding":
            chunked = value.lower().endswith("chunked")
    else:
        raise HttpFailure("garbled", f"{where}: more than {MAX_HEADER_LINES} header lines")
    if chunked:
        body = await _chunked(reader, where)
    elif length is not None:
        body = await reader.readexactly(length)
    else:  # the answer ends with the connection ("Connection: close")
        body = b""
        while more := await reader.read(MAX_ANSWER_BYTES + 1 - len(body)):
            body += more
            _check_size(len(body), where)
    return HttpAnswer(status, reason, body)


async def _line(reader: asyncio.StreamReader, where: str) -> bytes:
    """One line of the head or of a chunk header; garbled when it has no end."""
    try:
        return await reader.readline()
    except ValueError:  # asyncio's line limit (64 KiB)
        raise HttpFailure("garbled", f"{where}: a line without an end") from None


async def _chunked(reader: asyncio.StreamReader, where: str) -> bytes:
    """A body in Transfer-Encoding: chunked (RFC 9112 section 7.1), trailers skipped."""
    body = b""
    while True:
        size_text = (await _line(reader, where)).split(b";")[0].strip()
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise HttpFailure("garbled", f"{where}: bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            while (await _line(reader, where)) not in (b"\r\n", b"\n", b""):
                pass
            return body
        _check_size(len(body) + size, where)
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # the CRLF after the chunk


def _check_size(size: int, where: str) -> None:
    if size > MAX_ANSWER_BYTES:
        raise HttpFailure("garbled", f"{where}: answer longer than {MAX_ANSWER_BYTES} bytes")
