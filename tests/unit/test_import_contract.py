"""The layers of docs/architecture.md, checked on the source: who may import whom.

Rules (every import counts: module level, inside functions, under TYPE_CHECKING):
1. terminal/kernel/ (clock, logging, money, card data, formatting, locales, driver
   texts) imports nothing of terminal/ outside the kernel.
2. drivers/ import nothing of terminal/ but the kernel, and never ui/ or hw_mocks/.
3. ui/ imports nothing of terminal/ but the kernel (it reaches the daemon through its
   local-API client only), and never drivers/ or hw_mocks/.
4. The core (terminal/) never imports ui/ or hw_mocks/; only the `evterm` entry point
   (terminal/cli.py) may, to register their sub-commands.
5. Only the composition root (terminal/station.py) imports the daemon
   (terminal/daemon.py): taps, commands, the service menu and the local-API routes see
   it through the session port (terminal/ports.py).
6. No import circle between modules of terminal/.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("terminal", "drivers", "ui", "hw_mocks")
ENTRY_POINT = "terminal.cli"
COMPOSITION_ROOT = "terminal.station"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports (the longest known module of each name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    result = set()
    for full in names:
        parts = full.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        if parts:
            result.add(".".join(parts))
    result.discard(name)
    return result


def in_room(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def graph(root: Path) -> dict[str, set[str]]:
    found = modules(root)
    known = set(found)
    return {name: imported(path, name, known) for name, path in found.items()}


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    problems = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            core_target = in_room(target, "terminal") and not in_room(target, "terminal.kernel")
            if in_room(source, "terminal.kernel") and in_room(target, "terminal") \
                    and not in_room(target, "terminal.kernel"):
                problems.append(f"{source} -> {target}: the kernel imports only the kernel")
            elif in_room(source, "drivers") and (core_target or in_room(target, "ui")
                                                 or in_room(target, "hw_mocks")):
                problems.append(f"{source} -> {target}: drivers import only the kernel of "
                                "terminal/")
            elif in_room(source, "ui") and (core_target or in_room(target, "drivers")
                                            or in_room(target, "hw_mocks")):
                problems.append(f"{source} -> {target}: ui/ imports only the kernel of "
                                "terminal/ (the daemon through the local API)")
            elif in_room(source, "terminal") and source != ENTRY_POINT \
                    and (in_room(target, "ui") or in_room(target, "hw_mocks")):
                problems.append(f"{source} -> {target}: the core never imports ui/ or "
                                "hw_mocks/ (only terminal.cli registers their commands)")
            elif target == "terminal.daemon" and source != COMPOSITION_ROOT:
                problems.append(f"{source} -> {target}: only the composition root builds the "
                                "daemon; others use the session port (terminal.ports)")
    return problems


def import_circles(edges: dict[str, set[str]], room: str = "terminal") -> list[list[str]]:
    """The strongly connected groups of more than one module inside `room` (Tarjan)."""
    nodes = sorted(n for n in edges if in_room(n, room))
    inside = {n: sorted(t for t in edges[n] if in_room(t, room)) for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in inside[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return circles


def test_the_layers_hold() -> None:
    assert layer_violations(graph(ROOT)) == []


def test_no_import_circle_inside_terminal() -> None:
    assert import_circles(graph(ROOT)) == []


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.toml", "*.kv"))
    return tmp_path


def _plant(root: Path, relative: str, line: str) -> None:
    path = root / relative
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


@pytest.mark.parametrize(("relative", "line", "expected"), [
    ("drivers/meter/reading.py", "from terminal.config import Config",
     "drivers.meter.reading -> terminal.config: drivers import only the kernel"),
    ("ui/view.py", "from terminal.localapi import request",
     "ui.view -> terminal.localapi: ui/ imports only the kernel"),
    ("terminal/kernel/money.py", "from terminal.pricing import Tariff",
     "terminal.kernel.money -> terminal.pricing: the kernel imports only the kernel"),
    ("terminal/billing.py", "    from hw_mocks.ports import free_port",
     "terminal.billing -> hw_mocks.ports: the core never imports ui/ or hw_mocks/"),
    ("terminal/identification/taps.py", "from terminal.daemon import Daemon",
     "terminal.identification.taps -> terminal.daemon: only the composition root builds "
     "the daemon"),
])
def test_a_planted_violation_is_caught(planted: Path, relative: str, line: str,
                                       expected: str) -> None:
    assert layer_violations(graph(planted)) == []
    if line.startswith(" "):
        line = "def _planted() -> None:\n" + line
    _plant(planted, relative, line)
    problems = layer_violations(graph(planted))
    assert [p for p in problems if p.startswith(expected)], problems


def test_a_planted_circle_is_caught(planted: Path) -> None:
    _plant(planted, "terminal/kernel/money.py", "")
    _plant(planted, "terminal/billing.py", "")
    assert import_circles(graph(planted)) == []
    _plant(planted, "terminal/pricing/model.py",
           "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from terminal import billing")
    assert ["terminal.billing", "terminal.pricing.model"] in [
        [m for m in circle if m in ("terminal.billing", "terminal.pricing.model")]
        for circle in import_circles(graph(planted))]
