"""Pricing engine: a session's samples -> exact price, incrementally or in one go.

`RunningPricer` takes samples one by one (`add_sample`) and answers at any moment
with the running cost (`cost_so_far`) or the full price as if the session stopped
now (`result`). `price_session` prices a whole `SessionInput` with the same code, so
batch and incremental results are identical.

Exactness: energy is Decimal (exact context, any inexact operation raises);
instants are integer microseconds; where a kWh threshold is crossed between two
samples the crossing instant, and the time and energy pieces around it, are
`fractions.Fraction` (exact rationals). Amounts are Fractions until the final
half-up rounding to the currency's minor unit. Nothing passes through float.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from fractions import Fraction
from operator import itemgetter
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from terminal.kernel.money import round_half_up, round_money
from terminal.pricing.calendar import US_PER_S, from_us, to_us
from terminal.pricing.compiled import Active, CompiledTariff
from terminal.pricing.errors import PricingInputError, SessionInputError, TariffNotApplicableError
from terminal.pricing.model import Dimension, Price, Tariff
from terminal.pricing.result import (
    UNITS,
    ActiveElements,
    Amount,
    ChargeLine,
    DimensionTotal,
    Period,
    PricingResult,
    RunningCost,
    display_quantity,
)
from terminal.pricing.session import Sample, SessionInput, check_sample, check_session, to_decimal

_EXACT = Context(prec=200, traps=[InvalidOperation, Inexact, Overflow, DivisionByZero])
_ENERGY, _TIME, _PARKING, _FLAT = range(4)
_DIMENSIONS = (Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME, Dimension.FLAT)
_US_PER_HOUR = 3600 * US_PER_S
_UNIT_DIVISORS = (1000, _US_PER_HOUR, _US_PER_HOUR, 1)  # Wh per kWh, µs per hour
_by_instant = itemgetter(0)

Instant = int | Fraction
Energy = Decimal | Fraction


def station_zone(name: str | ZoneInfo) -> ZoneInfo:
    """The station's time zone from its IANA name ("Europe/Berlin")."""
    if isinstance(name, ZoneInfo):
        return name
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise PricingInputError(
            "tz", name, "an IANA time zone name such as Europe/Berlin or UTC"
        ) from None


def _minus(a: Energy, b: Energy) -> Energy:
    if type(a) is Decimal and type(b) is Decimal:
        return _EXACT.subtract(a, b)
    return Fraction(a) - Fraction(b)


def _exact_instant(value: Fraction) -> Instant:
    return value.numerator if value.denominator == 1 else value


