"""terminal.sdnotify against a real Unix datagram socket: the message format, abstract
names, the watchdog interval from the environment, and the Watchdog's pings on a running
asyncio loop (they stop while the loop is blocked and while the heartbeat is too old)."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from terminal import sdnotify


class Receiver:
    """A bound AF_UNIX SOCK_DGRAM socket standing in for systemd's notify socket; a
    thread stamps each datagram with its arrival time (time.monotonic())."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address  # the $NOTIFY_SOCKET value
        self.received: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            with self._lock:
                self.received.append((time.monotonic(), data.decode()))

    def messages(self) -> list[tuple[float, str]]:
        time.sleep(0.02)  # let the thread take what is queued
        with self._lock:
            return list(self.received)

    def watchdog_times(self) -> list[float]:
        return [at for at, text in self.messages() if "WATCHDOG=1" in text.split("\n")]

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    folder = tempfile.mkdtemp(prefix="evsd-")
    path = os.path.join(folder, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    handle = Receiver(sock, path)
    yield handle
    handle.close()
    shutil.rmtree(folder, ignore_errors=True)


def test_notify_sends_one_datagram_with_the_message(receiver):
    assert sdnotify.notify("READY=1\nSTATUS=serving", {"NOTIFY_SOCKET": receiver.address})
    assert [text for _, text in receiver.messages()] == ["READY=1\nSTATUS=serving"]


def test_notify_to_an_abstract_socket_name():
    name = f"evterm-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        assert sdnotify.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        sock.settimeout(1.0)
        assert sock.recv(100) == b"STOPPING=1"


def test_notify_is_a_no_op_without_notify_socket_and_false_when_unreachable(tmp_path):
    assert sdnotify.notify("READY=1", {}) is False
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": ""}) is False
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "none.sock")}) is False
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "relative/path"}) is False
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}) is False


def test_watchdog_interval_from_the_environment():
    me = str(os.getpid())
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": me}) == 0.5
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval_s({}) is None
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None


def test_watchdog_does_nothing_without_notify_socket():
    async def run() -> bool:
        return sdnotify.Watchdog(lambda: time.monotonic(), 1.0, interval_s=0.2,
                                 environ={}).start()

    assert asyncio.run(run()) is False


def test_watchdog_pings_stop_while_the_loop_is_blocked_and_while_the_heartbeat_is_old(
        receiver):
    env = {"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "200000"}  # ping every 0.1 s
    beat = {"at": time.monotonic()}

    async def scenario() -> dict[str, list[float]]:
        async def heart() -> None:  # a poll loop that completes every 20 ms
            while True:
                beat["at"] = time.monotonic()
                await asyncio.sleep(0.02)

        heart_task = asyncio.create_task(heart())
        dog = sdnotify.Watchdog(lambda: beat["at"], max_age_s=0.3, environ=env,
                                status=lambda: "Available; meter ok")
        assert dog.start()
        marks: dict[str, list[float]] = {}
        await asyncio.sleep(0.55)
        marks["healthy"] = receiver.watchdog_times()
        blocked_from = time.monotonic()
        time.sleep(0.6)  # a blocking call on the loop: nothing else runs
        marks["block"] = [blocked_from, time.monotonic()]
        await asyncio.sleep(0.25)
        heart_task.cancel()  # the poll is stuck from now on
        stuck_from = time.monotonic()
        await asyncio.sleep(0.8)
        marks["stuck"] = [stuck_from, time.monotonic()]
        marks["skipped"] = [float(dog.skipped)]
        await dog.stop()
        return marks

    marks = asyncio.run(scenario())
    pings = receiver.watchdog_times()
    healthy = marks["healthy"]
    assert len(healthy) >= 4, healthy  # 0.55 s at one ping per 0.1 s
    assert all(b - a < 0.2 for a, b in itertools.pairwise(healthy)), healthy
    block_start, block_end = marks["block"]
    assert not [t for t in pings if block_start + 0.01 < t < block_end], pings
    assert [t for t in pings if block_end < t < marks["stuck"][0]], "no ping after the block"
    stuck_start, _ = marks["stuck"]
    # the last beat is at most 0.02 s older than stuck_start; it is too old 0.3 s later
    late = [t for t in pings if t > stuck_start + 0.3 + 0.05]
    assert late == [], late
    assert marks["skipped"][0] >= 5  # it kept checking (every 20 ms) without pinging
    received = receiver.messages()
    assert received[0][1].split("\n") == ["WATCHDOG=1", "STATUS=Available; meter ok"]
    assert sum("STATUS=" in text for _, text in received) == 1  # only when it changes


def test_watchdog_counts_from_start_until_the_first_beat(receiver):
    env = {"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "100000"}

    async def scenario() -> int:
        dog = sdnotify.Watchdog(lambda: None, max_age_s=0.15, environ=env)
        dog.start()
        await asyncio.sleep(0.4)
        await dog.stop()
        return dog.pings

    pings = asyncio.run(scenario())
    assert 1 <= pings <= 4, pings  # pinged within the grace, then no more
    assert len(receiver.watchdog_times()) == pings
