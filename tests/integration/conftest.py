"""Real components for integration tests: the meter and station simulators as their
own processes and socat pty pairs. A missing component fails the test loudly; nothing is skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hw_mocks.ports import free_port
from hw_mocks.rig import Rig, wait_ready


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run the README's test command (make test)")
    return path


@dataclass
class SimHandle:
    url: str
    model: str
    ready: dict
    proc: subprocess.Popen


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals made by socat: (simulator end, driver end)."""
    socat = require_binary("socat")
    a, b = tmp_path / "meter-side", tmp_path / "terminal-side"
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("socat did not create the pty pair")
        time.sleep(0.02)
    yield str(a), str(b)
    proc.terminate()
    proc.wait(timeout=5)


@pytest.fixture
def start_sim(request: pytest.FixtureRequest) -> Iterator:
    """start_sim(model, transport, *args) -> SimHandle; transport 'tcp' or 'rtu'."""
    procs: list[subprocess.Popen] = []

    def start(model: str, transport: str, *args: str, baud: int = 115200) -> SimHandle:
        if transport == "tcp":
            port = free_port()
            where = ["--tcp", f"127.0.0.1:{port}"]
            url = f"tcp://127.0.0.1:{port}"
        else:
            sim_end, driver_end = request.getfixturevalue("pty_pair")
            where = ["--rtu", sim_end, "--baud", str(baud)]
            url = f"rtu://{driver_end}?baud={baud}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "sim", "meter", "--model", model,
             *where, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return SimHandle(url, model, wait_ready(proc, "meter simulator"), proc)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=5)


@dataclass
class StationHandle:
    """A running `evterm sim station`: its ready line, URLs, units and control socket."""

    ready: dict
    proc: subprocess.Popen
    control_path: str

    @property
    def meter_url(self) -> str:
        return self.ready["meter_url"]

    @property
    def charger_url(self) -> str:
        return self.ready["charger_url"]

    def control(self, cmd: str, **fields: object) -> dict:
        """One control request; fails the test unless the station answers ok."""
        from hw_mocks.station_sim import control

        reply = control(self.control_path, {"cmd": cmd, **fields})
        assert reply["ok"], reply
        return reply["status"]


@pytest.fixture
def start_station() -> Iterator:
    """start_station(*args, model='carlo_gavazzi_em580') -> StationHandle; the station
    serves Modbus TCP on a free port, its control socket in a short temporary dir (a Unix
    socket path must stay under 108 bytes)."""
    procs: list[subprocess.Popen] = []
    dirs: list[str] = []

    def start(*args: str, model: str = "carlo_gavazzi_em580") -> StationHandle:
        folder = tempfile.mkdtemp(prefix="evst-")
        dirs.append(folder)
        control_path = os.path.join(folder, "control.sock")
        proc = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "sim", "station", "--meter-model", model,
             "--tcp", f"127.0.0.1:{free_port()}", "--control", control_path, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return StationHandle(wait_ready(proc, "station simulator"), proc, control_path)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=5)
    for folder in dirs:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """The station simulator and the daemon running (hw_mocks.rig.Rig); options from
    `@pytest.mark.rig(**kwargs)`."""
    marker = request.node.get_closest_marker("rig")
    with Rig(tmp_path / "rig", **(marker.kwargs if marker else {})) as started:
        started.start_station()
        started.start_daemon()
        yield started


# --- PC/SC: a private pcscd with vpcd slots, cards tapped by `evterm sim tap` ----------

import json  # noqa: E402
from collections.abc import Callable  # noqa: E402

from hw_mocks.pcscd import PcscdError, PcscdHandle  # noqa: E402


@pytest.fixture(scope="session")
def pcsc_folder() -> Iterator[str]:
    """This test process's private pcscd folder. libpcsclite reads PCSCLITE_CSOCK_NAME
    once per process, so every pcscd this (xdist worker) process talks to serves the
    same socket path, set here before any PC/SC call of the process."""
    folder = tempfile.mkdtemp(prefix="evpcsc-")
    previous = os.environ.get("PCSCLITE_CSOCK_NAME")
    os.environ["PCSCLITE_CSOCK_NAME"] = os.path.join(folder, "pcscd.comm")
    yield folder
    if previous is None:
        os.environ.pop("PCSCLITE_CSOCK_NAME", None)
    else:
        os.environ["PCSCLITE_CSOCK_NAME"] = previous
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pcscd(pcsc_folder: str) -> Iterator[PcscdHandle]:
    """A private pcscd (hw_mocks.pcscd.PcscdHandle) with two vpcd slots on free ports,
    serving this process's socket; stopped after the test."""
    handle = PcscdHandle(pcsc_folder, readers=2)
    try:
        handle.start()
    except PcscdError as exc:
        pytest.fail(f"private pcscd: {exc}")
    yield handle
    handle.stop()


