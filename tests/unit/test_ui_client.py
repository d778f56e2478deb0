"""ui.client.ApiClient against a real Unix socket server in a thread: subscribe on connect,
delivery in order, bad lines skipped, sends written, reconnect after a server restart."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ui.client import ApiClient

WAIT_S = 3.0


class LineServer:
    """A Unix stream server: records the JSON lines each connection sends, pushes bytes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.received: queue.Queue[dict] = queue.Queue()
        self.connections: list[socket.socket] = []
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen()
        listener.settimeout(0.05)
        self._listener = listener
        self._spawn(self._accept, listener)

    def _spawn(self, target: Callable, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self.connections.append(conn)
            self.accepted += 1
            self._spawn(self._read, conn)

    def _read(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn.makefile("rb") as lines:
            for line in lines:
                self.received.put(json.loads(line))

    def push(self, data: bytes) -> None:
        for conn in list(self.connections):
            conn.sendall(data)

    def stop(self) -> None:
        self._stop.set()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.connections.clear()
        for thread in self._threads:
            thread.join(1.0)
        self._threads.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def next_request(self) -> dict:
        return self.received.get(timeout=WAIT_S)


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.connected: list[bool] = []
        self.lock = threading.Lock()

    def on_message(self, message: dict) -> None:
        with self.lock:
            self.messages.append(message)

    def on_connected(self, up: bool) -> None:
        with self.lock:
            self.connected.append(up)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def socket_path() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="ui", dir="/tmp")
    try:
        yield str(Path(folder) / "api.sock")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def server(socket_path) -> Iterator[LineServer]:
    server = LineServer(socket_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(socket_path, recorder) -> Iterator[ApiClient]:
    client = ApiClient(socket_path, recorder.on_message, recorder.on_connected)
    try:
        yield client
    finally:
        client.close()


def test_subscribes_and_delivers_in_order_skipping_bad_lines(server, client, recorder):
    assert server.next_request() == {"op": "subscribe"}
    assert recorder.connected == [True] and client.connected
    state = {"ok": True, "op": "subscribe", "state": {"phase": "Available"}}
    tap = {"type": "tap", "result": "declined", "reason": "declined"}
    server.push(json.dumps(state).encode() + b"\n{not json\n[1, 2]\n\xff\xfe\n\n")
    server.push(json.dumps(tap).encode()[:10])  # a line in two pieces
    time.sleep(0.05)
    server.push(json.dumps(tap).encode()[10:] + b"\n")
    wait_for(lambda: len(recorder.messages) >= 2, "two messages")
    time.sleep(0.05)
    assert recorder.messages == [state, tap]


def test_send_is_queued_and_written(server, client, recorder):
    assert server.next_request() == {"op": "subscribe"}
    started = time.perf_counter()
    client.send("language", language="de")
    client.send("receipt", session_id="S-1", language="de")
    assert time.perf_counter() - started < 0.05  # the caller never waits for the socket
    assert server.next_request() == {"op": "language", "language": "de"}
    assert server.next_request() == {"op": "receipt", "session_id": "S-1", "language": "de"}


def test_a_failing_callback_does_not_stop_delivery(server, socket_path):
    seen: list[dict] = []

    def on_message(message: dict) -> None:
        seen.append(message)
        if len(seen) == 1:
            raise RuntimeError("bug in the app")

    client = ApiClient(socket_path, on_message, lambda up: 1 / 0)  # both callbacks fail
    try:
        assert server.next_request() == {"op": "subscribe"}
        server.push(b'{"type": "state", "n": 1}\n{"type": "state", "n": 2}\n')
        wait_for(lambda: len(seen) == 2, "both messages")
        assert client.connected
    finally:
        client.close()


def test_reconnects_after_the_daemon_restarts(server, client, recorder):
    assert server.next_request() == {"op": "subscribe"}
    server.push(b'{"type": "state", "state": {}}\n')
    wait_for(lambda: len(recorder.messages) == 1, "the first state")
    server.stop()
    wait_for(lambda: recorder.connected == [True, False], "on_connected(False)")
    assert not client.connected
    client.send("stop", reason="Local")  # while away: dropped, not sent later
    time.sleep(0.5)  # a few failed attempts (no socket file)
    restarted = time.monotonic()
    server.start()
    wait_for(lambda: recorder.connected == [True, False, True], "on_connected(True) again")
    assert time.monotonic() - restarted < 2.8  # backoff capped at 2 s (+ a loaded machine)
    assert server.next_request() == {"op": "subscribe"}
    server.push(b'{"type": "state", "state": {"phase": "Charging"}}\n')
    wait_for(lambda: len(recorder.messages) == 2, "a state after the restart")
    time.sleep(0.05)
    assert server.received.empty()  # the stop sent while away was not delivered


def test_starts_before_the_daemon_and_close_stops_the_thread(socket_path, recorder):
    client = ApiClient(socket_path, recorder.on_message, recorder.on_connected)
    time.sleep(0.3)
    assert recorder.connected == [] and not client.connected  # no daemon yet
    server = LineServer(socket_path)
    server.start()
    try:
        assert server.next_request() == {"op": "subscribe"}
        wait_for(lambda: recorder.connected == [True], "connected")
        client.close()
        assert not client._thread.is_alive()
        with contextlib.suppress(OSError):  # the client has hung up
            server.push(b'{"type": "state"}\n')
        time.sleep(0.05)
        assert recorder.messages == [] and recorder.connected == [True]
    finally:
        client.close()
        server.stop()


def test_too_long_line_drops_the_connection(server, socket_path, recorder):
    client = ApiClient(socket_path, recorder.on_message, recorder.on_connected,
                       max_line_bytes=1024)
    try:
        assert server.next_request() == {"op": "subscribe"}
        server.push(b"x" * 4096)
        wait_for(lambda: recorder.connected[:2] == [True, False], "dropped")
        assert server.next_request() == {"op": "subscribe"}  # and back
        assert recorder.messages == []
    finally:
        client.close()
