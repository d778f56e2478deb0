"""Benchmark of the MQTT backend link against a loopback mosquitto; one JSON object.

1. Drain: `--events` (default 10,000) transaction events queued in the SQLite outbox
   while the link was down are sent by the terminal's link (`terminal.backend.mqtt.
   MqttBackend`: QoS 1, marked delivered in the journal when each PUBACK arrives, in-flight
   window from config), timed until the last is marked. Beside it, in the same run and to
   the same broker, the raw rate of a bare paho QoS 1 publish loop of the same payloads
   (all PUBACKs awaited, no journal). Target: drain rate at least half the raw rate.
2. Fleet: `--stations` (default 200) terminals, each with its own journal and link, on one
   broker; each queues a session (Started, Updated, Ended, Receipt) every `--every-s`
   seconds (default 3, staggered) for `--fleet-s` seconds (default 60). A backend client
   subscribed to every station counts what arrives (by idempotency key) and the latency
   from the event being queued to its arrival at the backend.

    .venv/bin/python bench/bench_mqtt.py [--events 10000] [--stations 200] [--fleet-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from stats import percentile

from hw_mocks.mosquitto import Broker
from terminal.backend import protocol
from terminal.backend.mqtt import MqttBackend
from terminal.config import BackendConfig
from terminal.store import AsyncStore, Store

TARGET_DRAIN_VS_RAW = 0.5



def payload(station: str, session: str, seq: int) -> dict[str, Any]:
    return {"event_type": "Updated", "trigger_reason": "MeterValuePeriodic", "seq_no": seq,
            "session_id": session, "station_id": station, "offline": True,
            "timestamp": datetime.now(UTC).isoformat(), "energy_wh": "123456.7",
            "power_w": "150000", "meter_serial": "DCM1-0012345"}


def link_config(broker: Broker, window: int | None = None) -> BackendConfig:
    """The link's config as shipped (default in-flight window), on this broker."""
    config = BackendConfig(kind="mqtt", mqtt_host=broker.host, mqtt_port=broker.port,
                           min_free_storage_mb=1)
    return config if window is None else replace(config, inflight_window=window)


# ---- 1. drain ------------------------------------------------------------------------------


def raw_rate(broker: Broker, events: int, body: bytes) -> float:
    acked = threading.Semaphore(0)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(20)
    client.max_queued_messages_set(0)
    client.on_publish = lambda *args: acked.release()
    client.connect(broker.host, broker.port)
    client.loop_start()
    topic = protocol.up("RAW", "event")
    start = time.perf_counter()
    for _ in range(events):
        client.publish(topic, body, qos=1)
    for _ in range(events):
        acked.acquire(timeout=60)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return events / elapsed


def bench_drain(folder: Path, broker: Broker, events: int,
                window: int | None) -> dict[str, Any]:
    store = Store.open(folder / "drain.db")
    now = datetime.now(UTC)
    for i in range(events):
        store.add_outbox("TransactionEvent", f"S-1:tx:{i}", payload("ST-D", "S-1", i), now,
                         session_id=None)
    body = protocol.encode(protocol.Event.from_outbox(store.outbox(limit=1)[0]).to_json())
    async_store = AsyncStore(store)

    async def drain() -> float:
        link = MqttBackend(link_config(broker, window), "ST-D", async_store)
        start = time.perf_counter()
        await link.start()
        while (await async_store.call(store.outbox_stats))["pending"]:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        await link.close()
        return elapsed

    elapsed = asyncio.run(drain())
    async_store.close()
    raw = raw_rate(broker, events, body)
    rate = events / elapsed
    return {"events": events, "payload_bytes": len(body),
            "inflight_window": link_config(broker, window).inflight_window,
            "drain_s": round(elapsed, 2), "drain_events_per_s": round(rate),
            "raw_paho_qos1_per_s": round(raw), "ratio": round(rate / raw, 2),
            "target_ratio": TARGET_DRAIN_VS_RAW, "pass": rate / raw >= TARGET_DRAIN_VS_RAW}


# ---- 2. fleet ------------------------------------------------------------------------------


class BackendCounter:
    def __init__(self, broker: Broker) -> None:
        self.keys: dict[str, float] = {}
        self.latencies_ms: list[float] = []
        self.duplicates = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-backend",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"{protocol.ROOT}/+/up/event", qos=1)
        self.client.loop_start()

    def _message(self, client: Any, userdata: Any, message: Any) -> None:
        event = protocol.decode_event(message.payload)
        arrived = time.time()
        with self.lock:
            if event.idempotency_key in self.keys:
                self.duplicates += 1
                return
            self.keys[event.idempotency_key] = arrived
            queued = datetime.fromisoformat(event.created_at).timestamp()
            self.latencies_ms.append((arrived - queued) * 1000)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


