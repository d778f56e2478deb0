"""`evterm service ...` against the real daemon: the station simulator, a private pcscd
with vpcd and the technician card tapped by `evterm sim tap`, then the PIN from the
CLI (`login --pin-stdin`); diagnostics, out of service and back (a driver's start
refused meanwhile), the meter self-check, an export scanned for key material, PIN
hashes and card numbers, resend, a session stopped by the technician, a restart (exit
code 75, out of service kept); wrong PINs up to the lockout (600 s on the daemon's 30x
clock, so it still holds when checked); an ordinary card opens nothing."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hw_mocks.cards import TEST_PANS
from hw_mocks.pcscd import PcscdHandle
from hw_mocks.rig import REPO, Rig, Subscriber
from terminal import cli
from terminal.service.export import BUNDLE_FILES
from terminal.service.pins import hash_pin

TECH = "04AABBCCDDEEFF"
PIN = "802514"


@dataclass
class ServiceRig:
    rig: Rig
    events: Subscriber
    tap: Any  # the conftest `tap` fixture
    folder: Path
    pin_hash: str
    token_file: Path
    left_at_s: float = 0.0

    def present(self, card: str) -> dict[str, Any]:
        """Tap a card on reader 0 (0.5 s after the last one left); the `tap` outcome."""
        time.sleep(max(0.0, self.left_at_s + 0.5 - time.monotonic()))
        mark = self.events.mark()
        self.tap(card, hold_s=0.6).wait_left()
        self.left_at_s = time.monotonic()
        return self.events.tap(mark)

    def evterm(self, *args: str, pin: str = "") -> tuple[int, str, str]:
        """`evterm service --socket S --token-file F ARGS` as its own process."""
        proc = subprocess.run(
            [sys.executable, "-m", "terminal.cli", "service", "--socket", self.rig.socket_path,
             "--token-file", str(self.token_file), *args],
            input=pin + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
        return proc.returncode, proc.stdout, proc.stderr

    def service(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                *args: str, pin: str = "") -> tuple[int, str, str]:
        """The same command in this process (fast: no interpreter start)."""
        monkeypatch.setattr(sys, "stdin", io.StringIO(pin + "\n"))
        capsys.readouterr()
        code = cli.main(["service", "--socket", self.rig.socket_path, "--token-file",
                         str(self.token_file), *args])
        out, err = capsys.readouterr()
        return code, out, err


@pytest.fixture
def service_rig(pcscd: PcscdHandle, tap: Any) -> Iterator[ServiceRig]:
    folder = Path(tempfile.mkdtemp(prefix="evsvc-"))  # short: socket paths < 108 bytes
    pin_hash = hash_pin(PIN)
    pins = folder / "pins.json"
    pins.write_text(json.dumps({"technicians": {TECH: pin_hash}}))
    token_key = folder / "token.key"
    token_key.write_text(os.urandom(32).hex())
    gateway = folder / "gateway.pem"
    gateway.write_bytes(X25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    rig = Rig(folder / "rig", speed=30.0, extra={
        "readers": {"pcsc": True, "pcsc_socket": pcscd.socket_path},
        "payment": {"token_key_file": str(token_key), "gateway_key_file": str(gateway)},
        "auth": {"technician_ids": TECH},
        "service": {"pins_file": str(pins), "export_allowed_root": str(folder / "media"),
                    "pin_window_s": 600, "idle_logout_s": 3600, "lockout_s": 600,
                    "log_file": str(folder / "rig" / "daemon.log")},
    })
    try:
        rig.start_station()
        rig.start_daemon()
        rig.wait_reader()
        events = Subscriber(rig.socket_path)
        yield ServiceRig(rig, events, tap, folder, pin_hash, folder / "token")
        events.close()
    finally:
        rig.close()
        shutil.rmtree(folder, ignore_errors=True)


def forbidden(srv: ServiceRig) -> list[str]:
    key = (srv.folder / "token.key").read_text().strip()
    found = [key, key.upper(), srv.pin_hash, *srv.pin_hash.split("$")[4:]]
    for pan in TEST_PANS.values():
        found += [pan, " ".join(pan[i:i + 4] for i in range(0, len(pan), 4))]
    return found


def test_a_technician_logs_in_with_card_and_pin_and_runs_the_service_menu(
        service_rig, capsys, monkeypatch):
    srv, rig = service_rig, service_rig.rig
    tapped = srv.present(f"rfid:{TECH}")
    assert (tapped["result"], tapped["reason"]) == ("service", "technician"), tapped
    assert rig.state()["service"]["state"] == "pin"
    code, out, err = srv.evterm("login", "--pin-stdin", pin=PIN)  # the real command
    assert code == 0, err
    assert "logged in as \u2026EEFF" in out
    assert stat.S_IMODE(srv.token_file.stat().st_mode) == 0o600
    assert rig.state()["service"] == {"state": "active", "technician": "\u2026EEFF",
                                      "locked_until": None, "pin_until": None}

    code, out, err = srv.evterm("diag")
    assert code == 0, err
    assert "carlo_gavazzi_em580" in out and "recent sessions:" in out
    code, out, _ = srv.service(capsys, monkeypatch, "diag", "--json")
    diag = json.loads(out)
    assert diag["meter"]["last_reading"]["energy_wh"] and diag["meter"]["serial"]
    assert any(info["state"] == "ready" and (info["last_tap"] or {}).get("result") ==
               "service" for info in diag["readers"]["readers"].values()), diag["readers"]
    assert diag["config"]["service"]["pins_file"].endswith("pins.json")
    assert diag["config"]["auth"]["technician_ids"] == "***"

    code, out, _ = srv.service(capsys, monkeypatch, "out-of-service", "--reason",
                               "Meter replaced")
    assert code == 0 and "out of service: Meter replaced" in out
    state = rig.state()
    assert state["out_of_service"]["reason"] == "Meter replaced"
    assert state["out_of_service"]["by"] == "\u2026EEFF"
    assert state["accepting_sessions"] is False
    refused = rig.api("start", id_token="TOKEN-A")
    assert refused["ok"] is False and refused["error"] == "out of service: Meter replaced"
    code, out, _ = srv.service(capsys, monkeypatch, "in-service")
    assert code == 0 and rig.state()["out_of_service"] is None

    code, out, err = srv.service(capsys, monkeypatch, "selfcheck")
    assert code == 0, err
    assert "meter self-check passed" in out and "ok   serial" in out

    media = srv.folder / "media" / "usb0"
    code, out, err = srv.service(capsys, monkeypatch, "export", str(media))
    assert code == 0, err
    bundle, = media.iterdir()
    assert sorted(p.name for p in bundle.iterdir()) == sorted(BUNDLE_FILES)
    assert "daemon ready" in (bundle / "log.txt").read_text()
    assert (bundle / "facts" / "station.json").is_file()  # the report's facts
    for path in (p for p in bundle.rglob("*") if p.is_file()):
        data = path.read_text()
        assert not [s for s in forbidden(srv) if s in data], path.name
    code, _, err = srv.service(capsys, monkeypatch, "export", str(srv.folder / "elsewhere"))
    assert code == 1 and "is not under export_allowed_root" in err

    code, out, err = srv.service(capsys, monkeypatch, "resend")
    assert code == 0, err
    assert "backend offline" in out

    # card payment without a backend: the closing cannot ask the gateway, and says so
    code, _, err = srv.service(capsys, monkeypatch, "closing")
    assert code == 1 and "evterm service closing: action: closing: gateway: no backend " \
        "configured" in err, err
    code, out, err = srv.service(capsys, monkeypatch, "z-report")
    assert (code, out) == (0, "no closing yet\n"), err

    rig.ev("plug")
    assert rig.api("start", id_token="TOKEN-A")["ok"]
    rig.wait_phase("Charging", timeout_s=10)
    code, out, err = srv.service(capsys, monkeypatch, "stop")
    assert code == 0, err
    assert rig.wait_phase("Finishing")["stop_reason"] == "Technician"
    rig.ev("unplug")
    rig.wait_phase("Available")

    code, _, _ = srv.service(capsys, monkeypatch, "out-of-service", "--reason", "Restarting")
    assert code == 0
    code, out, err = srv.evterm("restart")
    assert code == 0, err
    assert "exit code 75" in out
    assert rig.daemon is not None and rig.daemon.wait(timeout=15) == 75
    rig.start_daemon()
    state = rig.state()
    assert state["out_of_service"]["reason"] == "Restarting"  # kept across the restart
    code, _, err = srv.service(capsys, monkeypatch, "in-service")  # the token is gone
    assert code == 1 and "token:" in err
    srv.events.close()
    srv.events = Subscriber(rig.socket_path)
    rig.wait_reader()
    assert srv.present(f"rfid:{TECH}")["result"] == "service"
    assert srv.service(capsys, monkeypatch, "login", "--pin-stdin", pin=PIN)[0] == 0
    assert srv.service(capsys, monkeypatch, "in-service")[0] == 0
    assert rig.state()["accepting_sessions"] is True
    code, out, _ = srv.service(capsys, monkeypatch, "logout")
    assert code == 0 and not srv.token_file.exists()


def test_wrong_pins_lock_the_service_menu_and_other_cards_open_nothing(
        service_rig, capsys, monkeypatch):
    srv, rig = service_rig, service_rig.rig
    ordinary = srv.present("rfid-4")
    assert ordinary["result"] == "declined", ordinary  # no backend: the offline policy
    assert rig.state()["service"]["state"] == "none"
    code, _, err = srv.service(capsys, monkeypatch, "login", "--pin-stdin", pin=PIN)
    assert code == 1 and "card: tap a technician card first" in err
    assert not srv.token_file.exists()
    code, _, err = srv.service(capsys, monkeypatch, "diag")
    assert code == 1 and "token: log in first" in err

    assert srv.present(f"rfid:{TECH}")["result"] == "service"
    for left in ("4 attempts", "3 attempts", "2 attempts", "1 attempt"):
        code, _, err = srv.service(capsys, monkeypatch, "login", "--pin-stdin", pin="000000")
        assert code == 1 and f"pin: wrong PIN ({left} left)" in err, err
    code, _, err = srv.evterm("login", "--pin-stdin", pin="000000")
    assert code == 1
    assert "locked: too many wrong PINs; try again in 600 s" in err, err
    locked = rig.state()["service"]
    assert locked["state"] == "locked" and locked["locked_until"]
    code, _, err = srv.service(capsys, monkeypatch, "login", "--pin-stdin", pin=PIN)
    assert code == 1 and "locked:" in err
    assert not srv.token_file.exists()
