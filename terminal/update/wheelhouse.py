"""A release's wheels and its tar: evterm's wheel, the locked dependency wheelhouse, and
`evterm-<version>.tar` (release.json + wheels/).

- `build_evterm_wheel(source, out_dir)`: `pip wheel --no-deps` of a copy of the checkout
  (build/ and *.egg-info land in the copy, never in the checkout);
- `build_dependencies(evterm_wheel, constraints, out_dir)`: `pip wheel -c
  constraints/board.txt` of evterm's wheel with its `ui` extra, from the package index:
  every package of the board's venv at its pin;
- `missing_pins(wheels, constraints)`: the pins a given wheelhouse lacks;
- `pack_release(version, wheels, tar_path)`: the tar with release.json.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from terminal.update.manifest import MANIFEST_NAME, WHEELS_DIR, ReleaseManifest

NOT_SOURCE = (".git", ".venv", "var", "__pycache__", "build", "dist", "*.egg-info",
              ".ruff_cache", ".pytest_cache", ".hypothesis", "*.pyc")
PIP_TIMEOUT_S = 1800
BUILD_TOOLS = ("setuptools", "wheel", "pip")


class BuildFailed(RuntimeError):
    """pip could not build a wheel (its output's tail is in the message)."""


def checkout() -> Path:
    """The source tree this evterm runs from (where setup.cfg is)."""
    return Path(__file__).resolve().parents[2]


def wheel_version(wheel: Path) -> str:
    """The version in a wheel's file name (name-version-tags.whl)."""
    return wheel.name.split("-")[1]


def _pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True,
                            text=True, timeout=PIP_TIMEOUT_S)
    if result.returncode != 0:
        raise BuildFailed(f"pip {args[0]} failed (exit {result.returncode}):\n"
                          f"{(result.stdout + result.stderr)[-3000:]}")


def build_evterm_wheel(source: Path, out_dir: Path) -> Path:
    if not (source / "setup.cfg").is_file():
        raise BuildFailed(f"{source}: no setup.cfg, not an evterm checkout")
    with tempfile.TemporaryDirectory(prefix="evterm-release-") as scratch:
        copy = Path(scratch) / "src"
        shutil.copytree(source, copy, symlinks=True,
                        ignore=shutil.ignore_patterns(*NOT_SOURCE))
        dist = Path(scratch) / "dist"
        _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(copy))
        wheels = sorted(dist.glob("evterm-*.whl"))
        if len(wheels) != 1:
            raise BuildFailed(f"pip wheel made {len(wheels)} evterm wheels, not one")
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheels[0], out_dir / wheels[0].name))


def build_dependencies(evterm_wheel: Path, constraints: Path, out_dir: Path) -> list[Path]:
    """Every wheel evterm[ui] needs at the pins of `constraints`, into out_dir."""
    if not constraints.is_file():
        raise BuildFailed(f"no constraints file {constraints}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _pip("wheel", "--quiet", "--wheel-dir", str(out_dir), "--constraint", str(constraints),
         f"{evterm_wheel}[ui]")
    return sorted(out_dir.glob("*.whl"))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_pins(wheels: list[Path], constraints: Path) -> list[str]:
    """`name==version` pins of `constraints` without a wheel of that version (the build
    tools setuptools and wheel aside: the board does not install them from a release)."""
    try:
        lines = constraints.read_text(encoding="utf-8").splitlines()
    except OSError:
        return [f"(no constraints file {constraints})"]
    have = {(_canonical(w.name.split("-")[0]), w.name.split("-")[1]) for w in wheels}
    missing: list[str] = []
    for line in lines:
        pin = line.split("#", 1)[0].strip()
        if "==" in pin:
            name, version = (part.strip() for part in pin.split("==", 1))
            if _canonical(name) not in BUILD_TOOLS and (_canonical(name), version) not in have:
                missing.append(pin)
    return missing


def pack_release(version: str, wheels: list[Path], tar_path: Path) -> ReleaseManifest:
    """The release tar: release.json and wheels/ (sorted, no owners or times, so the same
    wheels make the same tar)."""
    names = sorted({wheel.name for wheel in wheels})
    if len(names) != len(wheels):
        raise BuildFailed("two wheels of the same file name")
    manifest = ReleaseManifest(version=version, wheels=tuple(names))

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))

    by_name = {wheel.name: wheel for wheel in wheels}
    temporary = tar_path.with_name(tar_path.name + ".new")
    with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, MANIFEST_NAME,
            (json.dumps(manifest.to_json(), indent=2) + "\n").encode("utf-8"))
        for name in names:
            add(tar, f"{WHEELS_DIR}/{name}", by_name[name].read_bytes())
    temporary.replace(tar_path)
    return manifest
