"""LEM DCBM 400/600 simulator: the meter's HTTP/JSON API over the OCMF signing core.

`LemSim` answers the API the driver (drivers/meter/lem_dcbm.py) uses, at /v1 and /v2:
- GET /v1/status: status and error flags (value and bits: 17 idle, 21 with a
  transaction), firmware versions, time, meterId, publicKey (X||Y) and publicKeyOcmf
  (DER SubjectPublicKeyInfo, RFC 5480), index and number of transactions;
- GET/PUT /v1/settings: the time ({"time": {"utc": ...}}: result 1, or result 0
  during a transaction, which LEM forbids), tz/dst/ntp/ocmfId accepted as given;
- GET /vN/livemeasure: voltage (V), current (A), power (kW), temperatureH/L,
  energyImportTotal/energyExportTotal (kWh, 3 decimals), timestamp;
- POST /vN/legal: start (evseId, transactionId, clientId, tariffId, cableId, userData,
  TT on v2) -> 201 {..., "running": true}; refused with 400 while a transaction runs,
  with the clock unsynchronised, or with a bad input (LEM's manual gives the
  preconditions but not the status code; 400 is this simulator's choice);
- GET /vN/legal: the running or last transaction; PUT /vN/legal?transactionId=X
  {"running": false}: stop -> 200 with meterValue (transactionStatus, sampleValue);
- GET /vN/ocmf?transactionId=X: the OCMF text of that transaction (the begin
  document while it runs, the end document after), 404 for an unknown one.
The OCMF identification: ID = clientId; IS/IL/IF/IT from userData when it is the
driver's compact JSON ({"IS":..,"IL":..,"IF":[..],"IT":..}), else unidentified.
The end reason is E, or P when the meter rebooted (lost power) during the transaction.

Faults (fault windows of the `MeterSimulator` it wraps, simulated seconds):
bad_signature, pagination_gap, error_flag, clock_unsync, clock_informative (the core's,
hw_mocks/ocmf_meter.py); reboot (a power cycle: the core's `reboot()` at the window's
start, the port closed - connection refused - for the window); disconnect
(connections accepted and closed without an answer); and the plain meter faults:
no_reply (no answer), exception (HTTP 500), garbled (a cut JSON body), frozen, jump,
reset (the counter, as for the Modbus meters).

Sources: see drivers/meter/models/lem_dcbm400600.toml (EVerest's LemDCBM400600 module
and its API mock, LEM's operation manual of 21 January 2021).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hw_mocks.meter_sim import MeterSimulator
from hw_mocks.ocmf_meter import SIGNING_FAULT_KINDS as CORE_FAULT_KINDS
from hw_mocks.ocmf_meter import OcmfMeterSim, SimStateError, ocmf_json
from terminal.kernel.clock import iso_utc

FIRMWARE = "1.2.0.7"  # application firmware; a second number above 1 = /v2 API
STATUS_BITS = ("suLinkStatusIsOk", "muFatalErrorOccured", "transactionIsOnGoing",
               "tamperingIsDetected", "timeSyncStatusIsOk", "overTemperatureIsDetected",
               "reversedVoltage", "suMeasureFailureOccurred")
ERROR_BITS = ("muInitIsFailed", "suStateIsInvalid", "versionCheckIsFailed",
              "muRngInitIsFailed", "muDataIntegrityIsFailed", "muFwIntegrityIsFailed",
              "suIntegrityIsFailed", "logbookIntegrityIsFailed", "logbookIsFull",
              "memoryAccessIsFailed", "muStateIsFailed")
MAX_ID_BYTES = 37
MAX_USER_DATA_BYTES = 128
MAX_REQUEST_BYTES = 64 * 1024
WATCH_S = 0.02  # how often (real seconds) the reboot windows are looked at
KWH = Decimal("0.001")


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes
    content_type: str = "application/json"


def _json(status: int, reason: str, data: Any) -> Answer:
    return Answer(status, reason, ocmf_json(data).encode())


def _error(status: int, reason: str, message: str) -> Answer:
    return _json(status, reason, {"error": message})


class LemSim:
    """The meter's API state machine over one `MeterSimulator` (live values, faults,
    simulated time) and one `OcmfMeterSim` (key, documents)."""

    def __init__(self, meter: MeterSimulator, core: OcmfMeterSim | None = None) -> None:
        self.meter = meter
        self.core = core or OcmfMeterSim(
            serial=meter.serial, model="DCBM 400/600", manufacturer="LEM",
            firmware=FIRMWARE, curve=str(meter.model.signing.get("curve", "secp256r1")),
            obis=str(meter.model.signing.get("obis", "01-00:01.08.00.FF")),
            energy_wh=self.energy_wh, now=self.now)
        self.documents: dict[str, str] = {}  # transaction id -> its latest document
        self.transactions: dict[str, dict[str, Any]] = {}  # id -> the /legal record
        self.last_transaction: str = ""
        self.power_lost: set[str] = set()  # transactions open across a reboot
        self.requests = 0

    def now(self) -> datetime:
        return self.meter.sim_time.clock.now()

    def energy_wh(self) -> Decimal:
        return Decimal(repr(self.meter.energy_import_wh(self.meter.elapsed_s())))

    def fault(self, kind: str) -> bool:
        return self.meter.fault_active(kind, self.meter.elapsed_s()) is not None

    def apply_faults(self) -> None:
        for kind in CORE_FAULT_KINDS:
            self.core.set_fault(kind, self.fault(kind))

    def reboot(self) -> None:
        """A power cycle: the open transaction ends with P when it is stopped."""
        if (open_id := self.core.open_transaction()) is not None:
            self.power_lost.add(open_id)
        self.core.reboot()

    # --- answers -------------------------------------------------------------------------

    def handle(self, method: str, target: str, body: bytes) -> Answer:
        self.requests += 1
        self.apply_faults()
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/")
        try:
            data = json.loads(body) if body.strip() else None
        except ValueError as exc:
            return _error(400, "Bad Request", f"body is not JSON: {exc}")
        version, _, name = path.lstrip("/").partition("/")
        routes: dict[tuple[str, str], Callable[[], Answer]] = {
            ("GET", "status"): self._status,
            ("GET", "settings"): self._settings,
            ("PUT", "settings"): lambda: self._put_settings(data),
            ("GET", "livemeasure"): self._live,
            ("POST", "legal"): lambda: self._start(data),
            ("GET", "legal"): self._legal,
            ("PUT", "legal"): lambda: self._stop(query.get("transactionId"), data),
            ("GET", "ocmf"): lambda: self._ocmf(query.get("transactionId")),
        }
        route = routes.get((method, name))
        if version not in ("v1", "v2") or route is None \
                or (version == "v2" and name in ("status", "settings")):
            return _error(404, "Not Found", f"no {method} {path}")
        return route()

    def _bits(self) -> dict[str, bool]:
        return {
            "suLinkStatusIsOk": True,
            "muFatalErrorOccured": False,
            "transactionIsOnGoing": self.core.open_transaction() is not None,
            "tamperingIsDetected": False,
            "timeSyncStatusIsOk": self.core.clock_sync.value == "S",
            "overTemperatureIsDetected": False,
            "reversedVoltage": False,
            "suMeasureFailureOccurred": self.fault("error_flag"),
        }

    def status_value(self) -> int:
        bits = self._bits()
        return sum(1 << i for i, name in enumerate(STATUS_BITS) if bits[name])

    def _status(self) -> Answer:
        point = self.core.public_key_hex
        return _json(200, "OK", {
            "status": {"value": self.status_value(), "bits": self._bits()},
            "version": {"applicationFirmwareVersion": FIRMWARE,
                        "applicationFirmwareAuthTag": "", "legalFirmwareVersion": "1.1.0.3",
                        "legalFirmwareAuthTag": "", "sensorFirmwareVersion": "1.0.0.2",
                        "sensorFirmwareCrc": ""},
            "time": self.now().isoformat(timespec="seconds"),
            "ipAddress": "", "meterId": self.meter.serial,
            "errors": {"value": 0, "bits": dict.fromkeys(ERROR_BITS, False)},
            "publicKey": point[-128:],  # X||Y of the uncompressed point
            "publicKeyOcmf": point,
            "indexOfLastTransaction": len(self.transactions),
            "numberOfStoredTransactions": len(self.transactions),
        })

    def _settings(self) -> Answer:
        return _json(200, "OK", {"meterId": self.meter.serial,
                                 "time": {"utc": iso_utc(self.now()), "tz": "+00:00"},
                                 "ntp": {"servers": [], "ntpActivated": False},
                                 "ocmfId": {"IT": 0}})

    def _put_settings(self, data: Any) -> Answer:
        if not isinstance(data, dict):
            return _error(400, "Bad Request", "expected a JSON object")
        time = data.get("time")
        if isinstance(time, dict) and "utc" in time:
            if self.core.open_transaction() is not None:  # LEM: not during a transaction
                return _json(200, "OK", {"meterId": self.meter.serial, "result": 0})
            try:
                datetime.fromisoformat(str(time["utc"]).replace("Z", "+00:00"))
            except ValueError:
                return _error(400, "Bad Request", f"time.utc {time['utc']!r} is not RFC 3339")
            self.core.set_time(synced=True)
            self.apply_faults()
        return _json(200, "OK", {"meterId": self.meter.serial, "result": 1})

    def _live(self) -> Answer:
        t_s = self.meter.elapsed_s()
        values = self.meter.values_at(t_s)

        def number(value: float | str, step: str, rounding: str = ROUND_HALF_UP) -> Decimal:
            return Decimal(repr(float(value))).quantize(Decimal(step), rounding=rounding)

        return _json(200, "OK", {
            "voltage": number(values["voltage_v"], "0.01"),
            "current": number(values["current_a"], "0.01"),
            "power": number(float(values["power_w"]) / 1000, "0.001"),
            "temperatureH": Decimal("31.5"), "temperatureL": Decimal("29.0"),
            "energyImportTotal": number(float(values["energy_import_wh"]) / 1000, "0.001",
                                        ROUND_FLOOR),
            "energyExportTotal": number(float(values["energy_export_wh"]) / 1000, "0.001",
                                        ROUND_FLOOR),
            "timestamp": self.now().isoformat(timespec="milliseconds"),
        })

    def _start(self, data: Any) -> Answer:
        if not isinstance(data, dict):
            return _error(400, "Bad Request", "expected a JSON object")
        problem = _start_problem(data)
        if problem:
            return _error(400, "Bad Request", problem)
        if (running := self.core.open_transaction()) is not None:
            return _error(400, "Bad Request", f"transaction {running} is on going")
        if self.core.clock_sync.value == "U":
            return _error(400, "Bad Request", "time synchronization is not valid")
        transaction_id = data["transactionId"]
        identification = _identification(data)
        try:
            document = self.core.begin(transaction_id, identification, str(data.get("TT", "")))
        except (SimStateError, ValueError) as exc:
            return _error(400, "Bad Request", str(exc))
        record = {key: data[key] for key in ("evseId", "transactionId", "clientId",
                                             "tariffId", "cableId", "userData")}
        record["running"] = True
        record["start_status"] = self.status_value()
        record["start_kwh"] = (self.energy_wh() / 1000).quantize(KWH, rounding=ROUND_FLOOR)
        record["started"] = self.now().isoformat(timespec="seconds")
        self.transactions[transaction_id] = record
        self.documents[transaction_id] = document
        self.last_transaction = transaction_id
        return _json(201, "Created", {k: v for k, v in record.items()
                                      if not k.startswith("start")})

    def _legal(self) -> Answer:
        record = self.transactions.get(self.last_transaction)
        if record is None:
            return _json(200, "OK", {"transactionId": "", "running": False})
        return _json(200, "OK", {k: v for k, v in record.items() if not k.startswith("start")})

    def _stop(self, transaction_id: str | None, data: Any) -> Answer:
        if not isinstance(data, dict) or data.get("running") is not False:
            return _error(400, "Bad Request", 'expected {"running": false}')
        if not transaction_id:
            return _error(400, "Bad Request", "transactionId is required")
        reason = "P" if transaction_id in self.power_lost else "E"
        try:
            document = self.core.end(transaction_id, reason)
        except SimStateError as exc:
            return _error(400, "Bad Request", str(exc))
        self.power_lost.discard(transaction_id)
        self.documents[transaction_id] = document
        record = self.transactions[transaction_id]
        record["running"] = False
        stop_kwh = (self.energy_wh() / 1000).quantize(KWH, rounding=ROUND_FLOOR)
        pagination = json.loads(document.split("|")[1])["PG"]
        return _json(200, "OK", {
            "paginationCounter": int(pagination[1:]),
            **{k: v for k, v in record.items() if not k.startswith("start")},
            "meterValue": {
                "timestampStart": record["started"],
                "timestampStop": self.now().isoformat(timespec="seconds"),
                "intermediateRead": False,
                # flags raised during the transaction; bit 2 (on going) clear: it ended
                "transactionStatus": (record["start_status"] | self.status_value()) & ~0b100,
                "sampleValue": {"energyUnit": "kWh",
                                "energyImport": stop_kwh - record["start_kwh"],
                                "energyImportTotalStart": record["start_kwh"],
                                "energyImportTotalStop": stop_kwh}},
            "meterId": self.meter.serial,
        })

    def _ocmf(self, transaction_id: str | None) -> Answer:
        if transaction_id is None:
            document = self.core.last_document()
        else:
            document = self.documents.get(transaction_id)
        if document is None:
            return _error(404, "Not Found", f"no OCMF for transaction {transaction_id!r}")
        return Answer(200, "OK", document.encode(), "text/plain")


def _start_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a start request (LEM's table 7), or None."""
    for key, limit in (("evseId", MAX_ID_BYTES), ("transactionId", MAX_ID_BYTES),
                       ("clientId", MAX_ID_BYTES), ("userData", MAX_USER_DATA_BYTES)):
        value = data.get(key)
        if not isinstance(value, str):
            return f"{key} is required (a string)"
        if len(value.encode()) > limit:
            return f"{key} is longer than {limit} bytes"
    if not data["transactionId"]:
        return "transactionId must not be empty"
    for key, top in (("tariffId", 4), ("cableId", 7)):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            return f"{key} must be an integer from 0 to {top}"
    return None