@dataclass
class TapProcess:
    """A running `evterm sim tap`: its in_field line and, after wait_left(), its left line."""

    proc: subprocess.Popen
    in_field: dict

    def wait_left(self, timeout_s: float = 10.0) -> dict:
        out, err = self.proc.communicate(timeout=timeout_s)
        assert self.proc.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def tap(pcscd: PcscdHandle) -> Iterator[Callable[..., TapProcess]]:
    """tap(card, reader=0, hold_s=1.0, remove_after_apdus=None) -> TapProcess: a card
    held in a slot of the `pcscd` fixture by `evterm sim tap` in its own process; returns
    once the card is in the field (connected to vpcd)."""
    procs: list[subprocess.Popen] = []

    def start(card: str, reader: int = 0, hold_s: float = 1.0,
              remove_after_apdus: int | None = None) -> TapProcess:
        args = [sys.executable, "-m", "terminal.cli", "sim", "tap", card,
                "--reader", str(reader), "--hold", str(hold_s),
                "--port", str(pcscd.base_port)]
        if remove_after_apdus is not None:
            args += ["--remove-after-apdus", str(remove_after_apdus)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=5)
            pytest.fail(f"evterm sim tap {card} failed: {proc.stderr.read()}")
        in_field = json.loads(line)
        assert in_field["event"] == "in_field", in_field
        return TapProcess(proc, in_field)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=5)


# --- MQTT: a private mosquitto per test (plain or TLS + ACL), the MQTT backend simulator ---

from hw_mocks.backend_process import BackendMqttProcess  # noqa: E402
from hw_mocks.mosquitto import Broker, BrokerError  # noqa: E402
from hw_mocks.pki import make_pki  # noqa: E402

MQTT_STATIONS = ("ST1", "ST2")


def _started(broker_factory: Callable[[], Broker]) -> Broker:
    try:
        return broker_factory().start()
    except BrokerError as exc:
        pytest.fail(f"mosquitto: {exc}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A plain mosquitto (anonymous, no TLS) on 127.0.0.1 and a free port
    (hw_mocks.mosquitto.Broker); stopped after the test."""
    started = _started(lambda: Broker(tmp_path / "broker"))
    yield started
    started.stop()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    """A mosquitto with TLS, client certificates required (CN = user name) and the
    per-station ACL; `tls_broker.tls` is the test PKI (hw_mocks.pki.PkiPaths) with client
    certificates for ST1, ST2, the backend and a rogue one; stopped after the test."""
    pki = make_pki(tmp_path / "pki", MQTT_STATIONS)
    started = _started(lambda: Broker(tmp_path / "tls-broker", tls=pki,
                                      stations=MQTT_STATIONS))
    yield started
    started.stop()


@pytest.fixture
def backend_sim() -> Iterator[Callable[..., BackendMqttProcess]]:
    """backend_sim(broker, tokens=(), rules=None) -> a started `evterm sim backend`
    (hw_mocks.backend_process.BackendMqttProcess) connected to `broker` (with the backend's
    client certificate on a TLS broker); killed after the test."""
    started: list[BackendMqttProcess] = []
    dirs: list[str] = []

    def start(on: Broker, tokens: tuple = (), rules: dict | None = None) -> BackendMqttProcess:
        folder = tempfile.mkdtemp(prefix="evbk-")
        dirs.append(folder)
        sim = BackendMqttProcess(folder, on, tokens, rules)
        started.append(sim)
        sim.start()
        return sim

    yield start
    problems = []
    for sim in started:
        try:
            sim.close()  # AssertionError: a CDR it received was wrong (docs/cdr.md)
        except AssertionError as exc:
            problems.append(str(exc))
    for folder in dirs:
        shutil.rmtree(folder, ignore_errors=True)
    assert not problems, problems
