"""terminal.backend.mqtt.MqttBackend against a real mosquitto (plain, loopback): requests and
responses, commands and signatures, the outbox pump through broker outages, the retained
status and Last Will, and hostile downlink messages. The backend side is a bare paho
client (`Peer`)."""

from __future__ import annotations

import asyncio
import functools
import json
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hw_mocks.mosquitto import Broker
from terminal.backend import protocol
from terminal.backend.api import BackendUnavailable
from terminal.backend.factory import create_backend
from terminal.backend.messages import (
    AuthStatus,
    LocalListUpdate,
    Refund,
    TokenAuthRequest,
    TokenAuthResponse,
)
from terminal.backend.mqtt import MqttBackend
from terminal.backend.protocol import Response, encode, signed_command
from terminal.config import BackendConfig
from terminal.store import AsyncStore, Store
from tests.integration.conftest import require_binary

STATION = "ST1"
TARIFF = json.loads((Path(__file__).parents[2] / "examples/tariffs/de_dc_hpc_adhoc.json")
                    .read_text())
OPERATOR = Ed25519PrivateKey.generate()
ANSWER_TOPIC = protocol.up(STATION, "response")
COMMAND_TOPIC = protocol.down(STATION, "command")


@dataclass(frozen=True)
class Got:
    topic: str
    payload: bytes
    retain: bool
    response_topic: str | None
    correlation: bytes | None
    user: dict[str, str]

    def json(self) -> dict[str, Any]:
        return json.loads(self.payload)


class Peer:
    """The backend side: a bare paho client subscribed to the station's up tree (again
    after every reconnect); `responder(got) -> Response | None` answers requests."""

    def __init__(self, broker: Broker, client_id: str = "csms") -> None:
        self.messages: queue.Queue[Got] = queue.Queue()
        self.responder: Callable[[Got], Response | None] | None = None
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            f"{protocol.ROOT}/{STATION}/up/#", 1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        session = Properties(PacketTypes.CONNECT)
        session.SessionExpiryInterval = 300  # queued for us while we reconnect
        self.client.connect(broker.host, broker.port, keepalive=30, clean_start=False,
                            properties=session)
        self.client.loop_start()
        assert self.subscribed.wait(5), "the peer could not subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props = msg.properties
        got = Got(msg.topic, bytes(msg.payload), bool(msg.retain),
                  getattr(props, "ResponseTopic", None), getattr(props, "CorrelationData", None),
                  dict(getattr(props, "UserProperty", []) or []))
        if got.topic.endswith("/up/request") and self.responder is not None:
            answer = self.responder(got)
            if answer is not None:
                self.send(got.response_topic or "", encode(answer.to_json()),
                          correlation=got.correlation)
            return
        self.messages.put(got)

    def send(self, topic: str, payload: bytes, *, response_topic: str | None = None,
             correlation: bytes | None = None) -> None:
        props = Properties(PacketTypes.PUBLISH)
        if response_topic is not None:
            props.ResponseTopic = response_topic
        if correlation is not None:
            props.CorrelationData = correlation
        self.client.publish(topic, payload, qos=1, properties=props)

    def command(self, name: str, body: Any, correlation: bytes = b"c1") -> None:
        self.send(COMMAND_TOPIC, encode({"name": name, "body": body}),
                  response_topic=ANSWER_TOPIC, correlation=correlation)

    async def wait(self, kind: str, timeout_s: float = 5.0,
                   where: Callable[[Got], bool] = lambda got: True) -> Got:
        """The next message of this kind that satisfies `where` (others are dropped)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                got = self.messages.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.01)
                continue
            if got.topic.endswith(f"/up/{kind}") and where(got):
                return got
        pytest.fail(f"no {kind} message within {timeout_s} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Listener:
    def __init__(self, with_commands: bool = True) -> None:
        self.refunds: list[Refund] = []
        self.lists: list[LocalListUpdate] = []
        self.commands: list[tuple[str, Any]] = []
        self.connectivity: list[bool] = []
        if not with_commands:
            self.on_command = None  # type: ignore[assignment]

    async def on_refund(self, refund: Refund) -> None:
        self.refunds.append(refund)

    async def on_local_list(self, update: LocalListUpdate) -> None:
        self.lists.append(update)

    async def on_connectivity(self, online: bool) -> None:
        self.connectivity.append(online)

    async def on_command(self, name: str, message: Any) -> dict[str, Any]:
        self.commands.append((name, message))
        if name == "remote_stop":
            return {"ok": False, "error": "no session running", "field": "body.session_id"}
        return {"accepted": True}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    require_binary("mosquitto")
    with Broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that keeps sessions and queued messages across a restart."""
    require_binary("mosquitto")
    running = Broker(tmp_path / "broker", persistent=True)
    with running:
        yield running


