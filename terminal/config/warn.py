"""What a valid configuration still should not do: warnings, not errors.

Provides `config_warnings(config)`: one line per setting that is allowed but unsafe,
naming the key and what to do instead. `evterm config check` prints them (the exit code
stays 0) and the daemon logs them at start.
"""

from __future__ import annotations

import ipaddress

from terminal.config.options import Config


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_warnings(config: Config) -> list[str]:
    warnings: list[str] = []
    backend = config.backend
    if backend.kind == "mqtt" and not backend.mqtt_tls and not is_loopback(backend.mqtt_host):
        warnings.append(
            f"backend.mqtt_tls = false: the link to the broker {backend.mqtt_host!r} is not "
            "encrypted or authenticated (session data and commands travel in the clear); "
            "set mqtt_tls = true (port 8883) unless the broker is on this board")
    if config.localapi.dev_free_start:
        warnings.append(
            "localapi.dev_free_start = true: DEVELOPMENT ONLY; root and the daemon's user "
            "may start sessions with any id token, without card, PIN or login (the daemon "
            "refuses to run with it under systemd)")
    return warnings
