"""The whole stack with an external ZVT payment terminal, each part its own process: the
station simulator, `evterm sim zvt` (its --state file is the terminal's truth), the
loopback backend simulator and the daemon (`[payment] terminal = zvt`). Used by
tests/integration/test_zvt_sessions.py and test_zvt_crash.py, and by the ZVT series of
bench/bench_taps.py (bench/zvt_series.py).

Provides `zvt_rig(folder)` (a context manager yielding a `ZvtRig`): `present(card)` holds
a card to the terminal ("tap") and returns the daemon's `tap` event; `control(...)`
talks to the simulator; `sim_state()` reads its state; `payment(session_id)` and
`wait_settled(session_id, status)` read the journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw_mocks.backend_process import BackendProcess
from hw_mocks.ports import free_port
from hw_mocks.rig import Rig, RigError, Subscriber, wait_ready
from hw_mocks.station_sim import control
from terminal.store import PaymentRow, Store


@dataclass
class ZvtRig:
    rig: Rig
    backend: BackendProcess
    sim: subprocess.Popen[str]
    control_path: str
    state_path: Path
    events: Subscriber | None = None

    def control(self, cmd: str, **values: object) -> dict[str, Any]:
        reply = control(self.control_path, {"cmd": cmd, **values})
        assert reply["ok"], reply
        return dict(reply["status"])

    def sim_state(self) -> dict[str, Any]:
        """The terminal's persisted truth (its --state file)."""
        return dict(json.loads(self.state_path.read_text(encoding="utf-8")))

    def subscribe(self) -> Subscriber:
        if self.events is not None:
            self.events.close()
        self.events = Subscriber(self.rig.socket_path)
        return self.events

    def wait_card_wait(self) -> None:
        """Until the daemon keeps the terminal waiting for a card (Read card)."""
        self.rig.wait_for("the terminal's card wait", lambda: self._waiting(), 20)

    def _waiting(self) -> bool:
        status = self.control("status")
        return status.get("waiting_for_card") is True

    def present(self, card: str = "visa", timeout_s: float = 20.0) -> dict[str, Any]:
        """Hold `card` to the terminal; the daemon's outcome (the `tap` event)."""
        events = self.events or self.subscribe()
        self.wait_card_wait()
        mark = events.mark()
        self.control("present", card=card)
        try:
            return events.tap(mark, timeout_s)
        except RigError as exc:
            raise RigError(f"{exc} (card {card}); daemon log:\n{self.rig.tail('daemon')}") \
                from None

    def payment(self, session_id: str) -> PaymentRow:
        store = Store.open(self.rig.database, create=False)
        try:
            found = store.payment(session_id=session_id)
            assert found is not None, session_id
            return found
        finally:
            store.close()

    def payments(self) -> list[PaymentRow]:
        store = Store.open(self.rig.database, create=False)
        try:
            ids = [r[0] for r in store.conn.execute(
                "SELECT session_id FROM payments ORDER BY created_at")]
            return [p for i in ids if (p := store.payment(session_id=i)) is not None]
        finally:
            store.close()

    def wait_settled(self, session_id: str, status: str, timeout_s: float = 20) -> PaymentRow:
        settled: PaymentRow = self.rig.wait_for(
            f"payment of {session_id} {status}",
            lambda: (p := self.payment(session_id)).status == status and p, timeout_s)
        return settled


@contextlib.contextmanager
def zvt_rig(folder: Path, **settings: dict[str, object]) -> Iterator[ZvtRig]:
    backend = BackendProcess(folder / "bk")
    backend.start()
    control_path = str(folder / "zvt.sock")
    state_path = folder / "zvt.json"
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "terminal.cli", "sim", "zvt", "--tcp", f"127.0.0.1:{port}",
         "--control", control_path, "--state", str(state_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    token_key = folder / "token.key"
    token_key.write_text(os.urandom(32).hex())
    extra: dict[str, dict[str, object]] = {
        "payment": {"terminal": "zvt", "token_key_file": str(token_key),
                    "preauth_amount": "50.00"},
        "zvt": {"host": "127.0.0.1", "port": port, "read_card_timeout_s": 30,
                "retry_s": 0.5, "response_timeout_s": 5.0},
        "backend": {"kind": "loopback", "socket_path": backend.socket,
                    "request_timeout_s": 2.0},
    }
    for name, values in settings.items():
        extra[name] = {**extra.get(name, {}), **values}
    rig = Rig(folder / "rig", speed=30.0, extra=extra, session={"connection_timeout_s": 600})
    try:
        wait_ready(sim, "zvt simulator", 15.0)
        rig.start_station()
        rig.start_daemon()
        zvt = ZvtRig(rig, backend, sim, control_path, state_path)
        yield zvt
        if zvt.events is not None:
            zvt.events.close()
    finally:
        rig.close()
        backend.close()
        if sim.poll() is None:
            sim.terminate()
            sim.wait(timeout=5)
