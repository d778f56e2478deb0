"""A private pcscd with vpcd reader slots, for tests, the demo and the bench.

pcscd 1.9.9 always serves `/run/pcscd/pcscd.comm` (it ignores PCSCLITE_CSOCK_NAME), so
the handle runs it in its own mount namespace (`unshare -m`, plus `-r` when not root)
with a private folder bind-mounted over /run/pcscd: several can run side by side and
next to the system's pcscd. Clients reach it with `PCSCLITE_CSOCK_NAME=<folder>/pcscd.comm`
(`handle.env`); libpcsclite reads that variable once per process.

Provides `PcscdHandle(folder, readers=2, base_port=None)`:
- writes `<folder>/reader.conf.d/vpcd`: one vpcd entry per two slots (each entry gives
  two slots on consecutive TCP ports), so reader N listens on `base_port + N`;
  `readers` is rounded up to an even number. `base_port=None` picks a free block.
- `start()` (also after `stop()`/`kill()`: same folder, socket and ports), `stop()`
  (SIGTERM), `kill()` (SIGKILL, leaves a stale socket like a crash; `start()` clears it),
  `running`, `pid`, `socket_path`, `base_port`, `ports`, `reader_names`, `env`,
  `log_path` (pcscd's log, info level).
- Ready when pcscd logged "daemon ready" and its socket exists; a vpcd entry that could
  not bind its port ("Open Port ... Failed") is an error. `start()` waits up to
  `timeout_s`; its first start on a block it picked itself retries on another block.

On failure: `PcscdError` naming what is missing and the Debian package (pcscd,
vsmartcard-vpcd, util-linux), a namespace that is not permitted, a port vpcd could not
bind, or pcscd exiting or not getting ready (with the tail of its log).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
FRIENDLY_NAME = "evterm vpcd"
SOCKET_NAME = "pcscd.comm"
MAX_SOCKET_PATH_BYTES = 100
SLOTS_PER_ENTRY = 2
READY_LINE = "daemon ready"
# an entry whose vpcd could not bind its port; pcscd drops both of its slots
FAILED_SLOT = re.compile(r"Open Port 0x[0-9A-Fa-f]+ Failed \(/dev/null:0x([0-9A-Fa-f]+)\)")
PORT_SEARCH_RANGE = (20_000, 32_000)  # below Linux's ephemeral ports (32768+)
PORT_ATTEMPTS = 3


class PcscdError(RuntimeError):
    """pcscd could not be started (the message says why and what to install)."""


class _PortTaken(Exception):
    """A vpcd slot could not bind its port."""


def _find_binary(name: str, package: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise PcscdError(f"{name} not found: install the Debian package {package}")
    return path


def _ports_free(base_port: int, count: int) -> bool:
    for port in range(base_port, base_port + count):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("0.0.0.0", port))  # vpcd binds INADDR_ANY
            except OSError:
                return False
    return True


def free_port_block(count: int) -> int:
    """A base port with `count` consecutive free TCP ports (vpcd binds them later,
    so another process may still take one: start() then fails naming the port)."""
    low, high = PORT_SEARCH_RANGE
    for _ in range(200):
        base = random.randrange(low, high - count)
        if _ports_free(base, count):
            return base
    raise PcscdError(f"no block of {count} free TCP ports found in {low}-{high}")


def reader_conf(base_port: int, readers: int, driver: str = VPCD_DRIVER) -> str:
    """The reader.conf.d text for `readers` slots (rounded up to even) from base_port."""
    entries = []
    for entry in range((readers + SLOTS_PER_ENTRY - 1) // SLOTS_PER_ENTRY):
        port = base_port + entry * SLOTS_PER_ENTRY
        entries.append(
            f'FRIENDLYNAME "{FRIENDLY_NAME} {entry}"\n'
            f"DEVICENAME   /dev/null:0x{port:04X}\n"
            f"LIBPATH      {driver}\n"
            f"CHANNELID    0x{port:04X}\n"
        )
    return "\n".join(entries)


def reader_names(readers: int) -> list[str]:
    """pcscd's names: FRIENDLYNAME (one per entry: pcscd numbers equal names alike),
    then "00" and the slot index (two hex digits)."""
    slots = (readers + SLOTS_PER_ENTRY - 1) // SLOTS_PER_ENTRY * SLOTS_PER_ENTRY
    return [f"{FRIENDLY_NAME} {i // SLOTS_PER_ENTRY} 00 {i % SLOTS_PER_ENTRY:02X}"
            for i in range(slots)]


class PcscdHandle:
    def __init__(self, folder: str | os.PathLike[str], readers: int = 2,
                 base_port: int | None = None) -> None:
        if readers < 1:
            raise ValueError(f"readers {readers}: must be >= 1")
        self.folder = Path(folder).resolve()
        self.socket_path = str(self.folder / SOCKET_NAME)
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH_BYTES:
            raise PcscdError(f"socket path {self.socket_path}: longer than "
                             f"{MAX_SOCKET_PATH_BYTES} bytes; use a shorter folder")
        self.reader_names = reader_names(readers)
        self._fixed_port = base_port is not None
        self._started = False
        self._use_ports(free_port_block(len(self.reader_names)) if base_port is None
                        else base_port)
        self.conf_dir = self.folder / "reader.conf.d"
        self.log_path = self.folder / "pcscd.log"
        self.env = {"PCSCLITE_CSOCK_NAME": self.socket_path}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _command(self) -> list[str]:
        pcscd = _find_binary("pcscd", "pcscd")
        unshare = _find_binary("unshare", "util-linux")
        if not os.path.exists(VPCD_DRIVER):
            raise PcscdError(f"vpcd driver {VPCD_DRIVER} not found: install the Debian "
                             "package vsmartcard-vpcd")
        script = ('mkdir -p /run/pcscd && mount --bind "$1" /run/pcscd && '
                  'exec "$2" --foreground --info --config "$3"')
        user_ns = [] if os.geteuid() == 0 else ["--map-root-user"]
        return [unshare, "--mount", "--propagation", "private", *user_ns,
                "sh", "-c", script, "sh", str(self.folder), pcscd, str(self.conf_dir)]

    def start(self, timeout_s: float = 10.0) -> None:
        """Start pcscd and wait until it serves every slot. The first start on a free
        block picked here tries another block when a port was taken meanwhile."""
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._start(timeout_s)
                self._started = True
                return
            except _PortTaken as exc:
                if self._fixed_port or self._started or attempt == PORT_ATTEMPTS - 1:
                    raise PcscdError(str(exc)) from None
                self._use_ports(free_port_block(len(self.reader_names)))

    def _use_ports(self, base_port: int) -> None:
        self.base_port = base_port
        self.ports = [base_port + i for i in range(len(self.reader_names))]
        if self.ports[-1] > 65535:
            raise ValueError(f"base port {base_port}: slots go past 65535")

    def _start(self, timeout_s: float) -> None:
        if self.running:
            raise PcscdError(f"pcscd already running (pid {self.pid})")
        command = self._command()
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "vpcd").write_text(reader_conf(self.base_port, len(self.ports)))
        for stale in (SOCKET_NAME, "pcscd.pid"):  # left behind by a killed pcscd
            with contextlib.suppress(FileNotFoundError):
                (self.folder / stale).unlink()
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(log_start, timeout_s)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _wait_ready(self, log_start: int, timeout_s: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            text = self._log_since(log_start)
            if READY_LINE in text and FAILED_SLOT.search(text):  # a port vpcd could not bind
                entries = sorted({int(port, 16) for port in FAILED_SLOT.findall(text)})
                ports = [port + slot for port in entries for slot in range(SLOTS_PER_ENTRY)]
                self.kill()
                raise _PortTaken(f"vpcd could not listen on port(s) {ports} (in use?): "
                                 f"{_tail(text)}")
            if READY_LINE in text and os.path.exists(self.socket_path):
                return
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                hint = (" (creating a mount namespace needs root or user namespaces: "
                        "unshare --mount --map-root-user)"
                        if "unshare" in text or "mount" in text else "")
                raise PcscdError(f"pcscd exited with {code}{hint}: {_tail(text)}")
            if time.monotonic() > deadline:
                self.kill()
                raise PcscdError(f"pcscd not ready within {timeout_s} s: {_tail(text)}")
            time.sleep(0.02)

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, wait; SIGKILL when it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self) -> None:
        """SIGKILL: pcscd vanishes as in a crash."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> PcscdHandle:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"
