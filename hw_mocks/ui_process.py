"""The touchscreen app as a child process, driven through its automation socket.

`UiProcess(socket_path, control_path, env, size="800x480", language=None,
extra_args=()).start()` runs `evterm ui` (plus `extra_args`, e.g. `("--large-text",)`)
and waits until its control socket answers; `cmd(name, **fields)`
sends one control command (docs/local-api.md, "The UI's automation socket") and returns
the reply, raising UiError when it is not ok; `dump()`, `press(id)`, `screenshot(path)`,
`stats()`; `wait_for(what, predicate)` polls `dump()` until the predicate holds, and
the error names what the screen showed instead. Used by the UI tests, the demo and the
benchmark. `env` must carry DISPLAY (a real screen or hw_mocks.xvfb.Xvfb).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hw_mocks.rig import REPO

WAIT_POLL_S = 0.02  # wait_for's dump interval: a dump costs the app well under a frame


class UiError(RuntimeError):
    pass


class UiProcess:
    def __init__(self, socket_path: str, control_path: str, env: dict[str, str], *,
                 size: str = "800x480", language: str | None = None,
                 log_path: str | Path | None = None, fullscreen: bool = False,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.socket_path = socket_path
        self.control_path = control_path
        self.env = env
        self.size = size
        self.language = language
        self.fullscreen = fullscreen
        self.extra_args = tuple(extra_args)  # e.g. ("--large-text",)
        self.log_path = Path(log_path) if log_path else Path(control_path).with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at_s = 0.0

    def start(self, timeout_s: float = 30.0) -> UiProcess:
        args = [sys.executable, "-m", "terminal.cli", "ui", "--socket", self.socket_path,
                "--control", self.control_path]
        args += ["--fullscreen"] if self.fullscreen else ["--size", self.size]
        if self.language:
            args += ["--language", self.language]
        args += list(self.extra_args)
        self.started_at_s = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=log, cwd=REPO)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise UiError(f"evterm ui exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.cmd("dump", timeout_s=2.0)
                return self
            except (OSError, UiError):
                if time.monotonic() > deadline:
                    raise UiError(f"evterm ui did not answer on {self.control_path} within "
                                  f"{timeout_s} s:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def cmd(self, name: str, timeout_s: float = 15.0, **fields: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(self.control_path)
            sock.sendall((json.dumps({"cmd": name, **fields}) + "\n").encode())
            buffer = b""
            while not buffer.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise UiError(f"the UI closed the control connection during {name!r}")
                buffer += chunk
        reply = dict(json.loads(buffer))
        if not reply.get("ok", False):
            raise UiError(f"{name}: {reply.get('error', reply)}")
        return reply

    def dump(self, layout: bool = False) -> dict[str, Any]:
        """The screen's texts and buttons; with `layout` every widget drawn, its place,
        size and (labels) font and text size (ui/control.py, layout_of)."""
        return self.cmd("dump", layout=True) if layout else self.cmd("dump")

    def press(self, button_id: str) -> dict[str, Any]:
        return self.cmd("press", id=button_id)

    def screenshot(self, path: str | Path) -> Path:
        return Path(self.cmd("screenshot", path=str(path))["path"])

    def stats(self) -> dict[str, Any]:
        return self.cmd("stats")

    def wait_for(self, what: str, predicate: Callable[[dict[str, Any]], Any],
                 timeout_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                seen = self.dump()
                if predicate(seen):
                    return seen
            except (OSError, UiError, KeyError):
                pass
            time.sleep(WAIT_POLL_S)
        shown = {k: seen.get(k) for k in ("screen", "language", "widgets")}
        raise UiError(f"timed out after {timeout_s} s waiting for the screen to show {what}; "
                      f"it shows {json.dumps(shown, ensure_ascii=False)[:2000]}")

    def wait_screen(self, screen: str, timeout_s: float = 20.0) -> dict[str, Any]:
        return self.wait_for(f"screen {screen!r}", lambda d: d["screen"] == screen, timeout_s)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.cmd("quit", timeout_s=2.0)
            self.proc.wait(timeout=timeout_s)
        except (OSError, UiError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
