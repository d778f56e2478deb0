"""Isabellenhuette IEM-DCR simulator: the meter's HTTP/JSON interface over OcmfMeterSim.

`IemDcrSimulator` answers the endpoints the driver (drivers/meter/iem_dcr.py) uses,
under /counter/v1/ocmf (the model file names its sources): GET/POST gw (CT, CI and the
time, accepted once per power-up), GET/POST datetime, POST tariff, GET metervalue, GET
publickey, POST user, POST receipt {TX} (B begins, E/L/R/A/P ends), GET receipt, GET
transaction (and /counter/v2/ocmf/transaction). The live values come from a
`MeterSimulator` (hw_mocks.meter_sim: the car's power curve, counter faults), the
signed documents from `OcmfMeterSim` (hw_mocks.ocmf_meter: key, pagination, open
transaction, kept in `--state` across restarts). Refused requests answer HTTP 409
(wrong state) or 400 (bad request) with {"error": ...}.

Faults (`--fault KIND[@START_S][+DURATION_S]`, simulated seconds since start):
- bad_signature, pagination_gap, error_flag, clock_unsync, clock_informative: the
  OcmfMeterSim faults, on for the window;
- reboot: a power cycle at START_S (open transaction and pagination kept, clock U, CT
  and CI forgotten); for the window (default REBOOT_S) every connection is dropped;
- disconnect: every connection is dropped without an answer;
- no_reply: requests are read and never answered (the client times out);
- frozen, jump, reset: the import counter faults of `evterm sim meter`.

Run it: `evterm sim meter --model isabellenhuette_iem_dcr --http 127.0.0.1:8080`.
"""

from __future__ import annotations

import json
import math
import signal
import socket
import sys
import threading
import time
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hw_mocks.ev_model import Fault, FaultSpecError
from hw_mocks.meter_sim import MeterSimulator
from hw_mocks.ocmf_meter import SIGNING_FAULT_KINDS, OcmfMeterSim, SimStateError, ocmf_time

API = "/counter/v1/ocmf"
API_V2 = "/counter/v2/ocmf"
TRANSPORT_FAULT_KINDS = ("reboot", "disconnect", "no_reply")
COUNTER_FAULT_KINDS = ("frozen", "jump", "reset")
FAULT_KINDS = (*SIGNING_FAULT_KINDS, *TRANSPORT_FAULT_KINDS, *COUNTER_FAULT_KINDS)
REBOOT_S = 3.0  # simulated seconds without answers after a reboot (no duration given)
NO_ERROR = "0x0000, 0x00000000, 0x00, 0x00"
ERROR_STATUS = "0x0001, 0x00000000, 0x00, 0x00"  # invented: any other XC is an error
MODEL_TEXT = "IEM-DCR-125-1000-32-00-006-B_000"
FIRMWARE = "DU-02.00.12_SU-02.00.08"
TICK_S = 0.02

__all__ = ["FAULT_KINDS", "IemDcrSimulator", "IemHttpServer", "SimStateError", "serve"]


class Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        self.status = status
        self.error = error
        super().__init__(error)


