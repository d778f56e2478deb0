"""`evterm report parquet` and `evterm report fleet` as programs (terminal/report/
parquet_cli.py run in its own process): a journal's sessions, journaled as the daemon
journals them, and an export bundle's facts/*.jsonl go to Parquet, and the fleet's
totals equal the receipts' sums; bad input is one line naming it, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from terminal.report.facts import iter_sessions, open_read_only, to_json
from terminal.store import Store
from tests.unit.fleet_helpers import sessions, statuses, taps, utc
from tests.unit.retention_helpers import charge

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "terminal.cli", "report", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_journal_to_parquet_to_the_fleet_totals_equal_its_receipts(tmp_path: Path) -> None:
    journal = tmp_path / "evterm.db"
    store = Store.open(journal)
    energy = Decimal(1_000_000)
    for n in range(3):
        energy = charge(store, f"S-{n}", START + timedelta(hours=n), 90,
                        energy_wh=energy, idle_after_s=30 * n)
    store.close()
    conn = open_read_only(journal)
    facts = list(iter_sessions(conn, "ST1"))
    receipts = [json.loads(r[0]) for r in conn.execute("SELECT receipt_json FROM receipts")]
    conn.close()
    root = tmp_path / "parquet"
    done = run("parquet", str(root), "--db", str(journal), "--station-id", "ST1",
               "--timezone", "Europe/Amsterdam")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sessions=3 rows/1 files")
    done = run("fleet", str(root), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [total] = report["totals"]
    assert len(receipts) == len(facts) == total["sessions"] == 3
    assert Decimal(total["gross"]) == sum(Decimal(r["amount_charged"]) for r in receipts) > 0
    assert Decimal(total["gross"]) == sum(f.amount_charged for f in facts)
    assert Decimal(total["energy_wh"]) == sum(Decimal(r["energy_wh"]) for r in receipts)
    vat = sum(Decimal(v["vat"]) for r in receipts for v in r["vat"])
    assert Decimal(total["vat"]) == vat
    assert Decimal(total["net"]) + Decimal(total["vat"]) == Decimal(total["gross"])
    text = run("fleet", str(root))
    assert text.returncode == 0 and total["gross"] in text.stdout


def write_bundle(folder: Path, station_id: str) -> list:
    base = folder / "facts"
    base.mkdir(parents=True)
    facts = sessions(station_id, 20, utc(2026, 4, 1), 7)
    (base / "station.json").write_text(json.dumps({
        "station_id": station_id, "timezone": "Europe/Berlin", "currency": "EUR",
        "exported_at": "2026-05-01T00:00:00+00:00",
        "since": "2026-04-01T00:00:00+00:00", "until": "2026-05-01T00:00:00+00:00"}))
    for name, rows in (("sessions", facts), ("taps", taps(5, utc(2026, 4, 1))),
                       ("status", statuses(utc(2026, 4, 1), [("Available", 60),
                                                             ("Faulted", 30)]))):
        (base / f"{name}.jsonl").write_text(
            "".join(json.dumps(to_json(row)) + "\n" for row in rows))
    return facts


def test_bundles_of_two_stations_make_one_fleet(tmp_path: Path) -> None:
    root = tmp_path / "parquet"
    gross = Decimal(0)
    for station in ("DE*EVT*E0001", "DE*EVT*E0002"):
        facts = write_bundle(tmp_path / station, station)
        gross += sum(f.amount_charged for f in facts)
        done = run("parquet", str(root), "--bundle", str(tmp_path / station))
        assert done.returncode == 0, done.stderr
    done = run("fleet", str(root), "--format", "csv", "--table", "totals")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert (values["stations"], values["sessions"]) == ("2", "40")
    assert Decimal(values["gross"]) == gross
    done = run("fleet", str(root), "--format", "csv", "--table", "availability")
    assert done.stdout.splitlines()[0].endswith(",percent") and done.stdout.count("\n") == 3


def test_bad_input_is_one_line_naming_it(tmp_path: Path) -> None:
    cases = [
        (("fleet", str(tmp_path)), "has no sessions/ folder"),
        (("parquet", str(tmp_path / "p"), "--db", str(tmp_path / "none.db"),
          "--station-id", "S", "--timezone", "Europe/Berlin"), "does not exist"),
        (("parquet", str(tmp_path / "p"), "--db", str(tmp_path / "none.db")),
         "give --station-id and --timezone"),
        (("parquet", str(tmp_path / "p"), "--bundle", str(tmp_path)), "not an export bundle"),
    ]
    write_bundle(tmp_path / "b", "DE*EVT*E0001")
    cases.append((("parquet", str(tmp_path / "p"), "--bundle", str(tmp_path / "b"),
                   "--timezone", "Nowhere/City"),
                  "timezone: 'Nowhere/City' is not an IANA time zone"))
    for args, message in cases:
        done = run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    done = run("fleet", str(tmp_path), "--until", "2026-01-01")
    assert done.returncode == 2 and "give the offset" in done.stderr


def test_without_the_reports_extra_the_commands_say_what_to_install(tmp_path: Path) -> None:
    """On a board (no pyarrow, no duckdb) the commands name the extra, exit 2."""
    blocked = tmp_path / "blocked"
    for name in ("pyarrow", "duckdb"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{REPO}"}
    for args in (("fleet", str(tmp_path)), ("parquet", str(tmp_path / "p"), "--bundle",
                                            str(tmp_path))):
        done = subprocess.run([sys.executable, "-m", "terminal.cli", "report", *args],
                              capture_output=True, text=True, env=env, timeout=60,
                              check=False)
        assert done.returncode == 2, done.stderr
        assert "needs the reports extra (pyarrow, duckdb)" in done.stderr
        assert "Traceback" not in done.stderr
