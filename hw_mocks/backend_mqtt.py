"""`evterm sim backend`: the operator's CSMS and payment gateway as an MQTT 5 client.

A paho-mqtt 2.x client (callback API 2, MQTT 5) subscribed to `evterm/v1/+/up/#` that
puts hw_mocks.backend_logic on the wire of terminal.backend.protocol:

- Requests (`up/request`, `protocol.Request` `{"op": OP, "body": {...}}`, OP one of
  authorize_token, preauthorize, capture, void) are answered through BackendLogic on
  their MQTT 5 ResponseTopic with the same CorrelationData, as a `protocol.Response`:
  `{"ok": true, "name": OP, "body": answer}` or `{"ok": false, "name": OP, "error":
  reason, "field": field}` (what terminal.backend.mqtt decodes with
  `protocol.decode_response`). The response topic must be in the
  requesting station's own `down/` tree, else the request is dropped (a station cannot
  make the backend publish to another station). `silent` drops requests unanswered;
  `delay_s` answers them late (each in its own task).
- Events (`up/event`, `protocol.Event`, one outbox message: `kind`, `idempotency_key`,
  `session_id`, `seq_no`, `offline`, `created_at`, `payload`; parsed with
  `protocol.decode_event`) are recorded once per idempotency key (repeats counted in
  `duplicates`); per session the seq_no of each new event must be above the last one,
  otherwise an order violation is recorded. A `NotifySettlement` event's payload is
  checked field by field (`settlement.NotifySettlement.from_json`: OCPP 2.1's names,
  types and limits) and dropped into `rejected` naming the field when it fails.
  A Z-report (kind `z_report`, the
  terminal's end-of-day closing) is checked (closing_messages.check_z_report) and
  recorded like any event (admin `events` with kind z_report), or rejected.
- Status (`up/status`, retained, `protocol.decode_status`) is kept per station; an
  empty retained payload clears it.
- Commands (`down/command`, `protocol.Command` JSON `{"name": NAME, "body": {...}}`) go
  out with ResponseTopic `up/response` of the station and fresh CorrelationData; answers
  (`protocol.Response`, kept raw in `responses`) are matched by correlation data.
  tariff_update and local_list are signed inside the body with
  `protocol.signed_command`: `{"tariff": tariff, "signature"}` / `{"update": update,
  "signature"}`, base64 Ed25519 over `protocol.canonical(content)` with the operator's
  key (`--operator-key`, or one generated at start; its public PEM is in the ready line).
  The admin gives the content (`{"tariff": {...}}`, or the local list update, None =
  the whole token list as the next version); `signature` replaces the body's signature
  and `sign=false` sends the content unsigned (refusal tests).
- Admin on a Unix socket (JSON lines, as hw_mocks.backend_loopback; the dispatcher and
  the client `admin(path, cmd, socket_timeout_s=30, **values)` are
  hw_mocks.backend_admin's): status, silent, delay, events, received, ledger,
  set_token, command, refund, responses, send_raw.
- `BackendMqttProcess(folder, broker, tokens=(), rules=None)`: the simulator as a child
  process for tests, the demo and the bench (keys generated into `folder/keys`).

Anything malformed on the wire (bad topic, not JSON, wrong schema_version, bad field)
is dropped with a log line and kept in `rejected` (field and reason, never the
payload); it changes nothing. Prints a JSON ready line once connected and subscribed;
exits 0 on SIGTERM/SIGINT. paho reconnects by itself when the broker comes back; the
session is kept on the broker (expiry 1 h) so nothing queued for it is lost.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hw_mocks.backend_admin import AdminError, BackendAdmin, amount, flag, number, text
from hw_mocks.backend_cdr import check_cdr
from hw_mocks.backend_keys import load_private_key, public_pem, write_key_pair
from hw_mocks.backend_logic import BackendLogic
from hw_mocks.mosquitto import publish_properties
from hw_mocks.signals import stop_on_signals
from terminal.backend import protocol, settlement
from terminal.backend.cdr_message import KIND as CDR_KIND
from terminal.backend.closing_messages import Z_REPORT_KIND, check_z_report
from terminal.backend.messages import LocalListUpdate, MessageError
from terminal.kernel.clock import iso_utc
from terminal.kernel.logsetup import fields, get_logger
from terminal.localapi import remove_stale_socket

log = get_logger("sim.backend_mqtt")

CLIENT_ID = "evterm-backend-sim"
SUBSCRIPTION = f"{protocol.ROOT}/+/up/#"
MAX_ADMIN_LINE_BYTES = 8 * 1024 * 1024
OPERATOR_PRIVATE_FILE = "operator_private.pem"
OPERATOR_PUBLIC_FILE = "operator_public.pem"
SESSION_EXPIRY_S = 3600


@dataclass(frozen=True)
class TlsFiles:
    """The backend's client certificate and the CA that signed the broker's."""

    ca: str | Path
    cert: str | Path
    key: str | Path


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    retain: bool
    response_topic: str | None
    correlation: bytes | None


def _now() -> str:
    return iso_utc(datetime.now(UTC))


# ---- operator keys ---------------------------------------------------------------------------


def generate_operator_keys(folder: str | Path) -> tuple[Path, Path]:
    """A new operator Ed25519 key pair in `folder`: (private PEM, mode 0600; public PEM).
    For tests and the demo only; never commit keys."""
    return write_key_pair(folder, Ed25519PrivateKey.generate(), OPERATOR_PRIVATE_FILE,
                          OPERATOR_PUBLIC_FILE)


def load_operator_private_key(path: str | Path) -> Ed25519PrivateKey:
    return load_private_key(path, "operator", Ed25519PrivateKey, "Ed25519")


# ---- the simulator ---------------------------------------------------------------------------


class BackendMqtt:
    """The simulator's state and MQTT client; runs in one asyncio loop (paho's network
    thread only hands messages over)."""

    def __init__(self, logic: BackendLogic, host: str, port: int, *,
                 tls: TlsFiles | None = None, operator_key: Ed25519PrivateKey | None = None,
                 client_id: str = CLIENT_ID, station_timezone: str = "UTC") -> None:
        import paho.mqtt.client as mqtt

        self.logic = logic
        self.host, self.port, self.tls = host, port, tls
        self.operator_key = operator_key or Ed25519PrivateKey.generate()
        self.operator_public_pem = public_pem(self.operator_key)
        self.client_id = client_id
        self.connected = False
        self.events: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.sessions: dict[str, list[int]] = {}
        self._last_seq: dict[str, int] = {}
        self.order_violations: list[dict[str, Any]] = []
        self.cdr_violations: list[dict[str, Any]] = []  # CDRs malformed or mispriced
        self.station_timezone = station_timezone  # CDRs are re-priced in this local time
        self.cdrs: dict[str, dict[str, Any]] = {}  # every CDR received, by its id
        self.statuses: dict[str, dict[str, Any]] = {}
        self.rejected: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.answered = 0
        self.ignored = 0
        self._pending: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribed: asyncio.Event | None = None
        self._sub_mid: int | None = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if tls is not None:
            self.client.tls_set(ca_certs=str(tls.ca), certfile=str(tls.cert),
                                keyfile=str(tls.key))
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=2)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # ---- paho thread -> loop ---------------------------------------------------------------

    def _call(self, func: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(func, *args)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection", extra=fields(reason=str(reason)))
            return
        self.connected = True
        log.info("connected to the broker", extra=fields(host=self.host, port=self.port,
                                                         session_present=flags.session_present))
        _, self._sub_mid = client.subscribe(SUBSCRIPTION, qos=1)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if self.connected:
            log.warning("disconnected from the broker", extra=fields(reason=str(reason)))
        self.connected = False

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("subscription refused", extra=fields(topic=SUBSCRIPTION,
                                                           reasons=[str(r) for r in reasons]))
            return
        if self._subscribed is not None:
            self._call(self._subscribed.set)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props = getattr(msg, "properties", None)
        self._call(self._dispatch, _Message(
            msg.topic, bytes(msg.payload), bool(msg.retain),
            getattr(props, "ResponseTopic", None), getattr(props, "CorrelationData", None)))

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self, timeout_s: float = 10.0) -> None:
        """Connect and subscribe; TimeoutError when the broker does not let us in."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self._loop = asyncio.get_running_loop()
        self._subscribed = asyncio.Event()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        # clean_start False from the first connect: mosquitto keeps (and persists) the
        # session, so events sent while this backend reconnects are queued for it
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout_s)
        except TimeoutError:
            self.client.loop_stop()
            raise TimeoutError(f"not connected and subscribed to {self.host}:{self.port} "
                               f"within {timeout_s} s") from None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            self.client.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, self.client.loop_stop)
        self._loop = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                response_topic: str | None = None, correlation: bytes | None = None) -> Any:
        props = publish_properties(response_topic, correlation)
        return self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)

    # ---- uplink --------------------------------------------------------------------------

    def _reject(self, message: _Message, station: str | None, error: protocol.ProtocolError
                ) -> None:
        entry = {"at": _now(), "topic": message.topic[:200], "station_id": station,
                 "field": error.field, "reason": error.reason[:300]}
        self.rejected.append(entry)
        log.warning("message dropped", extra=fields(topic=entry["topic"], field=error.field,
                                                    reason=entry["reason"]))

    def _dispatch(self, message: _Message) -> None:
        try:
            station, direction, kind = protocol.parse_topic(message.topic)
        except protocol.ProtocolError as exc:
            self._reject(message, None, exc)
            return
        try:
            if direction != "up":
                raise protocol.ProtocolError("topic", "not an uplink topic")
            if kind == "status":
                self._on_status(station, message)
            elif kind == "event":
                self._on_event(station, protocol.decode_event(message.payload))
            elif kind == "request":
                self._on_request(station, message, protocol.decode(message.payload))
            else:
                self._on_response(station, message, protocol.decode(message.payload))
        except protocol.ProtocolError as exc:
            self._reject(message, station, exc)

    def _on_status(self, station: str, message: _Message) -> None:
        if not message.payload:
            self.statuses.pop(station, None)
            return
        status = protocol.decode_status(message.payload)
        self.statuses[station] = {"status": status.to_json(), "retained": message.retain,
                                  "received_at": _now()}
        log.info("station status", extra=fields(station=station, retained=message.retain,
                                                state=status.state))

    def _on_event(self, station: str, event: protocol.Event) -> None:
        key, kind = event.idempotency_key, event.kind
        if kind == settlement.KIND:  # checked like OCPP 2.1's schema, else rejected
            try:
                settlement.NotifySettlement.from_json(event.payload)
            except MessageError as exc:
                raise protocol.ProtocolError(
                    "payload" + exc.field.removeprefix(settlement.WHERE), exc.problem) from None
        session_id, seq_no = event.session_id, event.seq_no
        record = self.events.get(key)
        if record is not None:
            record["count"] += 1
            self.duplicates += 1
            log.info("duplicate event dropped", extra=fields(station=station, key=key,
                                                             count=record["count"]))
            return
        if kind == CDR_KIND:  # OCPI 2.2.1 CDR: its shape and its re-priced total
            for problem in check_cdr(event.payload, self.station_timezone, self.cdrs):
                self.cdr_violations.append({"station_id": station, "session_id": session_id,
                                            "idempotency_key": key, "problem": problem})
                log.warning("CDR violation", extra=fields(station=station, key=key,
                                                          problem=problem[:300]))
            cdr = event.payload.get("cdr") if isinstance(event.payload, dict) else None
            if isinstance(cdr, dict) and isinstance(cdr.get("id"), str):
                self.cdrs[cdr["id"]] = cdr
        if kind == Z_REPORT_KIND:  # the terminal's end-of-day Z-report: checked
            try:
                check_z_report(event.payload)
            except MessageError as exc:
                self.rejected.append({"at": _now(), "topic": "event", "station_id": station,
                                      "field": exc.field, "reason": exc.problem[:300]})
                log.warning("Z-report refused", extra=fields(station=station, key=key,
                                                             field=exc.field))
                return
        self.events[key] = {
            "station_id": station, "kind": kind, "idempotency_key": key,
            "session_id": session_id, "seq_no": seq_no, "payload": event.payload,
            "offline": event.offline, "created_at": event.created_at, "first_at": _now(),
            "count": 1,
        }
        if session_id is not None and seq_no is not None:
            self.sessions.setdefault(session_id, []).append(seq_no)
            last = self._last_seq.get(session_id)
            if last is not None and seq_no <= last:
                self.order_violations.append({"station_id": station, "session_id": session_id,
                                              "seq_no": seq_no, "after": last,
                                              "idempotency_key": key})
                log.warning("event out of order", extra=fields(
                    station=station, session=session_id, seq_no=seq_no, after=last))
            else:
                self._last_seq[session_id] = seq_no
        log.info("event", extra=fields(station=station, kind=kind, key=key,
                                       session=session_id, seq_no=seq_no))

    def _on_request(self, station: str, message: _Message, data: dict[str, Any]) -> None:
        own = f"{protocol.ROOT}/{station}/down/"
        if not message.response_topic or not message.response_topic.startswith(own):
            raise protocol.ProtocolError("response_topic", f"expected a topic under {own}")
        if not message.correlation:
            raise protocol.ProtocolError("correlation_data", "missing")
        if self.logic.silent:
            self.ignored += 1
            op = data.get("op")
            log.info("request ignored (silent)", extra=fields(
                station=station, op=op if op in protocol.REQUEST_OPS else "?"))
            return
        self._spawn(self._answer(station, message, data))

    async def _answer(self, station: str, message: _Message, data: dict[str, Any]) -> None:
        raw_op = data.get("op")  # an unknown op is not echoed (it could be anything)
        op = raw_op if raw_op in protocol.REQUEST_OPS else None
        if self.logic.delay_s > 0:
            await asyncio.sleep(self.logic.delay_s)
        response = self._response(station, op, data)
        if not response.ok:
            log.warning("request refused", extra=fields(station=station, op=op,
                                                        field=response.field))
        assert message.response_topic is not None
        self.publish(message.response_topic, protocol.encode(response.to_json()),
                     correlation=message.correlation)
        self.answered += 1

    def _response(self, station: str, op: str | None, data: dict[str, Any]
                  ) -> protocol.Response:
        """The protocol.Response to one request: the logic's answer, or the failure
        naming the field."""
        try:
            request = protocol.Request.from_json(data)
        except protocol.ProtocolError as exc:
            return protocol.Response.failure(op, exc.reason[:1024], exc.field)
        if request.body.get("station_id", station) != station:
            return protocol.Response.failure(request.op, "not the station of the topic",
                                             "body.station_id")
        try:
            return protocol.Response(True, request.op, self.logic.handle(request.op,
                                                                         request.body))
        except MessageError as exc:
            return protocol.Response.failure(request.op, exc.problem[:1024], exc.field)
        except ValueError as exc:
            return protocol.Response.failure(request.op, str(exc)[:1024], "body")

    def _on_response(self, station: str, message: _Message, data: dict[str, Any]) -> None:
        response = protocol.Response.from_json(data)  # ProtocolError: dropped, kept pending
        correlation = message.correlation or b""
        future = self._pending.pop(correlation, None)
        self.responses.append({"station_id": station, "correlation": _show(correlation),
                               "answer": data, "matched": future is not None,
                               "at": _now()})
        if future is not None and not future.done():
            future.set_result(data)
        log.info("command answered", extra=fields(station=station,
                                                  correlation=_show(correlation),
                                                  matched=future is not None,
                                                  ok=response.ok, field=response.field))

    # ---- downlink ------------------------------------------------------------------------

    def command_message(self, name: str, body: dict[str, Any] | None, *,
                        sign: bool | None = None, signature: str | None = None
                        ) -> dict[str, Any]:
        """The command as sent, `protocol.Command` JSON `{"name", "body"}`. For
        tariff_update (`body` = `{"tariff": {...}}`) and local_list (`body` = the update
        object) the body is `protocol.signed_command(name, content, key)` when `sign`
        (default: yes), the content unsigned with `sign=False`; `signature` replaces the
        body's signature (to test refusals). ValueError for signing a plain command or
        a signed command without its content."""
        body = {} if body is None else body
        if name not in protocol.SIGNED_COMMANDS:
            if sign:
                raise ValueError(f"sign: {name!r} is not a signed command; signed: "
                                 f"{', '.join(protocol.SIGNED_COMMANDS)}")
            if signature is not None:
                body = {**body, "signature": signature}
            return {"name": name, "body": body}
        slot = "tariff" if name == "tariff_update" else "update"
        content = body.get("tariff") if name == "tariff_update" else body
        if not isinstance(content, dict):
            raise ValueError(f"body: {name} needs its content: "
                             + ('{"tariff": {...}}' if slot == "tariff"
                                else "the local list update object"))
        if sign is False:
            signed = {slot: content}
        else:
            signed = protocol.signed_command(name, content, self.operator_key)
        if signature is not None:
            signed["signature"] = signature
        return {"name": name, "body": signed}

    async def send_command(self, station_id: str, name: str, body: dict[str, Any], *,
                           sign: bool | None = None, signature: str | None = None,
                           wait: bool = True, timeout_s: float = 5.0) -> dict[str, Any]:
        """Publish one command to a station and (with `wait`) wait for its answer:
        {sent, correlation, answer (None when none came), timed_out}."""
        topic = protocol.down(station_id, "command")
        message = self.command_message(name, body, sign=sign, signature=signature)
        correlation = uuid.uuid4().hex.encode("ascii")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if wait:
            self._pending[correlation] = future
        self.publish(topic, protocol.encode(message),
                     response_topic=protocol.up(station_id, "response"),
                     correlation=correlation)
        log.info("command sent", extra=fields(station=station_id, command=name,
                                              correlation=_show(correlation)))
        answer, timed_out = None, False
        if wait:
            try:
                answer = await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                timed_out = True
                self._pending.pop(correlation, None)
        return {"sent": message, "correlation": _show(correlation), "answer": answer,
                "timed_out": timed_out}

    # ---- views ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "silent": self.logic.silent,
                "delay_s": self.logic.delay_s, "stations": dict(self.statuses),
                "events": len(self.events), "duplicates": self.duplicates,
                "order_violations": len(self.order_violations),
                "cdr_violations": len(self.cdr_violations),
                "answered": self.answered, "ignored": self.ignored,
                "rejected": len(self.rejected), "pending_commands": len(self._pending),
                "tokens": len(self.logic.tokens), "list_version": self.logic.list_version,
                "operator_public_key": self.operator_public_pem}

    def events_view(self, station_id: str | None = None, kind: str | None = None
                    ) -> dict[str, Any]:
        chosen = [e for e in self.events.values()
                  if (station_id is None or e["station_id"] == station_id)
                  and (kind is None or e["kind"] == kind)]
        return {"events": chosen, "duplicates": self.duplicates,
                "order_violations": list(self.order_violations),
                "cdr_violations": list(self.cdr_violations),
                "sessions": {k: list(v) for k, v in self.sessions.items()},
                "rejected": list(self.rejected)}


