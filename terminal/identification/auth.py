"""Token authorisation: local list, authorisation cache, backend and offline policy.

Provides:
- `Authorizer.authorize(id_token, token_type, now)` -> `AuthDecision`, deciding for an
  RFID/NFC card or app token with OCPP 2.0.1 semantics, in this order
  (docs/authorisation.md):
  1. a technician card (`[auth] technician_ids`) is accepted as technician;
  2. a token in the local list that is not valid (Blocked, Expired, Invalid, past its
     expiry) is rejected without asking; a valid one flagged technician is accepted
     as technician; a valid one is accepted at once with `local_pre_authorize`;
  3. a token valid in the cache is accepted at once with `local_pre_authorize`
     (the list beats the cache: a token in the list is never looked up in the cache);
  4. otherwise the backend is asked, waiting at most `online_timeout_s`; its answer
     decides and updates the cache;
  5. backend unavailable (BackendUnavailable, timeout, any error): the offline policy —
     valid in list/cache and `local_authorize_offline` -> accepted (offline); cached
     as Blocked/Expired/Invalid -> rejected; not known at all and
     `offline_tx_for_unknown_id` -> accepted (offline, unknown: the daemon re-checks
     with `recheck()` when the link is back and applies `max_energy_on_invalid_id_wh`);
     otherwise rejected with reason "offline".
- `Authorizer.recheck(...)`: ask the backend only; None while it is unreachable.
- `Authorizer.apply_list_update(update)`: Full replaces the list, Differential
  upserts/removes; a Differential whose version is not newer is refused
  (VersionMismatch).
- `AuthStore` (imported from terminal/store/auth_tables.py): the local list and the
  cache in the daemon's SQLite database (tables of `terminal.store.AUTH_SCHEMA`, store
  migration 3). The cache keeps answers until their expiry (the answer's cache_expiry,
  else `cache_ttl_s`) and at most `cache_size` tokens, the least recently used going
  first. Accepted, Blocked, Expired and Invalid answers are cached (so a blocked card
  stays rejected offline); an Unknown answer evicts the token.

Config: `[auth]` (terminal.config.AuthConfig). Store calls go through `run_store`
(the daemon passes AsyncStore.call, so they run on the store thread; default: inline).
Decisions carry `reason_code`, which `terminal.backend.api.driver_message` turns into
a driver text. On failure nothing is raised to the caller for backend problems: they
are logged and the offline policy decides. Store errors (sqlite3.Error) propagate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from terminal.backend.api import Backend, BackendUnavailable
from terminal.backend.messages import (
    AuthStatus,
    LocalListEntry,
    LocalListUpdate,
    MessageError,
    TokenAuthRequest,
    TokenAuthResponse,
)
from terminal.config import AuthConfig
from terminal.kernel.clock import SYSTEM_CLOCK, Clock
from terminal.kernel.driver_texts import driver_message
from terminal.kernel.logsetup import fields, get_logger
from terminal.store.auth_tables import AuthStore, CachedToken, ListUpdateResult

log = get_logger("auth")

T = TypeVar("T")
StoreRunner = Callable[..., Awaitable[Any]]

SOURCES = ("local_list", "cache", "online", "offline_policy", "technician")


@dataclass(frozen=True)
class AuthDecision:
    """The outcome for one token. Caps incl. VAT in the tariff currency / Wh; `tariff`
    a personal OCPI tariff; `valid_until` None = the daemon's default validity."""

    accepted: bool
    reason_code: str  # accepted, technician, blocked, expired, invalid, unknown, offline
    source: str  # one of SOURCES
    offline: bool = False
    unknown: bool = False
    technician: bool = False
    valid_until: datetime | None = None
    cost_cap: Decimal | None = None
    energy_cap_wh: Decimal | None = None
    tariff: dict[str, Any] | None = field(default=None, repr=False)
    group_id: str | None = None
    message: str | None = None  # the backend's own text for the driver, if it sent one

    def driver_text(self, language: str = "en") -> str:
        return self.message or driver_message(self.reason_code, language)


