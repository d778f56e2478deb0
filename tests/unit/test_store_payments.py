"""Card payments and refunds in the journal: what settlement finds due, idempotent refunds,
typed payment rows stored as before."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from decimal import Decimal

import pytest

from terminal.kernel.clock import iso_utc
from terminal.store import MIGRATIONS, PaymentRow, PaymentStatus, Store
from tests.unit.session_helpers import T0
from tests.unit.test_store import journal_session

D = Decimal


def add_payment(store: Store, session_id: str = "S-1", reference: str = "S-1:pay") -> None:
    store.add_payment(reference=reference, session_id=session_id, token="k1." + "ab" * 20,
                      masked_pan="411111******1111", scheme="visa", last4="1111",
                      currency="EUR", amount_requested=D("50.00"), at=T0)


def test_a_payment_is_recorded_and_updated(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    store.update_payment("S-1:pay", T0, status="approved", amount_approved=D("50.00"),
                         psp_reference="PSP-1")
    row = store.payment(session_id="S-1")
    assert row.status == "approved" and row.amount_approved == D("50.00")
    assert store.payment(psp_reference="PSP-1").reference == "S-1:pay"
    assert store.payment(reference="nope") is None


def test_only_known_payment_columns_can_be_updated(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    with pytest.raises(ValueError, match="token"):
        store.update_payment("S-1:pay", T0, token="other")
    with pytest.raises(ValueError, match="no payment"):
        store.update_payment("S-9:pay", T0, status="voided")


def test_a_status_outside_the_lifecycle_is_refused(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    with pytest.raises(sqlite3.IntegrityError):
        store.update_payment("S-1:pay", T0, status="paid")


def test_settlement_waits_for_the_receipt_of_a_session_with_energy(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)  # closed, with energy, no receipt yet
    add_payment(store)
    store.update_payment("S-1:pay", T0, status="approved", amount_approved=D("50.00"))
    assert store.payments_to_settle() == []
    store.add_receipt("S-1", ({"amount_charged": "1.00"}, "text"), Decimal("1.00"), T0)
    assert [p.reference for p in store.payments_to_settle()] == ["S-1:pay"]
    store.update_payment("S-1:pay", T0, status="captured", amount_captured=D("1.00"))
    assert store.payments_to_settle() == []


def test_pending_captures_and_interrupted_requests_are_due(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)  # still 'requested' although its session closed: interrupted
    assert [p.status for p in store.payments_to_settle()] == ["requested"]
    store.update_payment("S-1:pay", T0, status="capture_pending", amount_captured=D("1.00"))
    assert [p.status for p in store.payments_to_settle()] == ["capture_pending"]


def test_refunds_are_recorded_once_and_the_receipt_replaced(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    store.add_receipt("S-1", ({"amount_charged": "1.00"}, "old"), Decimal("1.00"), T0)
    assert store.add_refund(refund_id="R-1", reference="S-1:pay", session_id="S-1",
                            amount=D("0.40"), currency="EUR", reason="goodwill", at=T0)
    assert not store.add_refund(refund_id="R-1", reference="S-1:pay", session_id="S-1",
                                amount=D("0.40"), currency="EUR", reason="goodwill", at=T0)
    assert [r["amount"] for r in store.refunds("S-1")] == ["0.40"]
    store.replace_receipt("S-1", ({"amount_paid": "0.60"}, "new"), T0, "R-1")
    assert store.receipt("S-1") == ({"amount_paid": "0.60"}, "new")
    keys = [m.idempotency_key for m in store.outbox() if m.kind == "Receipt"]
    assert keys == ["S-1:receipt", "S-1:receipt:R-1"]


def test_an_old_database_gains_the_payment_tables(tmp_path):
    path = tmp_path / "evterm.db"
    conn = sqlite3.connect(path)
    conn.executescript(f"BEGIN;{MIGRATIONS[0]};PRAGMA user_version=1;COMMIT;")
    conn.close()
    store = Store.open(path)
    journal_session(store)
    add_payment(store)
    assert store.payment(session_id="S-1").status == "requested"


# ---- typed rows ------------------------------------------------------------------------


def test_the_statuses_are_the_strings_the_table_allows():
    allowed = re.search(r"status IN \(([^)]*)\)", MIGRATIONS[1])
    assert allowed is not None
    assert [s.value for s in PaymentStatus] == re.findall(r"'(\w+)'", allowed.group(1))


def test_a_payment_row_is_typed_and_stored_as_before(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    store.update_payment("S-1:pay", T0, status=PaymentStatus.APPROVED,
                         amount_approved=D("25.00"), offline=True,
                         envelope_json={"reference": "S-1:pay", "box": "x"})
    row = store.payment(reference="S-1:pay")
    assert isinstance(row, PaymentRow) and row.status is PaymentStatus.APPROVED
    assert (row.amount_requested, row.amount_approved, row.amount_captured) == (
        D("50.00"), D("25.00"), None)
    assert str(row.amount_requested) == "50.00"  # the exponent as stored
    assert (row.offline, row.psp_reference, row.reason) == (True, None, None)
    assert row.envelope == {"reference": "S-1:pay", "box": "x"}
    assert row.created_at == row.updated_at == T0
    raw = store.conn.execute(
        "SELECT status, amount_requested, amount_approved, offline, envelope_json, created_at "
        "FROM payments").fetchone()
    assert raw == ("approved", "50.00", "25.00", 1,
                   '{"box": "x", "reference": "S-1:pay"}', iso_utc(T0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = PaymentStatus.VOIDED  # type: ignore[misc]


def test_every_status_round_trips_as_its_string(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    assert store.payment(session_id="S-1").status is PaymentStatus.REQUESTED
    for status in PaymentStatus:
        store.update_payment("S-1:pay", T0, status=status)
        assert store.payment(session_id="S-1").status is status
        assert store.conn.execute("SELECT status FROM payments").fetchone() == (status.value,)


def test_a_change_to_none_clears_the_column(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    store.update_payment("S-1:pay", T0, amount_captured=D("1.00"), envelope_json={"a": 1})
    store.update_payment("S-1:pay", T0, amount_captured=None, envelope_json=None)
    row = store.payment(session_id="S-1")
    assert (row.amount_captured, row.envelope_json, row.envelope) == (None, None, None)
