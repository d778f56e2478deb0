"""Meter monitor: turns raw polls into billable readings and faults.

Provides `MeterMonitor.poll()` -> PollOutcome. A reading is billable only when it was
read fresh and is plausible against the last billable one:
- the import counter never goes backwards (a reset or wrap is a fault);
- it never grows faster than the rated power allows (plus the meter's resolution);
- it moves when the meter reports power for long enough (a frozen counter is a fault).
Counter faults latch until `clear_counter_fault()` (a technician or a new session with a
fresh reference): energy is never billed from a meter that lied once.
`max_failed_polls` consecutive failed reads raise a communication fault, which clears by
itself on the next good read. Repeating faults are logged through FaultLogger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from drivers.meter import Meter
from drivers.meter.reading import MeterReadError, MeterReading
from terminal.kernel.clock import SYSTEM_CLOCK, Clock
from terminal.kernel.logsetup import FaultLogger, fields, get_logger

FAULT_KINDS = (
    "communication",
    "counter_backwards",
    "counter_jump",
    "counter_frozen",
    "serial_mismatch",
)
# Power above which the counter must be seen to move (W); below it a counter may
# legitimately stand still for a long time.
FROZEN_MIN_POWER_W = Decimal(100)
JUMP_TOLERANCE = Decimal("1.10")

log = get_logger("meter")


@dataclass(frozen=True)
class MeterFault:
    kind: str
    detail: str
    since: datetime

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True)
class PollOutcome:
    """reading: what the meter said this poll (None when the read failed).
    billable: the reading may be used for billing.
    fault: the meter's current fault, if any. error: why this poll failed."""

    reading: MeterReading | None
    billable: bool
    fault: MeterFault | None
    error: str | None


def resolution_wh(energy_wh: Decimal) -> Decimal:
    """Worst-case step of a counter holding `energy_wh`: at least 100 Wh (0.1 kWh
    registers), and for float32 registers 2^-23 of the value."""
    return max(Decimal(100), abs(energy_wh) * Decimal("1.2e-7"))


class MeterMonitor:
    def __init__(
        self,
        meter: Meter,
        max_failed_polls: int = 3,
        rated_power_w: int = 400_000,
        expected_serial: str = "",
        fault_interval_s: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.meter = meter
        self.max_failed_polls = max_failed_polls
        self.rated_power_w = Decimal(rated_power_w)
        self.expected_serial = expected_serial
        self._clock = clock
        self.failed_polls = 0
        self.total_failed_polls = 0
        self.total_polls = 0
        self.errors_by_kind: dict[str, int] = {}
        self.last_good: MeterReading | None = None
        self._frozen_expected_wh = Decimal(0)
        self._prev: MeterReading | None = None
        self.comm_fault: MeterFault | None = None
        self.counter_fault: MeterFault | None = None
        self._comm_log = FaultLogger(log, "meter read", fault_interval_s, clock)

    @property
    def fault(self) -> MeterFault | None:
        return self.counter_fault or self.comm_fault

    def clear_counter_fault(self) -> None:
        """Accept the meter's counter again from the next reading on."""
        if self.counter_fault:
            log.warning("meter counter fault cleared", extra=fields(kind=self.counter_fault.kind))
        self.counter_fault = None
        self.last_good = None
        self._frozen_expected_wh = Decimal(0)

    def _latch(self, kind: str, detail: str) -> None:
        if self.counter_fault is None:
            self.counter_fault = MeterFault(kind, detail, self._clock.now())
            log.error("meter counter fault", extra=fields(kind=kind, detail=detail))

    async def poll(self) -> PollOutcome:
        self.total_polls += 1
        try:
            reading = await self.meter.read_snapshot()
        except MeterReadError as exc:
            return self._failed(exc)
        self.failed_polls = 0
        self._comm_log.recovered()
        if self.comm_fault:
            log.info("meter communication restored", extra=fields(after=self.comm_fault.since))
            self.comm_fault = None
        billable = self._check(reading)
        self._prev = reading
        if billable:
            self.last_good = reading
        return PollOutcome(reading, billable, self.fault, None)

    def _failed(self, exc: MeterReadError) -> PollOutcome:
        self.failed_polls += 1
        self.total_failed_polls += 1
        self.errors_by_kind[exc.kind] = self.errors_by_kind.get(exc.kind, 0) + 1
        self._comm_log.failed(str(exc))
        if self.failed_polls >= self.max_failed_polls and self.comm_fault is None:
            self.comm_fault = MeterFault(
                "communication",
                f"{self.failed_polls} consecutive failed polls, last: {exc}",
                self._clock.now(),
            )
            log.error("meter communication fault", extra=fields(detail=self.comm_fault.detail))
        return PollOutcome(None, False, self.fault, str(exc))

    def _check(self, reading: MeterReading) -> bool:
        if self.expected_serial and reading.serial and reading.serial != self.expected_serial:
            self._latch(
                "serial_mismatch",
                f"meter reports serial {reading.serial}, expected {self.expected_serial}",
            )
        if self.counter_fault:
            return False
        ref = self.last_good
        if ref is None:
            return True
        delta_wh = reading.energy_import_wh - ref.energy_import_wh
        dt_s = Decimal(str((reading.timestamp - ref.timestamp).total_seconds()))
        if delta_wh < 0:
            self._latch(
                "counter_backwards",
                f"import counter went from {ref.energy_import_wh} Wh to "
                f"{reading.energy_import_wh} Wh",
            )
            return False
        allowed_wh = (
            self.rated_power_w * max(dt_s, Decimal(0)) / 3600 * JUMP_TOLERANCE
            + 2 * resolution_wh(reading.energy_import_wh)
        )
        if delta_wh > allowed_wh:
            self._latch(
                "counter_jump",
                f"import counter grew {delta_wh} Wh in {dt_s} s; rated power allows "
                f"{allowed_wh.quantize(Decimal(1))} Wh",
            )
            return False
        return not self._frozen(reading, delta_wh)

    def _frozen(self, reading: MeterReading, delta_wh: Decimal) -> bool:
        """True when the counter has stood still while the meter reported power worth
        more than three counter steps."""
        prev = self._prev
        power = reading.power_w or Decimal(0)
        if delta_wh != 0 or power < FROZEN_MIN_POWER_W or prev is None:
            self._frozen_expected_wh = Decimal(0)
            return False
        dt_s = Decimal(str((reading.timestamp - prev.timestamp).total_seconds()))
        prev_power = prev.power_w or Decimal(0)
        self._frozen_expected_wh += (power + prev_power) / 2 * dt_s / 3600
        if self._frozen_expected_wh > 3 * resolution_wh(reading.energy_import_wh):
            self._latch(
                "counter_frozen",
                f"import counter stuck at {reading.energy_import_wh} Wh while the meter "
                f"reports {power} W; about {self._frozen_expected_wh.quantize(Decimal(1))} Wh "
                "not counted",
            )
            return True
        return False

    def stats(self) -> dict[str, object]:
        return {
            "polls": self.total_polls,
            "failed_polls": self.total_failed_polls,
            "errors_by_kind": dict(self.errors_by_kind),
            "consecutive_failures": self.failed_polls,
        }
