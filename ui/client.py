"""The touchscreen's connection to the daemon's local API (docs/local-api.md).

Provides `ApiClient(socket_path, on_message, on_connected)`: a daemon thread with a
blocking AF_UNIX stream socket that
- connects, calls `on_connected(True)` and sends `{"op": "subscribe"}`;
- delivers every JSON object line it reads (replies carry `op`, pushes carry `type`) to
  `on_message(dict)`, in order, from its own thread (the Kivy app hops to its thread
  with Clock.schedule_once);
- writes what `send(op, **fields)` queued: the call only encodes and queues the line,
  it never waits for the socket;
- when the daemon goes away: `on_connected(False)`, then reconnects with a backoff from
  `min_backoff_s` (0.2 s) doubling up to `max_backoff_s` (2 s), and subscribes again.
`close()` stops the thread; no callback is called after it returns.

Config: `socket_path` (the daemon's `[localapi] socket_path`), `min_backoff_s`,
`max_backoff_s`, `write_timeout_s` (5 s: a daemon that does not read for that long is
treated as gone), `max_line_bytes` (4 MiB).

On failure: a line that is not a JSON object is logged and skipped; an exception in a
callback is logged and the connection goes on; a line longer than `max_line_bytes` or a
write that times out drops the connection (then reconnects). Requests sent while
disconnected are dropped with a log line: the daemon's state is read again on
reconnect, and a stale "stop" must not arrive minutes later.
"""

from __future__ import annotations

import contextlib
import json
import queue
import selectors
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terminal.kernel.logsetup import fields, get_logger

log = get_logger("ui.client")

MessageCallback = Callable[[dict[str, Any]], None]
ConnectedCallback = Callable[[bool], None]


class ApiClient:
    def __init__(
        self,
        socket_path: str | Path,
        on_message: MessageCallback,
        on_connected: ConnectedCallback | None = None,
        *,
        min_backoff_s: float = 0.2,
        max_backoff_s: float = 2.0,
        write_timeout_s: float = 5.0,
        max_line_bytes: int = 4 * 1024 * 1024,
        start: bool = True,
    ) -> None:
        self.socket_path = str(socket_path)
        self.on_message = on_message
        self.on_connected = on_connected
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.write_timeout_s = write_timeout_s
        self.max_line_bytes = max_line_bytes
        self._outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._connected = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="evterm-ui-api", daemon=True)
        self._started = False
        if start:
            self.start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Start the thread (done by the constructor unless start=False); idempotent."""
        if not self._started:
            self._started = True
            self._thread.start()

    def send(self, op: str, **values: Any) -> None:
        """Queue one request line; never blocks. Dropped (logged) while disconnected."""
        line = (json.dumps({"op": op, **values}) + "\n").encode()
        if not self._connected.is_set():
            log.warning("not connected to the daemon; request dropped", extra=fields(op=op))
            return
        self._outbox.put(line)
        self._wake()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and close the connection."""
        self._closing.set()
        self._wake()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._started and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)
        for end in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                end.close()

    # ---- the thread ----------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (already woken) or closed
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        backoff_s = self.min_backoff_s
        while not self._closing.is_set():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.write_timeout_s)
                sock.connect(self.socket_path)
            except OSError as exc:
                sock.close()
                log.debug("daemon not reachable", extra=fields(path=self.socket_path,
                                                               error=exc, retry_s=backoff_s))
                self._closing.wait(backoff_s)
                backoff_s = min(backoff_s * 2, self.max_backoff_s)
                continue
            self._sock = sock
            try:
                if self._serve(sock):
                    backoff_s = self.min_backoff_s
            except OSError as exc:
                if not self._closing.is_set():
                    log.warning("connection to the daemon lost", extra=fields(error=exc))
            finally:
                self._sock = None
                sock.close()
                was_connected = self._connected.is_set()
                self._connected.clear()
                if was_connected and not self._closing.is_set():
                    self._notify_connected(False)
            if not self._closing.is_set():
                self._closing.wait(backoff_s)
                backoff_s = min(backoff_s * 2, self.max_backoff_s)

    def _serve(self, sock: socket.socket) -> bool:
        """One connection until it ends; True when the daemon answered at least once."""
        self._drain_outbox()  # requests from an earlier connection are stale
        self._drain_wake()
        self._connected.set()
        log.info("connected to the daemon", extra=fields(path=self.socket_path))
        self._notify_connected(True)
        sock.sendall(b'{"op": "subscribe"}\n')
        answered = False
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ, "sock")
            selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._closing.is_set():
                for key, _ in selector.select():
                    if key.data == "wake":
                        self._drain_wake()
                        for line in self._drain_outbox():
                            sock.sendall(line)
                        continue
                    chunk = sock.recv(65536)
                    if not chunk:
                        if not self._closing.is_set():
                            log.warning("the daemon closed the connection")
                        return answered
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    if len(buffer) > self.max_line_bytes:
                        log.error("line from the daemon too long; reconnecting",
                                  extra=fields(bytes=len(buffer)))
                        return answered
                    for line in lines:
                        if self._closing.is_set():
                            return answered
                        answered = self._deliver(line) or answered
        return answered

    def _deliver(self, line: bytes) -> bool:
        if not line.strip():
            return False
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("bad line from the daemon skipped", extra=fields(error=exc))
            return False
        if not isinstance(message, dict):
            log.warning("line from the daemon is not a JSON object; skipped",
                        extra=fields(kind=type(message).__name__))
            return False
        try:
            self.on_message(message)
        except Exception:
            log.exception("on_message failed", extra=fields(op=message.get("op"),
                                                            type=message.get("type")))
        return True

    def _notify_connected(self, up: bool) -> None:
        if self.on_connected is None:
            return
        try:
            self.on_connected(up)
        except Exception:
            log.exception("on_connected failed", extra=fields(connected=up))

    def _drain_outbox(self) -> list[bytes]:
        lines = []
        with contextlib.suppress(queue.Empty):
            while True:
                lines.append(self._outbox.get_nowait())
        return lines

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
