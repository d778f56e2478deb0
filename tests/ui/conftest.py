"""Shared fixtures of the UI tests: a virtual screen, a daemon rig, the app as a process.

- `xvfb`: one Xvfb (1280x800) per test worker (hw_mocks.xvfb.Xvfb); missing Xvfb fails.
- `rig`: the station simulator and the daemon (hw_mocks.rig.Rig) in a short temporary
  folder, with a support phone, app start and e-receipt URLs; options (Rig keyword
  arguments, `extra` merged per section) from `@pytest.mark.rig(...)`.
- `ui_process(rig, size="800x480", language=None, extra_args=())`: starts `evterm ui`
  (with `extra_args`, e.g. `("--large-text",)`) against the rig's
  local API on the Xvfb and returns a `UiHandle` (hw_mocks.ui_process.UiProcess: `cmd`
  raising on errors, `dump`, `press`, `screenshot`, `stats`, `wait_for(what, predicate,
  timeout_s)`, `wait_screen`, `kill`, `proc`, `log_tail`) plus `control(cmd, **fields)`,
  the raw reply, errors included. Every app started is quit (killed if it hangs) after
  the test.
- `scenario`: the whole terminal (hw_mocks.demo_stack.DemoStack, 800x480, on the
  demo's signing LEM DCBM meter unless `@pytest.mark.demo(meter_model=...)` names
  another; DemoStack keyword arguments) and its scripted walk (hw_mocks.demo_scenario).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.demo_scenario import Scenario
from hw_mocks.demo_stack import DemoStack
from hw_mocks.rig import Rig
from hw_mocks.ui_process import UiError, UiProcess
from hw_mocks.xvfb import Xvfb, XvfbError
from ui.control import UiControl

SUPPORT_PHONE = "+49 30 1234 5678"
UI_SETTINGS: dict[str, object] = {
    "support_phone": SUPPORT_PHONE,
    "app_start_url": "https://pay.evterm.example/start/{station_id}/{code}",
    "receipt_url": "https://pay.evterm.example/receipt/{session_id}",
}


class UiHandle(UiProcess):
    """UiProcess plus the raw control reply (for asserting on refusals)."""

    def control(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return UiControl(self.control_path).cmd(cmd, **fields)


@pytest.fixture(scope="session")
def xvfb() -> Iterator[Xvfb]:
    screen = Xvfb("1280x800")
    try:
        screen.start()
    except XvfbError as exc:
        pytest.fail(str(exc))
    yield screen
    screen.stop()


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    folder = Path(tempfile.mkdtemp(prefix="evui-"))  # short: socket paths < 108 bytes
    marker = request.node.get_closest_marker("rig")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    extra: dict[str, dict[str, object]] = {"ui": dict(UI_SETTINGS)}
    for section, values in options.pop("extra", {}).items():
        extra[section] = {**extra.get(section, {}), **values}
    try:
        with Rig(folder / "rig", extra=extra, **options) as started:
            started.start_station()
            started.start_daemon()
            yield started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ui_process(xvfb: Xvfb) -> Iterator[Callable[..., UiHandle]]:
    started: list[UiHandle] = []
    folders: list[str] = []

    def start(rig: Rig, size: str = "800x480", language: str | None = None,
              extra_args: tuple[str, ...] = ()) -> UiHandle:
        folder = tempfile.mkdtemp(prefix="evuic-")
        folders.append(folder)
        handle = UiHandle(rig.socket_path, str(Path(folder) / "ui.sock"), xvfb.env(),
                          size=size, language=language, log_path=Path(folder) / "ui.log",
                          extra_args=extra_args)
        started.append(handle)
        try:
            handle.start()
        except UiError as exc:
            pytest.fail(str(exc))
        return handle

    yield start
    for handle in started:
        handle.stop()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[Scenario]:
    folder = Path(tempfile.mkdtemp(prefix="evui-"))  # short: socket paths < 108 bytes
    marker = request.node.get_closest_marker("demo")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    stack = DemoStack(folder / "s", speed=30.0, ui_size="800x480", **options)
    try:
        stack.start()
        yield Scenario(stack, folder / "shots")
    except BaseException:
        if stack.screen is not None:
            print(stack.screen.log_tail())
        raise
    finally:
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)
