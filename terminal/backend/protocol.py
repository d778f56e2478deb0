"""The backend protocol over MQTT 5: the one place that knows topic names and the wire
format (docs/protocol.md). Pure: no paho here.

Topic tree, one subtree per station (`station_id` as configured, `/`, `+`, `#` refused):

| topic | direction | QoS | retained | payload |
|---|---|---|---|---|
| `evterm/v1/{station}/up/status` | terminal -> backend | 1 | yes (Last Will: offline) | `Status` |
| `evterm/v1/{station}/up/event` | terminal -> backend | 1 | no | `Event`: one outbox message |
| `evterm/v1/{station}/up/request` | terminal -> backend | 1 | no | `Request` |
| `evterm/v1/{station}/up/response` | terminal -> backend | 1 | no | `Response` to a command |
| `evterm/v1/{station}/down/command` | backend -> terminal | 1 | no | `Command` |
| `evterm/v1/{station}/down/response` | backend -> terminal | 1 | no | `Response` to a request |

Every payload is a UTF-8 JSON object with `schema_version` (1). Requests and commands
carry the MQTT 5 ResponseTopic and CorrelationData properties; the answer goes to the
response topic with the same correlation data. Signed commands (tariff and local list
updates) carry `signature`: base64 Ed25519 over `canonical(body)`.

Typed models, each with `to_json()` (the object `encode` sends) and `from_json(data)`:
- up: `Status`, `Event` (one outbox message), `Request` (op in REQUEST_OPS, body = the
  backend_messages request's to_json), `Response` (to a command).
- down: `Command` (name in COMMANDS, `message` = the typed body: `RemoteStart`,
  `RemoteStop`, `TariffUpdate`, `LocalListCommand`, backend_messages `Refund`,
  `ConfigChange`, `Reconcile`, `Diagnostics`, backend.firmware `FirmwareUpdate`) and
  `Response` (to a request; body = the backend_messages response's to_json).
- `decode_command(payload, correlation, response_topic, operator_key)` and
  `decode_response(payload, correlation)` -> `Inbound`; `decode_status`, `decode_event`,
  `decode_request` for the backend side (hw_mocks). `signed_command(name, content, key)`
  builds a signed tariff_update/local_list body.

On failure: `decode_*` and `from_json` raise `ProtocolError(field, reason)` naming the
JSON field (never repeating a value that could be a card number); the caller answers
with an error response naming it and changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from terminal.backend.firmware import FirmwareUpdate
from terminal.backend.json_fields import JsonFields, decimal_json, time_json
from terminal.backend.messages import ID_TOKEN, LocalListUpdate, MessageError, Refund
from terminal.kernel.money import MAX_AMOUNT, MAX_ENERGY_WH, AmountError, check_amount
from terminal.kernel.redact import shown

SCHEMA_VERSION = 1
ROOT = "evterm/v1"
MAX_PAYLOAD_BYTES = 256 * 1024
UP_KINDS = ("status", "event", "request", "response")
DOWN_KINDS = ("command", "response")
REQUEST_OPS = ("authorize_token", "preauthorize", "capture", "void", "settlement_batch")
SIGNED_COMMANDS = ("tariff_update", "local_list")
COMMANDS = ("remote_start", "remote_stop", "tariff_update", "local_list", "refund",
            "config_change", "reconcile", "diagnostics", "firmware_update")
STATES = ("online", "offline")
MAX_CORRELATION_BYTES = 128


class ProtocolError(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def check_station_id(station_id: str) -> str:
    if not station_id or any(c in station_id for c in "/+#\x00") or len(station_id) > 64:
        raise ProtocolError("station_id", f"{station_id!r} cannot be part of a topic "
                            "(1-64 characters, no / + # or NUL)")
    return station_id


def up(station_id: str, kind: str) -> str:
    if kind not in UP_KINDS:
        raise ValueError(f"up topic kind {kind!r}: expected one of {', '.join(UP_KINDS)}")
    return f"{ROOT}/{check_station_id(station_id)}/up/{kind}"


def down(station_id: str, kind: str) -> str:
    if kind not in DOWN_KINDS:
        raise ValueError(f"down topic kind {kind!r}: expected one of {', '.join(DOWN_KINDS)}")
    return f"{ROOT}/{check_station_id(station_id)}/down/{kind}"


def parse_topic(topic: str) -> tuple[str, str, str]:
    """(station_id, 'up'|'down', kind) of one of our topics; ProtocolError otherwise."""
    parts = topic.split("/")
    if (len(parts) != 5 or "/".join(parts[:2]) != ROOT or parts[3] not in ("up", "down")
            or parts[4] not in (UP_KINDS if parts[3] == "up" else DOWN_KINDS)):
        raise ProtocolError("topic", f"{topic!r} is not an evterm/v1 topic")
    return parts[2], parts[3], parts[4]


# ---- JSON ----------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """The bytes a signature covers: compact JSON with sorted keys, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps({"schema_version": SCHEMA_VERSION, **message}, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def decode(payload: bytes) -> dict[str, Any]:
    """The JSON object of a payload with a supported schema_version."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("payload", f"{len(payload)} bytes, at most {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: huge ints
        raise ProtocolError("payload", f"not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ProtocolError("payload", f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ProtocolError("schema_version", f"expected {SCHEMA_VERSION}, got {version!r}")
    return data


# ---- signatures ------------------------------------------------------------------------------


def sign(body: Any, key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.sign(canonical(body))).decode("ascii")


def verify(body: Any, signature: Any, key: Ed25519PublicKey) -> None:
    """ProtocolError('signature', why) unless `signature` is the operator's over body."""
    if not isinstance(signature, str) or not signature:
        raise ProtocolError("signature", "missing: tariffs and lists must be signed by "
                            "the operator")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("signature", "not base64") from None
    try:
        signed = canonical(body)
    except (ValueError, TypeError, RecursionError):
        raise ProtocolError("signature", "the signed content cannot be canonicalised") from None
    try:
        key.verify(raw, signed)
    except InvalidSignature:
        raise ProtocolError("signature", "does not match the operator's key") from None


@dataclass(frozen=True)
class Inbound:
    """A validated downlink message as handlers see it."""

    kind: str  # 'command' or 'response'
    name: str  # command name, or the op the response answers
    body: dict[str, Any] = field(default_factory=dict)
    correlation: bytes | None = None
    response_topic: str | None = None
    message: Any = None  # the typed model: a command's body model or a Response


# ---- validation helpers ----------------------------------------------------------------------

_CONFIG_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,63}$")
_START_CODE = re.compile(r"^[A-Za-z0-9]{1,32}$")


