"""constraints/: every package of the board's venv and of CI pinned, and the pins are the
versions the tests run with, inside setup.cfg's ranges; ./dev and install.sh use them."""

from __future__ import annotations

import configparser
import importlib.metadata as md
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
BUILD_TOOLS = {"setuptools", "wheel", "pip"}


def pins(name: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (REPO / "constraints" / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
            assert match, f"constraints/{name}: not NAME==VERSION: {line!r}"
            found[canonicalize_name(match[1])] = match[2]
    return found


def requirements(extras: tuple[str, ...]) -> list[Requirement]:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg", encoding="utf-8")
    lines = setup["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += setup["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def closure(requirements: list[Requirement]) -> set[str]:
    """The installed distributions these requirements pull in, transitively."""
    seen: set[str] = set()
    done: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[Requirement, frozenset[str]]] = [(r, frozenset({""})) for r in requirements]
    while todo:
        requirement, parent_extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if requirement.marker and not any(requirement.marker.evaluate({"extra": extra})
                                          for extra in parent_extras):
            continue
        extras = frozenset({"", *requirement.extras})  # pyocmf[crypto] pulls its crypto deps
        if (name, extras) in done:
            continue
        done.add((name, extras))
        seen.add(name)
        todo += [(Requirement(r), extras) for r in md.requires(name) or []]
    return seen


def test_board_constraints_pin_the_whole_runtime_and_ui_closure_at_the_tested_versions():
    board = pins("board.txt")
    needed = closure(requirements(("ui",)))
    assert needed - board.keys() == set(), "not pinned in constraints/board.txt"
    for name in needed:
        assert board[name] == md.version(name), f"{name}: pinned {board[name]}, tested with " \
                                                f"{md.version(name)}"
    for requirement in requirements(("ui",)):
        pinned = board[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pinned, prereleases=True), (requirement, pinned)
    assert BUILD_TOOLS - {"pip"} <= board.keys()  # the offline build of evterm's wheel


def test_dev_constraints_pin_the_test_tools_and_dev_and_install_use_the_files():
    board, dev = pins("board.txt"), pins("dev.txt")
    assert not board.keys() & dev.keys()
    needed = closure(requirements(("test",))) - closure(requirements(()))
    assert needed - dev.keys() - board.keys() == set()
    for name in needed:
        assert {**board, **dev}[name] == md.version(name), name
    script = (REPO / "dev").read_text(encoding="utf-8")
    assert "CONSTRAINTS=(constraints/board.txt constraints/dev.txt)" in script
    assert '"${CONSTRAINTS[@]/#/--constraint=}" -e' in script
    assert 'cat setup.cfg pyproject.toml "${CONSTRAINTS[@]}" | sha256sum' in script
    assert "--upgrade pip" not in script
    installer = (REPO / "systemd" / "install.sh").read_text(encoding="utf-8")
    assert "constraints/board.txt" in installer and "--upgrade pip" not in installer


def test_reports_extra_is_pinned_for_ci_and_kept_off_the_board():
    """pyarrow and duckdb (extra "reports") run where reports are made at fleet scale: CI
    installs them (./dev), the board's wheelhouse (board.txt) stays without them."""
    board, dev = pins("board.txt"), pins("dev.txt")
    needed = closure(requirements(("reports",))) - closure(requirements(()))
    assert {"pyarrow", "duckdb"} <= needed
    assert needed - dev.keys() == set(), "not pinned in constraints/dev.txt"
    assert not needed & board.keys(), "in the board's constraints"
    for name in needed:
        assert dev[name] == md.version(name), name
    for requirement in requirements(("reports",))[len(requirements(())):]:
        assert requirement.specifier.contains(dev[canonicalize_name(requirement.name)])
    assert "-e '.[ui,test,reports]'" in (REPO / "dev").read_text(encoding="utf-8")