class _Meter:
    """Mutable pricing state after the samples seen so far (copied to look ahead)."""

    def __init__(self, tariff: CompiledTariff, t_us: int, smask: int, charging: bool) -> None:
        count = len(tariff.tariff.elements)
        self.c = tariff
        self.t_us = t_us
        self.e: Decimal = Decimal(0)
        self.smask = smask
        self.charging = charging
        self.eidx = tariff.energy_index(self.e)
        self.cut_pos = 0
        self.next_cut = tariff.cuts.cut(0)
        self.tmask = tariff.time_mask(t_us)
        self.energy_dec = [Decimal(0)] * count
        self.time_us = [0] * count
        self.park_us = [0] * count
        self.fractions: dict[tuple[int, int], Fraction] = {}
        self.flats: list[int] = []
        self.last_energy = -1
        self.last_time: tuple[int, int] | None = None
        self.charging_us = 0
        self.parking_us = 0
        self.bounds: list[tuple[Instant, Energy, Active, bool]] = []
        self.cur: tuple[Active, bool] | None = None
        first = tariff.active(self.tmask & tariff.energy_masks[self.eidx] & smask)
        if first[_FLAT] >= 0:
            self.flats.append(first[_FLAT])

    def copy(self) -> _Meter:
        twin = object.__new__(_Meter)
        twin.__dict__.update(self.__dict__)
        for name in ("energy_dec", "time_us", "park_us", "flats", "bounds"):
            setattr(twin, name, list(getattr(self, name)))
        twin.fractions = dict(self.fractions)
        return twin

    def add(self, t_us: int, e: Decimal, smask: int, charging: bool) -> None:
        """Account the interval from the previous sample to this one, then take its state."""
        dt = t_us - self.t_us
        if dt > 0:
            c = self.c
            de = _EXACT.subtract(e, self.e)
            thresholds = c.energy_th
            k = self.eidx
            if self.next_cut >= t_us and (k == len(thresholds) or thresholds[k] >= e):
                active = c.active(self.tmask & c.energy_masks[k] & self.smask)
                self._bill(dt, de, active, self.t_us, self.e)
            else:
                self._split(t_us, e, dt, de)
            if self.charging:
                self.charging_us += dt
            else:
                self.parking_us += dt
            if self.next_cut <= t_us:
                cut = self.next_cut
                while self.next_cut <= t_us:
                    cut = self.next_cut
                    self.cut_pos += 1
                    self.next_cut = c.cuts.cut(self.cut_pos)
                self.tmask = c.time_mask(cut)
            if self.eidx < len(thresholds) and thresholds[self.eidx] <= e:
                self.eidx = bisect_right(thresholds, e)
        self.t_us, self.e, self.smask, self.charging = t_us, e, smask, charging

    def _split(self, t_us: int, e: Decimal, dt: int, de: Decimal) -> None:
        """Cut the interval at restriction boundaries and kWh crossings inside it."""
        c = self.c
        t_a, e_a = self.t_us, self.e
        points: list[tuple[Instant, int]] = []
        while self.next_cut < t_us:
            points.append((self.next_cut, -1))
            self.cut_pos += 1
            self.next_cut = c.cuts.cut(self.cut_pos)
        thresholds = c.energy_th
        k = self.eidx
        while k < len(thresholds) and thresholds[k] < e:
            crossing = t_a + (Fraction(thresholds[k]) - Fraction(e_a)) * dt / Fraction(de)
            points.append((_exact_instant(crossing), k))
            k += 1
        points.sort(key=_by_instant)
        start, start_e = t_a, e_a
        active = c.active(self.tmask & c.energy_masks[self.eidx] & self.smask)
        for instant, kind in points:
            if kind < 0:
                # a restriction boundary that leaves the active elements as they are does
                # not cut the piece: one piece bills exactly what two would (so a long
                # gap between samples costs per change of tariff, not per boundary)
                tmask = c.time_mask(instant)  # type: ignore[arg-type]
                if c.active(tmask & c.energy_masks[self.eidx] & self.smask) == active:
                    self.tmask = tmask
                    continue
            if instant > start:
                at_e: Energy = (
                    thresholds[kind]
                    if kind >= 0
                    else Fraction(e_a) + Fraction(de) * (instant - t_a) / dt
                )
                self._bill(instant - start, _minus(at_e, start_e), active, start, start_e)
                start, start_e = instant, at_e
            if kind < 0:
                self.tmask = tmask
            else:
                self.eidx = kind + 1
            active = c.active(self.tmask & c.energy_masks[self.eidx] & self.smask)
        self._bill(t_us - start, _minus(e, start_e), active, start, start_e)

    def _bill(
        self, duration: Instant, energy: Energy, active: Active, start: Instant, start_e: Energy
    ) -> None:
        charging = self.charging
        if self.cur is None or self.cur[0] != active or self.cur[1] != charging:
            self.cur = (active, charging)
            self.bounds.append((start, start_e, active, charging))
            flat = active[_FLAT]
            if flat >= 0 and flat not in self.flats:
                self.flats.append(flat)
        element = active[_ENERGY]
        if element >= 0:
            if type(energy) is Decimal:
                self.energy_dec[element] = _EXACT.add(self.energy_dec[element], energy)
            else:
                key = (_ENERGY, element)
                self.fractions[key] = self.fractions.get(key, Fraction(0)) + energy
            if energy > 0:
                self.last_energy = element
        dimension = _TIME if charging else _PARKING
        element = active[dimension]
        if element >= 0:
            if type(duration) is int:
                totals = self.time_us if charging else self.park_us
                totals[element] += duration
            else:
                key = (dimension, element)
                self.fractions[key] = self.fractions.get(key, Fraction(0)) + duration
            self.last_time = (dimension, element)

    def quantities(self) -> dict[tuple[int, int], Fraction]:
        """Exact quantity per (dimension, element): Wh, µs, or 1 for a FLAT fee."""
        found: dict[tuple[int, int], Fraction] = {}
        for dimension, values in (
            (_ENERGY, self.energy_dec),
            (_TIME, self.time_us),
            (_PARKING, self.park_us),
        ):
            for element, value in enumerate(values):
                if value:
                    found[(dimension, element)] = Fraction(value)
        for key, value in self.fractions.items():
            found[key] = found.get(key, Fraction(0)) + value
        for element in self.flats:
            found[(_FLAT, element)] = Fraction(1)
        return found


