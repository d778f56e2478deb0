"""A stand-in for the daemon's local API with the technician's service ops, for the UI
tests of the service screens (the touchscreen only ever talks to this socket).

`FakeLocalApi(path).start()` serves a Unix socket speaking JSON lines like
terminal/localapi.py: replies `{"id", "ok", "op", ...}`, `subscribe` followed by pushed
`{"type": "state"}` messages. It answers `service_login` (PIN `PIN`, anything else is
"pin: wrong PIN (N attempts left)"), `service_diagnostics` (DIAGNOSTICS),
`service_receipt`, `service_action` (out_of_service / in_service change the snapshot,
meter_selfcheck and export answer like the contract), `service_logout` and `language`.
`open_pin_window()`, `set_state(**changes)` push a new snapshot; `requests` lists every
request received (the tests read what the UI sent).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path
from typing import Any

PIN = "2468"
TOKEN = "tok-7f3a9c"
TECHNICIAN = "\u20261234"
SESSION = "5b0e6a6e-3c1f-4a59-9f57-0d8c5e0e2b11"
PRICE_LINES = ["0.59 EUR/kWh incl. 19% VAT", "Session fee 0.00 EUR"]

DIAGNOSTICS: dict[str, Any] = {  # shaped like terminal/service.py's diagnostics()
    "generated_at": "2026-11-21T14:25:00Z",
    "station": {"id": "DE*EVT*E0001*1", "phase": "Available", "session_id": None,
                "accepting_sessions": True, "refusal": None, "out_of_service": None},
    "meter": {"model": "sim-dc-meter", "url": "tcp://127.0.0.1:5020", "unit_id": 1,
              "serial": "SIM00012345", "expected_serial": "SIM00012345",
              "last_reading": {"energy_wh": "123456.7", "power_w": "0", "voltage_v": "401.2",
                               "current_a": "0.0", "at": "2026-11-21T14:24:59Z"},
              "last_error": None, "fault": None, "fault_since": None, "poll_interval_s": 1.0,
              "counters": {"polls": 8123, "failed_polls": 2,
                           "errors_by_kind": {"timeout": 2}}},
    "readers": {"pcsc": True, "serial_rfid_device": "/dev/ttyUSB0",
                "readers": {"*": {"state": "ready", "last_tap": None},
                            "ACS ACR1252 00 00": {"state": "ready", "last_tap": {
                                "at": "2026-11-21T14:20:01Z", "kind": "rfid",
                                "result": "service", "reason": "technician"}},
                            "/dev/ttyUSB0": {"state": "absent", "last_tap": None}},
                "dropped_taps": 0},
    "charger": {"kind": "modbus", "url": "tcp://127.0.0.1:5021", "unit_id": 1,
                "ev_state": "A", "plugged": False, "output_wanted": False,
                "output_commanded": False, "output_confirmed": False, "fault": None,
                "counters": {"polls": 8120, "failed_polls": 0}},
    "backend": {"kind": "mqtt", "connected": True, "last_ack_at": "2026-11-21T14:24:51Z",
                "outbox_depth": 3, "oldest_undelivered_at": "2026-11-21T14:24:18Z",
                "oldest_undelivered_age_s": 42, "counters": {"published": 120}},
    "storage": {"state_dir": "/var/lib/evterm", "database": "/var/lib/evterm/evterm.db",
                "database_bytes": 1_843_200, "free_bytes": 12_400_000_000,
                "schema_version": 5, "storage_ok": True, "min_free_storage_mb": 50},
    "software": {"version": "0.9.0", "python": "3.11.7", "platform": "Linux-6.1-aarch64",
                 "pid": 812, "started_at": "2026-11-21T06:00:00Z", "uptime_s": 30300},
    "config": {"service": {"export_allowed_root": "/media/usb", "pins_file": "/etc/evterm/p"},
               "payment": {"terminal_key": "***"}},
    "recent_sessions": [
        {"id": SESSION, "opened_at": "2026-11-21T13:02:05Z",
         "started_at": "2026-11-21T13:02:11Z", "stopped_at": "2026-11-21T13:40:02Z",
         "closed_at": "2026-11-21T13:41:00Z", "phase": "Completed",
         "stop_reason": "StoppedByEV", "energy_wh": "42316", "total": "24.97",
         "currency": "EUR", "has_receipt": True},
        {"id": "0c4d0c2a-8f4e-4d1b-9a55-1f2c3d4e5f60", "opened_at": "2026-11-20T18:11:30Z",
         "started_at": None, "stopped_at": None, "closed_at": "2026-11-20T18:12:00Z",
         "phase": "Rejected", "stop_reason": "DeAuthorized", "energy_wh": None,
         "total": None, "currency": None, "has_receipt": False},
    ],
    "recent_faults": [
        {"at": "2026-11-21T11:52:40Z", "source": "meter", "event": "cleared",
         "fault": "timeout"},
        {"at": "2026-11-21T11:52:31Z", "source": "meter", "event": "raised",
         "fault": "timeout"},
    ],
}
RECEIPT_TEXT = "\n".join([
    "EVTerm Charging GmbH", "Station DE*EVT*E0001*1", "-" * 32,
    "Energy            42.316 kWh", "Price          0.59 EUR/kWh", "-" * 32,
    "Total incl. VAT     24.97 EUR", "VAT 19%              3.99 EUR"])


def daemon_state(**changes: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "station_id": "DE*EVT*E0001*1", "phase": "Available", "session_id": None,
        "plugged": False, "output_on": False, "energy_wh": None, "power_w": None,
        "cost": None, "cost_cap": None, "energy_cap_wh": None, "stop_reason": None,
        "meter_fault": None, "charger_fault": None,
        "price_list": {"tariff_id": "T", "currency": "EUR",
                       "texts": {code: PRICE_LINES for code in ("en", "de", "fr", "nl")}},
        "backend_online": True, "accepting_sessions": True, "card_payment": False,
        "readers": {"*": "ready"}, "language": "en", "languages": ["en", "de", "fr", "nl"],
        "operator": "EVTerm Charging GmbH", "support_phone": "+49 30 1234567",
        "now": "2026-11-21T14:25:00Z", "session_started_at": None, "elapsed_s": None,
        "idle": None, "receipt_pending": None, "app_start": None,
        "service": {"state": "none", "technician": None, "locked_until": None},
        "out_of_service": None,
    }
    state.update(changes)
    return state


class FakeLocalApi:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.state = daemon_state()
        self.requests: list[dict[str, Any]] = []
        self.attempts_left = 5
        self._lock = threading.Lock()
        self._subscribers: list[socket.socket] = []
        self._sock: socket.socket | None = None

    def start(self) -> FakeLocalApi:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        sock.listen(4)
        self._sock = sock
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        with self._lock:
            for conn in self._subscribers:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._subscribers.clear()
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()

    def ops(self, op: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r.get("op") == op]

    # ---- the snapshot ----

    def set_state(self, **changes: Any) -> None:
        with self._lock:
            self.state = {**self.state, **changes}
        self._push({"type": "state", "state": self.state})

    def set_service(self, state: str, **more: Any) -> None:
        service = {"state": state, "technician": TECHNICIAN if state == "active" else None,
                   "locked_until": None, **more}
        self.set_state(service=service)

    def open_pin_window(self) -> None:
        self._push({"type": "tap", "reader": "/dev/ttyUSB0", "kind": "rfid",
                    "result": "service", "reason": "technician", "message": "technician"})
        self.set_service("pin")

    def _push(self, message: dict[str, Any]) -> None:
        line = json.dumps(message).encode() + b"\n"
        with self._lock:
            for conn in list(self._subscribers):
                try:
                    conn.sendall(line)
                except OSError:
                    self._subscribers.remove(conn)

    # ---- connections ----

    def _accept(self) -> None:
        while True:
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                request = json.loads(line)
                with self._lock:
                    self.requests.append(request)
                reply, pushes = self._handle(request)
                if "id" in request:
                    reply["id"] = request["id"]
                for push in pushes:  # like the daemon: published before the op replies
                    self._push(push)
                with self._lock:
                    try:
                        conn.sendall(json.dumps(reply).encode() + b"\n")
                    except OSError:
                        return
                    if request.get("op") == "subscribe" and conn not in self._subscribers:
                        self._subscribers.append(conn)

    def _handle(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        op = request.get("op")
        if op == "subscribe":
            return {"ok": True, "op": op, "state": self.state}, []
        if op == "language":
            self.state = {**self.state, "language": request.get("language")}
            return {"ok": True, "op": op, "language": request.get("language"),
                    "state": self.state}, [{"type": "state", "state": self.state}]
        if op == "service_login":
            if self.state["service"]["state"] != "pin":
                return self._refuse(op, "card: tap a technician card first")
            if request.get("pin") != PIN:
                self.attempts_left -= 1
                return self._refuse(op, f"pin: wrong PIN ({self.attempts_left} attempts left)")
            self.state = {**self.state, "service": {"state": "active",
                                                    "technician": TECHNICIAN,
                                                    "locked_until": None}}
            return ({"ok": True, "op": op, "token": TOKEN, "technician": TECHNICIAN,
                     "expires_in_s": 300}, [{"type": "state", "state": self.state}])
        if not str(op).startswith("service_"):
            return self._refuse(op, f"unknown op {op!r}")
        if request.get("token") != TOKEN or self.state["service"]["state"] != "active":
            return self._refuse(op, "token: log in first")
        if op == "service_logout":
            self.state = {**self.state, "service": {"state": "none", "technician": None,
                                                    "locked_until": None}}
            return {"ok": True, "op": op, "technician": TECHNICIAN}, [
                {"type": "state", "state": self.state}]
        if op == "service_diagnostics":
            return {"ok": True, "op": op, "diagnostics": DIAGNOSTICS}, []
        if op == "service_receipt":
            return {"ok": True, "op": op, "session_id": request.get("session_id"),
                    "receipt": {"session_id": request.get("session_id")},
                    "text": RECEIPT_TEXT}, []
        return self._action(request)

    def _action(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        action = request.get("action")
        reply: dict[str, Any] = {"ok": True, "op": "service_action", "action": action}
        if action == "out_of_service":
            self.state = {**self.state, "accepting_sessions": False, "out_of_service": {
                "since": "2026-11-21T14:25:00Z", "by": TECHNICIAN,
                "reason": request.get("reason")}}
            return reply, [{"type": "state", "state": self.state}]
        if action == "in_service":
            self.state = {**self.state, "accepting_sessions": True, "out_of_service": None}
            return reply, [{"type": "state", "state": self.state}]
        if action == "meter_selfcheck":
            return {**reply, "checks": [
                {"name": "read", "ok": True, "detail": "two readings 1 s apart"},
                {"name": "serial", "ok": True,
                 "detail": "meter reports SIM00012345, expected SIM00012345"},
                {"name": "counter_follows_power", "ok": False,
                 "detail": "no power; the counter moved 2 Wh"}], "passed": False,
                "readings": []}, []
        if action == "export":
            folder = request.get("folder")
            if not isinstance(folder, str) or not folder.startswith("/media/usb"):
                return self._refuse("service_action", f"folder: {folder} is not under "
                                    "export_allowed_root /media/usb")
            return {**reply, "path": f"{folder}/evterm-diag-DE-EVT-E0001-1-20261121T142500Z",
                    "files": ["diagnostics.json"], "bytes": 12000}, []
        if action == "resend_outbox":
            return {**reply, "pending": 3, "oldest_pending_at": "2026-11-21T14:24:18Z",
                    "oldest_age_s": 42, "backend_online": True, "woken": True}, []
        if action in ("stop_session", "restart"):
            return reply, []
        return self._refuse("service_action", f"action: unknown action {action!r}")

    @staticmethod
    def _refuse(op: Any, error: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return {"ok": False, "op": op, "error": error}, []