@pytest.fixture
def peer(broker: Broker) -> Iterator[Peer]:
    backend_peer = Peer(broker)
    yield backend_peer
    backend_peer.close()


def config(broker: Broker, **extra: Any) -> BackendConfig:
    values: dict[str, Any] = {"kind": "mqtt", "mqtt_port": broker.port,
                              "request_timeout_s": 2.0, "keepalive_s": 5, **extra}
    return BackendConfig(**values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AsyncStore]:
    async_store = AsyncStore(Store.open(tmp_path / "evterm.db"))
    yield async_store
    async_store.close()


def run_async(test: Callable[..., Any]) -> Callable[..., None]:
    """A coroutine test run with asyncio.run (fixtures are resolved as usual)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def started(backend: MqttBackend, listener: Listener | None = None) -> MqttBackend:
    if listener is not None:
        backend.set_listener(listener)
    await backend.start()
    assert backend.online
    await asyncio.sleep(0.1)  # the SUBACK for the down topics
    return backend


# ---- requests --------------------------------------------------------------------------------


@run_async
async def test_requests_pair_with_responses_by_correlation(broker: Broker, peer: Peer) -> None:
    held: list[Got] = []

    def respond(got: Got) -> Response | None:
        held.append(got)
        if len(held) < 2:
            return None  # answer both, in reverse order, when the second arrives
        for request in reversed(held):
            body = request.json()["body"]
            status = "Accepted" if body["id_token"] == "GOOD" else "Blocked"
            peer.send(request.response_topic or "", encode(Response(
                True, "authorize_token",
                TokenAuthResponse(AuthStatus(status)).to_json()).to_json()),
                correlation=request.correlation)
        return None

    peer.responder = respond
    backend = create_backend(config(broker), STATION)
    assert isinstance(backend, MqttBackend)
    await started(backend)
    try:
        good, bad = await asyncio.gather(
            backend.authorize_token(TokenAuthRequest("GOOD", "ISO14443", STATION)),
            backend.authorize_token(TokenAuthRequest("BAD", "ISO14443", STATION)))
        assert (good.status, bad.status) == (AuthStatus.ACCEPTED, AuthStatus.BLOCKED)
        assert held[0].response_topic == protocol.down(STATION, "response")
        assert len({got.correlation for got in held}) == 2
        assert held[0].json()["op"] == "authorize_token"

        peer.responder = lambda got: Response.failure("authorize_token", "down", None)
        with pytest.raises(BackendUnavailable, match="refused"):
            await backend.authorize_token(TokenAuthRequest("X", "ISO14443", STATION))
        peer.responder = lambda got: None  # silent
        begin = time.monotonic()
        with pytest.raises(BackendUnavailable, match="no answer"):
            await backend.authorize_token(TokenAuthRequest("X", "ISO14443", STATION))
        assert 1.9 < time.monotonic() - begin < 3
    finally:
        await backend.close()
    begin = time.monotonic()
    with pytest.raises(BackendUnavailable, match="offline"):
        await backend.authorize_token(TokenAuthRequest("X", "ISO14443", STATION))
    assert time.monotonic() - begin < 0.1


# ---- commands -------------------------------------------------------------------------------


@run_async
async def test_commands_are_answered_on_their_response_topic(broker: Broker, peer: Peer,
                                                             tmp_path: Path) -> None:
    listener = Listener()
    backend = MqttBackend(config(broker), STATION, operator_key=OPERATOR.public_key())
    await started(backend, listener)
    try:
        peer.command("remote_start", {"id_token": "APP42", "cost_cap": "20.00"}, b"start-1")
        answer = await peer.wait("response")
        assert answer.correlation == b"start-1"
        assert answer.json()["ok"] is True and answer.json()["body"] == {"accepted": True}
        assert listener.commands[0][0] == "remote_start"
        assert listener.commands[0][1].cost_cap == Decimal("20.00")

        peer.command("remote_stop", {}, b"stop-1")
        answer = (await peer.wait("response")).json()
        assert (answer["ok"], answer["field"]) == (False, "body.session_id")

        refund = Refund("RF1", "PSP1", "REF1", Decimal("2.50"), "EUR", None)
        peer.command("refund", refund.to_json(), b"refund-1")
        assert (await peer.wait("response")).json()["ok"] is True
        assert listener.refunds == [refund]

        update = {"version": 2, "update_type": "Full",
                  "entries": [{"id_token": "04A1B2C3", "status": "Accepted"}]}
        peer.command("local_list", signed_command("local_list", update, OPERATOR), b"list-1")
        assert (await peer.wait("response")).json()["body"] == {"version": 2}
        assert listener.lists[0].version == 2

        forged = signed_command("tariff_update", TARIFF, Ed25519PrivateKey.generate())
        peer.command("tariff_update", forged, b"tariff-bad")
        refused = await peer.wait("response")
        assert refused.correlation == b"tariff-bad"
        assert (refused.json()["ok"], refused.json()["field"]) == (False, "signature")
        peer.command("tariff_update", {"tariff": TARIFF}, b"tariff-unsigned")
        assert (await peer.wait("response")).json()["field"] == "signature"
        assert [name for name, _ in listener.commands] == ["remote_start", "remote_stop"]

        peer.command("tariff_update", signed_command("tariff_update", TARIFF, OPERATOR),
                     b"tariff-ok")
        assert (await peer.wait("response")).json()["ok"] is True
        assert listener.commands[-1][1].tariff == TARIFF
        assert backend.stats["rejected"] == 2
    finally:
        await backend.close()


@run_async
async def test_without_on_command_the_answer_is_not_supported(broker: Broker,
                                                              peer: Peer) -> None:
    backend = await started(MqttBackend(config(broker), STATION), Listener(False))
    try:
        peer.command("diagnostics", {}, b"d1")
        answer = (await peer.wait("response")).json()
        assert (answer["ok"], answer["error"]) == (False, "not supported")
    finally:
        await backend.close()


@run_async
async def test_hostile_downlink_is_answered_or_dropped(broker: Broker, peer: Peer) -> None:
    listener = Listener()
    backend = await started(MqttBackend(config(broker), STATION,
                                        operator_key=OPERATOR.public_key()), listener)
    hostile: list[bytes] = [
        b"", b"\xff\xfe", b"[]", b"null", b'{"schema_version":2}', b"[" * 50_000,
        b'{"schema_version":' + b"9" * 5000 + b"}", b"x" * 300_000,
        encode({"name": "reboot", "body": {}}),
        encode({"name": "remote_start", "body": {"id_token": ["x"]}}),
        encode({"name": "tariff_update", "body": {"tariff": TARIFF, "signature": "AAAA"}}),
        encode({"name": "local_list", "body": {"update": {"version": "x"}}}),
        encode({"name": "config_change", "body": {"key": "a.b", "value": {"deep": [1]}}}),
    ]
    try:
        sent_answerable = 0
        for i in range(120):
            payload = hostile[i % len(hostile)]
            if i % 3 == 0:  # no response topic: dropped
                peer.send(COMMAND_TOPIC, payload)
            elif i % 3 == 1:
                peer.send(COMMAND_TOPIC, payload, response_topic=ANSWER_TOPIC,
                          correlation=f"h{i}".encode())
                sent_answerable += 1
            else:  # another station's topic, a wildcard: cannot be answered
                peer.send(COMMAND_TOPIC, payload, response_topic="evterm/v1/ST2/up/response",
                          correlation=f"h{i}".encode())
            peer.send(protocol.down(STATION, "response"), payload, correlation=b"junk")
        peer.command("diagnostics", {}, b"after")
        answers = [await peer.wait("response", 10) for _ in range(sent_answerable + 1)]
        assert answers[-1].correlation == b"after" and answers[-1].json()["ok"] is True
        assert all(not got.json()["ok"] and got.json()["field"] for got in answers[:-1])
        assert [name for name, _ in listener.commands] == ["diagnostics"]
        assert listener.lists == [] and listener.refunds == []
        assert backend.stats["rejected"] == 240
        assert backend.online
    finally:
        await backend.close()


# ---- the outbox pump -------------------------------------------------------------------------


def queue_events(store: Store, session: str, count: int, first: int = 1) -> None:
    now = datetime.now(UTC)
    for seq in range(first, first + count):
        assert store.add_outbox("TransactionEvent", f"{session}:tx:{seq}",
                                {"session_id": session, "seq_no": seq, "offline": seq > 40},
                                now)  # no session row: audit-style messages


def events(peer: Peer) -> list[Got]:
    out = []
    while True:
        try:
            got = peer.messages.get_nowait()
        except queue.Empty:
            return out
        if got.topic.endswith("/up/event"):
            out.append(got)


async def pending(store: AsyncStore) -> int:
    return int((await store.call(store.store.outbox_stats))["pending"])


@run_async
async def test_outbox_pump_delivers_in_order_through_outages(durable_broker: Broker,
                                                             store: AsyncStore) -> None:
    broker = durable_broker
    peer = Peer(broker)
    queue_events(store.store, "S1", 30)
    backend = MqttBackend(config(broker, inflight_window=5), STATION, store)
    await started(backend)
    try:
        await until(lambda: backend.stats["delivered"] == 30, what="first 30 delivered")
        first = events(peer)
        assert [got.json()["payload"]["seq_no"] for got in first] == list(range(1, 31))
        assert first[0].json()["idempotency_key"] == "S1:tx:1"

        # No PUBACK (broker frozen): published, yet nothing is marked delivered.
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)
        await store.call(queue_events, store.store, "S1", 10, 31)
        backend.wake()
        await until(lambda: backend.stats["published"] == 35, what="window of 5 published")
        await asyncio.sleep(0.5)
        assert await pending(store) == 10 and backend.stats["published"] == 35
        broker.proc.send_signal(signal.SIGCONT)
        await until(lambda: backend.stats["delivered"] == 40, what="40 delivered")

        # PUBACKs lost: the link breaks while 5 events are in flight; they are sent
        # again after the reconnect and the backend sees duplicates (same key).
        broker.proc.send_signal(signal.SIGSTOP)
        await store.call(queue_events, store.store, "S1", 5, 41)
        backend.wake()
        await until(lambda: backend.stats["published"] == 45, what="5 more published")
        backend._client.socket().shutdown(2)  # type: ignore[union-attr]
        await until(lambda: not backend.online, what="link lost")
        assert await pending(store) == 5
        broker.proc.send_signal(signal.SIGCONT)
        await until(lambda: backend.stats["delivered"] == 45, 10, "45 delivered")

        # Broker down: events stay pending, go out after the restart.
        broker.stop()
        await until(lambda: not backend.online, what="offline")
        await store.call(queue_events, store.store, "S1", 20, 46)
        await store.call(queue_events, store.store, "S2", 5)
        backend.wake()
        await asyncio.sleep(0.5)
        assert await pending(store) == 25
        broker.start()
        await until(lambda: backend.online, 10, "reconnected")
        await until(lambda: backend.stats["delivered"] == 70, 10, "all delivered")
        assert await pending(store) == 0
        await asyncio.sleep(0.3)
        later = events(peer)
        keys = [got.json()["idempotency_key"] for got in later]
        unique = list(dict.fromkeys(keys))
        s1 = [int(k.split(":")[2]) for k in unique if k.startswith("S1")]
        assert s1 == list(range(31, 66)), s1
        assert [k for k in unique if k.startswith("S2")] == [f"S2:tx:{i}" for i in range(1, 6)]
        assert all(got.json()["offline"] for got in later
                   if got.json()["payload"]["seq_no"] > 40)
        duplicates = len(keys) - len(unique)
        assert duplicates >= 1, "the events whose PUBACK was lost must be sent again"
        print(f"duplicates after the outages: {duplicates}")
    finally:
        await backend.close()
        peer.close()


# ---- status and Last Will ---------------------------------------------------------------------


@run_async
async def test_retained_status_and_last_will(broker: Broker, peer: Peer, store: AsyncStore,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    listener = Listener()
    queue_events(store.store, "S1", 1)
    backend = MqttBackend(config(broker), STATION, store)
    await started(backend, listener)
    try:
        late = Peer(broker, "late-observer")  # retained: seen by one who comes later
        status = await late.wait("status", where=lambda got: got.json()["state"] == "online")
        assert status.retain and status.json()["accepting_sessions"] is True
        late.close()

        sock = backend._client.socket()  # type: ignore[union-attr]  # cut the network
        sock.shutdown(2)
        will = await peer.wait("status", where=lambda got: got.json()["state"] == "offline")
        assert will.json()["reason"] == "connection lost"
        back = await peer.wait("status", 5, lambda got: got.json()["state"] == "online")
        assert back.json()["outbox_depth"] == 0
        await until(lambda: listener.connectivity[-3:] == [True, False, True],
                    what="connectivity changes")

        monkeypatch.setattr("terminal.store.space.shutil.disk_usage",
                            lambda path: type("Usage", (), {"free": 10 * 1_048_576})())
        assert backend.storage_ok() is False
        low = await peer.wait("status", 3, lambda got: not got.json()["accepting_sessions"])
        assert "storage low" in low.json()["reason"]
    finally:
        await backend.close()
    closed = await peer.wait("status", where=lambda got: got.json()["state"] == "offline")
    assert closed.json()["reason"] == "closed"