def _step_up(
    quantities: dict[tuple[int, int], Fraction], dimension: int, element: int, step: int
) -> None:
    """Round the dimension's session total up to a multiple of `step`; the extra goes to element."""
    total = sum((q for (d, _), q in quantities.items() if d == dimension), Fraction(0))
    rounded = -(-total // step) * step
    if rounded > total:
        key = (dimension, element)
        quantities[key] = quantities.get(key, Fraction(0)) + rounded - total


def _amounts(
    tariff: CompiledTariff, quantities: dict[tuple[int, int], Fraction]
) -> dict[tuple[int, int], tuple[Fraction, Fraction]]:
    """Exact (excl. VAT, incl. VAT) per (dimension, element)."""
    found = {}
    for (dimension, element), quantity in quantities.items():
        rate = tariff.rates[element][dimension]
        assert rate is not None
        excl = quantity * rate[0]
        found[(dimension, element)] = (excl, excl if rate[1] == 1 else excl * rate[1])
    return found


def _limit(excl: Fraction, incl: Fraction, tariff: Tariff) -> tuple[Fraction, Fraction, str | None]:
    """Clamp both totals by min_price/max_price, each on its own side."""
    applied = None

    def clamp(value: Fraction, limit: Price | None, side: str, low: bool) -> Fraction:
        nonlocal applied
        bound = None if limit is None else getattr(limit, side)
        if bound is None:
            return value
        if (low and value < bound) or (not low and value > bound):
            applied = "min_price" if low else "max_price"
            return Fraction(bound)
        return value

    excl = clamp(
        clamp(excl, tariff.min_price, "excl_vat", True), tariff.max_price, "excl_vat", False
    )
    incl = clamp(
        clamp(incl, tariff.min_price, "incl_vat", True), tariff.max_price, "incl_vat", False
    )
    return excl, incl, applied


def _instant_time(instant: Instant) -> datetime:
    return from_us(instant if type(instant) is int else int(instant // 1))


class RunningPricer:
    """Prices a session sample by sample.

    The first sample starts the session and decides which tariff applies; its energy
    is the zero of "energy charged so far". Samples must not go back in time and
    energy must not decrease (SessionInputError naming samples[i]).
    """

    def __init__(
        self, tariff: Tariff, zone: str | ZoneInfo = "UTC", charging_threshold_w: Decimal | int = 0
    ) -> None:
        self.tariff = tariff
        self.zone = station_zone(zone)
        self.charging_threshold_w = to_decimal(charging_threshold_w)
        self._meter: _Meter | None = None
        self._compiled: CompiledTariff | None = None
        self._previous: Sample | None = None
        self._count = 0
        self._e0 = Decimal(0)
        self.start: datetime | None = None

    @property
    def sample_count(self) -> int:
        """Number of samples added."""
        return self._count

    def add_sample(self, sample: Sample) -> None:
        """Feed the next meter sample (SessionInputError if inconsistent)."""
        check_sample(sample, self._previous, self._count)
        t_us = to_us(sample.t)
        charging = sample.power_w > self.charging_threshold_w
        if self._meter is None:
            check_validity(self.tariff, sample.t)
            self.start = sample.t
            self._e0 = sample.energy_wh
            self._compiled = CompiledTariff(self.tariff, self.zone, t_us)
            smask = self._compiled.sample_mask(sample.power_w, sample.current_a)
            self._meter = _Meter(self._compiled, t_us, smask, charging)
        else:
            smask = self._compiled.sample_mask(sample.power_w, sample.current_a)  # type: ignore[union-attr]
            self._meter.add(t_us, _EXACT.subtract(sample.energy_wh, self._e0), smask, charging)
        self._previous = sample
        self._count += 1

    def cost_so_far(self) -> RunningCost:
        """Cost up to the last sample, without step_size rounding (never decreases)."""
        meter = self._require()
        amounts = _amounts(meter.c, meter.quantities())
        excl = sum((a[0] for a in amounts.values()), Fraction(0))
        incl = sum((a[1] for a in amounts.values()), Fraction(0))
        excl, incl, _ = _limit(excl, incl, self.tariff)
        currency = self.tariff.currency
        return RunningCost(
            currency=currency,
            excl_vat=round_money(excl, currency),
            incl_vat=round_money(incl, currency),
            energy_wh=meter.e,
            duration_s=_seconds(meter.t_us - meter.c.start_us),
        )

    def result(self, stop: datetime | None = None) -> PricingResult:
        """Full price as if the session stopped at `stop` (default: the last sample)."""
        meter = self._require()
        assert self._previous is not None
        stop = self._previous.t if stop is None else stop
        if stop < self._previous.t:
            raise SessionInputError(
                "stop",
                stop.isoformat(),
                f"a time at or after the last sample ({self._previous.t.isoformat()})",
            )
        stop_us = to_us(stop)
        if stop_us > meter.t_us:
            meter = meter.copy()
            meter.add(stop_us, meter.e, meter.smask, meter.charging)
        return _build_result(meter, self.tariff, stop)

    def price_if(self, sample: Sample) -> PricingResult:
        """Final price (step_size applied) as if `sample` came next and ended the
        session; the pricer itself is unchanged. Used to stop before a cap is passed."""
        meter = self._require()
        check_sample(sample, self._previous, self._count)
        assert self._compiled is not None
        meter = meter.copy()
        smask = self._compiled.sample_mask(sample.power_w, sample.current_a)
        meter.add(
            to_us(sample.t),
            _EXACT.subtract(sample.energy_wh, self._e0),
            smask,
            sample.power_w > self.charging_threshold_w,
        )
        return _build_result(meter, self.tariff, sample.t)

    def _require(self) -> _Meter:
        if self._meter is None:
            raise SessionInputError(
                "samples", [], "at least one sample, the first at the session start"
            )
        return self._meter


def check_validity(tariff: Tariff, start: datetime) -> None:
    """TariffNotApplicableError when the tariff's validity window excludes `start`."""
    if tariff.start_date_time is not None and start < tariff.start_date_time:
        raise TariffNotApplicableError(
            "start_date_time",
            tariff.start_date_time.isoformat(),
            f"a time at or before the session start {start.isoformat()} (tariff not yet valid)",
        )
    if tariff.end_date_time is not None and start >= tariff.end_date_time:
        raise TariffNotApplicableError(
            "end_date_time",
            tariff.end_date_time.isoformat(),
            f"a time after the session start {start.isoformat()} (the tariff has expired)",
        )


def price_session(
    tariff: Tariff, session: SessionInput, zone: str | ZoneInfo = "UTC"
) -> PricingResult:
    """Price a whole session at once; equal to feeding a RunningPricer and calling result(stop)."""
    check_session(session)
    pricer = RunningPricer(tariff, zone, session.charging_threshold_w)
    for sample in session.samples:
        pricer.add_sample(sample)
    return pricer.result(session.stop)


def _build_result(meter: _Meter, tariff: Tariff, stop: datetime) -> PricingResult:
    compiled = meter.c
    quantities = meter.quantities()
    if meter.last_energy >= 0:
        component = compiled.components[meter.last_energy][_ENERGY]
        assert component is not None
        _step_up(quantities, _ENERGY, meter.last_energy, component.step_size)
    if meter.last_time is not None:
        dimension, element = meter.last_time
        component = compiled.components[element][dimension]
        assert component is not None
        _step_up(quantities, dimension, element, component.step_size * US_PER_S)
    amounts = _amounts(compiled, quantities)
    currency = tariff.currency
    lines = []
    for (dimension, element), (excl, incl) in sorted(amounts.items()):
        component = compiled.components[element][dimension]
        assert component is not None
        lines.append(
            ChargeLine(
                dimension=_DIMENSIONS[dimension],
                element_index=element,
                unit_price_excl_vat=component.price,
                vat_percent=component.vat,
                billed_quantity=_quantity(dimension, quantities[(dimension, element)]),
                unit=UNITS[_DIMENSIONS[dimension]],
                excl_vat=round_money(excl, currency),
                incl_vat=round_money(incl, currency),
            )
        )
    dimensions = []
    for dimension in range(4):
        parts = [a for (d, _), a in amounts.items() if d == dimension]
        quantity = sum((q for (d, _), q in quantities.items() if d == dimension), Fraction(0))
        dimensions.append(
            DimensionTotal(
                dimension=_DIMENSIONS[dimension],
                billed_quantity=_quantity(dimension, quantity),
                unit=UNITS[_DIMENSIONS[dimension]],
                excl_vat=round_money(sum((p[0] for p in parts), Fraction(0)), currency),
                incl_vat=round_money(sum((p[1] for p in parts), Fraction(0)), currency),
            )
        )
    excl = sum((a[0] for a in amounts.values()), Fraction(0))
    incl = sum((a[1] for a in amounts.values()), Fraction(0))
    excl, incl, applied = _limit(excl, incl, tariff)
    start = from_us(compiled.start_us)
    return PricingResult(
        currency=currency,
        total=Amount(round_money(excl, currency), round_money(incl, currency)),
        dimensions=tuple(dimensions),
        lines=tuple(lines),
        periods=_periods(meter),
        total_energy_wh=meter.e,
        charging_time_s=_seconds(meter.charging_us),
        parking_time_s=_seconds(meter.parking_us),
        start=start,
        stop=stop,
        price_limit=applied,
    )


def _seconds(duration_us: Instant) -> Decimal:
    """Seconds, exact to the microsecond (a crossing instant is rounded half-up to it)."""
    return round_half_up(Fraction(duration_us) / US_PER_S, 6).normalize()


def _quantity(dimension: int, value: Fraction) -> Decimal:
    if dimension == _FLAT:
        return Decimal(int(value))
    return display_quantity(value / _UNIT_DIVISORS[dimension], 3 if dimension == _ENERGY else 2)


def _periods(meter: _Meter) -> tuple[Period, ...]:
    periods = []
    bounds = meter.bounds
    for i, (start, start_e, active, charging) in enumerate(bounds):
        end, end_e = (
            (bounds[i + 1][0], bounds[i + 1][1]) if i + 1 < len(bounds) else (meter.t_us, meter.e)
        )
        periods.append(
            Period(
                start=_instant_time(start),
                end=_instant_time(end),
                duration_s=_seconds(end - start),
                energy_wh=round_half_up(Fraction(_minus(end_e, start_e)), 3),
                charging=charging,
                active=ActiveElements(*(None if i < 0 else i for i in active)),
            )
        )
    return tuple(periods)
