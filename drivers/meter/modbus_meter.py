"""Modbus meter driver: reads one snapshot per call from any register map.

Provides `ModbusMeter.read_snapshot()` -> MeterReading, over Modbus TCP or RTU
(pymodbus asyncio clients). The snapshot is read in the fewest block reads the map
allows (see registermap.plan_blocks); the serial number is read once per connection.
Config: model, url, unit_id (0 = model default), timeout_s.
On failure: raises MeterReadError (kind unreachable/timeout/exception/garbled) and
returns nothing: a failed poll never yields an old value with a new timestamp.
Retries are left to the caller (MeterMonitor counts consecutive failures).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from drivers.meter.codec import DecodeError, decode
from drivers.meter.reading import MeterReadError, MeterReading
from drivers.meter.registermap import Block, MeterModel, RegisterSpec, plan_blocks
from drivers.meter.transport import Transport, make_client, why_unreachable
from terminal.kernel.clock import SYSTEM_CLOCK, Clock

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
NO_SUCH_REGISTER = (1, 2)  # illegal function / data address: the meter has no such register
NO_SUCH_REGISTER_TEXT = "wrong meter model?"
WRONG_MODEL_HINT = NO_SUCH_REGISTER_TEXT + " the meter has no such register of {model}"


def scaled(reg: RegisterSpec, raw: Decimal, dp: int | None) -> Decimal:
    value = raw * reg.scale
    if dp is not None:
        value = value.scaleb(reg.exponent(dp))
    value = value.normalize()
    # normalize() writes 800 as 8E+2; keep whole numbers whole
    return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value


class ModbusMeter:
    def __init__(
        self,
        model: MeterModel,
        transport: Transport,
        unit_id: int = 0,
        timeout_s: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.model = model
        self.transport = transport
        self.unit_id = unit_id or model.default_unit_id
        self.timeout_s = timeout_s
        self._clock = clock
        self._snapshot_blocks = plan_blocks(model.snapshot_registers(), model.max_block_registers)
        self._identity_blocks = plan_blocks(model.identity_registers(), model.max_block_registers)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._serial: str | None = None
        self._serial_read = not self._identity_blocks

    @property
    def requests_per_snapshot(self) -> int:
        return len(self._snapshot_blocks)

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        return make_client(
            self.transport, self.timeout_s, self.model.default_baud,
            self.model.default_parity, self.model.default_stop_bits
        )

    async def _ensure_connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            self._client = self._make_client()  # needs the running loop
        if self._client.connected:
            return self._client
        self._serial_read = not self._identity_blocks
        try:
            ok = await self._client.connect()
        except (OSError, ModbusException) as exc:
            raise MeterReadError("unreachable", f"{self.transport.describe()}: {exc}") from None
        if not ok:
            raise MeterReadError("unreachable", await why_unreachable(self.transport,
                                                                      self.timeout_s))
        return self._client

    async def _read_block(self, block: Block) -> list[int]:
        client = await self._ensure_connected()
        call = (
            client.read_holding_registers if block.function == 3 else client.read_input_registers
        )
        where = f"FC{block.function} {block.address:#06x}+{block.count}"
        try:
            response = await call(block.address, count=block.count, device_id=self.unit_id)
        except ModbusException as exc:
            text = str(exc)
            if "No response" in text or "timeout" in text.lower():
                raise MeterReadError("timeout", f"no reply to {where}") from None
            if not client.connected:
                raise MeterReadError("unreachable", f"{where}: connection lost") from None
            raise MeterReadError("garbled", f"{where}: {text}") from None
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown")
            hint = f"; {WRONG_MODEL_HINT.format(model=self.model.name)}" \
                if code in NO_SUCH_REGISTER else ""
            raise MeterReadError("exception",
                                 f"{where}: Modbus exception {code} ({name}){hint}")
        registers = list(getattr(response, "registers", []))
        if len(registers) != block.count:
            raise MeterReadError(
                "garbled", f"{where}: reply holds {len(registers)} registers, asked {block.count}"
            )
        return registers

    async def _read_values(self, blocks: Sequence[Block]) -> dict[str, Decimal | str]:
        values: dict[str, Decimal | str] = {}
        for block in blocks:
            registers = await self._read_block(block)
            for reg in block.registers:
                offset = reg.address - block.address
                try:
                    values[reg.name] = decode(
                        registers[offset : offset + reg.count], reg.dtype, reg.word_order
                    )
                except DecodeError as exc:
                    raise MeterReadError("garbled", f"{reg.name}: {exc}") from None
        return values

    async def _read_serial(self) -> None:
        values = await self._read_values(self._identity_blocks)
        raw = values["serial"]
        self._serial = str(int(raw)) if isinstance(raw, Decimal) else raw or None
        self._serial_read = True

    async def read_snapshot(self) -> MeterReading:
        await self._ensure_connected()
        if not self._serial_read:
            await self._read_serial()
        raw = await self._read_values(self._snapshot_blocks)
        stamp = self._clock.now()

        def quantity(name: str) -> Decimal | None:
            reg = self.model.registers.get(name)
            if reg is None:
                return None
            dp = raw[reg.decimal_point] if reg.decimal_point else None
            return scaled(reg, raw[name], int(dp) if dp is not None else None)  # type: ignore[arg-type]

        energy = quantity("energy_import_wh")
        assert energy is not None
        return MeterReading(
            timestamp=stamp,
            energy_import_wh=energy,
            energy_export_wh=quantity("energy_export_wh"),
            power_w=quantity("power_w"),
            voltage_v=quantity("voltage_v"),
            current_a=quantity("current_a"),
            serial=self._serial,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
