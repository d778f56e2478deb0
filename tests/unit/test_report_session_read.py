"""facts.iter_sessions (receipts' figures by json_extract) gives exactly the facts of the
plain reading (tests/unit/report_reference.py: each receipt parsed whole): card payments,
refunds, an idle fee, a no-VAT part, a session without a receipt, an anonymised token,
a period's bounds; a receipt that is not JSON is a ReportError."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.report.facts import ReportError, iter_sessions, open_read_only
from terminal.store import PaymentStatus, Store
from tests.unit.report_reference import reference_sessions
from tests.unit.retention_helpers import charge

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fast") / "evterm.db"
    store = Store.open(path)
    energy = Decimal(1_000_000)
    for n in range(4):
        sid = f"S{n}"
        card = n % 2 == 1
        auth = ({"card_scheme": "visa", "card_last4": "1111", "payment_reference": sid,
                 "cost_cap": Decimal(50)} if card else None)
        energy = charge(store, sid, START + timedelta(hours=n), 90, energy_wh=energy,
                        source="card" if card else "rfid", auth=auth, idle_after_s=20)
        if card:
            store.add_payment(reference=sid, session_id=sid, token=f"k1.t{n}",
                              masked_pan="411111******1111", scheme="visa", last4="1111",
                              currency="EUR", amount_requested=Decimal(50), at=START)
            store.update_payment(sid, START, status=PaymentStatus.CAPTURED,
                                 psp_reference=f"PSP-{sid}",
                                 amount_captured=store.amount_charged(sid))
    conn = store.conn
    conn.execute("INSERT INTO refunds (refund_id, reference, session_id, amount, currency, "
                 "reason, at) VALUES ('R1', 'S1', 'S1', '1.00', 'EUR', 'test', ?)",
                 ((START + timedelta(days=1)).isoformat(),))
    (text,) = conn.execute("SELECT receipt_json FROM receipts WHERE session_id = 'S2'")\
        .fetchone()
    receipt = json.loads(text)
    receipt["charges"].append({"amount": "2.50", "dimension": "PARKING_TIME"})
    receipt["no_vat_amount"] = "0.40"
    conn.execute("UPDATE receipts SET receipt_json = ? WHERE session_id = 'S2'",
                 (json.dumps(receipt),))
    conn.execute("DELETE FROM receipts WHERE session_id = 'S3'")
    conn.execute("UPDATE sessions SET anonymised_at = ? WHERE id = 'S0'", (START.isoformat(),))
    conn.commit()
    store.close()
    return path


def test_the_same_facts_as_iter_sessions(journal: Path) -> None:
    conn = open_read_only(journal)
    fast = list(iter_sessions(conn, "ST1"))
    assert fast == list(reference_sessions(conn, "ST1"))
    assert len(fast) == 4
    by_id = {s.session_id: s for s in fast}
    assert by_id["S2"].idle_fee == Decimal("2.50")
    assert by_id["S2"].no_vat_amount == Decimal("0.40")
    assert by_id["S1"].refunded == Decimal("1.00")
    assert by_id["S1"].payment_status == "captured"
    assert not by_id["S3"].receipt_present and by_id["S3"].energy_wh > 0
    assert by_id["S0"].id_token is None
    since, until = START + timedelta(minutes=30), START + timedelta(hours=2, minutes=30)
    assert list(iter_sessions(conn, "ST1", since, until)) == list(
        reference_sessions(conn, "ST1", since, until))
    conn.close()


def test_a_receipt_that_is_not_json_is_named(journal: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(journal.read_bytes())
    store = Store.open(broken)
    store.conn.execute("UPDATE receipts SET receipt_json = '{not json' WHERE session_id = 'S1'")
    store.conn.commit()
    store.close()
    conn = open_read_only(broken)
    with pytest.raises(ReportError, match="receipt"):
        list(iter_sessions(conn, "ST1"))
    conn.close()
