"""`evterm report`: the operator's report of a board's journal or an export bundle.

    evterm report [--config FILE] [--db PATH | --bundle FOLDER]
                  [--since DATE] [--until DATE] [--days N]
                  [--format text|csv|json|html] [--out FILE]
                  [--station-id ID] [--timezone ZONE]

Runs on the board beside the daemon (the journal is opened read-only), over SSH, or on
an export bundle copied elsewhere. The journal's path, the station's id and time zone
and the irregularities' thresholds come from the config file (`--config`, default
/etc/evterm/evterm.toml; `[station]`, `[report]`); `--db` reads another journal
(without a readable config: the thresholds' defaults, `--station-id`, `--timezone`).

The period: `--since`/`--until` as dates (YYYY-MM-DD, local days of the station;
`--until` includes its day) or ISO-8601 times with an offset; else the last `--days N`
(default 30) local days up to now, today included.

Exit codes: 0 done, 2 bad input (unknown format, bad date, missing file, not a
journal, a bad config) with a message naming it; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from terminal.config import DEFAULT_CONFIG_PATH, ConfigError, ReportConfig, load_config
from terminal.report import parquet_cli
from terminal.report.build import build_report
from terminal.report.csv_out import render_csv
from terminal.report.facts import ReportError
from terminal.report.html import render_html
from terminal.report.irregularities import Thresholds, thresholds_from
from terminal.report.sources import Facts, bundle_facts, journal_facts
from terminal.report.text import render_text

DATABASE_NAME = "evterm.db"  # as terminal.station.DATABASE_NAME (not imported: slow)
DEFAULT_DAYS = 30


def render_json(report: dict[str, Any]) -> str:
    """The dict as one line of JSON, keys sorted (stable; the C encoder: fast)."""
    return json.dumps(report, sort_keys=True, ensure_ascii=False) + "\n"


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": render_text,
    "csv": render_csv,
    "json": render_json,
    "html": render_html,
}


class UsageError(Exception):
    """Bad input on the command line; the message names it."""


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser(
        "report", help="the operator's report: sessions, revenue, failures, availability, "
        "irregularities (text, CSV, JSON)")
    report.add_argument("--config", default=None,
                        help=f"config file (default {DEFAULT_CONFIG_PATH})")
    where = report.add_mutually_exclusive_group()
    where.add_argument("--db", default=None, help="the journal (default: [station] "
                       f"state_dir/{DATABASE_NAME} of the config)")
    where.add_argument("--bundle", default=None, help="an export bundle's folder")
    report.add_argument("--since", type=_when, default=None,
                        help="first day (YYYY-MM-DD, local) or time (ISO-8601)")
    report.add_argument("--until", type=_when, default=None,
                        help="last day, included (YYYY-MM-DD, local) or end time "
                        "(ISO-8601); default now")
    report.add_argument("--days", type=_days, default=None,
                        help=f"the last N local days up to now (default {DEFAULT_DAYS})")
    report.add_argument("--format", default="text", choices=sorted(RENDERERS))
    report.add_argument("--out", default=None, help="write to this file (default stdout)")
    report.add_argument("--station-id", default=None, help="the station's id (default: "
                        "the config's, the bundle's)")
    report.add_argument("--timezone", default=None, help="the station's IANA time zone "
                        "(default: the config's, the bundle's, else UTC)")
    report.set_defaults(func=run)
    parquet_cli.register(report.add_subparsers(dest="report_command", required=False,
                                               metavar="{parquet,fleet}"))


def _when(text: str) -> date | datetime:
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a date YYYY-MM-DD or an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: a time needs its offset, e.g. "
                                         "2026-12-01T08:00:00+01:00 or ...Z")
    return moment


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of days") \
            from None
    if not 1 <= days <= 36_600:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 to 36600 days")
    return days


def run(args: argparse.Namespace) -> int:
    try:
        text = report_text(args, datetime.now(UTC))
    except (UsageError, ReportError) as exc:
        print(f"evterm report: {exc}", file=sys.stderr)
        return 2
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"evterm report: --out {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    return 0


def report_text(args: argparse.Namespace, now: datetime) -> str:
    """The rendered report the arguments ask for."""
    config = _config(args)
    station_id = args.station_id or (config.station.id if config else None)
    zone_name = args.timezone or (config.station.timezone if config else None)
    thresholds = thresholds_from(config.report if config else ReportConfig())
    if args.bundle:
        facts = bundle_facts(Path(args.bundle))
        station_id = station_id or facts.station_id
        zone_name = zone_name or facts.timezone
    zone_name = zone_name or "UTC"
    zone = _zone(zone_name)
    since, until = period(args.since, args.until, args.days, zone, now)
    if not args.bundle:
        facts = journal_facts(_journal(args, config), station_id or "unknown", since, until)
    try:
        report = build(facts, station_id, since, until, zone_name, now, thresholds)
    finally:
        facts.close()
    return RENDERERS[args.format](report)


def config_report(config_path: Path, *, since: datetime, until: datetime, now: datetime,
                  fmt: str = "text") -> str:
    """The report of the journal a config file names (the demo's ending: its own
    sessions, on its own clock's `now`); ReportError or ConfigError on failure."""
    config = load_config(config_path)
    facts = journal_facts(Path(config.station.state_dir) / DATABASE_NAME, config.station.id,
                          since, until)
    try:
        report = build(facts, config.station.id, since, until, config.station.timezone, now,
                       thresholds_from(config.report))
    finally:
        facts.close()
    return RENDERERS[fmt](report)


def build(facts: Facts, station_id: str | None, since: datetime, until: datetime,
          zone_name: str, now: datetime, thresholds: Thresholds) -> dict[str, Any]:
    return build_report(facts.sessions, facts.taps, facts.statuses,
                        station_ids=[station_id or "unknown"], since=since, until=until,
                        timezone=zone_name, now=now, thresholds=thresholds)


def _config(args: argparse.Namespace) -> Any:
    """The config: the one named (must be valid), else the default one if it exists
    (needed only when no --db or --bundle says where the facts are)."""
    path = Path(args.config) if args.config else DEFAULT_CONFIG_PATH
    if not args.config and not path.is_file():
        if args.db or args.bundle:
            return None
        raise UsageError(f"no config at {path}: pass --config FILE, --db JOURNAL or "
                         "--bundle FOLDER")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"config {path}: {exc.strerror or exc}") from None


def _journal(args: argparse.Namespace, config: Any) -> Path:
    if args.db:
        return Path(args.db)
    return Path(config.station.state_dir) / DATABASE_NAME


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise UsageError(f"--timezone {name!r}: not an IANA time zone, e.g. "
                         "Europe/Berlin") from None


def period(since: date | datetime | None, until: date | datetime | None, days: int | None,
           zone: tzinfo, now: datetime) -> tuple[datetime, datetime]:
    """[since, until) in UTC from the command line's dates (local days) or times."""
    if days is not None and since is not None:
        raise UsageError("--days and --since: give one of them")
    end = now if until is None else _start(until, zone, next_day=True)
    if since is not None:
        start = _start(since, zone)
    else:
        last_day = (end - timedelta(microseconds=1)).astimezone(zone).date()
        start = _start(last_day - timedelta(days=(days or DEFAULT_DAYS) - 1), zone)
    if end <= start:
        shown = "%Y-%m-%d %H:%M"
        raise UsageError(f"the period is empty: --until ({end.astimezone(zone):{shown}}) "
                         f"is not after --since ({start.astimezone(zone):{shown}})")
    return start, end


def _start(value: date | datetime, zone: tzinfo, next_day: bool = False) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    day = value + timedelta(days=1) if next_day else value
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
