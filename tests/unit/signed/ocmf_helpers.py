"""Signed documents for the tests: an `OcmfMeterSim` on a counter and clock the test
moves, and one charging session on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from drivers.meter.signing import MeterKey
from hw_mocks.ocmf_meter import OcmfMeterSim

RFID = {"IS": True, "IL": "VERIFIED", "IF": ["RFID_PLAIN", "OCPP_AUTH"], "IT": "ISO14443",
        "ID": "04A2B3C4D5E6F7"}
SERIAL = "LEM-0042"


@dataclass
class World:
    """The sim's counter and clock, moved by the test."""

    energy_wh: Decimal = Decimal("1234567.8")
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, 0, 0, 250000,
                                                           tzinfo=UTC))

    def charge(self, energy_wh: str, minutes: int = 20) -> None:
        self.energy_wh += Decimal(energy_wh)
        self.now += timedelta(minutes=minutes)


def make_sim(world: World, curve: str = "secp256r1", state_path: Path | None = None,
             serial: str = SERIAL) -> OcmfMeterSim:
    return OcmfMeterSim(serial=serial, model="DCBM 400", manufacturer="LEM",
                        firmware="1.2.3", curve=curve, energy_wh=lambda: world.energy_wh,
                        now=lambda: world.now, state_path=state_path)


def session(sim: OcmfMeterSim, world: World, tx: str = "tx-1", reason: str = "E",
            energy_wh: str = "20000.44") -> tuple[str, str]:
    """One transaction: the begin and the end document."""
    begin = sim.begin(tx, RFID, "0,39 EUR/kWh")
    world.charge(energy_wh)
    return begin, sim.end(tx, reason)


def key_of(sim: OcmfMeterSim) -> MeterKey:
    return MeterKey(sim.public_key_hex, sim.signing_method, sim.serial)
