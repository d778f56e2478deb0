"""Modbus connection URLs of the meter and the charger IO.

- `tcp://HOST:PORT` (port defaults to 502; HOST a name, an IPv4 or a [bracketed] IPv6
  address; nothing may follow the port)
- `rtu:///dev/ttyUSB0?baud=9600&parity=N&stopbits=1&bytesize=8`

`why_unreachable(transport, timeout_s)` names why a connection failed where pymodbus
only says it did not connect: no such device, permission denied (group dialout), host
not found, connection refused, no answer.

`parse_modbus_url(url, device)` raises `TransportError` naming the device (meter,
charger) and what is wrong; `host_problem(host)` says whether a host name is usable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, parse_qs, urlsplit

if TYPE_CHECKING:
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
PARITIES = ("N", "E", "O")


class TransportError(ValueError):
    """A meter or charger URL that cannot be used; the message names which and why."""


@dataclass(frozen=True)
class TcpTransport:
    host: str
    port: int

    def describe(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True)
class RtuTransport:
    device: str
    baud: int | None = None  # None: the meter model's factory default
    parity: str | None = None
    stop_bits: int | None = None
    byte_size: int = 8

    def describe(self) -> str:
        return f"rtu://{self.device}"


Transport = TcpTransport | RtuTransport

_URL_HELP = "tcp://HOST:PORT or rtu:///dev/PATH?baud=9600&parity=N&stopbits=1"
MAX_URL_CHARS = 1024
MAX_HOST_CHARS = 253
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _shown(text: str, limit: int = 60) -> str:
    """`text` quoted for a message, cut after `limit` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


