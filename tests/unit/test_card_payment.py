"""Card payments: pre-authorisation, capture/void at the end, refunds (terminal.payment.card).

A real Store (in tmp_path) behind an AsyncStore, a scripted fake gateway and a real
X25519 gateway key pair: the envelope the terminal seals is opened here with the
gateway's private key, as the payment gateway would. Public test card numbers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drivers.readers.emv import EmvRead
from hw_mocks.gateway_crypto import open_envelope
from terminal.backend.api import BackendUnavailable
from terminal.backend.messages import (
    CaptureRequest,
    CaptureResponse,
    PreauthRequest,
    PreauthResponse,
    Refund,
    VoidRequest,
)
from terminal.billing import Terms, bill_from_row
from terminal.kernel.cards import CardData, mask_pan
from terminal.kernel.logsetup import ROOT_LOGGER, KeyValueFormatter
from terminal.payment.card import CardPayments, PaymentSettings, PreauthOutcome
from terminal.payment.crypto import TokenKey, tokenize
from terminal.session import (
    Authorization,
    AuthorizationAccepted,
    AuthorizeRequested,
    Recover,
    StopReason,
    StopRequested,
    state_to_json,
)
from terminal.store import AsyncStore, PaymentRow, Store
from tests.unit.clockfake import FakeClock
from tests.unit.session_helpers import T0, Driver

D = Decimal
VISA = "4111111111111111"  # public test card numbers only
MASTERCARD = "5555555555554444"
STATION = "DE*EVT*E0001*1"
KEY = TokenKey("k1", bytes(range(32)))
PREAUTH = D("50.00")
# 2.00 per session + 10.00 per kWh, no VAT: the 30 Wh of `charge` cost 2.30 EUR.
TARIFF = {
    "id": "T-CARD",
    "currency": "EUR",
    "elements": [{"price_components": [
        {"type": "FLAT", "price": 2.0, "step_size": 1},
        {"type": "ENERGY", "price": 10.0, "step_size": 1},
    ]}],
}
TERMS = Terms(tariff_json=TARIFF, timezone="Europe/Berlin", charging_threshold_w=D(100),
              station_id=STATION, operator="EVT Test")
CHARGED = D("2.30")


def emv(pan: str = VISA, expiry: str = "2812", scheme: str = "visa") -> EmvRead:
    aid = "A0000000031010" if scheme == "visa" else "A0000000041010"
    return EmvRead(CardData(pan, expiry, "01"), aid, scheme, scheme.upper())


def approved(amount: Decimal = PREAUTH, psp: str = "PSP-1") -> PreauthResponse:
    return PreauthResponse(True, psp_reference=psp, amount_approved=amount)


class FakeGateway:
    """The Backend's card half. Each call takes the next scripted answer of its queue
    (an exception is raised); an empty queue gives the default answer. Every request is
    kept in `calls` in order; `on_call(op, request)` runs inside each call (to look at
    the journal at that moment); `delay_s` stalls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.preauth_answers: list[Any] = []
        self.capture_answers: list[Any] = []
        self.void_answers: list[Any] = []
        self.delay_s = 0.0
        self.on_call: Any = None

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    def requests(self, op: str) -> list[Any]:
        return [req for name, req in self.calls if name == op]

    async def _answer(self, op: str, req: Any, queue: list[Any], default: Any) -> Any:
        self.calls.append((op, req))
        if self.on_call is not None:
            self.on_call(op, req)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        answer = queue.pop(0) if queue else default
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def preauthorize(self, req: PreauthRequest) -> PreauthResponse:
        return await self._answer("preauthorize", req, self.preauth_answers,
                                  approved(req.amount))

    async def capture(self, req: CaptureRequest) -> CaptureResponse:
        return await self._answer("capture", req, self.capture_answers, CaptureResponse(True))

    async def void(self, req: VoidRequest) -> CaptureResponse:
        return await self._answer("void", req, self.void_answers, CaptureResponse(True))


def down() -> BackendUnavailable:
    return BackendUnavailable("test: gateway unreachable")


