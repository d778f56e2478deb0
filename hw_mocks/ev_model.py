"""EV power-curve model: the power a car draws over a DC charging session.

Piecewise linear: ramp from 0 to max power, hold it (constant phase), taper linearly
to the taper end power, then the battery is full and the car draws nothing. Energy is
the exact integral of that curve, so tests can predict the meter's counter.
"""

from __future__ import annotations

from dataclasses import dataclass


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
