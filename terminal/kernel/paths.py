"""Where an installed terminal keeps what more than one process needs to find."""

LOCAL_API_SOCKET = "/run/evterm/local.sock"  # the daemon's local API (docs/local-api.md)
