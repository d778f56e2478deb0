"""tests/ui/layout_check.py on made-up layout dumps: each kind of fault is found, a clean
layout passes, and the capital height of the receipt summary's font."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.layout_check import cap_height_mm, layout_problems

WINDOW = [800, 480]


def entry(i: int, parent: int | None, pos: list[float], size: list[float],
          **extra: Any) -> dict[str, Any]:
    return {"i": i, "parent": parent, "id": extra.pop("id", None),
            "kind": extra.pop("kind", "Widget"), "layout": extra.pop("layout", "box"),
            "scrolled": extra.pop("scrolled", False), "pos": pos, "size": size, **extra}


def dump_of(*children: dict[str, Any]) -> dict[str, Any]:
    root = entry(0, None, [0, 0], WINDOW, layout="free", kind="EvtermRoot")
    return {"screen": "idle", "window": WINDOW, "layout": [root, *children]}


def label(i: int, pos: list[float], size: list[float], needed: list[float],
          lines: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return entry(i, 0, pos, size, kind="Label", text=" ".join(lines or ["text"]),
                 font_size=20.0, texture_size=list(size), needed=needed,
                 lines=lines or ["text"], **extra)


def test_a_clean_layout_has_no_problems():
    dump = dump_of(label(1, [0, 0], [400, 30], [380, 30]),
                   label(2, [400, 0], [400, 30], [200, 30]),
                   entry(3, 0, [0, 100], [200, 200], kind="QrCode", drawn=184.0))
    assert layout_problems(dump) == []


@pytest.mark.parametrize(("children", "words"), [
    ([label(1, [0, 0], [400, 30], [400, 60])], "clipped text"),
    ([label(1, [0, 0], [100, 30], [180, 30])], "clipped text"),
    ([entry(1, 0, [700, 0], [200, 30])], "outside its parent"),
    ([entry(1, 0, [0, 0], [300, 30]), entry(2, 0, [250, 0], [300, 30])], "overlap"),
    ([label(1, [0, 0], [400, 60], [400, 60], lines=["(nach 10", "min)"])],
     "number and unit on two lines"),
    ([entry(1, 0, [0, 0], [200, 200], kind="QrCode", drawn=123.0)], "QR code"),
])
def test_each_fault_is_found(children, words):
    problems = layout_problems(dump_of(*children))
    assert problems and all(words in problem for problem in problems), problems


def test_free_layouts_may_stack_and_scrolled_content_may_leave_its_view():
    dump = dump_of(entry(1, 0, [0, 0], [300, 30], layout="free"),
                   entry(2, 0, [250, 0], [300, 30], layout="free"),
                   entry(3, 0, [0, -400], [800, 900], scrolled=True))
    assert layout_problems(dump) == []


def test_capital_height_on_a_7_inch_panel():
    assert cap_height_mm(30.72, 800) == pytest.approx(4.14, abs=0.01)  # 6.4 u at 480
    assert cap_height_mm(3.1 * 4.8, 800) < 4  # the old receipt text, 14.9 px
