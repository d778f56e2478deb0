"""The HTML report without a browser: its sections, recomputable figures, escaping of the
journal's texts, empty periods, bad input, and the SVG helpers' arithmetic.
(tests/integration/test_report_html.py draws it in headless Chromium.)"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from terminal.report.facts import ReportError
from terminal.report.html import render_html
from terminal.report.html_sections import heat_bin
from terminal.report.svg import Bar, bar_chart, hbar_chart, nice_ceiling, tick_count
from tests.report_dicts import empty_report, make_report


class Tables(HTMLParser):
    """Every table's caption and its rows of cell texts (head, body and total)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._rows: list[list[str]] | None = None
        self._caption: str | None = None
        self._cell: list[str] | None = None
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._rows = []
        elif tag == "caption":
            self._caption = ""
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._rows is not None:
            self._rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table" and self._rows is not None:
            self.tables[self._caption or ""] = self._rows
            self._rows, self._caption = None, None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)
        elif self._caption is not None and self._rows is not None and not self._rows:
            self._caption += data


def tables_of(report: dict) -> Tables:
    parser = Tables()
    parser.feed(render_html(report))
    return parser


def find(parser: Tables, caption_start: str) -> list[list[str]]:
    hits = [rows for caption, rows in parser.tables.items() if caption.startswith(caption_start)]
    assert len(hits) == 1, (caption_start, list(parser.tables))
    return hits[0]


def test_vat_rows_add_up_and_net_plus_vat_is_gross() -> None:
    report = make_report()
    report["by_vat_rate"] = [
        {"percent": "19", "sessions": 40, "net": "100.00", "vat": "19.00", "gross": "119.00"},
        {"percent": "7", "sessions": 3, "net": "10.00", "vat": "0.70", "gross": "10.70"},
        {"percent": None, "sessions": 1, "net": "2.50", "vat": "0.00", "gross": "2.50"},
    ]
    report["totals"]["gross"] = "132.20"
    rows = find(tables_of(report), "Revenue per VAT rate")
    body, total = rows[1:-1], rows[-1]
    assert [r[0] for r in body] == ["19 %", "7 %", "without VAT"]
    for row in body:
        assert Decimal(row[2]) + Decimal(row[3]) == Decimal(row[4])
    for column in (2, 3, 4):
        assert Decimal(total[column]) == sum(Decimal(r[column]) for r in body)
    assert total[4] == "132.20"
    assert "the totals say" not in render_html(report)


def test_vat_rows_that_miss_the_total_are_flagged() -> None:
    report = make_report()
    report["totals"]["gross"] = "1.00"
    assert "the totals say 1.00 EUR" in render_html(report)


def test_payment_shares_are_sessions_over_the_total_printed() -> None:
    rows = find(tables_of(make_report()), "Sessions, share, energy")
    body, total = rows[1:-1], rows[-1]
    assert int(total[1]) == sum(int(r[1]) for r in body)
    for row in body:
        share = Decimal(row[1]) * 100 / Decimal(total[1])
        assert abs(share - Decimal(row[2])) <= Decimal("0.05"), row
    assert Decimal(total[3]) == sum(Decimal(r[3]) for r in body)
    assert Decimal(total[4]) == sum(Decimal(r[4]) for r in body)


def test_daily_total_row_is_the_sum_and_matches_the_totals() -> None:
    report = make_report()
    rows = find(tables_of(report), "Per day")
    body, total = rows[1:-1], rows[-1]
    assert len(body) == 30
    assert int(total[1]) == sum(int(r[1]) for r in body) == report["totals"]["sessions"]
    assert Decimal(total[2]) == sum(Decimal(r[2]) for r in body)
    assert Decimal(total[2]) * 1000 == Decimal(report["totals"]["energy_wh"])
    assert Decimal(total[3]) == Decimal(report["totals"]["gross"])