class IemDcrSimulator:
    """One IEM-DCR: live values from `meter`, signing by an OcmfMeterSim."""

    def __init__(self, meter: MeterSimulator, *, serial: str = "1ISA0200000001",
                 state_path: Path | None = None, faults: list[Fault] | None = None) -> None:
        """Faults live in `meter.faults` (so `sim station`'s fault command reaches
        them); `faults` are added to it."""
        self.meter = meter
        self.serial = serial
        self.lock = threading.RLock()
        self._rebooted: set[int] = set()
        for fault in faults or []:
            self.add_fault(fault)
        self.core = OcmfMeterSim(
            serial=serial, model=MODEL_TEXT, manufacturer="Isabellenhuette",
            firmware=FIRMWARE, curve="secp256r1", obis="1-b:1.8.e", reading_type="DC",
            gateway_id=f"Isabellenhuette {MODEL_TEXT}", gateway_serial=serial,
            gateway_version=FIRMWARE, energy_wh=self.energy_wh, now=self.now,
            state_path=state_path)
        self.core.reboot()  # a meter starts with its clock unset (status U)
        self.gateway: dict[str, str] = {"CT": "", "CI": ""}
        self.tariff_text = ""
        self.user: dict[str, Any] = {}
        self._transactions = 0
        self.requests = 0

    # -- time, energy, faults ------------------------------------------------------------

    def now(self) -> datetime:
        return self.meter.sim_time.clock.now()

    def t_s(self) -> float:
        return self.meter.elapsed_s()

    def energy_wh(self) -> Decimal:
        return Decimal(repr(self.meter.energy_import_wh(self.t_s())))

    @property
    def faults(self) -> list[Fault]:
        return self.meter.faults

    def add_fault(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise FaultSpecError(f"unknown IEM-DCR fault {fault.kind!r}; allowed: "
                                 + ", ".join(FAULT_KINDS))
        self.meter.point.mark(fault.start_s)
        self.meter.faults.append(fault)

    def active(self, kind: str, t_s: float | None = None) -> bool:
        """Whether a fault of `kind` is on at t_s; a reboot without a duration drops
        connections for REBOOT_S."""
        t_s = self.t_s() if t_s is None else t_s
        for f in self.meter.faults:
            if f.kind != kind:
                continue
            if kind == "reboot" and math.isinf(f.duration_s):
                if f.start_s <= t_s < f.start_s + REBOOT_S:
                    return True
            elif f.active(t_s):
                return True
        return False

    def tick(self) -> None:
        """Apply the fault windows at the current simulated time."""
        t_s = self.t_s()
        with self.lock:
            for kind in SIGNING_FAULT_KINDS:
                self.core.set_fault(kind, self.active(kind, t_s))
            for index, fault in enumerate(self.meter.faults):
                if fault.kind == "reboot" and fault.start_s <= t_s and index not in self._rebooted:
                    self._rebooted.add(index)
                    self.reboot()

    def reboot(self) -> None:
        """A power cycle: the core keeps its transaction; CT/CI and the clock are lost."""
        with self.lock:
            self.core.reboot()
            self.gateway = {"CT": "", "CI": ""}
            self.user = {}

    def drops(self) -> str | None:
        """'drop' (close the connection), 'hang' (never answer) or None."""
        t_s = self.t_s()
        if self.active("disconnect", t_s) or self.active("reboot", t_s):
            return "drop"
        if self.active("no_reply", t_s):
            return "hang"
        return None

    # -- the endpoints -------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """(HTTP status, JSON value or OCMF text) for one request."""
        self.requests += 1
        self.tick()
        route = self._routes().get((method, path))
        if route is None:
            return 404, {"error": f"no endpoint {method} {path}"}
        try:
            with self.lock:
                return 200, route(body)
        except Refused as exc:
            return exc.status, {"error": exc.error}

    def _routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", f"{API}/gw"): lambda _: {**self.gateway, "TM": self._tm()},
            ("POST", f"{API}/gw"): self._post_gw,
            ("GET", f"{API}/datetime"): lambda _: {"TM": self._tm()},
            ("POST", f"{API}/datetime"): self._post_datetime,
            ("POST", f"{API}/tariff"): self._post_tariff,
            ("GET", f"{API}/metervalue"): lambda _: self.metervalue(),
            ("GET", f"{API}/publickey"): lambda _: {"SA": self.core.signing_method,
                                                     "PK": self.core.public_key_hex},
            ("POST", f"{API}/user"): self._post_user,
            ("POST", f"{API}/receipt"): self._post_receipt,
            ("GET", f"{API}/receipt"): self._last,
            ("GET", f"{API}/transaction"): self._last,
            ("GET", f"{API_V2}/transaction"): self._last,
        }

    def _tm(self) -> str:
        return ocmf_time(self.now(), self.core.clock_sync)

    @staticmethod
    def _fields(body: Any, required: dict[str, type]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Refused(400, "the body must be a JSON object")
        for key, kind in required.items():
            if not isinstance(body.get(key), kind):
                raise Refused(400, f"{key} missing or not a {kind.__name__}")
        return body

    def _set_time(self, text: str) -> None:
        try:
            datetime.strptime(text, "%Y-%m-%dT%H:%M:%S,%f%z")
        except ValueError:
            raise Refused(400, f"TM {text!r}: expected 2025-06-06T09:26:24,000+0200") from None
        self.core.set_time(synced=True)

    def _post_gw(self, body: Any) -> dict[str, Any]:
        fields = self._fields(body, {"CT": str, "CI": str, "TM": str})
        if self.gateway["CT"]:
            raise Refused(409, "CT and CI are set once per power-up")
        self._set_time(fields["TM"])
        self.gateway = {"CT": fields["CT"], "CI": fields["CI"]}
        return {}

    def _post_datetime(self, body: Any) -> dict[str, Any]:
        self._set_time(self._fields(body, {"TM": str})["TM"])
        return {}

    def _post_tariff(self, body: Any) -> dict[str, Any]:
        self.tariff_text = self._fields(body, {"TT": str})["TT"]
        return {}

    def _post_user(self, body: Any) -> dict[str, Any]:
        fields = self._fields(body, {"IS": bool, "IL": str, "IF": list, "IT": str, "ID": str})
        if self.core.open_transaction() is not None:
            raise Refused(409, "a transaction is running")
        self.user = {k: fields[k] for k in ("IS", "IL", "IF", "IT", "ID")}
        if isinstance(fields.get("TT"), str):
            self.tariff_text = fields["TT"]
        return {}

    def _post_receipt(self, body: Any) -> dict[str, Any]:
        tx = self._fields(body, {"TX": str})["TX"]
        try:
            if tx == "B":
                if not self.gateway["CT"]:
                    raise Refused(409, "CT/CI not set since power-up (POST gw first)")
                self._transactions += 1
                self.core.begin(f"iem-{self._transactions}", self.user, self.tariff_text)
            else:
                self.core.end(None, tx)
        except SimStateError as exc:
            raise Refused(409, str(exc)) from None
        except ValueError as exc:
            raise Refused(400, str(exc)) from None
        return {}

    def _last(self, _: Any) -> str:
        doc = self.core.last_document()
        if doc is None:
            raise Refused(404, "no signed document yet")
        return doc

    def metervalue(self) -> dict[str, Any]:
        t_s = self.t_s()
        values = self.meter.values_at(t_s)
        energy = _kwh(float(values["energy_import_wh"]))
        export = _kwh(float(values["energy_export_wh"]))
        running = self.core.open_transaction() is not None
        begin = _begin_kwh(self.core.last_document()) if running else None
        sync = self.core.clock_sync
        return {
            "MS": self.serial, "TM": self._tm(), "EF": "" if sync.value == "S" else "t",
            "ST": "G", "XT": running,
            "RD": [
                {"RV": _text(energy), "RI": "1-b:1.8.e", "RU": "kWh", "RT": "DC"},
                {"RV": _text(export), "RI": "1-b:2.8.e", "RU": "kWh", "RT": "DC"},
                {"WV": _text(energy - begin if begin is not None else Decimal(0)),
                 "WI": "transaction_1-b:1.8.e", "WU": "kWh", "WT": "DC"},
                {"WV": _text(Decimal(0)), "WI": "transaction_1-b:2.8.e", "WU": "kWh",
                 "WT": "DC"},
            ],
            "U1": 1.089, "U2": float(values["voltage_v"]), "U3": 0, "U4": 0,
            "I": float(values["current_a"]), "P": float(values["power_w"]),
            "XS": "0x0000004000000004",
            "XC": ERROR_STATUS if self.active("error_flag", t_s) else NO_ERROR,
        }

    def ready_line(self, where: str) -> dict[str, Any]:
        return {"event": "ready", "model": self.meter.model.key, "url": where,
                "serial": self.serial, "public_key": self.core.public_key_hex,
                "signing_method": self.core.signing_method,
                "faults": [f.to_json() for f in self.faults],
                "clock_speed": getattr(self.meter.sim_time.clock, "speed", 1.0),
                "started_at": self.meter.sim_time.iso(0.0)}


def _kwh(wh: float) -> Decimal:
    return (Decimal(repr(wh)) / 1000).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)


