"""The backend simulators as child processes, for tests, the demo and the bench.

Provides:
- `BackendProcess(folder, tokens=(), rules=None)`: `evterm sim backend-loopback` on
  `folder/backend.sock` (the Unix-socket stand-in for the backend link).
- `BackendMqttProcess(folder, broker, tokens=(), rules=None)`: `evterm sim backend` on an
  MQTT broker (hw_mocks.mosquitto.Broker), with the backend's client certificate when the
  broker uses TLS; the operator's Ed25519 key pair for signed commands; its admin socket
  at `folder/admin.sock`.
Both generate the gateway key pair into `folder/keys` (never committed), write the token
list and PAN rules, `start()` (again after `stop()`: same sockets, keys and lists) and
return the ready line; `admin(cmd, **values)` sends one admin command and asserts the
reply is ok; `log_text()` is the simulator's log. Keep `folder` short: socket paths
stay < 108 bytes.

On failure: `start()` raises RigError with the tail of the log when the simulator exits
or is not ready in time; `admin()` raises AssertionError when the reply is not ok.
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
from hw_mocks.rig import REPO, wait_ready


class _SimulatorProcess:
    """What both simulator processes share: keys, lists, the child, its log."""

    name = "backend simulator"

    def __init__(self, folder: str | Path, tokens: Iterable[dict[str, Any]] = (),
                 rules: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.gateway_private, self.gateway_public = generate_gateway_keys(self.folder / "keys")
        self.tokens_path = self.folder / "tokens.json"
        self.tokens_path.write_text(json.dumps(list(tokens)), encoding="utf-8")
        self.rules_path: Path | None = None
        if rules is not None:
            self.rules_path = self.folder / "rules.json"
            self.rules_path.write_text(json.dumps(rules), encoding="utf-8")
        self.stderr_path = self.folder / "backend.log"
        self.proc: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}

    def _command(self) -> list[str]:
        raise NotImplementedError

    def start(self, *extra: str) -> dict[str, Any]:
        args = [sys.executable, "-m", "terminal.cli", "--log-level", "INFO", "sim",
                *self._command(), "--gateway-key", str(self.gateway_private),
                "--tokens", str(self.tokens_path), *extra]
        if self.rules_path is not None:
            args += ["--rules", str(self.rules_path)]
        with self.stderr_path.open("a", encoding="utf-8") as stderr:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr,
                                         text=True, cwd=REPO)
        self.ready = wait_ready(self.proc, self.name, details=lambda: self.log_text()[-3000:])
        return self.ready

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = int(self.proc.wait(timeout=5))
        self.proc = None
        return code

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def log_text(self) -> str:
        return (self.stderr_path.read_text(encoding="utf-8") if self.stderr_path.exists()
                else "")


class BackendProcess(_SimulatorProcess):
    def __init__(self, folder: str | Path, tokens: Iterable[dict[str, Any]] = (),
                 rules: dict[str, Any] | None = None) -> None:
        super().__init__(folder, tokens, rules)
        self.socket = str(self.folder / "backend.sock")

    def _command(self) -> list[str]:
        return ["backend-loopback", "--socket", self.socket]

    def admin(self, cmd: str, **values: Any) -> dict[str, Any]:
        from hw_mocks.backend_admin import admin

        reply = admin(self.socket, cmd, socket_timeout_s=5.0, **values)
        assert reply["ok"], reply
        return reply


class BackendMqttProcess(_SimulatorProcess):
    name = "MQTT backend simulator"

    def __init__(self, folder: str | Path, broker: Any, tokens: Iterable[dict[str, Any]] = (),
                 rules: dict[str, Any] | None = None) -> None:
        from hw_mocks.backend_mqtt import generate_operator_keys

        super().__init__(folder, tokens, rules)
        self.broker = broker
        self.socket = str(self.folder / "admin.sock")
        self.operator_private, self.operator_public = generate_operator_keys(
            self.folder / "keys")

    def _command(self) -> list[str]:
        from hw_mocks.rig import STATION_TIMEZONE

        args = ["backend", "--host", self.broker.host, "--port", str(self.broker.port),
                "--operator-key", str(self.operator_private), "--admin-socket", self.socket,
                "--station-timezone", STATION_TIMEZONE]
        tls = getattr(self.broker, "tls", None)
        if tls is not None:
            args += ["--tls-ca", str(tls.ca.cert), "--cert", str(tls.backend.cert),
                     "--key", str(tls.backend.key)]
        return args

    def __enter__(self) -> BackendMqttProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the simulator; AssertionError when a CDR it received was malformed or
        its total disagreed with the independent OCPI re-pricing (hw_mocks.backend_cdr),
        so every test that makes sessions against it fails on a wrong CDR."""
        violations = self.cdr_violations() if self.proc is not None and \
            self.proc.poll() is None else []
        super().close()
        if violations:
            raise AssertionError(f"CDR violations at the backend simulator: {violations}")

    def cdr_violations(self) -> list[dict[str, Any]]:
        """The CDR problems the simulator recorded ([] when it cannot be asked)."""
        try:
            return list(self.admin("events", socket_timeout_s=5.0).get("cdr_violations", []))
        except (OSError, AssertionError, ValueError):
            return []

    def admin(self, cmd: str, *, socket_timeout_s: float = 30.0, **values: Any
              ) -> dict[str, Any]:
        from hw_mocks.backend_admin import admin

        reply = admin(self.socket, cmd, socket_timeout_s=socket_timeout_s, **values)
        assert reply["ok"], reply
        return reply
