"""The backend over MQTT 5: the terminal's side of the link (docs/protocol.md).

Provides `MqttBackend(config, station_id, store, clock)`, a `Backend`
(terminal.backend.api) over paho-mqtt 2.x (callback API 2, MQTT 5):

- Connects with TLS 1.2+ and a client certificate when configured (security profile 3),
  clean_start false with a session expiry so subscriptions and queued commands survive
  a disconnection. The Last Will is a retained `Status` offline; on every connect it
  publishes a retained `Status` online and subscribes to its command and response
  topics. paho's own thread reconnects with backoff (1 s doubling to
  `reconnect_max_s`); `online` follows the connection and the listener's
  `on_connectivity` hears every change.
- Requests (`authorize_token`, `preauthorize`, `capture`, `void`) are published QoS 1
  with ResponseTopic/CorrelationData and paired with their `Response` by correlation.
- Commands are validated (terminal.backend.protocol), signed ones verified with the operator's
  Ed25519 key, then handed to the listener one at a time in arrival order: refund ->
  `on_refund`, local_list -> `on_local_list`, the others -> `on_command(name, message)`
  when the listener has it (else answered "not supported"). Every command with a
  response topic gets a `Response`: ok + body, or error + field.
- The outbox pump (when a store is given) publishes pending outbox messages in id order
  as `Event`s (QoS 1, the idempotency key in the payload), at most `inflight_window`
  unacknowledged, and marks each delivered when its PUBACK arrives, keyed by our record
  id. After a reconnect everything not marked goes out again; the backend drops
  duplicates by idempotency key. `wake()` after queuing; it also polls every second.
- `storage_ok()`: free space in the database's folder >= `min_free_storage_mb`; the
  retained status carries it as `accepting_sessions` (republished when it changes and
  every `status_interval_s`, with the outbox depth).

Threads: paho's network thread only copies what it got and hands it to the event loop
(`call_soon_threadsafe`); all state lives on the loop. That also settles the race of
`on_publish` firing before `publish()` returns: the ack is handled on the loop only
after the code that published has registered the mid -> record id mapping (a lock held
around `publish()` and taken in `on_publish` would deadlock: paho calls `on_publish`
under its own message lock, the one `publish()` takes).

Config: `[backend] kind = mqtt` and its mqtt_*/TLS/outbox keys (docs/configuration.md).

On failure: a request while offline raises BackendUnavailable at once; no answer within
`request_timeout_s`, a lost connection or an error answer raise BackendUnavailable. A
malformed downlink message is answered with an error naming the field when it carries
our response topic, else dropped; either way logged (once per kind, then with a
counter) and nothing is applied. A listener exception is logged and answered as an
error. Card data: bodies are never logged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from terminal.backend import protocol
from terminal.backend.api import (
    BackendListener,
    BackendUnavailable,
    NoListener,
    RequestsOverOneChannel,
    deliver_in_order,
)
from terminal.backend.connect_errors import connect_failure_reason
from terminal.backend.messages import MessageError
from terminal.backend.protocol import Event, Inbound, ProtocolError, Request, Response, Status
from terminal.config import BackendConfig
from terminal.kernel.clock import SYSTEM_CLOCK, Clock
from terminal.kernel.logsetup import FaultLogger, fields, get_logger
from terminal.periodic import run_periodically
from terminal.store import AsyncStore
from terminal.store.space import free_storage_mb

log = get_logger("backend.mqtt")

T = TypeVar("T")
POLL_S = 1.0
PAHO_SPARE_INFLIGHT = 16  # room in paho's window for status, requests and answers


def load_operator_key(path: str | Path) -> Ed25519PublicKey:
    """The operator's Ed25519 public key from a PEM file; ValueError naming the key."""
    try:
        key = load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"backend.operator_key_file = {str(path)!r}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"backend.operator_key_file = {str(path)!r}: not an Ed25519 key")
    return key


