"""A bench rig: the simulated station and the real daemon as separate processes.

`Rig` writes a daemon config for a folder, starts `evterm sim station` (car, power
stage, meter on Modbus TCP) and `evterm daemon` with the same scaled clock, and drives
them: plug the car through the station's control socket, start and stop sessions
through the daemon's local API, kill the daemon hard and start it again. Integration
tests, benchmarks and the demo all use it, so they exercise the same processes a
technician would start by hand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from hw_mocks.ports import free_port
from hw_mocks.station_sim import control
from terminal.kernel.clocksync import ENV as CLOCK_SYNCED_ENV
from terminal.localapi import request

REPO = Path(__file__).resolve().parents[1]  # the checkout, or site-packages when installed


def example_tariff(name: str) -> Path:
    """An example tariff shipped in the package (hw_mocks/tariffs/NAME), installed or not."""
    return Path(str(files("hw_mocks").joinpath("tariffs", name)))


DEFAULT_TARIFF = example_tariff("de_dc_hpc_adhoc.json")
STATION_ID = "DE*EVT*E0001*1"  # the station's EVSE id in every rig's config
STATION_TIMEZONE = "Europe/Berlin"  # the station's [station] timezone in every rig's config


class RigError(RuntimeError):
    pass


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):  # a TOML array (the config says if it wants one)
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def stderr_tail(proc: subprocess.Popen[str]) -> str:
    """What a child wrote to its stderr pipe so far (last 3000 characters)."""
    if proc.stderr is None:
        return ""
    os.set_blocking(proc.stderr.fileno(), False)
    return (proc.stderr.read() or "")[-3000:]


def wait_ready(
    proc: subprocess.Popen[str],
    what: str,
    timeout_s: float = 15.0,
    details: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """The JSON ready line an evterm process prints on stdout when it serves. RigError
    with `details()` (default: its stderr) when it exits or is silent for `timeout_s`;
    a silent process is killed."""
    assert proc.stdout is not None
    details = details or (lambda: stderr_tail(proc))
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout_s
    buffer = ""
    while time.monotonic() < deadline:
        chunk = proc.stdout.readline()
        if chunk:
            buffer += chunk
            if buffer.endswith("\n"):
                data = json.loads(buffer)
                if data.get("event") == "ready":
                    return dict(data)
                buffer = ""
            continue
        if proc.poll() is not None:
            raise RigError(f"{what} exited with {proc.returncode}: {details()}")
        time.sleep(0.01)
    proc.kill()
    raise RigError(f"{what} not ready within {timeout_s} s: {details()}")


@dataclass
class Rig:
    folder: Path
    speed: float = 30.0
    meter_model: str = "carlo_gavazzi_em580"
    tariff_file: Path = DEFAULT_TARIFF
    curve: dict[str, float] = field(default_factory=lambda: {
        "max_power_w": 150_000, "ramp_s": 10, "constant_s": 240, "taper_s": 240,
        "taper_end_power_w": 20_000})
    poll_interval_s: float = 2.0
    operator: str = "evterm test operator"
    session: dict[str, object] = field(default_factory=dict)
    charger: dict[str, object] = field(default_factory=dict)
    extra: dict[str, dict[str, object]] = field(default_factory=dict)  # more config sections
    anchor_s: float = field(default_factory=time.time)
    station_args: tuple[str, ...] = ()
    daemon_prefix: tuple[str, ...] = ()  # e.g. nsenter into a mount namespace
    # the daemon's EVTERM_CLOCK_SYNCED (terminal/kernel/clocksync.py): a scaled clock has
    # no NTP; None: the caller's environment value, else synchronised
    clock_synced: bool | None = None
    station: subprocess.Popen[str] | None = None
    daemon: subprocess.Popen[str] | None = None
    ready: dict[str, Any] = field(default_factory=dict)
    station_ready: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.control_path = str(self.folder / "station.sock")
        self.socket_path = str(self.folder / "local.sock")
        self.config_path = self.folder / "evterm.toml"
        self.port = free_port()
        self.daemon_log = self.folder / "daemon.log"
        # a signing meter with an HTTP API is served by the station simulator on its own
        # port (--meter-http); a Modbus meter shares the charger's port
        self.meter_http_port = free_port() if self.signing_http else None

    @property
    def signing_http(self) -> bool:
        from drivers.meter.registermap import load_model

        model = load_model(self.meter_model)
        return model.signs and not model.registers

    @property
    def meter_url(self) -> str:
        if self.meter_http_port is not None:
            from drivers.meter.registermap import load_model

            # the IEM-DCR writes the charge point id given in its URL into its documents
            iem = load_model(self.meter_model).signing.get("driver") == "iem_dcr"
            return f"http://127.0.0.1:{self.meter_http_port}" + ("?ci=EVT-E0001-1" if iem else "")
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def clock_args(self) -> list[str]:
        return ["--clock-speed", repr(self.speed), "--clock-anchor", repr(self.anchor_s)]

    def write_config(self) -> Path:
        url = f"tcp://127.0.0.1:{self.port}"
        sections: dict[str, dict[str, object]] = {
            "station": {"id": STATION_ID, "operator": self.operator,
                        "timezone": STATION_TIMEZONE, "state_dir": str(self.folder / "state")},
            "meter": {"model": self.meter_model, "url": self.meter_url, "poll_interval_s":
                      self.poll_interval_s, "timeout_s": 0.5, "max_failed_polls": 3},
            # the longest the configuration allows: on the sped-up clock 30 s is 1 s of
            # real time, so a station simulator starved of CPU is not a welded contactor
            "charger": {"url": url, "unit_id": 2, "timeout_s": 0.5,
                        "output_off_timeout_s": 30.0, **self.charger},
            "session": {"tariff_file": str(self.tariff_file), "connection_timeout_s": 600,
                        "ev_finished_after_s": 30, "meter_value_interval_s": 60,
                        **self.session},
            # a development rig: `start` takes any id token without a technician's login
            "localapi": {"socket_path": self.socket_path, "dev_free_start": True},
            "logging": {"level": "INFO"},
            "readers": {"pcsc": False},
        }
        for name, values in self.extra.items():
            sections[name] = {**sections.get(name, {}), **values}
        lines = []
        for name, values in sections.items():
            lines.append(f"[{name}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
            lines.append("")
        self.config_path.write_text("\n".join(lines), encoding="utf-8")
        return self.config_path

    # ---- processes ----------------------------------------------------------------------

    def start_station(self) -> dict[str, Any]:
        curve = [arg for key, value in self.curve.items()
                 for arg in (f"--{key.replace('_', '-')}", repr(float(value)))]
        self.station = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "sim", "station", "--meter-model",
             self.meter_model, "--tcp", f"127.0.0.1:{self.port}", "--control",
             self.control_path, *curve, *self.clock_args, *self.meter_http_args,
             *self.station_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )
        self.station_ready = wait_ready(self.station, "station simulator", 15.0,
                                        lambda: self.tail("station simulator"))
        return self.station_ready

    @property
    def meter_http_args(self) -> list[str]:
        if self.meter_http_port is None:
            return []
        return ["--meter-http", f"127.0.0.1:{self.meter_http_port}"]

    def start_daemon(self, timeout_s: float = 15.0) -> dict[str, Any]:
        if not self.config_path.exists():
            self.write_config()
        log = self.daemon_log.open("a", encoding="utf-8")
        self.daemon = subprocess.Popen(
            [*self.daemon_prefix, sys.executable, "-m", "terminal.cli", "daemon", "--config",
             str(self.config_path), *self.clock_args],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO, env=self.daemon_env(),
        )
        log.close()
        self.ready = wait_ready(self.daemon, "daemon", timeout_s, lambda: self.tail("daemon"))
        return self.ready

    def daemon_env(self) -> dict[str, str]:
        """The daemon's environment: this process's, with EVTERM_CLOCK_SYNCED set."""
        if self.clock_synced is None:
            synced = os.environ.get(CLOCK_SYNCED_ENV, "").strip() or "1"
        else:
            synced = "1" if self.clock_synced else "0"
        return {**os.environ, CLOCK_SYNCED_ENV: synced}

    def tail(self, what: str) -> str:
        if what == "daemon" and self.daemon_log.exists():
            return self.daemon_log.read_text(encoding="utf-8")[-3000:]
        return stderr_tail(self.station) if self.station is not None else ""

    def kill_daemon(self) -> None:
        """kill -9: no clean-up at all, as a power cut of the terminal board."""
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGKILL)
            self.daemon.wait(timeout=10)

    def stop_daemon(self, timeout_s: float = 10.0) -> int:
        if self.daemon is None:
            return 0
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        return int(self.daemon.returncode)

    def close(self) -> None:
        """Stop both processes; AssertionError when a CDR the daemon journaled does not
        re-price to its total with the independent OCPI engine (hw_mocks.ocpi_reference),
        so every test that makes sessions on a rig fails on a wrong CDR."""
        self.stop_daemon()
        if self.station is not None and self.station.poll() is None:
            self.station.terminate()
            try:
                self.station.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.station.kill()
        problems = self.cdr_problems()
        if problems:
            raise AssertionError(f"CDRs that do not re-price to their total: {problems}")

    def cdr_problems(self) -> list[str]:
        """What the independent OCPI engine finds wrong with the journal's CDRs ([] when
        there is no journal or it cannot be read: the tests that damage it say so)."""
        import sqlite3

        from hw_mocks.ocpi_reference import check_total
        from terminal.cdr import loads

        path = self.database
        if not path.exists():
            return []
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = conn.execute("SELECT cdr_json FROM cdrs").fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            return []
        return [p for (text,) in rows for p in check_total(loads(text), STATION_TIMEZONE)]

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- driving ------------------------------------------------------------------------

    def ev(self, cmd: str, **extra: object) -> dict[str, Any]:
        reply = control(self.control_path, {"cmd": cmd, **extra})
        if not reply.get("ok"):
            raise RigError(f"station {cmd}: {reply.get('error')}")
        return dict(reply.get("status", {}))

    def api(self, op: str, **extra: object) -> dict[str, Any]:
        return request(self.socket_path, {"op": op, **extra})

    def state(self) -> dict[str, Any]:
        return dict(self.api("status")["state"])

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout_s: float = 30.0,
                 interval_s: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except (OSError, RigError):
                last = None
            if last:
                return last
            time.sleep(interval_s)
        raise RigError(f"timed out after {timeout_s} s waiting for {what}; daemon log:\n"
                       f"{self.tail('daemon')}")

    def wait_reader(self, suffix: str = "00 00", timeout_s: float = 15.0) -> None:
        """Wait until the PC/SC reader whose name ends with `suffix` (slot 0 of a vpcd) is
        ready in the daemon's status."""
        self.wait_for(f"reader {suffix} ready", lambda: any(
            state == "ready" for name, state in self.state().get("readers", {}).items()
            if name.endswith(suffix)), timeout_s)

    def wait_phase(self, *phases: str, timeout_s: float = 30.0) -> dict[str, Any]:
        return dict(self.wait_for(
            f"phase {' or '.join(phases)}",
            lambda: (s := self.state())["phase"] in phases and s,
            timeout_s,
        ))

    @property
    def database(self) -> Path:
        return self.folder / "state" / "evterm.db"


