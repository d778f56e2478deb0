"""The local API's operations for the driver's screen (docs/local-api.md).

Provides `DriverApi(...)` with `register(api)`: the ops `status`, `language`,
`touch` (the driver touched the screen: its time limits start again), `vat_number` (a
company's VAT number for the open session's receipt and settlement), `budget` (the
card budget picked before tapping: the hold and the cost cap, terminal.payment.holds),
`ack_receipt`,
`report_problem`, `start`, `stop`, `receipt` and `sessions`, each for
the role that may use it (terminal.localapi.Role; the table is in docs/local-api.md).
The driver role (the touchscreen) never asserts an identity: it may stop only the
session on the screen and fetch only the receipt on offer. `start` is the service
role's, and needs a technician's login (`token` of `service_login`, checked by
`logged_in`, set by the station once the logins exist); only with `[localapi]
dev_free_start` (development) does it take any id token without one. Each handler
checks every field first and raises `RequestError` naming the field and what is
allowed; a refused request changes nothing. Starts and stops go through the session
port (terminal.ports.SessionPort); the screen's state is terminal.screen's; receipts
in another language are rebuilt from the journal (terminal.billing).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from terminal.billing import bill_from_journal
from terminal.desk import MAX_TOKEN_CHARS, Desk
from terminal.kernel.driver_texts import LANGUAGES
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.money import AmountError, check_amount, optional_amount
from terminal.kernel.redact import scrub, shown
from terminal.kernel.vat import VatNumberError, check_vat_number
from terminal.localapi import LocalApi, RequestError
from terminal.payment.holds import BudgetError, HoldPolicy
from terminal.pricing import TariffNotApplicableError, check_validity
from terminal.session import (
    Authorization,
    AuthorizationAccepted,
    AuthorizationChanged,
    AuthorizationKept,
    Phase,
    StopReason,
    StopRequested,
)

log = get_logger("driver_api")

MAX_PROBLEM_CHARS = 500
PROBLEM_CATEGORIES = ("payment", "charging", "screen", "damage", "other")
STOP_REASONS = {"Local": StopReason.LOCAL, "Remote": StopReason.REMOTE,
                "Technician": StopReason.TECHNICIAN}
MAX_COST_CAP = Decimal(10_000)  # in the tariff's currency
MAX_ENERGY_CAP_WH = Decimal(1_000_000)
MAX_DECIMALS = 6
SESSION_FIELDS = ("id", "opened_at", "phase", "stop_reason", "meter_start_wh",
                  "meter_stop_wh", "started_at", "stopped_at", "closed_at", "source", "detail")


@dataclass
class DriverApi(Desk):
    # the technician's login a request's `token` names (terminal.service.login.Logins.
    # logged_in); None until the station wires it: `start` then needs dev_free_start
    logged_in: Callable[[dict[str, Any]], Awaitable[Any]] | None = None
    # card payment's hold policy (PaymentSettings.holds of the station's payment
    # terminal); None when the station takes no bank cards
    holds: HoldPolicy | None = None

    def register(self, api: LocalApi) -> None:
        api.route_for_all("status", self.status)
        api.route_for_all("report_problem", self.report_problem)
        api.route_for_all("language", self.language)
        api.route_for_all("ack_receipt", self.ack_receipt)
        api.route_for_all("touch", self.touch)
        api.route_for_all("vat_number", self.vat_number)
        api.route_for_all("budget", self.budget)
        api.route("stop", self.stop, driver=self.stop_on_screen)
        api.route("receipt", self.receipt, driver=self.receipt_on_offer)
        api.route("start", self.start)
        api.route("sessions", self.sessions)

    async def status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"state": self.snapshot()}

    async def language(self, request: dict[str, Any]) -> dict[str, Any]:
        """The driver chose the screen's language."""
        language = request.get("language")
        if not isinstance(language, str) or language not in LANGUAGES:
            raise RequestError(f"language: expected one of {', '.join(LANGUAGES)}, got "
                               f"{language!r:.40}")
        self.screen.language = language
        self.screen.note_intent()
        return {"language": language, "state": self.port.publish_state()}

    async def touch(self, request: dict[str, Any]) -> dict[str, Any]:
        """The driver touched the screen: the receipt on offer stays `receipt_timeout_s`
        from now, the language reset starts again, and a session waiting to be plugged
        in gets `connection_timeout_s` from now (EN 301 549 / WCAG 2.2.1: a time limit
        the driver can extend)."""
        unexpected = sorted(set(request) - {"op", "id"})
        if unexpected:
            raise RequestError(f"touch: unexpected fields {', '.join(unexpected)}")
        now = self.clock.now()
        self.screen.keep(now)
        if self.port.state.phase is Phase.AUTHORIZED:
            await self.port.apply(AuthorizationKept(now))
        return {"state": self.port.publish_state()}

    async def vat_number(self, request: dict[str, Any]) -> dict[str, Any]:
        """A company's VAT number for the session on the screen (`session_id`), given
        while it is open: printed on its receipt and sent with its card payment's
        NotifySettlement. Given again, the last one counts."""
        unexpected = sorted(set(request) - {"op", "id", "session_id", "vat_number"})
        if unexpected:
            raise RequestError(f"{unexpected[0][:40]}: not a field of vat_number (it takes "
                               "session_id and vat_number)")
        try:
            number = check_vat_number(request.get("vat_number"))
        except VatNumberError as exc:
            raise RequestError(str(exc)) from None
        state = self.port.state
        session_id = request.get("session_id")
        if not isinstance(session_id, str) or session_id != state.session_id:
            raise RequestError(f"session_id: {shown(session_id)} is not the open session on "
                               f"the screen ({state.session_id or 'none'}); a VAT number is "
                               "taken while the session is open")
        if state.authorization is None:
            raise RequestError("session_id: the session is not authorised yet")
        result = await self.port.apply(AuthorizationChanged(
            self.clock.now(), replace(state.authorization, vat_number=number)))
        if result.refused:
            raise RequestError(f"session_id: {result.refused}")
        self.screen.note_intent()
        return {"vat_number": number, "state": self.port.publish_state()}

    async def budget(self, request: dict[str, Any]) -> dict[str, Any]:
        """The driver picked a card budget before tapping (`amount`, one of `[payment]
        budget_choices`, as text; null = back to the default hold). It is kept on the
        screen until a session opens or the idle screen's quiet time passes."""
        unexpected = sorted(set(request) - {"op", "id", "amount"})
        if unexpected:
            raise RequestError(f"budget: unexpected fields {', '.join(unexpected)[:80]}")
        policy = self.holds
        if policy is None:
            raise RequestError("budget: bank cards are not taken here")
        if not policy.choices:
            raise RequestError("budget: no budgets are offered here ([payment] "
                               "budget_choices is empty)")
        if self.port.state.is_open:
            raise RequestError("budget: a session is open; a budget is picked before "
                               "tapping")
        value = request.get("amount")
        amount = None
        if value is not None:
            offered = ", ".join(str(choice) for choice in policy.choices)
            try:
                amount = policy.check_budget(
                    check_amount(value, "amount", places=2, maximum=MAX_COST_CAP))
            except AmountError as exc:
                raise RequestError(f"{exc} (as text, one of: {offered})") from None
            except BudgetError as exc:
                raise RequestError(str(exc)) from None
        self.screen.choose_budget(amount)
        log.info("card budget picked", extra=fields(amount=amount))
        return {"amount": str(amount) if amount is not None else None,
                "state": self.port.publish_state()}

    async def ack_receipt(self, request: dict[str, Any]) -> dict[str, Any]:
        """The driver is done with the receipt on screen."""
        session_id = request.get("session_id")
        if not isinstance(session_id, str):
            raise RequestError(f"session_id: expected the session id of the receipt on "
                               f"offer (receipt_pending), got {session_id!r:.40}")
        pending = self.screen.pending_receipt(self.clock.now())
        if pending is None or pending["session_id"] != session_id:
            offered = pending["session_id"] if pending else "none"
            raise RequestError(f"session_id: {session_id!r:.40} is not the receipt on offer "
                               f"({offered})")
        self.screen.receipt_pending = None
        self.screen.note_intent()
        return {"session_id": session_id, "state": self.port.publish_state()}

    async def report_problem(self, request: dict[str, Any]) -> dict[str, Any]:
        """A driver's problem report from the screen: audited and sent to the backend."""
        text = request.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_PROBLEM_CHARS:
            raise RequestError(f"text: expected 1 to {MAX_PROBLEM_CHARS} characters, got "
                               f"{type(text).__name__}")
        category = request.get("category", "other")
        if category not in PROBLEM_CATEGORIES:
            raise RequestError(f"category: expected one of {', '.join(PROBLEM_CATEGORIES)}, "
                               f"got {category!r}")
        state = self.port.state
        detail = {"by": "driver", "category": category, "text": scrub(text.strip()),
                  "session_id": state.session_id, "phase": state.phase.value}
        audit_id = await self.store.call(self.store.store.add_audit, "problem_report",
                                         detail, self.clock.now())
        self.screen.note_intent()
        log.warning("problem reported at the screen",
                    extra=fields(category=category, reference=audit_id))
        return {"reference": audit_id}

    async def start(self, request: dict[str, Any]) -> dict[str, Any]:
        """A session for `id_token`, started by a technician (service role, `token` of a
        login) or, in development, by anyone with the service role (dev_free_start)."""
        technician = await self._starter(request)
        token = request.get("id_token")
        if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_CHARS \
                or not token.isprintable():
            raise RequestError(f"id_token: expected a non-empty printable string of at most "
                               f"{MAX_TOKEN_CHARS} characters, got {shown(token)}")
        source = request.get("source", "local")
        if source not in ("local", "app"):
            raise RequestError(f"source: expected 'local' or 'app', got {source!r}")
        cost_cap = _decimal_field(request, "cost_cap", MAX_COST_CAP) or optional_amount(
            self.config.session.default_cost_cap)
        energy_cap = _decimal_field(request, "energy_cap_wh", MAX_ENERGY_CAP_WH)
        now = self.clock.now()
        try:
            check_validity(self.pricing.station_terms.tariff, now)
        except TariffNotApplicableError as exc:
            raise RequestError(
                f"the station has no tariff valid now; charging is not offered ({exc})"
            ) from None
        if (refused := self.port.refusal_reason()) is not None:
            raise RequestError(refused)
        auth = Authorization(
            id_token=token,
            source=source,
            valid_until=now + timedelta(seconds=self.config.session.authorization_valid_s),
            cost_cap=cost_cap,
            energy_cap_wh=energy_cap,
        )
        result = await self.port.apply(AuthorizationAccepted(now, str(uuid.uuid4()), auth))
        if result.refused:
            raise RequestError(result.refused)
        session_id = self.port.state.session_id
        if technician is not None:
            await self.store.call(self.store.store.add_audit, "service_start",
                                  {"by": technician, "session_id": session_id}, now)
        log.warning("session started over the local API",
                    extra=fields(by=technician or "dev_free_start", session_id=session_id))
        self.screen.note_intent()
        return {"session_id": session_id, "state": self.snapshot()}

    async def _starter(self, request: dict[str, Any]) -> str | None:
        """Who starts: the logged-in technician ("…EEFF"), or None with dev_free_start
        and no `token`; RequestError naming `token` otherwise."""
        if request.get("token") is None and self.config.localapi.dev_free_start:
            return None
        if self.logged_in is None:
            raise RequestError("token: starting a session needs a technician's login, "
                               "and logins are not available")
        login = await self.logged_in(request)
        return str(login.technician)

    async def stop(self, request: dict[str, Any]) -> dict[str, Any]:
        reason_name = request.get("reason", "Local")
        if not isinstance(reason_name, str) or reason_name not in STOP_REASONS:
            raise RequestError(f"reason: expected one of {', '.join(STOP_REASONS)}, got "
                               f"{shown(reason_name)}")
        token = request.get("id_token")
        if token is not None and not isinstance(token, str):
            raise RequestError(f"id_token: expected a string, got {shown(token)}")
        session_id = request.get("session_id")
        if session_id is not None and session_id != self.port.state.session_id:
            raise RequestError(f"session_id: {shown(session_id)} is not the running session "
                               f"({self.port.state.session_id or 'none'})")
        result = await self.port.apply(StopRequested(self.clock.now(),
                                                     STOP_REASONS[reason_name], token))
        if result.refused:
            raise RequestError(result.refused)
        self.screen.note_intent()
        return {"state": self.snapshot()}

    async def stop_on_screen(self, request: dict[str, Any]) -> dict[str, Any]:
        """The driver pressed Stop: stops the session the screen shows, `session_id`,
        and no other (reason Local; no id token)."""
        unexpected = sorted(set(request) - {"op", "id", "session_id", "reason"})
        if unexpected:
            raise RequestError(f"{unexpected[0][:40]}: not taken from the screen (stop "
                               "takes session_id and reason Local)")
        if request.get("reason", "Local") != "Local":
            raise RequestError(f"reason: the screen stops with Local only, got "
                               f"{shown(request.get('reason'))}")
        session_id = request.get("session_id")
        if not isinstance(session_id, str):
            raise RequestError(f"session_id: expected the id of the session on the screen, "
                               f"got {shown(session_id)}")
        current = self.port.state.session_id
        if session_id != current:
            raise RequestError(f"session_id: {shown(session_id)} is not the session on the "
                               f"screen ({current or 'none'})")
        return await self.stop({"reason": "Local"})

    async def receipt_on_offer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The receipt the screen offers (`receipt_pending`), in the driver's language;
        no other session's."""
        session_id = request.get("session_id")
        pending = self.screen.pending_receipt(self.clock.now())
        if pending is None or session_id != pending["session_id"]:
            offered = pending["session_id"] if pending else "none"
            raise RequestError(f"session_id: {shown(session_id)} is not the receipt on "
                               f"offer ({offered})")
        return await self.receipt({"session_id": session_id,
                                   "language": request.get("language", "en")})

    async def receipt(self, request: dict[str, Any]) -> dict[str, Any]:
        session_id = request.get("session_id")
        store = self.store.store
        if session_id is None:
            recent = await self.store.call(store.sessions, 20)
            session_id = next((s["id"] for s in recent if s["meter_start_wh"] and s["closed_at"]),
                              None)
        if not isinstance(session_id, str):
            raise RequestError("session_id: no session with a receipt")
        found = await self.store.call(store.receipt, session_id)
        if found is None:
            raise RequestError(f"session_id: no receipt for {session_id!r}")
        language = request.get("language", "en")
        if language != "en":
            try:
                bill = await self.store.call(bill_from_journal, store, session_id, language)
            except ValueError as exc:
                raise RequestError(f"language: {exc}") from None
            assert bill is not None
            found = bill.receipt
        return {"session_id": session_id, "receipt": found[0], "text": found[1]}

    async def sessions(self, request: dict[str, Any]) -> dict[str, Any]:
        limit = request.get("limit", 20)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise RequestError(f"limit: expected an integer from 1 to 1000, got {limit!r}")
        rows = await self.store.call(self.store.store.sessions, limit)
        return {"sessions": [{k: row[k] for k in SESSION_FIELDS} for row in rows]}


def _decimal_field(request: dict[str, Any], key: str, maximum: Decimal) -> Decimal | None:
    """A positive number of at most `maximum` with at most MAX_DECIMALS decimals, given
    as text or an integer (terminal.kernel.money.check_amount); RequestError naming `key`."""
    value = request.get(key)
    if value is None:
        return None
    try:
        return check_amount(value, key, places=MAX_DECIMALS, maximum=maximum)
    except AmountError as exc:
        raise RequestError(f"{exc} (as text, e.g. \"25.00\")") from None
