"""The operator's backend as a simulator: CSMS token list + payment gateway, no transport.

`BackendLogic` answers the messages of terminal.backend.messages; the loopback server
(hw_mocks.backend_loopback) and the MQTT backend simulator put it on a wire.

- Tokens: a list of `LocalListEntry` (status, expiry, caps, personal tariff,
  technician flag). Token auth answers from it; a token it does not hold is Unknown;
  an Accepted token past its expiry is Expired. Accepted answers carry a cache expiry
  `cache_ttl_s` from now (capped by the token's expiry).
- Payment gateway: holds the X25519 private key and opens each pre-authorisation's
  envelope (hw_mocks.gateway_crypto). The envelope must be bound to the request's
  reference and station, its PAN must mask to the request's masked_pan (and tokenise to
  its token when a token key is given), and the PAN must appear nowhere in the clear in
  the request; otherwise the request is declined (invalid_envelope / pan_in_clear) and
  the reference is listed in `pan_leaks` for the last case. The PAN is used for the
  decision and dropped: it is never stored, logged or put in an answer.
- Decisions by PAN (`DEFAULT_RULES`, overridable with `load_rules`): public test card
  numbers decline with do_not_honor or insufficient_funds or approve partially; a card
  past its expiry month declines with expired_card; everything else approves the
  amount asked.
- Ledger per psp_reference: approved, captured, voided, refunded. A capture above the
  approved amount, in another currency, after a void or a second capture under another
  reference is refused (ok false + reason). Requests are idempotent: the same op with
  the same reference gets the first answer again.
- Every received message is recorded (`received`), de-duplicated by (op, reference):
  a repeat increments its `count`. Token auth requests carry no reference and are each
  recorded.
- Settlement batch (`settlement_batch`, for the terminal's end-of-day closing): the
  ledger's payments of the station active in the period, hw_mocks.backend_settlement,
  where tests also plant discrepancies (admin `plant`).
- Transport behaviour the server applies: `silent` (answer nothing), `delay_s`.

Helpers: `generate_gateway_keys(folder)` (private + public PEM for tests and the
demo; never commit keys), `load_gateway_private_key`, `load_tokens`, `load_rules`.
Errors: a bad request body raises MessageError (ValueError) naming the field; a bad
refund raises LedgerError; bad files raise ValueError naming the file and the entry.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hw_mocks.backend_keys import load_private_key, write_key_pair
from hw_mocks.gateway_crypto import EnvelopeError, open_envelope
from terminal.backend.closing_messages import SettlementBatchRequest
from terminal.backend.messages import (
    AuthStatus,
    CaptureRequest,
    CaptureResponse,
    LocalListEntry,
    LocalListUpdate,
    PreauthRequest,
    PreauthResponse,
    Refund,
    TokenAuthRequest,
    TokenAuthResponse,
    VoidRequest,
)
from terminal.kernel.cards import CardData, CardDataError, card_expired, mask_pan
from terminal.kernel.clock import SYSTEM_CLOCK, Clock, iso_utc
from terminal.kernel.logsetup import fields, get_logger
from terminal.payment.crypto import TokenKey, tokenize

log = get_logger("sim.backend")

PRIVATE_KEY_FILE = "gateway_private.pem"
PUBLIC_KEY_FILE = "gateway_public.pem"
DECLINE_REASONS = ("do_not_honor", "insufficient_funds", "expired_card", "card_not_supported")
OPS = ("authorize_token", "preauthorize", "capture", "void", "settlement_batch")


class LedgerError(ValueError):
    """A refund the ledger does not allow; the message says why."""


@dataclass(frozen=True)
class PanRule:
    """What the gateway does with one card number: decline with `decline`, approve at
    most `partial`, or (neither) approve the amount asked."""

    decline: str | None = None
    partial: Decimal | None = None

    @classmethod
    def from_json(cls, data: Any, where: str) -> PanRule:
        if not isinstance(data, dict) or len(data) != 1:
            raise ValueError(f"{where}: expected one of {{\"decline\": REASON}}, "
                             "{\"partial\": \"AMOUNT\"}, {\"approve\": true}")
        (kind, value), = data.items()
        if kind == "decline" and value in DECLINE_REASONS:
            return cls(decline=value)
        if kind == "partial" and isinstance(value, str):
            try:
                amount = Decimal(value)
            except InvalidOperation:
                amount = Decimal(-1)
            if amount.is_finite() and amount > 0:
                return cls(partial=amount)
        if kind == "approve" and value is True:
            return cls()
        raise ValueError(f"{where}: {kind} = {value!r}: expected decline one of "
                         f"{', '.join(DECLINE_REASONS)}, partial an amount as text above 0, "
                         "or approve true")


# Public test card numbers of the card schemes / PSP sandboxes.
DEFAULT_RULES: Mapping[str, PanRule] = {
    "4000000000000002": PanRule(decline="do_not_honor"),
    "4000000000009995": PanRule(decline="insufficient_funds"),
    "378282246310005": PanRule(partial=Decimal("20.00")),
}


@dataclass
class Payment:
    """One pre-authorisation in the gateway's ledger; no card data but token and mask."""

    psp_reference: str
    reference: str
    station_id: str
    token: str
    masked_pan: str
    scheme: str
    currency: str
    asked: Decimal
    approved: Decimal
    captured: Decimal | None = None
    capture_reference: str | None = None
    voided: bool = False
    refunded: Decimal = Decimal(0)
    refunds: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.voided:
            return "voided"
        if self.captured is None:
            return "authorised"
        if self.refunded == 0:
            return "captured"
        return "refunded" if self.refunded >= self.captured else "partially_refunded"

    def to_json(self) -> dict[str, Any]:
        return {
            "psp_reference": self.psp_reference, "reference": self.reference,
            "station_id": self.station_id, "token": self.token,
            "masked_pan": self.masked_pan, "scheme": self.scheme,
            "currency": self.currency, "asked": str(self.asked),
            "approved": str(self.approved),
            "captured": None if self.captured is None else str(self.captured),
            "capture_reference": self.capture_reference, "voided": self.voided,
            "refunded": str(self.refunded), "refunds": list(self.refunds),
            "status": self.status,
        }


