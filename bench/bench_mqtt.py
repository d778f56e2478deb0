"""Benchmark of the MQTT backend link against a loopback mosquitto; one JSON object.

1. Drain: `--events` (default 10,000) transaction events queued in the SQLite outbox
   while the link was down are sent by the terminal's link (`terminal.backend.
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

from hw_mocks.mosquitto import Broker
from terminal import protocol
from terminal.backend import MqttBackend
from terminal.config import BackendConfig
from terminal.store import AsyncStore, Store

TARGET_DRAIN_VS_RAW = 0.5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


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


def bench_fleet(folder: Path, broker: Broker, stations: int, fleet_s: float,
                every_s: float) -> dict[str, Any]:
    counter = BackendCounter(broker)
    time.sleep(0.5)
    sent: set[str] = set()

    async def fleet() -> None:
        stores = [AsyncStore(Store.open(folder / f"st{i}.db")) for i in range(stations)]
        links = [MqttBackend(link_config(broker), f"ST{i:03d}", stores[i])
                 for i in range(stations)]
        for link in links:
            await link.start()

        async def station(i: int) -> None:
            await asyncio.sleep(every_s * i / stations)  # staggered
            deadline = time.monotonic() + fleet_s
            n = 0
            while time.monotonic() < deadline:
                session = f"ST{i:03d}-{n}"
                now = datetime.now(UTC)
                for seq, kind in enumerate(("TransactionEvent",) * 3 + ("Receipt",)):
                    key = f"{session}:{seq}"
                    await stores[i].call(stores[i].store.add_outbox, kind, key,
                                         payload(f"ST{i:03d}", session, seq), now)
                    sent.add(key)
                links[i].wake()
                n += 1
                await asyncio.sleep(every_s)

        await asyncio.gather(*(station(i) for i in range(stations)))
        settle_deadline = time.monotonic() + 30
        while len(counter.keys) < len(sent) and time.monotonic() < settle_deadline:
            await asyncio.sleep(0.2)
        for link in links:
            await link.close()
        for store in stores:
            store.close()

    asyncio.run(fleet())
    counter.close()
    lost = len(sent - set(counter.keys))
    lat = counter.latencies_ms
    return {"stations": stations, "seconds": fleet_s, "session_every_s": every_s,
            "events_sent": len(sent), "events_delivered": len(counter.keys),
            "events_lost": lost, "duplicates_seen": counter.duplicates,
            "latency_ms": {"p50": round(percentile(lat, 0.5), 1),
                           "p95": round(percentile(lat, 0.95), 1),
                           "max": round(max(lat), 1) if lat else None},
            "pass": lost == 0}


def main() -> int:
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
