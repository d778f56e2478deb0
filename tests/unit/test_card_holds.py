"""Card holds a driver can trust (terminal.payment.holds, issue 18): the policy itself,
then `CardPayments` with it on a real Store and a scripted gateway (the rig of
tests/unit/test_card_payment.py): a chosen budget is the hold and the cap, a session that
ended without energy keeps its hold for the same card's next tap within the grace period
(one pre-authorisation at the gateway), the hold is voided at the grace deadline, a
driver's own cancel voids at once; and the session machine ends a session still waiting
at the deadline. Public test card numbers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from terminal.billing import bill_from_row
from terminal.config import parse_config
from terminal.config.schema import ConfigError
from terminal.payment.card import PreauthOutcome
from terminal.payment.crypto import tokenize
from terminal.payment.holds import (
    BudgetError,
    HoldPolicy,
    HoldStep,
    budget_problems,
    parse_budget_choices,
    released,
)
from terminal.session import Authorization, AuthorizeRequested, Phase, StopReason
from terminal.session.records import CloseSession
from tests.unit.session_helpers import T0, Driver
from tests.unit.test_card_payment import KEY, TERMS, Rig, emv, make_rig

D = Decimal
CHOICES = (D("20.00"), D("50.00"), D("80.00"))
POLICY = HoldPolicy(D("50.00"), CHOICES, 180.0)


# ---- the policy ----------------------------------------------------------------------------


def test_budget_choices_are_read_in_order():
    assert parse_budget_choices("20.00, 50.00,80") == (D("20.00"), D("50.00"), D("80"))
    assert parse_budget_choices("  ") == ()


@pytest.mark.parametrize(("text", "problem"), [
    ("20, x", "'x' is not an amount"),
    ("0, 50", "'0': expected an amount above 0 and at most 1000"),
    ("-5", "above 0"),
    ("1000.01", "at most 1000"),
    ("NaN", "above 0"),
    ("20.005", "at most 2 decimals"),
    ("20, 20.00", "'20.00' is given twice"),
    ("1, 2, 3, 4, 5", "at most 4 amounts, got 5"),
])
def test_bad_budget_choices_say_what_is_wrong(text, problem):
    with pytest.raises(ValueError) as caught:
        parse_budget_choices(text)
    assert problem in str(caught.value)


def test_the_default_hold_must_be_one_of_the_choices():
    assert budget_problems("20.00, 50.00, 80.00", "50.00") == []
    assert budget_problems("", "50.00") == []  # no picker
    [problem] = budget_problems("20.00, 80.00", "50.00")
    assert "expected preauth_amount (50.00" in problem


STATION = {"id": "DE*EVT*E1", "operator": "EVT Test"}


def test_the_config_refuses_choices_without_the_default_hold():
    with pytest.raises(ConfigError) as caught:
        parse_config({"station": STATION, "payment": {"budget_choices": "20.00, 80.00"}})
    assert "payment.budget_choices" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config({"station": STATION, "payment": {"budget_choices": "20, abc"}})
    assert "'abc' is not an amount" in str(caught.value)
    config = parse_config({"station": STATION})
    assert (config.payment.budget_choices, config.payment.hold_grace_s) == (
        "20.00, 50.00, 80.00", 180.0)


def test_the_hold_is_the_budget_picked_else_the_default():
    assert POLICY.hold_amount(None) == D("50.00")
    assert POLICY.hold_amount(D("20")) == D("20.00")
    with pytest.raises(BudgetError, match=r"amount: 30 is not a budget offered here "
                                          r"\(offered: 20.00, 50.00, 80.00\)"):
        POLICY.hold_amount(D("30"))
    with pytest.raises(BudgetError, match="offered: none"):
        HoldPolicy(D("50.00"), (), 180.0).check_budget(D("50.00"))


@pytest.mark.parametrize(("delivered", "reason", "after_s", "step"), [
    (D("30"), "EVDisconnected", 10, HoldStep.CAPTURE),
    (D("30"), "Local", 10, HoldStep.CAPTURE),
    (D(0), "Local", 10, HoldStep.VOID),  # the driver's own cancel: at once
    (D(0), "Timeout", 10, HoldStep.KEEP),  # not plugged in: kept for a retried tap
    (D(0), "ChargerFault", 179, HoldStep.KEEP),
    (D(0), "Timeout", 180, HoldStep.VOID),  # the grace period is over
    (D(0), "Timeout", 4000, HoldStep.VOID),
])
def test_settlement_of_an_approved_hold(delivered, reason, after_s, step):
    now = T0 + timedelta(seconds=after_s)
    assert POLICY.settlement(delivered_wh=delivered, stop_reason=reason, approved_at=T0,
                             now=now) is step
    assert POLICY.reusable(delivered_wh=delivered, stop_reason=reason, approved_at=T0,
                           now=now) is (step is HoldStep.KEEP)


def test_a_hold_without_a_journaled_approval_time_is_never_kept():
    assert POLICY.settlement(delivered_wh=D(0), stop_reason="Timeout", approved_at=None,
                             now=T0) is HoldStep.VOID


def test_released_is_reserved_minus_charged():
    assert released(D("50.00"), D("12.34")) == D("37.66")
    assert released(D("20.00"), D("20.00")) == D(0)
    assert released(D("20.00"), D("25.00")) == D(0)


# ---- the session machine: the grace deadline ends a session still waiting ----------------


def waiting(hold_until_s: float) -> Driver:
    driver = Driver()
    driver.authorize(hold_until=T0 + timedelta(seconds=hold_until_s))
    return driver


def test_a_session_still_waiting_ends_at_the_holds_deadline():
    driver = waiting(60)
    assert driver.tick(59, ev="A").state.phase is Phase.AUTHORIZED
    ended = driver.tick(60, ev="A").state
    assert (ended.phase, ended.stop_reason) == (Phase.COMPLETED, StopReason.TIMEOUT)
    [close] = driver.records(CloseSession)
    assert "grace period" in close.detail


def test_a_vehicle_that_never_draws_power_is_stopped_at_the_holds_deadline():
    driver = waiting(60)
    driver.tick(1, 10_000, 0)  # plugged in: energy offered, the vehicle draws nothing
    assert driver.state.phase is Phase.SUSPENDED_EV
    driver.tick(59, 10_000, 0)
    assert driver.state.phase is Phase.SUSPENDED_EV
    stopped = driver.tick(60, 10_000, 0).state
    assert stopped.stop_reason is StopReason.TIMEOUT


def test_a_session_that_charges_outlives_the_holds_deadline():
    driver = waiting(60)
    driver.tick(1, 10_000, 0)
    driver.tick(2, 10_001, 50_000)
    assert driver.tick(120, 10_500, 50_000).state.phase is Phase.CHARGING


def test_the_deadline_survives_the_states_json():
    auth = Authorization("T", "card", hold_until=T0)
    assert Authorization.from_json(json.loads(json.dumps(auth.to_json()))) == auth
    assert "hold_until" not in Authorization("T", "card").to_json()


# ---- card payments with the policy ---------------------------------------------------------


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    made = make_rig(tmp_path)
    made.payments.settings = replace(made.payments.settings, budget_choices=CHOICES,
                                     hold_grace_s=180.0)
    published: list[dict[str, Any]] = []
    made.payments.publish = published.append
    made.published = published  # type: ignore[attr-defined]
    yield made
    made.astore.close()


def timed_out(rig: Rig, session_id: str = "S-1", at_s: float = 130) -> None:
    """No vehicle plugged in: the plug-in timeout ends the session without energy."""
    rig.clock.advance(at_s - rig.clock.t_s)
    rig.commit(rig.driver.tick(at_s, ev="A"), session_id)
    row = rig.store.session(session_id)
    assert row["closed_at"] is not None and row["stop_reason"] == "Timeout"


def retap(rig: Rig, session_id: str) -> PreauthOutcome | None:
    """The same card again: a new session opens, then the kept hold is asked for."""
    token = tokenize(emv().card, KEY)
    rig.driver = Driver()
    rig.commit(rig.driver.send(AuthorizeRequested(rig.clock.now(), session_id, token, "card")),
               session_id)
    return rig.run(rig.payments.reuse_hold(token, session_id))


def test_a_budget_picked_is_the_amount_asked_and_the_cap(rig):
    token = tokenize(emv().card, KEY)
    rig.commit(rig.driver.send(AuthorizeRequested(T0, "S-1", token, "card")), "S-1")
    outcome = rig.run(rig.payments.preauthorize("S-1", token, emv(), D("20.00")))
    assert (outcome.approved, outcome.amount) == (True, D("20.00"))
    [request] = rig.gateway.requests("preauthorize")
    assert request.amount == D("20.00")
    row = rig.payment()
    assert (row.amount_requested, row.amount_approved, row.approved_at) == (
        D("20.00"), D("20.00"), rig.clock.now())


def test_a_budget_not_offered_is_refused_before_anything_is_journaled(rig):
    token = tokenize(emv().card, KEY)
    rig.commit(rig.driver.send(AuthorizeRequested(T0, "S-1", token, "card")), "S-1")
    with pytest.raises(BudgetError):
        rig.run(rig.payments.preauthorize("S-1", token, emv(), D("30.00")))
    assert rig.store.payment(session_id="S-1") is None and rig.gateway.calls == []


def test_a_timed_out_session_keeps_its_hold_and_the_retried_tap_reuses_it(rig):
    rig.accept(rig.tap())
    timed_out(rig)
    assert rig.settle() == 0  # kept: no void yet
    assert rig.gateway.ops() == ["preauthorize"] and rig.payment().status == "approved"
    outcome = retap(rig, "S-2")
    assert outcome is not None and outcome.reused
    assert (outcome.amount, outcome.psp_reference, outcome.approved_at) == (
        D("50.00"), "PSP-1", T0)
    moved = rig.store.payment(session_id="S-2")
    assert moved is not None and moved.reference == "S-1:pay"
    assert rig.store.payment(session_id="S-1") is None
    [audit] = [json.loads(row[0]) for row in rig.store.conn.execute(
        "SELECT detail FROM audit WHERE kind = 'payment_moved'")]
    assert audit == {"reference": "S-1:pay", "from_session": "S-1", "to_session": "S-2"}
    # the new session charges: the one hold is captured, by its own reference
    rig.accept(outcome, "S-2")
    rig.charge("S-2")
    assert rig.settle() == 1
    assert rig.gateway.ops() == ["preauthorize", "capture"]
    assert rig.gateway.requests("capture")[0].reference == "S-1:pay"
    assert rig.store.conn.execute("SELECT count(*) FROM payments").fetchone()[0] == 1


def test_the_kept_hold_is_voided_at_the_grace_deadline(rig):
    rig.accept(rig.tap())
    timed_out(rig)
    rig.clock.advance(179 - rig.clock.t_s)
    assert rig.settle() == 0
    rig.clock.advance(1)
    assert rig.settle() == 1
    assert rig.gateway.ops() == ["preauthorize", "void"] and rig.payment().status == "voided"
    assert rig.published == [{"type": "hold_released", "session_id": "S-1",
                              "amount": "50.00", "currency": "EUR"}]
    assert retap(rig, "S-2") is None  # a new tap now needs a new hold


def test_a_hold_past_its_deadline_is_not_reused(rig):
    rig.accept(rig.tap())
    timed_out(rig)
    rig.clock.advance(60)  # 190 s after the approval
    assert retap(rig, "S-2") is None
    assert rig.payment("S-1").status == "approved"  # settlement voids it next round


def test_the_drivers_own_cancel_voids_at_once_and_is_not_reused(rig):
    rig.accept(rig.tap())
    rig.stop_before_energy()
    assert retap(rig, "S-2") is None
    assert rig.settle() == 1 and rig.gateway.ops() == ["preauthorize", "void"]


def test_another_cards_tap_does_not_reuse_the_hold(rig):
    rig.accept(rig.tap())
    timed_out(rig)
    other = tokenize(emv("5555555555554444", scheme="mastercard").card, KEY)
    rig.driver = Driver()
    rig.commit(rig.driver.send(AuthorizeRequested(rig.clock.now(), "S-2", other, "card")),
               "S-2")
    assert rig.run(rig.payments.reuse_hold(other, "S-2")) is None


def test_settlement_wakes_itself_at_the_grace_deadline(rig):
    """Nothing but the deadline wakes settlement: the kept hold is voided then."""
    rig.accept(rig.tap())
    timed_out(rig)

    async def scenario() -> None:
        wake = asyncio.Event()
        task = asyncio.create_task(rig.payments.run(3600, wake))
        await asyncio.sleep(0.05)  # the first round keeps the hold
        assert rig.payment().status == "approved"
        rig.clock.advance(50)  # 180 s after the approval: the wake-up is already due
        for _ in range(200):
            await asyncio.sleep(0.01)
            if rig.payment().status == "voided":
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    rig.payments.settings = replace(rig.payments.settings, hold_grace_s=130.2)
    rig.run(scenario())
    assert rig.payment().status == "voided"


# ---- no energy, nothing charged (terminal.receipt.build) ----------------------------------


def plugged_without_energy(rig: Rig, session_id: str = "S-1") -> dict[str, Any]:
    """Plugged in, the meter never moves, unplugged: a start reading and 0 Wh on the
    FLAT-fee tariff (2.00 per session); the receipt is journaled as the daemon does."""
    d = rig.driver
    rig.commit(d.tick(1, 10_000, 0), session_id, tariff_json=TERMS.to_json())
    rig.commit(d.tick(2, 10_000, 0), session_id)
    rig.commit(d.tick(3, 10_000, 0, ev="A", output_on=False), session_id)
    row = rig.store.session(session_id)
    assert row is not None and row["closed_at"] is not None and row["meter_start_wh"]
    bill = bill_from_row(row, [r for _, r in rig.store.readings(session_id)])
    rig.store.add_receipt(session_id, bill.receipt, bill.amount_charged, rig.clock.now())
    return bill.receipt_json


def test_a_flat_fee_session_without_energy_charges_nothing_and_is_voided(rig):
    rig.accept(rig.tap())
    receipt = plugged_without_energy(rig)
    assert receipt["fees"] and receipt["amount_charged"] == "0.00"
    assert receipt["nothing_charged"] is True
    assert (receipt["payment"]["reserved"], receipt["payment"]["charged"],
            receipt["payment"]["released"]) == ("50.00", "0.00", "50.00")
    assert rig.store.amount_charged("S-1") == D(0)
    assert rig.settle() == 0  # the vehicle drew nothing: kept for a retried tap
    rig.clock.advance(200)  # past the grace deadline
    assert rig.settle() == 1
    assert rig.gateway.ops() == ["preauthorize", "void"]  # never a capture
    assert rig.payment().status == "voided"
