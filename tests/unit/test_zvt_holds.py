"""Card holds on the ZVT path (terminal.payment.holds, terminal.payment.keeping):
`ZvtPayments` against `evterm sim zvt` as its own process, on a real Store with real
sessions (the rig of tests/unit/test_zvt_payments.py). A picked budget is the
reservation at the terminal; a session that ended without energy (not by the driver)
keeps the reservation, and the same card's retried tap takes it over (no second
Pre-authorisation at the terminal), then it is booked; at the grace deadline the kept
reservation is reversed once (settlement wakes itself for it) and the screen is told; a
hold on one path is never reused on the other."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from terminal.payment.crypto import tokenize_terminal_card
from terminal.payment.port import PreauthOutcome
from terminal.session import AuthorizeRequested
from terminal.store import PaymentStatus
from tests.integration.test_zvt_sim import start_zvt  # noqa: F401 (fixture)
from tests.unit.session_helpers import Driver
from tests.unit.test_card_holds import CHOICES, plugged_without_energy, timed_out
from tests.unit.test_card_payment import KEY, make_rig
from tests.unit.test_zvt_payments import VISA, Zvt, launch  # noqa: F401 (fixture)


@pytest.fixture
def zvt(tmp_path: Path, launch: Any) -> Any:  # noqa: F811 (the fixture imported above)
    made = Zvt(make_rig(tmp_path), launch())
    payments = made.payments
    payments.settings = replace(payments.settings, budget_choices=CHOICES,
                                hold_grace_s=180.0)
    published: list[dict[str, Any]] = []
    payments.publish = published.append
    made.published = published  # type: ignore[attr-defined]
    yield made
    made.rig.astore.close()


async def retap(zvt: Zvt, session_id: str) -> PreauthOutcome | None:
    """The same card read by the terminal again: a new session, then the kept hold."""
    rig = zvt.rig
    token = tokenize_terminal_card(VISA, KEY)
    rig.driver = Driver()
    rig.commit(rig.driver.send(AuthorizeRequested(rig.clock.now(), session_id, token, "card")),
               session_id)
    return await zvt.payments.reuse_hold(token, session_id)


def reservations(zvt: Zvt) -> list[int]:
    """The simulator's open reservations, as amounts in cents."""
    return [r["amount_minor"] for r in zvt.sim_state()["reservations"].values()]


def test_the_budget_is_reserved_kept_after_a_timeout_reused_and_booked(zvt):
    rig = zvt.rig

    async def scenario() -> None:
        outcome = await zvt.tap(amount=D("20.00"))
        assert (outcome.approved, outcome.amount) == (True, D("20.00"))
        assert outcome.approved_at == rig.clock.now() == rig.payment().approved_at
        assert reservations(zvt) == [2000]
        rig.accept(outcome)
        timed_out(rig)  # nobody plugged in
        assert await zvt.payments.settle_due() == 0  # kept for the same card
        assert reservations(zvt) == [2000] and zvt.sim_state()["reversed"] == []

        reused = await retap(zvt, "S-2")
        assert reused is not None and reused.reused
        assert (reused.amount, reused.psp_reference, reused.approved_at) == (
            D("20.00"), outcome.psp_reference, outcome.approved_at)
        assert zvt.sim_state()["next_receipt"] == 2  # no second pre-authorisation
        assert reservations(zvt) == [2000]
        moved = rig.payment("S-2")
        assert moved.reference == "S-1:pay" and moved.via == "zvt"

        rig.accept(reused, "S-2")
        rig.charge("S-2")
        assert await zvt.payments.settle_due() == 1
        await zvt.link.close()

    asyncio.run(scenario())
    booked = rig.payment("S-2")
    assert booked.status is PaymentStatus.CAPTURED and booked.amount_captured == D("2.30")
    state = zvt.sim_state()
    assert state["reservations"] == {} and state["released_minor"] == 2000 - 230
    assert [e["amount_minor"] for e in state["batch"].values()] == [230]
    assert zvt.published == [{"type": "receipt_updated", "session_id": "S-2"}]  # no release