def test_failures_total_and_availability_figures() -> None:
    report = make_report()
    parser = tables_of(report)
    failures = find(parser, "Failures by kind")
    assert int(failures[-1][1]) == sum(int(r[1]) for r in failures[1:-1])
    assert [r[0] for r in failures[1:-1]] == ["Meter faults", "Declined cards",
                                              "Charger faults", "Power losses",
                                              "Aborted starts"]
    taps = find(parser, "Time from a card")
    assert taps[0][1:] == ["taps", "average", "median (p50)", "p90", "p95", "max"]
    assert taps[1][1:] == [str(report["tap_to_decision_ms"]["count"]), "1,840", "1,620",
                           "3,100", "3,900", "7,412"]
    avail = find(parser, "Time available")
    period, available, unavailable = (float(r[2]) for r in avail[1:])
    assert available + unavailable == period
    assert f"{available / period * 100:.1f}" == report["availability"]["percent"]
    outages = find(parser, "Outages (1)")
    # 09:00-10:30 UTC shown in Berlin time (UTC+1)
    assert outages[1][:3] == ["2026-11-12 10:00 +01:00", "2026-11-12 11:30 +01:00", "5400.0"]
    assert float(outages[-1][2]) == unavailable  # the outages add up to the time lost


def test_heat_map_has_every_hour_with_words_for_each_cell() -> None:
    html = render_html(make_report())
    assert html.count('class="cell"') == 168
    assert "<title>Mon 12:00-13:00: " in html
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"):
        assert f">{day}</text>" in html
    assert html.count('class="legend"') == 6
    assert "over 80 %" in html


def test_each_hours_percent_is_occupied_over_the_hours_time() -> None:
    rows = find(tables_of(make_report()), "Occupancy by hour of the week")
    assert rows[0] == ["hour of the week", "sessions started", "occupied (s)",
                       "this hour in the period (s)", "occupied (%)"]
    assert len(rows) == 169 and rows[1][0] == "Mon 00:00-01:00"
    for row in rows[1:]:
        share = Decimal(row[2]) * 100 / Decimal(row[3])
        assert abs(share - Decimal(row[4])) <= Decimal("0.05"), row


def test_without_daily_figures_or_currency_the_page_still_renders() -> None:
    report = make_report()
    del report["daily"]
    assert "This report has no day-by-day figures." in render_html(report)
    empty = empty_report()
    empty["currency"] = ""
    html = render_html(empty)
    assert "()" not in html and ">0.00<" in html


def test_every_chart_has_a_title_and_description_for_screen_readers() -> None:
    html = render_html(make_report())
    charts = re.findall(r'<svg class="chart" data-chart="([^"]+)"[^>]*role="img" '
                        r'aria-labelledby="\1-t \1-d"', html)
    assert sorted(charts) == sorted(["payment_mix", "utilisation", "daily_sessions",
                                     "daily_energy", "daily_revenue", "daily_faults",
                                     "failures"])
    for chart in charts:
        assert f'<title id="{chart}-t">' in html and f'<desc id="{chart}-d">' in html


def test_irregularities_have_their_sentence_and_figures() -> None:
    rows = find(tables_of(make_report()), "Irregularities to look into (3)")
    assert rows[0] == ["kind", "when", "session", "what happened", "figures"]
    assert rows[2] == ["Repeated declines of one token", "2026-11-20 08:55 +01:00", "–",
                       "Token tok-9f3a was declined 4 times within 10 minutes.",
                       "token: tok-9f3a; declines: 4; last_at: 2026-11-20 09:04 +01:00"]


def test_journal_texts_are_escaped() -> None:
    report = make_report()
    evil = '<script>alert("x")</script><img src=x onerror=y>'
    report["station_ids"] = [evil]
    report["irregularities"][0]["detail"] = evil
    report["irregularities"][0]["session_id"] = evil
    report["availability"]["outages"][0]["cause"] = evil
    report["payment_mix"][0]["method"] = evil
    report["failures"][0]["kind"] = evil
    html = render_html(report)
    assert "<script" not in html and "<img" not in html
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 6


def test_an_empty_period_says_so_and_draws_no_empty_charts() -> None:
    html = render_html(empty_report())
    assert "No sessions in this period." in html
    assert "No failures in this period." in html
    assert "No taps in this period." in html
    assert "No outages in this period." in html
    assert "No irregularities found." in html
    assert 'data-chart="payment_mix"' not in html and 'data-chart="failures"' not in html
    parser = tables_of(empty_report())
    dist = find(parser, "Per session")
    assert dist[1] == ["Session length (min)", "0", "–", "–", "–", "–", "–"]
    assert "<svg" not in html
    assert html.count("No sessions in this period.") == 6  # totals, VAT, mix, distributions,
    # utilisation, days