class _Obj(JsonFields):
    """Typed reads of one JSON object; errors are ProtocolError naming `where.key`."""

    max_time_chars = 40

    def __init__(self, data: Any, where: str) -> None:
        super().__init__(data, where, ProtocolError)

    def text(self, key: str, *, optional: bool = False, max_len: int = 255,
             pattern: re.Pattern[str] | None = None, allowed: str = "") -> Any:
        value = self.raw(key, optional=optional)
        if value is None:
            return None
        if not isinstance(value, str) or not 0 < len(value) <= max_len:
            raise self.fail(key, f"expected a string of 1 to {max_len} characters, "
                            f"got {shown(value)}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"expected {allowed}, got {shown(value)}")
        return value

    def integer(self, key: str, *, optional: bool = False, min_value: int = 0,
                max_value: int = 2**53) -> Any:
        value = self.raw(key, optional=optional)
        if value is None:
            return None
        if (not isinstance(value, int) or isinstance(value, bool)
                or not min_value <= value <= max_value):
            raise self.fail(key, f"expected an integer from {min_value} to {max_value}, "
                            f"got {shown(value)}")
        return value

    def amount(self, key: str, *, optional: bool = True,
               maximum: Decimal = MAX_AMOUNT) -> Decimal | None:
        """A decimal above 0 as a string, within the terminal's bounds (at most `maximum`)."""
        value = self.raw(key, optional=optional)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, "expected a decimal above 0 as a string such as \"12.50\", "
                            f"got {shown(value)}")
        try:
            return check_amount(value, key, maximum=maximum)
        except AmountError as exc:
            raise self.fail(key, f"{exc.reason} (as a string such as \"12.50\")") from None


