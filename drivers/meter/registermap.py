"""Meter register maps: one TOML data file per meter model (drivers/meter/models/).

A map names, per quantity, the function code, address, data type, word order, scale
(or a decimal-point register) and unit. Canonical quantities are `energy_import_wh`
(required), `energy_export_wh`, `power_w`, `voltage_v`, `current_a` and `serial`; any
other register is auxiliary (for example a decimal-point register) and must say what
the simulator serves (`sim_value`). See docs/meters.md for the format.

canonical value = raw * scale * 10^(decimal_point_sign * (dp + decimal_point_offset))
with dp the value of the decimal-point register; decimal_point_sign is -1 (default: dp
counts decimal places) or +1 (dp is an exponent, e.g. Acrel: raw * 10^(dp - 3)).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from pathlib import Path
from typing import Any

from drivers.meter.codec import DATA_TYPES, WORD_ORDERS, register_count
from drivers.meter.transport import BAUD_RATES, PARITIES

MODELS_DIR = Path(str(files("drivers.meter").joinpath("models")))  # package data
QUANTITIES = ("energy_import_wh", "energy_export_wh", "power_w", "voltage_v", "current_a")
IDENTITY = ("serial",)
MAX_PDU_REGISTERS = 125


class MeterMapError(ValueError):
    """A register map that is missing or invalid; the message names file and key."""


@dataclass(frozen=True)
class RegisterSpec:
    name: str
    function: int
    address: int
    dtype: str
    word_order: str
    count: int
    scale: Decimal
    unit: str
    decimal_point: str | None
    decimal_point_offset: int
    decimal_point_sign: int
    sim_value: int | None

    def exponent(self, dp: int) -> int:
        """Power of ten applied for a decimal-point register value `dp`."""
        return self.decimal_point_sign * (dp + self.decimal_point_offset)

    @property
    def end(self) -> int:
        return self.address + self.count


@dataclass(frozen=True)
class Block:
    """One read request: `count` registers from `address` with function `function`."""

    function: int
    address: int
    count: int
    registers: tuple[RegisterSpec, ...]


@dataclass(frozen=True)
class MeterModel:
    key: str
    name: str
    manufacturer: str
    kind: str
    default_unit_id: int
    default_baud: int
    default_parity: str
    default_stop_bits: int
    max_block_registers: int
    registers: Mapping[str, RegisterSpec]
    source: str
    # [signing]: a signing (Eichrecht) meter's driver and its data, checked by that
    # driver (drivers/meter/signing_drivers.py); empty for a plain register-map meter
    signing: Mapping[str, Any] = field(default_factory=dict)

    @property
    def signs(self) -> bool:
        return bool(self.signing)

    def snapshot_registers(self) -> list[RegisterSpec]:
        """The quantities read every snapshot plus the decimal-point registers they use."""
        wanted = [self.registers[q] for q in QUANTITIES if q in self.registers]
        aux = {r.decimal_point for r in wanted if r.decimal_point}
        return wanted + [self.registers[a] for a in sorted(aux)]

    def identity_registers(self) -> list[RegisterSpec]:
        return [self.registers[q] for q in IDENTITY if q in self.registers]


def plan_blocks(registers: Iterable[RegisterSpec], max_registers: int) -> list[Block]:
    """Coalesce registers into the fewest reads: neighbours with the same function code
    share one read as long as the read spans at most `max_registers`."""
    ordered = sorted(set(registers), key=lambda r: (r.function, r.address))
    blocks: list[Block] = []
    current: list[RegisterSpec] = []
    for reg in ordered:
        if current and (
            reg.function != current[0].function
            or max(reg.end, max(r.end for r in current)) - current[0].address > max_registers
        ):
            blocks.append(_block(current))
            current = []
        current.append(reg)
    if current:
        blocks.append(_block(current))
    return blocks


def _block(regs: list[RegisterSpec]) -> Block:
    start = regs[0].address
    end = max(r.end for r in regs)
    return Block(regs[0].function, start, end - start, tuple(regs))


def available_models() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.toml"))


MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")


def shipped_model_path(name: str) -> Path:
    """The map file of the shipped model `name`, found by name only (a name is lower-case
    letters, digits and _, never a path); MeterMapError listing the shipped models."""
    if MODEL_NAME.fullmatch(name) and name in available_models():
        return MODELS_DIR / f"{name}.toml"
    shown = repr(name) if len(name) <= 60 else repr(name[:60]) + f"... ({len(name)} chars)"
    raise MeterMapError(f"unknown meter model {shown}; shipped models: "
                        + ", ".join(available_models()))


def _resolve(name_or_path: str) -> Path:
    if "/" not in name_or_path and not name_or_path.endswith(".toml"):
        try:
            return shipped_model_path(name_or_path)
        except MeterMapError as exc:
            raise MeterMapError(f"{exc} (or give a path to a .toml map)") from None
    try:
        is_file = Path(name_or_path).is_file()
    except (OSError, ValueError) as exc:
        raise MeterMapError(f"meter map file {name_or_path!r}: {exc}") from None
    if not is_file:
        raise MeterMapError(f"meter map file {name_or_path!r} not found")
    return Path(name_or_path)


def load_model(name_or_path: str) -> MeterModel:
    """A shipped model by name, or a map file by path (`evterm meter read`, `evterm sim`;
    the configuration takes shipped names only, see `shipped_model_path`)."""
    path = _resolve(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MeterMapError(f"{path}: cannot read the map: {exc}") from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise MeterMapError(f"{path}: not valid TOML: {exc}") from None
    return parse_model(data, key=path.stem, source=str(path))


class TableReader:
    """Typed access to one TOML table that reports errors with the file and key."""

    def __init__(self, table: Any, where: str, source: str) -> None:
        if not isinstance(table, dict):
            raise MeterMapError(f"{source}: [{where}] must be a table")
        self.table, self.where, self.source = table, where, source
        self.used: set[str] = set()

    def fail(self, key: str, value: Any, allowed: str) -> MeterMapError:
        return MeterMapError(f"{self.source}: {self.where}.{key} = {value!r}: expected {allowed}")

    def get(self, key: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.table:
            if required:
                raise MeterMapError(f"{self.source}: {self.where}.{key} is required")
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # TOML writes 5 for 5.0
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, value, kind.__name__)
        return value

    def int_in(self, key: str, lo: int, hi: int, default: Any = None, **kw: Any) -> Any:
        value = self.get(key, int, default, **kw)
        if value is not None and not lo <= value <= hi:
            raise self.fail(key, value, f"an integer from {lo} to {hi}")
        return value

    def choice(self, key: str, choices: Iterable[Any], default: Any = None, **kw: Any) -> Any:
        choices = tuple(choices)
        value = self.get(key, type(choices[0]), default, **kw)
        if value is not None and value not in choices:
            raise self.fail(key, value, "one of " + ", ".join(map(str, choices)))
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise MeterMapError(
                f"{self.source}: {self.where}.{unknown[0]}: unknown key "
                f"(known: {', '.join(sorted(self.used))})"
            )


def _parse_register(name: str, table: Any, source: str) -> RegisterSpec:
    r = TableReader(table, f"registers.{name}", source)
    function = r.choice("function", (3, 4), required=True)
    address = r.int_in("address", 0, 0xFFFF, required=True)
    dtype = r.choice("type", DATA_TYPES, required=True)
    count = r.int_in("count", 1, 64, required=dtype == "ascii") if dtype == "ascii" else 0
    word_order = r.choice("word_order", WORD_ORDERS, "high_first")
    scale_text = r.get("scale", str, "1")
    try:
        scale = Decimal(scale_text)
    except InvalidOperation:
        raise r.fail("scale", scale_text, "a decimal number as a string, e.g. \"0.1\"") from None
    if not scale.is_finite() or scale == 0:
        raise r.fail("scale", scale_text, "a non-zero decimal number")
    unit = r.get("unit", str, "")
    decimal_point = r.get("decimal_point", str)
    dp_offset = r.int_in("decimal_point_offset", -9, 9, 0)
    dp_sign = r.choice("decimal_point_sign", (-1, 1), -1)
    sim_value = r.get("sim_value", int)
    r.finish()
    return RegisterSpec(
        name=name,
        function=function,
        address=address,
        dtype=dtype,
        word_order=word_order,
        count=register_count(dtype, count),
        scale=scale,
        unit=unit,
        decimal_point=decimal_point,
        decimal_point_offset=dp_offset,
        decimal_point_sign=dp_sign,
        sim_value=sim_value,
    )


def _parse_signing(table: Any, source: str) -> dict[str, Any]:
    """The [signing] table: `driver` names a signing driver; the rest is that driver's
    data, checked when the driver is opened."""
    if table is None:
        return {}
    from drivers.meter.signing_drivers import SIGNING_DRIVERS

    r = TableReader(table, "signing", source)
    r.choice("driver", tuple(SIGNING_DRIVERS), required=True)
    return dict(table)


def parse_model(data: dict[str, Any], key: str, source: str) -> MeterModel:
    m = TableReader(data.get("meter"), "meter", source)
    signing = _parse_signing(data.get("signing"), source)
    regs_table = data.get("registers", {} if signing else None)
    if not isinstance(regs_table, dict) or (not regs_table and not signing):
        raise MeterMapError(f"{source}: [registers] table with at least energy_import_wh required")
    extra = sorted(set(data) - {"meter", "registers", "signing"})
    if extra:
        raise MeterMapError(f"{source}: unknown table [{extra[0]}]; "
                            "allowed: [meter], [registers], [signing]")
    registers = {name: _parse_register(name, t, source) for name, t in regs_table.items()}
    if registers and "energy_import_wh" not in registers:
        raise MeterMapError(f"{source}: registers.energy_import_wh is required")
    for reg in registers.values():
        where = f"{source}: registers.{reg.name}"
        is_aux = reg.name not in QUANTITIES + IDENTITY
        if reg.name == "serial" and reg.dtype not in ("ascii", "u16", "u32", "u64"):
            raise MeterMapError(f"{where}.type = {reg.dtype!r}: serial must be ascii or unsigned")
        if reg.name in QUANTITIES and reg.dtype == "ascii":
            raise MeterMapError(f"{where}.type = 'ascii': a measured quantity must be numeric")
        if is_aux and reg.sim_value is None:
            raise MeterMapError(f"{where}.sim_value is required for an auxiliary register")
        if reg.decimal_point is not None:
            target = registers.get(reg.decimal_point)
            if target is None or target.name in QUANTITIES + IDENTITY:
                raise MeterMapError(
                    f"{where}.decimal_point = {reg.decimal_point!r}: "
                    "expected the name of an auxiliary register in this map"
                )
    max_block = m.int_in("max_block_registers", 1, MAX_PDU_REGISTERS, MAX_PDU_REGISTERS)
    model = MeterModel(
        key=key,
        name=m.get("name", str, required=True),
        manufacturer=m.get("manufacturer", str, ""),
        kind=m.choice("kind", ("AC", "DC"), required=True),
        default_unit_id=m.int_in("default_unit_id", 1, 247, 1),
        default_baud=m.choice("default_baud", BAUD_RATES, 9600),
        default_parity=m.choice("default_parity", PARITIES, "N"),
        default_stop_bits=m.choice("default_stop_bits", (1, 2), 1),
        max_block_registers=max_block,
        registers=registers,
        source=source,
        signing=signing,
    )
    m.finish()
    for reg in registers.values():
        if reg.count > max_block:
            raise MeterMapError(
                f"{source}: registers.{reg.name} spans {reg.count} registers, more than "
                f"max_block_registers = {max_block}"
            )
    return model
