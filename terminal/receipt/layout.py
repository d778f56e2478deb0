"""The receipt's column: lines of at most 42 characters.

Provides `WIDTH`, `wrap(text)` (words over lines), `row(label, value)` (label left,
value right-aligned, on more lines when they do not fit in one) and `chunks(text)`
(long data such as a URL or OCMF cut every WIDTH characters, so that the lines joined
give it back exactly).
"""

from __future__ import annotations

import textwrap

WIDTH = 42
"""Maximum characters per text line (58 mm receipt printers, the screen's receipt view)."""


def wrap(text: str, indent: str = "") -> list[str]:
    """`text` over lines of at most WIDTH characters (at least one line, maybe empty)."""
    return textwrap.wrap(
        text,
        WIDTH,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [""]


def row(label: str, value: str) -> list[str]:
    """Label left, value right-aligned; on two (or more) lines when they do not fit in one."""
    if len(label) + 1 + len(value) <= WIDTH:
        return [label + value.rjust(WIDTH - len(label))]
    indent = label[: len(label) - len(label.lstrip())]
    return [*wrap(label, indent), *(part.rjust(WIDTH) for part in wrap(value))]


def chunks(text: str) -> list[str]:
    """Long data (URL, OCMF) cut every 42 characters: the lines joined give it back exactly."""
    return [text[i : i + WIDTH] for i in range(0, len(text), WIDTH)]
