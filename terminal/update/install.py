"""A release installed into its own folder, offline (docs/updates.md, "Installing").

`install_release(tar, layout, version, settings, checkpoint)`:
1. releases/VERSION is deleted if it exists (a half-built folder of an earlier try;
   never the running release) and made again;
2. the tar is unpacked into releases/VERSION/dist (tarfile's "data" filter: no absolute
   paths, no links out, no devices); its release.json must name VERSION and the
   requirement `evterm==VERSION`;
3. a virtualenv without pip (`[update] python -m venv --without-pip`), then pip (the
   updater's own) installs the requirement into it with `--no-index --find-links
   dist/wheels` (no network, no pip configuration of the machine), and pip itself from
   the wheelhouse when it has pip's wheel, else from the interpreter's `ensurepip`
   (slower), so the new release can install the next one;
4. `venv/bin/evterm --version` must say VERSION;
5. `.complete` is written last.

On failure: `InstallError` with what failed (the last lines of pip's output); the
caller deletes the folder and reports InstallationFailed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from terminal.update.layout import COMPLETE, Layout, LayoutError

INSTALL_TIMEOUT_S = 900.0


class InstallError(RuntimeError):
    pass


@dataclass(frozen=True)
class InstallSettings:
    python: str
    compile_bytecode: bool


def _run(command: list[str], what: str) -> str:
    # the new release runs its own code: no PYTHONPATH/PYTHONHOME of the caller
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what}: {exc}") from None
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise InstallError(f"{what} failed (exit {result.returncode}): " + " | ".join(tail))
    return result.stdout


def read_release(dist: Path, version: str) -> tuple[Path, str]:
    """(the wheels folder, the requirement) of an unpacked release."""
    found = sorted(dist.glob("release.json")) + sorted(dist.glob("*/release.json"))
    if not found:
        raise InstallError("the release has no release.json")
    try:
        meta = json.loads(found[0].read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InstallError(f"release.json: {exc}") from None
    if not isinstance(meta, dict) or meta.get("version") != version:
        raise InstallError(f"release.json names version {meta.get('version')!r}, "
                           f"not {version!r}" if isinstance(meta, dict) else
                           "release.json is not an object")
    requirement = meta.get("requirement")
    if requirement != f"evterm=={version}":
        raise InstallError(f"release.json: requirement {requirement!r}, expected "
                           f"'evterm=={version}'")
    wheels = found[0].parent / "wheels"
    if not wheels.is_dir():
        raise InstallError("the release has no wheels/ folder")
    return wheels, requirement


def install_release(tar: Path, layout: Layout, version: str, settings: InstallSettings,
                    checkpoint: Callable[[str], None]) -> None:
    if version == layout.current_version():
        raise LayoutError(f"release {version} is the running one")
    target = layout.release_dir(version)
    shutil.rmtree(target, ignore_errors=True)
    dist = target / "dist"
    dist.mkdir(parents=True)
    try:
        with tarfile.open(tar) as archive:
            archive.extractall(dist, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise InstallError(f"{tar.name}: cannot unpack it ({exc})") from None
    wheels, requirement = read_release(dist, version)
    venv = target / "venv"
    _run([settings.python, "-m", "venv", "--without-pip", str(venv)], "python -m venv")
    wanted = [requirement]
    if any(wheels.glob("pip-*.whl")):
        wanted.append("pip")
    else:
        _run([str(venv / "bin" / "python"), "-m", "ensurepip", "--default-pip"],
             "ensurepip (the release has no pip wheel)")
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
          "--quiet", "--no-index", "--find-links", str(wheels), "--no-warn-script-location",
          *([] if settings.compile_bytecode else ["--no-compile"]), *wanted], "pip install")
    checkpoint("installing:pip")
    said = _run([str(venv / "bin" / "evterm"), "--version"], "evterm --version").strip()
    if said != f"evterm {version}":
        raise InstallError(f"the installed evterm says {said!r}, not 'evterm {version}'")
    marker = target / COMPLETE
    marker.write_text(version + "\n", encoding="utf-8")
    with marker.open("rb") as handle:
        os.fsync(handle.fileno())
