"""What a signing meter's documents mean for a session's bill (docs/eichrecht.md).

Provides `SignedSummary` (from the session's `signed_values` rows: the signed begin and
end, the meter's key, whether the session may be billed by energy and whether both
clocks were trusted) with:
- `readings(readings)`: the readings the bill is priced from — the signed begin, the
  samples between the two signed values, the signed end — so the billed energy is the
  signed end minus the signed begin, exactly;
- `tariff(tariff)`: the tariff the session is billed by — without ENERGY when the
  signed values are incomplete or invalid (never a value of our own instead), without
  TIME and PARKING_TIME while a clock was not synchronised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from drivers.meter.reading import MeterReading
from terminal.pricing.components import without_dimensions
from terminal.pricing.model import Dimension, Tariff

NO_BEGIN = "no signed begin"
NO_END = "the end was not signed"


@dataclass(frozen=True)
class SignedSummary:
    meter_serial: str
    public_key_hex: str
    signing_method: str
    begin_ocmf: str | None
    end_ocmf: str | None
    start_wh: Decimal | None
    end_wh: Decimal | None
    problem: str | None  # why the session is not billed by energy; None: it is
    clock_trusted: bool

    @property
    def billable_by_energy(self) -> bool:
        return self.problem is None

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]]) -> SignedSummary | None:
        """From a session's `signed_values` rows (oldest first); None when it has none
        (a meter that does not sign)."""
        if not rows:
            return None
        begin = next((r for r in rows if r["kind"] == "begin"), None)
        end = next((r for r in reversed(rows) if r["kind"] == "end"), None)
        problems = [p for r in (begin, end) if r is not None for p in r["problems"]]
        if begin is None:
            problems.insert(0, NO_BEGIN)
        if end is None:
            problems.append(NO_END)
        used = [r for r in (begin, end) if r is not None]
        trusted = len(used) == 2 and all(
            r["clock"] == "S" and r.get("terminal_clock_synced") == 1 for r in used)
        key_row = begin or rows[0]
        return cls(
            meter_serial=key_row["meter_serial"],
            public_key_hex=key_row["public_key"],
            signing_method=key_row["signing_method"],
            begin_ocmf=begin["ocmf"] if begin else None,
            end_ocmf=end["ocmf"] if end else None,
            start_wh=Decimal(begin["energy_wh"]) if begin else None,
            end_wh=Decimal(end["energy_wh"]) if end else None,
            problem="; ".join(problems) or None,
            clock_trusted=trusted,
        )

    def readings(self, readings: list[MeterReading]) -> list[MeterReading]:
        """The readings to price: the signed begin and end and the samples between them
        that lie within both (a live sample a little above the signed end, from the
        registers' different resolution, is left out)."""
        if not self.billable_by_energy or len(readings) < 2:
            return readings
        first, last = readings[0], readings[-1]
        kept = [first]
        for reading in readings[1:-1]:
            if (kept[-1].energy_import_wh <= reading.energy_import_wh
                    <= last.energy_import_wh
                    and kept[-1].timestamp < reading.timestamp < last.timestamp):
                kept.append(reading)
        return [*kept, last]

    def tariff(self, tariff: Tariff) -> Tariff:
        dropped: list[Dimension] = []
        if not self.billable_by_energy:
            dropped.append(Dimension.ENERGY)
        if not self.clock_trusted:
            dropped += [Dimension.TIME, Dimension.PARKING_TIME]
        return without_dimensions(tariff, dropped)
