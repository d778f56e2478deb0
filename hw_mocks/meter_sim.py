"""Meter simulator: a pymodbus server that serves any register map.

Serves the quantities of one meter model (drivers/meter/models/*.toml), computed on
every request from a `ChargingPoint` (hw_mocks.ev_model: what the car really draws),
over Modbus TCP or RTU (a serial device such as one end of a socat pty pair). The plain
`evterm sim meter` has a car plugged in and the output on from the start, so the meter
plays the car's power curve; `evterm sim station` (hw_mocks.station_sim) shares the
point with a simulated charger. A pty has no baud rate, so over RTU the simulator holds
each reply until the time the request and reply would take on a real line at the
configured baud (11 bits a character, 3.5 character gaps) has passed since the request
arrived; that is real time, whatever the clock speed. `--no-line-time` turns it off.

Simulated time comes from the one clock (`--clock-speed`, `--clock-anchor`; see
terminal.kernel.clock): the curve, the counters and the fault windows run in simulated
seconds since the simulator started.

Faults (`--fault KIND[@START_S][+DURATION_S]`, repeatable; default from start, forever):
- no_reply: requests are read and not answered
- exception: every request gets Modbus exception 4 (device failure)
- garbled: replies are corrupted on the wire (wrong byte count; RTU CRC fails too)
- frozen: the import counter stops while power still flows
- jump: the import counter jumps by JUMP_WH (1,000 kWh)
- reset: the import counter restarts from 0
A signing model (drivers/meter/models with [signing], e.g. lem_dcbm400600) is served
over HTTP (`--http HOST:PORT`, hw_mocks/lem_sim.py) and also plays SIGNING_FAULT_KINDS:
bad_signature, pagination_gap, error_flag, clock_unsync, clock_informative, reboot,
disconnect (see hw_mocks/lem_sim.py).

Run it: `evterm sim meter --model eastron_sdm630 --tcp 127.0.0.1:5020`.
"""

from __future__ import annotations

import asyncio
import errno
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.meter.codec import encode
from drivers.meter.registermap import QUANTITIES, MeterModel, RegisterSpec
from hw_mocks.ev_model import ChargingPoint, Fault, FaultSpecError, PowerCurve
from terminal.kernel.clock import SYSTEM_CLOCK, Clock, iso_utc

FAULT_KINDS = ("no_reply", "exception", "garbled", "frozen", "jump", "reset")
# a signing meter (a model with [signing]) also plays these (hw_mocks/ocmf_meter.py,
# the HTTP front end hw_mocks/lem_sim.py): documents, clock, power cycle, lost link
SIGNING_FAULT_KINDS = ("bad_signature", "pagination_gap", "error_flag", "clock_unsync",
                       "clock_informative", "reboot", "disconnect")
JUMP_WH = 1_000_000.0
BITS_PER_CHAR = 11
SPIN_S = 0.002  # the last part of a line-time hold is spent yielding, not sleeping

__all__ = ["FAULT_KINDS", "SIGNING_FAULT_KINDS", "Fault", "FaultSpecError", "MeterSimulator",
           "SimTime", "fault_kinds"]


def fault_kinds(model: MeterModel) -> tuple[str, ...]:
    """The fault kinds a simulator of `model` plays."""
    return FAULT_KINDS + SIGNING_FAULT_KINDS if model.signs else FAULT_KINDS


