"""Energy meters behind one small interface.

`Meter.read_snapshot()` returns a MeterReading or raises MeterReadError. `open_meter()`
builds the driver from a model name (or map path) and a URL, so the field, the demo and
the tests run the same code path (a simulated meter is just another URL). A model file
with a `[signing]` table is a signing (Eichrecht) meter: its driver class
(drivers/meter/signing_drivers.py) implements `drivers.meter.signing.SigningMeter`,
which is a `Meter` too.
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

    loaded = load_model(model)
    if loaded.signs:
        from drivers.meter.signing_drivers import signing_driver

        driver: Meter = signing_driver(loaded.signing["driver"])(
            loaded, url, unit_id, timeout_s, clock)
        return driver
    return ModbusMeter(loaded, parse_meter_url(url), unit_id, timeout_s, clock)