def _check_tariff(where: str, tariff: dict[str, Any]) -> None:
    from terminal.pricing import TariffError, parse_tariff

    try:
        parse_tariff(tariff)
    except TariffError as exc:
        raise ProtocolError(where, f"not a valid OCPI 2.2.1 tariff: {exc}") from None
    except (ValueError, TypeError, KeyError, ArithmeticError, RecursionError) as exc:
        raise ProtocolError(where, f"not a valid OCPI 2.2.1 tariff ({type(exc).__name__})") \
            from None


def _from_api(model: Any, data: Any, where: str) -> Any:
    """A backend_messages model from JSON; its MessageError becomes a ProtocolError."""
    try:
        return model.from_json(data)
    except MessageError as exc:
        sub = exc.field.removeprefix(model.__name__)
        raise ProtocolError(f"{where}{sub}" if where else exc.field, exc.problem) from None
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        raise ProtocolError(where or model.__name__, f"invalid ({type(exc).__name__})") \
            from None


# ---- up: terminal -> backend -----------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """The retained state of the link (`up/status`); the Last Will says offline."""

    state: str
    outbox_depth: int = 0
    oldest_pending_at: str | None = None
    accepting_sessions: bool = True
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "outbox_depth": self.outbox_depth,
                "oldest_pending_at": self.oldest_pending_at,
                "accepting_sessions": self.accepting_sessions, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Any) -> Status:
        f = _Obj(data, "")
        state = f.text("state")
        if state not in STATES:
            raise ProtocolError("state", f"expected online or offline, got {shown(state)}")
        oldest = f.moment("oldest_pending_at", optional=True)
        return cls(state, f.integer("outbox_depth", optional=True) or 0,
                   time_json(oldest), f.boolean("accepting_sessions", default=True),
                   f.text("reason", optional=True, max_len=512))


@dataclass(frozen=True)
class Event:
    """One outbox message (`up/event`): a transaction event, receipt or audit event."""

    kind: str
    idempotency_key: str
    created_at: str
    payload: dict[str, Any] = field(repr=False)
    session_id: str | None = None
    seq_no: int | None = None
    offline: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "idempotency_key": self.idempotency_key,
                "session_id": self.session_id, "seq_no": self.seq_no,
                "offline": self.offline, "created_at": self.created_at,
                "payload": self.payload}

    @classmethod
    def from_outbox(cls, message: Any) -> Event:
        """From a terminal.store.OutboxMessage."""
        return cls(message.kind, message.idempotency_key, message.created_at,
                   message.payload, message.session_id, message.seq_no,
                   bool(message.payload.get("offline", False)))

    @classmethod
    def from_json(cls, data: Any) -> Event:
        f = _Obj(data, "")
        created = f.moment("created_at")
        return cls(f.text("kind", max_len=64), f.text("idempotency_key", max_len=255),
                   time_json(created) or "", f.obj("payload") or {},
                   f.text("session_id", optional=True, max_len=64),
                   f.integer("seq_no", optional=True), f.boolean("offline", default=False))


@dataclass(frozen=True)
class Request:
    """A request to the backend (`up/request`); `body` is the backend_messages request's
    JSON."""

    op: str
    body: dict[str, Any] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "body": self.body}

    @classmethod
    def from_json(cls, data: Any) -> Request:
        f = _Obj(data, "")
        op = f.text("op", max_len=32)
        if op not in REQUEST_OPS:
            raise ProtocolError("op", f"expected one of {', '.join(REQUEST_OPS)}, "
                                f"got {shown(op)}")
        return cls(op, f.obj("body") or {})


@dataclass(frozen=True)
class Response:
    """The answer to a request (down) or a command (up): ok + body, or error + field.
    `name` is the op or command it answers (informative; pairing is by correlation)."""

    ok: bool
    name: str | None = None
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    error: str | None = None
    field: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "name": self.name}
        if self.ok:
            out["body"] = self.body
        else:
            out["error"] = self.error
            out["field"] = self.field
        return out

    @classmethod
    def failure(cls, name: str | None, error: str, field_name: str | None = None) -> Response:
        return cls(False, name, {}, error, field_name)

    @classmethod
    def from_json(cls, data: Any) -> Response:
        f = _Obj(data, "")
        ok = f.boolean("ok")
        name = f.text("name", optional=True, max_len=64)
        if ok:
            return cls(True, name, f.obj("body", optional=True) or {})
        return cls(False, name, {}, f.text("error", max_len=1024),
                   f.text("field", optional=True, max_len=255))


