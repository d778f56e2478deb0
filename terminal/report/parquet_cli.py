"""`evterm report parquet` (export facts as Parquet) and `evterm report fleet` (query them).

    evterm report parquet ROOT --db JOURNAL --station-id ID --timezone ZONE
                               [--since TIME] [--until TIME]
    evterm report parquet ROOT --bundle FOLDER [--since TIME] [--until TIME]
    evterm report fleet ROOT [--format text|csv|json] [--table stations|totals|vat|
                             payment|availability] [--until TIME] [--out FILE]

Provides `register(subparsers)` (adds `parquet` and `fleet` to the `report` command's
subparsers, or any other) and `main(argv)` (the same two as a program:
`python -m terminal.report.parquet_cli fleet ROOT`). Needs the `reports` extra (pyarrow,
duckdb): without it the commands say so. Exit codes: 0 done, 2 bad input (a missing
file, a bad time, an unknown zone, no sessions) with a message naming it, never a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from terminal.report.facts import ReportError
from terminal.report.sources import bundle_facts, journal_facts

MISSING_EXTRA = ("needs the reports extra (pyarrow, duckdb): "
                 "pip install 'evterm[reports]' (docs/reports.md, Fleet scale)")


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("parquet", help="write a journal's or a bundle's facts "
                                   "as partitioned Parquet (station/month)")
    export.add_argument("root", help="the Parquet folder (created)")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", help="a journal (opened read-only)")
    source.add_argument("--bundle", help="an export bundle's folder (facts/*.jsonl)")
    export.add_argument("--station-id", help="the station's id (a bundle's own by default)")
    export.add_argument("--timezone", help="the station's time zone, e.g. Europe/Berlin "
                        "(a bundle's own by default)")
    export.add_argument("--since", type=_time, help="ISO-8601 time with offset; rows of "
                        "the months touched before it are kept")
    export.add_argument("--until", type=_time, help="ISO-8601 time with offset (excluded)")
    export.set_defaults(func=_export)
    fleet = subparsers.add_parser("fleet", help="the fleet's figures over Parquet "
                                  "(DuckDB): per station and month, VAT, payment, "
                                  "availability")
    fleet.add_argument("root", help="the Parquet folder (evterm report parquet's)")
    fleet.add_argument("--format", default="text", choices=("text", "csv", "json"))
    fleet.add_argument("--table", default="stations",
                       choices=("stations", "totals", "vat", "payment", "availability"),
                       help="the section printed as CSV")
    fleet.add_argument("--until", type=_time, help="where each station's last status row "
                       "ends (default: the fleet's latest row)")
    fleet.add_argument("--out", help="write to this file (default stdout)")
    fleet.set_defaults(func=_fleet)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evterm report")
    register(parser.add_subparsers(dest="report_command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the offset, e.g. +01:00 or Z")
    return at.astimezone(UTC)


def _export(args: argparse.Namespace) -> int:
    try:
        from terminal.report.parquet import export_facts
    except ImportError:
        return _fail(f"evterm report parquet {MISSING_EXTRA}")
    try:
        if args.db and not (args.station_id and args.timezone):
            return _fail("evterm report parquet: give --station-id and --timezone "
                         "with --db (a journal does not carry them)")
        source = (bundle_facts(Path(args.bundle)) if args.bundle
                  else journal_facts(Path(args.db), args.station_id, args.since, args.until))
        station_id = args.station_id or source.station_id
        timezone = args.timezone or source.timezone
        if not station_id or not timezone:
            return _fail(f"evterm report parquet: bundle {args.bundle}: its station.json "
                         "names no station id or time zone: give --station-id and "
                         "--timezone")
        counts = export_facts(Path(args.root), source.sessions, source.taps,
                              source.statuses, station_id=station_id, timezone=timezone,
                              since=args.since or source.since,
                              until=args.until or source.until or datetime.now(UTC))
    except ReportError as exc:
        return _fail(f"evterm report parquet: {exc}")
    finally:
        if "source" in locals():
            source.close()
    print(" ".join(f"{t}={n} rows/{counts.files[t]} files" for t, n in counts.rows.items()))
    return 0


def _fleet(args: argparse.Namespace) -> int:
    try:
        from terminal.report.fleet import fleet_report
        from terminal.report.fleet_render import render
    except ImportError:
        return _fail(f"evterm report fleet {MISSING_EXTRA}")
    try:
        text = render(fleet_report(Path(args.root), until=args.until), args.format,
                      args.table)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except ReportError as exc:
        return _fail(f"evterm report fleet: {exc}")
    except OSError as exc:
        return _fail(f"evterm report fleet: {args.out}: cannot be written ({exc})")
    return 0


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2
