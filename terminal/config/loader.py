"""The configuration loader: a TOML file -> typed, frozen `Config`.

Provides `load_config(path)`, `parse_config(data, source)` and `DEFAULT_CONFIG_PATH`.
Every value is checked against the option table (terminal/config/options.py: type,
range, choices, its check); unknown keys and sections are errors (typos surface), and
every problem goes into one `ConfigError` naming the key, the bad value and what is
allowed. Whatever the file holds (non-UTF-8 bytes, any TOML, any value), loading ends in
a `Config` or a `ConfigError`, never another exception: every text is bounded and free
of control characters, every number finite, every path and URL checked without raising.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import unicodedata
from pathlib import Path
from typing import Any, get_type_hints

from terminal.config.checks import MAX_FILE_BYTES
from terminal.config.options import Config
from terminal.config.schema import ConfigError, allowed

DEFAULT_CONFIG_PATH = Path("/etc/evterm/evterm.toml")
MAX_TEXT_CHARS = 4096  # the longest path Linux takes (PATH_MAX)
_CONTROL = ("Cc", "Cf", "Cs", "Zl", "Zp")  # control, format, surrogate, line breaks


def shown(value: Any, limit: int = 120) -> str:
    """`value` as a message shows it: its repr, cut after `limit` characters."""
    if isinstance(value, dict | list):
        return f"a {'table' if isinstance(value, dict) else 'list'}"
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"  # repr fails past 4300 digits
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _name(key: str) -> str:
    """A key or section name from the file as a message shows it."""
    return key if len(key) <= 60 and key.isprintable() else shown(key)


def _text_problem(value: str) -> str | None:
    if len(value) > MAX_TEXT_CHARS:
        return f"at most {MAX_TEXT_CHARS} characters"
    if any(unicodedata.category(c) in _CONTROL for c in value):
        return "text without control characters or line breaks"
    return None


def _check_value(key: str, value: Any, kind: type, meta: dict[str, Any]) -> tuple[Any, str | None]:
    bad = f"{key} = {shown(value)}: expected {allowed(meta, kind)}"
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:  # beyond every range
            value = math.inf
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return value, bad
    if kind is float and not math.isfinite(value):
        return value, bad
    if kind is str and (why := _text_problem(value)):
        return value, f"{key} = {shown(value)}: {why}"
    if meta["choices"] and value not in meta["choices"]:
        return value, bad
    if meta["min"] is not None and value < meta["min"]:
        return value, bad
    if meta["max"] is not None and value > meta["max"]:
        return value, bad
    if meta["check"] is not None and (why := meta["check"](value)):
        return value, f"{key} = {shown(value)}: {why}"
    return value, None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _build_section(name: str, cls: type, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"[{name}] must be a table, got {shown(raw)}")
        return None
    reported = len(problems)
    hints = _hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in sorted(set(raw) - set(known)):
        problems.append(
            f"{name}.{_name(key)}: unknown key (known keys in [{name}]: "
            f"{', '.join(sorted(known))})"
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
    hints = _hints(Config)
    for name in sorted(set(data) - set(sections)):
        problems.append(f"[{_name(name)}]: unknown section (known: {', '.join(sections)})")
    built = {
        name: _build_section(name, hints[name], data.get(name, {}), problems) for name in sections
    }
    if problems:
        raise ConfigError(source, problems)
    return Config(**built)


def parse_config_bytes(raw: bytes, source: str = "<config>") -> Config:
    """Validate the bytes of a TOML config file; ConfigError on any problem (the file's
    own problems name the file: not UTF-8, not TOML)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(source, [
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} "
            f"(save the file as UTF-8)"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError(source, ["not valid TOML: arrays or tables nested "
                                   "too deeply"]) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    return parse_config(data, source)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; raise ConfigError on any problem."""
    source = str(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]
                          ) from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(source, [f"cannot read the file: {exc}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(source, [f"larger than {MAX_FILE_BYTES} bytes; not a configuration file"])
    return parse_config_bytes(raw, source)
