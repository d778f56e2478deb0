"""Charger driver for the evterm charger IO interface: one coil, four inputs, two registers.

Provides `ModbusCoilCharger`, a `ChargerControl` over Modbus TCP or RTU (pymodbus asyncio
clients): `status()` reads the vehicle state, the contactor feedback, the output
command and the charger's fault code in three requests (input registers 0-1, discrete
inputs 0-3, coil 0); `set_output(on)` writes coil 0. The register layout and the fault
code table are in docs/charger.md ("the evterm charger IO interface") and below.
Config: url (`tcp://HOST:PORT`, or `rtu:///dev/PATH?baud=9600&parity=N&stopbits=1`;
RTU defaults 9600 8N1), unit_id (default 2), timeout_s (per request, default 1.0).
On failure: every call raises ChargerError whose detail starts with the kind
(unreachable, timeout, exception, garbled) and names the request; a status is returned
only when all three reads succeeded and decoded, never a stale or guessed one. After a
timeout or a garbled reply the connection is dropped so a late reply cannot be taken
for the answer to the next request; the next call reconnects. No retries here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from drivers.charger import ChargerError, ChargerStatus, EvState
from drivers.meter.modbus_meter import EXCEPTION_NAMES
from drivers.meter.transport import Transport, make_client, why_unreachable

# the evterm charger IO interface (docs/charger.md)
COIL_OUTPUT = 0  # write: command the output on/off; read: the command
DI_VEHICLE_CONNECTED = 0  # EV state B or C
DI_VEHICLE_ASKS = 1  # EV state C
DI_OUTPUT_ON = 2  # contactor feedback
DI_FAULT = 3  # the charger reports a fault (input register 1 says which)
DI_COUNT = 4
IR_EV_STATE = 0  # IEC 61851 state as its ASCII code, 65 = 'A' ... 70 = 'F'
IR_FAULT_CODE = 1  # 0 = no fault, else FAULT_CODES
IR_COUNT = 2

FAULT_CODES: dict[int, str] = {
    1: "power stage fault",
    2: "insulation fault",
    3: "over-temperature",
    4: "emergency stop pressed",
    5: "output overvoltage",
    6: "control pilot lost",
}
STATE_CODES: dict[int, EvState] = {ord(state.value): state for state in EvState}

DEFAULT_BAUD = 9600
DEFAULT_PARITY = "N"
DEFAULT_STOP_BITS = 1


def decode_status(
    state_code: int, fault_code: int, output_on: bool, output_commanded: bool
) -> ChargerStatus:
    """The status from the raw values; ChargerError naming an unknown code."""
    state = STATE_CODES.get(state_code)
    if state is None:
        allowed = ", ".join(f"{code} ({s.value})" for code, s in STATE_CODES.items())
        raise ChargerError(
            f"garbled: unknown EV state code {state_code} in input register {IR_EV_STATE}; "
            f"allowed: {allowed}"
        )
    if fault_code and fault_code not in FAULT_CODES:
        raise ChargerError(
            f"garbled: unknown fault code {fault_code} in input register {IR_FAULT_CODE}; "
            f"allowed: 0 (none), {', '.join(str(c) for c in FAULT_CODES)}"
        )
    return ChargerStatus(
        ev_state=state,
        output_on=output_on,
        output_commanded=output_commanded,
        fault=FAULT_CODES[fault_code] if fault_code else None,
    )


class ModbusCoilCharger:
    def __init__(self, transport: Transport, unit_id: int = 2, timeout_s: float = 1.0) -> None:
        self.transport = transport
        self.unit_id = unit_id
        self.timeout_s = timeout_s
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock: asyncio.Lock | None = None

    def _where(self) -> str:
        return f"unit {self.unit_id} at {self.transport.describe()}"

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        return make_client(
            self.transport, self.timeout_s, DEFAULT_BAUD, DEFAULT_PARITY, DEFAULT_STOP_BITS
        )

    async def _ensure_connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            self._client = self._make_client()  # needs the running loop
        if self._client.connected:
            return self._client
        try:
            ok = await self._client.connect()
        except (OSError, ModbusException) as exc:
            raise ChargerError(f"unreachable: {self._where()}: {exc}") from None
        if not ok:
            reason = await why_unreachable(self.transport, self.timeout_s)
            raise ChargerError(f"unreachable: {reason}")
        return self._client

    def _drop(self, detail: str) -> ChargerError:
        self.close()
        return ChargerError(detail)

    async def _call(self, what: str, request: str, *args: Any, **kwargs: Any) -> Any:
        """One request; the reply or ChargerError naming `what` failed and why."""
        client = await self._ensure_connected()
        try:
            response = await getattr(client, request)(*args, device_id=self.unit_id, **kwargs)
        except ModbusException as exc:
            text = str(exc)
            if "No response" in text or "timeout" in text.lower():
                raise self._drop(f"timeout: no reply to {what} ({self._where()})") from None
            if not client.connected:
                lost = f"unreachable: {what}: connection lost ({self._where()})"
                raise self._drop(lost) from None
            raise self._drop(f"garbled: {what}: {text} ({self._where()})") from None
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown")
            raise ChargerError(
                f"exception: {what}: Modbus exception {code} ({name}) ({self._where()})"
            )
        return response

    def _bits(self, response: Any, what: str, count: int) -> list[bool]:
        bits = list(getattr(response, "bits", []))
        if len(bits) < count:
            raise self._drop(f"garbled: {what}: reply holds {len(bits)} bits, asked {count}")
        return bits[:count]

    def _lock_now(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def status(self) -> ChargerStatus:
        async with self._lock_now():
            what = f"FC4 read of input registers {IR_EV_STATE}+{IR_COUNT}"
            reply = await self._call(what, "read_input_registers", IR_EV_STATE, count=IR_COUNT)
            registers = list(getattr(reply, "registers", []))
            if len(registers) != IR_COUNT:
                raise self._drop(
                    f"garbled: {what}: reply holds {len(registers)} registers, asked {IR_COUNT}"
                )
            what = f"FC2 read of discrete inputs 0+{DI_COUNT}"
            inputs = self._bits(
                await self._call(what, "read_discrete_inputs", 0, count=DI_COUNT), what, DI_COUNT
            )
            what = f"FC1 read of coil {COIL_OUTPUT}"
            coils = self._bits(await self._call(what, "read_coils", COIL_OUTPUT, count=1), what, 1)
        return decode_status(
            registers[IR_EV_STATE - IR_EV_STATE],
            registers[IR_FAULT_CODE - IR_EV_STATE],
            output_on=inputs[DI_OUTPUT_ON],
            output_commanded=coils[0],
        )

    async def set_output(self, on: bool) -> None:
        what = f"FC5 write of coil {COIL_OUTPUT} = {'on' if on else 'off'}"
        async with self._lock_now():
            reply = await self._call(what, "write_coil", COIL_OUTPUT, on)
            echo = self._bits(reply, what, 1)
        if echo[0] != on:
            raise ChargerError(f"garbled: {what}: the reply echoes {'on' if echo[0] else 'off'}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