class Subscriber:
    """A blocking local-API subscriber (tests, bench): a thread collects every pushed
    message; `wait_for(predicate)` returns the first one since `mark` that matches."""

    def __init__(self, socket_path: str, timeout_s: float = 5.0) -> None:
        import socket
        import threading

        self.messages: list[dict[str, Any]] = []
        self.arrival_s: list[float] = []  # time.monotonic() of each message
        self._changed = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        self._sock.connect(socket_path)
        self._sock.sendall(b'{"op": "subscribe", "id": "sub"}\n')
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._sock.makefile("rb") as lines:
            for line in lines:
                message = json.loads(line)
                with self._changed:
                    self.messages.append(message)
                    self.arrival_s.append(time.monotonic())
                    self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self.messages)

    def wait_for(self, what: str, predicate: Callable[[dict[str, Any]], bool],
                 timeout_s: float = 20.0, since: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for message in self.messages[since:]:
                    if predicate(message):
                        return message
                since = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RigError(f"timed out after {timeout_s} s waiting for {what}")
                self._changed.wait(left)

    def tap(self, since: int, timeout_s: float = 20.0) -> dict[str, Any]:
        """The next `tap` event (a card's outcome) after `since`."""
        return self.wait_for("a tap outcome", lambda m: m.get("type") == "tap",
                             timeout_s, since)

    def close(self) -> None:
        import contextlib
        import socket

        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
