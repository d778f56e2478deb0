"""The configuration loader: a TOML file -> typed, frozen `Config`.

Provides `load_config(path)`, `parse_config(data, source)` and `DEFAULT_CONFIG_PATH`.
Every value is checked against the option table (terminal/config/options.py: type,
range, choices, its check); unknown keys and sections are errors (typos surface), and
every problem goes into one `ConfigError` naming the key, the bad value and what is
allowed.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, get_type_hints

from terminal.config.options import Config
from terminal.config.schema import ConfigError, allowed

DEFAULT_CONFIG_PATH = Path("/etc/evterm/evterm.toml")


def _check_value(key: str, value: Any, kind: type, meta: dict[str, Any]) -> tuple[Any, str | None]:
    bad = f"{key} = {value!r}: expected {allowed(meta, kind)}"
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return value, bad
    if meta["choices"] and value not in meta["choices"]:
        return value, bad
    if meta["min"] is not None and value < meta["min"]:
        return value, bad
    if meta["max"] is not None and value > meta["max"]:
        return value, bad
    if meta["check"] is not None and (why := meta["check"](value)):
        return value, f"{key} = {value!r}: {why}"
    return value, None


def _build_section(name: str, cls: type, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"[{name}] must be a table, got {raw!r}")
        raw = {}
    reported = len(problems)
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in sorted(set(raw) - set(known)):
        problems.append(
            f"{name}.{key}: unknown key (known keys in [{name}]: {', '.join(sorted(known))})"
        )
    values: dict[str, Any] = {}
    for key, fld in known.items():
        full = f"{name}.{key}"
        if key not in raw:
            if fld.default is dataclasses.MISSING:
                problems.append(f"{full}: required key missing ({fld.metadata['doc']})")
            continue
        value, problem = _check_value(full, raw[key], hints[key], dict(fld.metadata))
        if problem:
            problems.append(problem)
        else:
            values[key] = value
    try:
        section = cls(**values)
    except TypeError:
        return None  # a required key is missing; already reported
    rules = getattr(section, "problems", None)  # rules between keys (e.g. [retention])
    if rules is not None and len(problems) == reported:
        problems.extend(f"{name}.{problem}" for problem in rules())
    return section


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    problems: list[str] = []
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    hints = get_type_hints(Config)
    for name in sorted(set(data) - set(sections)):
        problems.append(f"[{name}]: unknown section (known: {', '.join(sections)})")
    built = {
        name: _build_section(name, hints[name], data.get(name, {}), problems) for name in sections
    }
    if problems:
        raise ConfigError(source, problems)
    return Config(**built)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; raise ConfigError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse_config(data, str(path))
