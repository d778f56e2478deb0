"""The update on the board with real processes (docs/updates.md): the daemon runs from a
release venv under a supervisor playing systemd, the station and backend simulators,
a real HTTP server serving the release tars; tests/integration/update_rig.py builds it.

The releases are signed TUF targets made by `evterm release` and fetched with the real
`fetch_release` (python-tuf): a tampered target is refused as InvalidSignature.

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
    target_of,
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
    board.asked_reports = len(board.journal().reports)
    write_request(board.state_dir, UpdateRequest(request_id, version, board.kit.url))


def test_refused_releases_then_an_update_installs_switches_and_reports(
        board: Board) -> None:
    ask(board, "0.9.9", 5)  # not in the repository
    assert board.wait_done("DownloadFailed") == ["Downloading", "DownloadFailed"]
    target = target_of(board.kit.repository, GOOD)
    good = target.read_bytes()
    tampered = bytearray(good)
    tampered[len(good) // 2] ^= 0xFF  # one byte changed, the same length
    try:
        target.write_bytes(bytes(tampered))
        ask(board, GOOD, 6)
        assert board.wait_done("InvalidSignature")[-2:] == ["Downloading", "InvalidSignature"]
    finally:
        target.write_bytes(good)
    assert not board.layout.release_dir(GOOD).exists()
    assert board.layout.current_version() == __version__
    ask(board, GOOD)
    assert board.wait_done("Installed")[-6:] == SUCCESS
    state = board.wait_version(GOOD)
    assert state["backend_online"] and state["meter_polled"]
    assert board.layout.current_version() == GOOD
    assert (board.layout.current / "venv" / "bin" / "evterm").resolve().is_relative_to(
        board.layout.release_dir(GOOD))
    # the new daemon relays every report to the backend, in order, once
    expected = ["Downloading", "DownloadFailed", "Downloading", "InvalidSignature", *SUCCESS]
    assert board.wait_for("the reports in the outbox",
                          lambda: board.outbox_statuses() == expected)
    journal = board.journal()
    assert journal.previous == __version__ and journal.tar is None
    assert not board.layout.downloads.exists()  # the tar is deleted once installed


@pytest.mark.parametrize("board", [{"health_timeout_s": 4.0}], indirect=True)
def test_unhealthy_releases_roll_back(board: Board) -> None:
    """A release whose daemon exits at start, then one whose backend never connects."""
    # killed while rolling back, then the power lost just after the link went back
    board.kill_file.write_text(json.dumps([("rolling_back", "updater"),
                                           ("rolling_back:linked", "power")]))
    ask(board, BROKEN)  # it never answers: the short timeout is enough
    board.wait_power_loss()
    assert board.layout.current_version() == __version__
    board.boot()
    statuses = board.wait_done("InstallVerificationFailed")
    assert statuses == [*SUCCESS[:-1], "InstallVerificationFailed"]
    failed = board.journal().failed_check
    assert failed is not None and failed.startswith("daemon_ready")
    assert board.layout.current_version() == __version__
    board.wait_version(__version__)
    assert "exited with 1" in (board.folder / "supervisor.log").read_text()
    assert "killed at rolling_back (updater)" in (board.folder / "updater.log").read_text()
    assert board.wait_for("the failure in the outbox", lambda: (
        board.outbox_statuses() == statuses))

    assert board.sim is not None
    board.sim.close()  # the backend is gone: the new release cannot connect
    board.set_health_timeout(10.0)  # time for the new daemon to be up, its link not
    ask(board, GOOD, 8)
    statuses = board.wait_done("InstallVerificationFailed")
    assert statuses[-2:] == ["InstallRebooting", "InstallVerificationFailed"]
    failed = board.journal().failed_check
    assert failed is not None and failed.startswith("backend")
    assert board.layout.current_version() == __version__
    assert board.wait_version(__version__)["backend_online"] is False


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
    rig.wait_phase("Finishing")
    assert board.journal().step.value == "waiting_idle"  # Finishing: the session is open
    rig.ev("unplug")
    assert board.wait_done("Installed") == SUCCESS
    board.wait_version(GOOD)


KILLS = [  # every checkpoint of a good update, in order; power = the whole board
    ("downloading", "updater"), ("installing", "power"), ("installing:pip", "updater"),
    ("waiting_idle", "power"), ("switching", "updater"), ("switching:linked", "power"),
    ("switching:restarted", "updater"), ("checking", "power"), ("idle", "updater")]


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
