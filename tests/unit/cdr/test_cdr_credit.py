"""After a refund the session's CDR is corrected as OCPI 2.2.1 says ("Credit CDRs"): a
Credit CDR (all the data of the CDR, its own id, `credit` true, `credit_reference_id`,
only `total_cost` negated), then a new CDR with a new id and what was paid; both
stored and queued with the corrected receipt, and accepted by the simulator's check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hw_mocks.backend_cdr import check_cdr
from terminal.cdr import loads
from terminal.payment.refunds import _corrected_cdrs
from terminal.store import Store
from tests.unit.retention_helpers import charge

D = Decimal
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _charged(store: Store, seconds: int) -> None:
    charge(store, "S-1", START, seconds, token="k1.cardtoken", source="card",
           auth={"card_scheme": "visa", "card_last4": "1111", "payment_reference": "P-1",
                 "cost_cap": D(80)})
    store.add_payment(reference="P-1", session_id="S-1", token="k1.cardtoken",
                      masked_pan="411111******1111", scheme="visa", last4="1111",
                      currency="EUR", amount_requested=D(80), at=START)


def _refund(store: Store, refund_id: str, amount: Decimal, at: datetime) -> None:
    store.add_refund(refund_id=refund_id, reference="P-1", session_id="S-1", amount=amount,
                     currency="EUR", reason=None, at=at)
    receipt = store.receipt("S-1")
    assert receipt is not None
    store.replace_receipt("S-1", receipt, at, refund_id,
                          _corrected_cdrs(store, "S-1", refund_id, at))


def test_a_refund_credits_the_cdr_and_sends_a_new_one(tmp_path) -> None:
    store = Store.open(tmp_path / "j.db")
    _charged(store, 600)
    original = loads(store.cdr("S-1"))
    charged = store.amount_charged("S-1")
    assert charged is not None and charged > 2
    later = START + timedelta(days=1)
    _refund(store, "R-1", D("1.00"), later)
    _refund(store, "R-1-again", D("0.50"), later + timedelta(hours=1))
    every = [loads(text) for text in store.cdrs(["S-1"])]
    assert [c["id"] for c in every][:2] == ["S-1", "S-1-C"]
    assert len(every) == 5
    credit, first_new, second_credit, second_new = every[1:]
    assert credit["credit"] is True and credit["credit_reference_id"] == "S-1"
    assert credit["total_cost"] == {k: -v for k, v in original["total_cost"].items()}
    same = {k: v for k, v in credit.items() if k not in (
        "id", "credit", "credit_reference_id", "total_cost", "last_updated")}
    assert same == {k: v for k, v in original.items() if k not in (
        "id", "total_cost", "last_updated")}
    assert len(first_new["id"]) == 36 and "credit" not in first_new
    assert first_new["total_cost"]["incl_vat"] == charged - D("1.00")
    assert first_new["remark"].startswith("Refunded 1.00 EUR")
    assert second_credit["credit_reference_id"] == first_new["id"]
    assert second_credit["id"] == first_new["id"] + "-C" and len(second_credit["id"]) <= 39
    assert second_new["total_cost"]["incl_vat"] == charged - D("1.50")
    assert loads(store.cdr("S-1")) == second_new  # the CDR in force
    keys = [m.idempotency_key for m in store.outbox(limit=1000) if m.kind == "cdr"]
    assert keys == ["S-1:cdr", "S-1:cdr:R-1:0", "S-1:cdr:R-1:1", "S-1:cdr:R-1-again:0",
                    "S-1:cdr:R-1-again:1"]
    known: dict[str, dict] = {}
    for message in [m for m in store.outbox(limit=1000) if m.kind == "cdr"]:
        payload = json.loads(json.dumps(message.payload))
        assert check_cdr(payload, "Europe/Amsterdam", known) == [], payload["cdr"]["id"]
        known[payload["cdr"]["id"]] = payload["cdr"]


def test_a_credit_cdr_that_does_not_negate_its_original_is_refused(tmp_path) -> None:
    store = Store.open(tmp_path / "j.db")
    _charged(store, 300)
    _refund(store, "R-1", D("0.10"), START + timedelta(days=1))
    original, credit = (json.loads(t) for t in store.cdrs(["S-1"])[:2])
    credit["total_cost"]["incl_vat"] = credit["total_cost"]["incl_vat"] + 0.01
    problems = check_cdr({"session_id": "S-1", "cdr": credit}, "Europe/Amsterdam",
                         {"S-1": original})
    assert any("is not minus the credited" in p for p in problems)
    assert check_cdr({"session_id": "S-1", "cdr": credit}, "Europe/Amsterdam", {}) != []
