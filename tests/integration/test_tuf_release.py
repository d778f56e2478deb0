"""Signed releases end to end: `evterm release` run as a process makes a TUF repository,
`python -m http.server` (its own process, on a free loopback port) serves it, and
`fetch_release` (python-tuf's ngclient) fetches and verifies releases from it, as a
board does. The attacks: a tampered target, an expired timestamp, metadata rolled back,
a release older than the installed one, too few signatures; and an unreachable server,
a USB folder. Keys are made by the tests (`evterm release init`), never committed.

The small wheelhouse: evterm's real wheel (built from a copy of this checkout, at two
versions) and two real dependency wheels; `test_full_wheelhouse_installs_offline` builds
the whole locked wheelhouse once, from the package index with the pins of
constraints/board.txt, and resolves `evterm==V` from it with `pip --no-index`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, MetaFile, Timestamp
from tuf.api.serialization.json import JSONSerializer

from hw_mocks.ports import free_port
from terminal.update import keys
from terminal.update.fetch import (
    ExpiredMetadata,
    InvalidSignature,
    NoSuchRelease,
    RepositoryUnreachable,
    RollbackAttack,
    TrustedRootMissing,
    fetch_release,
)
from terminal.update.manifest import read_manifest
from terminal.update.repository import expires_in
from terminal.update.wheelhouse import NOT_SOURCE, build_evterm_wheel, missing_pins
from tests.integration.packaging import REPO, repack_installed

pytestmark = pytest.mark.integration
V1, V2 = "0.1.0", "0.2.0"


def evterm(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """`evterm ...` as its own process, importing this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "terminal.cli", *args], capture_output=True,
                            text=True, timeout=300, env=env)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def source_at(version: str, folder: Path) -> Path:
    """A copy of this checkout whose evterm version is `version`."""
    source = folder / f"src-{version}"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    init = source / "terminal" / "__init__.py"
    init.write_text(f'__version__ = "{version}"\n', encoding="utf-8")
    return source


