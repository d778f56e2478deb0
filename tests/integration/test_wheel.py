"""evterm as an operator installs it: the wheel, in a fresh virtualenv outside the
repository, run from a folder that is not the checkout with PYTHONPATH unset.

The wheel is built from a copy of the checkout (tests/integration/packaging.py), installed
with `pip install --no-deps --no-index` (evterm comes from the wheel and nowhere else);
its dependencies are the test environment's own packages, reached through a .pth file
that adds that site-packages folder to sys.path (the .pth files there, such as an
editable install's import hook, are not run that way). Then `evterm meter read` against
the meter simulator and the headless demo run from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.demo_report import assert_report_matches_receipts
from tests.integration.packaging import REPO, built_once, shared_wheel

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    cwd: Path  # an empty folder outside the checkout
    env: dict[str, str]

    def run(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]],
                              capture_output=True, text=True, timeout=timeout_s,
                              cwd=self.cwd, env=self.env)


def _install(folder: Path, wheel: Path) -> str:
    """A fresh virtualenv in `folder/venv` with only evterm's wheel installed."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", purelib],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies: this environment's site-packages, appended after the venv's own
    (site / "_evterm_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n",
                                                encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return str(venv)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel installed in a fresh virtualenv, once per test run (shared by the xdist
    workers: the tests only run programs from it); each module its own empty folder to
    run them from."""
    wheel = shared_wheel(tmp_path_factory)  # asserts the build left the checkout clean
    venv = Path(built_once(tmp_path_factory, "evterm-wheel-venv",
                           lambda folder: _install(folder, wheel)))
    cwd = tmp_path_factory.mktemp("wheel") / "run"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Installed(wheel, venv, cwd, env)


def test_wheel_ships_the_package_data(installed):
    build_log = (installed.wheel.parents[1] / "build.log").read_text(encoding="utf-8")
    assert "Successfully built evterm" in build_log
    # every folder with data is a package of its own (no "would be ignored" warnings)
    assert "absent from the `packages` configuration" not in build_log
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    expected = {
        "hw_mocks/tariffs/de_dc_hpc_demo.json", "hw_mocks/tariffs/de_dc_hpc_adhoc.json",
        "drivers/meter/models/eastron_sdm630.toml", "drivers/meter/models/acrel_djsf1352.toml",
        "ui/locales/en.json", "ui/locales/de.json", "ui/evterm.kv",
    }
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "examples/"))]


def test_installed_evterm_comes_from_the_wheel_and_the_checkout_is_not_on_sys_path(installed):
    probe = (
        "import json, sys, importlib.metadata as md, terminal, drivers, ui, hw_mocks\n"
        "from hw_mocks.demo_stack import DEMO_TARIFF\n"
        "print(json.dumps({'path': sys.path, 'modules': [m.__file__ for m in "
        "(terminal, drivers, ui, hw_mocks)], 'tariff': str(DEMO_TARIFF), "
        "'dist': str(md.distribution('evterm').locate_file('terminal/__init__.py'))}))")
    result = installed.run("python", "-c", probe)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    venv = str(installed.venv)
    assert all(path.startswith(venv) for path in found["modules"]), found["modules"]
    assert found["tariff"].startswith(venv) and Path(found["tariff"]).is_file()
    assert found["dist"].startswith(venv)
    # "" is the cwd; the dependencies' site-packages (the test venv's, through a .pth
    # file, whose own .pth files, such as an editable evterm's, are not processed) may
    # sit inside the checkout
    deps = str(Path(sysconfig.get_paths()["purelib"]))
    assert not [p for p in found["path"] if p.startswith(str(REPO)) and p != deps], \
        found["path"]


def test_meter_read_against_the_simulator_from_the_installed_wheel(installed):
    from hw_mocks.ports import free_port
    from hw_mocks.rig import wait_ready

    port = free_port()
    sim = subprocess.Popen([str(installed.venv / "bin" / "evterm"), "sim", "meter", "--model",
                            "eastron_sdm630", "--tcp", f"127.0.0.1:{port}",
                            "--start-energy-wh", "12345"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=installed.cwd, env=installed.env)
    try:
        wait_ready(sim, "meter simulator (installed wheel)")
        result = installed.run("evterm", "meter", "read", "--model", "eastron_sdm630",
                               "--url", f"tcp://127.0.0.1:{port}")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr
    reading = json.loads(result.stdout)
    assert reading["energy_import_wh"] >= 12345, reading


def test_headless_demo_runs_from_the_installed_wheel(installed, tmp_path):
    """The whole demo (broker, pcscd, backend, station, daemon, touchscreen on Xvfb) from
    the wheel: it needs the example tariffs and the UI's data as package data. At twice
    the demo's default clock speed: what is tested is the package, not the pace."""
    result = installed.run("evterm", "demo", "--headless", "--speed", "60",
                           "--folder", str(tmp_path / "demo"),
                           "--screenshots", str(tmp_path / "shots"), "--languages", "en",
                           timeout_s=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "== Receipt" in result.stdout, output[-4000:]
    # the demo's signing meter (the LEM simulator, from the wheel): signed values checked
    assert "OCMF pair verifies" in result.stdout, output[-4000:]
    assert "NOT verify" not in result.stdout, output[-4000:]
    assert "== Transparency QR of the last receipt" in result.stdout, output[-4000:]
    assert list((tmp_path / "shots").glob("*.png")), "no screenshots"
    # the demo ends with the report of its own sessions: the totals of its receipts
    assert_report_matches_receipts(result.stdout,
                                   tmp_path / "demo" / "rig" / "state" / "evterm.db")
