"""The update's steps on the board, each journaled before it is acted on, and resumed
from the journal after a kill or a power loss (docs/updates.md, "Steps").

`Updater(layout, settings, fetch)`:
- `accept(request)`: a new update journaled as DOWNLOADING (report Downloading);
  refused (`UpdateBusy`) while another one is under way;
- `run()`: carries the journaled update through to its end, from whatever step the
  journal says (a fresh one or one a kill interrupted), then deletes the downloads:

Each step, what it does -> success / failure:
- downloading: `fetch` (download, TUF verification) -> reports Downloaded,
  SignatureVerified, Installing; installing / InvalidSignature or DownloadFailed; idle;
- installing: releases/V built again from the tar (a half-built one deleted) ->
  waiting_idle / InstallationFailed, the folder deleted; idle;
- waiting_idle: the local API asked until no session is open (a session that starts
  meanwhile delays it; a daemon that does not answer too) -> InstallRebooting; switching;
- switching: current -> V, the daemon restarted (`restart_command`) -> checking;
- checking: the health check within `health_timeout_s` (in full again after a resume)
  -> Installed, older releases pruned; idle / rolling_back;
- rolling_back: current -> the previous release, the daemon restarted ->
  InstallVerificationFailed (+ the check that failed); idle.

`CHECKPOINT(name)` is called after every journal write and between the acts of a step;
it does nothing (tests kill the updater there, tests/integration/update_rig.py).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from terminal.kernel.logsetup import fields, get_logger
from terminal.update import daemon_checks
from terminal.update.install import InstallError, InstallSettings, install_release
from terminal.update.journal import Journal, Step, UpdateRequest
from terminal.update.layout import Layout, LayoutError
from terminal.update.source import Fetch, failure_status

log = get_logger("update")

CHECKPOINT: Callable[[str], None] = lambda name: None  # noqa: E731
RESTART_TIMEOUT_S = 120.0


class UpdateBusy(RuntimeError):
    pass


@dataclass(frozen=True)
class UpdaterSettings:
    socket_path: str
    restart_command: str
    health_timeout_s: float
    idle_poll_s: float
    install: InstallSettings


class Updater:
    def __init__(self, layout: Layout, settings: UpdaterSettings, fetch: Fetch) -> None:
        self.layout = layout
        self.settings = settings
        self.fetch = fetch
        self.journal = Journal(layout.journal_path)
        self.state = self.journal.load()

    def _save(self, step: Step, *reports: tuple[str, str | None]) -> None:
        self.state.step = step
        for status, info in reports:
            self.state.report(status, info)
        self.journal.save(self.state)
        log.info("update step", extra=fields(step=step.value, reports=[s for s, _ in reports]))
        CHECKPOINT(step.value)

    def accept(self, request: UpdateRequest) -> None:
        state = self.state
        if state.step is not Step.IDLE and state.request is not None:
            raise UpdateBusy(f"an update to {state.request.version} is under way "
                             f"({state.step.value})")
        state.request, state.tar, state.failed_check = request, None, None
        state.previous = self.layout.current_version()
        self._save(Step.DOWNLOADING, ("Downloading", None))

    def run(self) -> Step:
        """Carries the journaled update through; the step it ended at (idle)."""
        handlers = {Step.DOWNLOADING: self._download, Step.INSTALLING: self._install,
                    Step.WAITING_IDLE: self._wait_idle, Step.SWITCHING: self._switch,
                    Step.CHECKING: self._check, Step.ROLLING_BACK: self._roll_back}
        while self.state.step is not Step.IDLE:
            handlers[self.state.step]()
        shutil.rmtree(self.layout.downloads, ignore_errors=True)  # the tar is installed
        return self.state.step

    @property
    def request(self) -> UpdateRequest:
        assert self.state.request is not None
        return self.state.request

    # ---- the steps --------------------------------------------------------------------------

    def _download(self) -> None:
        request, layout = self.request, self.layout
        layout.downloads.mkdir(parents=True, exist_ok=True)
        layout.metadata.mkdir(parents=True, exist_ok=True)
        source = request.folder if request.folder is not None else str(request.location)
        try:
            tar = self.fetch(source, request.version, layout.metadata, layout.downloads,
                             self.state.previous)
        except Exception as exc:  # every failure of a fetch is reported, never raised
            status, text = failure_status(exc)
            log.error("release not fetched", extra=fields(status=status, error=text))
            self._save(Step.IDLE, (status, text))
            return
        self.state.tar = str(tar)
        self._save(Step.INSTALLING, ("Downloaded", None), ("SignatureVerified", None),
                   ("Installing", None))

    def _install(self) -> None:
        request, layout = self.request, self.layout
        try:
            if self.state.tar is None or not Path(self.state.tar).is_file():
                raise InstallError("the downloaded release is gone")
            install_release(Path(self.state.tar), layout, request.version,
                            self.settings.install, CHECKPOINT)
        except (InstallError, LayoutError, OSError) as exc:
            log.error("release not installed", extra=fields(error=str(exc)))
            if request.version != layout.current_version():
                layout.remove_release(request.version)
            self._save(Step.IDLE, ("InstallationFailed", str(exc)[:300]))
            return
        self._save(Step.WAITING_IDLE)

    def _wait_idle(self) -> None:
        waited = False
        while daemon_checks.session_open(self.settings.socket_path) is not False:
            if not waited:
                log.info("installed; waiting until no session is open")
                waited = True
            time.sleep(self.settings.idle_poll_s)
        self._save(Step.SWITCHING, ("InstallRebooting", None))

    def _switch(self) -> None:
        self.layout.switch(self.request.version)
        CHECKPOINT("switching:linked")
        self._restart()
        CHECKPOINT("switching:restarted")
        self._save(Step.CHECKING)

    def _check(self) -> None:
        version = self.request.version
        failed = daemon_checks.wait_healthy(self.settings.socket_path, version,
                                            self.settings.health_timeout_s)
        if failed is None:
            self.state.tar = None
            self._save(Step.IDLE, ("Installed", None))
            gone = self.layout.prune((version, self.state.previous))
            log.info("update installed", extra=fields(version=version, pruned=gone))
            return
        check, detail = failed
        self.state.failed_check = f"{check}: {detail}"
        log.error("new release unhealthy; rolling back", extra=fields(
            version=version, check=check, detail=detail))
        self._save(Step.ROLLING_BACK)

    def _roll_back(self) -> None:
        previous = self.state.previous
        if previous is not None and self.layout.is_complete(previous):
            self.layout.switch(previous)
            CHECKPOINT("rolling_back:linked")
            self._restart()
        else:
            log.error("no previous release to roll back to", extra=fields(previous=previous))
        self._save(Step.IDLE, ("InstallVerificationFailed", self.state.failed_check))

    def _restart(self) -> None:
        command = shlex.split(self.settings.restart_command)
        try:
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=RESTART_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("restart command failed", extra=fields(error=str(exc)))
            return
        if result.returncode != 0:
            log.error("restart command failed", extra=fields(
                exit_code=result.returncode, stderr=result.stderr[-500:]))
