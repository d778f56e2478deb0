"""A private mosquitto broker for tests, the demo and the bench, and a bare MQTT client.

Provides:
- `Broker(folder, *, tls=None, stations=("ST1",), backend="backend", port=None,
  persistent=False)`: the
  Debian `mosquitto -c folder/mosquitto.conf` on 127.0.0.1 and a free port
  (hw_mocks.ports.free_port). Plain: anonymous clients allowed. With `tls` (a
  hw_mocks.pki.PkiPaths): MQTT over TLS only, a client certificate from the test CA
  required, its CN is the user name, and an ACL file: each user may write
  `evterm/v1/<CN>/up/#` and read `evterm/v1/<CN>/down/#`; the backend user may read and
  write `evterm/v1/#`. (`stations` only documents who is expected; the ACL is by pattern.)
  Persistence is off; no system configuration is read; the log is `folder/mosquitto.log`.
  `start()` (again after `stop()`: same port, for outage tests), `stop()` (SIGTERM),
  `kill()` (SIGKILL), `host`, `port`, `log_path`, `log_text()`; a context manager.
- `Probe(broker, client_id, *, cert=None)`: a bare paho-mqtt 2.x MQTT 5 client (a
  station or a listener in tests): `connect()`, `subscribe(topic) -> reason codes`,
  `publish(topic, payload, ...)`, `messages` (a queue of received `Received`),
  `wait_message(...)`, `close()`.

On failure: no mosquitto binary raises BrokerError naming the Debian package; a broker
that exits or does not accept connections within `timeout_s` raises BrokerError with
the tail of its log. `Probe.connect()` raises ProbeError when the broker refuses (bad
or missing certificate) or does not answer.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw_mocks.pki import CertPair, PkiPaths
from hw_mocks.ports import free_port
from terminal.backend.protocol import ROOT

HOST = "127.0.0.1"
DEBIAN_PACKAGE = "mosquitto"
SEARCH_PATH = ("/usr/sbin", "/usr/bin", "/usr/local/sbin")


class BrokerError(RuntimeError):
    """The broker cannot be started; the message says why."""


class ProbeError(RuntimeError):
    """A test client could not connect or a request to the broker failed."""


def find_mosquitto() -> str:
    path = shutil.which("mosquitto") or shutil.which(
        "mosquitto", path=os.pathsep.join(SEARCH_PATH))
    if path is None:
        raise BrokerError(f"mosquitto is not installed: install the Debian package "
                          f"{DEBIAN_PACKAGE!r} (apt-get install {DEBIAN_PACKAGE})")
    return path


def acl_text(backend: str = "backend") -> str:
    """The per-station ACL: patterns for every user, full access for the backend."""
    return (
        "# evterm test broker ACL: a station (user = certificate CN) writes its up tree\n"
        "# and reads its down tree; the backend reads and writes everything.\n"
        f"pattern write {ROOT}/%u/up/#\n"
        f"pattern read {ROOT}/%u/down/#\n"
        "\n"
        f"user {backend}\n"
        f"topic readwrite {ROOT}/#\n"
    )


def publish_properties(response_topic: str | None, correlation: bytes | None) -> Any:
    """MQTT 5 PUBLISH properties for a request or command (None when neither is given)."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if response_topic is None and correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if correlation is not None:
        props.CorrelationData = correlation
    return props


