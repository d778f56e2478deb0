"""Meter connection URLs.

- `tcp://HOST:PORT` (port defaults to 502)
- `rtu:///dev/ttyUSB0?baud=9600&parity=N&stopbits=1&bytesize=8`

`why_unreachable(transport, timeout_s)` names why a connection failed where pymodbus
only says it did not connect: no such device, permission denied (group dialout), host
not found, connection refused, no answer.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
PARITIES = ("N", "E", "O")


class TransportError(ValueError):
    """A meter URL that cannot be used."""


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


def _single(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def parse_meter_url(url: str) -> Transport:
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        try:
            port = parts.port or 502
        except ValueError:
            raise TransportError(f"bad port in {url!r}; expected {_URL_HELP}") from None
        if not parts.hostname:
            raise TransportError(f"no host in {url!r}; expected {_URL_HELP}")
        return TcpTransport(parts.hostname, port)
    if parts.scheme == "rtu":
        device = parts.path
        if parts.netloc or not device.startswith("/"):
            raise TransportError(f"no device path in {url!r}; expected {_URL_HELP}")
        query = parse_qs(parts.query)
        unknown = set(query) - {"baud", "parity", "stopbits", "bytesize"}
        if unknown:
            raise TransportError(
                f"unknown option {sorted(unknown)[0]!r} in {url!r}; "
                "allowed: baud, parity, stopbits, bytesize"
            )
        baud = _single(query, "baud")
        parity = _single(query, "parity")
        stop = _single(query, "stopbits")
        size = _single(query, "bytesize")
        if baud is not None and (not baud.isdigit() or int(baud) not in BAUD_RATES):
            raise TransportError(f"baud={baud!r} in {url!r}; allowed: {BAUD_RATES}")
        if parity is not None and parity.upper() not in PARITIES:
            raise TransportError(f"parity={parity!r} in {url!r}; allowed: N, E, O")
        if stop is not None and stop not in ("1", "2"):
            raise TransportError(f"stopbits={stop!r} in {url!r}; allowed: 1, 2")
        if size is not None and size not in ("7", "8"):
            raise TransportError(f"bytesize={size!r} in {url!r}; allowed: 7, 8")
        return RtuTransport(
            device,
            int(baud) if baud else None,
            parity.upper() if parity else None,
            int(stop) if stop else None,
            int(size) if size else 8,
        )
    raise TransportError(f"unsupported meter URL {url!r}; expected {_URL_HELP}")


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
