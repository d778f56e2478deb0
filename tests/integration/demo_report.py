"""The demo's last word checked: the report it prints of its own sessions has the totals
of its receipts, read from its journal independently (SQL and the receipts' JSON)."""

from __future__ import annotations

import json
import re
import sqlite3
from decimal import Decimal
from pathlib import Path

MARK = "--- the report of the demo's sessions"


def printed_figures(stdout: str) -> dict[str, object]:
    """sessions, energy_wh and the VAT table's rows {percent: (net, vat, gross)} and
    total (net, vat, gross) of the report the demo printed at its end."""
    assert MARK in stdout, "the demo printed no report"
    lines = stdout[stdout.index(MARK):].splitlines()
    sessions = next(int(m.group(1)) for line in lines
                    if (m := re.fullmatch(r"\s+sessions\s+(\d+)", line)))
    energy_wh = next(Decimal(m.group(1)) for line in lines
                     if (m := re.search(r"energy [\d.]+ kWh \(([\d.]+) Wh\)", line)))
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["VAT", "%"])
    rule = next(i for i in range(head, len(lines)) if lines[i].strip().startswith("---"))
    rows = {}
    for line in lines[head + 1:rule]:
        words = line.split()
        percent = "none" if words[:2] == ["no", "VAT"] else words[0]
        rows[percent] = tuple(Decimal(w) for w in words[-3:])
    total = tuple(Decimal(w) for w in lines[rule + 1].split()[-3:])
    return {"sessions": sessions, "energy_wh": energy_wh, "rows": rows, "total": total}


def journal_receipts(database: Path) -> dict[str, object]:
    """The same figures summed over the journal's receipts."""
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    closed = conn.execute("SELECT COUNT(*) FROM sessions WHERE closed_at IS NOT NULL")
    closed_count = closed.fetchone()[0]
    receipts = [json.loads(text) for (text,) in conn.execute(
        "SELECT r.receipt_json FROM receipts r JOIN sessions s ON s.id = r.session_id "
        "WHERE s.closed_at IS NOT NULL")]
    conn.close()
    rows: dict[str, list[Decimal]] = {}
    for receipt in receipts:
        for vat in receipt["vat"]:
            row = rows.setdefault(str(Decimal(vat["percent"]).normalize()), [Decimal(0)] * 3)
            for i, key in enumerate(("net", "vat", "gross")):
                row[i] += Decimal(vat[key])
        if receipt.get("no_vat_amount"):
            row = rows.setdefault("none", [Decimal(0)] * 3)
            row[0] += Decimal(receipt["no_vat_amount"])
            row[2] += Decimal(receipt["no_vat_amount"])
    return {"closed_sessions": closed_count, "receipts": len(receipts),
            "energy_wh": sum((Decimal(r["energy_wh"]) for r in receipts), Decimal(0)),
            "amount_charged": sum((Decimal(r["amount_charged"]) for r in receipts),
                                  Decimal(0)),
            "rows": {k: tuple(v) for k, v in rows.items()}}


def assert_report_matches_receipts(stdout: str, database: Path) -> None:
    printed = printed_figures(stdout)
    journal = journal_receipts(database)
    assert printed["sessions"] == journal["closed_sessions"], (printed, journal)
    assert journal["receipts"] > 0, journal
    assert printed["energy_wh"] == journal["energy_wh"], (printed, journal)
    assert printed["rows"] == journal["rows"], (printed, journal)
    assert printed["total"][2] == journal["amount_charged"], (printed, journal)
    assert printed["total"] == tuple(sum(r[i] for r in printed["rows"].values())
                                     for i in range(3)), printed
