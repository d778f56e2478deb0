"""The whole terminal on simulated hardware, as the demo, the UI tests and the UI benchmark
run it.

`DemoStack(folder, speed=30, ui_size="1280x800", display=None,
meter_model=DEMO_METER_MODEL)`: `start()` brings up,
each as its own process and each a real component:
- mosquitto on a free loopback port (hw_mocks.mosquitto.Broker, persistent like a
  production broker),
- a private pcscd with one vpcd slot (hw_mocks.pcscd.PcscdHandle) — cards are tapped by
  `evterm sim tap` processes,
- the backend simulator (`evterm sim backend`: CSMS + payment gateway) on the broker,
- the station simulator (car, power stage, DC meter: by default the LEM DCBM 400/600,
  a signing meter on its HTTP API; a plain model on Modbus TCP) and the daemon with the
  card reader, bank-card payment and the MQTT link (hw_mocks.rig.Rig),
- the touchscreen app (`evterm ui`) on `display`, or on a private Xvfb when display is
  None and `with_ui` is true;
- with `payment_terminal="zvt"`: `evterm sim zvt`, an external ZVT payment terminal that
  takes the bank cards (`[payment] terminal = zvt`); the PC/SC reader keeps the charge
  cards.
Then `tap(card)` (`zvt:visa`, `zvt:visa-declined`: a card held to the payment
terminal), `plug()`, `unplug()`, `offline()`/`online()` (the broker stops and comes
back), `app_start()` (the driver's phone starts a session through the backend
with the screen's QR code), `ui` (hw_mocks.ui_process.UiProcess) and `close()`.

The daemon is supervised as systemd's `Restart=on-failure` would (`DaemonSupervisor`):
when it exits with an exit code other than 0, 2 (bad config) or 3 (damaged journal),
for example RESTART_EXIT_CODE after `evterm service restart`, it is started again and
the stack's event subscriber reconnects. A daemon killed by a signal (the scenario's
power cut, `Rig.kill_daemon`) is left to whoever killed it.

On failure each step raises RigError/UiError/BrokerError/PcscdError naming the component
and the tail of its log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw_mocks.backend_process import BackendMqttProcess
from hw_mocks.demo import DEMO_METER_MODEL
from hw_mocks.mosquitto import Broker
from hw_mocks.pcscd import PcscdHandle
from hw_mocks.ports import free_port
from hw_mocks.rig import (
    REPO,
    STATION_ID,
    Rig,
    RigError,
    Subscriber,
    example_tariff,
    wait_ready,
)
from hw_mocks.ui_process import UiProcess
from hw_mocks.xvfb import Xvfb
from terminal.ports import RESTART_EXIT_CODE

DEMO_TARIFF = example_tariff("de_dc_hpc_demo.json")
TECHNICIAN_ID = "04AABBCCDDEEFF"
TECHNICIAN_CARD = f"rfid:{TECHNICIAN_ID}"
TECHNICIAN_PIN = "2468"  # the demo's only: set with `evterm service set-pin` in the field
# The CSMS's token list: what charge cards it knows.
TOKENS = (
    {"id_token": "04A1B2C3D4E5F6", "status": "Accepted"},          # card rfid-7
    {"id_token": "1A2B3C4D", "status": "Accepted"},                # card rfid-4
    {"id_token": "04A1B2C3D4E5F6A7B8C9", "status": "Blocked"},     # card rfid-10
    {"id_token": "APP-USER-42", "status": "Accepted"},             # the app's user
)
UI_SETTINGS = {
    "support_phone": "+49 30 1234 5678",
    "app_start_url": "https://pay.evterm.example/start/{station_id}/{code}",
    "receipt_url": "https://pay.evterm.example/receipt/{session_id}",
    # The demo's clock runs fast: keep the language and the receipt for an hour of it.
    "language_reset_s": 3600,
    "receipt_timeout_s": 3600,
}


NOT_RESTARTED = (0, 2, 3)  # exit codes systemd's unit does not restart (RestartPreventExitStatus)


class DaemonSupervisor:
    """Restarts the daemon as systemd would: `process()` is the current daemon process,
    `restart()` starts a new one; `say(text)` tells the operator. Checks every
    `interval_s` on its own thread until `stop()`."""

    def __init__(self, process: Callable[[], subprocess.Popen[str] | None],
                 restart: Callable[[], object], say: Callable[[str], None],
                 interval_s: float = 0.2) -> None:
        self.process = process
        self.restart = restart
        self.say = say
        self.interval_s = interval_s
        self.restarts = 0
        self.lock = threading.Lock()  # held while a daemon is started
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="demo-supervisor",
                                        daemon=True)

    def start(self) -> DaemonSupervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def check(self) -> bool:
        """One look: restart the daemon when it exited as systemd would restart it."""
        with self.lock:
            proc = self.process()
            code = None if proc is None else proc.poll()
            if code is None or code < 0 or code in NOT_RESTARTED or self._stopped.is_set():
                return False
            why = " (restart asked for)" if code == RESTART_EXIT_CODE else ""
            self.say(f"evterm demo: the daemon exited with code {code}{why}; starting it "
                     "again, as systemd would")
            try:
                self.restart()
            except Exception as exc:  # the demo goes on; the next look tries again
                self.say(f"evterm demo: the daemon did not start again: {exc}")
                return False
            self.restarts += 1
            self.say("evterm demo: the daemon is running again")
            return True

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval_s):
            self.check()


@dataclass
class DemoStack:
    folder: Path
    speed: float = 30.0
    ui_size: str = "1280x800"
    display: str | None = None
    with_ui: bool = True
    language: str | None = None
    meter_model: str = DEMO_METER_MODEL  # a shipped model (drivers/meter/models)
    ui: dict[str, object] = field(default_factory=dict)  # more [ui] settings
    service: dict[str, object] = field(default_factory=dict)  # more [service] settings
    broker: Broker | None = None
    pcscd: PcscdHandle | None = None
    backend: BackendMqttProcess | None = None
    rig: Rig | None = None
    screen: UiProcess | None = None
    xvfb: Xvfb | None = None
    events: Subscriber | None = None
    usb: Path | None = None
    supervisor: DaemonSupervisor | None = None
    payment_terminal: str = "builtin"  # or "zvt": bank cards at `evterm sim zvt`
    zvt: subprocess.Popen[str] | None = None
    say: Callable[[str], None] = lambda text: print(text, flush=True)
    _left_at_s: float = 0.0

    def start(self) -> DemoStack:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(self.folder / "broker", persistent=True).start()
        self.pcscd = PcscdHandle(self.folder / "pcsc", readers=1)
        self.pcscd.start()
        self.backend = BackendMqttProcess(self.folder / "bk", self.broker, TOKENS)
        self.backend.start()
        from terminal.service.pins import set_pin

        pins_file = self.folder / "pins.json"
        set_pin(pins_file, TECHNICIAN_ID, TECHNICIAN_PIN)
        self.usb = self.folder / "usb"  # stands for a USB stick's mount point
        self.usb.mkdir(exist_ok=True)
        token_key = self.folder / "token.key"
        token_key.write_text(os.urandom(32).hex())
        token_key.chmod(0o600)
        extra: dict[str, dict[str, object]] = {
            "readers": {"pcsc": True, "pcsc_socket": self.pcscd.socket_path},
            "payment": {"token_key_file": str(token_key),
                        "gateway_key_file": str(self.backend.gateway_public),
                        "preauth_amount": "50.00"},
            "backend": {"kind": "mqtt", "mqtt_host": self.broker.host,
                        "mqtt_port": self.broker.port,
                        "operator_key_file": str(self.backend.operator_public),
                        "request_timeout_s": 3.0, "reconnect_max_s": 1},
            "auth": {"technician_ids": TECHNICIAN_ID},
            "ui": {**UI_SETTINGS, **self.ui},
            "service": {"pins_file": str(pins_file), "export_allowed_root": str(self.usb),
                        "pin_window_s": 600, "idle_logout_s": 3600,  # the clock runs fast
                        "log_file": str(self.folder / "rig" / "daemon.log"), **self.service},
        }
        if self.payment_terminal == "zvt":
            extra["payment"] = {"terminal": "zvt", "token_key_file": str(token_key),
                                "preauth_amount": "50.00"}
            extra["zvt"] = {"host": "127.0.0.1", "port": self._start_zvt(),
                            "read_card_timeout_s": 60, "retry_s": 1.0}
        self.rig = Rig(self.folder / "rig", speed=self.speed, tariff_file=DEMO_TARIFF,
                       meter_model=self.meter_model, poll_interval_s=1.0,
                       operator="Autobahn Fast Charge GmbH", extra=extra)
        self.rig.start_station()
        self.rig.start_daemon()
        self.rig.wait_reader()  # slot 0, where `tap` presents the cards
        self.rig.wait_for("the backend link", lambda: self.rig.state()["backend_online"], 15)  # type: ignore[union-attr]
        # The CSMS sends its list of charge cards, so they work offline too.
        answer = self.backend.admin("command", station_id=STATION_ID, name="local_list")
        if not (answer.get("answer") or {}).get("ok"):
            raise RigError(f"the station refused the local list: {answer}")
        self.events = Subscriber(self.rig.socket_path)
        self.supervisor = DaemonSupervisor(lambda: self.rig.daemon if self.rig else None,
                                           self._restart_daemon, self.say).start()
        if self.with_ui:
            self.start_ui()
        return self

    @property
    def zvt_control(self) -> str:
        return str(self.folder / "zvt.sock")

    def _start_zvt(self) -> int:
        """`evterm sim zvt` on a free port, its state kept in the demo's folder."""
        port = free_port()
        self.zvt = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "sim", "zvt", "--tcp", f"127.0.0.1:{port}",
             "--control", self.zvt_control, "--state", str(self.folder / "zvt.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        wait_ready(self.zvt, "zvt simulator", 15.0)
        return port

    def zvt_request(self, cmd: str, **values: object) -> dict[str, Any]:
        """A control request to the payment terminal simulator; its status."""
        from hw_mocks.station_sim import control

        reply = control(self.zvt_control, {"cmd": cmd, **values})
        if not reply.get("ok"):
            raise RigError(f"evterm sim zvt: {reply.get('error')}")
        return dict(reply["status"])

    def _zvt_tap(self, card: str) -> dict[str, Any]:
        """A card held to the payment terminal once the daemon keeps it waiting for one;
        `NAME-declined`: the bank declines it (result 05)."""
        assert self.rig is not None and self.events is not None
        name, _, declined = card.partition("-")
        self.rig.wait_for("the payment terminal waiting for a card",
                          lambda: self.zvt_request("status")["waiting_for_card"], 30)
        if declined:
            self.zvt_request("next", decline="05")
        mark = self.events.mark()
        self.zvt_request("present", card=name)
        return self.events.tap(mark)

    @property
    def socket_path(self) -> str:
        """The daemon's local-API socket (for `evterm service --socket ...`)."""
        assert self.rig is not None
        return self.rig.socket_path

    def _restart_daemon(self) -> None:
        """Start the daemon again and reconnect the event subscriber."""
        assert self.rig is not None
        self.rig.start_daemon()
        if self.events is not None:
            self.events.close()
        self.events = Subscriber(self.rig.socket_path)

    def start_ui(self) -> UiProcess:
        assert self.rig is not None
        display = self.display
        if display is None:
            width, height = self.ui_size.split("x")
            self.xvfb = Xvfb(f"{width}x{height}").start()
            display = self.xvfb.display
        env = {**os.environ, "DISPLAY": str(display)}
        self.screen = UiProcess(self.rig.socket_path, str(self.folder / "ui.sock"), env,
                                size=self.ui_size, language=self.language,
                                log_path=self.folder / "ui.log").start()
        return self.screen

    # ---- the driver's and the world's actions ----------------------------------------------

    def tap(self, card: str, hold_s: float = 0.8) -> dict[str, Any]:
        """Present a card on the reader (`zvt:NAME`: on the payment terminal); the daemon's
        outcome (its `tap` event). Cards come at least 0.5 s apart: pcscd sees a vpcd
        card at its 0.4 s presence poll."""
        if card.startswith("zvt:"):
            return self._zvt_tap(card[4:])
        assert self.pcscd is not None and self.events is not None
        time.sleep(max(0.0, self._left_at_s + 0.5 - time.monotonic()))
        mark = self.events.mark()
        proc = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "sim", "tap", card, "--hold", str(hold_s),
             "--port", str(self.pcscd.base_port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        out, err = proc.communicate(timeout=30)
        self._left_at_s = time.monotonic()
        if proc.returncode != 0:
            raise RigError(f"evterm sim tap {card} failed ({proc.returncode}): {err.strip()}")
        left = json.loads(out.strip().splitlines()[-1])
        if left.get("event") != "left":
            raise RigError(f"evterm sim tap {card}: unexpected output {out!r}")
        return self.events.tap(mark)

    def plug(self) -> None:
        assert self.rig is not None
        self.rig.ev("plug")

    def unplug(self) -> None:
        assert self.rig is not None
        self.rig.ev("unplug")

    def offline(self) -> None:
        """The network goes away: the broker stops; the terminal notices."""
        assert self.broker is not None and self.rig is not None
        self.broker.stop()
        self.rig.wait_for("the link down", lambda: self.rig.state()["backend_online"] is False,  # type: ignore[union-attr]
                          20)

    def online(self) -> None:
        assert self.broker is not None and self.rig is not None
        self.broker.start()
        self.rig.wait_for("the link back", lambda: self.rig.state()["backend_online"], 30)  # type: ignore[union-attr]

    def app_start(self, id_token: str = "APP-USER-42") -> dict[str, Any]:
        """The driver scanned the screen's QR code: the app asks the backend, the backend
        sends a remote start with the code. The station's answer."""
        assert self.backend is not None and self.rig is not None
        app = self.rig.state().get("app_start") or {}
        body = {"id_token": id_token, **({"start_code": app["code"]} if app else {})}
        reply = self.backend.admin("command", station_id=STATION_ID, name="remote_start",
                                   body=body)
        return dict(reply.get("answer") or {})

    def wait_delivered(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """Wait until every message in the terminal's outbox is delivered and known to the
        backend (the broker's PUBACK comes before the backend has it); the backend's view
        of the events."""
        from terminal.store import Store

        assert self.rig is not None and self.backend is not None
        backend = self.backend

        def arrived() -> dict[str, Any] | None:
            store = Store.open(self.rig.database, create=False)  # type: ignore[union-attr]
            try:
                messages = store.outbox()
            finally:
                store.close()
            if any(m.delivered_at is None for m in messages):
                return None
            view = backend.admin("events", station_id=STATION_ID)
            known = {e["idempotency_key"] for e in view["events"]}
            return view if {m.idempotency_key for m in messages} <= known else None

        return dict(self.rig.wait_for("every message at the backend", arrived, timeout_s))

    def close(self) -> None:
        for step in (self._close_supervisor, self._close_ui, self._close_events,
                     self._close_rig, self._close_zvt, self._close_backend,
                     self._close_pcscd, self._close_broker):
            try:
                step()
            except Exception as exc:  # closing must go on with the rest
                print(f"demo stack: while closing: {exc}", file=sys.stderr)

    def _close_supervisor(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()

    def _close_ui(self) -> None:
        if self.screen is not None:
            self.screen.stop()
        if self.xvfb is not None:
            self.xvfb.stop()

    def _close_events(self) -> None:
        if self.events is not None:
            self.events.close()

    def _close_rig(self) -> None:
        if self.rig is not None:
            self.rig.close()

    def _close_zvt(self) -> None:
        if self.zvt is not None and self.zvt.poll() is None:
            self.zvt.terminate()
            self.zvt.wait(timeout=5)

    def _close_backend(self) -> None:
        if self.backend is not None:
            self.backend.close()

    def _close_pcscd(self) -> None:
        if self.pcscd is not None:
            self.pcscd.stop()

    def _close_broker(self) -> None:
        if self.broker is not None and self.broker.running:
            self.broker.stop()

    def __enter__(self) -> DemoStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
