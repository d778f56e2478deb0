"""The ZVT terminal simulator's state and behaviour: trace/receipt/turnover counters,
open reservations by receipt number, the booked batch until end-of-day, the last
transaction (for Repeat receipt), kept in a JSON file so a restart keeps them; and what
the next transactions do (approve, decline with a code, approve in part, be slow, drop
the connection at a step, card removed), from options or the control socket."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from terminal.kernel.money import to_minor_units

DROP_STEPS = ("ack", "intermediate", "status", "receipt")

CARDS: dict[str, tuple[int, str, str]] = {  # name -> (ZVT card type, card name, masked PAN)
    "visa": (0x0A, "Visa", "************0010"),
    "mastercard": (0x06, "MASTERCARD", "************4771"),
    "girocard": (0x05, "girocard", "*****************0001"),
    "maestro": (0x2E, "Maestro", "***************5123"),
}


class SimStateError(ValueError):
    """A state file or a behaviour request that cannot be used; the text says why."""


@dataclass(frozen=True)
class Behaviour:
    """What a transaction does. `decline`: a result code to refuse with; `partial_minor`:
    approve at most this much; `slow_s`: seconds of intermediate statuses before the
    answer; `drop_after`: close the connection after this step (DROP_STEPS);
    `card_removed`: the card is pulled while being read (result 64); `whole_only`: a
    booking of less than the reservation is refused (B7), as by a terminal that needs a
    partial reversal first."""

    decline: int | None = None
    partial_minor: int | None = None
    slow_s: float = 0.0
    drop_after: str | None = None
    card_removed: bool = False
    card: str = "visa"
    whole_only: bool = False  # Book total of less than the reservation refused (B7)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_code(value: object) -> int:
    """A result code as hex text ("05", "0x6C") or a number 1..255."""
    try:
        code = int(value, 16) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise SimStateError(f"decline: {value!r} is not a result code (hex, e.g. 05 or 6C)"
                            ) from None
    if not 0 < code <= 0xFF:
        raise SimStateError(f"decline: {value!r} is not a result code from 01 to FF")
    return code


def behaviour_from(request: dict[str, Any], base: Behaviour, currency: str) -> Behaviour:
    """`base` with the keys of a control request (decline, partial, slow_s, drop_after,
    card_removed, card, whole_only) applied; SimStateError naming a bad one."""
    known = {f.name for f in fields(Behaviour)} | {"partial"}
    unknown = sorted(set(request) - known - {"cmd"})
    if unknown:
        raise SimStateError(f"unknown behaviour keys {unknown}; allowed: {sorted(known)}")
    changes: dict[str, Any] = {}
    if "decline" in request:
        changes["decline"] = None if request["decline"] is None else parse_code(
            request["decline"])
    if "partial" in request:
        changes["partial_minor"] = None if request["partial"] is None else parse_amount(
            request["partial"], currency)
    if "slow_s" in request:
        slow = request["slow_s"]
        if not isinstance(slow, (int, float)) or isinstance(slow, bool) or not 0 <= slow <= 600:
            raise SimStateError(f"slow_s: {slow!r} is not seconds from 0 to 600")
        changes["slow_s"] = float(slow)
    if "drop_after" in request:
        step = request["drop_after"]
        if step is not None and step not in DROP_STEPS:
            raise SimStateError(f"drop_after: {step!r} is not one of {', '.join(DROP_STEPS)}")
        changes["drop_after"] = step
    if "card_removed" in request:
        changes["card_removed"] = bool(request["card_removed"])
    if "whole_only" in request:
        changes["whole_only"] = bool(request["whole_only"])
    if "card" in request:
        if request["card"] not in CARDS:
            raise SimStateError(f"card: {request['card']!r} is not one of {', '.join(CARDS)}")
        changes["card"] = request["card"]
    return replace(base, **changes)


def parse_amount(value: object, currency: str) -> int:
    """An amount in major units ("12.34") as minor units."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise SimStateError(f"partial: {value!r} is not an amount such as 12.34") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise SimStateError(f"partial: {value!r} is not an amount above 0 with at most 2 "
                            "decimals")
    return to_minor_units(amount, currency)


@dataclass
class SimState:
    """Everything a restart keeps."""

    next_trace: int = 1
    next_receipt: int = 1
    next_turnover: int = 1
    config_byte: int = 0
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch: dict[str, dict[str, Any]] = field(default_factory=dict)
    reversed: list[int] = field(default_factory=list)
    last: dict[str, Any] | None = None
    released_minor: int = 0

    def take_trace(self) -> int:
        value, self.next_trace = self.next_trace, self.next_trace % 999999 + 1
        return value

    def take_receipt(self) -> int:
        value, self.next_receipt = self.next_receipt, self.next_receipt % 9999 + 1
        return value

    def take_turnover(self) -> int:
        value, self.next_turnover = self.next_turnover, self.next_turnover % 999999 + 1
        return value

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class StateFile:
    """The state in memory, written to `path` (atomically) after every change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.state = self._load()

    def _load(self) -> SimState:
        if self.path is None or not self.path.exists():
            return SimState()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return SimState(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise SimStateError(f"state file {self.path}: cannot be read ({exc})") from None

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.state.to_json(), indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