def _text(kwh: Decimal) -> str:
    return f"{kwh:012.3f}"  # "00000446.540", as the meter writes it


def _begin_kwh(document: str | None) -> Decimal | None:
    if not document:
        return None
    try:
        payload = json.loads(document.split("|")[1])
        return Decimal(str(payload["RD"][0]["RV"]))
    except (ValueError, KeyError, IndexError):
        return None


def _handler(sim: IemDcrSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "IEM-DCR-sim"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            fault = sim.drops()
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "hang":
                while sim.drops() == "hang":
                    time.sleep(TICK_S)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                status, answer = 400, {"error": "the body is not JSON"}
            else:
                status, answer = sim.handle(method, self.path, body)
            text = answer if isinstance(answer, str) else json.dumps(answer)
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type",
                             "text/plain" if isinstance(answer, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]
                 ) -> None:
        super().__init__(address, handler)
        self.stopped = threading.Event()

    def shutdown(self) -> None:
        self.stopped.set()
        super().shutdown()


def serve(sim: IemDcrSimulator, host: str, port: int) -> ThreadingHTTPServer:
    """Start serving in a background thread (and the fault ticker); the server."""
    server = _Server((host, port), _handler(sim))
    threading.Thread(target=server.serve_forever, name="iem-dcr-http", daemon=True).start()

    def ticker() -> None:
        while not server.stopped.wait(TICK_S):
            sim.tick()

    threading.Thread(target=ticker, name="iem-dcr-faults", daemon=True).start()
    return server


class IemHttpServer:
    """The simulator's HTTP server for `evterm sim station --meter-http` (the interface
    of hw_mocks.lem_sim.LemHttpServer: start, url, sim, close)."""

    def __init__(self, sim: IemDcrSimulator, host: str, port: int) -> None:
        self.sim, self.host, self.port = sim, host, port
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = serve(self.sim, self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def run_forever(sim: IemDcrSimulator, host: str, port: int) -> int:
    """`evterm sim meter --model isabellenhuette_iem_dcr --http HOST:PORT`."""
    try:
        server = serve(sim, host, port)
    except OSError as exc:
        print(f"evterm sim meter: cannot serve on http://{host}:{port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    sim.meter.sim_time.restart()
    print(json.dumps(sim.ready_line(f"http://{host}:{port}"), default=str), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0

