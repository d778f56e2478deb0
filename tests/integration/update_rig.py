"""The board's update as real processes, for tests/integration/test_update_board.py and
bench/bench_update.py.

- `UpdateKit.build(folder)` (once per test session): evterm's wheel built from a copy of
  the checkout, wheels of its dependencies (and pip) repacked from this environment
  (tests/integration/packaging.py: no index); a TUF repository made by `evterm release
  init` and `evterm release add` (as processes; keys made here, never committed) with a
  good release and a broken one (its daemon exits at start), served by a real HTTP
  server (`python -m http.server`, its own process); and ONE installed release of the
  checkout's version, made by the updater's own `install_release`, that every board
  links as its releases/0.1.0 (a release venv costs seconds; each test installs only the
  release it updates to, the real way: a venv without pip, pip offline from the tar).
- `Board(kit, folder)`: an /opt/evterm-like root (`[update] root_dir`), the station
  simulator and the loopback backend simulator, and `tests/integration/update_supervisor.py`
  as systemd: it runs the daemon from current/venv (restarting it whenever it exits) and
  runs the updater at its start (boot) and when a request file appears (the path unit).
  `power_loss()` kills the supervisor, the daemon and the updater at once (their process
  group); `boot()` starts the supervisor again.
- Each board trusts the repository's root.json (copied into its update/metadata, as an
  installation does). The updater runs through `update_runner.py`: the real `evterm
  update run` (the real `fetch_release`, python-tuf) with kill points read from the
  board's `kill_at` file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw_mocks.backend_process import BackendProcess
from hw_mocks.ports import free_port
from hw_mocks.rig import Rig, RigError
from terminal import __version__
from terminal.update.install import InstallSettings, install_release
from terminal.update.journal import Journal, JournalState
from terminal.update.layout import Layout
from tests.integration.packaging import REPO, build_wheel, repack_installed

GOOD = "0.1.1"
BROKEN = "0.1.2"
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")
BROKEN_PATCH = ("terminal/daemon_cli.py", "def run_daemon_command(args: argparse.Namespace) "
                "-> int:\n", "def run_daemon_command(args: argparse.Namespace) -> int:\n"
                "    raise SystemExit(1)  # a broken release (tests)\n")


def dependencies(wheel: Path) -> list[str]:
    """The installed distributions evterm's wheel needs: its Requires-Dist (read from the
    wheel, not from this environment's evterm, which may be older) and theirs."""
    import email
    import importlib.metadata as md

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = email.message_from_bytes(archive.read(name)).get_all("Requires-Dist") or []
    seen: set[str] = set()

    def walk(texts: list[str], extras: tuple[str, ...]) -> None:
        for text in texts:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({"extra": e})
                                      for e in (extras or ("",))):
                continue
            key = req.name.lower().replace("_", "-")
            if key not in seen:
                seen.add(key)
                walk(md.distribution(req.name).requires or [], tuple(req.extras))

    walk(requires, ())
    return sorted(seen)


def rewheel(wheel: Path, version: str, folder: Path,
            patch: tuple[str, str, str] | None = None) -> Path:
    """evterm's wheel again as `version` (and one file's text replaced), RECORD rewritten."""
    old_info = f"evterm-{__version__}.dist-info/"
    new_info = f"evterm-{version}.dist-info/"
    target = folder / f"evterm-{version}-py3-none-any.whl"
    record: list[str] = []
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            name = item.filename
            if name == old_info + "RECORD":
                continue
            data = src.read(item)
            if name == "terminal/__init__.py":
                data = data.replace(f'__version__ = "{__version__}"'.encode(),
                                    f'__version__ = "{version}"'.encode())
            if name == old_info + "METADATA":
                data = re.sub(rb"(?m)^Version: .*$", f"Version: {version}".encode(), data)
            if patch is not None and name == patch[0]:
                assert patch[1].encode() in data, f"{patch[0]} has no {patch[1]!r}"
                data = data.replace(patch[1].encode(), patch[2].encode())
            name = name.replace(old_info, new_info)
            out.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append(f"{new_info}RECORD,,")
        out.writestr(new_info + "RECORD", "\n".join(record) + "\n")
    return target