STATIONS_PER_PROCESS = 50  # paho uses select(): descriptors above 1023 cannot be watched


def fleet_worker(job: tuple[str, int, int, int, int, float, float, int]) -> dict[str, Any]:
    """One process playing `count` terminals (their own journals and links)."""
    folder_text, host_port, first, count, stations, fleet_s, every_s, _ = job
    raise_fd_limit()
    folder = Path(folder_text)
    sent: list[str] = []
    marked: list[str] = []
    pending: list[str] = []
    connects: list[int] = []
    config = BackendConfig(kind="mqtt", mqtt_host="127.0.0.1", mqtt_port=host_port,
                           min_free_storage_mb=1)

    async def fleet() -> None:
        ids = [f"ST{first + i:03d}" for i in range(count)]
        stores = [AsyncStore(Store.open(folder / f"{sid}.db")) for sid in ids]
        links = [MqttBackend(config, sid, store) for sid, store in zip(ids, stores, strict=True)]
        await asyncio.gather(*(link.start() for link in links))

        async def station(i: int) -> None:
            await asyncio.sleep(every_s * (first + i) / stations)  # staggered
            deadline = time.monotonic() + fleet_s
            n = 0
            while time.monotonic() < deadline:
                session = f"{ids[i]}-{n}"
                now = datetime.now(UTC)
                for seq, kind in enumerate(("TransactionEvent",) * 3 + ("Receipt",)):
                    key = f"{session}:{seq}"
                    await stores[i].call(stores[i].store.add_outbox, kind, key,
                                         payload(ids[i], session, seq), now)
                    sent.append(key)
                links[i].wake()
                n += 1
                await asyncio.sleep(every_s)

        await asyncio.gather(*(station(i) for i in range(count)))
        async def queued() -> int:
            return sum([(await store.call(store.store.outbox_stats))["pending"]
                        for store in stores])

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and await queued():
            await asyncio.sleep(0.2)
        await asyncio.gather(*(link.close() for link in links))
        for link, store in zip(links, stores, strict=True):
            for message in await store.call(store.store.outbox):
                (marked if message.delivered_at else pending).append(message.idempotency_key)
            connects.append(link.stats["connects"])
            store.close()

    asyncio.run(fleet())
    return {"sent": sent, "marked": marked, "pending": pending, "connects": connects}


def bench_fleet(folder: Path, broker: Broker, stations: int, fleet_s: float,
                every_s: float) -> dict[str, Any]:
    import multiprocessing

    counter = BackendCounter(broker)
    time.sleep(0.5)
    jobs = [(str(folder), broker.port, first, min(STATIONS_PER_PROCESS, stations - first),
             stations, fleet_s, every_s, 0)
            for first in range(0, stations, STATIONS_PER_PROCESS)]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        results = pool.map(fleet_worker, jobs)
    sent = {key for r in results for key in r["sent"]}
    marked = {key for r in results for key in r["marked"]}
    pending = {key for r in results for key in r["pending"]}
    deadline = time.monotonic() + 10
    while not marked <= set(counter.keys) and time.monotonic() < deadline:
        time.sleep(0.2)
    counter.close()
    received = set(counter.keys)
    lost = len(marked - received)  # acknowledged by the broker, never seen by the backend
    lat = counter.latencies_ms
    return {"stations": stations, "processes": len(jobs), "seconds": fleet_s,
            "session_every_s": every_s,
            "stations_never_connected": sum(1 for r in results for c in r["connects"] if c == 0),
            "events_queued": len(sent), "events_delivered": len(received & sent),
            "events_still_queued": len(pending), "events_lost": lost,
            "duplicates_seen": counter.duplicates,
            "latency_ms": {"p50": round(percentile(lat, 0.5), 1),
                           "p95": round(percentile(lat, 0.95), 1),
                           "max": round(max(lat), 1) if lat else None},
            "pass": lost == 0 and not pending}


def raise_fd_limit() -> None:
    """200 terminals in one process need more than 1024 descriptors (a journal, a socket
    and paho's wake-up pipe each)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def main() -> int:
    raise_fd_limit()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=None,
                        help="in-flight window (default: [backend] inflight_window's default)")
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--fleet-s", type=float, default=60.0)
    parser.add_argument("--every-s", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evbm-") as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        try:
            drain = bench_drain(folder, broker, args.events, args.window)
            fleet = bench_fleet(folder, broker, args.stations, args.fleet_s, args.every_s)
        finally:
            broker.stop()
    print(json.dumps({"benchmark": "mqtt", "python": platform.python_version(),
                      "drain": drain, "fleet": fleet}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
