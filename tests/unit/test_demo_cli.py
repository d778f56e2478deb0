"""`evterm demo` without its processes: the meter it runs on (the signing LEM DCBM by
default, `--meter-model` for another, a wrong name refused), the screenshots folder (a
folder the user names is never deleted), the socket it prints, the control panel's
answers and the daemon's supervisor (restarted as systemd would)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

import hw_mocks.demo_scenario
import hw_mocks.demo_stack
from hw_mocks import demo
from hw_mocks.demo_stack import DaemonSupervisor, DemoStack
from terminal.ports import RESTART_EXIT_CODE

SOCKET = "/tmp/evdemo-x/rig/local.sock"


class FakeStack:
    made: ClassVar[list[dict[str, object]]] = []  # the keyword arguments of every stack made

    def __init__(self, folder: Path, **kwargs: object) -> None:
        self.folder = folder
        self.socket_path = SOCKET
        self.rig = None
        FakeStack.made.append(kwargs)

    def start(self) -> FakeStack:
        return self

    def close(self) -> None:
        pass


class FakeScenario:
    def __init__(self, stack: object, shots: Path, languages: tuple[str, ...],
                 say: Any = None) -> None:
        self.shots = shots
        self.receipts: dict[str, str] = {}

    def run_all(self) -> None:
        (self.shots / "01-idle-en.png").write_bytes(b"png")


@pytest.fixture
def fake_demo(monkeypatch, tmp_path):
    monkeypatch.setattr(hw_mocks.demo_stack, "DemoStack", FakeStack)
    monkeypatch.setattr(hw_mocks.demo_scenario, "Scenario", FakeScenario)
    monkeypatch.setattr(demo, "_print_backend", lambda stack: None)
    monkeypatch.setattr(demo, "_print_signed", lambda stack: None)
    monkeypatch.setattr(FakeStack, "made", [])
    monkeypatch.delenv("DISPLAY", raising=False)

    def run(screenshots: Path, *more: str) -> int:
        parser = argparse.ArgumentParser()
        demo.register(parser.add_subparsers())
        args = parser.parse_args(["demo", "--headless", "--folder", str(tmp_path / "files"),
                                  "--screenshots", str(screenshots), "--languages", "en",
                                  *more])
        return demo.run(args)

    return run


def test_screenshots_into_a_folder_with_the_users_files_delete_nothing(fake_demo, tmp_path):
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    (home / "photos" / "cat.png").write_bytes(b"cat")
    assert fake_demo(home) == 0
    assert (home / "notes.txt").read_text() == "mine"
    assert (home / "photos" / "cat.png").read_bytes() == b"cat"
    shots = list(home.glob("evterm-demo-screens-*/01-idle-en.png"))
    assert len(shots) == 1  # in a new subfolder of its own


def test_a_second_run_replaces_only_its_own_screenshots(fake_demo, tmp_path):
    shots = tmp_path / "shots"
    assert fake_demo(shots) == 0
    assert (shots / "01-idle-en.png").exists()
    (shots / "99-old-screen-de.png").write_bytes(b"old")  # as an earlier run left it
    (shots / "mine.txt").write_text("added by the user")
    assert fake_demo(shots) == 0
    assert (shots / "01-idle-en.png").exists()
    assert not (shots / "99-old-screen-de.png").exists()
    assert (shots / "mine.txt").read_text() == "added by the user"


def test_the_demo_prints_its_socket_and_a_service_line(fake_demo, tmp_path, capsys):
    assert fake_demo(tmp_path / "shots") == 0
    out = capsys.readouterr().out
    assert SOCKET in out
    assert f"evterm service --socket {SOCKET} login" in out


def test_the_demo_runs_on_the_signing_lem_meter_by_default(fake_demo, tmp_path, capsys):
    assert fake_demo(tmp_path / "shots") == 0
    assert FakeStack.made[-1]["meter_model"] == "lem_dcbm400600" == demo.DEMO_METER_MODEL
    assert "(meter lem_dcbm400600)" in capsys.readouterr().out


def test_the_payment_terminal_is_picked_builtin_by_default(fake_demo, tmp_path, capsys):
    assert fake_demo(tmp_path / "shots") == 0
    assert FakeStack.made[-1]["payment_terminal"] == "builtin"
    assert fake_demo(tmp_path / "shots", "--payment-terminal", "zvt") == 0
    assert FakeStack.made[-1]["payment_terminal"] == "zvt"
    with pytest.raises(SystemExit):
        fake_demo(tmp_path / "shots", "--payment-terminal", "feig")
    assert "invalid choice: 'feig'" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["carlo_gavazzi_em580", "isabellenhuette_iem_dcr"])
def test_meter_model_picks_another_shipped_meter(fake_demo, tmp_path, model):
    assert fake_demo(tmp_path / "shots", "--meter-model", model) == 0
    assert FakeStack.made[-1]["meter_model"] == model


def test_an_unknown_meter_model_is_refused_naming_the_shipped_ones(fake_demo, tmp_path,
                                                                     capsys):
    assert fake_demo(tmp_path / "shots", "--meter-model", "lem_dcbm") == 2
    out = capsys.readouterr().out
    assert "evterm demo: --meter-model: unknown meter model 'lem_dcbm'" in out
    assert "lem_dcbm400600" in out and "Traceback" not in out
    assert FakeStack.made == []  # nothing was started
    assert not (tmp_path / "shots").exists()


@pytest.mark.parametrize("model, query", [("lem_dcbm400600", ""),
                                          ("isabellenhuette_iem_dcr", "?ci=EVT-E0001-1"),
                                          ("carlo_gavazzi_em580", None)])
def test_the_rig_gives_each_meter_model_a_url_its_driver_takes(tmp_path, model, query):
    from drivers.meter import open_meter
    from hw_mocks.rig import Rig

    rig = Rig(tmp_path / "rig", meter_model=model)
    if query is None:  # a Modbus meter on the station's port
        assert rig.meter_url == f"tcp://127.0.0.1:{rig.port}" and rig.meter_http_args == []
        return
    assert rig.meter_url == f"http://127.0.0.1:{rig.meter_http_port}{query}"
    meter = open_meter(model, rig.meter_url)  # the driver parses its URL (no connection)
    meter.close()
    if query:
        assert meter.charge_point_id == "EVT-E0001-1"  # type: ignore[attr-defined]


# ---- the control panel --------------------------------------------------------------------


class FakeRig:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def ev(self, cmd: str, **extra: object) -> dict[str, object]:
        self.sent.append((cmd, extra))
        return {"plugged": cmd == "plug"}


def _panel(monkeypatch, tmp_path, lines: list[str]) -> tuple[FakeRig, list[str]]:
    stack = DemoStack(tmp_path)
    rig = FakeRig()
    stack.rig = rig  # type: ignore[assignment]
    said: list[str] = []
    monkeypatch.setattr(demo, "_say", said.append)
    feed = iter(lines)

    def fake_input(prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    demo._control_panel(stack)
    return rig, said[1:]  # after the help text


def test_panel_bad_fault_code_is_explained_not_a_valueerror(monkeypatch, tmp_path):
    rig, said = _panel(monkeypatch, tmp_path, ["fault charger_error x"])
    assert said == ["  fault: CODE must be a whole number (1-6), got 'x'"]
    assert rig.sent == []


def test_panel_unmatched_quote_does_not_end_the_demo(monkeypatch, tmp_path):
    rig, said = _panel(monkeypatch, tmp_path, ['tap "visa', "plug"])
    assert said[0].startswith("  cannot read that line (No closing quotation)")
    assert rig.sent == [("plug", {})]  # the panel went on


def test_panel_tap_without_a_card_asks_which_card(monkeypatch, tmp_path):
    _, said = _panel(monkeypatch, tmp_path, ["tap"])
    assert said[0].startswith("  tap: which card? tap CARD, CARD one of visa")


def test_panel_plug_and_unplug_say_what_happened(monkeypatch, tmp_path):
    rig, said = _panel(monkeypatch, tmp_path, ["plug", "unplug", "fault charger_error 3"])
    assert said == ["  the car is plugged in", "  the car is unplugged",
                    "  fault charger_error raised with code 3; clear ends it"]
    assert rig.sent[2] == ("fault", {"kind": "charger_error", "code": 3})


# ---- the daemon's supervisor --------------------------------------------------------------


def _exited(code: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"], text=True)
    proc.wait(timeout=10)
    return proc


@pytest.mark.parametrize("code, restarted", [(RESTART_EXIT_CODE, True), (1, True),
                                             (0, False), (2, False), (3, False)])
def test_supervisor_restarts_the_daemon_as_systemd_would(code, restarted):
    current = [_exited(code)]
    said: list[str] = []

    def restart() -> None:
        current[0] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])

    supervisor = DaemonSupervisor(lambda: current[0], restart, said.append)
    try:
        assert supervisor.check() is restarted
        assert supervisor.restarts == int(restarted)
        assert current[0].poll() is None if restarted else current[0].returncode == code
        assert supervisor.check() is False  # running: nothing to do
        if code == RESTART_EXIT_CODE:
            assert f"exited with code {code} (restart asked for)" in said[0]
    finally:
        if current[0].poll() is None:
            current[0].kill()
            current[0].wait()


def test_supervisor_leaves_a_killed_daemon_to_whoever_killed_it():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    proc.kill()
    proc.wait()
    supervisor = DaemonSupervisor(lambda: proc, lambda: pytest.fail("restarted"), print)
    assert supervisor.check() is False


def test_supervisor_thread_restarts_without_being_asked():
    current = [_exited(RESTART_EXIT_CODE)]
    started: list[int] = []

    def restart() -> None:
        started.append(1)
        current[0] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])

    supervisor = DaemonSupervisor(lambda: current[0], restart, lambda text: None,
                                  interval_s=0.01).start()
    try:
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started == [1]
    finally:
        supervisor.stop()
        current[0].kill()
        current[0].wait()