async def _inline(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return fn(*args, **kwargs)


def parse_technician_ids(text: str) -> frozenset[str]:
    """`[auth] technician_ids`: comma-separated UIDs, compared upper-case."""
    return frozenset(part.strip().upper() for part in text.split(",") if part.strip())


class Authorizer:
    def __init__(
        self,
        config: AuthConfig,
        backend: Backend,
        store: AuthStore,
        clock: Clock = SYSTEM_CLOCK,
        *,
        station_id: str,
        run_store: StoreRunner = _inline,
    ) -> None:
        self.config = config
        self.backend = backend
        self.store = store
        self.clock = clock
        self.station_id = station_id
        self._run = run_store
        self._technician_ids = parse_technician_ids(config.technician_ids)

    # ---- decisions -----------------------------------------------------------------------

    async def is_technician(self, id_token: str) -> bool:
        """A technician card (configured, or valid and marked in the local list): it may
        stop any session. Decided locally, without asking the backend."""
        if id_token.upper() in self._technician_ids:
            return True
        entry = await self._list_entry(id_token)
        return (entry is not None and entry.technician
                and entry.status_at(self.clock.now()) is AuthStatus.ACCEPTED)

    async def authorize(self, id_token: str, token_type: str,
                        now: datetime | None = None) -> AuthDecision:
        now = now or self.clock.now()
        decision = await self._decide(id_token, token_type, now)
        log.info("token authorisation", extra=fields(
            id_token=id_token, accepted=decision.accepted, source=decision.source,
            reason=decision.reason_code, offline=decision.offline))
        return decision

    async def _decide(self, id_token: str, token_type: str, now: datetime) -> AuthDecision:
        cfg = self.config
        if id_token.upper() in self._technician_ids:
            return AuthDecision(True, "technician", "technician", technician=True)
        entry = await self._list_entry(id_token)
        cached: CachedToken | None = None
        if entry is not None:
            status = entry.status_at(now)
            if status is not AuthStatus.ACCEPTED:
                return AuthDecision(False, str(status).lower(), "local_list")
            if entry.technician:
                return _from_entry(entry, "technician")
            if cfg.local_pre_authorize:
                return _from_entry(entry, "local_list")
        elif cfg.cache_size > 0:
            cached = await self._stored(self.store.cache_get, id_token, now)
            if cached is not None and cached.accepted and cfg.local_pre_authorize:
                return _from_response(cached.response, "cache", cached.expires_at)
        response = await self._ask(id_token, token_type)
        if response is None:
            return self._offline(entry, cached)
        if entry is None:
            await self._remember(id_token, response, now)
        return _from_response(response, "online", response.cache_expiry)

    async def _list_entry(self, id_token: str) -> LocalListEntry | None:
        entry: LocalListEntry | None = await self._stored(self.store.list_entry, id_token)
        return entry

    async def _stored(self, lookup: Callable[..., Any], id_token: str, *args: Any) -> Any:
        """A local-list entry or cached answer; None (logged) when what is stored no
        longer passes the checks of the messages (e.g. a cap beyond the amount bounds,
        stored before they applied): the token is then decided as if not stored."""
        try:
            return await self._run(lookup, id_token, *args)
        except MessageError as exc:
            log.warning("stored token information ignored", extra=fields(
                id_token=id_token, reason=str(exc)))
            return None

    def _offline(self, entry: LocalListEntry | None, cached: CachedToken | None) -> AuthDecision:
        """The offline policy; `entry` when given is valid (invalid ones were rejected)."""
        cfg = self.config
        if entry is not None or (cached is not None and cached.accepted):
            if not cfg.local_authorize_offline:
                return AuthDecision(False, "offline", "offline_policy", offline=True)
            if entry is not None:
                return _from_entry(entry, "local_list", offline=True)
            assert cached is not None
            return _from_response(cached.response, "cache", cached.expires_at, offline=True)
        if cached is not None:  # cached as Blocked, Expired or Invalid
            return AuthDecision(False, str(cached.response.status).lower(), "cache",
                                offline=True)
        if cfg.offline_tx_for_unknown_id:
            return AuthDecision(True, "accepted", "offline_policy", offline=True, unknown=True)
        return AuthDecision(False, "offline", "offline_policy", offline=True)

    async def recheck(self, id_token: str, token_type: str,
                      now: datetime | None = None) -> AuthDecision | None:
        """The backend's decision for a token accepted offline as unknown; None while the
        backend is unreachable. Updates the cache like an online decision."""
        now = now or self.clock.now()
        response = await self._ask(id_token, token_type)
        if response is None:
            return None
        if await self._list_entry(id_token) is None:
            await self._remember(id_token, response, now)
        decision = _from_response(response, "online", response.cache_expiry)
        log.info("token re-checked", extra=fields(id_token=id_token, accepted=decision.accepted,
                                                  reason=decision.reason_code))
        return decision

    async def _ask(self, id_token: str, token_type: str) -> TokenAuthResponse | None:
        """The backend's answer within online_timeout_s, or None (reason logged)."""
        request = TokenAuthRequest(id_token, token_type, self.station_id)
        try:
            return await asyncio.wait_for(self.backend.authorize_token(request),
                                          self.config.online_timeout_s)
        except BackendUnavailable as exc:
            reason = exc.reason
        except TimeoutError:
            reason = f"no answer within {self.config.online_timeout_s:g} s"
        except Exception as exc:  # a backend bug must not leave a driver without an answer
            log.exception("backend failed on a token", extra=fields(id_token=id_token))
            reason = f"backend error: {exc}"
        log.warning("backend unavailable for a token; offline policy decides",
                    extra=fields(id_token=id_token, reason=reason))
        return None

    async def _remember(self, id_token: str, response: TokenAuthResponse, now: datetime) -> None:
        cfg = self.config
        if cfg.cache_size == 0:
            return
        expires_at = response.cache_expiry or now + timedelta(seconds=cfg.cache_ttl_s)
        if response.status is AuthStatus.UNKNOWN or expires_at <= now:
            await self._run(self.store.cache_remove, id_token)
        else:
            await self._run(self.store.cache_put, id_token, response, expires_at,
                            cfg.cache_size)

    # ---- the local list ------------------------------------------------------------------

    async def apply_list_update(self, update: LocalListUpdate,
                                now: datetime | None = None) -> ListUpdateResult:
        result: ListUpdateResult = await self._run(self.store.apply_list_update, update,
                                                   now or self.clock.now())
        log.info("local list update", extra=fields(
            update_type=update.update_type, version=update.version,
            entries=len(update.entries), status=result.status, reason=result.reason))
        return result

    async def list_version(self) -> int:
        version: int = await self._run(self.store.list_version)
        return version


def _from_entry(entry: LocalListEntry, source: str, *, offline: bool = False) -> AuthDecision:
    technician = source == "technician"
    return AuthDecision(
        True, "technician" if technician else "accepted", source, offline=offline,
        technician=technician, valid_until=entry.expiry, cost_cap=entry.cost_cap,
        energy_cap_wh=entry.energy_cap_wh, tariff=entry.tariff, group_id=entry.group_id)


def _from_response(response: TokenAuthResponse, source: str, valid_until: datetime | None,
                   *, offline: bool = False) -> AuthDecision:
    accepted = response.status is AuthStatus.ACCEPTED
    if not accepted:
        return AuthDecision(False, str(response.status).lower(), source, offline=offline,
                            group_id=response.group_id, message=response.message)
    return AuthDecision(
        True, "technician" if response.technician else "accepted", source, offline=offline,
        technician=response.technician, valid_until=valid_until, cost_cap=response.cost_cap,
        energy_cap_wh=response.energy_cap_wh, tariff=response.tariff,
        group_id=response.group_id, message=response.message)
