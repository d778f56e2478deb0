"""The repository's docs and code stand alone: no citation of a rules file outside it.

Every rule the code follows is written in docs/ (pricing rules in docs/pricing.md,
receipt rules in docs/receipts.md); a citation of a file that is not in the
repository leaves a reader without the rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = ("STANDARDS" + ".md", "STANDARDS" + " §", "../" + "shared", "shared/" + "STANDARDS")
CHECKED = ("docs", "terminal", "drivers", "ui", "hw_mocks", "bench", "tests", "systemd",
           "README.md")


def _files() -> list[Path]:
    found: list[Path] = []
    for name in CHECKED:
        path = ROOT / name
        if path.is_file():
            found.append(path)
        else:
            found += [p for p in path.rglob("*") if p.suffix in (".md", ".py", ".toml", ".txt")]
    return sorted(found)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_citation_of_a_file_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    cited = [word for word in OUTSIDE if word in text]
    assert not cited, f"{path.relative_to(ROOT)} cites {cited}; write the rule in docs/ instead"


def test_the_rules_are_written_in_the_docs() -> None:
    receipts = (ROOT / "docs" / "receipts.md").read_text(encoding="utf-8")
    assert "round_half_up(gross × r / (100 + r))" in receipts
    assert "every figure on it recomputes" in receipts
    assert "last 4 digits only" in receipts
    pricing = (ROOT / "docs" / "pricing.md").read_text(encoding="utf-8")
    assert "## The rules this terminal commits to" in pricing
    assert "`max_kwh` exclusive" in pricing
