"""What the daemon writes is its user's alone outside systemd too: the log file is
created (or made) 0600, the state folder 0700; the development switch for free starts
is refused under systemd. (The journal's modes with a real daemon process are in
tests/integration/test_localapi_daemon.py.)"""

from __future__ import annotations

import argparse
import io
import os
import stat
from pathlib import Path

import pytest

from terminal import daemon_cli
from terminal.daemon_cli import make_state_dir
from terminal.kernel.logsetup import get_logger, setup_logging

REPO = Path(__file__).resolve().parents[2]
TARIFF = REPO / "examples/tariffs/de_dc_hpc_adhoc.json"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def restore_logging():
    yield
    setup_logging("INFO", io.StringIO())  # closes the file handler


def test_the_log_file_is_created_0600_and_gets_every_line(tmp_path, restore_logging):
    log_file = tmp_path / "evterm.log"
    old_umask = os.umask(0o022)
    try:
        setup_logging("INFO", io.StringIO(), log_file=str(log_file))
    finally:
        os.umask(old_umask)
    get_logger("test").warning("hello", extra={"fields": {"n": 1}})
    assert mode(log_file) == 0o600
    assert "WARNING evterm.test: hello n=1" in log_file.read_text(encoding="utf-8")


def test_an_existing_log_file_is_made_0600_and_stderr_into_it_is_not_doubled(
        tmp_path, restore_logging):
    log_file = tmp_path / "daemon.log"
    log_file.write_text("earlier\n", encoding="utf-8")
    os.chmod(log_file, 0o644)
    with log_file.open("a", encoding="utf-8") as stderr:  # as a shell's 2>>daemon.log
        setup_logging("INFO", stderr, log_file=str(log_file))
        get_logger("test").warning("once")
        stderr.flush()
    assert mode(log_file) == 0o600
    assert log_file.read_text(encoding="utf-8").count("once") == 1


def test_a_log_file_that_cannot_be_opened_is_named(tmp_path, restore_logging):
    with pytest.raises(OSError, match=r"^service\.log_file .*missing/evterm\.log: cannot open"):
        setup_logging("INFO", io.StringIO(), log_file=str(tmp_path / "missing" / "evterm.log"))


def test_the_state_folder_is_created_0700_and_an_open_one_is_reported(tmp_path):
    folder = tmp_path / "state" / "deeper"
    old_umask = os.umask(0o022)
    try:
        assert make_state_dir(folder) is None
    finally:
        os.umask(old_umask)
    assert mode(folder) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    warning = make_state_dir(shared)
    assert warning is not None and "station.state_dir" in warning and "0755" in warning
    assert mode(shared) == 0o755  # never changed: it may be a shared folder


def test_dev_free_start_is_refused_under_systemd(tmp_path, monkeypatch, capsys):
    config = tmp_path / "evterm.toml"
    config.write_text(
        "[station]\nid = \"ST1\"\noperator = \"Op\"\n"
        f"state_dir = \"{tmp_path / 'state'}\"\n"
        f"[session]\ntariff_file = \"{TARIFF}\"\n"
        f"[localapi]\nsocket_path = \"{tmp_path / 'api.sock'}\"\ndev_free_start = true\n",
        encoding="utf-8")
    args = argparse.Namespace(config=str(config), clock_speed=1.0, clock_anchor=None)
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    monkeypatch.setattr(daemon_cli.os, "getppid", lambda: 1)  # as systemd's main process
    assert daemon_cli.started_by_systemd()
    old_umask = os.umask(0o022)
    try:
        assert daemon_cli.run_daemon_command(args) == 2
        assert os.umask(0o022) == 0o077  # the daemon's umask was set first of all
    finally:
        os.umask(old_umask)
    assert "localapi.dev_free_start is for development only and refused under systemd" in (
        capsys.readouterr().err)
    assert not (tmp_path / "state").exists()  # refused before anything was created


def test_a_child_of_a_systemd_service_is_not_taken_for_the_daemon_unit(monkeypatch):
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")  # a CI job's
    monkeypatch.setattr(daemon_cli.os, "getppid", lambda: 4242)
    assert not daemon_cli.started_by_systemd()