def evterm_cli(*args: str) -> str:
    """`evterm ...` as its own process, importing this checkout; its stdout."""
    result = subprocess.run([sys.executable, "-m", "terminal.cli", *args], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def target_of(repository: Path, version: str) -> Path:
    """The release's target file in the repository (served under its hash)."""
    (found,) = (repository / "targets").glob(f"*.evterm-{version}.tar")
    return found


def release_tar(version: str, evterm_wheel: Path, deps: list[Path], folder: Path) -> Path:
    """evterm-V.tar (release.json, wheels/), the release format, for the base release."""
    tar_path = folder / f"evterm-{version}.tar"
    meta = {"version": version, "python": "3.11", "requirement": f"evterm=={version}",
            "wheels": sorted([evterm_wheel.name, *(d.name for d in deps)])}
    with tarfile.open(tar_path, "w") as archive:
        data = json.dumps(meta, indent=2).encode()
        info = tarfile.TarInfo("release.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        for wheel in (evterm_wheel, *deps):
            archive.add(wheel, f"wheels/{wheel.name}")
    return tar_path


@dataclass
class UpdateKit:
    folder: Path
    repository: Path
    base_release: Path  # releases/<checkout version> of every board
    server: subprocess.Popen[bytes]
    url: str

    @classmethod
    def build(cls, folder: Path) -> UpdateKit:
        wheels = folder / "wheels"
        wheels.mkdir(parents=True)
        built = build_wheel(folder / "build")
        deps = [repack_installed(name, wheels) for name in [*dependencies(built), "pip"]]
        repository, keys = folder / "repository", folder / "keys"
        base_tar = release_tar(__version__, built, deps, folder)
        evterm_cli("release", "init", "--repo", str(repository), "--keys", str(keys))
        for version, patch in ((GOOD, None), (BROKEN, BROKEN_PATCH)):
            rewheel(built, version, wheels, patch)
            evterm_cli("release", "add", "--repo", str(repository), "--keys", str(keys),
                       "--version", version, "--wheelhouse", str(wheels))
        layout = Layout(folder / "base")
        install_release(base_tar, layout, __version__, InstallSettings(BASE_PYTHON, False),
                        lambda name: None)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
             str(repository), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return cls(folder, repository, layout.release_dir(__version__), server,
                   f"http://127.0.0.1:{port}")

    def close(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=10)


@dataclass
class Board:
    kit: UpdateKit
    folder: Path
    health_timeout_s: float = 30.0  # generous: a loaded CI machine starts daemons slowly
    backend: bool = True
    supervisor: subprocess.Popen[bytes] | None = None
    sim: BackendProcess | None = None
    rig: Rig = field(init=False)
    asked_reports: int = field(default=0, init=False)
    """The journal's reports when the last request was written (`wait_done` waits for
    more: the updater deletes the request file a moment before it journals it)."""

    def __post_init__(self) -> None:
        self.root = self.folder / "opt"
        self.layout = Layout(self.root)
        self.layout.releases.mkdir(parents=True)
        os.symlink(self.kit.base_release, self.layout.release_dir(__version__))
        self.layout.switch(__version__)
        self.layout.metadata.mkdir(parents=True)  # the operator's root, as installed
        shutil.copyfile(self.kit.repository / "metadata" / "root.json",
                        self.layout.metadata / "root.json")
        self.pid_file = self.folder / "daemon.pid"
        self.kill_file = self.folder / "kill_at"
        restart = f"/bin/sh -c 'kill -TERM \"$(cat {self.pid_file})\"'"
        # the car charges at full power for as long as a test runs (a slow machine's
        # install must not see it finish)
        self.rig = Rig(self.folder / "rig", curve={
            "max_power_w": 150_000, "ramp_s": 10, "constant_s": 1_000_000, "taper_s": 240,
            "taper_end_power_w": 20_000}, extra={
            "backend": {"kind": "loopback", "socket_path": str(self.folder / "backend.sock")},
            "update": {"root_dir": str(self.root), "python": BASE_PYTHON,
                       "compile_bytecode": False, "restart_command": restart,
                       "health_timeout_s": self.health_timeout_s, "idle_poll_s": 0.2}})
        self.rig.write_config()
        self.state_dir = self.rig.folder / "state"
        self.request_path = self.state_dir / "update-request.json"

    def set_health_timeout(self, timeout_s: float) -> None:
        """The next updater run reads it (the daemon ignores [update])."""
        self.rig.extra["update"]["health_timeout_s"] = timeout_s
        self.rig.write_config()

    def start(self) -> None:
        if self.backend:
            self.sim = BackendProcess(self.folder / "sim")
            self.sim.start("--socket", str(self.folder / "backend.sock"))
        self.rig.start_station()
        self.boot()
        self.wait_version(__version__)

    def boot(self) -> None:
        """The board powers up: systemd (the supervisor) starts the daemon and the updater."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["EVTERM_TEST_PYTHONPATH"] = os.environ.get("PYTHONPATH", str(REPO))
        log = (self.folder / "supervisor.log").open("ab")
        self.supervisor = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("update_supervisor.py")),
             "--root", str(self.root), "--config", str(self.rig.config_path),
             "--state-dir", str(self.state_dir), "--folder", str(self.folder),
             *self.rig.clock_args], stdout=log, stderr=log, env=env,
            start_new_session=True)
        log.close()

    def power_loss(self) -> None:
        assert self.supervisor is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.supervisor.pid, signal.SIGKILL)
        self.supervisor.wait(timeout=10)

    def wait_power_loss(self, timeout_s: float = 60.0) -> None:
        """Until the updater has cut the power (a kill point of mode `all`)."""
        assert self.supervisor is not None
        try:
            self.supervisor.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RigError(f"no power loss within {timeout_s} s:\n{self.logs()}") from None
        self.power_loss()  # whatever is left of the group

    def close(self) -> None:
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.power_loss()
        self.rig.close()
        if self.sim is not None:
            self.sim.close()

    # ---- looking at it ---------------------------------------------------------------------

    def journal(self) -> JournalState:
        return Journal(self.layout.journal_path).load()

    def statuses(self) -> list[str]:
        return [str(r["status"]) for r in self.journal().reports]

    def logs(self) -> str:
        parts = []
        for name in ("supervisor.log", "updater.log", "daemon.log"):
            path = self.folder / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-2500:])
        return "\n".join(parts)

    def wait_for(self, what: str, predicate: Any, timeout_s: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                found = predicate()
            except (OSError, RigError, ValueError, KeyError):
                found = None
            if found:
                return found
            time.sleep(0.1)
        raise RigError(f"timed out after {timeout_s} s waiting for {what}; journal "
                       f"{self.statuses()}\n{self.logs()}")

    def wait_version(self, version: str, timeout_s: float = 60.0) -> dict[str, Any]:
        return dict(self.wait_for(f"the daemon at version {version}", lambda: (
            (s := self.rig.state()).get("version") == version and s), timeout_s))

    def wait_done(self, final: str, timeout_s: float = 90.0) -> list[str]:
        """The statuses once the journal is idle after a request (RigError at once when
        the last report is not `final`)."""
        def ended() -> list[str] | None:
            journal = self.journal()
            if journal.step.value != "idle" or len(journal.reports) <= self.asked_reports \
                    or self.request_path.exists():
                return None
            statuses = [str(r["status"]) for r in journal.reports]
            if statuses[-1] != final:
                raise AssertionError(f"the update ended with {statuses}, not {final}:\n"
                                     f"{self.logs()}")
            return statuses
        return list(self.wait_for(f"the update to end with {final}", ended, timeout_s))

    def outbox_statuses(self) -> list[str]:
        """The firmware_status events the daemon queued for the backend, in order."""
        conn = sqlite3.connect(f"file:{self.state_dir / 'evterm.db'}?mode=ro", uri=True,
                               timeout=5)
        try:
            rows = conn.execute("SELECT payload FROM outbox WHERE kind = 'firmware_status' "
                                "ORDER BY id").fetchall()
        finally:
            conn.close()
        return [json.loads(row[0])["status"] for row in rows]


def short_folder(prefix: str) -> Path:
    """A short temporary folder: Unix socket paths stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