def tls_context(config: BackendConfig) -> ssl.SSLContext:
    """TLS 1.2+ verifying the broker, with this station's client certificate if set."""
    try:
        context = ssl.create_default_context(cafile=config.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"backend.ca_file = {config.ca_file!r}: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.cert_file:
        try:
            context.load_cert_chain(config.cert_file, config.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"backend.cert_file/key_file: {exc}") from None
    return context


class MqttBackend(RequestsOverOneChannel):
    def __init__(
        self,
        config: BackendConfig,
        station_id: str,
        store: AsyncStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        *,
        operator_key: Ed25519PublicKey | None = None,
        client_id: str | None = None,
    ) -> None:
        self.config = config
        self.station_id = protocol.check_station_id(station_id)
        self.store = store
        self.clock = clock
        self.client_id = client_id or f"evterm-{station_id}"
        if operator_key is None and config.operator_key_file:
            operator_key = load_operator_key(config.operator_key_file)
        self.operator_key = operator_key
        self.request_timeout_s = config.request_timeout_s
        self.inflight_window = config.inflight_window
        self.topics = {kind: protocol.up(station_id, kind) for kind in protocol.UP_KINDS}
        self.command_topic = protocol.down(station_id, "command")
        self.response_topic = protocol.down(station_id, "response")
        self._listener: BackendListener = NoListener()
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._online = False
        self._first_attempt = asyncio.Event()
        self._pending: dict[bytes, asyncio.Future[Response]] = {}
        self._events: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._status_once: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._mids: dict[int, int] = {}  # paho mid -> outbox record id
        self._inflight: set[int] = set()  # outbox ids published, not yet marked delivered
        self._cursor = 0  # highest outbox id published on this connection
        self._acks: collections.deque[tuple[int, bool, str]] = collections.deque()
        self._acks_lock = threading.Lock()
        self._acks_posted = False
        self._acked: list[int] = []  # outbox ids acknowledged, to be marked delivered
        self._accepting: bool | None = None
        self._faults = FaultLogger(log, "MQTT broker connection")
        self._pump_faults = FaultLogger(log, "outbox pump")
        self._rejects: dict[str, FaultLogger] = {}
        self.stats: dict[str, int] = {
            "connects": 0, "published": 0, "acked": 0, "delivered": 0, "publish_refused": 0,
            "commands": 0, "rejected": 0, "listener_errors": 0,
        }

    # ---- Backend ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background; returns after the first attempt (at most
        request_timeout_s), online or not. ValueError naming the key on bad TLS files."""
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._first_attempt = asyncio.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5)
        if self.config.mqtt_tls:
            client.tls_set_context(tls_context(self.config))
        client.on_connect = self._on_connect_thread
        client.on_connect_fail = self._on_connect_fail_thread
        client.on_disconnect = self._on_disconnect_thread
        client.on_publish = self._on_publish_thread
        client.on_message = self._on_message_thread
        will = Status("offline", reason="connection lost")
        client.will_set(self.topics["status"], protocol.encode(will.to_json()), qos=1,
                        retain=True)
        client.reconnect_delay_set(1, self.config.reconnect_max_s)
        client.max_inflight_messages_set(self.inflight_window + PAHO_SPARE_INFLIGHT)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.config.session_expiry_s
        client.connect_async(self.config.mqtt_host, self.config.mqtt_port,
                             self.config.keepalive_s, clean_start=False,
                             properties=properties)
        self._client = client
        self._tasks = [asyncio.create_task(deliver_in_order(self._events, self.stats),
                                           name="mqtt-events"),
                       asyncio.create_task(self._housekeeping(), name="mqtt-status")]
        if self.store is not None:
            self._tasks.append(asyncio.create_task(self._pump(), name="mqtt-outbox"))
        client.loop_start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self.request_timeout_s)

    async def close(self) -> None:
        """Say offline (retained), disconnect, stop the tasks; pending requests fail."""
        client, self._client = self._client, None
        for task in self._tasks:
            if task.get_name() != "mqtt-events":
                task.cancel()
        if client is not None:
            if self._online:
                status = Status("offline", reason="closed")
                info = client.publish(self.topics["status"], protocol.encode(status.to_json()),
                                      qos=1, retain=True)
                with contextlib.suppress(RuntimeError, ValueError):
                    await asyncio.to_thread(info.wait_for_publish, 2.0)
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        if self._online:
            self._set_online(False)
        self._fail_pending("the backend link is closed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._events.join(), 2)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # ---- extras for the daemon --------------------------------------------------------------

    def wake(self) -> None:
        """New outbox messages are queued: send them now rather than at the next poll.
        Safe from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def storage_ok(self) -> bool:
        """Whether the database's folder has at least min_free_storage_mb free."""
        return self._free_storage_mb() >= self.config.min_free_storage_mb

    def _free_storage_mb(self) -> float:
        if self.store is None:
            return float("inf")
        return free_storage_mb(self.store.store.path.parent)

    async def status(self) -> Status:
        """The status as published now."""
        depth, oldest = 0, None
        if self.store is not None:
            stats = await self.store.call(self.store.store.outbox_stats)
            depth, oldest = stats["pending"], stats["oldest_pending_at"]
        accepting = self.storage_ok()
        reason = None if accepting else (
            f"storage low: {self._free_storage_mb():.0f} MB free, at least "
            f"{self.config.min_free_storage_mb} MB needed; new sessions refused")
        return Status("online" if self._online else "offline", depth, oldest, accepting,
                      reason)

    async def publish_status(self) -> None:
        status = await self.status()
        if self._online and self._client is not None:
            self._publish(self.topics["status"], protocol.encode(status.to_json()),
                          retain=True)

    # ---- requests -----------------------------------------------------------------------

    async def _request(self, op: str, body: dict[str, Any], parse: Callable[[Any], T]) -> T:
        if not self._online or self._client is None:
            raise BackendUnavailable("offline: not connected to the backend")
        correlation = uuid.uuid4().bytes
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = self.response_topic
        properties.CorrelationData = correlation
        try:
            info = self._publish(self.topics["request"],
                                 protocol.encode(Request(op, body).to_json()), properties)
            if info is None or info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise BackendUnavailable(f"cannot send {op}: not connected")
            response = await asyncio.wait_for(future, self.request_timeout_s)
        except TimeoutError:
            raise BackendUnavailable(
                f"no answer to {op} within {self.request_timeout_s:g} s") from None
        finally:
            self._pending.pop(correlation, None)
        if not response.ok:
            raise BackendUnavailable(f"the backend refused {op}: {response.field or '-'}: "
                                     f"{(response.error or '')[:200]}")
        try:
            return parse(response.body)
        except MessageError as exc:
            log.warning("malformed answer from the backend", extra=fields(op=op, error=exc))
            raise BackendUnavailable(f"malformed answer to {op}: {exc}") from None

    def _publish(self, topic: str, payload: bytes, properties: Properties | None = None,
                 *, retain: bool = False) -> mqtt.MQTTMessageInfo | None:
        """Publish something that is not an outbox message (QoS 1)."""
        client = self._client
        if client is None:
            return None
        info = client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        self._mids.pop(info.mid, None)  # a reused mid must not mark an outbox record
        return info

    # ---- paho's thread: copy and hand over --------------------------------------------------

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are shutting down
            loop.call_soon_threadsafe(fn, *args)

    def _on_connect_thread(self, client: mqtt.Client, userdata: Any, flags: Any,
                           reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._post(self._connect_failed, f"refused: {reason_code}")
        else:
            self._post(self._connected)

    def _on_connect_fail_thread(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError:` around the connection attempt:
        # the exception in flight says why (TLS, refused, unknown host...)
        self._post(self._connect_failed, connect_failure_reason(sys.exc_info()[1]))

    def _on_disconnect_thread(self, client: mqtt.Client, userdata: Any, flags: Any,
                              reason_code: Any, properties: Any) -> None:
        self._post(self._disconnected, str(reason_code))

    def _on_publish_thread(self, client: mqtt.Client, userdata: Any, mid: int,
                           reason_code: Any, properties: Any) -> None:
        # PUBACKs come in bursts: queue them and wake the loop once per burst
        self._acks.append((mid, bool(reason_code.is_failure), str(reason_code)))
        with self._acks_lock:
            if self._acks_posted:
                return
            self._acks_posted = True
        self._post(self._drain_acks)

    def _drain_acks(self) -> None:
        with self._acks_lock:
            self._acks_posted = False
        while self._acks:
            self._published(*self._acks.popleft())

    def _on_message_thread(self, client: mqtt.Client, userdata: Any,
                           message: mqtt.MQTTMessage) -> None:
        props = message.properties
        self._post(self._on_message, message.topic, bytes(message.payload),
                   getattr(props, "ResponseTopic", None), getattr(props, "CorrelationData", None))

    # ---- connection state (on the loop) ---------------------------------------------------

    def _connected(self) -> None:
        client = self._client
        if client is None:
            return
        self._faults.recovered()
        self.stats["connects"] += 1
        log.info("backend link online", extra=fields(
            broker=f"{self.config.mqtt_host}:{self.config.mqtt_port}",
            tls=self.config.mqtt_tls))
        client.subscribe([(self.command_topic, 1), (self.response_topic, 1)])
        self._set_online(True)
        self._first_attempt.set()
        self._inflight.clear()
        self._cursor = 0  # a new connection: everything not marked goes out again
        task = asyncio.create_task(self.publish_status(), name="mqtt-status-once")
        self._status_once.add(task)
        task.add_done_callback(self._status_once.discard)
        self._wake.set()

    def _connect_failed(self, reason: str) -> None:
        self._faults.failed(f"{self.config.mqtt_host}:{self.config.mqtt_port}: {reason}")
        self._first_attempt.set()

    def _disconnected(self, reason: str) -> None:
        if self._online:
            log.warning("backend link lost", extra=fields(reason=reason))
            self._set_online(False)
        self._fail_pending(f"connection to the backend lost ({reason})")
        # Not acknowledged: published again on the next connection. Late PUBACKs of
        # paho's retransmissions still count (the mid map is kept).
        self._inflight.clear()
        self._cursor = 0

    # ---- the outbox pump ------------------------------------------------------------------

    def _published(self, mid: int, failed: bool, reason: str) -> None:
        record_id = self._mids.pop(mid, None)
        if record_id is None:
            return
        self._inflight.discard(record_id)  # the window frees at once; marking follows
        if failed:  # the broker refused it (ACL, quota): try again at the next round
            self.stats["publish_refused"] += 1
            self._pump_faults.failed(f"broker refused outbox message {record_id}: {reason}")
            self._cursor = min(self._cursor, record_id - 1)
            return
        self.stats["acked"] += 1
        self._acked.append(record_id)
        self._wake.set()

    async def _pump(self) -> None:
        # the store failing must not end the pump
        await run_periodically(self._pump_once, POLL_S, self._wake, lambda exc: (
            self._pump_faults.failed(f"{type(exc).__name__}: {exc}")))

    async def _pump_once(self) -> None:
        """Fill the in-flight window first, then mark what the broker acknowledged: the
        journal's commit never holds the window empty."""
        assert self.store is not None
        store = self.store
        free = self.inflight_window - len(self._inflight)
        client = self._client
        if self._online and free > 0 and client is not None:
            rows = await store.call(store.store.outbox, pending_only=True, limit=free,
                                    after_id=self._cursor)
            for row in rows:
                if not self._online:
                    break
                payload = protocol.encode(Event.from_outbox(row).to_json())
                info = client.publish(self.topics["event"], payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                # on_publish may already have fired: its handler runs on this loop after us
                self._mids[info.mid] = row.id
                self._inflight.add(row.id)
                self._cursor = row.id
                self.stats["published"] += 1
        if self._acked:
            ids, self._acked = self._acked, []
            changed = await store.call(store.store.mark_delivered, ids, self.clock.now())
            self.stats["delivered"] += changed
            self._pump_faults.recovered()

    async def _housekeeping(self) -> None:
        """Republish the status when storage crosses the limit and every interval."""
        last_s = self.clock.monotonic_s()
        while True:
            await asyncio.sleep(POLL_S)
            accepting = self.storage_ok()
            changed = self._accepting is not None and accepting != self._accepting
            if self._accepting is None or changed:
                if not accepting:
                    log.warning("storage low: new sessions refused", extra=fields(
                        free_mb=round(self._free_storage_mb()),
                        min_free_storage_mb=self.config.min_free_storage_mb))
                elif changed:
                    log.info("storage available again: new sessions accepted")
            self._accepting = accepting
            if changed or self.clock.monotonic_s() - last_s >= self.config.status_interval_s:
                last_s = self.clock.monotonic_s()
                try:
                    await self.publish_status()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._pump_faults.failed(f"status: {type(exc).__name__}: {exc}")

    # ---- downlink -------------------------------------------------------------------------

    def _reject(self, kind: str, error: ProtocolError) -> None:
        self.stats["rejected"] += 1
        faults = self._rejects.get(kind)
        if faults is None:
            faults = self._rejects[kind] = FaultLogger(log, f"downlink {kind}")
        faults.failed(f"{error.field}: {error.reason}"[:300])

    def _answerable(self, response_topic: Any, correlation: Any) -> bool:
        return response_topic == self.topics["response"] and (
            correlation is None or (isinstance(correlation, bytes)
                                    and 0 < len(correlation) <= protocol.MAX_CORRELATION_BYTES))

    def _on_message(self, topic: str, payload: bytes, response_topic: Any,
                    correlation: Any) -> None:
        if topic == self.response_topic:
            self._on_response(payload, correlation)
        elif topic == self.command_topic:
            self._on_command(payload, response_topic, correlation)

    def _on_response(self, payload: bytes, correlation: Any) -> None:
        try:
            inbound = protocol.decode_response(payload, correlation)
        except ProtocolError as exc:
            self._reject("malformed response", exc)
            return
        future = self._pending.get(inbound.correlation) if inbound.correlation else None
        if future is None:
            self._reject("unmatched response",
                         ProtocolError("correlation_data", "answers no pending request"))
            return
        if not future.done():
            future.set_result(inbound.message)

    def _on_command(self, payload: bytes, response_topic: Any, correlation: Any) -> None:
        self.stats["commands"] += 1
        try:
            inbound = protocol.decode_command(payload, correlation, response_topic,
                                              self.operator_key)
            if response_topic is not None and response_topic != self.topics["response"]:
                raise ProtocolError("response_topic",
                                    f"must be this station's {self.topics['response']}")
        except ProtocolError as exc:
            self._reject("bad signature" if exc.field == "signature" else "malformed command",
                         exc)
            if self._answerable(response_topic, correlation):
                self._answer(response_topic, correlation,
                             Response.failure(None, exc.reason, exc.field))
            return
        self._events.put_nowait(lambda: self._handle_command(inbound))

    async def _handle_command(self, inbound: Inbound) -> None:
        name, message = inbound.name, inbound.message
        try:
            response = await self._dispatch(name, message)
        except ProtocolError as exc:
            response = Response.failure(name, exc.reason, exc.field)
        except Exception as exc:
            self.stats["listener_errors"] += 1
            log.exception("backend listener failed", extra=fields(command=name))
            response = Response.failure(name, f"terminal error ({type(exc).__name__})")
        if inbound.response_topic is not None:
            self._answer(inbound.response_topic, inbound.correlation, response)

    async def _dispatch(self, name: str, message: Any) -> Response:
        listener = self._listener
        if name == "refund":
            await listener.on_refund(message)
            return Response(True, name)
        if name == "local_list":
            await listener.on_local_list(message.update)
            return Response(True, name, {"version": message.update.version})
        handler = getattr(listener, "on_command", None)
        if handler is None:
            return Response.failure(name, "not supported")
        result = await handler(name, message)
        if not isinstance(result, dict):
            result = {}
        if result.get("ok") is False:
            return Response.failure(name, str(result.get("error") or "refused"),
                                    result.get("field"))
        return Response(True, name, {k: v for k, v in result.items() if k != "ok"})

    def _answer(self, topic: str, correlation: bytes | None, response: Response) -> None:
        try:
            payload = protocol.encode(response.to_json())
        except (TypeError, ValueError):
            payload = protocol.encode(Response.failure(
                response.name, "terminal error (answer not serialisable)").to_json())
        properties = Properties(PacketTypes.PUBLISH)
        if correlation is not None:
            properties.CorrelationData = correlation
        if self._online:
            self._publish(topic, payload, properties)
