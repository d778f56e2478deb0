"""Build evterm's wheel the way a release does, without touching the checkout.

`build_wheel(folder)` copies the working tree (no .git, venvs, caches, build output) into
`folder/src` and runs `pip wheel --no-deps` on the copy, so build/ and *.egg-info land in
the copy, never in the repository. `repo_litter()` lists build output in the checkout, for
tests to assert it stays empty. `shared_wheel(tmp_path_factory)`: that wheel built once per
test run and shared by the tests (and pytest-xdist workers) that install it;
`built_once(tmp_path_factory, name, build)` runs any such build once per run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOT_SOURCE = (".git", ".venv", "var", "__pycache__", "build", "dist", "*.egg-info",
              ".ruff_cache", ".pytest_cache", ".hypothesis", "*.pyc")


def repo_litter() -> list[str]:
    """Build output in the checkout (what a build inside it would leave behind)."""
    return sorted(str(p.relative_to(REPO)) for pattern in ("build", "dist", "*.egg-info")
                  for p in REPO.glob(pattern))


def build_wheel(folder: Path) -> Path:
    """evterm's wheel, built from a copy of the checkout into `folder/dist`; what the build
    said in `folder/build.log`."""
    source = folder / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = folder / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--verbose", "--wheel-dir",
         str(dist), str(source)],
        capture_output=True, text=True, timeout=300, cwd=folder)
    (folder / "build.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    wheels = sorted(dist.glob("evterm-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise AssertionError(f"pip wheel failed (exit {result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wheels[0]


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test run's temporary folder, the same for every pytest-xdist worker."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # popen-gwN's parent: the run's folder
    return root


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], str]) -> str:
    """`build(folder)` run once per test run (and xdist workers): the first caller runs
    it in the run's folder `name` under a lock, later callers wait for it and get what it
    returned (a string); a build that raised is tried again by the next caller."""
    root = run_folder(tmp_path_factory)
    folder = root / name
    with open(root / f"{name}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / f"{name}.done"
        if done.exists():
            return done.read_text(encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        result = build(folder)
        done.write_text(result, encoding="utf-8")
        return result


def _checked_build(folder: Path) -> str:
    litter_before = repo_litter()
    wheel = build_wheel(folder)
    assert repo_litter() == litter_before, "the build left output in the checkout"
    return str(wheel)


def shared_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """evterm's wheel (build_wheel), built once per test run (built_once), asserting the
    build left nothing in the checkout; its output next to it
    (`wheel.parents[1] / "build.log"`)."""
    return Path(built_once(tmp_path_factory, "evterm-wheel", _checked_build))


def repack_installed(name: str, folder: Path) -> Path:
    """A wheel of the installed distribution `name`, made from its files in this
    environment (RECORD) and its WHEEL tags: an offline wheelhouse of the exact versions
    the tests run with. Files outside site-packages (scripts; pip makes them again from
    entry_points.txt) and byte code are left out."""
    import base64
    import hashlib
    import importlib.metadata as md
    import zipfile

    dist = md.distribution(name)
    info = next(f for f in dist.files or [] if f.name == "WHEEL" and
                f.parent.name.endswith(".dist-info"))
    info_dir = info.parent.as_posix()
    tags = [line.split(":", 1)[1].strip().split("-") for line in
            dist.locate_file(info).read_text(encoding="utf-8").splitlines()
            if line.startswith("Tag:")]
    # the compressed tag set of the file name: py2.py3-none-any
    tag = "-".join(".".join(sorted({t[i] for t in tags})) for i in range(3))
    stem = dist.metadata["Name"].replace("-", "_").replace(".", "_")
    wheel = folder / f"{stem}-{dist.version}-{tag}.whl"
    record: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for entry in dist.files or []:
            posix = entry.as_posix()
            if posix.startswith("..") or "__pycache__" in posix or posix.endswith(".pyc") or \
                    posix in (f"{info_dir}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED",
                                                          "direct_url.json")):
                continue
            data = Path(dist.locate_file(entry)).read_bytes()
            archive.writestr(posix, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{posix},sha256={digest.decode()},{len(data)}")
        record.append(f"{info_dir}/RECORD,,")
        archive.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")
    return wheel
