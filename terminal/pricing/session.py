"""Session input for pricing: meter samples, start/stop and the charging threshold.

A sample is (timestamp, cumulative energy Wh since session start, power W, current A).
Numbers enter through their text (`Decimal(str(x))`). `parse_session` reads the
`evterm price` SESSION.json format and checks ordering; errors name the sample index
and field (``samples[3].energy_wh``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from terminal.kernel.money import MAX_ENERGY_WH
from terminal.pricing.errors import SessionInputError
from terminal.pricing.fields import FieldReader, join

_READ = FieldReader(SessionInputError)

# Bounds of a SESSION.json (docs/pricing.md, "evterm price"): a session file outside them
# is refused naming the field, so pricing stays exact and its time stays bounded.
MAX_SESSION_S = 31 * 24 * 3600
"""The longest session a SESSION.json may describe: 31 days from start to stop."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Every time of a SESSION.json lies in [EARLIEST, LATEST)."""
MAX_POWER_W = Decimal(1_000_000_000)
MAX_CURRENT_A = Decimal(1_000_000)
MAX_SAMPLE_DECIMALS = 6
"""Energy (at most MAX_ENERGY_WH since the start), power and current: at most this
many decimals."""
_ENGINE_DIGITS = 40
"""The engine's own guard (any caller): a sample value below 1e40 with at most 40
decimals, so its exact arithmetic never needs more than its 200 digits."""


def to_decimal(value: int | float | str | Decimal) -> Decimal:
    """Exact Decimal of a number via its text, so 0.1 becomes Decimal('0.1')."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class Sample:
    """One meter reading: aware timestamp, energy since session start, power, current."""

    t: datetime
    energy_wh: Decimal
    power_w: Decimal
    current_a: Decimal

    @classmethod
    def of(
        cls,
        t: datetime,
        energy_wh: int | float | str | Decimal,
        power_w: int | float | str | Decimal,
        current_a: int | float | str | Decimal = 0,
    ) -> Sample:
        """Build a sample converting numbers exactly through their text."""
        return cls(t, to_decimal(energy_wh), to_decimal(power_w), to_decimal(current_a))


@dataclass(frozen=True)
class SessionInput:
    """A whole session to price in one go."""

    start: datetime
    stop: datetime
    samples: tuple[Sample, ...]
    charging_threshold_w: Decimal = Decimal(0)


def load_session(path: str | Path) -> SessionInput:
    """Read and parse a SESSION.json file (OSError if it cannot be read)."""
    return parse_session(Path(path).read_bytes())


def parse_session(source: str | bytes | Mapping[str, Any]) -> SessionInput:
    """Parse the SESSION.json format and check that samples are consistent."""
    data = _READ.loads(source) if isinstance(source, str | bytes) else source
    obj = _READ.obj(
        data, "", required=("start", "stop", "samples"), optional=("charging_threshold_w",)
    )
    start = _time(obj["start"], "start")
    stop = _time(obj["stop"], "stop")
    if stop - start > timedelta(seconds=MAX_SESSION_S):
        raise SessionInputError(
            "stop", obj["stop"], f"at most {MAX_SESSION_S // 86400} days after start"
        )
    threshold = Decimal(0)
    if obj.get("charging_threshold_w") is not None:
        threshold = _value(obj["charging_threshold_w"], "charging_threshold_w", MAX_POWER_W)
    samples = []
    for i, item in enumerate(_READ.array(obj["samples"], "samples", min_items=1)):
        path = f"samples[{i}]"
        fields = _READ.obj(
            item, path, required=("t", "energy_wh", "power_w"), optional=("current_a",)
        )
        current = fields.get("current_a", 0)
        samples.append(
            Sample(
                t=_time(fields["t"], join(path, "t")),
                energy_wh=_value(fields["energy_wh"], join(path, "energy_wh"), MAX_ENERGY_WH),
                power_w=_value(fields["power_w"], join(path, "power_w"), MAX_POWER_W),
                current_a=_value(current, join(path, "current_a"), MAX_CURRENT_A),
            )
        )
    session = SessionInput(start, stop, tuple(samples), threshold)
    check_session(session)
    return session


def _time(value: Any, path: str) -> datetime:
    moment = _READ.timestamp(value, path, naive_is_utc=False)
    if not EARLIEST <= moment < LATEST:
        raise SessionInputError(
            path, value, f"a time from {EARLIEST.date()} to before {LATEST.date()} (UTC)"
        )
    return moment


def _value(value: Any, path: str, maximum: Decimal) -> Decimal:
    return _READ.number(value, path, minimum=0, maximum=maximum, places=MAX_SAMPLE_DECIMALS)


def check_session(session: SessionInput) -> None:
    """Check start/stop/sample ordering; SessionInputError naming the sample and field."""
    if session.start.tzinfo is None or session.stop.tzinfo is None:
        raise SessionInputError("start", session.start.isoformat(), "an aware date-time")
    if not session.samples:
        raise SessionInputError("samples", [], "at least one sample, the first at start")
    if session.stop < session.start:
        raise SessionInputError(
            "stop",
            session.stop.isoformat(),
            f"a time at or after start ({session.start.isoformat()})",
        )
    first = session.samples[0]
    if first.t != session.start:
        raise SessionInputError(
            "samples[0].t", first.t.isoformat(), f"the session start {session.start.isoformat()}"
        )
    previous = None
    for i, sample in enumerate(session.samples):
        check_sample(sample, previous, i)
        previous = sample
    last = session.samples[-1]
    if session.stop < last.t:
        raise SessionInputError(
            "stop",
            session.stop.isoformat(),
            f"a time at or after the last sample ({last.t.isoformat()})",
        )


def check_sample(sample: Sample, previous: Sample | None, index: int) -> None:
    """Check one sample against the one before; SessionInputError naming samples[index]."""
    path = f"samples[{index}]"
    if sample.t.tzinfo is None or sample.t.utcoffset() is None:
        raise SessionInputError(
            f"{path}.t", str(sample.t), "an aware date-time (with a UTC offset)"
        )
    for name in ("energy_wh", "power_w", "current_a"):
        value = getattr(sample, name)
        if (
            not isinstance(value, Decimal)
            or not value.is_finite()
            or value < 0
            or (value and value.adjusted() >= _ENGINE_DIGITS)
            or -value.as_tuple().exponent > _ENGINE_DIGITS  # type: ignore[operator]
        ):
            raise SessionInputError(
                f"{path}.{name}",
                str(value),
                f"a finite Decimal >= 0, below 1e{_ENGINE_DIGITS}, "
                f"with at most {_ENGINE_DIGITS} decimals",
            )
    if previous is None:
        return
    if sample.t < previous.t:
        raise SessionInputError(
            f"{path}.t",
            sample.t.isoformat(),
            f"a time at or after samples[{index - 1}].t ({previous.t.isoformat()})",
        )
    if sample.energy_wh < previous.energy_wh:
        raise SessionInputError(
            f"{path}.energy_wh",
            str(sample.energy_wh),
            f"a value >= samples[{index - 1}].energy_wh ({previous.energy_wh}) (cumulative)",
        )
    if sample.t == previous.t and sample.energy_wh != previous.energy_wh:
        raise SessionInputError(
            f"{path}.energy_wh",
            str(sample.energy_wh),
            f"{previous.energy_wh} like samples[{index - 1}], which has the same timestamp",
        )
