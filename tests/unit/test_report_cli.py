"""`evterm report` on a real journal and on a bundle's facts files, its three formats
(the text's rows recompute), and its bad inputs (exit 2 with a message, no traceback)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.cli import main
from terminal.report.cli import period
from terminal.report.facts import open_read_only, to_json
from terminal.report.text import render_text
from terminal.store import Store
from tests.unit.report_helpers import T0, refund, report, session, status, tap
from tests.unit.retention_helpers import charge

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "evterm.db"
    store = Store.open(path)
    energy = Decimal(1_000_000)
    for n in range(3):
        energy = charge(store, f"S{n}", START + timedelta(hours=n), 120, energy_wh=energy,
                        idle_after_s=30)
    store.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["report", *args])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


WHERE = ("--station-id", "ST1", "--timezone", "Europe/Amsterdam", "--since", "2026-11-01",
         "--until", "2026-11-30")


def test_json_of_a_journal_matches_its_receipts(journal: Path, capsys) -> None:
    code, out, _ = run(capsys, "--db", str(journal), *WHERE, "--format", "json")
    assert code == 0
    result = json.loads(out)
    conn = open_read_only(journal)
    receipts = [json.loads(text) for (text,) in conn.execute(
        "SELECT receipt_json FROM receipts")]
    conn.close()
    assert result["totals"]["sessions"] == len(receipts) == 3
    assert Decimal(result["totals"]["gross"]) == sum(
        Decimal(r["amount_charged"]) for r in receipts)
    assert Decimal(result["totals"]["energy_wh"]) == sum(
        Decimal(r["energy_wh"]) for r in receipts)
    assert result["station_ids"] == ["ST1"]
    assert out == json.dumps(result, sort_keys=True, ensure_ascii=False) + "\n"  # stable


def test_text_rows_recompute(journal: Path, capsys) -> None:
    code, out, _ = run(capsys, "--db", str(journal), *WHERE)
    assert code == 0
    assert "Revenue by VAT rate (EUR)" in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.strip().startswith("VAT %"))
    rule = next(i for i in range(head, len(lines)) if lines[i].strip().startswith("---"))
    rows = [line.split() for line in lines[head + 1:rule]]
    total = lines[rule + 1].split()
    for row in rows:
        assert Decimal(row[-3]) + Decimal(row[-2]) == Decimal(row[-1])  # net + VAT = gross
    for column in (-3, -2, -1):
        assert sum(Decimal(row[column]) for row in rows) == Decimal(total[column])


def test_text_of_hand_built_facts_shows_every_section() -> None:
    statuses = [status(T0 + timedelta(hours=3), "Faulted", "charger_fault"),
                status(T0 + timedelta(hours=4), "Available", "repaired")]
    result = report([session(0, refunds=(refund("30.00"),)), session(1, rate="7")],
                    [tap(T0, decision_ms=350.0)], statuses, timezone="Europe/Berlin")
    text = render_text(result)
    for heading in ("Sessions and energy", "Payment methods", "Distributions",
                    "Idle fees and refunds", "Failures", "Availability", "Utilisation",
                    "Irregularities (1)"):
        assert heading in text
    assert re.search(r"availability 99\.4 %", text)
    assert "refund_over_threshold session S0" in text


def test_daily_rows_when_the_report_has_them_are_printed_with_their_sums() -> None:
    result = report([session(0)])
    result["daily"] = [{"date": "2026-11-02", "sessions": 2, "energy_wh": "1000.5",
                        "gross": "3.10", "faults": 1},
                       {"date": "2026-11-03", "sessions": 1, "energy_wh": "20",
                        "gross": "1.05", "faults": 0}]
    lines = render_text(result).splitlines()
    total = next(line for line in lines[lines.index("Per day"):] if "total" in line)
    assert total.split() == ["total", "3", "1020.5", "4.15", "1"]


def test_csv_is_one_file_of_section_key_field_value(journal: Path, capsys) -> None:
    code, out, _ = run(capsys, "--db", str(journal), *WHERE, "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["section", "key", "field", "value"]
    assert all(len(row) == 4 for row in rows)
    assert ["totals", "", "sessions", "3"] in rows
    assert sum(1 for r in rows if r[0] == "utilisation_by_hour_of_week"
               and r[2] == "occupancy_percent") == 168


def test_out_writes_a_file(journal: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "r.json"
    code, out, _ = run(capsys, "--db", str(journal), *WHERE, "--format", "json",
                       "--out", str(target))
    assert (code, out) == (0, "")
    assert json.loads(target.read_text())["totals"]["sessions"] == 3


def test_a_bundle_of_facts_files(tmp_path: Path, capsys) -> None:
    facts = tmp_path / "bundle" / "facts"
    facts.mkdir(parents=True)
    facts.joinpath("sessions.jsonl").write_text(
        "".join(json.dumps(to_json(session(n))) + "\n" for n in range(4)))
    facts.joinpath("taps.jsonl").write_text(json.dumps(to_json(tap(T0))) + "\n")
    facts.joinpath("status.jsonl").write_text(
        json.dumps(to_json(status(T0, "Available", "started"))) + "\n")
    facts.joinpath("station.json").write_text(json.dumps({
        "station_id": "DE*EVT*E0001", "timezone": "Europe/Berlin", "currency": "EUR",
        "exported_at": "2026-11-06T00:00:00+00:00", "since": "2025-10-02T00:00:00+00:00",
        "until": "2026-11-06T00:00:00+00:00"}))
    code, out, _ = run(capsys, "--bundle", str(tmp_path / "bundle"), "--since",
                       "2026-11-01", "--until", "2026-11-05", "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["station_ids"] == ["DE*EVT*E0001"]  # the bundle's
    assert (result["totals"]["sessions"], result["totals"]["gross"]) == (4, "47.60")
    assert result["tap_to_decision_ms"]["count"] == 1


def test_the_default_period_is_the_last_30_local_days() -> None:
    from zoneinfo import ZoneInfo
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    since, until = period(None, None, None, ZoneInfo("Europe/Berlin"), now)
    assert until == now
    assert since == datetime(2026, 11, 3, 23, 0, tzinfo=UTC)  # 4 Nov, 00:00 in Berlin
    since, until = period(datetime(2026, 12, 1).date(), datetime(2026, 12, 1).date(), None,
                          ZoneInfo("UTC"), now)
    assert until - since == timedelta(days=1)  # --until includes its day


@pytest.mark.parametrize(("args", "message"), [
    (("--format", "pdf"), "invalid choice: 'pdf'"),
    (("--since", "2026-02-30"), "expected a date YYYY-MM-DD"),
    (("--since", "2026-02-01T10:00"), "needs its offset"),
    (("--days", "0"), "expected 1 to 36600 days"),
    (("--days", "3", "--since", "2026-11-01"), "--days and --since"),
    (("--since", "2026-11-05", "--until", "2026-11-01"), "the period is empty"),
    (("--timezone", "Mars/Olympus"), "not an IANA time zone"),
])
def test_bad_arguments_exit_2_naming_them(journal: Path, capsys, args, message) -> None:
    code, _, err = run(capsys, "--db", str(journal), *args)
    assert code == 2
    assert message in err


def test_bad_sources_exit_2_naming_them(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "--db", str(tmp_path / "none.db"))
    assert (code, "does not exist" in err) == (2, True)
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    code, _, err = run(capsys, "--db", str(junk))
    assert (code, "cannot be read as a journal" in err) == (2, True)
    code, _, err = run(capsys, "--bundle", str(tmp_path))
    assert (code, "not an export bundle" in err) == (2, True)
    bad = tmp_path / "bad.toml"
    bad.write_text("[report]\nlong_idle_s = -1\n")
    code, _, err = run(capsys, "--config", str(bad))
    assert code == 2 and "long_idle_s" in err
    code, _, err = run(capsys, "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "missing.toml" in err


def test_as_a_process_a_bad_journal_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "terminal.cli", "report", "--db",
                           str(tmp_path / "x.db")], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == f"evterm report: journal {tmp_path / 'x.db'}: does not exist"


def test_the_report_command_loads_neither_drivers_nor_simulators() -> None:
    code = ("import sys\nfrom terminal.cli import build_parser\n"
            "build_parser('report').parse_args(['report', '--db', 'x'])\n"
            "heavy = ('pymodbus', 'paho', 'serial', 'smartcard', 'drivers', 'hw_mocks', "
            "'terminal.daemon', 'kivy')\n"
            "print(sorted({m for m in sys.modules if m.startswith(heavy)}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.strip()
    assert out == "[]", out


def test_the_config_names_the_journal_station_and_time_zone(journal: Path, tmp_path: Path,
                                                            capsys) -> None:
    config = tmp_path / "evterm.toml"
    config.write_text(f'[station]\nid = "NL*EVT*E0042"\noperator = "Op"\n'
                      f'timezone = "Europe/Amsterdam"\nstate_dir = "{journal.parent}"\n'
                      '[report]\nlong_idle_s = 60\n', encoding="utf-8")
    code, out, _ = run(capsys, "--config", str(config), "--since", "2026-11-01",
                       "--until", "2026-11-30", "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["station_ids"] == ["NL*EVT*E0042"]
    assert result["period"]["since"] == "2026-10-31T23:00:00+00:00"  # Amsterdam's midnight
    assert result["totals"]["sessions"] == 3


def test_the_days_of_a_journal_sum_to_its_totals_in_json_and_html(journal: Path,
                                                                   capsys) -> None:
    code, out, _ = run(capsys, "--db", str(journal), *WHERE, "--format", "json")
    assert code == 0
    result = json.loads(out)
    days = result["daily"]
    assert [d["date"] for d in days][:2] == ["2026-11-01", "2026-11-02"]
    assert len(days) == 30  # 1 Nov to 30 Nov: --until includes its day
    assert sum(d["sessions"] for d in days) == result["totals"]["sessions"] == 3
    assert sum(Decimal(d["gross"]) for d in days) == Decimal(result["totals"]["gross"])
    assert sum(Decimal(d["energy_wh"]) for d in days) == Decimal(result["totals"]["energy_wh"])
    code, page, _ = run(capsys, "--db", str(journal), *WHERE, "--format", "html")
    assert code == 0 and page.startswith("<!DOCTYPE html>")
    assert "no day-by-day figures" not in page
    assert result["totals"]["gross"] in page
