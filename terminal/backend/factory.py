"""The one place that knows which backend link to build: `create_backend(config,
station_id, store, clock)` returns the `Backend` (terminal.backend.api) that
`[backend] kind` names:

- `none`: `OfflineBackend` (always offline; the offline policy decides);
- `loopback`: terminal.backend.loopback.LoopbackBackend on `socket_path`;
- `mqtt`: terminal.backend.mqtt.MqttBackend (the outbox pump uses `store` and `clock`).

On failure: ValueError naming the key when the configuration is incomplete or the kind
unknown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from terminal.backend.api import Backend, OfflineBackend

if TYPE_CHECKING:
    from terminal.config import BackendConfig


def create_backend(config: BackendConfig, station_id: str, store: Any = None,
                   clock: Any = None) -> Backend:
    """The backend `[backend] kind` names; ValueError naming the key when incomplete.
    `store` (an AsyncStore) and `clock` serve the MQTT link's outbox pump."""
    if config.kind == "mqtt":
        from terminal.backend.mqtt import MqttBackend
        from terminal.kernel.clock import SYSTEM_CLOCK

        return MqttBackend(config, station_id, store, clock or SYSTEM_CLOCK)
    if config.kind == "none":
        return OfflineBackend()
    if config.kind == "loopback":
        if not config.socket_path:
            raise ValueError("backend.socket_path: required when backend.kind = loopback")
        from terminal.backend.loopback import LoopbackBackend

        return LoopbackBackend(config.socket_path, station_id, config.request_timeout_s)
    raise ValueError(f"backend.kind = {config.kind!r}: expected none, loopback or mqtt")