# ---- down: backend -> terminal ---------------------------------------------------------------


@dataclass(frozen=True)
class RemoteStart:
    id_token: str
    cost_cap: Decimal | None = None
    energy_cap_wh: Decimal | None = None
    tariff: dict[str, Any] | None = field(default=None, repr=False)
    start_code: str | None = None  # the code of the station's app-start QR (its snapshot)

    def to_json(self) -> dict[str, Any]:
        out = {"id_token": self.id_token, "cost_cap": decimal_json(self.cost_cap),
               "energy_cap_wh": decimal_json(self.energy_cap_wh), "tariff": self.tariff}
        if self.start_code is not None:
            out["start_code"] = self.start_code
        return out

    @classmethod
    def from_json(cls, data: Any) -> RemoteStart:
        f = _Obj(data, "body")
        tariff = f.obj("tariff", optional=True)
        if tariff is not None:
            _check_tariff("body.tariff", tariff)
        return cls(f.text("id_token", max_len=64, pattern=ID_TOKEN,
                          allowed="1 to 64 printable ASCII characters without spaces"),
                   f.amount("cost_cap"), f.amount("energy_cap_wh", maximum=MAX_ENERGY_WH), tariff,
                   f.text("start_code", optional=True, max_len=32, pattern=_START_CODE,
                          allowed="the letters and digits of the QR code"))


@dataclass(frozen=True)
class RemoteStop:
    session_id: str | None = None  # None: the running session

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id}

    @classmethod
    def from_json(cls, data: Any) -> RemoteStop:
        return cls(_Obj(data, "body").text("session_id", optional=True, max_len=64))


def _signed_content(data: Any, slot: str, key: Ed25519PublicKey | None
                    ) -> tuple[dict[str, Any], str]:
    """The content of a signed command's body (in `slot`: tariff or update), verified
    with `key` when given, and its signature ("" when there is none)."""
    f = _Obj(data, "body")
    content = f.obj(slot) or {}
    signature = f.data.get("signature")
    if key is not None:
        verify(content, signature, key)
    return content, signature if isinstance(signature, str) else ""


@dataclass(frozen=True)
class TariffUpdate:
    """A new default tariff; `signature` is the operator's over canonical(tariff)."""

    tariff: dict[str, Any] = field(repr=False)
    signature: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"tariff": self.tariff, "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any, key: Ed25519PublicKey | None = None) -> TariffUpdate:
        tariff, signature = _signed_content(data, "tariff", key)
        _check_tariff("body.tariff", tariff)
        return cls(tariff, signature)


@dataclass(frozen=True)
class LocalListCommand:
    """A local list update; `signature` is the operator's over canonical(update)."""

    update: LocalListUpdate
    signature: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"update": self.update.to_json(), "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any, key: Ed25519PublicKey | None = None) -> LocalListCommand:
        update, signature = _signed_content(data, "update", key)
        return cls(_from_api(LocalListUpdate, update, "body.update"), signature)


@dataclass(frozen=True)
class ConfigChange:
    key: str  # section.key as in the configuration file
    value: str | int | float | bool

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}

    @classmethod
    def from_json(cls, data: Any) -> ConfigChange:
        f = _Obj(data, "body")
        key = f.text("key", max_len=97, pattern=_CONFIG_KEY, allowed="section.key")
        value = f.data.get("value")
        ok = (isinstance(value, bool | int) or (isinstance(value, float) and value == value
                                                and abs(value) != float("inf"))
              or (isinstance(value, str) and len(value) <= 1024))
        if not ok or (isinstance(value, int) and not isinstance(value, bool)
                      and abs(value) > 2**53):
            raise ProtocolError("body.value", "expected a string (at most 1024 characters), "
                                f"a number or true/false, got {shown(value)}")
        return cls(key, value)


