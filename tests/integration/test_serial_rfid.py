"""SerialRfidReader against the RDM6300 emulator over a real socat pty pair."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from drivers.readers.serial_rfid import SerialRfidReader
from hw_mocks.serial_rfid_sim import RfidEmulator
from tests.integration.conftest import require_binary

TAG_A = "0400ABCDEF"
TAG_B = "1A2B3C4D5E"


class Collector:
    def __init__(self) -> None:
        self.tags: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, tag_id: str) -> None:
        with self._changed:
            self.tags.append(tag_id)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout_s: float = 2.0) -> list[str]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.tags) >= count, timeout_s)
            return list(self.tags)


def wait_until(check: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def started_reader(device: str, collector: Collector, **options: float) -> SerialRfidReader:
    reader = SerialRfidReader(device, on_tag=collector, **options)
    reader.start()
    assert wait_until(lambda: reader.state == "connected"), reader.state
    return reader


def test_one_presentation_one_event(pty_pair: tuple[str, str]) -> None:
    sim_end, driver_end = pty_pair
    collector = Collector()
    reader = started_reader(driver_end, collector)
    try:
        with RfidEmulator(sim_end) as emulator:
            frames = emulator.present(TAG_A, hold_s=1.0)
        assert frames >= 10
        assert collector.wait_for(1) == [TAG_A]
        assert wait_until(lambda: reader.stats["frames_ok"] == frames, 1.0), reader.stats
        time.sleep(0.2)
        assert collector.tags == [TAG_A]
        assert reader.stats["tags"] == 1
    finally:
        reader.stop()
    assert reader.state == "stopped"


def test_two_tags_bad_frames_dropped(pty_pair: tuple[str, str]) -> None:
    sim_end, driver_end = pty_pair
    collector = Collector()
    reader = started_reader(driver_end, collector)
    try:
        with RfidEmulator(sim_end) as emulator:
            emulator.present(TAG_A, hold_s=0.3)
            emulator.send_garbage(b"noise\r\n")
            emulator.send_bad_checksum(TAG_B)
            time.sleep(0.6)  # TAG_A leaves the field
            emulator.present(TAG_B, hold_s=0.3)
            emulator.send_bad_checksum(TAG_A)
        assert collector.wait_for(2) == [TAG_A, TAG_B]
        assert wait_until(lambda: reader.stats["bad_checksum"] == 2, 1.0), reader.stats
        assert reader.stats["garbage_bytes"] == 7
        assert collector.tags == [TAG_A, TAG_B]
    finally:
        reader.stop()


def test_asyncio_queue_and_cli_emulator(pty_pair: tuple[str, str]) -> None:
    sim_end, driver_end = pty_pair
    reader = SerialRfidReader(driver_end)

    async def scenario() -> str:
        queue: asyncio.Queue[str] = asyncio.Queue()
        reader.start(asyncio.get_running_loop(), queue)
        assert await asyncio.to_thread(wait_until, lambda: reader.state == "connected")
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hw_mocks.serial_rfid_sim", "--device", sim_end,
            "--tag", TAG_B.lower(), "--hold-s", "0.3", "--garbage", "5", "--bad-checksum",
        )
        try:
            return await asyncio.wait_for(queue.get(), 5.0)
        finally:
            assert await asyncio.wait_for(sim.wait(), 5.0) == 0

    try:
        assert asyncio.run(scenario()) == TAG_B
        assert reader.stats["bad_checksum"] == 1
    finally:
        reader.stop()


def test_cli_emulator_bad_device_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hw_mocks.serial_rfid_sim", "--device",
         str(tmp_path / "missing"), "--tag", TAG_A],
        capture_output=True, text=True, timeout=10,
    )
    assert done.returncode == 2
    assert "missing" in done.stderr


def test_unplug_and_replug(tmp_path: Path) -> None:
    socat = require_binary("socat")
    sim_end, driver_end = tmp_path / "rfid-side", tmp_path / "terminal-side"

    def plug() -> subprocess.Popen:
        proc = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={sim_end}", f"pty,raw,echo=0,link={driver_end}"],
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(lambda: sim_end.exists() and driver_end.exists())
        return proc

    collector = Collector()
    proc = plug()
    reader = started_reader(str(driver_end), collector, reopen_interval_s=0.2)
    try:
        proc.terminate()
        proc.wait(timeout=5)
        assert wait_until(lambda: reader.state == "disconnected"), reader.state
        proc = plug()
        assert wait_until(lambda: reader.state == "connected"), reader.state
        assert reader.stats["reconnects"] >= 1
        with RfidEmulator(str(sim_end)) as emulator:
            emulator.present(TAG_A, hold_s=0.2)
        assert collector.wait_for(1) == [TAG_A]
    finally:
        reader.stop()
        proc.terminate()
        proc.wait(timeout=5)
