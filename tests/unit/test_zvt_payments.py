"""ZvtPayments' state machine against `evterm sim zvt` as its own process: a card read
by the terminal -> token, pre-authorisation approved / approved in part / declined with
the terminal's result code / card removed, booking of the bill's amount (the rest
released), reversal when nothing was charged, a connection dropped mid-preauth and
mid-booking (the outcome learnt from the terminal, nothing done twice), the card wait
aborted for a payment and re-armed after it. The journal (a real Store) and the
simulator's state are both checked; the sessions come from the real session machine
(tests.unit.test_card_payment's rig)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from drivers.readers.events import ReaderEvent, TerminalCard, TerminalCardTap
from drivers.zvt.client import ZvtClient
from terminal.payment.crypto import tokenize_terminal_card
from terminal.payment.port import PaymentSettings, PreauthOutcome
from terminal.payment.zvt import ZvtPayments, reason_of
from terminal.payment.zvt_link import ZvtLink
from terminal.session import AuthorizeRequested
from terminal.store import PaymentStatus
from terminal.store.retention import RetentionTables
from tests.integration.test_zvt_sim import ZvtSim, start_zvt  # noqa: F401 (fixture)
from tests.unit.session_helpers import T0, Driver
from tests.unit.test_card_payment import CHARGED, KEY, PREAUTH, STATION, Rig, make_rig

TID = 29001006
VISA = TerminalCard(0x0A, "Visa", "************0010", "2812", 1, "visa")


class Zvt:
    """The card-payment rig (store, sessions) with ZvtPayments on the simulator."""

    def __init__(self, rig: Rig, sim: ZvtSim) -> None:
        self.rig, self.sim = rig, sim
        client = ZvtClient("127.0.0.1", sim.port, currency="EUR", response_timeout_s=5.0)
        self.link = ZvtLink(client, read_card_timeout_s=30, retry_s=0.2,
                            pause_after_card_s=0.0)
        settings = PaymentSettings(station_id=STATION, currency="EUR", preauth_amount=PREAUTH,
                                   offline_floor_limit=None, request_timeout_s=2.0)
        self.payments = ZvtPayments(settings, KEY, self.link, rig.astore, rig.clock)

    async def tap(self, session_id: str = "S-1", card: TerminalCard = VISA,
                  amount: D | None = None) -> PreauthOutcome:
        token = tokenize_terminal_card(card, KEY)
        self.rig.driver = Driver()
        self.rig.commit(self.rig.driver.send(AuthorizeRequested(T0, session_id, token, "card")),
                        session_id)
        return await self.payments.preauthorize(session_id, token, card, amount)

    def sim_state(self) -> dict[str, Any]:
        return self.sim.control("status")


@pytest.fixture
def launch(request: pytest.FixtureRequest) -> Any:
    """start_zvt(*options) -> ZvtSim: `evterm sim zvt` as its own process."""
    return request.getfixturevalue("start_zvt")


def zvt_rig(tmp_path: Path, sim: ZvtSim) -> Zvt:
    return Zvt(make_rig(tmp_path), sim)


def test_approved_then_the_bill_is_booked_and_the_rest_released(tmp_path, launch) -> None:
    zvt = zvt_rig(tmp_path, launch())
    rig = zvt.rig

    async def scenario() -> PreauthOutcome:
        outcome = await zvt.tap()
        assert rig.payment().status is PaymentStatus.APPROVED
        rig.accept(outcome)
        rig.charge()
        assert await zvt.payments.settle_due() == 1
        await zvt.link.close()
        return outcome

    outcome = asyncio.run(scenario())
    payment = rig.payment()
    assert outcome == PreauthOutcome(True, None, PREAUTH, f"zvt:{TID}:0001", scheme="visa",
                                     last4="0010", approved_at=payment.approved_at)
    assert payment.approved_at is not None  # the hold's grace counts from here
    assert payment.status is PaymentStatus.CAPTURED and payment.via == "zvt"
    assert payment.amount_captured == CHARGED and payment.masked_pan == "************0010"
    pt = payment.pt
    assert (pt["receipt_number"], pt["trace_number"], pt["terminal_id"]) == (1, 1, TID)
    assert pt["card_type"] == 0x0A and pt["lines"][0] == "** RESERVIERUNG **"
    assert pt["booking"]["amount"] == "2.30" and pt["booking"]["lines"][0] == "** BUCHUNG **"
    state = zvt.sim_state()
    assert state["reservations"] == {}
    assert [e["amount_minor"] for e in state["batch"].values()] == [230]
    assert state["released_minor"] == 5000 - 230

    # retention: the terminal's masked numbers go with the session's identifiers
    store = rig.store
    store.conn.execute("UPDATE outbox SET delivered_at = created_at")
    later = rig.clock.now() + timedelta(days=400)
    assert RetentionTables(store).anonymise(later, later) > 0
    kept = rig.payment().pt
    assert "masked_pan" not in kept and "masked_pan" not in kept["booking"]
    assert kept["booking"]["lines"][0] == "** BUCHUNG **"  # the receipt's lines stay


def test_partial_approval_is_the_cap_and_a_decline_names_the_reason(tmp_path,
                                                                    launch) -> None:
    sim = launch("--partial", "20.00")
    zvt = zvt_rig(tmp_path, sim)

    async def scenario() -> tuple[PreauthOutcome, ...]:
        partial = await zvt.tap("S-1")
        sim.control("next", decline="05")
        declined = await zvt.tap("S-2")
        sim.control("next", decline="78")
        expired = await zvt.tap("S-3")
        sim.control("next", card_removed=True)
        removed = await zvt.tap("S-4")
        await zvt.link.close()
        return partial, declined, expired, removed

    partial, declined, expired, removed = asyncio.run(scenario())
    assert partial.approved and partial.amount == D("20.00")
    assert zvt.rig.payment("S-1").amount_approved == D("20.00")
    assert (declined.approved, declined.reason_code) == (False, "do_not_honor")
    assert expired.reason_code == "expired_card" and removed.reason_code == "tap_again"
    row = zvt.rig.payment("S-2")
    assert row.status is PaymentStatus.DECLINED and row.reason == "do_not_honor"
    assert row.pt["result_code"] == 0x05 and "do not honour" in row.pt["result_text"]
    assert reason_of(0x9C) == "payment_unavailable" and reason_of(0x33) == "declined"


def test_nothing_charged_is_reversed_once(tmp_path, launch) -> None:
    zvt = zvt_rig(tmp_path, launch())
    rig = zvt.rig

    async def scenario() -> int:
        rig.accept(await zvt.tap())
        rig.stop_before_energy()
        done = await zvt.payments.settle_due()
        again = await zvt.payments.settle_due()  # nothing left to do
        await zvt.link.close()
        return done + again

    assert asyncio.run(scenario()) == 1
    payment = rig.payment()
    assert payment.status is PaymentStatus.VOIDED
    assert payment.pt["reversal"]["receipt_number"] == 1
    state = zvt.sim_state()
    assert state["reservations"] == {} and state["batch"] == {} and state["reversed"] == [1]


def test_a_preauth_whose_answer_was_lost_is_learnt_from_the_terminal(tmp_path,
                                                                     launch) -> None:
    sim = launch()
    zvt = zvt_rig(tmp_path, sim)
    rig = zvt.rig

    async def scenario() -> PreauthOutcome:
        sim.control("next", drop_after="status")  # reserved, the answer cut off
        outcome = await zvt.tap()
        rig.accept(outcome)
        rig.stop_before_energy()
        await zvt.payments.settle_due()
        await zvt.link.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert outcome.approved and outcome.amount == PREAUTH
    assert outcome.psp_reference == f"zvt:{TID}:0001"
    assert rig.payment().status is PaymentStatus.VOIDED
    assert zvt.sim_state()["reservations"] == {}


def test_a_preauth_dropped_before_the_card_holds_nothing(tmp_path, launch) -> None:
    sim = launch()
    zvt = zvt_rig(tmp_path, sim)

    async def scenario() -> PreauthOutcome:
        sim.control("next", drop_after="intermediate")
        outcome = await zvt.tap()
        await zvt.link.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert (outcome.approved, outcome.reason_code) == (False, "payment_unavailable")
    assert zvt.rig.payment().status is PaymentStatus.DECLINED
    assert zvt.sim_state()["reservations"] == {}


def test_a_booking_whose_answer_was_lost_is_not_booked_twice(tmp_path, launch) -> None:
    sim = launch()
    zvt = zvt_rig(tmp_path, sim)
    rig = zvt.rig

    async def scenario() -> None:
        rig.accept(await zvt.tap())
        rig.charge()
        sim.control("next", drop_after="status")  # booked, the answer cut off
        assert await zvt.payments.settle_due() == 1
        assert await zvt.payments.settle_due() == 0
        await zvt.link.close()

    asyncio.run(scenario())
    payment = rig.payment()
    assert payment.status is PaymentStatus.CAPTURED and payment.pt["booking_sent"] is True
    assert payment.pt["booking"]["amount"] == "2.30"
    state = zvt.sim_state()
    assert [e["amount_minor"] for e in state["batch"].values()] == [230]


def test_a_booking_dropped_before_it_was_done_is_sent_again(tmp_path, launch) -> None:
    sim = launch()
    zvt = zvt_rig(tmp_path, sim)
    rig = zvt.rig

    async def scenario() -> tuple[int, int]:
        rig.accept(await zvt.tap())
        rig.charge()
        sim.control("next", drop_after="ack")  # the terminal took it, then the line went
        first = await zvt.payments.settle_due()
        second = await zvt.payments.settle_due()
        await zvt.link.close()
        return first, second

    assert asyncio.run(scenario()) == (0, 1)
    assert rig.payment().status is PaymentStatus.CAPTURED
    assert [e["amount_minor"] for e in zvt.sim_state()["batch"].values()] == [230]


def test_the_card_wait_is_aborted_for_a_payment_and_re_armed(tmp_path, launch) -> None:
    sim = launch()
    zvt = zvt_rig(tmp_path, sim)
    events: list[ReaderEvent] = []

    async def scenario() -> PreauthOutcome:
        zvt.link.start(events.append)
        zvt.link.arm()
        await _until(lambda: zvt.link.client.running == "read card")
        sim.control("present", card="visa")
        await _until(lambda: any(isinstance(e, TerminalCardTap) for e in events))
        tap = next(e for e in events if isinstance(e, TerminalCardTap))
        await _until(lambda: zvt.link.client.running == "read card")  # armed again
        outcome = await zvt.tap(card=tap.card)  # aborts the wait, then pre-authorises
        await _until(lambda: zvt.link.client.running == "read card")
        await zvt.link.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert outcome.approved
    tap = next(e for e in events if isinstance(e, TerminalCardTap))
    assert tap.card == VISA and tap.reader == "zvt"
    assert zvt.link.states() == {"zvt": "ready"}
    assert tokenize_terminal_card(tap.card, KEY) == tokenize_terminal_card(VISA, KEY)
    other = TerminalCard(0x06, "MASTERCARD", "************4771", "2812", 1, "mastercard")
    assert tokenize_terminal_card(other, KEY) != tokenize_terminal_card(VISA, KEY)


async def _until(predicate: Any, timeout_s: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout_s)



def test_a_terminal_that_books_only_the_whole_reservation_releases_the_rest_first(
        tmp_path, launch) -> None:
    sim = launch()
    zvt = zvt_rig(tmp_path, sim)
    rig = zvt.rig

    async def scenario() -> None:
        rig.accept(await zvt.tap())
        rig.charge()
        sim.control("set", whole_only=True)
        assert await zvt.payments.settle_due() == 1
        await zvt.link.close()

    asyncio.run(scenario())
    payment = rig.payment()
    assert payment.status is PaymentStatus.CAPTURED, payment.reason
    assert payment.pt["release"]["amount"] == str(PREAUTH - CHARGED)
    assert payment.pt["booking"]["amount"] == "2.30"
    state = zvt.sim_state()
    assert state["reservations"] == {} and state["released_minor"] == 5000 - 230
    assert [e["amount_minor"] for e in state["batch"].values()] == [230]


def test_end_of_day_runs_through_the_link_between_card_waits(tmp_path, launch) -> None:
    sim = launch()
    zvt = zvt_rig(tmp_path, sim)
    rig = zvt.rig
    events: list[ReaderEvent] = []

    async def scenario() -> Any:
        rig.accept(await zvt.tap())
        rig.charge()
        await zvt.payments.settle_due()
        zvt.link.start(events.append)
        zvt.link.arm()
        await _until(lambda: zvt.link.client.running == "read card")
        totals = await zvt.link.end_of_day()  # the waiting Read card is aborted first
        await _until(lambda: zvt.link.client.running == "read card")  # and re-armed
        await zvt.link.close()
        return totals

    totals = asyncio.run(scenario())
    assert totals.approved and totals.totals is not None
    assert totals.totals.counts["Visa"] == 1 and totals.totals_amount("Visa") == CHARGED
    assert zvt.sim_state()["batch"] == {}