class SimTime:
    """Simulated seconds since the simulator started, from the one clock (so a scaled
    clock shared with the daemon gives both the same simulated time)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.start_epoch_s = self.epoch_s()

    def epoch_s(self) -> float:
        return self.clock.now().timestamp()

    def restart(self) -> None:
        self.start_epoch_s = self.epoch_s()

    def t_s(self) -> float:
        return max(0.0, self.epoch_s() - self.start_epoch_s)

    def iso(self, t_s: float) -> str:
        return iso_utc(datetime.fromtimestamp(self.start_epoch_s + t_s, UTC))


async def hold_until(deadline: float) -> None:
    """Return when time.monotonic() reaches `deadline`. asyncio.sleep alone overshoots
    (epoll rounds its timeout up to whole milliseconds), so sleep up to SPIN_S before
    the deadline and yield to the loop for the rest."""
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(remaining - SPIN_S if remaining > SPIN_S else 0)


def line_time_s(request_bytes: int, reply_bytes: int, baud: int) -> float:
    """Time on an RTU line: both frames at 11 bits a character plus a 3.5 character
    gap after each."""
    chars = request_bytes + reply_bytes + 2 * 3.5
    return chars * BITS_PER_CHAR / baud


def rtu_read_exchange_bytes(count: int) -> tuple[int, int]:
    """(request, reply) bytes of an RTU FC3/FC4 read of `count` registers."""
    return 8, 5 + 2 * count


@dataclass
class MeterSimulator:
    """The meter at a charging point: it counts what `point` really delivers."""

    model: MeterModel
    point: ChargingPoint = field(default_factory=lambda: ChargingPoint.charging(PowerCurve()))
    start_energy_wh: float = 12_345_678.0
    export_energy_wh: float = 4_321.0
    serial: str = "20260001"
    unit_id: int = 0
    faults: list[Fault] = field(default_factory=list)
    line_baud: int | None = None
    sim_time: SimTime = field(default_factory=SimTime)
    requests: int = 0
    _request_arrived: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.unit_id = self.unit_id or self.model.default_unit_id
        for fault in self.faults:
            self.point.mark(fault.start_s)

    def elapsed_s(self) -> float:
        """Simulated seconds since start."""
        return self.sim_time.t_s()

    def add_fault(self, fault: Fault) -> None:
        allowed = fault_kinds(self.model)
        if fault.kind not in allowed:
            raise FaultSpecError(
                f"unknown meter fault {fault.kind!r} for {self.model.name}; allowed: "
                + ", ".join(allowed)
            )
        self.point.mark(fault.start_s)
        self.faults.append(fault)

    def fault_active(self, kind: str, t_s: float) -> Fault | None:
        return next((f for f in self.faults if f.kind == kind and f.active(t_s)), None)

    def energy_import_wh(self, t_s: float) -> float:
        """The counter as the meter shows it at t_s, faults applied."""
        self.point.advance(t_s)
        frozen = self.fault_active("frozen", t_s)
        counted = (
            self.point.total_at(frozen.start_s) if frozen else self.point.delivered_total_wh
        )
        energy = self.start_energy_wh + counted
        if self.fault_active("jump", t_s):
            energy += JUMP_WH
        if reset := self.fault_active("reset", t_s):
            energy = counted - self.point.total_at(reset.start_s)
        return energy

    def values_at(self, t_s: float) -> dict[str, float | str]:
        return {
            "energy_import_wh": self.energy_import_wh(t_s),
            "energy_export_wh": self.export_energy_wh,
            "power_w": self.point.power_w(t_s),
            "voltage_v": self.point.voltage_v(t_s),
            "current_a": self.point.current_a(t_s),
            "serial": self.serial,
        }

    def _raw(self, reg: RegisterSpec, value: float | str) -> list[int]:
        if reg.name == "serial" or reg.dtype == "ascii":
            return encode(str(value), reg.dtype, reg.word_order, reg.count)
        if reg.name not in QUANTITIES:
            return encode(reg.sim_value or 0, reg.dtype, reg.word_order)
        number = Decimal(repr(float(value))) / reg.scale
        if reg.decimal_point:
            dp = self.model.registers[reg.decimal_point].sim_value or 0
            number = number.scaleb(-reg.exponent(dp))
        if reg.dtype == "float32":
            return encode(number, "float32", reg.word_order)
        rounding = ROUND_FLOOR if reg.name.startswith("energy") else ROUND_HALF_UP
        integer = number.to_integral_value(rounding)
        if reg.dtype.startswith("u"):
            integer = max(integer, Decimal(0))
        return encode(integer, reg.dtype, reg.word_order)

    def _layout(self, function: int) -> tuple[int, int]:
        regs = [r for r in self.model.registers.values() if r.function == function]
        if not regs:
            return 0, 0
        start = min(r.address for r in regs)
        return start, max(r.end for r in regs) - start

    def build_device(self) -> SimDevice:
        def unused(kind: DataType = DataType.REGISTERS) -> list[SimData]:
            return [SimData(0, count=1, values=0, datatype=kind)]

        blocks: dict[int, list[SimData]] = {}
        for function in (3, 4):
            start, count = self._layout(function)
            blocks[function] = (
                [SimData(start, count=count, values=0, datatype=DataType.REGISTERS)]
                if count
                else unused()
            )
        return SimDevice(
            id=self.unit_id,
            simdata=(unused(DataType.BITS), unused(DataType.BITS), blocks[3], blocks[4]),
            action=self._action,
        )

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        t_s = self.elapsed_s()
        if self.line_baud:
            arrived = self._request_arrived or time.monotonic()
            await hold_until(
                arrived + line_time_s(*rtu_read_exchange_bytes(count), self.line_baud)
            )
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION
        if self.fault_active("exception", t_s):
            return ExcCodes.DEVICE_FAILURE
        values = self.values_at(t_s)
        for reg in self.model.registers.values():
            if reg.function != function_code:
                continue
            offset = reg.address - start_address
            registers[offset : offset + reg.count] = self._raw(reg, values.get(reg.name, 0))
        return None

    def trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            # the first bytes of a request: on a pty they arrive at once, on a real line
            # that is when the request starts, so the line time counts from here
            if self._request_arrived is None:
                self._request_arrived = time.monotonic()
            return data
        self._request_arrived = None
        t_s = self.elapsed_s()
        if self.fault_active("no_reply", t_s):
            return b""
        if self.fault_active("garbled", t_s):
            return _garble(data)
        return data


def _garble(frame: bytes) -> bytes:
    """Corrupt a reply the way line noise does: the byte count no longer matches the
    payload and (RTU) the CRC fails. Works for TCP (MBAP header of 7 bytes) and RTU."""
    raw = bytearray(frame)
    count_at = 8 if len(raw) > 9 and raw[2:4] == b"\x00\x00" else 2
    if len(raw) > count_at:
        raw[count_at] ^= 0x5A
    if len(raw) > count_at + 2:
        raw[count_at + 1] ^= 0xFF
    return bytes(raw)


async def serve(sim: MeterSimulator, *, tcp: tuple[str, int] | None = None,
                rtu: str | None = None, baud: int = 9600, parity: str = "N",
                stop_bits: int = 1) -> None:
    device = sim.build_device()
    server: ModbusTcpServer | ModbusSerialServer
    if tcp is not None:
        server = ModbusTcpServer(device, address=tcp, trace_packet=sim.trace_packet)
        where = f"tcp://{tcp[0]}:{tcp[1]}"
    else:
        assert rtu is not None
        server = ModbusSerialServer(
            device,
            framer=FramerType.RTU,
            port=rtu,
            baudrate=baud,
            parity=parity,
            stopbits=stop_bits,
            trace_packet=sim.trace_packet,
        )
        where = f"rtu://{rtu}"
    try:
        await server.serve_forever(background=True)
    except (OSError, RuntimeError) as exc:
        raise OSError(f"cannot serve on {where}: {_why_not_serving(tcp, rtu, exc)}") from None
    sim.sim_time.restart()
    print(
        json.dumps(
            {
                "event": "ready",
                "model": sim.model.key,
                "url": where,
                "unit_id": sim.unit_id,
                "serial": sim.serial,
                "faults": [f.to_json() for f in sim.faults],
                "clock_speed": getattr(sim.sim_time.clock, "speed", 1.0),
                "started_at": sim.sim_time.iso(0.0),
            },
            default=str,
        ),
        flush=True,
    )
    try:
        await server.serving
    finally:
        await server.shutdown()


def _why_not_serving(tcp: tuple[str, int] | None, rtu: str | None, exc: Exception) -> str:
    """Why the server could not start (pymodbus only says "could not start listen"):
    the port busy, the address not local, the device missing."""
    import os
    import socket

    if tcp is not None:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(tcp)
        except OSError as bind_error:
            if bind_error.errno == errno.EADDRINUSE:
                return (f"port {tcp[1]} is already in use (another simulator or program "
                        "listens there; pick another port)")
            return f"{tcp[0]}:{tcp[1]}: {bind_error.strerror or bind_error}"
    elif rtu is not None and not os.path.exists(rtu):
        return f"no such device {rtu}"
    return str(exc)


def run_forever(sim: MeterSimulator, **kwargs: object) -> int:
    try:
        asyncio.run(serve(sim, **kwargs))  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return 0
    except (OSError, RuntimeError) as exc:
        print(f"evterm sim meter: {exc}", file=sys.stderr)
        return 2
    return 0
