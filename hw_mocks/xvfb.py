"""A virtual screen for the touchscreen app: Debian's Xvfb on a free display number.

Used by the UI tests, the benchmark and `evterm demo` when there is no display. The
server picks its own display number (`-displayfd`), so parallel test workers never
collide. A missing Xvfb is an error naming the package, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time


class XvfbError(RuntimeError):
    pass


class Xvfb:
    """`with Xvfb("1280x800") as x: env = x.env()` — DISPLAY for child processes."""

    def __init__(self, size: str = "1280x800", depth: int = 24) -> None:
        self.size = size
        self.depth = depth
        self.display: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> Xvfb:
        binary = shutil.which("Xvfb")
        if binary is None:
            raise XvfbError("Xvfb is not installed (Debian package xvfb); run ./dev test")
        read_fd, write_fd = os.pipe()
        self._proc = subprocess.Popen(
            [binary, "-displayfd", str(write_fd), "-screen", "0", f"{self.size}x{self.depth}",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        deadline = time.monotonic() + timeout_s
        number = b""
        try:
            while not number.endswith(b"\n"):
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    raise XvfbError(f"Xvfb did not start (exit code {self._proc.poll()})")
                chunk = os.read(read_fd, 16)
                if not chunk:
                    raise XvfbError(f"Xvfb closed its display pipe (exit code "
                                    f"{self._proc.poll()})")
                number += chunk
        finally:
            os.close(read_fd)
        self.display = f":{number.decode().strip()}"
        return self

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        if self.display is None:
            raise XvfbError("Xvfb is not running")
        return {**(os.environ if base is None else base), "DISPLAY": self.display}

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        self.display = None

    def __enter__(self) -> Xvfb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
