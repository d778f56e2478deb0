"""Sessions journaled as the daemon journals them, for the retention tests and bench:
every poll through the session machine into `Store.commit`, the terms frozen at the
start reading, the receipt (and its OCPI CDR) made by `bill_from_journal` at close."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from drivers.meter.reading import MeterReading
from terminal.billing import Terms, bill_from_journal
from terminal.session import (
    Authorization,
    AuthorizationAccepted,
    Event,
    ReadingRecord,
    SessionState,
    Tick,
    state_to_json,
    step,
)
from terminal.store import Store
from tests.unit.cdr.helpers import SITE
from tests.unit.session_helpers import RULES, charger

TARIFF = json.loads(
    (Path(__file__).resolve().parents[2] / "examples/tariffs/nl_time_of_day.json").read_text())
TERMS = Terms(TARIFF, "Europe/Amsterdam", Decimal(100), "ST1", "Operator")


def power_at(second: int, seconds: int) -> int:
    """A DC charging curve: 150 kW, tapering after 60 %, a pause at a third."""
    if seconds // 3 <= second < seconds // 3 + 30:
        return 0  # the car pauses (counts as not charging)
    if second > seconds * 6 // 10:
        return 150_000 - (second - seconds * 6 // 10) * 100_000 // max(1, seconds * 4 // 10)
    return 150_000


def charge(store: Store, session_id: str, start: datetime, seconds: int, *,
           token: str = "04A1B2C3D4", source: str = "rfid", terms: Terms = TERMS,
           energy_wh: Decimal = Decimal(1_000_000), idle_after_s: int = 0,
           auth: dict[str, object] | None = None) -> Decimal:
    """One charging session of `seconds` polls (one a second), then `idle_after_s`
    seconds plugged in without power, then unplugged; its receipt stored. Returns the
    meter's energy at the end (feed it to the next session)."""
    state = SessionState()

    def apply(event: Event) -> None:
        nonlocal state
        result = step(state, event, RULES)
        state = result.state
        starts = any(isinstance(r, ReadingRecord) and r.kind == "start" for r in result.records)
        store.commit(result.records, state_to_json(state), session_id=session_id,
                     station_id="ST1", tariff_json=terms.to_json() if starts else None,
                     at=event.at)

    def tick(at_s: int, energy: Decimal | None, power_w: int, ev: str = "C",
             output_on: bool | None = None) -> None:
        at = start + timedelta(seconds=at_s)
        meter = None if energy is None else MeterReading(
            timestamp=at, energy_import_wh=energy, energy_export_wh=None,
            power_w=Decimal(power_w), voltage_v=Decimal(800),
            current_a=Decimal(power_w) / 800, serial="MTR-1")
        apply(Tick(at, meter, None, charger(ev, state.output_on if output_on is None
                                            else output_on)))

    apply(AuthorizationAccepted(start, session_id, Authorization(
        id_token=token, source=source, **(auth or {}))))  # type: ignore[arg-type]
    energy = energy_wh
    tick(1, energy, 0)
    for second in range(2, seconds + 2):
        power = power_at(second - 2, seconds)
        energy += Decimal(power) / 3600
        tick(second, energy.quantize(Decimal("0.1")), power)
    energy = energy.quantize(Decimal("0.1"))
    for second in range(seconds + 2, seconds + 2 + idle_after_s):
        tick(second, energy, 0)
    end = seconds + 2 + idle_after_s
    tick(end, energy, 0, ev="A", output_on=False)
    bill = bill_from_journal(store, session_id, site=SITE)
    assert bill is not None and bill.cdr_json is not None
    store.add_receipt(session_id, bill.receipt, bill.amount_charged,
                      start + timedelta(seconds=end), bill.cdr_json)
    return energy


def deliver_all(store: Store, at: datetime) -> None:
    """The backend acknowledged every queued message at `at`."""
    store.mark_delivered([m.id for m in store.outbox(pending_only=True, limit=100_000)], at)
