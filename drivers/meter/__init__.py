"""Energy meters behind one small interface.

`Meter.read_snapshot()` returns a MeterReading or raises MeterReadError. `open_meter()`
builds the driver from a model name (or map path) and a URL, so the field, the demo and
the tests run the same code path (a simulated meter is just another URL).
"""

from __future__ import annotations

from typing import Protocol

from drivers.meter.reading import MeterReadError, MeterReading
from drivers.meter.registermap import MeterMapError, MeterModel, load_model
from drivers.meter.transport import TransportError, parse_meter_url
from terminal.kernel.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "Meter",
    "MeterMapError",
    "MeterReadError",
    "MeterReading",
    "TransportError",
    "open_meter",
]


class Meter(Protocol):
    model: MeterModel

    async def read_snapshot(self) -> MeterReading: ...

    def close(self) -> None: ...


def open_meter(
    model: str, url: str, unit_id: int = 0, timeout_s: float = 1.0, clock: Clock = SYSTEM_CLOCK
) -> Meter:
    """Raise MeterMapError / TransportError for a bad model or URL. Readings are
    timestamped by `clock`."""
    from drivers.meter.modbus_meter import ModbusMeter

    return ModbusMeter(load_model(model), parse_meter_url(url), unit_id, timeout_s, clock)