def host_problem(host: str) -> str | None:
    """None for a usable host name, IPv4 or IPv6 address; else what is allowed."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    labels = host.rstrip(".").split(".")
    if 0 < len(host) <= MAX_HOST_CHARS and all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    return "a host name (letters, digits, - and .) or an IP address"


def _single(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def parse_modbus_url(url: str, device: str = "meter") -> Transport:
    """The transport of a Modbus URL; TransportError naming `device` (meter, charger) and
    what is wrong, for any bad URL."""
    if len(url) > MAX_URL_CHARS:
        raise TransportError(f"bad {device} URL {_shown(url)}: at most {MAX_URL_CHARS} "
                             f"characters; expected {_URL_HELP}")
    if not url.isprintable():
        raise TransportError(f"bad {device} URL {_shown(url)}: control or unprintable "
                             f"characters; expected {_URL_HELP}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for an unclosed [
        raise TransportError(f"bad {device} URL {_shown(url)}: {exc}; expected {_URL_HELP}"
                             ) from None
    if parts.scheme == "tcp":
        return _tcp(url, parts, device)
    if parts.scheme == "rtu":
        return _rtu(url, parts, device)
    raise TransportError(f"unsupported {device} URL {_shown(url)}; expected {_URL_HELP}")


def parse_meter_url(url: str) -> Transport:
    return parse_modbus_url(url, "meter")


def _tcp(url: str, parts: SplitResult, device: str) -> TcpTransport:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise TransportError(f"bad port in {device} URL {_shown(url)}: a port from 1 to "
                             f"65535; expected {_URL_HELP}")
    host = parts.hostname
    if not host:
        raise TransportError(f"no host in {device} URL {_shown(url)}; expected {_URL_HELP}")
    if parts.username is not None:
        raise TransportError(f"bad {device} URL {_shown(url)}: no user name or password "
                             f"(Modbus has none); expected {_URL_HELP}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TransportError(f"bad {device} URL {_shown(url)}: nothing may follow "
                             f"HOST:PORT; expected {_URL_HELP}")
    if why := host_problem(host):
        raise TransportError(f"bad host {_shown(host)} in {device} URL: {why}")
    return TcpTransport(host, port or 502)


def _rtu(url: str, parts: SplitResult, device: str) -> RtuTransport:
    path = parts.path
    if parts.netloc or not path.startswith("/") or parts.fragment:
        raise TransportError(f"no device path in {device} URL {_shown(url)}; "
                             f"expected {_URL_HELP}")
    query = parse_qs(parts.query)
    unknown = set(query) - {"baud", "parity", "stopbits", "bytesize"}
    if unknown:
        raise TransportError(
            f"unknown option {_shown(sorted(unknown)[0])} in {device} URL {_shown(url)}; "
            "allowed: baud, parity, stopbits, bytesize"
        )
    baud = _single(query, "baud")
    parity = _single(query, "parity")
    stop = _single(query, "stopbits")
    size = _single(query, "bytesize")
    where = f"in {device} URL {_shown(url)}"
    if baud is not None and (not re.fullmatch(r"[0-9]{1,6}", baud)
                             or int(baud) not in BAUD_RATES):
        raise TransportError(f"baud={_shown(baud)} {where}; allowed: {BAUD_RATES}")
    if parity is not None and parity.upper() not in PARITIES:
        raise TransportError(f"parity={_shown(parity)} {where}; allowed: N, E, O")
    if stop is not None and stop not in ("1", "2"):
        raise TransportError(f"stopbits={_shown(stop)} {where}; allowed: 1, 2")
    if size is not None and size not in ("7", "8"):
        raise TransportError(f"bytesize={_shown(size)} {where}; allowed: 7, 8")
    return RtuTransport(
        path,
        int(baud) if baud else None,
        parity.upper() if parity else None,
        int(stop) if stop else None,
        int(size) if size else 8,
    )


def make_client(
    transport: Transport, timeout_s: float, baud: int, parity: str, stop_bits: int
) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
    """The pymodbus async client for a transport: no retries and no automatic reconnect
    (the drivers decide), serial settings from the URL or else the given defaults.
    Create it inside the running event loop."""
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
    from pymodbus.framer import FramerType

    if isinstance(transport, TcpTransport):
        return AsyncModbusTcpClient(
            transport.host, port=transport.port, timeout=timeout_s, retries=0, reconnect_delay=0
        )
    return AsyncModbusSerialClient(
        transport.device,
        framer=FramerType.RTU,
        baudrate=transport.baud or baud,
        parity=transport.parity or parity,
        stopbits=transport.stop_bits or stop_bits,
        bytesize=transport.byte_size,
        timeout=timeout_s,
        retries=0,
        reconnect_delay=0,
    )


async def why_unreachable(transport: Transport, timeout_s: float) -> str:
    """Why a connection to `transport` failed, in words: "cannot connect to X: <reason>"
    (a reason found by looking at the device or the host once more)."""
    where = f"cannot connect to {transport.describe()}"
    if isinstance(transport, RtuTransport):
        device = transport.device
        if not os.path.exists(device):
            return f"{where}: no such device {device} (is the adapter plugged in?)"
        if not os.access(device, os.R_OK | os.W_OK):
            return (f"{where}: permission denied on {device} (the user needs the group "
                    "that owns it, usually dialout)")
        return f"{where}: the serial port could not be opened"
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.getaddrinfo(transport.host, transport.port,
                                                type=socket.SOCK_STREAM), timeout_s)
    except socket.gaierror as exc:
        return f"{where}: host not found ({transport.host}: {exc.strerror})"
    except TimeoutError:
        return f"{where}: host not found ({transport.host}: no answer from DNS in time)"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(transport.host, transport.port), timeout_s)
    except ConnectionRefusedError:
        return f"{where}: connection refused (nothing listens on port {transport.port})"
    except TimeoutError:
        return f"{where}: no answer within {timeout_s:g} s (wrong address or no network?)"
    except OSError as exc:
        return f"{where}: {exc.strerror or exc}"
    writer.close()
    return f"{where}: the connection failed (the host accepts connections now)"
