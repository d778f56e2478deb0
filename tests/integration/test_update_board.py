"""The update on the board with real processes (docs/updates.md): the daemon runs from a
release venv under a supervisor playing systemd, the station and backend simulators,
a real HTTP server serving the release tars; tests/integration/update_rig.py builds it.

Release venvs: the checkout's release is installed ONCE per session (by the updater's
own `install_release`) and linked into every board; each test installs only the release
it updates to, the real way (a venv without pip, pip offline from the tar's wheels:
evterm's wheel + the dependencies' wheels repacked from this environment, ~3 s without
byte compilation), so the install step is exercised, not faked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal import __version__
from terminal.update.journal import UpdateRequest
from terminal.update.request import write_request
from tests.integration.update_rig import (
    BROKEN,
    GOOD,
    Board,
    UpdateKit,
    remove,
    short_folder,
)

pytestmark = pytest.mark.integration
SUCCESS = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting",
           "Installed"]


@pytest.fixture(scope="session")
def kit() -> Iterator[UpdateKit]:
    folder = short_folder("evkit-")
    built = UpdateKit.build(folder)
    yield built
    built.close()
    remove(folder)


@pytest.fixture
def board(kit: UpdateKit, request: pytest.FixtureRequest) -> Iterator[Board]:
    folder = short_folder("evup-")
    options = getattr(request, "param", {})
    made = Board(kit, folder, **options)
    made.start()
    yield made
    made.close()
    remove(folder)


def ask(board: Board, version: str, request_id: int = 7) -> None:
    """What the daemon does for the backend's firmware_update command."""
    write_request(board.state_dir, UpdateRequest(request_id, version, board.kit.url))


def test_update_installs_switches_and_reports(board: Board) -> None:
    ask(board, GOOD)
    assert board.wait_done("Installed") == SUCCESS
    state = board.wait_version(GOOD)
    assert state["backend_online"] and state["meter_polled"]
    assert board.layout.current_version() == GOOD
    assert (board.layout.current / "venv" / "bin" / "evterm").resolve().is_relative_to(
        board.layout.release_dir(GOOD))
    # the new daemon relays every report to the backend, in order, once
    assert board.wait_for("the reports in the outbox",
                          lambda: board.outbox_statuses() == SUCCESS and True)
    journal = board.journal()
    assert journal.previous == __version__ and journal.tar is None


def test_broken_release_rolls_back(board: Board) -> None:
    ask(board, BROKEN)
    statuses = board.wait_done("InstallVerificationFailed")
    assert statuses == [*SUCCESS[:-1], "InstallVerificationFailed"]
    assert board.journal().failed_check.startswith("daemon_ready")
    assert board.layout.current_version() == __version__
    board.wait_version(__version__)
    assert "exited with 1" in (board.folder / "supervisor.log").read_text()
    assert board.wait_for("the failure in the outbox", lambda: (
        board.outbox_statuses()[-1:] == ["InstallVerificationFailed"]))


@pytest.mark.parametrize("board", [{"backend": False}], indirect=True)
def test_backend_never_connects_rolls_back(board: Board) -> None:
    ask(board, GOOD)
    assert board.wait_done("InstallVerificationFailed")[-2:] == [
        "InstallRebooting", "InstallVerificationFailed"]
    failed = board.journal().failed_check
    assert failed is not None and failed.startswith("backend")
    assert board.layout.current_version() == __version__
    board.wait_version(__version__)


def test_tampered_release_is_refused(board: Board) -> None:
    tar = board.kit.repository / f"evterm-{GOOD}.tar.sha256"
    good = tar.read_text()
    ask(board, "0.9.9")  # not in the repository
    assert board.wait_done("DownloadFailed") == ["Downloading", "DownloadFailed"]
    try:
        tar.write_text("0" * 64 + "\n")
        ask(board, GOOD, 8)
        statuses = board.wait_done("InvalidSignature")
    finally:
        tar.write_text(good)
    assert statuses[-2:] == ["Downloading", "InvalidSignature"]
    assert not board.layout.release_dir(GOOD).exists()
    assert board.layout.current_version() == __version__


def test_waits_while_a_session_is_open(board: Board) -> None:
    rig = board.rig
    rig.ev("plug")
    rig.api("start", id_token="04AABBCCDD")
    rig.wait_phase("Charging")
    ask(board, GOOD)
    board.wait_for("the release installed, waiting", lambda: board.journal().step.value
                   == "waiting_idle")
    # while the session runs: still waiting, the old daemon charging
    for _ in range(5):
        assert board.journal().step.value == "waiting_idle"
        state = rig.wait_phase("Charging")
        assert state["version"] == __version__
    rig.api("stop")
    rig.wait_phase("Finishing", "Ended", "Idle", "Available")
    assert board.wait_done("Installed") == SUCCESS
    board.wait_version(GOOD)


KILLS = [  # every checkpoint of a good update, in order; power = the whole board
    ("downloading", "updater"), ("installing", "power"), ("installing:venv", "updater"),
    ("installing:pip", "power"), ("waiting_idle", "updater"), ("switching", "power"),
    ("switching:linked", "updater"), ("switching:restarted", "power"),
    ("checking", "updater"), ("idle", "power")]


def test_kill_at_every_step_leaves_a_working_release(board: Board) -> None:
    board.kill_file.write_text(json.dumps(KILLS))
    ask(board, GOOD)
    for point, mode in KILLS:
        if mode == "power":
            board.wait_power_loss()
            assert board.layout.current_version() in (__version__, GOOD), point
            board.boot()
        else:
            board.wait_for(f"the kill at {point}", lambda p=point: f"killed at {p}"
                           in (board.folder / "updater.log").read_text())
    assert json.loads(board.kill_file.read_text()) == []
    statuses = board.wait_done("Installed")
    assert statuses[0] == "Downloading" and statuses[-1] == "Installed"
    assert "InstallationFailed" not in statuses
    board.wait_version(GOOD)
    assert board.layout.is_complete(GOOD)
    assert sorted(p.name for p in board.layout.releases.iterdir()) == sorted(
        [__version__, GOOD])


def test_request_file_is_what_the_command_writes(tmp_path: Path) -> None:
    path = write_request(tmp_path, UpdateRequest(3, GOOD, "http://example.test/repo"))
    assert json.loads(path.read_text()) == {"request_id": 3, "version": GOOD, "location":
                                            "http://example.test/repo", "folder": None}
