"""Power loss of the terminal on a signing DC meter (Eichrecht): the kill -9 loop of
tests/integration/test_recovery.py (tests/integration/crash_loop.py) with the LEM DCBM
400/600 served by `evterm sim station`. A signed session never resumes: each one
killed while charging closes (PowerLoss) from the meter's own signed end; every
document the meter signed is journaled (its pagination without gaps), verifies with
pyocmf, and only energy inside a signed begin/end pair is billed, once."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import urllib.request
from decimal import Decimal
from typing import Any

import pyocmf

from hw_mocks.rig import Rig
from terminal.store import Store
from tests.integration.crash_loop import crash_loop
from tests.integration.test_recovery import CRASH_CURVE, sessions


def signed_rows(rig: Rig) -> dict[str, list[dict[str, Any]]]:
    """Every session's signed values (store.signed_values)."""
    store = Store.open(rig.database, create=False)
    try:
        ids = {row["session_id"] for row in all_signed_rows(rig)}
        return {session_id: store.signed_values(session_id) for session_id in ids}
    finally:
        store.close()


def all_signed_rows(rig: Rig) -> list[dict[str, Any]]:
    """All rows of the signed_values table in the order they were journaled."""
    conn = sqlite3.connect(f"file:{rig.database}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM signed_values ORDER BY id")]
    finally:
        conn.close()


def meter_status(rig: Rig) -> dict[str, Any]:
    with urllib.request.urlopen(f"{rig.meter_url}/v1/status", timeout=5) as answer:
        return dict(json.load(answer))


def reading_reason(ocmf: str) -> str:
    """TX of the document's last reading."""
    return str(json.loads(ocmf.split("|")[1])["RD"][-1]["TX"])


def test_crash_loop_on_a_signing_meter_bills_only_signed_energy_once(tmp_path):
    """At least 30 SIGKILLs with the car charging on the LEM meter (each one a session:
    a signed session never resumes), at random moments
    (also while the meter signs a begin or an end), with stops and unplugs."""
    with Rig(tmp_path / "rig", meter_model="lem_dcbm400600", speed=30.0,
             poll_interval_s=2.0, curve=CRASH_CURVE) as rig:
        rig.start_station()
        loop = crash_loop(rig, random.Random(20261121), kills_while_charging=30,
                          max_kills=300, wait_s=(0.0, 0.6), next_session_p=0.7)
        found = sessions(rig)
        signed = signed_rows(rig)
        every_row = all_signed_rows(rig)
        meter = meter_status(rig)
    print(f"signed crash loop: {loop.kills} kills, {loop.kills_while_charging} while "
          f"charging, {len(found)} sessions, {loop.duration_s:.0f} s")
    assert len(found) >= 20
    by_id = {s["row"]["id"]: s for s in found}
    billed_pairs: list[tuple[Decimal, Decimal]] = []
    for session in found:
        row = session["row"]
        assert row["closed_at"] is not None, row  # every session completed
        events = [m for m in session["events"] if m.kind == "TransactionEvent"]
        seq = [m.seq_no for m in events]
        assert seq == list(range(len(seq))), seq  # no duplicate, no gap
        rows = signed.get(row["id"], [])
        assert all(r["problems"] == [] for r in rows), \
            [(r["kind"], r["pagination"], r["problems"]) for r in rows]
        if row["meter_start_wh"] is None:
            assert [m.payload["event_type"] for m in events] == []
            # none; or a begin the meter signed as the terminal died (fetched again after
            # the restart) and its transaction's end
            assert [r["kind"] for r in rows if r["kind"] in ("begin", "end")] in (
                [], ["begin"], ["begin", "end"])
            continue
        kinds = [r["kind"] for r in rows]
        assert kinds.count("begin") == 1 and kinds.count("end") == 1, (row["id"], kinds)
        begin = next(r for r in rows if r["kind"] == "begin")
        end = next(r for r in rows if r["kind"] == "end")
        begin_wh, end_wh = Decimal(begin["energy_wh"]), Decimal(end["energy_wh"])
        assert Decimal(row["meter_stop_wh"]) - Decimal(row["meter_start_wh"]) \
            == end_wh - begin_wh, row
        assert Decimal(row["meter_start_wh"]) == begin_wh
        assert session["receipt"] is not None
        issues = pyocmf.OCMF.from_string(end["ocmf"]).check_eichrecht(errors_only=True)
        assert not issues, (row["id"], issues)
        billed_pairs.append((begin_wh, end_wh))
    # every document the meter signed verifies, and none is missing from the journal
    for row in every_row:
        assert pyocmf.OCMF.from_string(row["ocmf"]).verify_signature(row["public_key"]), row
    numbers = [int(r["pagination"][1:]) for r in every_row]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
    # a session killed while charging never resumed: closed from the meter's end
    assert len(loop.killed_while_charging) >= 30
    for session_id in loop.killed_while_charging:
        row = by_id[session_id]["row"]
        assert row["stop_reason"] == "PowerLoss", row
        end = next(r for r in signed[session_id] if r["kind"] == "end")
        assert reading_reason(end["ocmf"]) in ("P", "E"), end["ocmf"]
    # only energy between a signed begin and end is billed, and each Wh once
    billed_pairs.sort()
    for (_, end_wh), (next_begin_wh, _) in itertools.pairwise(billed_pairs):
        assert end_wh <= next_begin_wh, billed_pairs
    total_billed = sum((e - b for b, e in billed_pairs), Decimal(0))
    assert 0 < total_billed <= loop.counter_after_wh - loop.counter_before_wh
    assert billed_pairs[0][0] >= int(loop.counter_before_wh)
    assert billed_pairs[-1][1] <= loop.counter_after_wh
    # the meter holds no open transaction
    assert meter["status"]["bits"]["transactionIsOnGoing"] is False, meter["status"]