@dataclass
class Rig:
    """Store, gateway, payments and one connector's session driver."""

    db_path: Path
    store: Store
    astore: AsyncStore
    gateway: FakeGateway
    gateway_key: X25519PrivateKey
    clock: FakeClock
    payments: CardPayments
    driver: Driver = field(default_factory=Driver)
    receipts_changed: list[str] = field(default_factory=list)

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    def commit(self, result: Any, session_id: str, **extra: Any) -> None:
        self.store.commit(result.records, state_to_json(result.state), session_id=session_id,
                          station_id=STATION, at=self.clock.now(), **extra)

    def tap(self, session_id: str = "S-1", read: EmvRead | None = None) -> PreauthOutcome:
        """A card tap: the session opens (Authorizing), then the pre-authorisation."""
        read = read or emv()
        token = tokenize(read.card, KEY)
        self.driver = Driver()
        self.commit(self.driver.send(AuthorizeRequested(T0, session_id, token, "card")),
                    session_id)
        return self.run(self.payments.preauthorize(session_id, token, read))

    def accept(self, outcome: PreauthOutcome, session_id: str = "S-1") -> None:
        state = self.driver.state
        assert state.id_token is not None
        auth = Authorization(id_token=state.id_token, source="card", cost_cap=outcome.amount,
                             payment_reference=outcome.psp_reference,
                             card_scheme=outcome.scheme, card_last4=outcome.last4)
        self.commit(self.driver.send(AuthorizationAccepted(T0, session_id, auth)), session_id)

    def charge(self, session_id: str = "S-1") -> None:
        """30 Wh delivered, the EV unplugged; the receipt is journaled with the close,
        the tariff with the start reading (as the daemon does)."""
        d = self.driver
        self.commit(d.tick(1, 10_000, 0), session_id, tariff_json=TERMS.to_json())
        for result in (d.tick(2, 10_010, 50_000), d.tick(3, 10_024, 50_000)):
            self.commit(result, session_id)
        closing = d.tick(4, 10_030, 0, ev="A", output_on=False)
        self.commit(closing, session_id)
        row = self.store.session(session_id)
        assert row is not None and row["closed_at"] is not None
        readings = [r for _, r in self.store.readings(session_id)]
        bill = bill_from_row(row, readings)
        self.store.add_receipt(session_id, bill.receipt, bill.amount_charged, self.clock.now())

    def stop_before_energy(self, session_id: str = "S-1") -> None:
        d = self.driver
        stop = d.send(StopRequested(T0 + timedelta(seconds=5), StopReason.LOCAL, d.state.id_token))
        assert stop.refused is None
        self.commit(stop, session_id)

    def payment(self, session_id: str = "S-1") -> PaymentRow:
        row = self.store.payment(session_id=session_id)
        assert row is not None
        return row

    def settle(self) -> int:
        return self.run(self.payments.settle_due())

    def refund(self, refund_id: str = "R-1", amount: str = "0.50", psp: str = "PSP-1",
               currency: str = "EUR") -> bool:
        return self.run(self.payments.on_refund(Refund(refund_id, psp, "S-1:pay", D(amount),
                                                       currency, "goodwill")))


