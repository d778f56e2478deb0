"""`set_pin` run as root leaves the pins file to the daemon's user (docs/service.md)."""

from __future__ import annotations

import os
import stat

import pytest

from terminal.service.pins import load_pins, set_pin

DAEMON_UID, DAEMON_GID = 64999, 64998  # stand-ins for the evterm user; no account needed


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test checks what root's set-pin writes: run the suite as root")


def test_root_writes_a_new_pins_file_with_the_owner_of_its_folder(tmp_path, as_root):
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    os.chown(folder, DAEMON_UID, DAEMON_GID)
    pins = folder / "pins.json"
    set_pin(pins, "04aabbccddeeff", "2468")
    found = pins.stat()
    assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (
        DAEMON_UID, DAEMON_GID, 0o600)
    assert list(load_pins(pins)) == ["04AABBCCDDEEFF"]


def test_root_keeps_the_owner_of_the_pins_file_it_replaces(tmp_path, as_root):
    pins = tmp_path / "pins.json"
    pins.write_text('{"technicians": {}}\n', encoding="utf-8")
    os.chown(pins, DAEMON_UID, DAEMON_GID)
    os.chmod(pins, 0o600)
    set_pin(pins, "04AABBCCDDEE00", "1357")
    found = pins.stat()
    assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (
        DAEMON_UID, DAEMON_GID, 0o600)
    assert not list(tmp_path.glob("*.tmp"))
