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

On failure: `decode_*` raise `ProtocolError(field, reason)` naming the JSON field; the
caller answers with an error response naming it and changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SCHEMA_VERSION = 1
ROOT = "evterm/v1"
MAX_PAYLOAD_BYTES = 256 * 1024
UP_KINDS = ("status", "event", "request", "response")
DOWN_KINDS = ("command", "response")
REQUEST_OPS = ("authorize_token", "preauthorize", "capture", "void")
SIGNED_COMMANDS = ("tariff_update", "local_list")


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
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
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
        key.verify(raw, canonical(body))
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
