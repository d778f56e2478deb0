"""What the ways in to a session work with: the driver's local-API routes
(terminal.driver_api) and the backend's commands (terminal.backend.commands).

Provides `Desk`: the configuration, the clock, the journal, the session port (state,
apply, refusal reason, publish), the screen's state, the session's money (terms, price
list) and the status snapshot. Each way in is a `Desk` with its own handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

MAX_TOKEN_CHARS = 64  # an id token from the screen, the app or the backend

if TYPE_CHECKING:
    from terminal.config import Config
    from terminal.kernel.clock import Clock
    from terminal.ports import SessionPort
    from terminal.screen import Screen
    from terminal.session_pricing import SessionPricing
    from terminal.store import AsyncStore


@dataclass
class Desk:
    config: Config
    clock: Clock
    store: AsyncStore
    port: SessionPort
    screen: Screen
    pricing: SessionPricing
    snapshot: Callable[[], dict[str, Any]]
