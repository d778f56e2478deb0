"""The HTML report's small parts: reading the report dict's fields (with a clear error for
a field that is missing or cannot be read) and writing escaped tables and times.

Provides:
- `field(data, key, where)`, `dec(value, where)`, `num(value, where)`: a field, a Decimal
  (the report's money and energy strings), a float (durations, percentiles) or None;
- `when(text, zone)`: an ISO-8601 UTC time shown in the station's local time with its UTC
  offset ("2026-12-01 14:03 +01:00");
- `table(caption, head, rows, total=None, numeric=...)`: an escaped `<table>` with
  `<caption>`, `<th scope>` headers and an optional total row;
- `kwh(energy_wh)`: Wh as kWh, exact (Wh / 1000, three decimals), `fixed(x, places)`;
  `unit(text, name)` and `amount(value, currency)` (no unit when the report has none).

Every text that reaches the page goes through `html.escape` here or in svg.py: station
ids, reasons and causes come from the journal.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any

from terminal.report.facts import ReportError

DASH = "–"


def field(data: Any, key: str, where: str) -> Any:
    """`data[key]`; ReportError naming `where.key` when data is no object or lacks it."""
    if not isinstance(data, Mapping):
        raise ReportError(f"report: {where} is not an object")
    if key not in data:
        raise ReportError(f"report: {where} has no {key!r}")
    return data[key]


def dec(value: Any, where: str) -> Decimal:
    """A Decimal from the report's string (or int); ReportError naming the field."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ReportError(f"report: {where} is {value!r}, not a decimal number")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ReportError(f"report: {where} is {value!r}, not a decimal number") from None
    if not number.is_finite():
        raise ReportError(f"report: {where} is {value!r}, not a finite number")
    return number


def num(value: Any, where: str) -> float | None:
    """A float (a duration, a percentile) or None for a missing figure."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ReportError(f"report: {where} is {value!r}, not a number")
    try:
        return float(value)
    except ValueError:
        raise ReportError(f"report: {where} is {value!r}, not a number") from None


def count(value: Any, where: str) -> int:
    """A count (a non-negative integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportError(f"report: {where} is {value!r}, not a count")
    return value


def items(value: Any, where: str) -> list[Any]:
    """A list from the report (None is an empty list)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"report: {where} is not a list")
    return value


def moment(text: Any, where: str) -> datetime:
    """An ISO-8601 time; naive ones are UTC."""
    if not isinstance(text, str):
        raise ReportError(f"report: {where} is {text!r}, not an ISO-8601 time")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f"report: {where} is {text!r}, not an ISO-8601 time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def when(text: Any, zone: tzinfo, where: str) -> str:
    """The time in the station's zone: '2026-12-01 14:03 +01:00' (empty for None)."""
    if text is None:
        return ""
    local = moment(text, where).astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M ") + _offset(local)


def _offset(local: datetime) -> str:
    offset = local.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def kwh(energy_wh: Decimal) -> str:
    """Wh as kWh with three decimals, exact for whole Wh: Decimal('123456') -> '123.456'."""
    return f"{energy_wh / 1000:.3f}"


def unit(text: str, name: str) -> str:
    """'gross (EUR)'; just 'gross' when the unit is unknown (no sessions, no currency)."""
    return f"{text} ({name})" if name else text


def amount(value: Decimal, currency: str) -> str:
    """'12.34 EUR' ('12.34' without a currency)."""
    return f"{value} {currency}" if currency else str(value)


def fixed(value: float | None, places: int = 1) -> str:
    """A float with `places` decimals, or a dash for a missing figure."""
    return DASH if value is None else f"{value:,.{places}f}"


def table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]], *,
          total: Sequence[str] | None = None, numeric: Collection[int] | None = None,
          css: str = "") -> str:
    """An escaped table: the first column is each row's header, the columns in `numeric`
    (all but the first when None) are figures, right-aligned; `total` is the last, bold
    row."""
    figures = range(1, len(head)) if numeric is None else numeric

    def row_html(cells: Sequence[str], tag_first: str) -> str:
        out = []
        for index, cell in enumerate(cells):
            if index == 0:
                out.append(f'<{tag_first} scope="row">{escape(cell)}</{tag_first}>')
            elif index in figures:
                out.append(f'<td class="n">{escape(cell)}</td>')
            else:
                out.append(f"<td>{escape(cell)}</td>")
        return "<tr>" + "".join(out) + "</tr>"

    heads = "".join(
        f'<th scope="col"{" class=n" if i in figures else ""}>{escape(h)}</th>'
        for i, h in enumerate(head))
    body = "\n".join(row_html(r, "th") for r in rows)
    foot = f"<tfoot>{row_html(total, 'th')}</tfoot>" if total is not None else ""
    klass = f' class="{escape(css)}"' if css else ""
    return (f"<table{klass}><caption>{escape(caption)}</caption>"
            f"<thead><tr>{heads}</tr></thead><tbody>\n{body}\n</tbody>{foot}</table>")


def details(summary: str, inner: str) -> str:
    """A folded block (the figures of a chart): opened by a click, printed open."""
    return f"<details><summary>{escape(summary)}</summary>{inner}</details>"


def section(section_id: str, heading: str, inner: str) -> str:
    """A report section with its heading (the landmark a screen reader lists)."""
    sid = escape(section_id)
    return (f'<section id="{sid}" aria-labelledby="{sid}-h">'
            f'<h2 id="{sid}-h">{escape(heading)}</h2>\n{inner}\n</section>')


def para(text: str, css: str = "") -> str:
    klass = f' class="{escape(css)}"' if css else ""
    return f"<p{klass}>{escape(text)}</p>"
