"""Builders for session machine tests: readings, charger states, a scripted driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from drivers.charger import ChargerStatus, EvState
from drivers.meter.reading import MeterReading
from terminal.session import (
    Authorization,
    AuthorizationAccepted,
    Event,
    Record,
    Rules,
    SessionState,
    Step,
    Tick,
    step,
)

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
RULES = Rules(
    connection_timeout_s=120,
    ev_power_timeout_s=300,
    ev_finished_after_s=60,
    output_off_timeout_s=2,
    charging_threshold_w=Decimal(100),
    checkpoint_interval_s=0,
    meter_value_interval_s=60,
    max_charger_errors=3,
)


def reading(t_s: float, energy_wh: float | str, power_w: float | str = 0) -> MeterReading:
    return MeterReading(
        timestamp=T0 + timedelta(seconds=t_s),
        energy_import_wh=Decimal(str(energy_wh)),
        energy_export_wh=None,
        power_w=Decimal(str(power_w)),
        voltage_v=Decimal(800),
        current_a=Decimal(str(power_w)) / 800,
        serial="S1",
    )


def charger(ev: str = "C", output_on: bool = False, commanded: bool | None = None,
            fault: str | None = None) -> ChargerStatus:
    return ChargerStatus(
        ev_state=EvState(ev),
        output_on=output_on,
        output_commanded=output_on if commanded is None else commanded,
        fault=fault,
    )


@dataclass
class Driver:
    """Applies events in order, keeping every step (records, actions) for assertions."""

    state: SessionState = field(default_factory=SessionState)
    steps: list[Step] = field(default_factory=list)
    rules: Rules = RULES

    def send(self, event: Event) -> Step:
        result = step(self.state, event, self.rules)
        self.state = result.state
        self.steps.append(result)
        return result

    def tick(self, t_s: float, energy_wh: float | None = None, power_w: float = 0,
             ev: str = "C", output_on: bool | None = None, **extra: object) -> Step:
        meter = None if energy_wh is None else reading(t_s, energy_wh, power_w)
        if "charger_status" in extra:
            status = extra.pop("charger_status")
        else:
            status = charger(ev, self.state.output_on if output_on is None else output_on)
        return self.send(Tick(T0 + timedelta(seconds=t_s), meter, extra.pop("meter_fault", None),
                              status, **extra))  # type: ignore[arg-type]

    def authorize(self, t_s: float = 0, **auth: object) -> Step:
        authorization = Authorization(id_token="TOKEN1", source="local", **auth)  # type: ignore[arg-type]
        return self.send(AuthorizationAccepted(T0 + timedelta(seconds=t_s), "S-1", authorization))

    def records(self, kind: type) -> list[Record]:
        return [r for s in self.steps for r in s.records if isinstance(r, kind)]