def rewheel(wheel: Path, version: str, folder: Path) -> Path:
    """evterm's wheel as it would be built at `version`: the dist-info folder, METADATA's
    Version, terminal/__init__.py and RECORD changed (one pip build is enough)."""
    old = wheel.name.split("-")[1]
    renamed = folder / wheel.name.replace(f"-{old}-", f"-{version}-")
    record: list[str] = []
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(renamed, "w") as target:
        for item in source.infolist():
            name = item.filename.replace(f"evterm-{old}.dist-info", f"evterm-{version}"
                                         ".dist-info")
            data = source.read(item)
            if name.endswith("/RECORD"):
                record_name = name
                continue
            if name.endswith(".dist-info/METADATA") or name == "terminal/__init__.py":
                data = data.replace(old.encode(), version.encode())
            target.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append(f"{record_name},,")
        target.writestr(record_name, "\n".join(record) + "\n")
    return renamed


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """evterm's wheel at V1 (built from this checkout) and V2, two real dependencies."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    built = build_evterm_wheel(source_at(V1, tmp_path_factory.mktemp("sources")), folder)
    rewheel(built, V2, folder)
    for name in ("six", "defusedxml"):
        repack_installed(name, folder)
    return folder


@dataclass
class Served:
    repo: Path
    keys: Path
    url: str


def wait_listening(port: int, proc: subprocess.Popen, deadline_s: float = 15.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"http.server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"http.server did not listen on {port}")


@pytest.fixture
def serve() -> Iterator:
    procs: list[subprocess.Popen] = []

    def start(repo: Path) -> str:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                                 "127.0.0.1", "--directory", str(repo)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_listening(port, proc)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def make_repo(folder: Path, wheelhouse: Path, *init_args: str) -> tuple[Path, Path]:
    repo, keys_dir = folder / "repo", folder / "keys"
    evterm("release", "init", "--repo", str(repo), "--keys", str(keys_dir), *init_args)
    evterm("release", "add", "--repo", str(repo), "--keys", str(keys_dir), "--version", V1,
           "--wheelhouse", str(wheelhouse))
    return repo, keys_dir


def board(folder: Path, repo: Path) -> tuple[Path, Path]:
    """A board's metadata folder with the operator's root.json, and its download folder."""
    metadata = folder / "board" / "metadata"
    metadata.mkdir(parents=True)
    shutil.copyfile(repo / "metadata" / "root.json", metadata / "root.json")
    return metadata, folder / "board" / "downloads"


def test_good_release_fetches_over_http_and_holds_the_wheels(tmp_path, wheelhouse, serve):
    repo, keys_dir = tmp_path / "repo", tmp_path / "keys"
    evterm("release", "init", "--repo", str(repo), "--keys", str(keys_dir))
    added = evterm("release", "add", "--repo", str(repo), "--keys", str(keys_dir),
                   "--version", V1, "--wheelhouse", str(wheelhouse))
    # the small test wheelhouse lacks most pins: the operator is told which
    assert "lacks wheels of pinned packages (pymodbus==" in added.stderr
    assert "six==" not in added.stderr and "setuptools" not in added.stderr
    assert {p.stat().st_mode & 0o777 for p in keys_dir.iterdir()} == {0o600}
    assert keys_dir.stat().st_mode & 0o777 == 0o700
    url = serve(repo)
    metadata, downloads = board(tmp_path, repo)
    tar = fetch_release(url, V1, metadata, downloads, installed_version="0.0.9")
    assert tar == downloads / "evterm-0.1.0.tar"
    manifest = read_manifest(tar)
    assert manifest.version == V1 and manifest.requirement == "evterm==0.1.0"
    assert manifest.python == "3.11"
    with tarfile.open(tar) as archive:
        names = set(archive.getnames())
        release = json.loads(archive.extractfile("release.json").read())
    wheels = {n.removeprefix("wheels/") for n in names if n.startswith("wheels/")}
    assert wheels == set(manifest.wheels) == set(release["wheels"])
    assert "evterm-0.1.0-py3-none-any.whl" in wheels
    assert not any(w.startswith("evterm-0.2.0") for w in wheels)
    assert {w.split("-")[0] for w in wheels} == {"evterm", "six", "defusedxml"}
    # the target is served under its hash (consistent snapshots) and signed with custom
    targets = json.loads((repo / "metadata" / "2.targets.json").read_text())
    info = targets["signed"]["targets"]["evterm-0.1.0.tar"]
    assert info["custom"] == {"version": V1}
    assert (repo / "targets" / f"{info['hashes']['sha256']}.evterm-0.1.0.tar").is_file()
    # the same version again is refused: releases are never replaced
    again = evterm("release", "add", "--repo", str(repo), "--keys", str(keys_dir),
                   "--version", V1, "--wheelhouse", str(wheelhouse), ok=False)
    assert again.returncode == 2 and "already" in again.stderr
    with pytest.raises(NoSuchRelease, match=r"no release 0\.3\.0"):
        fetch_release(url, "0.3.0", metadata, downloads)


def test_tampered_target_is_an_invalid_signature(tmp_path, wheelhouse, serve):
    repo, _ = make_repo(tmp_path, wheelhouse)
    (target,) = (repo / "targets").glob("*.evterm-0.1.0.tar")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one byte changed
    target.write_bytes(bytes(data))
    metadata, downloads = board(tmp_path, repo)
    with pytest.raises(InvalidSignature, match="tampered"):
        fetch_release(serve(repo), V1, metadata, downloads)
    assert not (downloads / "evterm-0.1.0.tar").exists()


def test_expired_timestamp_is_refused(tmp_path, wheelhouse, serve):
    repo, keys_dir = make_repo(tmp_path, wheelhouse)
    evterm("release", "timestamp", "--repo", str(repo), "--keys", str(keys_dir),
           "--expiry-days", "0")
    metadata, downloads = board(tmp_path, repo)
    with pytest.raises(ExpiredMetadata, match="timestamp"):
        fetch_release(serve(repo), V1, metadata, downloads)
    # the operator's cron job signs a fresh one and the board fetches again
    evterm("release", "timestamp", "--repo", str(repo), "--keys", str(keys_dir))
    assert fetch_release(serve(repo), V1, metadata, downloads).is_file()


def test_rolled_back_metadata_and_older_releases_are_rollback_attacks(tmp_path, wheelhouse,
                                                                      serve):
    repo, keys_dir = make_repo(tmp_path, wheelhouse)
    url = serve(repo)
    metadata, downloads = board(tmp_path, repo)
    fetch_release(url, V1, metadata, downloads)
    old_timestamp = (repo / "metadata" / "timestamp.json").read_bytes()
    evterm("release", "add", "--repo", str(repo), "--keys", str(keys_dir), "--version", V2,
           "--wheelhouse", str(wheelhouse))
    tar = fetch_release(url, V2, metadata, downloads, installed_version=V1)
    assert read_manifest(tar).version == V2
    # a mirror serves the older timestamp (and so the older snapshot) after the newer one
    (repo / "metadata" / "timestamp.json").write_bytes(old_timestamp)
    with pytest.raises(RollbackAttack, match="older than the trusted"):
        fetch_release(url, V2, metadata, downloads)
    # a newer timestamp signed with the (compromised) online key pointing at the old snapshot
    md = Metadata.from_bytes(old_timestamp)
    stamp: Timestamp = md.signed
    stamp.version = 99
    stamp.snapshot_meta = MetaFile(version=2)
    stamp.expires = expires_in(1)
    md.sign(keys.load(keys_dir / "timestamp-1.pem"))
    md.to_file(str(repo / "metadata" / "timestamp.json"), JSONSerializer())
    with pytest.raises(RollbackAttack, match="snapshot"):
        fetch_release(url, V2, metadata, downloads)
    # a release older than the one installed, though validly signed
    with pytest.raises(RollbackAttack, match=r"older than the installed 0\.2\.0"):
        fetch_release(url, V1, metadata, downloads, installed_version=V2)


def test_below_threshold_is_invalid_until_a_second_key_holder_signs(tmp_path, wheelhouse,
                                                                    serve):
    repo, keys_dir = tmp_path / "repo", tmp_path / "keys"
    evterm("release", "init", "--repo", str(repo), "--keys", str(keys_dir), "--threshold",
           "2", "--keys-per-role", "2")
    second = tmp_path / "second-holder"
    second.mkdir(mode=0o700)
    (keys_dir / "targets-2.pem").rename(second / "targets-2.pem")
    added = evterm("release", "add", "--repo", str(repo), "--keys", str(keys_dir),
                   "--version", V1, "--wheelhouse", str(wheelhouse), ok=False)
    assert added.returncode == 4, added.stdout + added.stderr
    assert "targets version 2: 1 signature(s), threshold 2 - NOT ENOUGH" in added.stderr
    url = serve(repo)
    metadata, downloads = board(tmp_path, repo)
    with pytest.raises(InvalidSignature, match="targets"):
        fetch_release(url, V1, metadata, downloads)
    signed = evterm("release", "sign", "--repo", str(repo), "--keys", str(second),
                    "--role", "targets")
    assert "targets version 2: 2 signature(s), threshold 2" in signed.stdout
    assert read_manifest(fetch_release(url, V1, metadata, downloads)).version == V1


def test_unreachable_server_and_usb_folder(tmp_path, wheelhouse):
    repo, _ = make_repo(tmp_path, wheelhouse)
    metadata, downloads = board(tmp_path, repo)
    with pytest.raises(RepositoryUnreachable, match="cannot reach"):
        fetch_release(f"http://127.0.0.1:{free_port()}", V1, metadata, downloads,
                      timeout_s=5)
    with pytest.raises(RepositoryUnreachable, match="not a release repository"):
        fetch_release(str(tmp_path / "no-stick"), V1, metadata, downloads)
    stick = tmp_path / "usb" / "evterm"
    shutil.copytree(repo, stick)
    assert read_manifest(fetch_release(str(stick), V1, metadata, downloads)).version == V1
    other, downloads2 = board(tmp_path / "b2", repo)
    assert fetch_release(stick.as_uri(), V1, other, downloads2).is_file()
    with pytest.raises(TrustedRootMissing, match=r"root\.json"):
        fetch_release(str(stick), V1, tmp_path / "empty", downloads)


def test_full_wheelhouse_installs_offline(tmp_path):
    """`evterm release add` without --wheelhouse: evterm's wheel from the checkout and
    every dependency at the pins of constraints/board.txt from the package index."""
    source = source_at(V1, tmp_path)
    repo, keys_dir = tmp_path / "repo", tmp_path / "keys"
    evterm("release", "init", "--repo", str(repo), "--keys", str(keys_dir))
    evterm("release", "add", "--repo", str(repo), "--keys", str(keys_dir), "--version", V1,
           "--source", str(source))
    metadata, downloads = board(tmp_path, repo)
    tar = fetch_release(str(repo), V1, metadata, downloads)
    manifest = read_manifest(tar)
    unpacked = tmp_path / "unpacked"
    with tarfile.open(tar) as archive:
        archive.extractall(unpacked, filter="data")
    pins = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
            for line in (REPO / "constraints" / "board.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    for wheel in manifest.wheels:
        name, version = wheel.split("-")[:2]
        name = name.lower().replace("_", "-")
        if name != "evterm":
            assert pins[name] == version, wheel
    assert missing_pins([Path(w) for w in manifest.wheels], REPO / "constraints" / "board.txt") \
        == []  # every pin of the board's venv, at its version
    assert {"tuf", "securesystemslib", "pymodbus", "kivy"} <= {
        w.split("-")[0].lower() for w in manifest.wheels}
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--no-index", "--find-links", str(unpacked / "wheels"), manifest.requirement],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert "Would install" in resolved.stdout and "evterm-0.1.0" in resolved.stdout
