"""`evterm sim backend-loopback` as a child process, for tests, the demo and the bench.

Provides `BackendProcess(folder, tokens=(), rules=None)`: generates the gateway key
pair into `folder/keys` (never committed), writes the token list and PAN rules, and
`start()`s the simulator on `folder/backend.sock` (again after `stop()`: same socket,
keys and lists). `admin(cmd, **values)` sends one admin command (silent, delay, refund,
local-list, received, ledger, ...) and returns the reply; `log_text()` is the
simulator's log. The folder path must be short: the socket path stays < 108 bytes.

On failure: `start()` raises RigError with the tail of the simulator's log when it
exits or is not ready in time; `admin()` raises AssertionError when the reply is not ok.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hw_mocks.backend_logic import generate_gateway_keys
from hw_mocks.backend_loopback import admin
from hw_mocks.rig import REPO, wait_ready


class BackendProcess:
    def __init__(self, folder: Path, tokens: Iterable[dict[str, Any]] = (),
                 rules: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket = str(self.folder / "backend.sock")
        self.private_key, self.public_key = generate_gateway_keys(self.folder / "keys")
        self.tokens_path = self.folder / "tokens.json"
        self.tokens_path.write_text(json.dumps(list(tokens)), encoding="utf-8")
        self.rules_path: Path | None = None
        if rules is not None:
            self.rules_path = self.folder / "rules.json"
            self.rules_path.write_text(json.dumps(rules), encoding="utf-8")
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = self.folder / "backend.log"

    def start(self, *extra: str) -> dict[str, Any]:
        args = [sys.executable, "-m", "terminal.cli", "--log-level", "INFO", "sim",
                "backend-loopback", "--socket", self.socket, "--gateway-key",
                str(self.private_key), "--tokens", str(self.tokens_path), *extra]
        if self.rules_path is not None:
            args += ["--rules", str(self.rules_path)]
        with self.stderr_path.open("a", encoding="utf-8") as stderr:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr,
                                         text=True, cwd=REPO)
        return wait_ready(self.proc, "backend simulator",
                          details=lambda: self.log_text()[-3000:])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=5)
        self.proc = None
        return code

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def admin(self, cmd: str, **values: Any) -> dict[str, Any]:
        reply = admin(self.socket, cmd, 5.0, **values)
        assert reply["ok"], reply
        return reply

    def log_text(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8") if self.stderr_path.exists() \
            else ""
