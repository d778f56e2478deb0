"""How a config option is declared, and what it allows in words.

Provides `option(default, doc=..., unit=..., min_value=..., max_value=..., choices=...,
check=...)` (a dataclass field whose metadata carries the key's documentation, unit,
default and allowed range), `allowed(meta, kind)` (what a key allows, as the loader's
errors and the reference say it) and `ConfigError` (every problem of a file at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any


class ConfigError(ValueError):
    """Bad configuration; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration {source}:\n{lines}")


_REQUIRED = object()


def option(
    default: Any = _REQUIRED,
    *,
    doc: str,
    unit: str = "",
    min_value: float | None = None,
    max_value: float | None = None,
    choices: tuple[str, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A documented config key. `check` returns a description of what is allowed when
    the value is bad, or None when it is fine."""
    meta = {
        "doc": doc,
        "unit": unit,
        "min": min_value,
        "max": max_value,
        "choices": choices,
        "check": check,
    }
    if default is _REQUIRED:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def allowed(meta: dict[str, Any], kind: type) -> str:
    """What a key of type `kind` with metadata `meta` allows, e.g. "a number from 1 to 60 s"."""
    if meta["choices"]:
        return "one of " + ", ".join(meta["choices"])
    text = _TYPE_NAMES[kind]
    lo, hi = meta["min"], meta["max"]
    unit = f" {meta['unit']}" if meta["unit"] else ""
    if lo is not None and hi is not None:
        text += f" from {lo} to {hi}{unit}"
    elif lo is not None:
        text += f" of at least {lo}{unit}"
    return text
