"""EV and charging point models: what really flows at a simulated DC charger.

`PowerCurve`: the power a car draws over its own charging time. Piecewise linear: ramp
from 0 to max power, hold it (constant phase), taper linearly to the taper end power,
then the battery is full and the car draws nothing. Energy is the exact integral of
that curve, so tests can predict the meter's counter.

`ChargingPoint`: the charger's power stage with a car at its plug, driven by simulated
time passed in by the caller (`t_s`, seconds since the simulator started; it never reads
a clock itself). The car draws from its curve only while it is plugged, the contactor is
closed and the car asks for energy; the curve's time is the car's own charging time, so
a pause continues the curve where it stopped. Energy is settled piecewise at every
change (command, plug, fault start or end), so every counter is exact.

`Fault`: a fault window `KIND[@START_S][+DURATION_S]` in simulated seconds, shared by the
meter faults (hw_mocks.meter_sim) and the charger faults here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CHARGER_FAULT_KINDS = ("contactor_welded", "contactor_stuck_open", "charger_error")
CHARGER_ERROR_DEFAULT_CODE = 1  # "power stage fault", see drivers.charger.modbus_coil


class FaultSpecError(ValueError):
    pass


class PointError(ValueError):
    """A command the charging point cannot carry out (e.g. unplug with no car)."""


@dataclass(frozen=True)
class PowerCurve:
    max_power_w: float = 150_000.0
    ramp_s: float = 20.0
    constant_s: float = 600.0
    taper_s: float = 900.0
    taper_end_power_w: float = 10_000.0
    voltage_v: float = 800.0

    def _segments(self) -> list[tuple[float, float, float, float]]:
        """(start_s, end_s, power at start, power at end) for each phase."""
        t1 = self.ramp_s
        t2 = t1 + self.constant_s
        t3 = t2 + self.taper_s
        return [
            (0.0, t1, 0.0, self.max_power_w),
            (t1, t2, self.max_power_w, self.max_power_w),
            (t2, t3, self.max_power_w, self.taper_end_power_w),
        ]

    @property
    def full_after_s(self) -> float:
        return self.ramp_s + self.constant_s + self.taper_s

    def power_w(self, t_s: float) -> float:
        for start, end, p0, p1 in self._segments():
            if start <= t_s < end:
                return p0 + (p1 - p0) * (t_s - start) / (end - start)
        return 0.0

    def energy_wh(self, t_s: float) -> float:
        """Energy drawn from 0 to t_s (exact integral of the piecewise linear curve)."""
        total_ws = 0.0
        for start, end, p0, p1 in self._segments():
            if t_s <= start:
                break
            stop = min(t_s, end)
            p_stop = p0 + (p1 - p0) * (stop - start) / (end - start) if end > start else p0
            total_ws += (p0 + p_stop) / 2 * (stop - start)
        return total_ws / 3600.0

    def current_a(self, t_s: float) -> float:
        return self.power_w(t_s) / self.voltage_v if self.voltage_v else 0.0


@dataclass(frozen=True)
class Fault:
    """A fault from `start_s` for `duration_s` simulated seconds (inf: until cleared).
    `code` is the charger fault code of a charger_error (0 for every other kind)."""

    kind: str
    start_s: float = 0.0
    duration_s: float = math.inf
    code: int = 0

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind,
            "start_s": self.start_s,
            "end_s": self.end_s if math.isfinite(self.end_s) else None,
        }
        if self.code:
            out["code"] = self.code
        return out

    @classmethod
    def parse(cls, text: str, allowed: tuple[str, ...]) -> Fault:
        """`KIND[@START_S][+DURATION_S]`, e.g. `no_reply@5+10`; KIND one of `allowed`."""
        kind, duration = text, math.inf
        start = 0.0
        try:
            if "+" in kind:
                kind, dur_text = kind.split("+", 1)
                duration = float(dur_text)
            if "@" in kind:
                kind, start_text = kind.split("@", 1)
                start = float(start_text)
        except ValueError:
            raise FaultSpecError(
                f"bad fault {text!r}: expected KIND[@START_S][+DURATION_S]"
            ) from None
        if kind not in allowed:
            raise FaultSpecError(f"unknown fault {kind!r}; allowed: {', '.join(allowed)}")
        if not (start >= 0 and duration > 0) or math.isnan(duration):
            raise FaultSpecError(f"bad fault {text!r}: start must be >= 0 and duration > 0")
        code = CHARGER_ERROR_DEFAULT_CODE if kind == "charger_error" else 0
        return cls(kind, start, duration, code)


@dataclass
class PlugRecord:
    """One car at the plug: when (simulated seconds) and the energy it really received."""

    plugged_at_s: float
    curve: PowerCurve
    unplugged_at_s: float | None = None
    delivered_wh: float = 0.0
    ev_time_s: float = 0.0  # the car's own charging time on its curve

    @property
    def full(self) -> bool:
        return self.ev_time_s >= self.curve.full_after_s

    def to_json(self) -> dict[str, object]:
        return {
            "plugged_at": self.plugged_at_s,
            "unplugged_at": self.unplugged_at_s,
            "delivered_wh": self.delivered_wh,
            "ev_time_s": self.ev_time_s,
            "full": self.full,
        }


@dataclass
class ChargingPoint:
    """Power stage + car at simulated time. Every public method takes the current
    simulated time `t_s` first and settles the energy up to it; time never goes back
    (an earlier `t_s` is taken as the last one seen)."""

    t_s: float = 0.0
    output_commanded: bool = False
    contactor_closed: bool = False
    suspended: bool = False
    delivered_total_wh: float = 0.0
    plugs: list[PlugRecord] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _marks: dict[float, float | None] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def charging(cls, curve: PowerCurve, t_s: float = 0.0) -> ChargingPoint:
        """A car plugged in with the output on from `t_s` (the plain meter simulator)."""
        point = cls(t_s=t_s)
        point.plug(t_s, curve)
        point.set_output(t_s, True)
        return point

    # --- state ---------------------------------------------------------------------------

    @property
    def plug_record(self) -> PlugRecord | None:
        """The car at the plug now, None when there is none."""
        if self.plugs and self.plugs[-1].unplugged_at_s is None:
            return self.plugs[-1]
        return None

    def _fault(self, kind: str) -> Fault | None:
        return next((f for f in self.faults if f.kind == kind and f.active(self.t_s)), None)

    def _asking(self) -> bool:
        rec = self.plug_record
        return rec is not None and not self.suspended and not rec.full

    def _flowing(self) -> bool:
        return (
            self.contactor_closed
            and self._asking()
            and self._fault("charger_error") is None
        )

    def _reconcile(self) -> None:
        """Contactor position after a command or a fault change."""
        if self._fault("contactor_stuck_open") or self._fault("charger_error"):
            self.contactor_closed = False
        elif self._fault("contactor_welded"):
            self.contactor_closed = self.contactor_closed or self.output_commanded
        else:
            self.contactor_closed = self.output_commanded

    def _boundaries(self) -> set[float]:
        times = {f.start_s for f in self.faults} | {f.end_s for f in self.faults}
        times |= {t for t, total in self._marks.items() if total is None}
        return {t for t in times if math.isfinite(t)}

    def _integrate(self, until_s: float) -> None:
        """Settle energy over [self.t_s, until_s), the state being constant there."""
        rec = self.plug_record
        if rec is None or not self._flowing():
            return
        dt = until_s - self.t_s
        energy = rec.curve.energy_wh(rec.ev_time_s + dt) - rec.curve.energy_wh(rec.ev_time_s)
        rec.ev_time_s += dt
        rec.delivered_wh += energy
        self.delivered_total_wh += energy

    def advance(self, t_s: float) -> None:
        """Settle everything up to `t_s`, stopping at each fault start/end and mark."""
        while self.t_s < t_s:
            later = [b for b in self._boundaries() if self.t_s < b <= t_s]
            step_to = min(later, default=t_s)
            self._integrate(step_to)
            self.t_s = step_to
            for mark, total in self._marks.items():
                if total is None and mark <= self.t_s:
                    self._marks[mark] = self.delivered_total_wh
            self._reconcile()

    # --- commands ------------------------------------------------------------------------

    def plug(self, t_s: float, curve: PowerCurve) -> PlugRecord:
        self.advance(t_s)
        if self.plug_record is not None:
            raise PointError("a car is already plugged in; unplug it first")
        rec = PlugRecord(plugged_at_s=self.t_s, curve=curve)
        self.plugs.append(rec)
        self.suspended = False
        return rec

    def unplug(self, t_s: float) -> PlugRecord:
        self.advance(t_s)
        rec = self.plug_record
        if rec is None:
            raise PointError("no car is plugged in")
        rec.unplugged_at_s = self.t_s
        self.suspended = False
        return rec

    def suspend(self, t_s: float) -> None:
        """The car stops asking for energy (state B), e.g. its own timer or a user pause."""
        self.advance(t_s)
        if self.plug_record is None:
            raise PointError("no car is plugged in")
        self.suspended = True

    def resume(self, t_s: float) -> None:
        self.advance(t_s)
        if self.plug_record is None:
            raise PointError("no car is plugged in")
        self.suspended = False

    def set_output(self, t_s: float, on: bool) -> None:
        """The terminal's command to the power stage (the Modbus coil)."""
        self.advance(t_s)
        self.output_commanded = on
        self._reconcile()

    def add_fault(self, t_s: float, fault: Fault) -> Fault:
        """Add a charger fault (returned); one starting before `t_s` starts at `t_s`."""
        self.advance(t_s)
        if fault.kind not in CHARGER_FAULT_KINDS:
            raise PointError(
                f"unknown charger fault {fault.kind!r}; allowed: {', '.join(CHARGER_FAULT_KINDS)}"
            )
        if fault.start_s < self.t_s:
            fault = Fault(fault.kind, self.t_s, fault.duration_s, fault.code)
        self.faults.append(fault)
        self._reconcile()
        return fault

    def clear_faults(self, t_s: float) -> None:
        self.advance(t_s)
        self.faults.clear()
        self._reconcile()

    def mark(self, t_s: float) -> None:
        """Remember the total delivered at `t_s` (a meter fault's start): exact when
        `t_s` is now or later, the current total when it is already past."""
        if t_s in self._marks:
            return
        self._marks[t_s] = self.delivered_total_wh if t_s <= self.t_s else None

    def total_at(self, t_s: float) -> float:
        """Total delivered at a marked time already reached."""
        total = self._marks.get(t_s)
        if total is None:
            raise KeyError(f"no settled mark at t_s={t_s}")
        return total

    # --- readings (each settles up to t_s first) -----------------------------------------

    def active_faults(self, t_s: float) -> list[Fault]:
        self.advance(t_s)
        return [f for f in self.faults if f.active(self.t_s)]

    def ev_state(self, t_s: float) -> str:
        """IEC 61851 state letter: A no car, B car not asking, C asking, F charger error."""
        self.advance(t_s)
        if self._fault("charger_error"):
            return "F"
        if self.plug_record is None:
            return "A"
        return "C" if self._asking() else "B"

    def fault_code(self, t_s: float) -> int:
        """The charger's own fault code (0 none): a charger_error's code. Contactor
        faults are silent: the terminal must see them from the feedback."""
        self.advance(t_s)
        error = self._fault("charger_error")
        return error.code if error else 0

    def output_on(self, t_s: float) -> bool:
        """The contactor feedback."""
        self.advance(t_s)
        return self.contactor_closed

    def power_w(self, t_s: float) -> float:
        self.advance(t_s)
        rec = self.plug_record
        if rec is None or not self._flowing():
            return 0.0
        return rec.curve.power_w(rec.ev_time_s)

    def voltage_v(self, t_s: float) -> float:
        """The car's battery voltage at the output while the contactor is closed."""
        self.advance(t_s)
        rec = self.plug_record
        if rec is None or not self.contactor_closed or self._fault("charger_error"):
            return 0.0
        return rec.curve.voltage_v

    def current_a(self, t_s: float) -> float:
        voltage = self.voltage_v(t_s)
        return self.power_w(t_s) / voltage if voltage else 0.0

    def delivered_wh(self, t_s: float) -> float:
        """Energy into the car at the plug now, or the last car when none is plugged."""
        self.advance(t_s)
        return self.plugs[-1].delivered_wh if self.plugs else 0.0
