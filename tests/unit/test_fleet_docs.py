"""docs/reports.md, "Fleet scale", shows the query evterm runs: the DuckDB and Spark SQL
statements are fleet.py's text, and the Trino table declares the export's columns."""

from __future__ import annotations

import re
from pathlib import Path

from terminal.report.fleet import SESSIONS_SQL
from terminal.report.parquet import SCHEMAS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "reports.md").read_text(encoding="utf-8")


def words(sql: str) -> str:
    return " ".join(sql.replace(";", " ").split())


def fleet_section() -> str:
    start = DOC.index("## Fleet scale")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:] if end < 0 else DOC[start:end]


def test_the_duckdb_and_spark_statements_are_the_one_evterm_runs() -> None:
    section = fleet_section()
    duckdb_block = re.search(r"```sql\n(.*?)```", section, re.S)[1]
    select = duckdb_block[duckdb_block.index("SELECT station_id"):]
    assert words(select) == words(SESSIONS_SQL)
    spark = re.search(r'spark\.sql\("""(.*?)"""\)', section, re.S)[1]
    assert words(spark) == words(SESSIONS_SQL)


def test_the_trino_table_declares_every_column_of_the_sessions_files() -> None:
    ddl = re.search(r"CREATE TABLE hive\.evterm\.sessions \((.*?)\)\nWITH", fleet_section(),
                    re.S)[1]
    columns = [part.split()[0] for part in re.split(r",\s*(?![^()]*\))", ddl)]
    assert columns == [*SCHEMAS["sessions"].names, "station", "month"]