class Broker:
    def __init__(self, folder: str | Path, *, tls: PkiPaths | None = None,
                 stations: Iterable[str] = ("ST1",), backend: str | None = None,
                 port: int | None = None, timeout_s: float = 5.0,
                 persistent: bool = False) -> None:
        self.persistent = persistent  # keep sessions and queued messages across restarts
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.stations = tuple(stations)
        self.backend = backend or (tls.backend_name if tls is not None else "backend")
        self.host = HOST
        self.port = port or free_port()
        self.timeout_s = timeout_s
        self.conf_path = self.folder / "mosquitto.conf"
        self.acl_path = self.folder / "acl"
        self.log_path = self.folder / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._binary = find_mosquitto()
        self._write_config()

    # ---- config --------------------------------------------------------------------------

    def _write_config(self) -> None:
        lines = [
            "# written by hw_mocks.mosquitto for one test broker",
            "per_listener_settings false",
            *(["persistence true", f"persistence_location {self.folder}/",
                "autosave_interval 1"] if self.persistent else ["persistence false"]),
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",
            "log_type unsubscribe",
            "connection_messages true",
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "max_queued_messages 100000",
            "",
            f"listener {self.port} {self.host}",
        ]
        if self.tls is None:
            lines.append("allow_anonymous true")
        else:
            self.acl_path.write_text(acl_text(self.backend), encoding="utf-8")
            lines += [
                "allow_anonymous false",
                f"cafile {self.tls.ca.cert}",
                f"certfile {self.tls.server.cert}",
                f"keyfile {self.tls.server.key}",
                "require_certificate true",
                "use_identity_as_username true",
                f"acl_file {self.acl_path}",
            ]
        self.conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # ---- process -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Broker:
        if self.running:
            return self
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([self._binary, "-c", str(self.conf_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise BrokerError(f"mosquitto exited with {code}: {self.log_tail()}")
            with contextlib.suppress(OSError), \
                    socket.create_connection((self.host, self.port), timeout=0.2):
                return self
            time.sleep(0.02)
        self.kill()
        raise BrokerError(f"mosquitto not listening on {self.host}:{self.port} within "
                          f"{self.timeout_s} s: {self.log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM and wait (long enough for a loaded 2-core CI machine); the exit code
        (None when it was not running)."""
        return self._end(signal.SIGTERM, timeout_s)

    def kill(self) -> int | None:
        return self._end(signal.SIGKILL, 5.0)

    def _end(self, sig: int, timeout_s: float) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                return proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait(timeout=5)
        return proc.returncode

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") \
            if self.log_path.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]


# ---- a bare client --------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    response_topic: str | None
    correlation: bytes | None


class Probe:
    """A bare MQTT 5 client with paho-mqtt 2.x (callback API 2) for tests."""

    def __init__(self, broker: Broker, client_id: str, *, cert: CertPair | None = None,
                 timeout_s: float = 5.0) -> None:
        import paho.mqtt.client as mqtt

        self.broker = broker
        self.client_id = client_id
        self.timeout_s = timeout_s
        self.messages: queue.Queue[Received] = queue.Queue()
        self.connected = threading.Event()
        self._answered = threading.Event()
        self.connect_reason: str | None = None
        self._subacks: dict[int, list[int]] = {}
        self._suback_event = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if broker.tls is not None:
            self.client.tls_set(ca_certs=str(broker.tls.ca.cert),
                                certfile=None if cert is None else str(cert.cert),
                                keyfile=None if cert is None else str(cert.key))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_log = self._on_log
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=1)
        self.last_error: str | None = None
        self._error_levels = (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING)

    def _on_log(self, client: Any, userdata: Any, level: int, text: str) -> None:
        if level in self._error_levels:
            self.last_error = text

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        self.connect_reason = str(reason)
        if not reason.is_failure:
            self.connected.set()
        self._answered.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        if self.connect_reason is None:
            self.connect_reason = f"disconnected: {reason}"
            if self.last_error:
                self.connect_reason += f" ({self.last_error})"
        self._answered.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self.connect_reason = self.connect_reason or "connection failed"
        self._answered.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props = getattr(msg, "properties", None)
        self.messages.put(Received(
            msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
            getattr(props, "ResponseTopic", None), getattr(props, "CorrelationData", None)))

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        with self._suback_event:
            self._subacks[mid] = [int(getattr(r, "value", r)) for r in reasons]
            self._suback_event.notify_all()

    def connect(self) -> Probe:
        """Connect and wait for CONNACK; ProbeError when refused or silent."""
        self._answered.clear()
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except OSError as exc:  # ssl.SSLError is an OSError
            self.client.loop_stop()
            raise ProbeError(f"{self.client_id}: connection refused: {exc}") from None
        self.client.loop_start()
        self._answered.wait(self.timeout_s)
        if not self.connected.is_set():
            self.close()
            raise ProbeError(f"{self.client_id}: not connected: "
                             f"{self.connect_reason or 'no CONNACK'}")
        return self

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        """Subscribe and wait for SUBACK; its reason codes (0-2 granted QoS, >= 0x80
        refused)."""
        result, mid = self.client.subscribe(topic, qos)
        if result != 0:
            raise ProbeError(f"{self.client_id}: subscribe {topic}: error {result}")
        deadline = time.monotonic() + self.timeout_s
        with self._suback_event:
            while mid not in self._subacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProbeError(f"{self.client_id}: no SUBACK for {topic}")
                self._suback_event.wait(left)
            return self._subacks.pop(mid)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                response_topic: str | None = None, correlation: bytes | None = None,
                wait: bool = True) -> Any:
        """Publish (waiting for PUBACK with `wait`); the paho MQTTMessageInfo."""
        props = publish_properties(response_topic, correlation)
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if wait and qos > 0:
            info.wait_for_publish(self.timeout_s)
        return info

    def wait_message(self, timeout_s: float | None = None,
                     topic: str | None = None) -> Received:
        """The next received message (on `topic` if given; others are dropped);
        queue.Empty after `timeout_s`."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise queue.Empty
            message = self.messages.get(timeout=left)
            if topic is None or message.topic == topic:
                return message

    def drain(self) -> list[Received]:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Probe:
        return self if self.connected.is_set() else self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()