@dataclass(frozen=True)
class Reconcile:
    since: datetime | None = None  # None: everything the terminal still holds

    def to_json(self) -> dict[str, Any]:
        return {"since": time_json(self.since)}

    @classmethod
    def from_json(cls, data: Any) -> Reconcile:
        return cls(_Obj(data, "body").moment("since", optional=True))


@dataclass(frozen=True)
class Diagnostics:
    def to_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, data: Any) -> Diagnostics:
        _Obj(data, "body")
        return cls()


def _refund(data: Any) -> Any:
    return _from_api(Refund, data, "body")


_PLAIN_COMMANDS: dict[str, Any] = {
    "remote_start": RemoteStart.from_json,
    "remote_stop": RemoteStop.from_json,
    "refund": _refund,
    "config_change": ConfigChange.from_json,
    "reconcile": Reconcile.from_json,
    "diagnostics": Diagnostics.from_json,
    "firmware_update": lambda data: _from_api(FirmwareUpdate, data, "body"),
}


@dataclass(frozen=True)
class Command:
    """A command from the backend (`down/command`): `name` and its typed `message`."""

    name: str
    message: Any

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "body": self.message.to_json()}

    @classmethod
    def from_json(cls, data: Any, key: Ed25519PublicKey | None = None) -> Command:
        """`key`: the operator's public key; without it, signed commands are refused."""
        f = _Obj(data, "")
        name = f.text("name", max_len=32)
        if name not in COMMANDS:
            raise ProtocolError("name", f"unknown command {shown(name)}; expected one of "
                                f"{', '.join(COMMANDS)}")
        body = f.obj("body", optional=True)
        body = {} if body is None else body
        if name in SIGNED_COMMANDS:
            if key is None:
                raise ProtocolError("signature", "no operator key is configured on this "
                                    "terminal ([backend] operator_key_file); signed commands "
                                    "are refused")
            model = TariffUpdate if name == "tariff_update" else LocalListCommand
            return cls(name, model.from_json(body, key))
        return cls(name, _PLAIN_COMMANDS[name](body))


def signed_command(name: str, content: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The body of a signed command: tariff_update {tariff, signature} or local_list
    {update, signature}, signed over canonical(content)."""
    if name not in SIGNED_COMMANDS:
        raise ValueError(f"{name!r} is not a signed command")
    slot = "tariff" if name == "tariff_update" else "update"
    return {slot: content, "signature": sign(content, key)}


# ---- decoding with MQTT properties -----------------------------------------------------------


def _correlation(correlation: Any) -> bytes | None:
    if correlation is None:
        return None
    if not isinstance(correlation, bytes | bytearray) or not \
            0 < len(correlation) <= MAX_CORRELATION_BYTES:
        raise ProtocolError("correlation_data", f"expected 1 to {MAX_CORRELATION_BYTES} bytes")
    return bytes(correlation)


def decode_command(payload: bytes, correlation: Any = None, response_topic: Any = None,
                   operator_key: Ed25519PublicKey | None = None) -> Inbound:
    """A validated command; ProtocolError naming the field otherwise."""
    correlation = _correlation(correlation)
    if response_topic is not None and (not isinstance(response_topic, str)
                                       or not 0 < len(response_topic) <= 256
                                       or any(c in response_topic for c in "+#\x00")):
        raise ProtocolError("response_topic", "expected a topic without wildcards")
    command = Command.from_json(decode(payload), operator_key)
    return Inbound("command", command.name, command.message.to_json(), correlation,
                   response_topic, command.message)


def decode_response(payload: bytes, correlation: Any = None) -> Inbound:
    """A validated response to one of our requests."""
    correlation = _correlation(correlation)
    response = Response.from_json(decode(payload))
    return Inbound("response", response.name or "", response.body, correlation, None, response)


def decode_status(payload: bytes) -> Status:
    return Status.from_json(decode(payload))


def decode_event(payload: bytes) -> Event:
    return Event.from_json(decode(payload))


def decode_request(payload: bytes) -> Request:
    return Request.from_json(decode(payload))
