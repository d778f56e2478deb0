"""`evterm session status` and `list`: a short table for people by default, `--json` for
machines with every time in one format (ISO UTC with Z)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import terminal.localapi
from terminal import cli

STATE = {
    "station_id": "DE*EVT*E0001*1", "timezone": "Europe/Berlin", "phase": "Charging",
    "session_id": "5b0e6a6e-1111-2222-3333-444455556666", "plugged": True,
    "output_on": True, "energy_wh": "3614", "power_w": "150000",
    "cost": {"currency": "EUR", "excl_vat": "1.79", "incl_vat": "2.13",
             "charging_incl_vat": "2.13", "idle_incl_vat": "0.00", "price_limit": None},
    "cost_cap": "25.00", "energy_cap_wh": None, "stop_reason": None,
    "since": "2026-11-21T05:22:18.517Z", "meter_fault": None, "charger_fault": None,
    "price_list": {"tariff_id": "T", "currency": "EUR", "texts": {"en": ["0.59 EUR/kWh"]}},
    "backend_online": True, "accepting_sessions": True,
    "readers": {"*": "ready", "ACS ACR1252 00 00": "ready"}, "operator": "Op GmbH",
    "now": "2026-11-21T05:23:02.114Z", "session_started_at": "2026-11-21T05:21:40.233Z",
    "elapsed_s": 81, "out_of_service": None,
}
SESSIONS = [  # as the journal keeps them: datetime.isoformat(), another format than STATE's
    {"id": "5b0e6a6e-1111-2222-3333-444455556666", "opened_at": "2026-11-21T05:21:30+00:00",
     "phase": "Charging", "stop_reason": None, "meter_start_wh": "1000",
     "meter_stop_wh": None, "started_at": "2026-11-21T05:21:40.233000+00:00",
     "stopped_at": None, "closed_at": None, "source": "card", "detail": None},
    {"id": "0c4d0c2a-1111-2222-3333-444455556666", "opened_at": "2026-11-20T18:11:00+00:00",
     "phase": "Available", "stop_reason": "EVDisconnected", "meter_start_wh": "500",
     "meter_stop_wh": "42816", "started_at": "2026-11-20T18:11:05.100000+00:00",
     "stopped_at": "2026-11-20T18:40:00+00:00", "closed_at": "2026-11-20T18:41:00+00:00",
     "source": "local", "detail": None},
]
Z_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def daemon(monkeypatch):
    def request(path: str, message: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
        if message["op"] == "status":
            return {"ok": True, "state": STATE}
        assert message["op"] == "sessions"
        return {"ok": True, "sessions": SESSIONS}

    monkeypatch.setattr(terminal.localapi, "request", request)

    def run(capsys, *argv: str) -> str:
        assert cli.main(["session", "--socket", "/x.sock", *argv]) == 0
        return capsys.readouterr().out

    return run


def _times(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for item in value.values() for t in _times(item)]
    if isinstance(value, list):
        return [t for item in value for t in _times(item)]
    return [value] if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}T", value) else []


def test_status_is_a_short_table_in_local_time(daemon, capsys):
    out = daemon(capsys, "status")
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    lines = out.splitlines()
    assert len(lines) <= 15
    assert "Charging since 2026-11-21 06:22:18 +01:00" in out
    assert "5b0e6a6e-1111-2222-3333-444455556666, started 2026-11-21 06:21:40 +01:00, " \
        "0:01:21" in out
    assert "3.614 kWh at 150.0 kW" in out
    assert "2.13 EUR incl. VAT (cap 25.00 EUR)" in out
    assert "meter none, charger none" in out
    assert "Z" not in out.replace("ACS", "") and "None" not in out


def test_list_is_a_table_with_one_row_per_session(daemon, capsys):
    out = daemon(capsys, "list")
    header, first, second = out.splitlines()
    assert header.split() == ["session", "opened", "phase", "stop", "reason", "energy",
                              "source"]
    assert first.startswith("5b0e6a6e-1111-2222-3333-444455556666  2026-11-21 06:21:30 +01:00")
    assert "Charging" in first and " - " in first  # no stop reading yet
    assert "2026-11-20 19:11:00 +01:00" in second and "42.316 kWh" in second
    assert "EVDisconnected" in second


@pytest.mark.parametrize("command", ["status", "list"])
def test_json_for_machines_has_one_time_format(daemon, capsys, command):
    data = json.loads(daemon(capsys, command, "--json"))
    times = _times(data)
    assert len(times) >= 3
    assert all(Z_TIME.match(t) for t in times), times
    if command == "list":
        assert data["sessions"][1]["started_at"] == "2026-11-20T18:11:05.100Z"
        assert data["sessions"][1]["meter_stop_wh"] == "42816"
    else:
        assert data["state"]["since"] == STATE["since"]