def test_faults_without_sessions_still_draw_the_days() -> None:
    report = empty_report()
    report["daily"][2]["faults"] = 3
    html = render_html(report)
    assert 'data-chart="daily_faults"' in html and 'data-chart="utilisation"' not in html
    faults = re.search(r'data-chart="daily_faults".*?</svg>', html, re.S)
    assert faults is not None
    ticks = re.findall(r'aria-hidden="true">([\d.]+)</text>', faults.group(0))
    assert ticks[:4] == ["0", "1", "2", "3"]  # whole-number ticks for counts


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.update(schema="evterm.report/2"), "schema is 'evterm.report/2'"),
    (lambda r: r.pop("totals"), "report has no 'totals'"),
    (lambda r: r["totals"].update(gross="12,50"),
     "totals.gross is '12,50', not a decimal number"),
    (lambda r: r["daily"][3].update(sessions=-1), "daily[3].sessions is -1, not a count"),
    (lambda r: r["daily"][0].update(energy_wh=1.5), "daily[0].energy_wh is 1.5"),
    (lambda r: r["availability"]["outages"][0].update(to="yesterday"),
     "availability.outages[0].to is 'yesterday', not an ISO-8601 time"),
    (lambda r: r.update(failures={"kind": "x"}), "report: failures is not a list"),
])
def test_bad_input_names_the_field(change, message: str) -> None:
    report = copy.deepcopy(make_report())
    change(report)
    with pytest.raises(ReportError) as caught:
        render_html(report)
    assert message in str(caught.value)


def test_tick_counts_give_whole_ticks_for_counts() -> None:
    assert [tick_count(Decimal(v), whole=True) for v in (1, 2, 5, 10, 20, 25, 50)] == [
        1, 2, 5, 5, 4, 5, 5]
    assert tick_count(Decimal(5), whole=False) == 4


def test_nice_ceiling_and_heat_bins() -> None:
    assert [nice_ceiling(Decimal(v)) for v in ("0", "0.7", "1", "3", "18", "24", "251",
                                               "999", "4955.47")] == [
        Decimal(1), Decimal("1"), Decimal(1), Decimal(5), Decimal(20), Decimal("25"),
        Decimal(500), Decimal(1000), Decimal(5000)]
    assert [heat_bin(Decimal(p)) for p in ("0", "0.1", "20", "20.1", "59.9", "80", "80.1",
                                           "100")] == [0, 1, 1, 2, 3, 4, 5, 5]


def test_bar_lengths_are_proportional_and_negative_values_draw_nothing() -> None:
    bars = [Bar("a", Decimal(10), "10"), Bar("b", Decimal(5), "5"),
            Bar("c", Decimal(-3), "-3"), Bar("d", Decimal(0), "0")]
    svg = bar_chart("t", "T", "d", bars, colour="#000000", height=220)
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([\d.]+)"', svg)]
    assert heights == [176.0, 88.0, 0.0, 0.0]  # 10 of the axis's 10 = the 176 px plot
    widths = [float(w) for w in re.findall(
        r'class="bar"[^>]*width="([\d.]+)"', hbar_chart("h", "H", "d", bars, colour="#000"))]
    assert widths[0] == 2 * widths[1] and widths[2:] == [0.0, 0.0]


def test_long_periods_draw_a_bar_per_week_or_month_with_the_same_totals() -> None:
    year = make_report(days=365)
    parser = tables_of(year)
    weeks = find(parser, "Per week")
    assert weeks[0][0] == "week" and weeks[1][0] == "2026-W44"  # Sunday 2026-11-01
    assert len(weeks) - 2 == 53
    assert int(weeks[-1][1]) == year["totals"]["sessions"]
    assert Decimal(weeks[-1][3]) == Decimal(year["totals"]["gross"])
    assert "Sessions per week" in render_html(year)
    five = make_report(days=5 * 365 + 1)
    months = find(tables_of(five), "Per month")
    assert [r[0] for r in months[1:3]] == ["2026-11", "2026-12"] and len(months) - 2 == 60
    assert int(months[-1][1]) == five["totals"]["sessions"]
    assert Decimal(months[-1][2]) * 1000 == Decimal(five["totals"]["energy_wh"])


def test_a_day_that_is_no_date_is_named() -> None:
    report = make_report()
    report["daily"][2]["date"] = "2026-02-30"
    with pytest.raises(ReportError, match=r"daily\[2\]\.date is '2026-02-30', not a date"):
        render_html(report)
