"""A real small file system for storage-fault tests: a tmpfs of a few MiB mounted in a
private mount namespace (`unshare --mount --propagation private`), held open by a
sleeping process. Processes started with `prefix` (nsenter) see the tmpfs at its
mount point; this process reaches it through /proc/<holder>/root, so it can fill it,
free it and read the files on it while the daemon runs."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (util-linux); storage tests need it")
    return path


class PrivateTmpfs:
    def __init__(self, mountpoint: Path, size_kib: int) -> None:
        self.mountpoint = mountpoint.resolve()
        self.size_kib = size_kib
        self._holder: subprocess.Popen[str] | None = None
        self._fillers = 0

    def __enter__(self) -> PrivateTmpfs:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        user_ns = [] if os.geteuid() == 0 else ["--map-root-user"]
        script = ('mount -t tmpfs -o "size=$2k,mode=0700" tmpfs "$1" && echo mounted '
                  '&& exec sleep 100000')
        self._holder = subprocess.Popen(
            [_binary("unshare"), "--mount", "--propagation", "private", *user_ns,
             "sh", "-c", script, "sh", str(self.mountpoint), str(self.size_kib)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline()
        if line.strip() != "mounted":
            self._holder.wait(5)
            pytest.fail(f"cannot mount a tmpfs in a private mount namespace: "
                        f"{self._holder.stderr.read() if self._holder.stderr else ''}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._holder is not None and self._holder.poll() is None:
            self._holder.send_signal(signal.SIGKILL)
            self._holder.wait(10)

    @property
    def prefix(self) -> tuple[str, ...]:
        """Run a command inside the namespace (working directory: the repository)."""
        assert self._holder is not None
        return (_binary("nsenter"), "-t", str(self._holder.pid), "-m", f"--wd={REPO}")

    def host(self, path: Path) -> Path:
        """`path` (on the tmpfs) as this process reaches it."""
        assert self._holder is not None
        return Path(f"/proc/{self._holder.pid}/root") / path.resolve().relative_to("/")

    def free_kib(self) -> int:
        usage = shutil.disk_usage(self.host(self.mountpoint))
        return usage.free // 1024

    def fill(self, leave_kib: int = 0) -> None:
        """Write filler files until only `leave_kib` is free (0: until ENOSPC)."""
        chunk = b"\xa5" * 65536
        self._fillers += 1
        target = self.host(self.mountpoint / f"filler-{self._fillers}")
        with open(target, "wb", buffering=0) as handle:
            try:
                while True:
                    left_kib = self.free_kib() - leave_kib
                    if leave_kib and left_kib <= 0:
                        break
                    size = len(chunk) if not leave_kib else min(len(chunk), left_kib * 1024)
                    handle.write(chunk[:max(size, 4096)])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        with contextlib.suppress(OSError):
            os.sync()

    def free(self) -> None:
        """Remove every filler file."""
        for number in range(1, self._fillers + 1):
            self.host(self.mountpoint / f"filler-{number}").unlink(missing_ok=True)
