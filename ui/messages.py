"""What the daemon says, folded into the `UiModel`: replies, pushed messages, the
connection going up or down, and the receipt requests that follow.

Provides `apply_message(model, message, now_s)` (one line from the local API, a reply
with `op` or a pushed message with `type`; returns the requests the UI must send in
answer, e.g. `{"op": "receipt", ...}` for a new receipt_pending or a language change
while a receipt is shown), `set_connected(model, connected)` and
`receipt_requests(model, now_s)` (the receipt to fetch now, if any). Replies to the
technician's `service_*` ops go to ui/service_replies.py, the reply to `vat_number` to
ui/vat_entry.py.

On failure: a message with missing or malformed fields changes nothing it cannot read;
a refusal is logged and undoes what the request had changed on screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terminal.kernel.logsetup import fields, get_logger
from ui import vat_entry
from ui.accessibility import follow_session
from ui.model import (
    CHARGING_PHASES,
    RECEIPT_RETRY_S,
    UiModel,
    close_info,
    current_language,
    pending_receipt,
)
from ui.service_replies import apply_reply, on_connection, on_state, on_tap

log = get_logger("ui.view")


def set_connected(model: UiModel, connected: bool) -> None:
    """The local API connection went up or down (a request in flight is lost with it)."""
    model.connected = connected
    on_connection(model.service, connected)
    vat_entry.on_connection(model.vat, connected)
    model.receipt_request = None
    model.receipt_request_at_s = None
    close_info(model)
    if not connected:
        model.card_present_at_s = None
        model.stop_requested_at_s = None


def apply_message(model: UiModel, message: Mapping[str, Any], now_s: float) -> list[dict[str, Any]]:
    """Fold one message from the daemon (reply or push) into the model; returns the
    requests the UI must send in response (e.g. fetch the receipt for receipt_pending)."""
    if not isinstance(message, Mapping):
        return []
    if isinstance(message.get("state"), Mapping) and message.get("ok") is not False:
        model.state_at_s = now_s  # the daemon's deadlines count from its `now` in it
    kind = message.get("type")
    if kind is not None:
        return _apply_push(model, str(kind), message, now_s)
    op = message.get("op")
    if (isinstance(op, str) and op.startswith("service_")) or message.get("id") in \
            model.service.in_flight:
        if message.get("ok") is False:
            log.warning("the daemon refused a service request",
                        extra=fields(op=op, error=message.get("error")))
        requests = apply_reply(model.service, message, now_s)
        _fold_state(model, message)
        return requests
    if op == "vat_number":
        vat_entry.apply_reply(model.vat, message)
    if message.get("ok") is False:
        _apply_refusal(model, op, message)
        return []
    if op == "subscribe":
        model.receipt_request = None  # a new connection: earlier requests are lost
    if op == "receipt":
        _apply_receipt(model, message)
    elif op == "report_problem":
        model.report_result = "sent"
        reference = message.get("reference")
        model.report_reference = reference if isinstance(reference, int) else None
    _fold_state(model, message)
    return receipt_requests(model, now_s)


def _apply_push(model: UiModel, kind: str, message: Mapping[str, Any],
                now_s: float) -> list[dict[str, Any]]:
    if kind == "state":
        _fold_state(model, message)
        return receipt_requests(model, now_s)
    if kind in ("tap", "card_present"):
        close_info(model)  # a card: the screen the tap leads to, not a meter page
    if kind == "tap":
        model.tap = dict(message)
        model.tap_at_s = now_s
        on_tap(model.service, message, now_s)
    elif kind == "card_present":
        model.card_present_at_s = now_s
        model.card_kind = message.get("kind") if isinstance(message.get("kind"), str) else None
    elif kind == "connectivity" and model.state is not None:
        model.state = {**model.state, "backend_online": bool(message.get("backend_online"))}
    elif kind == "reader" and model.state is not None:
        reader, reader_state = message.get("reader"), message.get("state")
        if isinstance(reader, str) and isinstance(reader_state, str):
            readers = model.state.get("readers")
            readers = dict(readers) if isinstance(readers, Mapping) else {}
            readers[reader] = reader_state
            model.state = {**model.state, "readers": readers}
    elif kind == "receipt_updated":
        if model.receipt is not None and model.receipt.get("session_id") == message.get(
                "session_id"):
            model.receipt_language = None  # rebuilt (a refund): fetch it again
            model.receipt_request = None
        return receipt_requests(model, now_s)
    elif kind == "hold_released":  # a card hold voided without energy: the idle screen says so
        model.hold_released = dict(message)
        model.hold_released_at_s = now_s
    elif kind == "session_ended":
        model.session_ended = dict(message)
    return []


def _apply_refusal(model: UiModel, op: Any, message: Mapping[str, Any]) -> None:
    log.warning("the daemon refused a request",
                extra=fields(op=op, error=message.get("error")))
    if op == "language":
        model.language = None
    elif op == "receipt":
        model.receipt_failed = True
    elif op == "report_problem":
        model.report_result = "failed"
    elif op == "stop":
        model.stop_requested_at_s = None


def _apply_receipt(model: UiModel, message: Mapping[str, Any]) -> None:
    session_id = message.get("session_id")
    body = message.get("receipt")
    request = model.receipt_request
    if request is not None and request[0] == session_id:
        language = request[1]
    else:
        language = body.get("language") if isinstance(body, Mapping) else None
    model.receipt = {"session_id": session_id,
                     "receipt": dict(body) if isinstance(body, Mapping) else {},
                     "text": message.get("text") if isinstance(message.get("text"), str) else ""}
    model.receipt_language = language if isinstance(language, str) else None
    model.receipt_request = None
    model.receipt_request_at_s = None
    model.receipt_failed = False


def _fold_state(model: UiModel, message: Mapping[str, Any]) -> None:
    """The snapshot the message carries (its `state`), if any, becomes the model's."""
    state = message.get("state")
    if not isinstance(state, Mapping):
        return
    model.state = dict(state)
    on_state(model.service, state)
    if model.language is not None and state.get("language") == model.language:
        model.language = None  # the daemon has taken the choice over
    if state.get("phase") not in CHARGING_PHASES:
        model.stop_requested_at_s = None
    vat_entry.forget_other_sessions(model.vat, state.get("session_id"))
    if model.info_screen is not None and state.get("phase") != model.info_phase:
        close_info(model)  # a meter page belongs to the phase it was opened in
    pending = state.get("receipt_pending")
    if not isinstance(pending, Mapping):
        model.receipt = None
        model.receipt_language = None
        model.receipt_request = None
        model.receipt_failed = False
        model.receipt_acked = None
    follow_session(model.modes, state, pending_receipt(model) is not None)


def receipt_requests(model: UiModel, now_s: float) -> list[dict[str, Any]]:
    """The `receipt` request due now: the pending receipt in the screen's language, when
    it is not here yet and not asked for within RECEIPT_RETRY_S."""
    pending = pending_receipt(model)
    if pending is None:
        return []
    want = (str(pending["session_id"]), current_language(model))
    have = ((model.receipt.get("session_id"), model.receipt_language)
            if model.receipt is not None else None)
    if have == want:
        return []
    if (model.receipt_request == want and model.receipt_request_at_s is not None
            and now_s - model.receipt_request_at_s < RECEIPT_RETRY_S):
        return []
    model.receipt_request = want
    model.receipt_request_at_s = now_s
    return [{"op": "receipt", "session_id": want[0], "language": want[1]}]
