"""A payment's NotifySettlement is queued by the store in the same transaction as the
final status it reports (terminal.store.settlements): one commit holds both, a failure of
either leaves neither, and each final status is reported once."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from terminal.backend.settlement import NotifySettlement
from terminal.store import Store
from tests.unit.session_helpers import T0
from tests.unit.test_store import journal_session
from tests.unit.test_store_payments import add_payment

D = Decimal


def settlements(store: Store) -> list:
    return [m for m in store.outbox() if m.kind == "NotifySettlement"]


def open_store(tmp_path) -> Store:
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    return store


def test_a_capture_queues_one_settled_message_with_the_receipt(tmp_path):
    store = open_store(tmp_path)
    store.conn.execute("UPDATE sessions SET receipt_url = 'https://r.example/S-1'")
    store.add_receipt("S-1", ({"amount_charged": "2.30"}, "text"), D("2.30"), T0)
    store.update_payment("S-1:pay", T0, status="approved", amount_approved=D("50.00"),
                         psp_reference="PSP-1")
    store.update_payment("S-1:pay", T0, status="capture_pending", amount_captured=D("2.30"))
    assert settlements(store) == []  # nothing final yet
    store.update_payment("S-1:pay", T0, status="captured")
    store.update_payment("S-1:pay", T0, status="captured", envelope_json=None)  # again
    (queued,) = settlements(store)
    assert queued.session_id == "S-1" and queued.seq_no is None
    assert queued.idempotency_key == "S-1:pay:settlement:Settled"
    message = NotifySettlement.from_json(queued.payload)
    assert (message.status, message.settlement_amount, message.psp_ref) == (
        "Settled", D("2.30"), "PSP-1")
    assert (message.receipt_id, message.receipt_url) == ("S-1", "https://r.example/S-1")


@pytest.mark.parametrize(("status", "changes", "reported"), [
    ("voided", {}, "Canceled"),
    ("declined", {"reason": "do_not_honor"}, "Rejected"),
    ("failed", {"reason": "capture refused: x"}, "Failed"),
])
def test_every_final_status_is_reported_once(tmp_path, status, changes, reported):
    store = open_store(tmp_path)
    store.update_payment("S-1:pay", T0, status=status, **changes)
    store.update_payment("S-1:pay", T0, status=status)
    (queued,) = settlements(store)
    assert queued.payload["status"] == reported


def test_a_failed_payment_repaired_later_reports_its_new_end_too(tmp_path):
    store = open_store(tmp_path)
    store.update_payment("S-1:pay", T0, status="failed", amount_captured=D("2.30"),
                         reason="capture refused: gateway_error")
    store.update_payment("S-1:pay", T0, status="captured")
    assert [m.payload["status"] for m in settlements(store)] == ["Failed", "Settled"]


def test_the_status_and_its_message_are_one_commit(tmp_path):
    store = open_store(tmp_path)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    store.update_payment("S-1:pay", T0, status="voided")
    store.conn.set_trace_callback(None)
    begin = statements.index("BEGIN IMMEDIATE")
    commits = [i for i, s in enumerate(statements) if s == "COMMIT"]
    update = next(i for i, s in enumerate(statements) if s.startswith("UPDATE payments"))
    insert = next(i for i, s in enumerate(statements) if s.startswith("INSERT INTO outbox"))
    assert commits == [len(statements) - 1]  # one commit, at the end
    assert begin < update < insert < commits[0]


def test_when_the_message_cannot_be_queued_the_status_does_not_change(tmp_path):
    store = open_store(tmp_path)
    # the outbox refuses the message (its key already taken): the whole step rolls back
    store.add_outbox("NotifySettlement", "S-1:pay:settlement:Canceled", {}, T0, "S-1")
    with pytest.raises(sqlite3.IntegrityError):
        store.update_payment("S-1:pay", T0, status="voided")
    assert store.payment(reference="S-1:pay").status == "requested"
    assert len(settlements(store)) == 1  # only the planted one


def test_an_outbox_that_fails_rolls_the_status_back_for_good(tmp_path):
    store = open_store(tmp_path)
    store.conn.execute(
        "CREATE TRIGGER refuse AFTER INSERT ON outbox WHEN NEW.kind = 'NotifySettlement' "
        "BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        store.update_payment("S-1:pay", T0, status="declined", reason="do_not_honor")
    store.conn.execute("DROP TRIGGER refuse")
    assert store.payment(reference="S-1:pay").status == "requested"
    assert settlements(store) == []
    # a reopened journal sees the same: nothing half-written
    store.close()
    again = Store.open(tmp_path / "evterm.db")
    assert again.payment(reference="S-1:pay").status == "requested"
    assert settlements(again) == []
