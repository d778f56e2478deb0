"""What a meter reports: one snapshot, and why a read failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.kernel.clock import iso_utc


@dataclass(frozen=True)
class MeterReading:
    """One snapshot, all values read in the same poll; `timestamp` is when the last
    reply of that poll arrived (UTC). None where the meter has no such value."""

    timestamp: datetime
    energy_import_wh: Decimal
    energy_export_wh: Decimal | None
    power_w: Decimal | None
    voltage_v: Decimal | None
    current_a: Decimal | None
    serial: str | None

    def to_json(self) -> dict[str, Any]:
        def num(value: Decimal | None) -> int | float | None:
            if value is None:
                return None
            return int(value) if value == value.to_integral_value() else float(value)

        return {
            "energy_import_wh": num(self.energy_import_wh),
            "energy_export_wh": num(self.energy_export_wh),
            "power_w": num(self.power_w),
            "voltage_v": num(self.voltage_v),
            "current_a": num(self.current_a),
            "timestamp": iso_utc(self.timestamp),
            "serial": self.serial,
        }

    def to_record(self) -> dict[str, Any]:
        """Exact form for the journal: Decimals as strings, time with its offset."""

        def text(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "timestamp": self.timestamp.isoformat(),
            "energy_import_wh": str(self.energy_import_wh),
            "energy_export_wh": text(self.energy_export_wh),
            "power_w": text(self.power_w),
            "voltage_v": text(self.voltage_v),
            "current_a": text(self.current_a),
            "serial": self.serial,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> MeterReading:
        def number(key: str) -> Decimal | None:
            value = data.get(key)
            return None if value is None else Decimal(value)

        return cls(
            timestamp=datetime.fromisoformat(data["timestamp"]),
            energy_import_wh=Decimal(data["energy_import_wh"]),
            energy_export_wh=number("energy_export_wh"),
            power_w=number("power_w"),
            voltage_v=number("voltage_v"),
            current_a=number("current_a"),
            serial=data.get("serial"),
        )


READ_ERROR_KINDS = ("unreachable", "timeout", "exception", "garbled")


class MeterReadError(Exception):
    """One failed poll. `kind`: unreachable (no connection), timeout (no reply),
    exception (the meter answered with a Modbus exception), garbled (a reply that is
    not a valid answer to the request)."""

    def __init__(self, kind: str, detail: str) -> None:
        assert kind in READ_ERROR_KINDS
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")
