"""systemd/install.sh for real, in a throwaway root: a private mount namespace in which
/etc, /opt, /usr/local and /var/lib are overlays whose changes land in the test's folder
(users and groups too: useradd writes the overlay's /etc/passwd), so the script runs
unchanged with its real paths and leaves nothing on this machine.

The wheelhouse is offline: evterm's wheel built from a copy of the checkout and wheels of
the exact dependency versions this environment runs (tests/integration/packaging.py);
install.sh gets only that folder (--wheelhouse: no index, no pip configuration). The
interpreter is the system's python3, as on the board. Without systemd running, the
units are enabled the offline way (symlinks); for `--start` the script then sees a
"booted" systemd (/run/systemd/system on a private /run and a systemctl that logs its
calls) and a real daemon (the `rig` fixture) with a session open.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from terminal.session.model import OPEN_PHASES
from tests.integration.conftest import require_binary
from tests.integration.packaging import REPO, repack_installed, repo_litter, shared_wheel

pytestmark = pytest.mark.integration
OVERLAID = ("/etc", "/opt", "/usr/local", "/var/lib")

# Runs inside the namespace as root: $1 the test folder, $2 the checkout, $3 the wheelhouse.
SCENARIO = r"""
set -u
T=$1 REPO=$2 WH=$3
for dir in /etc /opt /usr/local /var/lib; do
  name=${dir//\//_}
  mkdir -p "$T/upper/$name" "$T/work/$name"
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$T/upper/$name,workdir=$T/work/$name" \
    "$dir" || { echo "cannot overlay $dir" >&2; exit 90; }
done
O=$T/out; mkdir -p "$O"
[ ! -e /opt/evterm ] && ! id evterm >/dev/null 2>&1 || { echo "not a fresh root" >&2; exit 91; }
# an old board: its venv in /opt/evterm/venv, before the release layout (docs/updates.md)
mkdir -p /opt/evterm/venv/bin && touch /opt/evterm/venv/bin/old-board

# 1. an operator's config naming a tariff only root can read: the check as evterm fails
mkdir -p /etc/evterm
sed 's#/etc/evterm/tariff.json#/etc/evterm/root-only.json#' "$REPO/systemd/evterm.toml" \
  > /etc/evterm/evterm.toml
chmod 0644 /etc/evterm/evterm.toml
install -m 0600 "$REPO/hw_mocks/tariffs/de_dc_hpc_adhoc.json" /etc/evterm/root-only.json
bash "$REPO/systemd/install.sh" --skip-packages --wheelhouse "$WH" >"$O/run1" 2>&1
echo $? >"$O/rc1"
systemctl is-enabled evterm.service evterm-ui.service >"$O/enabled1" 2>&1

# 2. fixed, plus a key file copied with the wrong mode: the run installs and enables
sed -i 's#/etc/evterm/root-only.json#/etc/evterm/tariff.json#' /etc/evterm/evterm.toml
install -m 0644 /dev/null /etc/evterm/station.key
bash "$REPO/systemd/install.sh" --skip-packages --wheelhouse "$WH" >"$O/run2" 2>&1
echo $? >"$O/rc2"
systemctl is-enabled evterm.service evterm-ui.service >"$O/enabled2" 2>&1

# 3. what an operator does next, as docs/deployment.md says
cd /
PATH=/usr/local/bin:$PATH
{ readlink /usr/local/bin/evterm; command -v evterm; evterm --version; } >"$O/evterm" 2>&1
/opt/evterm/current/venv/bin/python -c 'import json, sys, terminal, hw_mocks.rig as r
print(json.dumps({"module": terminal.__file__, "path": sys.path,
                  "tariff": str(r.DEFAULT_TARIFF), "exists": r.DEFAULT_TARIFF.is_file()}))' \
  >"$O/probe" 2>&1
printf '2468\n' | runuser -u evterm -- evterm service set-pin --card 04AABBCCDDEEFF \
  --pins-file /var/lib/evterm/pins.json --pin-stdin >"$O/pin-evterm" 2>&1
echo $? >>"$O/pin-evterm"
printf '1357\n' | evterm service set-pin --card 04AABBCCDDEE00 \
  --pins-file /var/lib/evterm/pins.json --pin-stdin >"$O/pin-root" 2>&1
echo $? >>"$O/pin-root"
runuser -u evterm -- evterm config check /etc/evterm/evterm.toml >"$O/check" 2>&1
echo $? >>"$O/check"
for file in /etc/evterm/station.key /var/lib/evterm/pins.json /etc/evterm/evterm.toml; do
  runuser -u evterm-ui -- cat "$file" >/dev/null 2>&1 && echo "$file readable" \
    || echo "$file unreadable"
done >"$O/ui-reads"
stat -c '%n %U %G %a' /etc/evterm /etc/evterm/* /var/lib/evterm /var/lib/evterm/pins.json \
  /opt/evterm /opt/evterm/releases /opt/evterm/releases/* /opt/evterm/docs >"$O/stat"
{ readlink /opt/evterm/current; readlink /opt/evterm/venv; ls /opt/evterm/venv/bin/old-board
  ls /opt/evterm/current/.complete; } >"$O/links" 2>&1
{ id -nG evterm; id -nG evterm-ui; getent passwd evterm evterm-ui; } >"$O/users"
ls /etc/systemd/system /etc/systemd/system/multi-user.target.wants >"$O/units"

# 4. again: nothing to do but the upgrade of evterm itself
bash "$REPO/systemd/install.sh" --skip-packages --wheelhouse "$WH" >"$O/run3" 2>&1
echo $? >"$O/rc3"

# 5. --start on an upgrade while the daemon ($4: its socket) has a session open: a booted
# systemd as far as the script can tell (/run/systemd/system, a systemctl that logs)
mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system
mkdir -p "$T/fakebin"
printf '#!/bin/sh\necho "$*" >>"%s"\nexit 0\n' "$O/systemctl.log" >"$T/fakebin/systemctl"
chmod 0755 "$T/fakebin/systemctl"
sed -i "s#^socket_path = .*#socket_path = \"$4\"#" /etc/evterm/evterm.toml
PATH=$T/fakebin:$PATH bash "$REPO/systemd/install.sh" --skip-packages --wheelhouse "$WH" \
  --start --idle-timeout-s 3 >"$O/run4" 2>&1
echo $? >"$O/rc4"
cp "$O/systemctl.log" "$O/systemctl4.log"
touch "$O/busy-done"  # the test ends the session now
for _ in $(seq 1200); do [ -e "$O/idle-now" ] && break; sleep 0.1; done
PATH=$T/fakebin:$PATH bash "$REPO/systemd/install.sh" --skip-packages --wheelhouse "$WH" \
  --start --idle-timeout-s 60 >"$O/run5" 2>&1
echo $? >"$O/rc5"
exit 0
"""


def fields(text: str) -> dict[str, list[str]]:
    """`stat` lines: path -> [owner, group, mode]."""
    return {parts[0]: parts[1:] for parts in (line.split() for line in text.splitlines())}


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.unit.test_constraints import closure, pins, requirements

    folder = tmp_path_factory.mktemp("wheelhouse")
    house = folder / "wheels"
    house.mkdir()
    shutil.copy(shared_wheel(tmp_path_factory), house)
    board = pins("board.txt")
    for name in sorted(closure(requirements(("ui",)))):
        assert name in board, f"{name} is not pinned in constraints/board.txt"
        repack_installed(name, house)
    return house


def test_install_script_in_a_throwaway_root(wheelhouse, tmp_path, rig):
    if os.geteuid() != 0:
        pytest.fail("install.sh is tested as root in a private mount namespace; run as root")
    unshare = require_binary("unshare")
    require_binary("runuser")
    require_binary("systemctl")
    users_before = {entry.pw_name for entry in pwd.getpwall()}
    litter_before = repo_litter()
    opt_before = Path("/opt/evterm").exists()
    assert rig.api("start", id_token="TOKEN-A")["ok"]  # a session open during step 5
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=15)
    out = tmp_path / "out"
    scenario = subprocess.Popen(
        [unshare, "--mount", "--propagation", "private", "bash", "-c", SCENARIO, "scenario",
         str(tmp_path), str(REPO), str(wheelhouse), rig.socket_path],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"})
    deadline = time.monotonic() + 900
    while not (out / "busy-done").exists() and scenario.poll() is None:
        assert time.monotonic() < deadline, "install.sh runs 1 to 4 take over 900 s"
        time.sleep(0.2)
    phase = rig.state()["phase"]
    assert phase in ("Charging", "SuspendedEV", "Finishing"), phase  # still open
    if phase != "Finishing":
        assert rig.api("stop")["ok"]
    rig.ev("unplug")
    rig.wait_for("no session open", lambda: rig.state()["phase"] not in OPEN_PHASES)
    (out / "idle-now").touch()
    stdout, stderr = scenario.communicate(timeout=600)
    result = subprocess.CompletedProcess(scenario.args, scenario.returncode, stdout, stderr)

    def read(name: str) -> str:
        path = out / name
        return path.read_text(encoding="utf-8") if path.exists() else f"(no {name})"

    assert result.returncode == 0, result.stdout + result.stderr
    # nothing left on this machine
    assert {entry.pw_name for entry in pwd.getpwall()} == users_before
    assert Path("/opt/evterm").exists() == opt_before
    assert repo_litter() == litter_before

    # 1. the check runs as evterm and fails on a file only root can read: not enabled
    run1 = read("run1")
    assert read("rc1").strip() == "2", run1
    assert "does not check as the evterm user" in run1, run1
    assert "root-only.json" in run1, run1
    assert read("enabled1").split()[:2] == ["disabled", "disabled"], read("enabled1")

    # 2. installed, checked, enabled
    run2 = read("run2")
    assert read("rc2").strip() == "0", run2
    assert read("enabled2").split()[:2] == ["enabled", "enabled"], read("enabled2")
    assert "--upgrade pip" not in run1 + run2
    assert f"--no-index --find-links {wheelhouse}" in run2
    assert "runuser -u evterm -- /opt/evterm/current/venv/bin/evterm config check" in run2
    # the release layout; the old board's venv replaced by a link to the current one
    links = read("links").splitlines()
    assert links[:2] == ["releases/0.1.0", "current/venv"], links
    assert "No such file" in links[2] and links[3] == "/opt/evterm/current/.complete", links

    evterm = read("evterm").splitlines()
    assert evterm[:2] == ["/opt/evterm/current/venv/bin/evterm", "/usr/local/bin/evterm"], \
        evterm
    assert "0.1.0" in evterm[2], evterm
    probe = json.loads(read("probe"))
    assert probe["module"].startswith("/opt/evterm/current/venv/lib/"), probe
    assert probe["exists"] and probe["tariff"].startswith("/opt/evterm/current/venv/"), probe
    assert not [p for p in probe["path"] if p.startswith(str(REPO))], probe["path"]

    # set-pin works as the daemon's user and as root; the file stays the daemon's
    assert read("pin-evterm").splitlines()[-1] == "0", read("pin-evterm")
    assert read("pin-root").splitlines()[-1] == "0", read("pin-root")
    assert read("check").splitlines()[-1] == "0", read("check")
    stat = fields(read("stat"))
    assert stat["/var/lib/evterm/pins.json"] == ["evterm", "evterm", "600"], stat
    assert stat["/var/lib/evterm"] == ["evterm", "evterm", "700"], stat
    assert stat["/etc/evterm"] == ["root", "evterm", "750"], stat
    assert stat["/etc/evterm/tariff.json"] == ["root", "evterm", "640"], stat
    assert stat["/etc/evterm/station.key"][0] == "evterm", stat
    assert stat["/etc/evterm/station.key"][2] == "600", stat
    assert stat["/opt/evterm/releases/0.1.0"] == ["root", "root", "755"], stat
    pins_file = tmp_path / "upper" / "_var_lib" / "evterm" / "pins.json"
    technicians = json.loads(pins_file.read_text(encoding="utf-8"))["technicians"]
    assert sorted(technicians) == ["04AABBCCDDEE00", "04AABBCCDDEEFF"], technicians
    # the touchscreen's user (group evterm) reads neither keys nor PINs
    assert read("ui-reads").splitlines() == [
        "/etc/evterm/station.key unreadable", "/var/lib/evterm/pins.json unreadable",
        "/etc/evterm/evterm.toml readable"], read("ui-reads")

    users = read("users").splitlines()
    assert set(users[0].split()) == {"evterm", "dialout"}, users
    assert set(users[1].split()) == {"evterm-ui", "video", "render", "input", "evterm"}, users
    assert users[2].split(":")[5:] == ["/var/lib/evterm", "/usr/sbin/nologin"], users
    units = read("units")
    for unit in ("evterm.service", "evterm-ui.service", "evterm-update.service",
                 "evterm-update.path"):
        assert (REPO / "systemd" / unit).read_text(encoding="utf-8") == (
            tmp_path / "upper" / "_etc" / "systemd" / "system" / unit).read_text(
            encoding="utf-8")
        # the unit and its multi-user.target.wants link (the path unit: paths.target's)
        assert units.count(unit) == (1 if unit.endswith(".path") else 2), units

    # 3. again: idempotent, the operator's files left alone
    run3 = read("run3")
    assert read("rc3").strip() == "0", run3
    for kept in ("/etc/evterm/evterm.toml exists; left as it is",
                 "/var/lib/evterm/pins.json exists; left as it is",
                 "user evterm exists", "/opt/evterm/releases/0.1.0/venv exists"):
        assert kept in run3, kept

    # 4. --start while a session is open: waits, gives up after the timeout, no restart
    run4 = read("run4")
    assert read("rc4").strip() == "3", run4
    assert "a session is still open (" in run4 and "was not restarted" in run4, run4
    calls = read("systemctl4.log").splitlines()
    assert "is-active --quiet evterm.service" in calls, calls
    assert not [c for c in calls if c.startswith(("restart", "start", "stop"))], calls
    # 5. once the session has ended: restarted
    run5 = read("run5")
    assert read("rc5").strip() == "0", run5
    assert "idle: " in run5, run5
    calls = read("systemctl.log").splitlines()[len(calls):]
    assert calls[-1] == "restart evterm.service evterm-ui.service", calls


def wait_idle(rig, *args: str) -> subprocess.Popen[str]:
    import sys

    return subprocess.Popen([sys.executable, "-m", "terminal.cli", "service", "--socket",
                             rig.socket_path, "wait-idle", "--interval-s", "0.2", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)


def test_wait_idle_waits_until_no_session_is_open(rig):
    """What `install.sh --start` asks before restarting a running daemon."""
    idle = wait_idle(rig, "--timeout-s", "0")
    assert idle.wait(timeout=30) == 0, idle.communicate()
    assert idle.communicate()[0].strip() == "idle: Available, no session open"

    assert rig.api("start", id_token="TOKEN-A")["ok"]
    rig.wait_phase("Authorized")
    busy = wait_idle(rig, "--timeout-s", "1")
    assert busy.wait(timeout=30) == 1
    assert "a session is still open (Authorized) after 1 s" in busy.communicate()[1]

    waiting = wait_idle(rig, "--timeout-s", "60")
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=15)
    assert waiting.poll() is None  # still waiting while charging
    assert rig.api("stop")["ok"]
    rig.ev("unplug")
    assert waiting.wait(timeout=60) == 0, waiting.communicate()
    assert rig.state()["phase"] not in ("Charging", "Finishing")


def test_wait_idle_names_the_socket_it_cannot_reach(tmp_path):
    import sys

    result = subprocess.run([sys.executable, "-m", "terminal.cli", "service", "--socket",
                             str(tmp_path / "none.sock"), "wait-idle", "--timeout-s", "1"],
                            capture_output=True, text=True, timeout=30, cwd=REPO)
    assert result.returncode == 2
    assert f"cannot reach the daemon at {tmp_path / 'none.sock'}" in result.stderr