@dataclass
class ReceivedMessage:
    op: str
    key: str | None  # the reference (idempotency key); None for token auth
    body: dict[str, Any]
    first_at: datetime
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "key": self.key, "body": self.body,
                "first_at": iso_utc(self.first_at), "count": self.count}


class BackendLogic:
    def __init__(
        self,
        gateway_key: X25519PrivateKey,
        tokens: Iterable[LocalListEntry] = (),
        rules: Mapping[str, PanRule] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache_ttl_s: float = 3600.0,
        token_key: TokenKey | None = None,
    ) -> None:
        self._gateway_key = gateway_key
        self.tokens: dict[str, LocalListEntry] = {t.id_token: t for t in tokens}
        self._rules = dict(DEFAULT_RULES if rules is None else rules)
        self.clock = clock
        self.cache_ttl_s = cache_ttl_s
        self._token_key = token_key
        self.ledger: dict[str, Payment] = {}
        self.received: list[ReceivedMessage] = []
        self._by_key: dict[tuple[str, str], ReceivedMessage] = {}
        self._answers: dict[tuple[str, str], Any] = {}
        self.duplicates = 0
        self.pan_leaks: list[str] = []
        self.list_version = 0
        self._refund_ids = 0
        self.silent = False
        self.delay_s = 0.0
        # what reconciliation tests planted (hw_mocks.backend_settlement)
        self.extra_captures: dict[str, list[Decimal]] = {}
        self.planted_at: dict[str, datetime] = {}

    @property
    def rule_count(self) -> int:
        return len(self._rules)

    # ---- transport entry -----------------------------------------------------------------

    def handle(self, op: str, body: Any) -> dict[str, Any]:
        """Answer one terminal request given as JSON; MessageError for a bad body,
        ValueError for an unknown op."""
        if op == "authorize_token":
            return self.authorize_token(TokenAuthRequest.from_json(body)).to_json()
        if op == "preauthorize":
            return self.preauthorize(PreauthRequest.from_json(body)).to_json()
        if op == "capture":
            return self.capture(CaptureRequest.from_json(body)).to_json()
        if op == "void":
            return self.void(VoidRequest.from_json(body)).to_json()
        if op == "settlement_batch":
            from hw_mocks.backend_settlement import settlement_batch

            return settlement_batch(self, SettlementBatchRequest.from_json(body)).to_json()
        raise ValueError(f"unknown op {op!r}; known: {', '.join(OPS)}")

    def _record(self, op: str, key: str | None, body: dict[str, Any]) -> Any:
        """Record a message; for a repeat of (op, key), the first answer (else None)."""
        if key is not None and (op, key) in self._by_key:
            self._by_key[(op, key)].count += 1
            self.duplicates += 1
            return self._answers.get((op, key))
        message = ReceivedMessage(op, key, body, self.clock.now())
        self.received.append(message)
        if key is not None:
            self._by_key[(op, key)] = message
        return None

    def _remember(self, op: str, key: str, answer: Any) -> Any:
        self._answers[(op, key)] = answer
        return answer

    # ---- tokens ----------------------------------------------------------------------------

    def set_token(self, entry: LocalListEntry) -> None:
        """Add or replace a token; an entry with status None removes it."""
        if entry.status is None:
            self.tokens.pop(entry.id_token, None)
        else:
            self.tokens[entry.id_token] = entry

    def authorize_token(self, req: TokenAuthRequest) -> TokenAuthResponse:
        self._record("authorize_token", None, req.to_json())
        now = self.clock.now()
        entry = self.tokens.get(req.id_token)
        status = AuthStatus.UNKNOWN if entry is None else entry.status_at(now)
        log.info("token authorisation", extra=fields(id_token=req.id_token,
                                                     station=req.station_id, status=status))
        if entry is None or status is None:
            return TokenAuthResponse(AuthStatus.UNKNOWN)
        expiry = now + timedelta(seconds=self.cache_ttl_s)
        if entry.expiry is not None:
            expiry = min(expiry, entry.expiry)
        return TokenAuthResponse(
            status=status,
            cache_expiry=expiry if status is AuthStatus.ACCEPTED else None,
            group_id=entry.group_id,
            cost_cap=entry.cost_cap,
            energy_cap_wh=entry.energy_cap_wh,
            tariff=entry.tariff,
            technician=entry.technician,
        )

    def local_list(self, update_type: str = "Full", entries: Iterable[LocalListEntry] | None
                   = None) -> LocalListUpdate:
        """The next version of the local list: by default the whole token list."""
        self.list_version += 1
        chosen = tuple(self.tokens.values()) if entries is None else tuple(entries)
        return LocalListUpdate(self.list_version, update_type, chosen)

    # ---- payments --------------------------------------------------------------------------

    def preauthorize(self, req: PreauthRequest) -> PreauthResponse:
        body = req.to_json()
        earlier = self._record("preauthorize", req.reference, body)
        if earlier is not None:
            return earlier
        card = self._open_card(req, body)
        if isinstance(card, str):
            answer = PreauthResponse(False, reason=card)
        else:
            answer = self._decide(req, card)
        log.info("pre-authorisation", extra=fields(
            reference=req.reference, masked_pan=req.masked_pan, amount=req.amount,
            approved=answer.approved, amount_approved=answer.amount_approved,
            reason=answer.reason))
        return self._remember("preauthorize", req.reference, answer)

    def _open_card(self, req: PreauthRequest, body: dict[str, Any]) -> CardData | str:
        """The card in the envelope, checked against the request, or a decline reason."""
        try:
            opened = open_envelope(req.envelope, self._gateway_key)
            card = CardData(str(opened.get("pan")), opened.get("expiry"), opened.get("psn"))
        except (EnvelopeError, CardDataError) as exc:
            log.warning("envelope refused", extra=fields(reference=req.reference, error=exc))
            return "invalid_envelope"
        clear = dict(body, envelope={k: v for k, v in req.envelope.items() if k != "ct"})
        if card.pan in json.dumps(clear):
            self.pan_leaks.append(req.reference)
            log.error("card number sent in the clear", extra=fields(reference=req.reference))
            return "pan_in_clear"
        problems = []
        if req.envelope.get("terminal") != req.station_id:
            problems.append("envelope terminal is not the station")
        if mask_pan(card.pan) != req.masked_pan:
            problems.append("masked_pan does not match the card")
        if self._token_key is not None and tokenize(card, self._token_key) != req.token:
            problems.append("token does not match the card")
        if problems:
            log.warning("envelope refused", extra=fields(reference=req.reference,
                                                         error="; ".join(problems)))
            return "invalid_envelope"
        return card

    def _decide(self, req: PreauthRequest, card: CardData) -> PreauthResponse:
        rule = self._rules.get(card.pan, PanRule())
        if rule.decline is not None:
            return PreauthResponse(False, reason=rule.decline)
        if card_expired(card, self.clock.now().date()):
            return PreauthResponse(False, reason="expired_card")
        amount = req.amount if rule.partial is None else min(req.amount, rule.partial)
        psp_reference = f"PSP-{secrets.token_hex(6).upper()}"
        self.ledger[psp_reference] = Payment(
            psp_reference=psp_reference, reference=req.reference, station_id=req.station_id,
            token=req.token, masked_pan=req.masked_pan, scheme=req.scheme,
            currency=req.currency, asked=req.amount, approved=amount)
        return PreauthResponse(True, psp_reference=psp_reference, amount_approved=amount)

    def capture(self, req: CaptureRequest) -> CaptureResponse:
        earlier = self._record("capture", req.reference, req.to_json())
        if earlier is not None:
            return earlier
        payment = self.ledger.get(req.psp_reference)
        reason = None
        if payment is None:
            reason = "unknown_payment"
        elif payment.voided:
            reason = "already_voided"
        elif payment.captured is not None:
            reason = "already_captured"
        elif req.currency != payment.currency:
            reason = "currency_mismatch"
        elif req.amount > payment.approved:
            reason = "amount_above_authorised"
        else:
            payment.captured = req.amount
            payment.capture_reference = req.reference
        log.info("capture", extra=fields(reference=req.reference, psp=req.psp_reference,
                                         amount=req.amount, ok=reason is None, reason=reason))
        return self._remember("capture", req.reference, CaptureResponse(reason is None, reason))

    def void(self, req: VoidRequest) -> CaptureResponse:
        earlier = self._record("void", req.reference, req.to_json())
        if earlier is not None:
            return earlier
        if req.psp_reference is not None:
            payment = self.ledger.get(req.psp_reference)
        else:  # the terminal never heard our answer: find it by the terminal's reference
            payment = next((p for p in self.ledger.values() if p.reference == req.reference),
                           None)
        reason = None
        if payment is None:
            reason = None if req.psp_reference is None else "unknown_payment"
        elif payment.captured is not None:
            reason = "already_captured"
        else:
            payment.voided = True
        log.info("void", extra=fields(reference=req.reference, psp=req.psp_reference,
                                      ok=reason is None, reason=reason))
        return self._remember("void", req.reference, CaptureResponse(reason is None, reason))

    def refund(self, psp_reference: str, amount: Decimal | None = None,
               reason: str | None = None) -> Refund:
        """Refund (part of) a captured payment; `amount` None = all that is left."""
        payment = self.ledger.get(psp_reference)
        if payment is None:
            raise LedgerError(f"psp_reference {psp_reference!r}: no such payment")
        if payment.captured is None:
            raise LedgerError(f"psp_reference {psp_reference!r}: not captured "
                              f"({payment.status}); nothing to refund")
        left = payment.captured - payment.refunded
        amount = left if amount is None else amount
        if not (amount.is_finite() and 0 < amount <= left):
            raise LedgerError(f"refund of {amount}: expected above 0 and at most {left} "
                              f"{payment.currency} (captured {payment.captured}, refunded "
                              f"{payment.refunded})")
        self._refund_ids += 1
        refund = Refund(f"RF-{self._refund_ids:04d}-{secrets.token_hex(3).upper()}",
                        psp_reference, payment.reference, amount, payment.currency, reason)
        payment.refunded += amount
        payment.refunds.append(refund.refund_id)
        log.info("refund", extra=fields(psp=psp_reference, amount=amount,
                                        refund_id=refund.refund_id))
        return refund

    def received_json(self, op: str | None = None) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.received if op is None or m.op == op]


