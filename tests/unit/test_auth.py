"""Token authorisation: local list, cache, online answers and the offline policy."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.backend.api import BackendUnavailable, NoListener
from terminal.backend.messages import (
    AuthStatus,
    LocalListEntry,
    LocalListUpdate,
    TokenAuthRequest,
    TokenAuthResponse,
)
from terminal.config import AuthConfig
from terminal.identification.auth import AuthDecision, Authorizer
from terminal.kernel.driver_texts import driver_message
from terminal.store import AUTH_SCHEMA
from terminal.store.auth_tables import AuthStore
from tests.unit.clockfake import FakeClock

STATION = "DE*EVT*E0001*1"
FLEET_TARIFF = {
    "id": "FLEET-1",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "vat": 19.0,
                                        "step_size": 1}]}],
}


class FakeBackend(NoListener):
    """Answers from a dict; `unavailable` raises BackendUnavailable, `sleep_s` stalls."""

    def __init__(self, answers: dict[str, TokenAuthResponse] | None = None) -> None:
        self.answers = answers or {}
        self.unavailable = False
        self.sleep_s = 0.0
        self.fail_with: Exception | None = None
        self.asked: list[TokenAuthRequest] = []

    @property
    def online(self) -> bool:
        return not self.unavailable

    async def authorize_token(self, req: TokenAuthRequest) -> TokenAuthResponse:
        self.asked.append(req)
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        if self.fail_with is not None:
            raise self.fail_with
        if self.unavailable:
            raise BackendUnavailable("test: backend down")
        return self.answers.get(req.id_token, TokenAuthResponse(AuthStatus.UNKNOWN))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "auth.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(AUTH_SCHEMA)
    conn.close()
    return path


def open_store(path: Path) -> AuthStore:
    return AuthStore(sqlite3.connect(path, isolation_level=None))


def make(db_path: Path, backend: FakeBackend | None = None, **config: object
         ) -> tuple[Authorizer, FakeBackend, FakeClock]:
    clock = FakeClock()
    backend = backend or FakeBackend()
    auth = Authorizer(AuthConfig(**config), backend, open_store(db_path), clock,
                      station_id=STATION)
    return auth, backend, clock


def decide(auth: Authorizer, token: str, token_type: str = "ISO14443") -> AuthDecision:
    return asyncio.run(auth.authorize(token, token_type))


def entry(token: str, status: str | None = "Accepted", **kw: object) -> LocalListEntry:
    return LocalListEntry(token, status, **kw)


def full(version: int, *entries: LocalListEntry) -> LocalListUpdate:
    return LocalListUpdate(version, "Full", entries)


def diff(version: int, *entries: LocalListEntry) -> LocalListUpdate:
    return LocalListUpdate(version, "Differential", entries)


# ---- local list ----------------------------------------------------------------------------


def test_full_and_differential_updates_and_version_mismatch(db_path):
    auth, _, _ = make(db_path)
    store = auth.store

    async def scenario() -> list:
        results = [await auth.apply_list_update(full(3, entry("A"), entry("B", "Blocked")))]
        results.append(await auth.apply_list_update(
            diff(4, entry("C"), entry("A", None), entry("B"))))
        results.append(await auth.apply_list_update(diff(4, entry("D"))))
        results.append(await auth.apply_list_update(diff(2, entry("D"))))
        return results

    first, second, same, older = asyncio.run(scenario())
    assert (first.status, first.version) == ("Accepted", 3)
    assert (second.status, second.version) == ("Accepted", 4)
    for refused in (same, older):
        assert refused.status == "VersionMismatch"
        assert refused.version == 4
        assert "not newer than the list's version 4" in refused.reason
    assert [e.id_token for e in store.list_entries()] == ["B", "C"]
    assert store.list_entry("B").status is AuthStatus.ACCEPTED
    assert store.list_entry("D") is None

    result = asyncio.run(auth.apply_list_update(full(1, entry("Z", "Expired"))))
    assert (result.status, result.version) == ("Accepted", 1)  # a Full update always replaces
    assert [e.id_token for e in store.list_entries()] == ["Z"]

    reopened = open_store(db_path)
    assert reopened.list_version() == 1
    assert reopened.list_entry("Z").status is AuthStatus.EXPIRED


def test_list_decides_without_the_backend_and_rejects_invalid_entries(db_path):
    auth, backend, clock = make(db_path)
    asyncio.run(auth.apply_list_update(full(1,
        entry("OK", cost_cap=Decimal("30.00"), energy_cap_wh=Decimal("40000"), group_id="G1",
              tariff=FLEET_TARIFF, expiry=clock.now() + timedelta(days=1)),
        entry("BLK", "Blocked"), entry("EXP", "Expired"), entry("INV", "Invalid"),
        entry("OLD", expiry=clock.now() - timedelta(seconds=1)))))
    ok = decide(auth, "OK")
    assert (ok.accepted, ok.source, ok.reason_code, ok.offline) == (True, "local_list",
                                                                    "accepted", False)
    assert (ok.cost_cap, ok.energy_cap_wh, ok.group_id) == (Decimal("30.00"), Decimal("40000"),
                                                            "G1")
    assert ok.tariff == FLEET_TARIFF
    assert ok.valid_until == clock.now() + timedelta(days=1)
    for token, reason in (("BLK", "blocked"), ("EXP", "expired"), ("INV", "invalid"),
                          ("OLD", "expired")):
        rejected = decide(auth, token)
        assert (rejected.accepted, rejected.source, rejected.reason_code) == (
            False, "local_list", reason), token
    assert backend.asked == []


def test_local_pre_authorize_off_asks_the_backend_whose_answer_wins(db_path):
    backend = FakeBackend({"OK": TokenAuthResponse(AuthStatus.BLOCKED)})
    auth, _, _ = make(db_path, backend, local_pre_authorize=False)
    asyncio.run(auth.apply_list_update(full(1, entry("OK"))))
    decision = decide(auth, "OK")
    assert (decision.accepted, decision.source, decision.reason_code) == (False, "online",
                                                                          "blocked")
    assert [r.id_token for r in backend.asked] == ["OK"]
    assert backend.asked[0].station_id == STATION
    assert auth.store.cache_tokens() == []  # tokens in the list are not cached


def test_list_beats_cache(db_path):
    backend = FakeBackend({"T": TokenAuthResponse(AuthStatus.ACCEPTED, cost_cap=Decimal("5"))})
    auth, _, _ = make(db_path, backend)
    assert decide(auth, "T").source == "online"
    assert decide(auth, "T").source == "cache"
    asyncio.run(auth.apply_list_update(full(1, entry("T", "Blocked"))))
    assert (decide(auth, "T").accepted, decide(auth, "T").source) == (False, "local_list")


# ---- cache ---------------------------------------------------------------------------------


def test_accepted_answer_is_cached_until_its_expiry(db_path):
    backend = FakeBackend({"T": TokenAuthResponse(
        AuthStatus.ACCEPTED, cost_cap=Decimal("12.50"), tariff=FLEET_TARIFF, group_id="FLEET")})
    auth, _, clock = make(db_path, backend, cache_ttl_s=600.0)
    online = decide(auth, "T")
    assert (online.accepted, online.source, online.cost_cap) == (True, "online",
                                                                 Decimal("12.50"))
    assert online.tariff == FLEET_TARIFF
    cached = decide(auth, "T")
    assert (cached.source, cached.cost_cap, cached.group_id) == ("cache", Decimal("12.50"),
                                                                 "FLEET")
    assert cached.tariff == FLEET_TARIFF
    assert cached.valid_until == clock.now() + timedelta(seconds=600)
    assert len(backend.asked) == 1
    clock.advance(600)
    assert decide(auth, "T").source == "online"
    assert len(backend.asked) == 2


def test_answer_cache_expiry_beats_the_ttl(db_path):
    clock_start = FakeClock().now()
    backend = FakeBackend({"T": TokenAuthResponse(
        AuthStatus.ACCEPTED, cache_expiry=clock_start + timedelta(seconds=30))})
    auth, _, clock = make(db_path, backend, cache_ttl_s=3600.0)
    decide(auth, "T")
    clock.advance(29)
    assert decide(auth, "T").source == "cache"
    clock.advance(1)
    assert decide(auth, "T").source == "online"


def test_cache_keeps_the_most_recently_used_and_survives_a_reopen(db_path):
    backend = FakeBackend({t: TokenAuthResponse(AuthStatus.ACCEPTED) for t in "ABCD"})
    auth, _, _ = make(db_path, backend, cache_size=3)
    for token in "ABC":
        decide(auth, token)
    assert decide(auth, "A").source == "cache"  # A is now the most recently used
    decide(auth, "D")  # evicts B, the least recently used
    assert auth.store.cache_tokens() == ["C", "A", "D"]

    backend.unavailable = True
    reopened, _, _ = make(db_path, backend, cache_size=3)
    assert reopened.store.cache_tokens() == ["C", "A", "D"]
    for token in "CAD":
        decision = decide(reopened, token)
        assert (decision.accepted, decision.source) == (True, "cache"), token
    evicted = decide(reopened, "B")
    assert (evicted.accepted, evicted.reason_code) == (False, "offline")


def test_non_accepted_answers_update_or_evict_the_cache_entry(db_path):
    backend = FakeBackend({"T": TokenAuthResponse(AuthStatus.ACCEPTED)})
    auth, _, _ = make(db_path, backend, local_pre_authorize=False)
    decide(auth, "T")
    backend.answers["T"] = TokenAuthResponse(AuthStatus.BLOCKED)
    assert decide(auth, "T").reason_code == "blocked"
    assert auth.store.cache_get("T", FakeClock().now()).response.status is AuthStatus.BLOCKED
    backend.answers["T"] = TokenAuthResponse(AuthStatus.UNKNOWN)
    assert decide(auth, "T").reason_code == "unknown"
    assert auth.store.cache_tokens() == []


def test_cache_size_zero_or_ttl_zero_caches_nothing(db_path):
    backend = FakeBackend({"T": TokenAuthResponse(AuthStatus.ACCEPTED)})
    for config in ({"cache_size": 0}, {"cache_ttl_s": 0.0}):
        auth, _, _ = make(db_path, backend, **config)
        decide(auth, "T")
        assert decide(auth, "T").source == "online"
        assert auth.store.cache_tokens() == []


# ---- offline policy ------------------------------------------------------------------------

# where the token is: list (valid in the local list), cache (valid in the cache),
# cached_blocked (the cache remembers a Blocked answer), unknown (nowhere)
OFFLINE_CASES = [
    # where, local_authorize_offline, offline_tx_for_unknown_id -> accepted, source, reason,
    # unknown
    ("list", True, False, True, "local_list", "accepted", False),
    ("list", False, False, False, "offline_policy", "offline", False),
    ("list", False, True, False, "offline_policy", "offline", False),
    ("cache", True, False, True, "cache", "accepted", False),
    ("cache", False, True, False, "offline_policy", "offline", False),
    ("cached_blocked", True, True, False, "cache", "blocked", False),
    ("unknown", True, True, True, "offline_policy", "accepted", True),
    ("unknown", True, False, False, "offline_policy", "offline", False),
    ("unknown", False, True, True, "offline_policy", "accepted", True),
    ("unknown", False, False, False, "offline_policy", "offline", False),
]


@pytest.mark.parametrize(("where", "local_offline", "unknown_ok", "accepted", "source",
                          "reason", "unknown"), OFFLINE_CASES)
def test_offline_policy(db_path, where, local_offline, unknown_ok, accepted, source, reason,
                        unknown):
    backend = FakeBackend({"T": TokenAuthResponse(
        AuthStatus.BLOCKED if where == "cached_blocked" else AuthStatus.ACCEPTED,
        cost_cap=Decimal("9"))})
    auth, _, _ = make(db_path, backend, local_authorize_offline=local_offline,
                      offline_tx_for_unknown_id=unknown_ok)
    if where == "list":
        asyncio.run(auth.apply_list_update(full(1, entry("T", cost_cap=Decimal("9")))))
    elif where in ("cache", "cached_blocked"):
        decide(auth, "T")
    backend.unavailable = True
    # with local_pre_authorize a valid token never reaches the backend; switch it off so
    # every case goes through the offline policy
    auth.config = dataclasses.replace(auth.config, local_pre_authorize=False)
    decision = decide(auth, "T")
    assert (decision.accepted, decision.source, decision.reason_code, decision.unknown) == (
        accepted, source, reason, unknown)
    assert decision.offline is True
    assert decision.cost_cap == (Decimal("9") if accepted and not unknown else None)


def test_offline_rejection_and_unknown_have_driver_texts():
    assert driver_message("offline", "de").startswith("Ladestation offline")
    assert driver_message("offline_payment", "en") == (
        "Charger offline - only charge cards work now")
    assert AuthDecision(False, "blocked", "local_list").driver_text("nl") == (
        "Deze kaart is geblokkeerd")
    assert AuthDecision(False, "unknown", "online", message="Call us").driver_text() == "Call us"


def test_backend_that_does_not_answer_meets_the_offline_policy_in_time(db_path):
    backend = FakeBackend()
    backend.sleep_s = 10.0
    auth, _, _ = make(db_path, backend, online_timeout_s=0.2, offline_tx_for_unknown_id=True)
    started = time.monotonic()
    decision = decide(auth, "NEW")
    elapsed_s = time.monotonic() - started
    assert (decision.accepted, decision.unknown, decision.offline) == (True, True, True)
    assert 0.2 <= elapsed_s < 1.0


def test_backend_bug_is_treated_as_unavailable(db_path):
    backend = FakeBackend()
    backend.fail_with = RuntimeError("bug")
    auth, _, _ = make(db_path, backend)
    decision = decide(auth, "NEW")
    assert (decision.accepted, decision.reason_code, decision.source) == (
        False, "offline", "offline_policy")


# ---- technician, recheck -------------------------------------------------------------------


def test_technician_cards(db_path):
    backend = FakeBackend({"ONLINE-TECH": TokenAuthResponse(AuthStatus.ACCEPTED,
                                                            technician=True)})
    backend.unavailable = False
    auth, _, _ = make(db_path, backend, technician_ids=" 04aa11, 04BB22 ",
                      local_pre_authorize=False)
    asyncio.run(auth.apply_list_update(full(1, entry("LISTTECH", technician=True),
                                            entry("BADTECH", "Blocked", technician=True))))
    for token, source in (("04AA11", "technician"), ("04bb22", "technician"),
                          ("LISTTECH", "technician"), ("ONLINE-TECH", "online")):
        decision = decide(auth, token)
        assert (decision.accepted, decision.technician, decision.source,
                decision.reason_code) == (True, True, source, "technician"), token
    blocked = decide(auth, "BADTECH")
    assert (blocked.accepted, blocked.technician) == (False, False)
    assert [r.id_token for r in backend.asked] == ["ONLINE-TECH"]


def test_recheck_after_the_link_is_back(db_path):
    backend = FakeBackend({"NEW": TokenAuthResponse(AuthStatus.INVALID)})
    backend.unavailable = True
    auth, _, _ = make(db_path, backend, offline_tx_for_unknown_id=True)
    assert decide(auth, "NEW").unknown is True
    assert asyncio.run(auth.recheck("NEW", "ISO14443")) is None
    backend.unavailable = False
    decision = asyncio.run(auth.recheck("NEW", "ISO14443"))
    assert decision is not None
    assert (decision.accepted, decision.reason_code, decision.source) == (False, "invalid",
                                                                          "online")
    backend.answers["NEW"] = TokenAuthResponse(AuthStatus.ACCEPTED, energy_cap_wh=Decimal(5000))
    accepted = asyncio.run(auth.recheck("NEW", "ISO14443"))
    assert (accepted.accepted, accepted.energy_cap_wh) == (True, Decimal(5000))
    assert auth.store.cache_tokens() == ["NEW"]


def test_store_calls_go_through_the_runner(db_path):
    calls: list[str] = []

    async def runner(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return fn(*args, **kwargs)

    backend = FakeBackend({"T": TokenAuthResponse(AuthStatus.ACCEPTED)})
    auth = Authorizer(AuthConfig(), backend, open_store(db_path), FakeClock(),
                      station_id=STATION, run_store=runner)
    asyncio.run(auth.authorize("T", "ISO14443"))
    assert calls == ["list_entry", "cache_get", "cache_put"]
