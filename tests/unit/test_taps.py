"""The tap handler's messages to the screen, in process: a card presented is announced
(`card_present`, reader and kind only) before anything is decided, then its outcome
(`tap`); reader state changes and failed reads announce no card."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from drivers.readers.events import EmvTap, ReaderState, RfidTap, TapFailed
from terminal.identification.auth import AuthDecision
from terminal.identification.tap_log import TapLog
from terminal.identification.taps import TapHandler
from terminal.kernel.driver_texts import LANGUAGES, driver_message
from terminal.station import Station
from tests.unit.clockfake import FakeClock
from tests.unit.test_daemon_ui_api import Car, run

READER = "ACS ACR1252 00 00"


class Authorizer:
    """Accepts every token; remembers what the screen had been told when it was asked."""

    def __init__(self, published: list[dict[str, Any]]) -> None:
        self.published = published
        self.seen_at_decision: list[list[dict[str, Any]]] = []

    async def authorize(self, id_token: str, token_type: str,
                        now: datetime | None = None) -> AuthDecision:
        self.seen_at_decision.append(list(self.published))
        return AuthDecision(True, "accepted", "local_list")

    async def is_technician(self, id_token: str) -> bool:
        return False


def tap_handler(station: Station, authorizer: Any) -> TapHandler:
    """The station's tap handler with another authoriser and no card payment."""
    return TapHandler(station.daemon, station.clock, station.config.session, station.screen,
                      authorizer, None, station.service.technician_tapped)


