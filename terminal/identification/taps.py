"""What a card tap means: start, stop, or a polite refusal.

Provides `TapHandler.handle(event)` for every `drivers.readers.events` event:
- RFID tag or app token at a free connector: the session is opened (Authorizing,
  journaled), the token is authorised (`terminal.identification.auth.Authorizer`: local
  list, cache, backend, offline policy) and the session accepted with the caps and personal tariff
  that came back, or rejected with the reason.
- Contactless bank card at a free connector: the PAN becomes a token at once
  (`terminal.payment.crypto.tokenize`), the session is opened, and the card payment is
  pre-authorised (`terminal.payment.card.CardPayments`) for the budget the driver
  picked on the screen (`Screen.budget`; none: `[payment] preauth_amount`); the approved
  amount is the session's cost cap, and the hold's grace deadline
  (terminal.payment.holds) ends the session if no energy flowed by then. The same card
  whose last session ended without energy (not by the driver) within that grace period
  starts the new session on the kept hold (`CardPayments.reuse_hold`; reason
  `hold_reused`), never a second one.
- The same bank card again while its session is still starting (authorising, waiting
  to be plugged in): "your card is already authorised" (`already_authorized`); nothing
  changes.
- The card or token that started the running session: stops it (reason Local). A
  technician card stops any session (reason Technician). Any other card while the
  connector is in use: "this charger is in use", nothing changes.
- A technician card (RFID, `Authorizer.is_technician`) while no session runs opens
  the service menu's PIN window (terminal.service); result `service`, reason
  `technician`. Other cards are refused while the terminal is out of service.
- A bank card read by an external payment terminal (ZVT, `TerminalCardTap`): the token
  comes from what the terminal gives (`terminal.payment.crypto.tokenize_terminal_card`),
  then as above through `ZvtPayments`. While a ZVT terminal takes the bank cards, a
  bank card on the PC/SC reader is refused with "please pay at the card terminal"
  (`pay_at_terminal`); RFID charge cards still work there.
- A failed read: "tap again"; a phone that wants the cardholder's confirmation: "see
  phone for instructions, then tap again" (`see_phone`). A payment card of a scheme the
  terminal does not take (`[payment] accepted_schemes`, `CardPayments.settings`), or of
  no known scheme: refused with `scheme_not_accepted:<accepted ids>`, whose text names
  the accepted schemes (terminal.kernel.driver_texts); without card payment at all:
  `card_not_supported`. Reader state changes go to the screen as they come (the
  readers' own `states()` feed the status snapshot).

As soon as a card or tag reaches the handler, before anything is decided, a
`card_present` event (reader and kind, nothing of the card) tells the screen to say
"checking card". Every outcome is then published on the local API as a `tap` event with
a reason code the UI translates (terminal.kernel.driver_texts), and `decision_ms`: card
presence to decision, measured from the reader's `at_monotonic_s`. The last outcome per
reader (time, kind, result, reason; nothing of the card) is kept in `last_tap` for the
service menu's reader test. Accepted and declined outcomes are then journaled with the
id token (`terminal.identification.tap_log.TapLog`, docs/reports.md), after the screen
was told.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from drivers.readers.events import (
    EmvTap,
    ReaderEvent,
    ReaderState,
    RfidTap,
    TapFailed,
    TerminalCardTap,
)
from terminal.kernel.cards import scheme_name
from terminal.kernel.clock import iso_utc
from terminal.kernel.driver_texts import driver_message, scheme_refusal
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.money import optional_amount
from terminal.payment.crypto import tokenize, tokenize_terminal_card
from terminal.payment.port import ZVT
from terminal.pricing import TariffError, parse_tariff
from terminal.session import (
    Authorization,
    AuthorizationAccepted,
    AuthorizationRejected,
    AuthorizeRequested,
    Phase,
    StopReason,
    StopRequested,
)

if TYPE_CHECKING:
    from terminal.config import SessionConfig
    from terminal.identification.auth import AuthDecision, Authorizer
    from terminal.identification.tap_log import TapLog
    from terminal.kernel.clock import Clock
    from terminal.payment.port import PaymentTerminal
    from terminal.ports import SessionPort
    from terminal.screen import Screen

log = get_logger("taps")

EM4100_UID_CHARS = 10  # 125 kHz tags; ISO 14443 UIDs have 8, 14 or 20 hex digits
FAILURE_CODES = {"removed": "tap_again", "unreadable": "read_failed",
                 "see_phone": "see_phone", "not_supported": "card_not_supported",
                 "not_accepted": "card_not_supported"}
SCHEME_FAILURES = frozenset({"not_supported", "not_accepted"})


class TapHandler:
    def __init__(
        self,
        port: SessionPort,
        clock: Clock,
        session_config: SessionConfig,
        screen: Screen,
        authorizer: Authorizer,
        payments: PaymentTerminal | None,
        technician_tapped: Callable[[str, str], Awaitable[None]],
        monotonic_s: Callable[[], float] = time.monotonic,
        tap_log: TapLog | None = None,
    ) -> None:
        self.tap_log = tap_log  # journals every decision (docs/reports.md)
        self.port = port
        self.clock = clock
        self.session_config = session_config
        self.screen = screen
        self.technician_tapped = technician_tapped
        self.authorizer = authorizer
        self.payments = payments
        self.monotonic_s = monotonic_s
        self.last_tap: dict[str, dict[str, Any]] = {}  # reader -> the last outcome

    async def handle(self, event: ReaderEvent) -> None:
        if isinstance(event, RfidTap | EmvTap | TerminalCardTap):
            self.screen.note_intent()
            self.port.publish({"type": "card_present", "reader": event.reader,
                               "kind": "rfid" if isinstance(event, RfidTap) else "card"})
        try:
            await self._handle(event)
        except Exception:
            log.exception("card tap could not be handled",
                          extra=fields(reader=getattr(event, "reader", "?")))
            self._publish(event, "error", "terminal_error")

    async def _handle(self, event: ReaderEvent) -> None:
        if isinstance(event, ReaderState):  # the reader reports changes only
            self.port.publish({"type": "reader", "reader": event.reader,
                               "state": event.state, "detail": event.detail})
            return
        if isinstance(event, TapFailed):
            log.info("card tap failed", extra=fields(reader=event.reader, reason=event.reason))
            code = FAILURE_CODES.get(event.code, "read_failed")
            if event.code in SCHEME_FAILURES and self.payments is not None:
                code = scheme_refusal(self.payments.settings.accepted_schemes)
            self._publish(event, "tap_again" if event.tap_again else "declined", code)
            return
        if isinstance(event, EmvTap):
            if self.payments is None:
                self._publish(event, "declined", "card_not_supported")
                return
            if self.payments.kind == ZVT:  # bank cards go to the payment terminal
                self._publish(event, "declined", "pay_at_terminal")
                return
            accepted = self.payments.settings.accepted_schemes
            if event.read.scheme not in accepted:  # e.g. a reader not told the setting
                self._publish(event, "declined", scheme_refusal(accepted))
                return
            token = tokenize(event.read.card, self.payments.token_key)
            kind = "card"
        elif isinstance(event, TerminalCardTap):
            if self.payments is None or self.payments.kind != ZVT:
                self._publish(event, "declined", "card_not_supported")
                return
            accepted = self.payments.settings.accepted_schemes
            if event.card.scheme and event.card.scheme not in accepted:
                self._publish(event, "declined", scheme_refusal(accepted))
                return
            token = tokenize_terminal_card(event.card, self.payments.token_key)
            kind = "card"
        else:
            token = event.uid
            kind = "rfid"
        if self.port.state.is_open:
            await self._tap_while_busy(event, token, kind)
            return
        if kind == "rfid" and await self.authorizer.is_technician(token):
            await self.technician_tapped(token, event.reader)
            self._publish(event, "service", "technician")
            return
        if isinstance(event, EmvTap | TerminalCardTap):
            await self._start_card(event, token)
        else:
            await self._start_token(event, token)

    # ---- stop, or refuse -----------------------------------------------------------------

    async def _tap_while_busy(self, event: RfidTap | EmvTap | TerminalCardTap, token: str,
                              kind: str) -> None:
        state = self.port.state
        now = self.clock.now()
        if token == state.id_token:
            if kind == "card" and state.phase in (Phase.AUTHORIZING, Phase.AUTHORIZED):
                # a retried tap while its session starts: the hold stays the one there is
                self._publish(event, "info", "already_authorized",
                              session_id=state.session_id)
                return
            if state.phase is Phase.FINISHING:
                self._publish(event, "info", "unplug")
                return
            result = await self.port.apply(StopRequested(now, StopReason.LOCAL, token))
            self._publish(event, "declined" if result.refused else "stopping",
                          "not_running" if result.refused else "stopped", token=token)
            return
        if kind == "rfid" and state.phase is not Phase.FINISHING \
                and await self.authorizer.is_technician(token):
            result = await self.port.apply(StopRequested(now, StopReason.TECHNICIAN))
            log.warning("technician card stopped the session",
                        extra=fields(session=state.session_id))
            self._publish(event, "declined" if result.refused else "stopping",
                          "not_running" if result.refused else "technician_stop",
                          token=token)
            return
        self._publish(event, "in_use", "in_use")

    # ---- start -----------------------------------------------------------------------------

    async def _open(self, event: RfidTap | EmvTap | TerminalCardTap, token: str,
                    source: str) -> str | None:
        if (refused := self.port.refusal_reason()) is not None:
            self._publish(event, "declined", "unavailable", message=refused, token=token)
            return None
        session_id = str(uuid.uuid4())
        result = await self.port.apply(
            AuthorizeRequested(self.clock.now(), session_id, token, source))
        if result.refused:
            self._publish(event, "declined", "unavailable", message=result.refused,
                          token=token)
            return None
        return session_id

    async def _start_token(self, event: RfidTap, token: str) -> None:
        session_id = await self._open(event, token, "rfid")
        if session_id is None:
            return
        clock = self.clock
        decision = await self.authorizer.authorize(token, token_type_of(token), clock.now())
        problem = None if not decision.accepted else self._tariff_problem(decision)
        if not decision.accepted or problem:
            code = "tariff_invalid" if problem else (decision.reason_code or "invalid")
            await self._reject(event, session_id, code, token)
            return
        auth = Authorization(
            id_token=token,
            source="rfid",
            valid_until=decision.valid_until or clock.now() + timedelta(
                seconds=self.session_config.authorization_valid_s),
            cost_cap=decision.cost_cap or optional_amount(
                self.session_config.default_cost_cap),
            energy_cap_wh=decision.energy_cap_wh,
            tariff_json=_tariff_text(decision.tariff),
            recheck=decision.offline and decision.unknown,
        )
        await self._accept(event, session_id, auth, offline=decision.offline,
                           source=decision.source)

    def _tariff_problem(self, decision: AuthDecision) -> str | None:
        if decision.tariff is None:
            return None
        try:
            parse_tariff(decision.tariff)
        except (TariffError, ValueError) as exc:
            log.error("personal tariff refused", extra=fields(error=exc))
            return str(exc)
        return None

    async def _start_card(self, event: EmvTap | TerminalCardTap, token: str) -> None:
        assert self.payments is not None
        budget = self.screen.budget  # the driver's pick, if any: the hold and the cap
        session_id = await self._open(event, token, "card")
        if session_id is None:
            return
        clock = self.clock
        card = event.read if isinstance(event, EmvTap) else event.card
        outcome = (await self.payments.reuse_hold(token, session_id)
                   or await self.payments.preauthorize(session_id, token, card, budget))
        if not outcome.approved:
            await self._reject(event, session_id, outcome.reason_code or "declined", token)
            return
        auth = Authorization(
            id_token=token,
            source="card",
            valid_until=clock.now() + timedelta(
                seconds=self.session_config.authorization_valid_s),
            cost_cap=outcome.amount,
            payment_reference=outcome.psp_reference,
            card_scheme=scheme_name(outcome.scheme),
            card_last4=outcome.last4,
            hold_until=self.payments.settings.holds.deadline(outcome.approved_at,
                                                             outcome.hold_until),
        )
        await self._accept(event, session_id, auth, offline=outcome.offline,
                           source="zvt" if isinstance(event, TerminalCardTap) else "gateway",
                           code="hold_reused" if outcome.reused else "accepted")

    async def _reject(self, event: RfidTap | EmvTap | TerminalCardTap, session_id: str,
                      code: str, token: str) -> None:
        await self.port.apply(AuthorizationRejected(self.clock.now(), code))
        self._publish(event, "declined", code, session_id=session_id, token=token)

    async def _accept(self, event: RfidTap | EmvTap | TerminalCardTap, session_id: str,
                      auth: Authorization,
                      *, offline: bool, source: str, code: str = "accepted") -> None:
        result = await self.port.apply(
            AuthorizationAccepted(self.clock.now(), session_id, auth))
        if result.refused:
            # the session went away meanwhile (e.g. it timed out); a payment is voided
            # by settlement since its session is closed
            self._publish(event, "declined", "unavailable", message=result.refused,
                          session_id=session_id, token=auth.id_token)
            return
        self._publish(event, "accepted", code, session_id=session_id, offline=offline,
                      token=auth.id_token,
                      decided_by=source,
                      cost_cap=str(auth.cost_cap) if auth.cost_cap is not None else None)

    # ---- telling the UI --------------------------------------------------------------------

    def _publish(self, event: ReaderEvent, result: str, code: str, *,
                 message: str | None = None, token: str | None = None,
                 **extra: Any) -> None:
        at = getattr(event, "at_monotonic_s", 0.0)
        decision_ms = round((self.monotonic_s() - at) * 1000, 1) if at else None
        payload = {
            "type": "tap",
            "reader": getattr(event, "reader", ""),
            "kind": "card" if isinstance(event, EmvTap | TerminalCardTap) else "rfid",
            "result": result,
            "reason": code,
            "message": message or driver_message(code, "en"),
            "decision_ms": decision_ms,
            **extra,
        }
        log.info("card tap", extra=fields(reader=payload["reader"], kind=payload["kind"],
                                          result=result, reason=code, decision_ms=decision_ms))
        self.last_tap[payload["reader"]] = {
            "at": iso_utc(self.clock.now()), "kind": payload["kind"],
            "result": result, "reason": code, "decision_ms": decision_ms}
        self.port.publish(payload)
        if self.tap_log is not None:  # after the screen was told: never slows the decision
            self.tap_log.record(reader=payload["reader"], kind=payload["kind"],
                                result=result, reason=code, token=token,
                                decision_ms=decision_ms,
                                session_id=extra.get("session_id"))


def token_type_of(uid: str) -> str:
    """The OCPP IdToken type of a card UID: ISO14443 for NFC cards, Local for 125 kHz."""
    return "Local" if len(uid) == EM4100_UID_CHARS else "ISO14443"


def _tariff_text(tariff: dict[str, Any] | None) -> str | None:
    return None if tariff is None else json.dumps(tariff, sort_keys=True)
