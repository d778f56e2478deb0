"""Station simulator: the car, the charger's power stage and the DC meter in one process.

One `ChargingPoint` (hw_mocks.ev_model) is the truth; one pymodbus TCP server carries two
devices on the same port: the meter (`MeterSimulator`, any model of drivers/meter/models,
unit id = the model's default unless given) and the charger IO (the evterm charger IO
interface of docs/charger.md, unit 2 by default), which the real drivers
(drivers.meter, drivers.charger.modbus_coil) use as they would in the field. The car
starts unplugged.

A test, the demo or a technician plays the car and injects faults through the control
socket (a Unix stream socket, JSON lines, one reply line per request; see docs/charger.md):
`plug` (curve overrides), `unplug`, `suspend`, `resume`, `fault` (meter faults and
charger faults), `clear`, `status`. `control(path, cmd)` is the blocking client used by
tests and `evterm sim ev ...`.

Time is simulated (`--clock-speed`, `--clock-anchor`, shared with the daemon): every
time in a status and every fault window is in simulated seconds since start.

A signing meter with an HTTP API (`--meter-model lem_dcbm400600 --meter-http
HOST:PORT`) is served on its own port by hw_mocks.lem_sim over the same point; its
faults (bad_signature, pagination_gap, error_flag, clock_unsync, clock_informative,
reboot, disconnect) go through the same `fault` command.

Run it: `evterm sim station --meter-model carlo_gavazzi_em580 --tcp 127.0.0.1:5020
--control /tmp/evterm-station.sock`, then `evterm sim ev plug --control /tmp/...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.charger.modbus_coil import (
    COIL_OUTPUT,
    DI_FAULT,
    DI_OUTPUT_ON,
    DI_VEHICLE_ASKS,
    DI_VEHICLE_CONNECTED,
    FAULT_CODES,
    IR_COUNT,
    IR_EV_STATE,
    IR_FAULT_CODE,
)
from hw_mocks.ev_model import (
    CHARGER_ERROR_DEFAULT_CODE,
    CHARGER_FAULT_KINDS,
    Fault,
    FaultSpecError,
    PointError,
    PowerCurve,
)
from hw_mocks.meter_sim import FAULT_KINDS as METER_FAULT_KINDS
from hw_mocks.meter_sim import SIGNING_FAULT_KINDS, MeterSimulator
from hw_mocks.signals import stop_on_signals
from terminal.localapi import remove_stale_socket

STATION_FAULT_KINDS = (*METER_FAULT_KINDS, *SIGNING_FAULT_KINDS, *CHARGER_FAULT_KINDS)
COMMANDS = ("plug", "unplug", "suspend", "resume", "fault", "clear", "status")
CURVE_KEYS = tuple(f.name for f in fields(PowerCurve))
MAX_LINE_BYTES = 64 * 1024
DEFAULT_CHARGER_UNIT = 2


class ControlError(Exception):
    """The control socket could not be reached or did not answer."""


class RequestError(ValueError):
    """A control request that cannot be carried out; the message names what was wrong."""


def io_image(state: str, fault_code: int, output_on: bool, commanded: bool
             ) -> tuple[int, int, list[int]]:
    """(coil register, discrete input register, input registers) of the charger IO:
    bit n of a bit register is coil/input n."""
    coils = int(commanded) << COIL_OUTPUT
    inputs = (
        (state in ("B", "C")) << DI_VEHICLE_CONNECTED
        | (state == "C") << DI_VEHICLE_ASKS
        | output_on << DI_OUTPUT_ON
        | bool(fault_code) << DI_FAULT
    )
    registers = [0] * IR_COUNT
    registers[IR_EV_STATE] = ord(state)
    registers[IR_FAULT_CODE] = fault_code
    return coils, inputs, registers


def _number(request: dict[str, Any], key: str, *, positive: bool = False) -> float:
    value = request[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"{key}={value!r}: expected a number")
    if value < 0 or (positive and value == 0):
        raise RequestError(f"{key}={value!r}: must be {'> 0' if positive else '>= 0'}")
    return float(value)


class StationSimulator:
    """The station's two Modbus devices and its control requests over one meter
    simulator (whose ChargingPoint is the station's)."""

    def __init__(self, meter: MeterSimulator, curve: PowerCurve,
                 charger_unit: int = DEFAULT_CHARGER_UNIT,
                 t_source: Callable[[], float] | None = None) -> None:
        if charger_unit == meter.unit_id:
            raise ValueError(
                f"charger unit {charger_unit} is the meter's unit id; give them different ids"
            )
        self.meter = meter
        self.point = meter.point
        self.curve = curve
        self.charger_unit = charger_unit
        self.t_s = t_source or meter.elapsed_s
        self.charger_requests = 0

    # --- Modbus --------------------------------------------------------------------------

    def build_devices(self) -> list[SimDevice]:
        charger = SimDevice(
            id=self.charger_unit,
            simdata=(
                [SimData(COIL_OUTPUT, count=1, values=0, datatype=DataType.BITS)],
                [SimData(0, count=1, values=0, datatype=DataType.BITS)],
                [SimData(0, datatype=DataType.INVALID)],  # no holding registers
                [SimData(IR_EV_STATE, count=IR_COUNT, values=0, datatype=DataType.REGISTERS)],
            ),
            action=self._charger_action,
        )
        # any other unit id: what a Modbus TCP gateway answers for a silent device
        nobody = SimDevice(
            id=0,
            simdata=[SimData(0, count=0xFFFF, values=0, datatype=DataType.REGISTERS)],
            action=self._nobody_action,
        )
        return [self.meter.build_device(), charger, nobody]

    async def _nobody_action(self, *_args: Any) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE

    async def _charger_action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.charger_requests += 1
        t_s = self.t_s()
        if set_values is not None:
            if function_code in (5, 15) and address == COIL_OUTPUT and len(set_values) == 1:
                self.point.set_output(t_s, bool(set_values[0]))
                return None
            return ExcCodes.ILLEGAL_ADDRESS
        coils, inputs, input_regs = io_image(
            self.point.ev_state(t_s),
            self.point.fault_code(t_s),
            self.point.output_on(t_s),
            self.point.output_commanded,
        )
        if function_code in (1, 5, 15):
            registers[0] = coils
        elif function_code == 2:
            registers[0] = inputs
        elif function_code == 4:
            registers[: len(input_regs)] = input_regs
        return None

    def _unit_of(self, frame: bytes) -> int | None:
        """Unit id of a Modbus TCP frame (byte 6 after the MBAP transaction/protocol/length)."""
        return frame[6] if len(frame) > 6 else None

    def trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Meter line faults touch the meter's frames only."""
        if self._unit_of(data) != self.meter.unit_id:
            return data
        return self.meter.trace_packet(sending, data)

    # --- control -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        t_s = self.t_s()
        point = self.point
        state = point.ev_state(t_s)
        code = point.fault_code(t_s)
        meter_faults = [f for f in self.meter.faults if f.end_s > t_s]
        charger_faults = [f for f in point.faults if f.end_s > t_s]
        return {
            "t_s": t_s,
            "time": self.meter.sim_time.iso(t_s),
            "ev_state": state,
            "plugged": point.plug_record is not None,
            "suspended": point.suspended,
            "output_commanded": point.output_commanded,
            "output_on": point.output_on(t_s),
            "charger_fault": FAULT_CODES.get(code) if code else None,
            "charger_fault_code": code,
            "power_w": point.power_w(t_s),
            "voltage_v": point.voltage_v(t_s),
            "current_a": point.current_a(t_s),
            "energy_import_wh": self.meter.energy_import_wh(t_s),
            "delivered_wh": point.delivered_wh(t_s),
            "delivered_total_wh": point.delivered_total_wh,
            "plugs": [rec.to_json() for rec in point.plugs],
            "faults": [
                {**f.to_json(), "active": f.active(t_s)} for f in meter_faults + charger_faults
            ],
            "meter_requests": self.meter.requests,
            "charger_requests": self.charger_requests,
        }

    def _plug(self, request: dict[str, Any]) -> None:
        overrides = {key: value for key, value in request.items() if key != "cmd"}
        unknown = sorted(set(overrides) - set(CURVE_KEYS))
        if unknown:
            raise RequestError(
                f"plug: unknown option {unknown[0]!r}; allowed: {', '.join(CURVE_KEYS)}"
            )
        curve = replace(
            self.curve,
            **{key: _number(overrides, key, positive=key == "voltage_v") for key in overrides},
        )
        self.point.plug(self.t_s(), curve)

    def _fault(self, request: dict[str, Any]) -> None:
        unknown = sorted(set(request) - {"cmd", "kind", "duration_s", "code"})
        if unknown:
            raise RequestError(
                f"fault: unknown option {unknown[0]!r}; allowed: kind, duration_s, code"
            )
        kind = request.get("kind")
        if kind not in STATION_FAULT_KINDS:
            raise RequestError(
                f"fault: unknown kind {kind!r}; allowed: {', '.join(STATION_FAULT_KINDS)}"
            )
        duration_s = (
            _number(request, "duration_s", positive=True)
            if request.get("duration_s") is not None
            else math.inf
        )
        code = 0
        if kind == "charger_error":
            code = request.get("code", CHARGER_ERROR_DEFAULT_CODE)
            if not isinstance(code, int) or isinstance(code, bool) or code not in FAULT_CODES:
                raise RequestError(
                    f"fault: code={code!r}; allowed: {', '.join(map(str, FAULT_CODES))}"
                )
        elif "code" in request:
            raise RequestError("fault: code is for kind charger_error only")
        t_s = self.t_s()
        fault = Fault(kind, t_s, duration_s, code)
        if kind in CHARGER_FAULT_KINDS:
            self.point.add_fault(t_s, fault)
        else:
            self.point.advance(t_s)
            try:
                self.meter.add_fault(fault)
            except FaultSpecError as exc:
                raise RequestError(f"fault: {exc}") from None

    def handle(self, request: Any) -> dict[str, Any]:
        """One control request (parsed JSON) -> its reply."""
        try:
            if not isinstance(request, dict):
                raise RequestError(
                    f"expected a JSON object like {{\"cmd\": \"status\"}}, got {request!r}"
                )
            cmd = request.get("cmd")
            if cmd not in COMMANDS:
                raise RequestError(f"unknown cmd {cmd!r}; allowed: {', '.join(COMMANDS)}")
            if cmd not in ("plug", "fault") and set(request) != {"cmd"}:
                extra = sorted(set(request) - {"cmd"})[0]
                raise RequestError(f"{cmd}: unknown option {extra!r}; it takes none")
            t_s = self.t_s()
            if cmd == "plug":
                self._plug(request)
            elif cmd == "unplug":
                self.point.unplug(t_s)
            elif cmd == "suspend":
                self.point.suspend(t_s)
            elif cmd == "resume":
                self.point.resume(t_s)
            elif cmd == "fault":
                self._fault(request)
            elif cmd == "clear":
                self.point.clear_faults(t_s)
                self.meter.faults.clear()
        except (RequestError, PointError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "status": self.status()}

    def handle_line(self, line: bytes | str) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            return {"ok": False, "error": f"bad JSON: {exc}"}
        return self.handle(request)

    async def serve_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the stream limit
                    reply = {"ok": False, "error": f"request longer than {MAX_LINE_BYTES} bytes"}
                    writer.write((json.dumps(reply) + "\n").encode())
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                reply = self.handle_line(line)
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def serve(station: StationSimulator, *, tcp: tuple[str, int], control_path: str,
                meter_http: tuple[str, int] | None = None) -> None:
    """Modbus TCP (charger IO, a Modbus meter) and the control socket; with
    `meter_http` the signing meter's HTTP API (hw_mocks/lem_sim.py) on that address,
    counting the same ChargingPoint."""
    meter = station.meter
    http_server = None
    if meter_http is not None:
        if meter.model.signing.get("driver") == "iem_dcr":
            from hw_mocks.iem_dcr_sim import IemDcrSimulator, IemHttpServer

            http_server = IemHttpServer(IemDcrSimulator(meter), *meter_http)
        else:
            from hw_mocks.lem_sim import LemHttpServer, LemSim

            http_server = LemHttpServer(LemSim(meter), *meter_http)  # type: ignore[assignment]
        try:
            await http_server.start()
        except OSError as exc:
            raise OSError(f"cannot serve the meter on http://{meter_http[0]}:"
                          f"{meter_http[1]}: {exc.strerror or exc}") from None
    server = ModbusTcpServer(
        station.build_devices(), address=tcp, trace_packet=station.trace_packet
    )
    remove_stale_socket(control_path)
    control = await asyncio.start_unix_server(
        station.serve_client, path=control_path, limit=MAX_LINE_BYTES
    )
    await server.serve_forever(background=True)
    meter.sim_time.restart()
    url = f"tcp://{tcp[0]}:{tcp[1]}"
    print(
        json.dumps(
            {
                "event": "ready",
                "meter_model": meter.model.key,
                "meter_url": http_server.url if http_server else url,
                "meter_unit": meter.unit_id,
                "charger_url": url,
                "charger_unit": station.charger_unit,
                "control": control_path,
                "serial": meter.serial,
                **({"meter_public_key": http_server.sim.core.public_key_hex}
                   if http_server else {}),
                "start_energy_wh": meter.start_energy_wh,
                "clock_speed": getattr(meter.sim_time.clock, "speed", 1.0),
                "started_at": meter.sim_time.iso(0.0),
                "faults": [f.to_json() for f in meter.faults + station.point.faults],
            }
        ),
        flush=True,
    )
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        control.close()
        if http_server is not None:
            await http_server.close()
        await server.shutdown()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control_path)


def run_forever(station: StationSimulator, **kwargs: Any) -> int:
    try:
        asyncio.run(serve(station, **kwargs))
    except (OSError, RuntimeError) as exc:
        print(f"evterm sim station: {exc}", file=sys.stderr)
        return 2
    return 0


def control(path: str, cmd: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """Send one request to the station's control socket; its reply (ok true or false).
    ControlError when the socket is absent or does not answer within `timeout_s`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(path)
            sock.sendall((json.dumps(cmd) + "\n").encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except TimeoutError:
            raise ControlError(f"{path}: no reply within {timeout_s:g} s") from None
        except OSError as exc:
            raise ControlError(f"{path}: {exc.strerror or exc}") from None
    if not reply.endswith(b"\n"):
        raise ControlError(f"{path}: the station closed the connection without a reply")
    return json.loads(reply)
