"""A virtual card in a vsmartcard vpcd reader: the vpcd protocol's card side (vpicc).

vpcd (the pcscd driver `libifdvpcd.so`) listens on a TCP port per reader slot (Debian:
35963 = 0x8C7B for the first slot, +1 for the next); the card is the TCP client. Every
message both ways is a 2-byte big-endian length and a payload. A 1-byte payload from
vpcd is a control: 0 power off, 1 power on, 2 reset (no answer to any of these), 4 get
ATR (answer: the ATR). A longer payload is a C-APDU; the answer is the R-APDU. The
card is in the field while the connection is open: closing it is the card leaving.
pcscd notices a new connection at its next presence poll (about every 0.4 s).

Provides:
- `present(card, host, port, hold_s, *, remove_after_apdus=None, ...) -> Presentation`:
  connects (retrying for `connect_timeout_s` while nothing listens yet), serves the
  card for `hold_s` seconds, then leaves. With `remove_after_apdus=K` the card answers
  K C-APDUs and leaves when the next one arrives, without answering: a card pulled
  out mid-read. `on_connected(at_monotonic_s)` runs once the card is in the field.
- `port_for(base_port, reader)`: the port of reader slot N.

On failure: `VpcdError` when no connection could be made within `connect_timeout_s`
(the message names host and port). vpcd closing the connection (pcscd stopped or
killed) ends the presentation normally with `reason="reader_closed"`; nothing else is
raised. The card's own `apdu()` never raises (hw_mocks.cards contract).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from hw_mocks.cards import VirtualCard

DEFAULT_PORT = 0x8C7B  # 35963, Debian's /etc/reader.conf.d/vpcd
CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04
CONNECT_RETRY_S = 0.05
LEAVE_REASONS = ("hold_elapsed", "removed_after_apdus", "reader_closed")


class VpcdError(OSError):
    """No connection to vpcd."""


@dataclass(frozen=True)
class Presentation:
    """What happened while the card was in the field."""

    connected_at_monotonic_s: float
    left_at_monotonic_s: float
    apdus: int  # C-APDUs answered
    controls: int  # control messages received (power on/off, reset, ATR)
    reason: str  # one of LEAVE_REASONS


class _Closed(Exception):
    """vpcd closed the connection."""


def port_for(base_port: int, reader: int) -> int:
    if reader < 0:
        raise ValueError(f"reader {reader}: must be >= 0")
    port = base_port + reader
    if not 0 < port < 65536:
        raise ValueError(f"port {port} (base {base_port} + reader {reader}): out of range")
    return port


def connect(host: str, port: int, connect_timeout_s: float = 5.0) -> socket.socket:
    """A connection to vpcd, retried while it refuses (pcscd still starting)."""
    deadline = time.monotonic() + connect_timeout_s
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=1.0)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise VpcdError(f"vpcd at {host}:{port}: cannot connect within "
                                f"{connect_timeout_s} s: {exc.strerror or exc}") from None
            time.sleep(CONNECT_RETRY_S)
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except (ConnectionError, TimeoutError, OSError):
            raise _Closed from None
        if not chunk:
            raise _Closed
        data += chunk
    # ACK at once: vpcd sends small messages without TCP_NODELAY; a delayed ACK here
    # would hold its next message back by 40 ms (Nagle).
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    return data


def _send(sock: socket.socket, payload: bytes) -> None:
    try:
        sock.sendall(struct.pack(">H", len(payload)) + payload)
    except OSError:
        raise _Closed from None


def present(
    card: VirtualCard,
    host: str,
    port: int,
    hold_s: float,
    *,
    remove_after_apdus: int | None = None,
    connect_timeout_s: float = 5.0,
    on_connected: Callable[[float], None] | None = None,
) -> Presentation:
    """Put `card` into the vpcd slot at host:port for `hold_s` seconds."""
    if remove_after_apdus is not None and remove_after_apdus < 0:
        raise ValueError(f"remove_after_apdus {remove_after_apdus}: must be >= 0")
    sock = connect(host, port, connect_timeout_s)
    connected_s = time.monotonic()
    card.reset()
    apdus = controls = 0
    reason = "hold_elapsed"
    if on_connected is not None:
        on_connected(connected_s)
    deadline_s = connected_s + hold_s
    try:
        while True:
            remaining_s = deadline_s - time.monotonic()
            if remaining_s <= 0:
                break
            readable, _, _ = select.select([sock], [], [], remaining_s)
            if not readable:
                break
            sock.settimeout(2.0)  # a message, once started, arrives whole
            (length,) = struct.unpack(">H", _recv_exact(sock, 2))
            payload = _recv_exact(sock, length)
            if length == 1:
                controls += 1
                if payload[0] in (CTRL_ON, CTRL_RESET):
                    card.reset()
                elif payload[0] == CTRL_ATR:
                    _send(sock, card.atr)
                continue  # power off and unknown controls: no answer
            if remove_after_apdus is not None and apdus >= remove_after_apdus:
                reason = "removed_after_apdus"
                break
            _send(sock, card.apdu(payload))
            apdus += 1
    except _Closed:
        reason = "reader_closed"
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    return Presentation(connected_s, time.monotonic(), apdus, controls, reason)