def _show(correlation: bytes) -> str:
    """Correlation data for logs and admin replies: text if printable ASCII, else hex."""
    text = correlation.decode("ascii", errors="replace")
    return text if text.isascii() and text.isprintable() else "hex:" + correlation.hex()


# ---- admin -----------------------------------------------------------------------------------


class AdminServer(BackendAdmin):
    """JSON-line admin requests on a Unix socket, answered in the simulator's loop: the
    shared commands and status, events, command, refund, responses, send_raw."""

    COMMANDS = ("status", "silent", "delay", "events", "received", "ledger", "set_token",
                "command", "refund", "responses", "send_raw", "plant")

    def __init__(self, sim: BackendMqtt, socket_path: str | Path) -> None:
        super().__init__(sim.logic)
        self.sim = sim
        self.socket_path = str(socket_path)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        remove_stale_socket(self.socket_path)
        self._server = await asyncio.start_unix_server(
            self._serve, path=self.socket_path, limit=MAX_ADMIN_LINE_BYTES)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    writer.write(json.dumps({"ok": False, "error": "line longer than "
                                             f"{MAX_ADMIN_LINE_BYTES} bytes"}).encode() + b"\n")
                    break
                if not line:
                    break
                if line.strip():
                    writer.write(json.dumps(await self._line(line)).encode() + b"\n")
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _line(self, line: bytes) -> dict[str, Any]:
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return {"ok": False, "error": f"not JSON: {exc}"}
        if not isinstance(message, dict):
            return {"ok": False, "error": "a request must be a JSON object"}
        reply = {"id": message.get("id"), "op": message.get("op", "admin")}
        return {**reply, **await self.handle(message)}

    async def _cmd_status(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.sim.status()

    async def _cmd_events(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.sim.events_view(text(message, "station_id", optional=True),
                                    text(message, "kind", optional=True))

    async def _cmd_responses(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"responses": list(self.sim.responses)}

    async def _cmd_command(self, message: dict[str, Any]) -> dict[str, Any]:
        station = text(message, "station_id")
        name = text(message, "name")
        assert station is not None and name is not None
        protocol.check_station_id(station)
        body = message.get("body")
        if body is None and name == "local_list":
            body = self.sim.logic.local_list().to_json()
        elif name == "local_list" and isinstance(body, dict) and "version" in body:
            update = LocalListUpdate.from_json(body)
            self.sim.logic.list_version = max(self.sim.logic.list_version, update.version)
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise AdminError(f"body: expected a JSON object, got {type(body).__name__}")
        return await self.sim.send_command(
            station, name, body, sign=flag(message, "sign", None),
            signature=text(message, "signature", optional=True),
            wait=bool(flag(message, "wait", True)),
            timeout_s=number(message, "timeout_s", 5.0, 120.0))

    async def _cmd_refund(self, message: dict[str, Any]) -> dict[str, Any]:
        psp_reference = text(message, "psp_reference")
        assert psp_reference is not None
        refund_amount = amount(message)
        payment = self.sim.logic.ledger.get(psp_reference)
        station = text(message, "station_id", optional=True) or (
            payment.station_id if payment is not None else None)
        refund = self.sim.logic.refund(psp_reference, refund_amount,
                                       text(message, "reason", optional=True))
        assert station is not None  # refund() raised for an unknown payment
        sent = await self.sim.send_command(
            station, "refund", refund.to_json(), wait=bool(flag(message, "wait", True)),
            timeout_s=number(message, "timeout_s", 5.0, 120.0))
        return {"refund": refund.to_json(), **sent}

    async def _cmd_send_raw(self, message: dict[str, Any]) -> dict[str, Any]:
        topic = text(message, "topic")
        assert topic is not None
        if "payload_b64" in message:
            try:
                payload = base64.b64decode(str(message["payload_b64"]), validate=True)
            except (binascii.Error, ValueError):
                raise AdminError("payload_b64: not base64") from None
        elif isinstance(message.get("payload"), str):
            payload = message["payload"].encode("utf-8")
        else:
            raise AdminError("payload (text) or payload_b64 required")
        repeat = message.get("repeat", 1)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 100000:
            raise AdminError(f"repeat: expected an integer from 1 to 100000, got {repeat!r}")
        qos = message.get("qos", 1)
        if qos not in (0, 1, 2):
            raise AdminError(f"qos: expected 0, 1 or 2, got {qos!r}")
        correlation = text(message, "correlation", optional=True)
        infos = [self.sim.publish(
            topic, payload, qos=qos, retain=bool(flag(message, "retain", False)),
            response_topic=text(message, "response_topic", optional=True),
            correlation=None if correlation is None else correlation.encode("utf-8"))
            for _ in range(repeat)]
        timeout_s = number(message, "timeout_s", 10.0, 120.0)

        def wait_all() -> int:
            done = 0
            for info in infos:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout_s)
                done += info.is_published()
            return done

        published = await asyncio.get_running_loop().run_in_executor(None, wait_all)
        return {"published": published, "bytes": len(payload)}


# ---- process ---------------------------------------------------------------------------------


async def serve(sim: BackendMqtt, admin_socket: str | None) -> None:
    admin = AdminServer(sim, admin_socket) if admin_socket else None
    stop = stop_on_signals()
    try:
        await sim.start()
        if admin is not None:
            await admin.start()
        print(json.dumps({"event": "ready", "host": sim.host, "port": sim.port,
                          "tls": sim.tls is not None, "client_id": sim.client_id,
                          "admin_socket": admin_socket, "pid": os.getpid(),
                          "tokens": len(sim.logic.tokens), "rules": sim.logic.rule_count,
                          "operator_public_key": sim.operator_public_pem}), flush=True)
        await stop.wait()
    finally:
        if admin is not None:
            await admin.close()
        await sim.close()


def run_forever(sim: BackendMqtt, admin_socket: str | None) -> int:
    try:
        asyncio.run(serve(sim, admin_socket))
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"evterm sim backend: {exc}", file=sys.stderr)
        return 2
    return 0
