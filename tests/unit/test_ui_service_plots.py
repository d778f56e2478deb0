"""The service menu's "30 days" tab as plain data (ui.service_plots through ui.view): the
tab asks the daemon for `service_report_daily` with the login token; the four plots'
bars are the reply's columns; each printed total is the sum of its bars and the max the
tallest; dates every 7 days; German formats; an empty period; a refusal; the spoken
summary."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.unit.test_ui_service_view import TOKEN, logged_in, refusal, reply
from ui.buttons import press
from ui.messages import apply_message
from ui.service_plots import PLOTS, date_marks, plots_view
from ui.speech_texts import speech_text
from ui.view import build_view

NB = "\u00a0"


def daily_reply(days: int = 30) -> dict[str, Any]:
    """30 days from 2026-11-04: sessions on some days, the 10th day empty."""
    rows = []
    for index in range(days):
        day = f"2026-{11 + (index + 3) // 30:02d}-{(index + 3) % 30 + 1:02d}"
        sessions = 0 if index == 9 else index % 4 + 1
        rows.append({"date": day, "sessions": sessions,
                     "energy_wh": str(Decimal(sessions) * Decimal("12345.6")),
                     "gross": str(Decimal(sessions) * Decimal("7.29")),
                     "faults": 1 if index in (3, 20) else 0})
    return {"days": days, "first_day": rows[0]["date"], "timezone": "Europe/Berlin",
            "currency": "EUR", "rows": rows}


def on_plots_tab(answer: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    model = logged_in()
    [request] = press(model, "svc_tab_plots", 2.0)
    assert request["op"] == "service_report_daily" and request["token"] == TOKEN
    if answer is not None:
        assert apply_message(model, reply(request, **answer), 2.5) == []
    return model, request


def test_the_tab_asks_once_and_shows_four_plots_whose_totals_are_their_bars_sums():
    model, _request = on_plots_tab(daily_reply())
    assert press(model, "svc_tab_actions", 3.0) == []
    assert press(model, "svc_tab_plots", 3.5) == []  # the reply is fresh: not asked again
    view = build_view(model, 4.0)
    assert view.service_tab == "plots" and [p.kind for p in view.plots] == list(PLOTS)
    rows = daily_reply()["rows"]
    sessions, energy, revenue, faults = view.plots
    assert sessions.values == tuple(float(row["sessions"]) for row in rows)
    assert energy.values[0] == pytest.approx(12.3456)
    assert revenue.values[1] == pytest.approx(14.58) and faults.alert
    assert sum(sessions.values) == 71 and sessions.max_text == "max 4"
    texts = view.texts
    assert texts["svc_plot_sessions_total"] == "Total 30 days: 71"
    total_wh = sum(Decimal(row["energy_wh"]) for row in rows)
    assert total_wh == Decimal("876537.6")
    assert texts["svc_plot_energy_total"] == "Total 30 days: 876.5 kWh"
    assert texts["svc_plot_revenue_total"] == "Total 30 days: 517.59 EUR"
    assert texts["svc_plot_faults_total"] == "Total 30 days: 2"
    assert texts["svc_plot_revenue_title"] == "Revenue per day, EUR incl. VAT"
    assert energy.max_text == "max 49.4"  # 4 x 12.3456 kWh, the tallest bar
    assert texts["svc_plots_summary"] == (
        "Last 30 days: sessions 71, 876.5 kWh, 517.59 EUR, faults 2")
    assert [index for index, _text in sessions.dates] == [1, 8, 15, 22, 29]
    assert sessions.dates[-1] == (29, "3/12") and sessions.dates[0] == (1, "5/11")
    spoken = speech_text(model, 4.0)
    assert "Last 30 days" in spoken and "71" in spoken


def test_german_numbers_and_dates():
    model, _request = on_plots_tab(daily_reply())
    model.language = "de"
    texts = build_view(model, 4.0).texts
    assert texts["svc_plot_energy_total"] == "Summe 30 Tage: 876,5 kWh"
    assert texts["svc_plot_revenue_total"] == "Summe 30 Tage: 517,59 EUR"
    assert texts["svc_tab_plots"] == "30 Tage"
    assert build_view(model, 4.0).plots[0].dates[-1] == (29, "3.12.")
    model.language = "fr"
    view = build_view(model, 4.0)
    assert view.texts["svc_plot_energy_total"] == f"Total 30 jours{NB}: 876,5 kWh"
    assert view.plots[0].dates[-1] == (29, "03/12")


def test_an_empty_period_has_zero_bars_and_says_so():
    empty = daily_reply()
    empty["rows"] = [{**row, "sessions": 0, "energy_wh": "0", "gross": "0.00", "faults": 0}
                     for row in empty["rows"]]
    model, _request = on_plots_tab(empty)
    view = build_view(model, 4.0)
    assert all(set(plot.values) == {0.0} and len(plot.values) == 30 for plot in view.plots)
    assert view.texts["svc_plots_summary"] == "Last 30 days: no sessions and no faults"
    assert view.texts["svc_plot_energy_total"] == "Total 30 days: 0.0 kWh"
    assert view.plots[0].max_text == "max 0"


def test_loading_a_refusal_and_odd_replies():
    model, request = on_plots_tab()
    assert build_view(model, 2.5).texts["svc_plots_summary"] == "Loading…"
    assert press(model, "svc_tab_plots", 3.0) == []  # in flight
    apply_message(model, refusal(request, "report: the journal cannot be read (locked)"), 3.0)
    summary = build_view(model, 3.5).texts["svc_plots_summary"]
    assert summary == "Last 30 days could not be read: The journal cannot be read (locked)"
    texts, plots = plots_view({"rows": [{"date": "x", "sessions": -1, "energy_wh": "NaN",
                                         "gross": None, "faults": True}, "odd"],
                               "currency": 5}, "en")
    assert [plot.values for plot in plots] == [(0.0,)] * 4
    assert texts["svc_plot_revenue_total"] == "Total 1 days: 0.00"


def test_a_refused_token_ends_the_login():
    model, request = on_plots_tab()
    apply_message(model, refusal(request, "token: unknown or expired; log in first"), 3.0)
    assert build_view(model, 3.5).screen != "service"


@pytest.mark.parametrize(("count", "marks"), [(30, [1, 8, 15, 22, 29]), (1, [0]),
                                              (0, []), (8, [0, 7])])
def test_dates_every_7_days_the_last_always(count, marks):
    assert date_marks([f"d{i}" for i in range(count)]) == marks