# ---- keys and files ------------------------------------------------------------------------


def generate_gateway_keys(folder: str | Path) -> tuple[Path, Path]:
    """A new gateway key pair in `folder`: (private PEM, mode 0600; public PEM). For
    tests and the demo only; never commit keys."""
    return write_key_pair(folder, X25519PrivateKey.generate(), PRIVATE_KEY_FILE,
                          PUBLIC_KEY_FILE)


def load_gateway_private_key(path: str | Path) -> X25519PrivateKey:
    return load_private_key(path, "gateway", X25519PrivateKey, "X25519")


def _read_json(path: str | Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{what} file {path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} file {path}: not JSON: {exc}") from None


def load_tokens(path: str | Path) -> list[LocalListEntry]:
    """A JSON array of local list entries (or {"tokens": [...]})."""
    data = _read_json(path, "tokens")
    if isinstance(data, dict):
        data = data.get("tokens")
    if not isinstance(data, list):
        raise ValueError(f"tokens file {path}: expected a JSON array of tokens")
    entries = []
    for i, item in enumerate(data):
        try:
            entries.append(LocalListEntry.from_json(item))
        except ValueError as exc:
            raise ValueError(f"tokens file {path}: entry {i}: {exc}") from None
    return entries


def load_rules(path: str | Path) -> dict[str, PanRule]:
    """DEFAULT_RULES updated with a JSON object {card number: rule}; the rule
    {"approve": true} cancels a default."""
    data = _read_json(path, "rules")
    if not isinstance(data, dict):
        raise ValueError(f"rules file {path}: expected a JSON object {{card number: rule}}")
    rules = dict(DEFAULT_RULES)
    for i, (pan, rule) in enumerate(data.items()):
        if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
            raise ValueError(f"rules file {path}: key {i}: expected a card number of 12 "
                             "to 19 digits")
        rules[pan] = PanRule.from_json(rule, f"rules file {path}: rule {i}")
    return rules