def test_the_kept_reservation_is_reversed_once_at_the_grace_deadline(zvt):
    rig = zvt.rig

    async def scenario() -> PreauthOutcome | None:
        rig.accept(await zvt.tap())
        timed_out(rig)
        rig.clock.advance(179 - rig.clock.t_s)
        assert await zvt.payments.settle_due() == 0
        rig.clock.advance(1)  # 180 s after the approval
        assert await zvt.payments.settle_due() == 1
        assert await zvt.payments.settle_due() == 0
        again = await retap(zvt, "S-2")
        await zvt.link.close()
        return again

    assert asyncio.run(scenario()) is None  # a new tap now needs a new reservation
    assert rig.payment().status is PaymentStatus.VOIDED
    state = zvt.sim_state()
    assert state["reservations"] == {} and state["reversed"] == [1] and state["batch"] == {}
    assert zvt.published == [{"type": "hold_released", "session_id": "S-1",
                              "amount": "50.00", "currency": "EUR"}]


def test_settlement_wakes_itself_at_the_grace_deadline(zvt):
    rig = zvt.rig
    zvt.payments.settings = replace(zvt.payments.settings, hold_grace_s=130.2)

    async def scenario() -> None:
        rig.accept(await zvt.tap())
        timed_out(rig)
        wake = asyncio.Event()
        task = asyncio.create_task(zvt.payments.run(3600, wake))
        for _ in range(100):  # the first round keeps the hold
            await asyncio.sleep(0.02)
            if zvt.link._armed.is_set():
                break
        assert rig.payment().status is PaymentStatus.APPROVED
        rig.clock.advance(50)  # past the deadline: only the wake-up can settle now
        for _ in range(300):
            await asyncio.sleep(0.02)
            if rig.payment().status is PaymentStatus.VOIDED:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await zvt.link.close()

    asyncio.run(scenario())
    assert rig.payment().status is PaymentStatus.VOIDED
    assert zvt.sim_state()["reversed"] == [1]


def test_a_hold_is_reused_only_on_its_own_path_and_never_after_the_drivers_cancel(zvt):
    rig = zvt.rig
    token = tokenize_terminal_card(VISA, KEY)

    async def scenario() -> None:
        rig.accept(await zvt.tap())
        timed_out(rig)
        assert rig.store.kept_hold(token) is None  # the built-in path's ('gateway') look-up
        found = rig.store.kept_hold(token, "zvt")
        assert found is not None and found[0].reference == "S-1:pay"
        assert await rig.payments.reuse_hold(token, "S-9") is None  # CardPayments
        rig.clock.advance(200)
        assert await zvt.payments.settle_due() == 1  # released at the deadline

        rig.accept(await zvt.tap("S-3"), "S-3")
        rig.stop_before_energy("S-3")  # the driver's own cancel: released at once
        assert await retap(zvt, "S-4") is None
        assert await zvt.payments.settle_due() == 1
        await zvt.link.close()

    asyncio.run(scenario())
    assert zvt.sim_state()["reversed"] == [1, 2]


def test_a_flat_fee_session_without_energy_is_reversed_never_booked(zvt):
    """No energy = nothing charged: the receipt says 0.00 and the reservation is
    reversed (at the grace deadline: the vehicle drew nothing), never booked."""
    rig = zvt.rig

    async def scenario() -> dict[str, Any]:
        rig.accept(await zvt.tap())
        receipt = plugged_without_energy(rig)
        assert await zvt.payments.settle_due() == 0  # kept until the deadline
        rig.clock.advance(200)
        assert await zvt.payments.settle_due() == 1
        await zvt.link.close()
        return receipt

    receipt = asyncio.run(scenario())
    assert receipt["amount_charged"] == "0.00" and receipt["fees"]
    assert rig.payment().status is PaymentStatus.VOIDED
    state = zvt.sim_state()
    assert state["batch"] == {} and state["reversed"] == [1] and state["reservations"] == {}