def _identification(data: dict[str, Any]) -> dict[str, Any]:
    extra: Any = None
    with contextlib.suppress(ValueError):
        extra = json.loads(data["userData"]) if data["userData"] else None
    ident: dict[str, Any] = {"IS": False, "IL": "NONE", "IF": [], "IT": "NONE"}
    if isinstance(extra, dict):
        ident.update({k: extra[k] for k in ident if k in extra})
    ident["ID"] = data["clientId"]
    return ident


class LemHttpServer:
    """The simulator on a TCP port, with the transport faults."""

    def __init__(self, sim: LemSim, host: str, port: int) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._watch: asyncio.Task[None] | None = None
        self.rebooting = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        await self._listen()
        self._watch = asyncio.create_task(self._watch_reboots())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port,
                                                  reuse_address=True)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _watch_reboots(self) -> None:
        """At a reboot window's start the meter loses power (its port closes); at its
        end it is back, with the clock unsynchronised."""
        while True:
            down = self.sim.fault("reboot")
            if down and not self.rebooting:
                self.rebooting = True
                self.sim.reboot()
                if self._server is not None:
                    self._server.close()
                    self._server = None
            elif not down and self.rebooting:
                await self._listen()
                self.rebooting = False
            await asyncio.sleep(WATCH_S)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.sim.fault("disconnect") or self.rebooting:
                return
            request = await _read_request(reader)
            if request is None:
                return
            method, target, body = request
            if self.sim.fault("no_reply"):
                await reader.read()  # hold the connection until the client gives up
                return
            if self.sim.fault("exception"):
                answer = _error(500, "Internal Server Error", "device failure")
            else:
                answer = self.sim.handle(method, target, body)
                if self.sim.fault("garbled"):
                    answer = Answer(answer.status, answer.reason,
                                    answer.body[: len(answer.body) // 2], answer.content_type)
            head = (f"HTTP/1.1 {answer.status} {answer.reason}\r\n"
                    f"Content-Type: {answer.content_type}\r\n"
                    f"Content-Length: {len(answer.body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("latin-1") + answer.body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    line = await reader.readline()
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    length = 0
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
            if not 0 <= length <= MAX_REQUEST_BYTES:
                return None
    body = await reader.readexactly(length) if length else b""
    return parts[0], parts[1], body


def ready_fields(server: LemHttpServer) -> dict[str, Any]:
    """What a `ready` line says about the meter's HTTP side."""
    core = server.sim.core
    return {"url": server.url, "serial": server.sim.meter.serial,
            "public_key": core.public_key_hex, "signing_method": core.signing_method}


async def serve(sim: LemSim, host: str, port: int) -> None:
    """`evterm sim meter --model lem_dcbm400600 --http HOST:PORT` until SIGTERM/SIGINT."""
    from hw_mocks.signals import stop_on_signals

    server = LemHttpServer(sim, host, port)
    try:
        await server.start()
    except OSError as exc:
        raise OSError(f"cannot serve on http://{host}:{port}: {exc.strerror or exc}") from None
    meter = sim.meter
    meter.sim_time.restart()
    print(json.dumps({
        "event": "ready", "model": meter.model.key, **ready_fields(server),
        "unit_id": meter.unit_id, "faults": [f.to_json() for f in meter.faults],
        "clock_speed": getattr(meter.sim_time.clock, "speed", 1.0),
        "started_at": meter.sim_time.iso(0.0),
    }), flush=True)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        await server.close()


def run_forever(sim: LemSim, host: str, port: int) -> int:
    import sys

    try:
        asyncio.run(serve(sim, host, port))
    except OSError as exc:
        print(f"evterm sim meter: {exc}", file=sys.stderr)
        return 2
    return 0