def make_rig(tmp_path: Path, *, floor: Decimal | None = None, timeout_s: float = 2.0) -> Rig:
    db_path = tmp_path / "evterm.db"
    store = Store.open(db_path)
    astore = AsyncStore(store)
    gateway = FakeGateway()
    gateway_key = X25519PrivateKey.generate()
    clock = FakeClock()
    settings = PaymentSettings(station_id=STATION, currency="EUR", preauth_amount=PREAUTH,
                               offline_floor_limit=floor, request_timeout_s=timeout_s)
    changed: list[str] = []

    def publish(message: dict[str, Any]) -> None:
        if message["type"] == "receipt_updated":
            changed.append(message["session_id"])

    payments = CardPayments(settings, KEY, gateway_key.public_key(), gateway,  # type: ignore[arg-type]
                            astore, clock, publish)  # type: ignore[arg-type]
    rig = Rig(db_path, store, astore, gateway, gateway_key, clock, payments)
    rig.receipts_changed = changed
    return rig


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every evterm log line of the test, formatted as in production (fields included).
    A handler on the evterm logger itself: works whatever another test did to propagation."""
    lines: list[str] = []
    formatter = KeyValueFormatter()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))

    logger = logging.getLogger(ROOT_LOGGER)
    handler = Collect(logging.DEBUG)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture
def rig(tmp_path: Path, log_lines: list[str]) -> Iterator[Rig]:
    made = make_rig(tmp_path)
    yield made
    assert_no_pan(made, log_lines)
    made.astore.close()


def assert_no_pan(rig: Rig, log_lines: list[str]) -> None:
    """PCI: the PAN is in no log line and nowhere in the database files."""
    for pan in (VISA, MASTERCARD):
        assert not [line for line in log_lines if pan in line]
        for path in rig.db_path.parent.glob("evterm.db*"):
            assert pan.encode() not in path.read_bytes(), path.name


@contextlib.contextmanager
def rig_with(tmp_path: Path, log_lines: list[str], **options: Any) -> Iterator[Rig]:
    made = make_rig(tmp_path, **options)
    try:
        yield made
        assert_no_pan(made, log_lines)
    finally:
        made.astore.close()


# ---- pre-authorisation ----------------------------------------------------------------


def test_an_approved_preauthorisation_sets_the_cost_cap_and_journals_the_payment(rig, log_lines):
    outcome = rig.tap()
    assert outcome == PreauthOutcome(True, None, PREAUTH, "PSP-1", scheme="visa", last4="1111",
                                     approved_at=rig.clock.now())
    row = rig.payment()
    assert (row.reference, row.status, row.amount_requested, row.amount_approved,
            row.psp_reference) == ("S-1:pay", "approved", D("50.00"), D("50.00"), "PSP-1")
    assert (row.masked_pan, row.last4, row.scheme, row.offline) == (
        "411111******1111", "1111", "visa", False)
    assert row.token == tokenize(CardData(VISA), KEY) and row.envelope_json is None
    assert any("card payment pre-authorised" in line and "psp_reference=PSP-1" in line
               for line in log_lines)


def test_the_request_carries_token_mask_and_envelope_never_the_pan(rig):
    rig.tap(read=emv(MASTERCARD, "2904", "mastercard"))
    [request] = rig.gateway.requests("preauthorize")
    assert (request.reference, request.station_id, request.amount, request.currency) == (
        "S-1:pay", STATION, PREAUTH, "EUR")
    assert request.token == tokenize(CardData(MASTERCARD), KEY)
    assert (request.masked_pan, request.scheme) == (mask_pan(MASTERCARD), "mastercard")
    wire = json.dumps(request.to_json())
    assert MASTERCARD not in wire and MASTERCARD not in repr(request)
    card = open_envelope(request.envelope, rig.gateway_key)
    assert card == {"pan": MASTERCARD, "expiry": "2904", "psn": "01"}
    assert (request.envelope["reference"], request.envelope["terminal"]) == ("S-1:pay", STATION)


def test_the_envelope_is_bound_to_its_reference(rig):
    rig.tap()
    [request] = rig.gateway.requests("preauthorize")
    moved = {**request.envelope, "reference": "S-2:pay"}
    with pytest.raises(ValueError, match="does not open"):
        open_envelope(moved, rig.gateway_key)
    with pytest.raises(ValueError, match="does not open"):
        open_envelope(request.envelope, X25519PrivateKey.generate())


def test_the_payment_is_journaled_before_the_gateway_is_asked(rig):
    seen: list[PaymentRow | None] = []
    rig.gateway.on_call = lambda op, req: seen.append(
        rig.store.payment(reference=req.reference))
    rig.tap()
    [row] = seen
    assert row is not None
    assert (row.status, row.session_id, row.amount_requested) == (
        "requested", "S-1", D("50.00"))


def test_a_partial_approval_lowers_the_cap(rig):
    rig.gateway.preauth_answers = [approved(D("20.00"), "PSP-P")]
    outcome = rig.tap()
    assert outcome.approved and outcome.amount == D("20.00")
    assert outcome.psp_reference == "PSP-P"
    assert (rig.payment().status, rig.payment().amount_approved) == ("approved", D("20.00"))


def test_an_approval_above_the_amount_asked_is_clipped_to_it(rig):
    rig.gateway.preauth_answers = [approved(D("75.00"))]
    outcome = rig.tap()
    assert outcome.approved and outcome.amount == PREAUTH
    assert rig.payment().amount_approved == D("50.00")


def test_an_approval_without_a_psp_reference_is_a_gateway_error(rig):
    # a model PreauthResponse refuses this; a broken backend adapter might not
    rig.gateway.preauth_answers = [SimpleNamespace(approved=True, psp_reference=None,
                                                   amount_approved=PREAUTH, reason=None)]
    outcome = rig.tap()
    assert (outcome.approved, outcome.reason_code, outcome.amount) == (
        False, "gateway_error", None)
    row = rig.payment()
    assert (row.status, row.reason, row.amount_approved) == (
        "declined", "gateway_error", None)
    assert rig.settle() == 0 and rig.gateway.ops() == ["preauthorize"]


def test_a_decline_keeps_the_gateways_reason(rig, log_lines):
    rig.gateway.preauth_answers = [PreauthResponse(False, reason="insufficient_funds")]
    outcome = rig.tap()
    assert outcome == PreauthOutcome(False, "insufficient_funds", scheme="visa", last4="1111")
    row = rig.payment()
    assert (row.status, row.reason, row.psp_reference) == (
        "declined", "insufficient_funds", None)
    assert any("card payment declined" in line and "reason=insufficient_funds" in line
               for line in log_lines)


def test_an_expired_card_is_declined_without_asking_the_gateway(rig):
    outcome = rig.tap(read=emv(expiry="2610"))  # October 2026; the clock is in November
    assert (outcome.approved, outcome.reason_code) == (False, "expired_card")
    assert rig.gateway.calls == []
    assert (rig.payment().status, rig.payment().reason) == ("declined", "expired_card")


def test_a_card_valid_through_this_month_is_not_expired(rig):
    assert rig.tap(read=emv(expiry="2611")).approved


def test_gateway_unreachable_without_floor_limit_declines(rig, log_lines):
    rig.gateway.preauth_answers = [down()]
    outcome = rig.tap()
    assert (outcome.approved, outcome.reason_code, outcome.offline) == (
        False, "offline_payment", False)
    row = rig.payment()
    assert (row.status, row.reason, row.envelope_json) == (
        "declined", "offline_payment", None)
    assert any("no offline floor limit" in line and "gateway unreachable" in line
               for line in log_lines)


def test_gateway_timeout_without_floor_limit_declines(tmp_path, log_lines):
    with rig_with(tmp_path, log_lines, timeout_s=0.05) as rig:
        rig.gateway.delay_s = 5.0
        started_s = time.monotonic()
        outcome = rig.tap()
        assert time.monotonic() - started_s < 2.0  # request_timeout_s, not the gateway's 5 s
        assert (outcome.approved, outcome.reason_code) == (False, "offline_payment")
        assert rig.gateway.ops() == ["preauthorize"]
        assert (rig.payment().status, rig.payment().reason) == (
            "declined", "offline_payment")


@pytest.mark.parametrize("failure", ["unavailable", "timeout"])
def test_gateway_unreachable_with_floor_limit_approves_offline(tmp_path, log_lines, failure):
    with rig_with(tmp_path, log_lines, floor=D("25.00"), timeout_s=0.05) as rig:
        if failure == "unavailable":
            rig.gateway.preauth_answers = [down()]
        else:
            rig.gateway.delay_s = 5.0
        outcome = rig.tap()
        assert outcome == PreauthOutcome(True, None, D("25.00"), None, offline=True,
                                         scheme="visa", last4="1111",
                                         approved_at=rig.clock.now())
        row = rig.payment()
        assert (row.status, row.amount_approved, row.offline, row.psp_reference) \
            == ("approved", D("25.00"), True, None)
        kept = json.loads(row.envelope_json)
        [request] = rig.gateway.requests("preauthorize")
        assert kept == request.envelope and kept["reference"] == "S-1:pay"
        assert open_envelope(kept, rig.gateway_key)["pan"] == VISA
        assert any("accepted offline under the floor limit" in line for line in log_lines)


def test_the_offline_amount_is_the_floor_limit_or_the_preauth_whichever_is_lower(
        tmp_path, log_lines):
    with rig_with(tmp_path, log_lines, floor=D("80.00")) as rig:
        rig.gateway.preauth_answers = [down()]
        assert rig.tap().amount == PREAUTH
        assert rig.payment().amount_approved == D("50.00")


# ---- capture / void ------------------------------------------------------------------


def test_a_closed_session_is_captured_with_the_receipts_amount(rig, log_lines):
    rig.accept(rig.tap())
    rig.charge()
    receipt, _ = rig.store.receipt("S-1")
    assert D(receipt["amount_charged"]) == CHARGED
    assert rig.settle() == 1
    [capture] = rig.gateway.requests("capture")
    assert capture == CaptureRequest("S-1:pay", "PSP-1", CHARGED, "EUR")
    row = rig.payment()
    assert (row.status, row.amount_captured) == ("captured", D("2.30"))
    assert rig.settle() == 0 and len(rig.gateway.calls) == 2  # nothing due any more
    assert any("card payment captured" in line for line in log_lines)


def test_an_open_session_is_not_settled(rig):
    rig.accept(rig.tap())
    assert rig.settle() == 0
    assert rig.gateway.ops() == ["preauthorize"] and rig.payment().status == "approved"


def test_the_capture_never_exceeds_the_approved_amount(rig):
    rig.accept(rig.tap())
    rig.store.update_payment("S-1:pay", rig.clock.now(), amount_approved=D("1.50"))
    rig.charge()  # the receipt says 2.30 (the cap on the session was 50.00)
    assert rig.settle() == 1
    [capture] = rig.gateway.requests("capture")
    assert capture.amount == D("1.50")
    assert (rig.payment().status, rig.payment().amount_captured) == ("captured", D("1.50"))


def test_a_session_without_energy_is_voided(rig):
    rig.accept(rig.tap())
    rig.stop_before_energy()
    row = rig.store.session("S-1")
    assert row["closed_at"] is not None and row["meter_start_wh"] is None
    assert rig.store.receipt("S-1") is None
    assert rig.settle() == 1
    assert rig.gateway.ops() == ["preauthorize", "void"]
    assert rig.gateway.requests("void") == [VoidRequest("S-1:pay", "PSP-1")]
    row = rig.payment()
    assert (row.status, row.amount_captured) == ("voided", None)


def test_a_void_the_gateway_refuses_is_failed(rig):
    rig.accept(rig.tap())
    rig.stop_before_energy()
    rig.gateway.void_answers = [CaptureResponse(False, "unknown_payment")]
    assert rig.settle() == 1
    row = rig.payment()
    assert (row.status, row.reason) == ("failed", "void refused: unknown_payment")


def test_a_void_during_an_outage_is_sent_again_later(rig):
    rig.accept(rig.tap())
    rig.stop_before_energy()
    rig.gateway.void_answers = [down()]
    assert rig.settle() == 0
    assert rig.payment().status == "void_pending"
    assert rig.settle() == 1
    assert rig.payment().status == "voided"
    assert [r.reference for r in rig.gateway.requests("void")] == ["S-1:pay", "S-1:pay"]


def interrupted(rig: Rig) -> None:
    """The terminal journaled the payment, asked the gateway and died before the answer."""
    token = tokenize(CardData(VISA), KEY)
    rig.commit(rig.driver.send(AuthorizeRequested(T0, "S-1", token, "card")), "S-1")
    rig.store.add_payment(reference="S-1:pay", session_id="S-1", token=token,
                          masked_pan=mask_pan(VISA), scheme="visa", last4="1111",
                          currency="EUR", amount_requested=PREAUTH, at=T0)


def test_an_interrupted_preauthorisation_waits_for_its_session_to_close(rig):
    interrupted(rig)
    assert rig.settle() == 0  # the session is still open: the answer may still come
    assert rig.payment().status == "requested" and rig.gateway.calls == []


def test_an_interrupted_preauthorisation_is_voided(rig):
    interrupted(rig)
    recovered = rig.driver.send(Recover(T0 + timedelta(seconds=60), resume=False, reading=None))
    rig.commit(recovered, "S-1")
    assert rig.store.session("S-1")["closed_at"] is not None
    at_void: list[str] = []
    rig.gateway.on_call = lambda op, req: at_void.append(rig.payment().status)
    assert rig.settle() == 1
    assert at_void == ["void_pending"]  # journaled before it was sent
    [void] = rig.gateway.requests("void")
    assert void.reference == "S-1:pay"
    row = rig.payment()
    assert (row.status, row.reason) == ("voided", "interrupted")


def test_a_capture_the_gateway_refuses_is_failed_and_not_retried(rig, log_lines):
    rig.accept(rig.tap())
    rig.charge()
    rig.gateway.capture_answers = [CaptureResponse(False, "amount_above_authorised")]
    assert rig.settle() == 1
    row = rig.payment()
    assert (row.status, row.reason) == ("failed", "capture refused: amount_above_authorised")
    assert rig.settle() == 0
    assert rig.gateway.ops() == ["preauthorize", "capture"]
    assert any("card payment needs the operator" in line and "ERROR" in line
               for line in log_lines)


@pytest.mark.parametrize("failure", ["unavailable", "timeout"])
def test_a_capture_during_an_outage_stays_pending_and_finishes_later(tmp_path, log_lines,
                                                                     failure):
    with rig_with(tmp_path, log_lines, timeout_s=0.05) as rig:
        rig.accept(rig.tap())
        rig.charge()
        if failure == "unavailable":
            rig.gateway.capture_answers = [down()]
        else:
            rig.gateway.delay_s = 5.0
        assert rig.settle() == 0
        row = rig.payment()
        assert (row.status, row.amount_captured) == ("capture_pending", D("2.30"))
        assert any("settlement waits for the backend" in line for line in log_lines)
        rig.gateway.delay_s = 0.0
        assert rig.settle() == 1
        assert rig.payment().status == "captured"
        captures = rig.gateway.requests("capture")
        assert captures == [CaptureRequest("S-1:pay", "PSP-1", CHARGED, "EUR")] * 2


def test_settlement_stops_at_the_first_outage_and_resumes(rig):
    for session_id, psp in (("S-1", "PSP-1"), ("S-2", "PSP-2")):
        rig.gateway.preauth_answers = [approved(PREAUTH, psp)]
        rig.accept(rig.tap(session_id), session_id)
        rig.charge(session_id)
    rig.gateway.capture_answers = [down()]
    assert rig.settle() == 0
    assert [r.reference for r in rig.gateway.requests("capture")] == ["S-1:pay"]
    assert rig.payment("S-2").status == "approved"  # untouched until the backend is back
    assert rig.settle() == 2
    assert {rig.payment(s).status for s in ("S-1", "S-2")} == {"captured"}


def test_an_offline_payment_is_shown_to_the_gateway_then_captured(tmp_path, log_lines):
    with rig_with(tmp_path, log_lines, floor=D("25.00")) as rig:
        rig.gateway.preauth_answers = [down()]
        outcome = rig.tap()
        [first] = rig.gateway.requests("preauthorize")
        rig.accept(outcome)
        rig.charge()
        rig.gateway.preauth_answers = [approved(CHARGED, "PSP-LATE")]
        assert rig.settle() == 1
        assert rig.gateway.ops() == ["preauthorize", "preauthorize", "capture"]
        late = rig.gateway.requests("preauthorize")[1]
        assert (late.reference, late.amount, late.currency, late.token, late.masked_pan,
                late.scheme) == ("S-1:pay", CHARGED, "EUR", first.token, first.masked_pan,
                                 "visa")
        assert late.envelope == first.envelope
        assert open_envelope(late.envelope, rig.gateway_key) == {
            "pan": VISA, "expiry": "2812", "psn": "01"}
        assert rig.gateway.requests("capture") == [
            CaptureRequest("S-1:pay", "PSP-LATE", CHARGED, "EUR")]
        row = rig.payment()
        assert (row.status, row.psp_reference, row.envelope_json, row.offline) == (
            "captured", "PSP-LATE", None, True)


def test_an_offline_payment_keeps_its_reference_when_the_capture_waits(tmp_path, log_lines):
    with rig_with(tmp_path, log_lines, floor=D("25.00")) as rig:
        rig.gateway.preauth_answers = [down()]
        rig.accept(rig.tap())
        rig.charge()
        rig.gateway.preauth_answers = [approved(CHARGED, "PSP-LATE")]
        rig.gateway.capture_answers = [down()]
        assert rig.settle() == 0
        row = rig.payment()
        assert (row.status, row.psp_reference, row.envelope_json) == (
            "capture_pending", "PSP-LATE", None)
        assert rig.settle() == 1
        assert rig.gateway.ops() == ["preauthorize", "preauthorize", "capture", "capture"]
        assert rig.payment().status == "captured"


def test_an_offline_payment_the_gateway_declines_later_is_failed(tmp_path, log_lines):
    with rig_with(tmp_path, log_lines, floor=D("25.00")) as rig:
        rig.gateway.preauth_answers = [down()]
        rig.accept(rig.tap())
        rig.charge()
        rig.gateway.preauth_answers = [PreauthResponse(False, reason="do_not_honor")]
        assert rig.settle() == 1
        assert rig.gateway.ops() == ["preauthorize", "preauthorize"]
        row = rig.payment()
        assert (row.status, row.reason, row.psp_reference) == (
            "failed", "offline payment declined later: do_not_honor", None)
        assert rig.settle() == 0
        assert any("card payment needs the operator" in line for line in log_lines)


def test_an_offline_payment_without_energy_is_dropped_without_asking(tmp_path, log_lines):
    with rig_with(tmp_path, log_lines, floor=D("25.00")) as rig:
        rig.gateway.preauth_answers = [down()]
        rig.accept(rig.tap())
        rig.stop_before_energy()
        assert rig.settle() == 1
        assert rig.gateway.ops() == ["preauthorize"]  # the gateway never saw the card
        row = rig.payment()
        assert (row.status, row.envelope_json) == ("voided", None)


def test_run_settles_when_woken(rig):
    rig.accept(rig.tap())
    rig.charge()

    async def scenario() -> None:
        wake = asyncio.Event()
        task = asyncio.create_task(rig.payments.run(3600, wake))
        for _ in range(200):  # the first round runs at once
            await asyncio.sleep(0.01)
            if rig.store.payment(session_id="S-1").status == "captured":
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    rig.run(scenario())
    assert rig.payment().status == "captured"


# ---- refunds --------------------------------------------------------------------------


def captured(rig: Rig) -> None:
    rig.accept(rig.tap())
    rig.charge()
    assert rig.settle() == 1 and rig.payment().status == "captured"


def receipt_keys(rig: Rig) -> list[str]:
    return [m.idempotency_key for m in rig.store.outbox() if m.kind == "Receipt"]


def test_a_refund_is_recorded_and_the_receipt_rebuilt(rig):
    captured(rig)
    before, _ = rig.store.receipt("S-1")
    assert rig.refund("R-1", "0.50")
    [row] = rig.store.refunds("S-1")
    assert (row["refund_id"], row["reference"], row["amount"], row["currency"],
            row["reason"]) == ("R-1", "S-1:pay", "0.50", "EUR", "goodwill")
    data, text = rig.store.receipt("S-1")
    assert data["amount_charged"] == before["amount_charged"] == "2.30"
    assert (data["amount_refunded"], data["amount_paid"]) == ("0.50", "1.80")
    assert [r["refund_id"] for r in data["refunds"]] == ["R-1"]
    assert "1.80" in text
    assert receipt_keys(rig) == ["S-1:receipt", "S-1:receipt:R-1"]
    assert rig.receipts_changed == ["S-1"]


def test_partial_refunds_add_up_to_the_captured_amount(rig):
    captured(rig)
    assert rig.refund("R-1", "1.30") and rig.refund("R-2", "1.00")
    data, _ = rig.store.receipt("S-1")
    assert (data["amount_refunded"], data["amount_paid"]) == ("2.30", "0.00")
    assert not rig.refund("R-3", "0.01")
    assert [r["refund_id"] for r in rig.store.refunds("S-1")] == ["R-1", "R-2"]


def test_a_duplicate_refund_is_ignored(rig):
    captured(rig)
    assert rig.refund("R-1", "0.50")
    assert rig.refund("R-1", "0.50")  # the backend sent it again: fine, nothing new
    assert [r["amount"] for r in rig.store.refunds("S-1")] == ["0.50"]
    assert receipt_keys(rig) == ["S-1:receipt", "S-1:receipt:R-1"]
    assert rig.receipts_changed == ["S-1"]


def test_a_duplicate_of_a_full_refund_is_still_a_duplicate(rig):
    captured(rig)
    assert rig.refund("R-1", "2.30")
    assert rig.refund("R-1", "2.30")  # not counted twice against the captured amount
    assert [r["amount"] for r in rig.store.refunds("S-1")] == ["2.30"]


@pytest.mark.parametrize(
    ("refund", "problem"),
    [
        ({"amount": "2.31"}, "more than the 2.30 captured"),
        ({"currency": "USD"}, "currency USD differs"),
        ({"psp": "PSP-NOPE"}, "no payment with this PSP reference"),
        ({"amount": "0.105"}, "not a positive amount in minor units"),
    ],
    ids=["above-captured", "wrong-currency", "unknown-psp-reference", "sub-cent"],
)
def test_a_refund_that_does_not_fit_is_refused(rig, log_lines, refund, problem):
    captured(rig)
    before = rig.store.receipt("S-1")
    assert rig.refund("R-1", **refund) is False
    assert rig.store.refunds("S-1") == []
    assert rig.store.receipt("S-1") == before and receipt_keys(rig) == ["S-1:receipt"]
    assert rig.receipts_changed == []
    assert any("refund refused" in line and problem in line for line in log_lines)


def test_a_refund_above_what_is_left_is_refused(rig):
    captured(rig)
    assert rig.refund("R-1", "2.00")
    assert rig.refund("R-2", "0.31") is False
    assert [r["refund_id"] for r in rig.store.refunds("S-1")] == ["R-1"]


def test_a_refund_of_a_payment_not_captured_is_refused(rig, log_lines):
    rig.accept(rig.tap())
    rig.charge()  # closed with a receipt, not settled yet
    assert rig.refund("R-1", "0.50") is False
    assert rig.store.refunds("S-1") == []
    assert any("the payment is approved, not captured" in line for line in log_lines)


def test_a_full_disk_during_settlement_is_logged_once_not_every_round(rig, log_lines):
    """The journal failing (disk full) fails every settlement round alike: one warning,
    no traceback per round; the capture goes through once the journal is writable."""
    rig.accept(rig.tap())
    rig.charge()
    store = rig.store
    original = store.payments_to_settle

    def disk_full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    store.payments_to_settle = disk_full  # type: ignore[method-assign]
    before = len(log_lines)
    for _ in range(30):
        assert rig.settle() == 0
        rig.clock.advance(10)
    written = log_lines[before:]
    assert len([line for line in written if "payment settlement" in line]) <= 6, written
    assert not [line for line in written if "Traceback" in line]
    store.payments_to_settle = original  # type: ignore[method-assign]
    assert rig.settle() == 1
    assert rig.payment().status == "captured"
    assert any("payment settlement recovered" in line for line in log_lines[before:])


def test_a_payment_that_fails_for_another_reason_gets_one_traceback(rig, log_lines):
    rig.accept(rig.tap())
    rig.charge()

    async def broken(payment: object) -> int:
        raise ValueError("payment S-1:pay (approved) has no amount_approved")

    rig.payments._settle = broken  # type: ignore[method-assign]
    before = len(log_lines)
    for _ in range(20):
        rig.settle()
        rig.clock.advance(10)
    assert sum("Traceback" in line for line in log_lines[before:]) == 1
