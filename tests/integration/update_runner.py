"""`evterm update run` on a test board (tests/integration/update_rig.py), with two
stand-ins:

- `fetch_release`: until the release helper's TUF fetch (terminal/update/fetch.py) is
  merged, a plain HTTP GET of REPOSITORY/evterm-V.tar from the test's real HTTP server,
  checked against REPOSITORY/evterm-V.tar.sha256 (a mismatch raises an error named
  InvalidSignature, a 404 one named NoSuchRelease, as the real fetch's typed errors);
- kill points: the first entry of the JSON list in --kill-file, `[checkpoint, mode]`, is
  taken (and removed from the file) when the updater reaches that checkpoint
  (terminal.update.updater.CHECKPOINT); mode `updater` kills this process (kill -9),
  `power` its whole process group (the supervisor, the daemon: a power loss).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path


class InvalidSignature(Exception):
    pass


class NoSuchRelease(Exception):
    pass


class RepositoryUnreachable(Exception):
    pass


def fetch_release(repository_url: str, version: str, metadata_dir: Path, download_dir: Path,
                  installed_version: str | None) -> Path:
    name = f"evterm-{version}.tar"
    try:
        with urllib.request.urlopen(f"{repository_url}/{name}", timeout=30) as reply:
            data = reply.read()
        with urllib.request.urlopen(f"{repository_url}/{name}.sha256", timeout=30) as reply:
            expected = reply.read().decode().strip()
    except urllib.error.HTTPError as exc:
        raise NoSuchRelease(f"{name}: HTTP {exc.code}") from None
    except OSError as exc:
        raise RepositoryUnreachable(str(exc)) from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise InvalidSignature(f"{name}: its hash is not the one signed")
    target = download_dir / name
    target.write_bytes(data)
    return target


def kill_point(kill_file: Path):  # type: ignore[no-untyped-def]
    def checkpoint(name: str) -> None:
        try:
            entries = json.loads(kill_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        if not entries or entries[0][0] != name:
            return
        mode = entries[0][1]
        kill_file.write_text(json.dumps(entries[1:]), encoding="utf-8")
        print(f"killed at {name} ({mode})", flush=True)
        if mode == "power":
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    return checkpoint


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--kill-file", required=True)
    args = parser.parse_args()
    from terminal.cli import main as evterm
    from terminal.update import source, updater

    source.default_fetch = lambda: fetch_release
    updater.CHECKPOINT = kill_point(Path(args.kill_file))
    return evterm(["--log-level", "INFO", "update", "--config", args.config, "run"])


if __name__ == "__main__":
    sys.exit(main())