def test_a_card_is_announced_before_the_decision_then_its_outcome(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        authorizer = Authorizer(published)
        taps = tap_handler(station, authorizer)
        await taps.handle(RfidTap(READER, "04A1B2C3D4E5F6"))
        present = {"type": "card_present", "reader": READER, "kind": "rfid"}
        told, = authorizer.seen_at_decision
        assert [m for m in told if m["type"] != "state"] == [present]  # before the decision
        kinds = [m["type"] for m in published if m["type"] != "state"]
        assert kinds == ["card_present", "tap"]
        tap = next(m for m in published if m["type"] == "tap")
        assert (tap["result"], tap["kind"]) == ("accepted", "rfid")

    run(tmp_path, body)


def test_a_bank_card_is_announced_without_any_card_data(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        taps = tap_handler(station, Authorizer(published))
        read: Any = object()  # never looked at: this terminal takes no bank cards
        await taps.handle(EmvTap(READER, read))
        present, outcome = [m for m in published if m["type"] != "state"]
        assert present == {"type": "card_present", "reader": READER, "kind": "card"}
        assert (outcome["type"], outcome["kind"], outcome["reason"]) == (
            "tap", "card", "card_not_supported")
        assert "object at" not in json.dumps(published, default=str)

    run(tmp_path, body)


def test_decisions_are_journaled_with_token_and_time_after_the_screen_was_told(
        tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        tap_log = TapLog(station.store, station.clock)
        told: list[int] = []
        real = tap_log.record

        def record(**row: Any) -> None:
            told.append(len([m for m in published if m["type"] == "tap"]))
            real(**row)

        tap_log.record = record  # type: ignore[method-assign]
        taps = TapHandler(station.daemon, station.clock, station.config.session,
                          station.screen, Authorizer(published), None,
                          station.service.technician_tapped, tap_log=tap_log)
        await taps.handle(RfidTap(READER, "04A1B2C3D4E5F6"))
        await taps.handle(EmvTap(READER, object()))  # type: ignore[arg-type]
        await tap_log.drain()
        assert told == [1, 2]  # each after its `tap` event went out
        rows = station.store.store.conn.execute(
            "SELECT reader, kind, result, reason, token, decision_ms, session_id FROM taps "
            "ORDER BY id").fetchall()
        accepted = next(m for m in published if m["type"] == "tap")
        assert rows == [
            (READER, "rfid", "accepted", "accepted", "04A1B2C3D4E5F6", accepted["decision_ms"],
             accepted["session_id"]),
            (READER, "card", "declined", "card_not_supported", None, None, None)]

    run(tmp_path, body)


def test_a_card_counts_as_a_drivers_action_for_the_screen_language(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        taps = tap_handler(station, Authorizer(published))
        await station.driver_api.language({"language": "nl"})
        clock.advance(25)
        await station.daemon.poll_once()
        await taps.handle(EmvTap(READER, object()))  # type: ignore[arg-type]
        clock.advance(25)
        await station.daemon.poll_once()
        assert station.screen.language == "nl"  # 50 s after the choice, 25 s after the card
        clock.advance(5)
        await station.daemon.poll_once()
        assert station.screen.language == "en"

    run(tmp_path, body, ui={"language_reset_s": 30})


def test_reader_changes_and_failed_reads_announce_no_card(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        taps = tap_handler(station, Authorizer(published))
        await taps.handle(ReaderState(READER, "ready"))
        await taps.handle(TapFailed(READER, "card removed too early", code="removed"))
        assert [m["type"] for m in published] == ["reader", "tap"]

    run(tmp_path, body)


# --- issue 15: phones that want confirmation, schemes not accepted -------------------------

DEFAULT_SCHEMES = ("visa", "vpay", "mastercard", "maestro", "amex", "discover", "jcb",
                   "unionpay", "interac")
GIROCARD_PAN = "4000002760000016"  # public test number (Stripe: Germany)


class Payments:
    """Card payment as the tap handler sees it: the accepted schemes, the token key and a
    pre-authorisation that declines (and counts)."""

    kind = "builtin"

    def __init__(self, accepted: tuple[str, ...]) -> None:
        from terminal.payment.card import PaymentSettings
        from terminal.payment.crypto import TokenKey

        self.settings = PaymentSettings("DE*EVT*E1", "EUR", Decimal("50.00"), None, 5.0,
                                        accepted_schemes=accepted)
        self.token_key = TokenKey("k1", bytes(range(32)))
        self.asked: list[str] = []
        self.amounts: list[Decimal | None] = []

    async def reuse_hold(self, token: str, session_id: str) -> Any:
        return None  # no kept hold of this card

    async def preauthorize(self, session_id: str, token: str, read: Any,
                           amount: Decimal | None = None) -> Any:
        from terminal.payment.card import PreauthOutcome

        self.asked.append(read.scheme)
        self.amounts.append(amount)
        return PreauthOutcome(False, "do_not_honor", scheme=read.scheme, last4="0016")


def girocard_read() -> Any:
    from drivers.readers.emv import EmvRead
    from terminal.kernel.cards import CardData

    return EmvRead(CardData(GIROCARD_PAN, "3012", "01"), "A0000003591010028001", "girocard",
                   "girocard")


def with_payments(station: Station, published: list, payments: Payments) -> TapHandler:
    return TapHandler(station.daemon, station.clock, station.config.session, station.screen,
                      Authorizer(published), payments,  # type: ignore[arg-type]
                      station.service.technician_tapped)


def test_a_phone_asking_for_confirmation_is_told_to_see_the_phone(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        taps = tap_handler(station, Authorizer(published))
        await taps.handle(TapFailed(READER, "see phone for instructions - tap again", True,
                                    code="see_phone"))
        tap, = [m for m in published if m["type"] == "tap"]
        assert (tap["result"], tap["reason"]) == ("tap_again", "see_phone")
        assert tap["message"] == "See phone for instructions, then tap again"
        texts = {driver_message(tap["reason"], language) for language in LANGUAGES}
        assert len(texts) == len(LANGUAGES)
        assert driver_message("see_phone", "de").startswith("Bitte Anweisungen auf dem Telefon")

    run(tmp_path, body)


def test_a_card_of_a_scheme_not_accepted_is_refused_naming_the_accepted(tmp_path: Path
                                                                         ) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        payments = Payments(DEFAULT_SCHEMES)
        taps = with_payments(station, published, payments)
        await taps.handle(TapFailed(READER, "payment card of a scheme not accepted here",
                                    False, code="not_accepted"))
        await taps.handle(EmvTap(READER, girocard_read()))  # a reader not told the setting
        refused = [m for m in published if m["type"] == "tap"]
        assert [(m["result"], m["reason"]) for m in refused] == [
            ("declined", "scheme_not_accepted:" + ",".join(DEFAULT_SCHEMES))] * 2
        assert refused[0]["message"] == (
            "This card type is not accepted here - accepted: Visa, V PAY, Mastercard, "
            "Maestro, American Express, Discover/Diners Club, JCB, UnionPay, Interac")
        reason = refused[0]["reason"]
        assert driver_message(reason, "de") == (
            "Diese Kartenart wird hier nicht akzeptiert - akzeptiert: Visa, V PAY, "
            "Mastercard, Maestro, American Express, Discover/Diners Club, JCB, UnionPay, "
            "Interac")
        assert "Visa" in driver_message(reason, "fr") and "Visa" in driver_message(reason, "nl")
        assert payments.asked == [] and station.daemon.state.phase.value == "Available"
        assert GIROCARD_PAN not in json.dumps(published, default=str)

    run(tmp_path, body)


def test_girocard_goes_to_the_gateway_when_accepted(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        payments = Payments(("girocard", "visa"))
        taps = with_payments(station, published, payments)
        await taps.handle(EmvTap(READER, girocard_read()))
        tap, = [m for m in published if m["type"] == "tap"]
        assert (tap["result"], tap["reason"]) == ("declined", "do_not_honor")
        assert payments.asked == ["girocard"]
        await taps.handle(TapFailed(READER, "payment card of an unknown scheme", False,
                                    code="not_supported"))
        assert published[-1]["reason"] == "scheme_not_accepted:girocard,visa"
        assert published[-1]["message"].endswith("accepted: girocard, Visa")

    run(tmp_path, body)


# --- issue 18: bank cards at an external ZVT payment terminal ---------------------------------


class ZvtPaymentsFake(Payments):
    kind = "zvt"


def terminal_card(scheme: str = "visa") -> Any:
    from drivers.readers.events import TerminalCard

    return TerminalCard(0x0A, "Visa", "************0010", "2812", 1, scheme)


def test_with_a_zvt_terminal_a_bank_card_on_the_pcsc_reader_is_sent_to_it(tmp_path: Path
                                                                          ) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        payments = ZvtPaymentsFake(DEFAULT_SCHEMES)
        taps = with_payments(station, published, payments)
        await taps.handle(EmvTap(READER, girocard_read()))
        await taps.handle(RfidTap(READER, "04A1B2C3D4E5F6"))  # charge cards still work
        refused, accepted = [m for m in published if m["type"] == "tap"]
        assert (refused["result"], refused["reason"]) == ("declined", "pay_at_terminal")
        assert refused["message"] == "Please pay at the card terminal"
        assert driver_message("pay_at_terminal", "de") == "Bitte am Kartenterminal bezahlen"
        assert len({driver_message("pay_at_terminal", lang) for lang in LANGUAGES}) == 4
        assert accepted["result"] == "accepted" and payments.asked == []

    run(tmp_path, body)


def test_a_card_the_terminal_read_is_pre_authorised_with_the_hold(tmp_path: Path) -> None:
    from drivers.readers.events import TerminalCardTap

    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        payments = ZvtPaymentsFake(DEFAULT_SCHEMES)
        taps = with_payments(station, published, payments)
        await taps.handle(TerminalCardTap("zvt", terminal_card("girocard")))
        await taps.handle(TerminalCardTap("zvt", terminal_card("visa")))
        present = [m for m in published if m["type"] == "card_present"]
        assert present[0] == {"type": "card_present", "reader": "zvt", "kind": "card"}
        refused, declined = [m for m in published if m["type"] == "tap"]
        assert refused["reason"].startswith("scheme_not_accepted:visa,")
        assert (declined["kind"], declined["reason"]) == ("card", "do_not_honor")
        # no budget picked: None, which the payment terminal holds as preauth_amount
        # (HoldPolicy.hold_amount; tests/unit/test_zvt_payments.py)
        assert payments.asked == ["visa"] and payments.amounts == [None]
        builtin = with_payments(station, published, Payments(DEFAULT_SCHEMES))
        await builtin.handle(TerminalCardTap("zvt", terminal_card()))
        assert published[-1]["reason"] == "card_not_supported"

    run(tmp_path, body)
