"""The facts as partitioned Parquet (terminal/report/parquet.py) and the fleet's DuckDB
figures over them (terminal/report/fleet.py): the totals equal the facts' sums computed
here in Python, exactly; the layout, the schema, the months in local time; a re-export
replaces its period and nothing else."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from terminal.report.facts import ReportError, SessionFact
from terminal.report.fleet import fleet_report
from terminal.report.fleet_render import render
from terminal.report.parquet import SCHEMAS, export_facts, station_dir
from tests.unit.fleet_helpers import sessions, statuses, taps, utc

BERLIN = ZoneInfo("Europe/Berlin")
ZERO = Decimal(0)
STATIONS = {"DE*EVT*E0001": ("EUR", 1), "DE*EVT*E0002": ("EUR", 2),
            "CH*EVT*E0003": ("CHF", 3)}


def export_fleet(root: Path) -> dict[str, list[SessionFact]]:
    facts = {}
    for station, (currency, seed) in STATIONS.items():
        facts[station] = sessions(station, 300, utc(2026, 1, 1), seed, currency)
        export_facts(root, facts[station], taps(40, utc(2026, 1, 1)), (),
                     station_id=station, timezone="Europe/Berlin")
    return facts


def python_station_months(facts: dict[str, list[SessionFact]]) -> dict[tuple, dict[str, Any]]:
    out: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for station, rows in facts.items():
        for s in rows:
            month = f"{s.closed_at.astimezone(BERLIN):%Y-%m}"
            row = out[(station, month, s.currency)]
            row["sessions"] += 1
            row["energy_wh"] += s.energy_wh
            row["net"] += s.net_amount
            row["vat"] += sum((v.vat for v in s.vat_rows), ZERO)
            row["no_vat"] += s.no_vat_amount
            row["gross"] += s.amount_charged
            row["idle_fees"] += s.idle_fee
            row["refunds"] += s.refunded
    return out


def test_the_fleet_totals_equal_the_sums_of_the_facts_exactly(tmp_path: Path) -> None:
    facts = export_fleet(tmp_path)
    report = fleet_report(tmp_path, now=utc(2026, 6, 1))
    expected = python_station_months(facts)
    got = {(r["station_id"], r["month"], r["currency"]): r for r in report["by_station_month"]}
    assert got.keys() == expected.keys()
    assert len(got) == 3 * 3  # 300 sessions 7 h apart: January to March
    for key, want in expected.items():
        row = got[key]
        assert row["sessions"] == want["sessions"], key
        for name in ("energy_wh", "net", "vat", "no_vat", "gross", "idle_fees", "refunds"):
            assert Decimal(row[name]) == want[name], (key, name)
        assert Decimal(row["gross_after_refunds"]) == want["gross"] - want["refunds"]
        assert Decimal(row["net"]) + Decimal(row["vat"]) == Decimal(row["gross"]), key
    totals = {t["currency"]: t for t in report["totals"]}
    for currency in ("EUR", "CHF"):
        mine = [s for rows in facts.values() for s in rows if s.currency == currency]
        total = totals[currency]
        assert total["sessions"] == len(mine)
        assert total["sessions_with_energy"] == sum(1 for s in mine if s.energy_wh > 0)
        assert Decimal(total["gross"]) == sum((s.amount_charged for s in mine), ZERO)
        assert Decimal(total["energy_wh"]) == sum((s.energy_wh for s in mine), ZERO)
        assert Decimal(total["refunds"]) == sum((s.refunded for s in mine), ZERO)
        # the total row is the sum of the rows printed above it
        assert Decimal(total["net"]) == sum(Decimal(r["net"]) for r in got.values()
                                            if r["currency"] == currency)
    assert totals["EUR"]["stations"] == 2 and report["stations"] == 3


def test_per_vat_rate_and_payment_mix_equal_the_facts(tmp_path: Path) -> None:
    facts = export_fleet(tmp_path)
    report = fleet_report(tmp_path)
    want: dict[tuple, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO, ZERO])
    mix: dict[tuple, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    for s in (s for rows in facts.values() for s in rows):
        for v in s.vat_rows:
            entry = want[(s.currency, f"{v.percent}")]
            entry[0] += 1
            entry[1] += v.net
            entry[2] += v.vat
            entry[3] += v.gross
        if s.no_vat_amount:
            entry = want[(s.currency, None)]
            entry[0] += 1
            entry[1] += s.no_vat_amount
            entry[3] += s.no_vat_amount
        m = mix[(s.currency, s.payment_method)]
        m[0] += 1
        m[1] += s.energy_wh
        m[2] += s.amount_charged
    got = {(r["currency"], r["percent"]): r for r in report["by_vat_rate"]}
    assert got.keys() == want.keys()
    for key, (count, net, vat, gross) in want.items():
        assert (got[key]["sessions"], Decimal(got[key]["net"]), Decimal(got[key]["vat"]),
                Decimal(got[key]["gross"])) == (count, net, vat, gross), key
    shares = {(r["currency"], r["method"]): r for r in report["payment_mix"]}
    assert shares.keys() == mix.keys()
    for (currency, method), (count, energy, gross) in mix.items():
        row = shares[(currency, method)]
        whole = sum(c for (cur, _), (c, _e, _g) in mix.items() if cur == currency)
        assert row["sessions"] == count and Decimal(row["energy_wh"]) == energy
        assert Decimal(row["gross"]) == gross
        assert row["share_percent"] == str((count * Decimal(100) / whole).quantize(
            Decimal("0.1")))


def test_layout_schema_and_local_months(tmp_path: Path) -> None:
    late = sessions("DE*EVT*E0001", 1, utc(2026, 1, 31, 22, 0), 9)[0]
    assert f"{late.closed_at.astimezone(BERLIN):%Y-%m}" == "2026-02" != \
        f"{late.closed_at:%Y-%m}"
    counts = export_facts(tmp_path, [late], taps(1, utc(2026, 3, 1)),
                          statuses(utc(2026, 3, 2), [("Available", 5)]),
                          station_id="DE*EVT*E0001", timezone="Europe/Berlin")
    assert station_dir("DE*EVT*E0001") == "station=DE%2AEVT%2AE0001"
    station = "station=DE%2AEVT%2AE0001"
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    assert files == [f"sessions/{station}/month=2026-02/part-0.parquet",
                     f"status/{station}/month=2026-03/part-0.parquet",
                     f"taps/{station}/month=2026-03/part-0.parquet",
                     f"vat_rows/{station}/month=2026-02/part-0.parquet"]
    assert counts.rows["vat_rows"] == len(late.vat_rows) and counts.files["sessions"] == 1
    for table in ("sessions", "vat_rows", "taps", "status"):
        written = pq.read_schema(next((tmp_path / table).rglob("*.parquet")))
        assert written.remove_metadata() == SCHEMAS[table], table
    row = pq.read_table(tmp_path / f"sessions/{station}/month=2026-02").to_pylist()[0]
    assert row["amount_charged"] == late.amount_charged and row["closed_at"] == late.closed_at
    assert str(row["local_date"]) == "2026-02-01" and row["station_id"] == "DE*EVT*E0001"


def test_re_export_is_idempotent_and_replaces_only_its_period(tmp_path: Path) -> None:
    station = "DE*EVT*E0001"
    facts = sessions(station, 300, utc(2026, 1, 1), 1)
    export_facts(tmp_path, facts, (), (), station_id=station, timezone="Europe/Berlin")
    first = fleet_report(tmp_path, now=utc(2026, 6, 1))
    export_facts(tmp_path, facts, (), (), station_id=station, timezone="Europe/Berlin")
    assert fleet_report(tmp_path, now=utc(2026, 6, 1)) == first
    # February re-exported from a journal that now holds only half of its sessions
    since, until = utc(2026, 2, 10), utc(2026, 2, 20)
    kept = [s for s in facts if not since <= s.closed_at < until or s.session_id[-1] in "02468"]
    window = [s for s in kept if since <= s.closed_at < until]
    export_facts(tmp_path, window, (), (), station_id=station, timezone="Europe/Berlin",
                 since=since, until=until)
    got = {r["month"]: r for r in fleet_report(tmp_path)["by_station_month"]}
    want = python_station_months({station: kept})
    assert len(kept) < len(facts)
    for (_, month, _), row in want.items():
        assert got[month]["sessions"] == row["sessions"]
        assert Decimal(got[month]["gross"]) == row["gross"], month
    # a period with no facts left empties its part of the months it touches
    export_facts(tmp_path, (), (), (), station_id=station, timezone="Europe/Berlin",
                 since=utc(2026, 2, 28, 23), until=utc(2026, 5, 1))  # March 1st, Berlin
    months = {r["month"] for r in fleet_report(tmp_path)["by_station_month"]}
    assert months == {"2026-01", "2026-02"}  # March and April held nothing else: removed
    assert not (tmp_path / "sessions" / station_dir(station) / "month=2026-04").exists()


def test_availability_from_status_rows(tmp_path: Path) -> None:
    rows = statuses(utc(2026, 3, 2, 10), [("Available", 60), ("Occupied", 30),
                                          ("Faulted", 15), ("Available", 45),
                                          ("Unavailable", 30)])
    export_facts(tmp_path, sessions("DE*EVT*E0001", 2, utc(2026, 3, 2), 1), (), rows,
                 station_id="DE*EVT*E0001", timezone="Europe/Berlin")
    report = fleet_report(tmp_path, until=utc(2026, 3, 2, 13, 30))
    [row] = report["availability"]
    assert row == {"station_id": "DE*EVT*E0001", "month": "2026-03", "covered_s": 12600,
                   "available_s": 8100, "faulted_s": 900, "unavailable_s": 3600,
                   "percent": "64.3"}  # 8100 / 12600


def test_bad_input_gives_report_errors_naming_it(tmp_path: Path) -> None:
    fact = sessions("DE*EVT*E0001", 1, utc(2026, 1, 1), 1)[0]
    too_fine = SessionFact(**{**{n: getattr(fact, n) for n in fact.__slots__},
                              "energy_wh": Decimal("1.0001")})
    with pytest.raises(ReportError, match=r"sessions of DE\*EVT\*E0001, 2026-01: a value"):
        export_facts(tmp_path, [too_fine], (), (), station_id="DE*EVT*E0001",
                     timezone="Europe/Berlin")
    with pytest.raises(ReportError, match=r"^timezone: 'Mars/Olympus' is not an IANA time zone$"):
        export_facts(tmp_path, [fact], (), (), station_id="DE*EVT*E0001",
                     timezone="Mars/Olympus")
    with pytest.raises(ReportError, match="not the export's"):
        export_facts(tmp_path, [fact], (), (), station_id="DE*EVT*E0009",
                     timezone="Europe/Berlin")
    with pytest.raises(ReportError, match="has no sessions/ folder"):
        fleet_report(tmp_path / "nowhere")


def test_text_and_csv_print_every_section(tmp_path: Path) -> None:
    export_fleet(tmp_path)
    report = fleet_report(tmp_path)
    text = render(report, "text")
    for title in ("Per station and month", "Totals", "Per VAT rate", "Payment mix",
                  "Availability"):
        assert title in text
    eur = next(t for t in report["totals"] if t["currency"] == "EUR")
    assert "  EUR" in text and eur["gross"] in text
    csv = render(report, "csv", "vat").splitlines()
    assert csv[0] == "currency,percent,sessions,net,vat,gross"
    assert len(csv) == 1 + len(report["by_vat_rate"])
    assert ",," not in csv[1]  # the no-VAT row's percent is empty, the others are not
    assert any(line.startswith("EUR,,") for line in csv)


def test_months_follow_the_days_within_the_window(tmp_path: Path) -> None:
    """Sessions a day apart across a month's end in local time: a re-export of one day
    moves nothing of the neighbouring month."""
    station = "DE*EVT*E0001"
    facts = sessions(station, 10, utc(2026, 1, 27, 20), 4, every=timedelta(days=1))
    export_facts(tmp_path, facts, (), (), station_id=station, timezone="Europe/Berlin")
    before = {r["month"]: r["sessions"] for r in fleet_report(tmp_path)["by_station_month"]}
    day = [s for s in facts if s.closed_at.date() == facts[4].closed_at.date()]
    export_facts(tmp_path, day, (), (), station_id=station, timezone="Europe/Berlin",
                 since=utc(2026, 1, 31), until=utc(2026, 2, 2))
    after = {r["month"]: r["sessions"] for r in fleet_report(tmp_path)["by_station_month"]}
    assert sum(after.values()) == sum(before.values()) - (len(
        [s for s in facts if utc(2026, 1, 31) <= s.closed_at < utc(2026, 2, 2)]) - len(day))


def test_status_durations_run_to_the_next_row_across_exports(tmp_path: Path) -> None:
    """Each export writes a row's duration to the next row, its last one to its end;
    a row left open by an export without an end is closed by the next export's rows."""
    station = "DE*EVT*E0001"
    facts = sessions(station, 1, utc(2026, 3, 2), 1)
    first = statuses(utc(2026, 3, 2, 10), [("Available", 60), ("Occupied", 30)])
    export_facts(tmp_path, facts, (), first, station_id=station, timezone="Europe/Berlin",
                 since=utc(2026, 3, 2), until=utc(2026, 3, 2, 12))
    part = tmp_path / "status" / station_dir(station) / "month=2026-03"
    assert pq.read_table(part).column("duration_s").to_pylist() == [3600.0, 3600.0]
    # an export without an end: its last row stays open
    later = statuses(utc(2026, 3, 2, 12), [("Faulted", 15), ("Available", 0)])
    export_facts(tmp_path, (), (), later[:1], station_id=station, timezone="Europe/Berlin",
                 since=utc(2026, 3, 2, 12))
    assert pq.read_table(part).column("duration_s").to_pylist() == [3600.0, 3600.0, None]
    report = fleet_report(tmp_path, until=utc(2026, 3, 2, 12, 40))
    assert report["availability"][0]["faulted_s"] == 2400  # open: up to the query's end
    export_facts(tmp_path, (), (), later[1:], station_id=station, timezone="Europe/Berlin",
                 since=utc(2026, 3, 2, 12, 15), until=utc(2026, 3, 2, 13))
    assert pq.read_table(part).column("duration_s").to_pylist() == [3600.0, 3600.0, 900.0,
                                                                     2700.0]
    [row] = fleet_report(tmp_path)["availability"]
    assert (row["covered_s"], row["available_s"], row["faulted_s"]) == (10800, 9900, 900)
    # a query ending earlier clips the rows that run past its end
    [row] = fleet_report(tmp_path, until=utc(2026, 3, 2, 10, 30))["availability"]
    assert (row["covered_s"], row["available_s"]) == (1800, 1800)


def test_a_pruned_journal_never_empties_the_archive(tmp_path: Path) -> None:
    """An export without `since` replaces from its first fact on: the months a journal
    no longer holds (retention pruned them), and a table it has no rows of, stay."""
    station = "DE*EVT*E0001"
    facts = sessions(station, 300, utc(2026, 1, 1), 1)
    export_facts(tmp_path, facts, taps(10, utc(2026, 1, 1)), (), station_id=station,
                 timezone="Europe/Berlin", until=utc(2026, 4, 1))
    before = fleet_report(tmp_path)["by_station_month"]
    recent = [s for s in facts if s.closed_at >= utc(2026, 2, 15)]
    export_facts(tmp_path, recent, (), (), station_id=station, timezone="Europe/Berlin",
                 until=utc(2026, 4, 1))
    assert fleet_report(tmp_path)["by_station_month"] == before
    assert (tmp_path / "taps" / station_dir(station) / "month=2026-01").is_dir()
