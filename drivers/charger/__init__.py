"""Charger control: switch energy delivery on and off, and see the plug and the EV.

Provides `ChargerControl` (async `status()`, `set_output()`, `close()`) and
`open_charger(kind, url, unit_id, timeout_s)`, the factory the daemon uses, so the
field (a Modbus relay/IO module wired to the power stage) and the simulated station
(hw_mocks) run the same code path. On failure every call raises `ChargerError` naming
what failed; it never returns a guessed status.

EV states follow IEC 61851-1: A no vehicle, B vehicle connected and not asking for
energy, C vehicle asking for energy, E/F error (no or bad control pilot).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

CHARGER_KINDS = ("modbus_coil",)


class EvState(enum.StrEnum):
    A = "A"  # no vehicle
    B = "B"  # connected, not asking for energy (paused or full)
    C = "C"  # connected, asking for energy
    E = "E"  # error: no control pilot / short
    F = "F"  # error: charger not available

    @property
    def plugged(self) -> bool:
        return self in (EvState.B, EvState.C)


@dataclass(frozen=True)
class ChargerStatus:
    """ev_state: the vehicle's state. output_on: the power stage really delivers (the
    contactor feedback, not the command). output_commanded: what we asked for.
    fault: the charger's own fault text, None when healthy."""

    ev_state: EvState
    output_on: bool
    output_commanded: bool
    fault: str | None = None

    @property
    def plugged(self) -> bool:
        return self.ev_state.plugged


class ChargerError(Exception):
    """The charger could not be read or commanded; `detail` says what failed."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class ChargerControl(Protocol):
    async def status(self) -> ChargerStatus: ...

    async def set_output(self, on: bool) -> None:
        """Command energy delivery on or off (does not wait for the feedback)."""

    def close(self) -> None: ...


def open_charger(
    kind: str, url: str, unit_id: int = 2, timeout_s: float = 1.0
) -> ChargerControl:
    """Build the charger driver; ValueError naming the kind or URL when they are bad."""
    if kind == "modbus_coil":
        from drivers.charger.modbus_coil import ModbusCoilCharger
        from drivers.meter.transport import parse_modbus_url

        return ModbusCoilCharger(parse_modbus_url(url, "charger"), unit_id, timeout_s)
    raise ValueError(f"unknown charger kind {kind!r}; allowed: {', '.join(CHARGER_KINDS)}")
