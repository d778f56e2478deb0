"""The service CLI's words: no "None" where a value is missing, units after values,
singular and plural, and the station's local time with its UTC offset (as receipts)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from terminal.kernel.formatting import counted, format_age, local_clock, local_time
from terminal.service_cli import _show, outbox_text, render_report

DIAG = {
    "generated_at": "2026-11-21T14:25:00.000Z",
    "station": {"id": "DE*EVT*E0001*1", "timezone": "Europe/Berlin", "phase": "Available",
                "accepting_sessions": True, "refusal": None,
                "out_of_service": {"since": "2026-11-21T14:20:00.000Z", "by": "…EEFF",
                                   "reason": "Maintenance"}},
    "meter": {"model": "eastron_sdm630", "url": "tcp://10.0.0.5:502", "serial": "S1",
              "expected_serial": None, "poll_interval_s": 1.0, "fault": None,
              "last_reading": {"energy_wh": "1234", "power_w": "7400", "voltage_v": "230.1",
                               "current_a": "10.2", "at": "2026-11-21T14:24:59.000Z"},
              "counters": {"polls": 10, "failed_polls": 0, "errors_by_kind": {}}},
    "readers": {"readers": {}},
    "charger": {"kind": "modbus_coil", "url": "tcp://10.0.0.6:502"},
    "backend": {"kind": "mqtt", "connected": True, "last_ack_at": None, "outbox_depth": 0,
                "oldest_undelivered_at": None, "oldest_undelivered_age_s": None},
    "storage": {"database": "/var/lib/evterm/evterm.db", "database_bytes": 2_097_152,
                "free_bytes": 10 * 1_048_576, "storage_ok": True},
    "software": {"version": "0.9.0", "python": "3.11.7", "uptime_s": 3725},
    "recent_sessions": [{"id": "5b0e6a6e", "opened_at": "2026-11-20T18:11:00.000Z",
                         "phase": "Available", "stop_reason": "Local", "energy_wh": "80",
                         "total": "0.50", "currency": "EUR"}],
    "recent_faults": [{"at": "2026-11-21T11:52:40.000Z", "source": "meter",
                       "event": "cleared", "fault": "timeout"}],
    "config": {},
}


def test_the_report_has_no_none_and_shows_units_and_local_time():
    report = render_report(DIAG)
    assert "None" not in report
    assert "oldest" not in report and "outbox nothing waiting" in report
    assert "at 2026-11-21 15:25:00 +01:00" in report.splitlines()[0]
    assert "OUT OF SERVICE since 2026-11-21 15:20:00 +01:00" in report
    assert "1234 Wh, 7400 W, 230.1 V, 10.2 A at 2026-11-21 15:24:59 +01:00" in report
    assert "polled every 1.0 s" in report
    assert "last acknowledgement -" in report
    assert "2.0 MiB, 10.0 MiB free" in report
    assert "up 1:02:05" in report
    assert "5b0e6a6e  2026-11-20 19:11:00 +01:00" in report
    assert "2026-11-21 12:52:40 +01:00  meter  cleared" in report
    assert "Z " not in report and "UTC" not in report


def test_resend_says_nothing_waiting_instead_of_oldest_none(capsys):
    args = argparse.Namespace(service_command="resend")
    _show(args, {"pending": 0, "oldest_age_s": None, "backend_online": True})
    assert capsys.readouterr().out == "outbox: nothing waiting; backend online\n"
    _show(args, {"pending": 1, "oldest_age_s": 42, "backend_online": False})
    assert capsys.readouterr().out == \
        "outbox: 1 message waiting, the oldest for 42 s; backend offline\n"


def test_counts_ages_and_times():
    assert outbox_text(3, 7300) == "3 messages waiting, the oldest for 2 h"
    assert outbox_text(2, None) == "2 messages waiting"
    assert [counted(n, "attempt") for n in (0, 1, 2)] == ["0 attempts", "1 attempt",
                                                          "2 attempts"]
    assert [format_age(s) for s in (0, 119, 120, 7199, 7200)] == ["0 s", "119 s", "2 min",
                                                                  "119 min", "2 h"]
    berlin = ZoneInfo("Europe/Berlin")
    summer = datetime(2026, 7, 1, 12, 0, 3, tzinfo=UTC)
    assert local_time(summer, berlin, "de") == "01.07.2026 14:00:03 +02:00"
    assert local_clock(summer, berlin, "en", summer) == "14:00:03 +02:00"
    assert local_clock(summer, berlin, "de", None) == "01.07.2026 14:00 +02:00"
