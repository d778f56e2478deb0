"""The systemd units, the install script and the daemon's sd_notify messages, checked
with the real systemd tools and a real daemon.

`systemd-analyze verify` needs every ExecStart binary to exist, and /opt/evterm is not
installed here: each unit is verified as a copy whose ExecStart program is a stub
script in a temporary folder, everything else byte for byte the same. systemd need
not be PID 1 for verify or `security --offline=true`. The security score is the one a
board would get: at most 3.0 ("OK") for both units (docs/deployment.md lists what is
left out and why). The daemon runs under the station simulator (hw_mocks.rig.Rig) with
NOTIFY_SOCKET and WATCHDOG_USEC pointing at a datagram socket of the test."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hw_mocks.rig import Rig
from tests.integration.conftest import require_binary

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"
EVTERM_BIN = "/opt/evterm/current/venv/bin/evterm"  # the release layout, docs/updates.md
MAX_EXPOSURE = 3.0


def directives(unit: Path) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, all values of repeated keys, in order."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def verifiable_copy(unit: Path, folder: Path) -> Path:
    """The unit with its ExecStart program replaced by an existing stub executable."""
    stub = folder / "bin" / "evterm"
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    text = unit.read_text(encoding="utf-8")
    assert text.count(EVTERM_BIN) == 1, f"{unit.name}: one ExecStart of {EVTERM_BIN}"
    copy = folder / unit.name
    copy.write_text(text.replace(EVTERM_BIN, str(stub)), encoding="utf-8")
    return copy


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = require_binary("systemd-analyze")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**os.environ, "SYSTEMD_LOG_COLOR": "0",
                                        "SYSTEMD_COLORS": "0"})


@pytest.mark.parametrize("name", ["evterm.service", "evterm-ui.service",
                                  "evterm-update.service", "evterm-update.path"])
def test_units_pass_systemd_analyze_verify(name, tmp_path):
    if name.endswith(".path"):  # the unit it starts must be there to verify it
        verifiable_copy(SYSTEMD / "evterm-update.service", tmp_path)
        copy = tmp_path / name
        copy.write_text((SYSTEMD / name).read_text(encoding="utf-8"), encoding="utf-8")
    else:
        copy = verifiable_copy(SYSTEMD / name, tmp_path)
    result = analyze("verify", str(copy), cwd=tmp_path)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or output:
        pytest.fail(f"systemd-analyze verify {name} (ExecStart stubbed) exited "
                    f"{result.returncode} and said:\n{output}\n(it needs no running systemd; "
                    "if it cannot load units here, this output says why)")


@pytest.mark.parametrize("name", ["evterm.service", "evterm-ui.service"])
def test_units_score_at_most_3_0_in_systemd_analyze_security(name, tmp_path):
    copy = verifiable_copy(SYSTEMD / name, tmp_path)
    # --threshold is on the 0..100 scale behind the printed 0.0..10.0
    result = analyze("security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}",
                     "--no-pager", str(copy), cwd=tmp_path)
    overall = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", result.stdout)
    if overall is None:
        pytest.fail(f"systemd-analyze security printed no overall exposure (exit "
                    f"{result.returncode}):\n{result.stdout}\n{result.stderr}")
    exposure = float(overall.group(1))
    print(f"{name}: {overall.group(0)}")  # shown with pytest -rP
    failing = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert exposure <= MAX_EXPOSURE and result.returncode == 0, (
        f"{name}: exposure {exposure} > {MAX_EXPOSURE} (exit {result.returncode}); "
        "not satisfied:\n" + "\n".join(failing))


def test_daemon_unit_keeps_what_serial_pcsc_and_the_backend_need():
    unit = directives(SYSTEMD / "evterm.service")
    single = {key: values[-1] for key, values in unit.items()}
    expected = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30",
        "Restart": "on-failure", "User": "evterm", "Group": "evterm",
        "SupplementaryGroups": "dialout", "StateDirectory": "evterm",
        "ConfigurationDirectory": "evterm", "LogsDirectory": "evterm",
        "RuntimeDirectory": "evterm", "DevicePolicy": "closed",
        "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "",
        "AmbientCapabilities": "", "UMask": "0077",
        "ExecStart": f"{EVTERM_BIN} daemon --config /etc/evterm/evterm.toml",
    }
    assert {k: single.get(k) for k in expected} == expected
    assert {"char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw"} <= set(unit["DeviceAllow"])
    assert set(single["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    for wanted in ("pcscd.socket", "network-online.target"):
        assert wanted in " ".join(unit["Wants"]) and wanted in " ".join(unit["After"])
    # the network (MQTT) and the dialout group (serial ports) must stay reachable
    assert not {"PrivateNetwork", "PrivateUsers", "PrivateDevices", "IPAddressDeny",
                "DynamicUser"} & unit.keys()
    # pcscd's socket lives in /run/pcscd: nothing may hide /run
    hidden = unit.get("InaccessiblePaths", []) + unit.get("TemporaryFileSystem", [])
    assert not [p for p in hidden if p.lstrip("-") in ("/run", "/run/pcscd")], hidden


def test_ui_unit_runs_on_kms_drm_as_its_own_user_with_the_socket_group():
    unit = directives(SYSTEMD / "evterm-ui.service")
    single = {key: values[-1] for key, values in unit.items()}
    assert single["ExecStart"] == (f"{EVTERM_BIN} ui --socket /run/evterm/local.sock "
                                   "--fullscreen")
    assert single["User"] == "evterm-ui" and single["Restart"] == "always"
    assert set(single["SupplementaryGroups"].split()) == {"video", "render", "input", "evterm"}
    assert {"SDL_VIDEODRIVER=kmsdrm", "KIVY_WINDOW=sdl2"} <= set(unit["Environment"])
    assert {"char-drm rw", "char-input r"} <= set(unit["DeviceAllow"])
    for key in ("Wants", "After"):
        assert "evterm.service" in " ".join(unit[key]), key
    assert "Requires" not in unit and "BindsTo" not in unit  # a daemon restart keeps the UI


def test_ui_unit_command_line_is_accepted_by_the_cli():
    from terminal.cli import build_parser

    for unit, command in (("evterm.service", "daemon"), ("evterm-ui.service", "ui")):
        argv = directives(SYSTEMD / unit)["ExecStart"][-1].split()[1:]
        args = build_parser(command).parse_args(argv)
        assert args.command == command


def test_config_template_checks(tmp_path):
    template = (SYSTEMD / "evterm.toml").read_text(encoding="utf-8")
    # what install.sh puts next to it: the tariff and an empty pins file
    for key in ('pins_file = "/var/lib/evterm/pins.json"', 'technician_ids = ""'):
        assert f"\n{key}" in template, key
    tariff = REPO / "hw_mocks" / "tariffs" / "de_dc_hpc_adhoc.json"
    pins = tmp_path / "pins.json"
    pins.write_text('{"technicians": {}}\n', encoding="utf-8")
    config = tmp_path / "evterm.toml"
    config.write_text(template.replace("/etc/evterm/tariff.json", str(tariff))
                      .replace('"/var/lib/evterm/pins.json"', f'"{pins}"'), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "terminal.cli", "config", "check",
                             str(config)], capture_output=True, text=True, timeout=60,
                            cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_script_parses_and_its_dry_run_names_every_step_and_changes_nothing():
    bash = require_binary("bash")
    script = SYSTEMD / "install.sh"
    syntax = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    watched = [Path(p) for p in ("/etc/evterm", "/opt/evterm", "/etc/systemd/system/evterm.service",
                                 "/etc/systemd/system/evterm-ui.service")]
    before = {p: p.exists() for p in watched}
    result = subprocess.run([bash, str(script), "--dry-run", "--with-mqtt-tools"],
                            capture_output=True, text=True, timeout=60)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert {p: p.exists() for p in watched} == before
    steps = [line for line in out.splitlines() if line.startswith("==> ")]
    assert [s.split(":")[0] for s in steps] == [
        "==> packages", "==> users", "==> virtualenv", "==> configuration",
        "==> systemd units", "==> done"], steps
    for package in ("python3-venv", "pcscd", "libpcsclite1", "libgl1-mesa-dri",
                    "mosquitto-clients"):
        assert package in steps[0], package
    for user, groups in (("evterm", "dialout"), ("evterm-ui", "video,render,input,evterm")):
        assert re.search(rf"^\+ (useradd|usermod) .*--groups {groups} {user}$", out, re.M), user
    assert re.search(r"^\+ useradd .*--system .*--shell /usr/sbin/nologin", out, re.M) or \
        "exists; making sure" in out
    venv = r"/opt/evterm/releases/[\w.+-]+/venv"
    assert re.search(rf"python3 -m venv {venv}$|{venv} exists", out, re.M)
    # evterm's wheel is built from a copy outside the checkout, installed pinned
    assert re.search(rf"^\+ tar -C {REPO} .*-cf /tmp/evterm-build\.\w+/src\.tar \.$", out, re.M)
    assert re.search(rf"^\+ {venv}/bin/python -m pip wheel -q --no-deps --wheel-dir "
                     r"/tmp/evterm-build\.\w+/dist /tmp/evterm-build\.\w+/src$", out, re.M)
    assert re.search(rf"pip install -q --constraint {REPO}/constraints/board.txt "
                     r"/tmp/evterm-build\.\w+/dist/evterm-[\d.]+-py3-none-any\.whl\[ui\]$",
                     out, re.M)
    assert "--upgrade" not in out
    assert re.search(r"^\+ ln -sfn releases/[\w.+-]+ /opt/evterm/current.new$", out, re.M)
    assert "+ mv -Tf /opt/evterm/current.new /opt/evterm/current" in out
    assert "+ ln -sfn current/venv /opt/evterm/venv" in out  # an old board's path
    assert "+ ln -sfn /opt/evterm/current/venv/bin/evterm /usr/local/bin/evterm" in out
    assert re.search(r"install -d -m 0750 -o root -g evterm /etc/evterm$", out, re.M)
    assert ("install -m 0640 -o root -g evterm " in out) or "evterm.toml exists" in out
    assert "+ install -d -m 0700 -o evterm -g evterm /var/lib/evterm" in out
    assert "+ runuser -u evterm -- /opt/evterm/current/venv/bin/evterm config check " \
           "/etc/evterm/evterm.toml" in out
    for unit in ("evterm.service", "evterm-ui.service", "evterm-update.service",
                 "evterm-update.path"):
        assert f"/etc/systemd/system/{unit}" in out
    assert "+ systemctl daemon-reload" in out
    assert "+ systemctl enable evterm.service evterm-ui.service evterm-update.service " \
           "evterm-update.path" in out


def test_install_script_refuses_to_run_without_root():
    bash = require_binary("bash")
    command = [bash, str(SYSTEMD / "install.sh")]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("setpriv (util-linux) is needed to run the script as a non-root user")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "must run as root" in result.stderr
    assert "==>" not in result.stdout  # it stopped before the first step


# --- the daemon's sd_notify messages, as systemd's notify socket receives them ---------


class NotifySocket:
    """A Unix datagram socket like systemd's: each message with its arrival time and the
    sender's pid (SO_PASSCRED, what NotifyAccess=main checks)."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="evsd-")
        self.path = os.path.join(self.folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.messages: list[tuple[float, int, str]] = []  # (time.monotonic(), pid, text)

    def collect(self, seconds: float) -> list[tuple[float, int, str]]:
        """Receive for `seconds`; every message so far."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except TimeoutError:
                break
            pid = next((struct.unpack("iII", cdata[:12])[0] for level, kind, cdata in ancillary
                        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS), -1)
            self.messages.append((time.monotonic(), pid, data.decode()))
        return self.messages

    def wait_for(self, line: str, timeout_s: float) -> tuple[float, int, str]:
        deadline = time.monotonic() + timeout_s
        while True:
            for message in self.messages:
                if line in message[2].split("\n"):
                    return message
            if time.monotonic() > deadline:
                pytest.fail(f"no {line!r} within {timeout_s} s; got {self.messages}")
            self.collect(0.05)

    def pings(self, since: float, until: float) -> list[float]:
        return [at for at, _, text in self.messages
                if since <= at <= until and "WATCHDOG=1" in text.split("\n")]

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def largest_gap_s(times: list[float], start: float, end: float) -> float:
    points = [start, *times, end]
    return max(b - a for a, b in itertools.pairwise(points))


def test_daemon_notifies_ready_and_pings_the_watchdog_through_a_frozen_meter(
        tmp_path, monkeypatch):
    """READY=1 once it serves; WATCHDOG=1 every half interval; a meter that stops
    answering (station process SIGSTOPped) is a fault the daemon handles, polling on with
    timeouts, so the pings go on and STATUS reports the fault; STOPPING=1 on SIGTERM.
    Every message comes from the daemon's own pid (NotifyAccess=main)."""
    watchdog_s = 0.3  # pings every 0.15 s
    notify = NotifySocket()
    rig = Rig(tmp_path / "rig", speed=30.0, extra={"meter": {"timeout_s": 0.2},
                                                   "charger": {"timeout_s": 0.2}})
    try:
        rig.start_station()
        monkeypatch.setenv("NOTIFY_SOCKET", notify.path)  # for the daemon only
        monkeypatch.setenv("WATCHDOG_USEC", str(int(watchdog_s * 1e6)))
        rig.start_daemon()
        assert rig.daemon is not None and rig.station is not None
        pid = rig.daemon.pid
        ready_at, _, ready = notify.wait_for("READY=1", 5)
        assert "STATUS=Available; meter ok" in ready.split("\n"), ready
        healthy_from = time.monotonic()
        notify.collect(1.0)
        healthy = notify.pings(healthy_from, time.monotonic())
        assert len(healthy) >= 5, healthy
        assert largest_gap_s(healthy, healthy_from, time.monotonic()) < watchdog_s

        os.kill(rig.station.pid, signal.SIGSTOP)  # meter and charger IO stop answering
        frozen_from = time.monotonic()
        try:
            notify.wait_for("STATUS=Available; meter fault: communication", 5)
            notify.collect(max(0.0, frozen_from + 2.5 - time.monotonic()))
            frozen_until = time.monotonic()
        finally:
            os.kill(rig.station.pid, signal.SIGCONT)
        frozen = notify.pings(frozen_from, frozen_until)
        gap_s = largest_gap_s(frozen, frozen_from, frozen_until)
        assert gap_s < watchdog_s, (f"a {gap_s:.2f} s gap without WATCHDOG=1 while the meter "
                                    f"was silent: systemd would have killed the daemon")
        print(f"healthy: {len(healthy)} pings in 1 s; meter silent: {len(frozen)} pings in "
              f"{frozen_until - frozen_from:.2f} s, largest gap {gap_s:.3f} s")
        notify.wait_for("STATUS=Available; meter ok", 5)  # the station answers again

        assert rig.stop_daemon() == 0
        notify.collect(0.1)
        stopping = [text for _, _, text in notify.messages if "STOPPING=1" in text.split("\n")]
        assert stopping, notify.messages[-3:]
        senders = {sender for _, sender, _ in notify.messages}
        assert senders == {pid}, senders
        assert ready_at < min(notify.pings(0, time.monotonic()))  # READY before any ping
    finally:
        if rig.station is not None and rig.station.poll() is None:
            os.kill(rig.station.pid, signal.SIGCONT)
        rig.close()
        notify.close()
