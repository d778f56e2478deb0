"""`evterm update`: the updater on the board (docs/updates.md).

- `evterm update run [--config FILE]`: what systemd's evterm-update.service runs (at
  boot and when the daemon leaves a request, evterm-update.path): an update the journal
  says is under way is carried through first (after a kill or a power loss), then a
  waiting request (the backend's `firmware_update`) is taken and carried out.
- `evterm update start --version V (--location URL | --folder PATH)`: a technician's
  update, from the operator's repository or a copy of it on a USB stick; runs in the
  foreground and ends when the update has (exit 0 Installed, 1 anything else).
- `evterm update status [--json]`: the running release, the releases on the board, the
  journal's step and its last reports.

One updater at a time: `run` waits for the lock (`update/lock`, flock) another updater
holds; `start` is refused while one runs.

Exit codes: 0 done (or nothing to do), 1 the update failed (the board runs the release
it ran before), 2 bad configuration or arguments, 3 an update is already under way or
the journal cannot be read (a technician looks: docs/updates.md).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from terminal.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config
from terminal.kernel.logsetup import get_logger

log = get_logger("update")


def register(subparsers: argparse._SubParsersAction) -> None:
    update = subparsers.add_parser("update", help="install a signed release on this board")
    update.add_argument("--config", default=str(DEFAULT_CONFIG_PATH))
    sub = update.add_subparsers(dest="update_command", required=True)
    sub.add_parser("run", help="carry on a journaled update, then take a waiting request")
    start = sub.add_parser("start", help="update from a repository URL or a folder")
    start.add_argument("--version", required=True, help="the release to install")
    where = start.add_mutually_exclusive_group(required=True)
    where.add_argument("--location", help="the release repository's URL")
    where.add_argument("--folder", help="a copy of the release repository (a USB stick)")
    status = sub.add_parser("status", help="releases, the journal's step, last reports")
    status.add_argument("--json", action="store_true")
    update.set_defaults(func=run_update_command)


class Locked(RuntimeError):
    pass


@contextlib.contextmanager
def updater_lock(update_dir: Path, wait: bool) -> Iterator[None]:
    """Held while this process is the updater; released by the kernel if it dies."""
    update_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(update_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Locked("another updater is running (evterm update status)") from None
        yield
    finally:
        os.close(fd)


def _updater(config: Config) -> Any:
    from terminal.update.install import InstallSettings
    from terminal.update.layout import Layout
    from terminal.update.source import default_fetch
    from terminal.update.updater import Updater, UpdaterSettings

    up = config.update
    settings = UpdaterSettings(
        socket_path=config.localapi.socket_path, restart_command=up.restart_command,
        health_timeout_s=up.health_timeout_s, idle_poll_s=up.idle_poll_s,
        install=InstallSettings(python=up.python, compile_bytecode=up.compile_bytecode))
    return Updater(Layout(up.root_dir), settings, default_fetch())


def run_update_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.update_command == "status":
        return _status(config, args.json)
    from terminal.update.layout import Layout

    try:
        with updater_lock(Layout(config.update.root_dir).update_dir,
                          wait=args.update_command == "run"):
            return _carry_out(config, args)
    except (Locked, OSError) as exc:
        print(f"evterm update: {exc}", file=sys.stderr)
        return 3


def _carry_out(config: Config, args: argparse.Namespace) -> int:
    from terminal.update.journal import JournalError, Step, UpdateRequest
    from terminal.update.request import RequestFileError, take_request
    from terminal.update.updater import UpdateBusy

    try:
        updater = _updater(config)
        if args.update_command == "run":
            updater.run()
            try:
                request = take_request(config.station.state_dir)
            except RequestFileError as exc:
                print(f"evterm update: {exc}", file=sys.stderr)
                return 2
            if request is None:
                return 0
        else:
            from terminal.backend.firmware import check_version
            from terminal.backend.messages import MessageError

            try:
                check_version("--version", args.version)
            except MessageError as exc:
                print(f"evterm update: {exc}", file=sys.stderr)
                return 2
            request = UpdateRequest(None, args.version, args.location, args.folder)
        updater.accept(request)
        updater.run()
    except (JournalError, UpdateBusy) as exc:
        print(f"evterm update: {exc}", file=sys.stderr)
        return 3
    last = updater.state.reports[-1] if updater.state.reports else {}
    print(f"evterm update: {request.version}: {last.get('status')}"
          + (f" ({last['info']})" if last.get("info") else ""))
    return 0 if updater.state.step is Step.IDLE and last.get("status") == "Installed" else 1


def _status(config: Config, as_json: bool) -> int:
    from terminal.update.journal import Journal, JournalError
    from terminal.update.layout import Layout

    layout = Layout(config.update.root_dir)
    try:
        state = Journal(layout.journal_path).load()
    except JournalError as exc:
        print(f"evterm update: {exc}", file=sys.stderr)
        return 3
    releases = sorted(p.name for p in layout.releases.iterdir()) \
        if layout.releases.is_dir() else []
    data = {"current": layout.current_version(), "releases": releases,
            "step": state.step.value, "previous": state.previous,
            "request": state.to_json()["request"], "reports": state.reports[-10:]}
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    print(f"running: {data['current'] or 'no release layout (an old board?)'}")
    print(f"releases: {', '.join(releases) or 'none'}")
    print(f"update: {state.step.value}" + (f" to {state.request.version}"
                                           if state.request else ""))
    for report in state.reports[-10:]:
        print(f"  {report['at']}  {report['version']}  {report['status']}"
              + (f"  {report['info']}" if report.get("info") else ""))
    return 0
