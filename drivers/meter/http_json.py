"""A small JSON-over-HTTP client for meters with a REST interface (standard library).

Provides `HttpEndpoint` (host, port and the query options of an `http://HOST:PORT`
meter URL, parsed by `parse_http_url`) and `request(endpoint, method, path, body,
timeout_s)` -> `HttpAnswer` (status and text), run in a worker thread so the event loop
never waits on a socket. Failures raise `HttpFailure(kind, detail)` with kind
unreachable (no connection, or the connection dropped without an answer), timeout (no
answer in time) or garbled (an answer that is not HTTP); the caller maps them on its
own error type. One connection per request (`Connection: close`).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from drivers.meter.transport import MAX_URL_CHARS, TransportError, host_problem

MAX_ANSWER_BYTES = 256 * 1024


@dataclass(frozen=True)
class HttpEndpoint:
    host: str
    port: int
    options: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_http_url(url: str, allowed_options: tuple[str, ...] = ()) -> HttpEndpoint:
    """`http://HOST[:PORT][?option=value&...]` (port 80 by default); TransportError
    naming what is wrong."""
    expected = "http://HOST:PORT" + ("?" + "&".join(f"{o}=..." for o in allowed_options)
                                     if allowed_options else "")
    shown = repr(url) if len(url) <= 60 else repr(url[:60]) + "..."
    if len(url) > MAX_URL_CHARS or not url.isprintable():
        raise TransportError(f"bad meter URL {shown}: too long or unprintable; "
                             f"expected {expected}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TransportError(f"bad meter URL {shown}: {exc}; expected {expected}") from None
    if parts.scheme != "http":
        raise TransportError(f"unsupported meter URL {shown}: this meter speaks HTTP; "
                             f"expected {expected}")
    host = parts.hostname
    if not host or host_problem(host):
        raise TransportError(f"bad host in meter URL {shown}: expected "
                             "a host name (letters, digits, - and .) or an IP address")
    if port == 0:
        raise TransportError(f"bad port in meter URL {shown}: a port from 1 to 65535")
    if parts.username is not None or parts.path not in ("", "/") or parts.fragment:
        raise TransportError(f"bad meter URL {shown}: nothing but options may follow "
                             f"HOST:PORT; expected {expected}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(allowed_options))
    if unknown:
        raise TransportError(f"unknown option {unknown[0]!r} in meter URL {shown}; allowed: "
                             + (", ".join(allowed_options) or "none"))
    return HttpEndpoint(host, port or 80, {k: v[-1] for k, v in query.items()})


class HttpFailure(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    text: str

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.text)


def _blocking(endpoint: HttpEndpoint, method: str, path: str, body: bytes | None,
              timeout_s: float) -> HttpAnswer:
    where = f"{method} {endpoint.describe()}{path}"
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout_s)
    headers = {"Connection": "close", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read(MAX_ANSWER_BYTES + 1)
    except TimeoutError:
        raise HttpFailure("timeout", f"{where}: no answer within {timeout_s:g} s") from None
    except socket.gaierror as exc:
        raise HttpFailure("unreachable", f"{where}: host not found ({exc.strerror})") from None
    except ConnectionRefusedError:
        raise HttpFailure("unreachable", f"{where}: connection refused") from None
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        raise HttpFailure("unreachable", f"{where}: connection lost before an answer") from None
    except http.client.HTTPException as exc:
        raise HttpFailure("garbled", f"{where}: not an HTTP answer ({exc!r})") from None
    except OSError as exc:
        raise HttpFailure("unreachable", f"{where}: {exc.strerror or exc}") from None
    finally:
        conn.close()
    if len(raw) > MAX_ANSWER_BYTES:
        raise HttpFailure("garbled", f"{where}: answer longer than {MAX_ANSWER_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpFailure("garbled", f"{where}: answer is not UTF-8 text") from None
    return HttpAnswer(response.status, text)


async def request(endpoint: HttpEndpoint, method: str, path: str,
                  body: dict[str, Any] | None = None, timeout_s: float = 1.0) -> HttpAnswer:
    """One request; `body` is sent as JSON. Raises HttpFailure (never for a status)."""
    data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
    return await asyncio.to_thread(_blocking, endpoint, method, path, data, timeout_s)
