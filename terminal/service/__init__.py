"""The service menu for field technicians: card + PIN login, diagnostics and actions.

Provides:
- `hash_pin(pin)` -> "scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>" (cryptography's Scrypt,
  n=2**14, r=8, p=1, 32 bytes, 16-byte random salt) and `verify_pin(pin, encoded)`;
  `load_pins(path)` / `set_pin(path, card, pin)` for the `[service] pins_file`
  (`{"technicians": {"<card id upper-case>": "<hash>"}}`, written atomically, mode 0600).
  A PIN is 4 to 12 digits.
- `Service(daemon)`: the login state machine and the local-API ops `service_login`,
  `service_logout`, `service_diagnostics`, `service_receipt` and `service_action`
  (docs/service.md, docs/local-api.md). A technician card tapped while no session runs
  opens a PIN window (`pin_window_s`); the right PIN within it gives a token; every other
  op needs the token and refreshes the idle timer (`idle_logout_s`, then logged out).
  `max_failed_pins` wrong PINs in a row lock PIN entry for `lockout_s`, doubled with each
  further lockout up to `max_lockout_s`; a good PIN resets both counts.
- Its durable state in the journal's `service_state` table (store migration 5), one JSON
  value per key: `out_of_service` {since, by, reason} and `pin_lockout` {failures,
  lockouts, locked_until}. A restart keeps both.
- Diagnostics (meter, readers, charger, backend, storage, software, the configuration
  with secrets masked, recent sessions, recent faults), the meter self-check (two of the
  daemon's own polls, at least a poll interval apart: the meter is never read by two
  tasks at once) and the export bundle, written only below `export_allowed_root` and
  scanned for key material, PIN hashes and card numbers before it is left in place.

Every op and its outcome goes to the audit log (kinds `service_*`, queued for the
backend); technicians appear there by the last 4 characters of their card id. Requests
without a valid token are only logged (they cannot flood the audit log). PINs are
checked in a worker thread (scrypt takes ~50 ms and 16 MiB), one at a time.

On failure: a refused op raises `RequestError` whose message starts with the field at
fault (`token:`, `pin:`, `card:`, `locked:`, `action:`, `reason:`, `folder:`...) and
changes nothing. A bundle in which the scan finds a secret is deleted and the export
refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import secrets
import shutil
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from terminal import __version__
from terminal.config import Config
from terminal.kernel.clock import iso_utc
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.redact import card_numbers_in, scrub
from terminal.localapi import LocalApi, RequestError
from terminal.service_tables import ServiceStore, database_report
from terminal.session import StopReason, StopRequested

if TYPE_CHECKING:
    from terminal.daemon import Daemon

log = get_logger("service")

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
HASH_BYTES = 32
SALT_BYTES = 16
PIN_PATTERN = re.compile(r"[0-9]{4,12}")
CARD_PATTERN = re.compile(r"[0-9A-Z_.*-]{1,64}")
RESTART_EXIT_CODE = 75  # systemd Restart=on-failure starts the daemon again
MAX_WAIT_CARD_S = 120.0
MAX_REASON_CHARS = 200
MAX_LOGINS = 4  # open logins at a time (touchscreen, SSH); the oldest goes first
RECENT_SESSIONS = 10
RECENT_FAULTS = 20
EXPORT_AUDIT_ROWS = 500
EXPORT_SESSIONS = 100
EXPORT_LOG_BYTES = 1_048_576
ACTIONS = ("out_of_service", "in_service", "stop_session", "resend_outbox", "restart",
           "meter_selfcheck", "export")
BUNDLE_FILES = ("diagnostics.json", "config.redacted.toml", "db-integrity.txt", "audit.json",
                "log.txt", "sessions.json")
KEY_OUT_OF_SERVICE = "out_of_service"
KEY_PIN_LOCKOUT = "pin_lockout"
MASK = "***"
# string config values whose key names one of these are secrets (paths are shown)
SECRET_NAME = re.compile(r"key|pin|token|secret|password|technician")
PATH_SUFFIXES = ("_file", "_path", "_dir", "_root")


# ---- PINs ------------------------------------------------------------------------------------


def check_pin(pin: object) -> str:
    """The PIN if it is 4 to 12 digits; ValueError naming `pin` (never its value)."""
    if not isinstance(pin, str) or not PIN_PATTERN.fullmatch(pin):
        raise ValueError("pin: expected 4 to 12 digits")
    return pin


def normalize_card(card: object) -> str:
    """A technician card id as the pins file keys it (upper-case); ValueError naming
    `card`."""
    text = card.strip().upper() if isinstance(card, str) else ""
    if not CARD_PATTERN.fullmatch(text):
        raise ValueError("card: expected the card's id (its UID in hex, 1 to 64 characters)")
    return text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
             p: int = SCRYPT_P) -> str:
    """The PIN as a salted scrypt hash, "scrypt$n$r$p$salt$hash" (base64)."""
    check_pin(pin)
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = Scrypt(salt=salt, length=HASH_BYTES, n=n, r=r, p=p).derive(pin.encode("ascii"))
    return "$".join(("scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)))


def parse_pin_hash(encoded: object) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, digest) of a stored hash; ValueError saying what is wrong."""
    parts = encoded.split("$") if isinstance(encoded, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("expected scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise ValueError("expected scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>") from None
    if not (2**10 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError(f"scrypt parameters n={n} r={r} p={p} out of range")
    if len(salt) < SALT_BYTES or len(digest) != HASH_BYTES:
        raise ValueError(f"expected a salt of at least {SALT_BYTES} bytes and a "
                         f"{HASH_BYTES}-byte hash")
    return n, r, p, salt, digest


def verify_pin(pin: str, encoded: str) -> bool:
    """Whether `pin` matches the stored hash (constant-time compare); ValueError when the
    hash is malformed. Slow on purpose: call it off the event loop."""
    n, r, p, salt, digest = parse_pin_hash(encoded)
    try:
        Scrypt(salt=salt, length=len(digest), n=n, r=r, p=p).verify(pin.encode("ascii"),
                                                                     digest)
    except (InvalidKey, UnicodeEncodeError):
        return False
    return True


def load_pins(path: str | Path) -> dict[str, str]:
    """The pins file: card id (upper-case) -> PIN hash. OSError when unreadable,
    ValueError naming the file and the entry when malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    technicians = data.get("technicians") if isinstance(data, dict) else None
    if not isinstance(technicians, dict):
        raise ValueError(f"{path}: expected {{\"technicians\": {{\"<card id>\": \"<hash>\"}}}}")
    pins: dict[str, str] = {}
    for card, encoded in technicians.items():
        try:
            key = normalize_card(card)
            parse_pin_hash(encoded)
        except ValueError as exc:
            raise ValueError(f"{path}: technicians.{mask_id(str(card))}: {exc}") from None
        pins[key] = encoded
    return pins


def set_pin(path: str | Path, card: str, pin: str) -> None:
    """Set (or replace) a technician's PIN in the pins file, creating it (mode 0600)."""
    key = normalize_card(card)
    check_pin(pin)
    path = Path(path)
    pins = load_pins(path) if path.exists() else {}
    pins[key] = hash_pin(pin)
    text = json.dumps({"technicians": dict(sorted(pins.items()))}, indent=2) + "\n"
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def mask_id(id_token: str) -> str:
    """A card id as shown and audited: "…" and its last 4 characters."""
    return "\u2026" + id_token[-4:]


# ---- redaction -------------------------------------------------------------------------------


def _is_secret(name: str, value: Any) -> bool:
    return (isinstance(value, str) and value != "" and not name.endswith(PATH_SUFFIXES)
            and SECRET_NAME.search(name) is not None)


def redact_config(config: Config) -> dict[str, dict[str, Any]]:
    """Every section and key as running, secret values masked "***": string values of
    keys that name a key, PIN, token, secret, password or the technician cards. Paths
    (`*_file`, `*_path`, `*_dir`, `*_root`) are shown; the files' contents never are."""
    sections: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(config):
        values = dataclasses.asdict(getattr(config, section.name))
        sections[section.name] = {key: MASK if _is_secret(key, value) else value
                                  for key, value in values.items()}
    return sections


def render_toml(sections: dict[str, dict[str, Any]], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for name, values in sections.items():
        lines += ["", f"[{name}]"]
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = repr(value)
            else:
                text = json.dumps(str(value))
            lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def scrub_json(value: Any) -> Any:
    """`value` with anything that could be a card number replaced, in texts and in
    numbers (a number that passes for one, e.g. a free-bytes count, becomes the text)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if scrub(str(value)) == str(value) else "[number removed]"
    if isinstance(value, dict):
        return {key: scrub_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_json(item) for item in value]
    return value


def secret_texts(config: Config) -> dict[str, list[bytes]]:
    """What must never be in a bundle, by where it comes from: the contents of every
    configured key file (whole, and each line of a PEM body) and every PIN hash of the
    pins file (whole, salt and hash)."""
    found: dict[str, list[bytes]] = {}
    for section in dataclasses.fields(config):
        values = dataclasses.asdict(getattr(config, section.name))
        for key, value in values.items():
            if not (key.endswith("_file") and "key" in key and value):
                continue
            try:
                content = Path(value).read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            pieces = {content, content.lower(), content.upper()}
            pieces |= {line.strip() for line in content.splitlines()
                       if len(line.strip()) >= 16 and not line.startswith("-----")}
            found[f"{section.name}.{key}"] = [p.encode() for p in pieces if len(p) >= 16]
    if config.service.pins_file:
        with contextlib.suppress(OSError, ValueError):
            hashes = []
            for encoded in load_pins(config.service.pins_file).values():
                hashes.append(encoded)
                hashes += encoded.split("$")[4:]
            found["service.pins_file"] = [h.encode() for h in hashes if len(h) >= 16]
    return found


def scan_folder(folder: Path, secrets_by_source: dict[str, list[bytes]]) -> list[str]:
    """Problems found in the files below `folder`: key material, PIN hashes, card
    numbers; each names the file and the source (never the secret)."""
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for source, pieces in secrets_by_source.items():
            if any(piece in data for piece in pieces):
                problems.append(f"{path.name}: material of {source}")
        if card_numbers_in(data.decode("utf-8", errors="replace")):
            problems.append(f"{path.name}: a card number")
    return problems


# ---- the service menu ------------------------------------------------------------------------


@dataclass
class Login:
    technician: str
    started_at: datetime
    last_op_s: float  # the daemon clock's monotonic seconds
    diagnostics_audited: bool = False


@dataclass(frozen=True)
class PinWindow:
    technician: str
    reader: str
    opened_s: float


@dataclass
class Lockout:
    failures: int = 0  # wrong PINs since the last good PIN or lockout
    lockouts: int = 0  # lockouts since the last good PIN
    locked_until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"failures": self.failures, "lockouts": self.lockouts,
                "locked_until": iso_utc(self.locked_until) if self.locked_until else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lockout:
        until = data.get("locked_until")
        return cls(int(data.get("failures", 0)), int(data.get("lockouts", 0)),
                   datetime.fromisoformat(until) if until else None)


def _string(request: dict[str, Any], key: str, max_chars: int) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise RequestError(f"{key}: expected 1 to {max_chars} characters, got "
                           f"{type(value).__name__}")
    return value.strip()


class Service:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.config = daemon.config.service
        self.clock = daemon.clock
        self.out_of_service: dict[str, str] | None = None
        self.lockout = Lockout()
        self.window: PinWindow | None = None
        self.logins: dict[str, Login] = {}
        self.ident: Any = None  # terminal.identification.Identification, when running
        self.faults: deque[dict[str, Any]] = deque(maxlen=RECENT_FAULTS)
        self._fault_seen: dict[str, str | None] = {"meter": None, "charger": None}
        self.charger_polls = 0
        self.charger_errors = 0
        self._window_opened = asyncio.Event()
        self._polled = asyncio.Event()
        self._pin_lock = asyncio.Lock()
        self.started_at = daemon.clock.now()
        self.started_s = time.monotonic()

    @property
    def _db(self) -> ServiceStore:
        return ServiceStore(self.daemon.store.store)

    def attach(self, ident: Any) -> None:
        """The readers and the backend link (terminal.identification) for diagnostics."""
        self.ident = ident

    def register(self, api: LocalApi) -> None:
        api.route("service_login", self._op_login)
        api.route("service_logout", self._op_logout)
        api.route("service_diagnostics", self._op_diagnostics)
        api.route("service_receipt", self._op_receipt)
        api.route("service_action", self._op_action)

    async def load(self) -> None:
        """Out of service and the PIN lockout as journaled (before the API serves)."""
        store = self.daemon.store
        self.out_of_service = await store.call(self._db.get, KEY_OUT_OF_SERVICE)
        saved = await store.call(self._db.get, KEY_PIN_LOCKOUT)
        self.lockout = Lockout.from_json(saved) if saved else Lockout()
        if self.out_of_service is not None:
            log.warning("terminal is out of service", extra=fields(**self.out_of_service))

    # ---- what the daemon asks ----------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why new sessions are refused by the service menu (None: they are not)."""
        if self.out_of_service is None:
            return None
        return f"out of service: {self.out_of_service['reason']}"

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """`service` and `out_of_service` of the status snapshot."""
        now_s = self.clock.monotonic_s()
        login = self._newest_login(now_s)
        window = self._open_window(now_s)
        locked_until = self._locked_until(now)
        state: dict[str, Any] = {"state": "none", "technician": None, "locked_until": None,
                                 "pin_until": None}
        if login is not None:
            state.update(state="active", technician=mask_id(login.technician))
        elif locked_until is not None:
            state.update(state="locked", locked_until=iso_utc(locked_until),
                         technician=mask_id(window.technician) if window else None)
        elif window is not None:
            until = now + timedelta(seconds=window.opened_s + self.config.pin_window_s
                                    - now_s)
            state.update(state="pin", technician=mask_id(window.technician),
                         pin_until=iso_utc(until))
        oos = dict(self.out_of_service) if self.out_of_service else None
        return {"service": state, "out_of_service": oos}

    async def technician_tapped(self, id_token: str, reader: str) -> None:
        """A technician card at a free connector: the PIN window opens."""
        technician = id_token.upper()
        self.window = PinWindow(technician, reader, self.clock.monotonic_s())
        log.warning("technician card: PIN window open",
                    extra=fields(technician=mask_id(technician), reader=reader))
        await self._audit("service_card", {"technician": mask_id(technician),
                                           "reader": reader})
        opened, self._window_opened = self._window_opened, asyncio.Event()
        opened.set()
        self.daemon.api.publish({"type": "state", "state": self.daemon.snapshot()})

    async def after_poll(self) -> None:
        """After every poll: fault changes noted, the meter self-check woken, expired PIN
        windows closed and idle technicians logged out."""
        self._note_faults()
        polled, self._polled = self._polled, asyncio.Event()
        polled.set()
        now_s = self.clock.monotonic_s()
        if self.window is not None and self._open_window(now_s) is None:
            log.info("PIN window closed", extra=fields(technician=mask_id(
                self.window.technician)))
            self.window = None
        for token, login in list(self.logins.items()):
            if now_s - login.last_op_s >= self.config.idle_logout_s:
                await self._logout(token, "idle")

    # ---- login -----------------------------------------------------------------------------

    def _open_window(self, now_s: float) -> PinWindow | None:
        window = self.window
        if window is None or now_s - window.opened_s >= self.config.pin_window_s:
            return None
        return window

    def _newest_login(self, now_s: float) -> Login | None:
        alive = [login for login in self.logins.values()
                 if now_s - login.last_op_s < self.config.idle_logout_s]
        return max(alive, key=lambda login: login.started_at, default=None)

    def _locked_until(self, now: datetime) -> datetime | None:
        until = self.lockout.locked_until
        return until if until is not None and until > now else None

    async def _op_login(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            pin = check_pin(request.get("pin"))
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        wait_s = request.get("wait_card_s", 0)
        if isinstance(wait_s, bool) or not isinstance(wait_s, int | float) \
                or not 0 <= wait_s <= MAX_WAIT_CARD_S:
            raise RequestError(f"wait_card_s: expected 0 to {MAX_WAIT_CARD_S:g} seconds, "
                               f"got {wait_s!r:.20}")
        if wait_s and self._open_window(self.clock.monotonic_s()) is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._window_opened.wait(), wait_s / self.clock.speed)
        async with self._pin_lock:
            return await self._login(pin, wait_s)

    async def _login(self, pin: str, wait_s: float) -> dict[str, Any]:
        now = self.clock.now()
        locked_until = self._locked_until(now)
        window = self._open_window(self.clock.monotonic_s())
        if locked_until is not None:
            if window is not None:  # a card was tapped: worth an audit row
                await self._audit("service_login_failed", {
                    "technician": mask_id(window.technician), "reason": "locked"})
            raise RequestError(self._locked_text(locked_until, now))
        if window is None:
            waited = f" (none within {wait_s:g} s)" if wait_s else ""
            raise RequestError(f"card: tap a technician card first{waited}")
        encoded = self._pin_hash(window.technician)
        good = await asyncio.to_thread(verify_pin, pin, encoded)
        if not good:
            await self._wrong_pin(window, now)
        if self.lockout != Lockout():
            self.lockout = Lockout()
            await self.daemon.store.call(self._db.put, KEY_PIN_LOCKOUT, self.lockout.to_json(),
                                         now)
        self.window = None
        token = secrets.token_urlsafe(24)
        while len(self.logins) >= MAX_LOGINS:
            oldest = min(self.logins, key=lambda t: self.logins[t].started_at)
            await self._logout(oldest, "replaced")
        self.logins[token] = Login(window.technician, now, self.clock.monotonic_s())
        technician = mask_id(window.technician)
        log.warning("technician logged in", extra=fields(technician=technician,
                                                         reader=window.reader))
        await self._audit("service_login", {"technician": technician, "reader": window.reader})
        self.daemon.api.publish({"type": "state", "state": self.daemon.snapshot()})
        return {"token": token, "technician": technician,
                "expires_in_s": self.config.idle_logout_s}

    def _pin_hash(self, technician: str) -> str:
        path = self.config.pins_file
        if not path:
            raise RequestError("pin: no PIN file is configured ([service] pins_file); "
                               "nobody can log in")
        try:
            pins = load_pins(path)
        except (OSError, ValueError) as exc:
            log.error("pins file unusable", extra=fields(error=exc))
            raise RequestError(f"pin: the PIN file cannot be used ({exc})") from None
        encoded = pins.get(technician)
        if encoded is None:
            raise RequestError("pin: no PIN is set for this technician card (evterm "
                               "service set-pin)")
        return encoded

    def _locked_text(self, until: datetime, now: datetime) -> str:
        left_s = math.ceil((until - now).total_seconds())
        return f"locked: too many wrong PINs; try again in {left_s} s"

    async def _wrong_pin(self, window: PinWindow, now: datetime) -> None:
        lock = self.lockout
        lock.failures += 1
        technician = mask_id(window.technician)
        left = self.config.max_failed_pins - lock.failures
        await self._audit("service_login_failed", {"technician": technician,
                                                   "reason": "wrong_pin",
                                                   "failures": lock.failures})
        log.warning("wrong technician PIN", extra=fields(technician=technician,
                                                         failures=lock.failures))
        if left > 0:
            await self.daemon.store.call(self._db.put, KEY_PIN_LOCKOUT, lock.to_json(), now)
            raise RequestError(f"pin: wrong PIN ({left} attempts left)")
        lock.lockouts += 1
        lock.failures = 0
        delay_s = min(self.config.lockout_s * 2 ** (lock.lockouts - 1),
                      self.config.max_lockout_s)
        lock.locked_until = now + timedelta(seconds=delay_s)
        self.window = None
        await self.daemon.store.call(self._db.put, KEY_PIN_LOCKOUT, lock.to_json(), now)
        await self._audit("service_lockout", {"technician": technician,
                                              "lockouts": lock.lockouts, "delay_s": delay_s,
                                              "locked_until": iso_utc(lock.locked_until)})
        log.error("technician PIN entry locked", extra=fields(
            technician=technician, lockouts=lock.lockouts, delay_s=delay_s))
        self.daemon.api.publish({"type": "state", "state": self.daemon.snapshot()})
        raise RequestError(self._locked_text(lock.locked_until, now))

    async def _logged_in(self, request: dict[str, Any]) -> Login:
        """The login the request's token names, its idle timer refreshed; RequestError
        naming `token` otherwise."""
        token = request.get("token")
        if not isinstance(token, str) or not token:
            log.warning("service op without a token", extra=fields(op=request.get("op")))
            raise RequestError("token: log in first (service_login)")
        login = self.logins.get(token)
        now_s = self.clock.monotonic_s()
        if login is not None and now_s - login.last_op_s >= self.config.idle_logout_s:
            await self._logout(token, "idle")
            login = None
        if login is None:
            log.warning("service op with an unknown or expired token",
                        extra=fields(op=request.get("op")))
            raise RequestError("token: unknown or expired; log in first (service_login)")
        login.last_op_s = now_s
        return login

    async def _logout(self, token: str, reason: str) -> None:
        login = self.logins.pop(token, None)
        if login is None:
            return
        technician = mask_id(login.technician)
        log.warning("technician logged out", extra=fields(technician=technician,
                                                          reason=reason))
        await self._audit("service_logout", {"technician": technician, "reason": reason})
        self.daemon.api.publish({"type": "state", "state": self.daemon.snapshot()})

    async def _op_logout(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self._logged_in(request)
        await self._logout(str(request["token"]), "requested")
        return {"technician": mask_id(login.technician)}

    # ---- diagnostics -------------------------------------------------------------------------

    async def _op_diagnostics(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self._logged_in(request)
        if not login.diagnostics_audited:  # the screen refreshes them every 2 s
            login.diagnostics_audited = True
            await self._audit("service_diagnostics", {"technician": mask_id(login.technician)})
        return {"diagnostics": await self.diagnostics()}

    async def diagnostics(self) -> dict[str, Any]:
        daemon = self.daemon
        now = self.clock.now()
        store = daemon.store
        figures = await store.call(self._db.backend_figures)
        sessions = await store.call(self._db.sessions, RECENT_SESSIONS)
        faults = list(self.faults) + await store.call(self._db.session_faults, RECENT_FAULTS)
        faults.sort(key=lambda f: str(f["at"]), reverse=True)
        schema = await store.call(lambda: store.store.schema_version)
        return {
            "generated_at": iso_utc(now),
            "station": {"id": daemon.config.station.id, "phase": daemon.state.phase.value,
                        "session_id": daemon.state.session_id,
                        "accepting_sessions": daemon.accepting_sessions(),
                        "refusal": daemon.refusal_reason(),
                        "out_of_service": self.out_of_service},
            "meter": self._meter(),
            "readers": self._readers(),
            "charger": self._charger(),
            "backend": self._backend(figures, now),
            "storage": self._storage(schema),
            "software": {"version": __version__, "python": platform.python_version(),
                         "platform": platform.platform(), "pid": os.getpid(),
                         "started_at": iso_utc(self.started_at),
                         "uptime_s": round(time.monotonic() - self.started_s)},
            "config": redact_config(daemon.config),
            "recent_sessions": sessions,
            "recent_faults": faults[:RECENT_FAULTS],
        }

    def _meter(self) -> dict[str, Any]:
        daemon = self.daemon
        cfg = daemon.config.meter
        monitor = daemon.monitor
        outcome = daemon.seen.outcome
        reading = outcome.reading if outcome and outcome.reading else monitor.last_good
        fault = monitor.fault
        return {
            "model": cfg.model, "url": cfg.url, "unit_id": cfg.unit_id,
            "serial": reading.serial if reading else None,
            "expected_serial": cfg.expected_serial or None,
            "last_reading": None if reading is None else {
                "energy_wh": str(reading.energy_import_wh),
                "power_w": _text(reading.power_w), "voltage_v": _text(reading.voltage_v),
                "current_a": _text(reading.current_a), "at": iso_utc(reading.timestamp)},
            "last_error": outcome.error if outcome else None,
            "fault": str(fault) if fault else None,
            "fault_since": iso_utc(fault.since) if fault else None,
            "poll_interval_s": cfg.poll_interval_s,
            "counters": monitor.stats(),
        }

    def _readers(self) -> dict[str, Any]:
        cfg = self.daemon.config.readers
        ident = self.ident
        states: dict[str, str] = ident.snapshot()["readers"] if ident is not None else {}
        taps: dict[str, Any] = dict(getattr(ident.taps, "last_tap", {})) if ident else {}
        names = sorted(set(states) | set(taps))
        return {
            "pcsc": cfg.pcsc, "serial_rfid_device": cfg.serial_rfid_device or None,
            "readers": {name: {"state": states.get(name), "last_tap": taps.get(name)}
                        for name in names},
            "dropped_taps": getattr(ident, "dropped_taps", 0),
        }

    def _charger(self) -> dict[str, Any]:
        daemon = self.daemon
        cfg = daemon.config.charger
        status = daemon.seen.charger
        return {
            "kind": cfg.kind, "url": cfg.url, "unit_id": cfg.unit_id,
            "ev_state": status.ev_state.name if status else None,
            "plugged": status.plugged if status else None,
            "output_wanted": daemon.state.output_on,
            "output_commanded": status.output_commanded if status else None,
            "output_confirmed": status.output_on if status else None,
            "fault": status.fault if status else daemon.seen.charger_error,
            "counters": {"polls": self.charger_polls, "failed_polls": self.charger_errors},
        }

    def _backend(self, figures: dict[str, Any], now: datetime) -> dict[str, Any]:
        oldest = figures["oldest_pending_at"]
        age_s = None
        if oldest:
            age_s = max(0, round((now - datetime.fromisoformat(oldest)).total_seconds()))
        link = getattr(self.ident, "backend", None)
        return {
            "kind": self.daemon.config.backend.kind,
            "connected": self.daemon.link_online(),
            "last_ack_at": figures["last_delivered_at"],
            "outbox_depth": figures["pending"],
            "oldest_undelivered_at": oldest,
            "oldest_undelivered_age_s": age_s,
            "counters": dict(getattr(link, "stats", {})),
        }

    def _storage(self, schema: int) -> dict[str, Any]:
        state_dir = Path(self.daemon.config.station.state_dir)
        database = self.daemon.store.store.path
        size = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                size += database.with_name(database.name + suffix).stat().st_size
        try:
            free: int | None = shutil.disk_usage(state_dir).free
        except OSError:
            free = None
        return {"state_dir": str(state_dir), "database": str(database),
                "database_bytes": size, "free_bytes": free, "schema_version": schema,
                "storage_ok": self.daemon.storage_ok(),
                "min_free_storage_mb": self.daemon.config.backend.min_free_storage_mb}

    def _note_faults(self) -> None:
        """Remember each change of the meter's or the charger's fault (recent faults)."""
        daemon = self.daemon
        self.charger_polls += 1
        if daemon.seen.charger_error:
            self.charger_errors += 1
        meter_fault = daemon.monitor.fault
        charger = daemon.seen.charger
        now = iso_utc(self.clock.now())
        current = {"meter": str(meter_fault) if meter_fault else None,
                   "charger": charger.fault if charger else daemon.seen.charger_error}
        for source, fault in current.items():
            if fault == self._fault_seen[source]:
                continue
            before = self._fault_seen[source]
            self._fault_seen[source] = fault
            event = "raised" if fault else "cleared"
            self.faults.appendleft({"at": now, "source": source, "event": event,
                                    "fault": fault or before})

    async def _op_receipt(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self._logged_in(request)
        reply = await self.daemon._api_receipt({k: request[k] for k in ("session_id", "language")
                                                if k in request})
        await self._audit("service_receipt", {"technician": mask_id(login.technician),
                                              "session_id": reply["session_id"]})
        return reply

    # ---- actions -------------------------------------------------------------------------

    async def _op_action(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self._logged_in(request)
        action = request.get("action")
        technician = mask_id(login.technician)
        detail: dict[str, Any] = {"technician": technician, "action": str(action)[:40]}
        try:
            if action not in ACTIONS:
                raise RequestError(f"action: expected one of {', '.join(ACTIONS)}, got "
                                   f"{action!r:.40}")
            result = await getattr(self, f"_action_{action}")(request, login)
        except RequestError as exc:
            await self._audit("service_action", {**detail, "ok": False, "error": str(exc)})
            raise
        await self._audit("service_action", {**detail, "ok": True, **result.pop("_audit", {})})
        log.warning("service action", extra=fields(technician=technician, action=action))
        return {"action": action, **result}

    async def _action_out_of_service(self, request: dict[str, Any],
                                     login: Login) -> dict[str, Any]:
        reason = _string(request, "reason", MAX_REASON_CHARS)
        now = self.clock.now()
        since = self.out_of_service["since"] if self.out_of_service else iso_utc(now)
        value = {"since": since, "by": mask_id(login.technician), "reason": reason}
        await self.daemon.store.call(self._db.put, KEY_OUT_OF_SERVICE, value, now)
        self.out_of_service = value
        return {"out_of_service": value, "state": self.daemon._publish_state(),
                "_audit": {"reason": reason}}

    async def _action_in_service(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        was = self.out_of_service
        await self.daemon.store.call(self._db.delete, KEY_OUT_OF_SERVICE)
        self.out_of_service = None
        return {"out_of_service": None, "state": self.daemon._publish_state(),
                "_audit": {"was_out_of_service": was is not None}}

    async def _action_stop_session(self, request: dict[str, Any],
                                   login: Login) -> dict[str, Any]:
        daemon = self.daemon
        session_id = daemon.state.session_id
        result = await daemon.apply(StopRequested(self.clock.now(), StopReason.TECHNICIAN))
        if result.refused:
            raise RequestError(f"action: stop_session: {result.refused}")
        return {"session_id": session_id, "state": daemon.snapshot(),
                "_audit": {"session_id": session_id}}

    async def _action_resend_outbox(self, request: dict[str, Any],
                                    login: Login) -> dict[str, Any]:
        daemon = self.daemon
        figures = await daemon.store.call(self._db.backend_figures)
        wake = daemon.after_commit
        if wake is not None:
            wake()
        backend = self._backend(figures, self.clock.now())
        counts = {"pending": figures["pending"],
                  "oldest_pending_at": figures["oldest_pending_at"],
                  "oldest_age_s": backend["oldest_undelivered_age_s"]}
        return {**counts, "backend_online": backend["connected"], "woken": wake is not None,
                "_audit": {"pending": figures["pending"]}}

    async def _action_restart(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        self.daemon.request_restart()
        return {"restarting": True, "exit_code": RESTART_EXIT_CODE}

    async def _action_meter_selfcheck(self, request: dict[str, Any],
                                      login: Login) -> dict[str, Any]:
        checks, readings = await self.meter_selfcheck()
        passed = all(check["ok"] for check in checks)
        failed = [check["name"] for check in checks if not check["ok"]]
        return {"passed": passed, "checks": checks, "readings": readings,
                "_audit": {"passed": passed, "failed": failed}}

    async def _next_poll(self, timeout_s: float) -> Any:
        """The daemon's next poll outcome (None when no poll came within `timeout_s`)."""
        try:
            await asyncio.wait_for(self._polled.wait(), timeout_s)
        except TimeoutError:
            return None
        return self.daemon.seen.outcome

    async def meter_selfcheck(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Two of the daemon's polls at least a poll interval apart: both read, the serial
        is the expected one, the counter never goes back and moves with the power (stands
        still without). (checks [{name, ok, detail}], the two readings)."""
        cfg = self.daemon.config.meter
        speed = self.clock.speed
        timeout_s = max(5.0, (3 * cfg.poll_interval_s + cfg.timeout_s) / speed)
        first = await self._next_poll(timeout_s)
        first_s = self.clock.monotonic_s()
        second = first
        while first is not None:
            second = await self._next_poll(timeout_s)
            if second is None or self.clock.monotonic_s() - first_s >= cfg.poll_interval_s:
                break
        outcomes = [first, second]
        readings = [o.reading for o in outcomes if o is not None and o.reading is not None]
        shown = [{"energy_wh": str(r.energy_import_wh), "power_w": _text(r.power_w),
                  "serial": r.serial, "at": iso_utc(r.timestamp)} for r in readings]
        if first is None or second is None:
            return [_check("read", False, f"no meter poll within {timeout_s:g} s (is the "
                           "daemon's loop running?)")], shown
        if len(readings) < 2:
            error = next((o.error for o in outcomes if o.reading is None), "no reading")
            return [_check("read", False, f"the meter did not answer: {error}")], shown
        one, two = readings
        gap_s = (two.timestamp - one.timestamp).total_seconds()
        checks = [_check("read", True, f"two readings {gap_s:g} s apart")]
        expected = cfg.expected_serial
        serials = {one.serial, two.serial}
        if expected:
            ok = serials == {expected}
            checks.append(_check("serial", ok, f"meter reports {two.serial}, expected "
                                 f"{expected}"))
        else:
            checks.append(_check("serial", len(serials) == 1,
                                 f"meter reports {two.serial}; no expected_serial configured"))
        delta_wh = two.energy_import_wh - one.energy_import_wh
        checks.append(_check("counter_not_backwards", delta_wh >= 0,
                             f"{one.energy_import_wh} Wh then {two.energy_import_wh} Wh"))
        checks.append(self._counter_follows_power(one, two, delta_wh, gap_s))
        fault = self.daemon.monitor.fault
        checks.append(_check("no_fault", fault is None,
                             str(fault) if fault else "no meter fault"))
        return checks, shown

    def _counter_follows_power(self, one: Any, two: Any, delta_wh: Decimal,
                               gap_s: float) -> dict[str, Any]:
        from drivers.meter.monitor import resolution_wh

        powers = [max(r.power_w or Decimal(0), Decimal(0)) for r in (one, two)]
        if not any(powers):
            return _check("counter_follows_power", delta_wh == 0,
                          f"no power; the counter moved {delta_wh} Wh")
        expected_wh = sum(powers) / 2 * Decimal(str(gap_s)) / 3600
        step_wh = resolution_wh(two.energy_import_wh)
        if expected_wh < 2 * step_wh:
            return _check("counter_follows_power", True,
                          f"{powers[1]} W for {gap_s:g} s is about {expected_wh:.0f} Wh, "
                          f"too little to see the counter (steps up to {step_wh} Wh) move")
        return _check("counter_follows_power", delta_wh > 0,
                      f"{powers[1]} W for {gap_s:g} s: about {expected_wh:.0f} Wh expected, "
                      f"counter moved {delta_wh} Wh")

    async def _action_export(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        root = Path(self.config.export_allowed_root).resolve()
        folder = (_string(request, "folder", 4096) if request.get("folder") is not None
                  else str(root))  # default: the USB stick's mount point itself
        target = Path(folder)
        if not target.is_absolute() or not target.resolve().is_relative_to(root):
            raise RequestError(f"folder: {folder} is not under export_allowed_root {root}")
        daemon = self.daemon
        now = self.clock.now()
        diagnostics = await self.diagnostics()
        audit = await daemon.store.call(self._db.audit, EXPORT_AUDIT_ROWS)
        sessions = await daemon.store.call(self._db.sessions, EXPORT_SESSIONS)
        station = re.sub(r"[^A-Za-z0-9_.-]+", "-", daemon.config.station.id).strip("-")
        name = f"evterm-diag-{station or 'station'}-{now.strftime('%Y%m%dT%H%M%SZ')}"
        try:
            path, files, size = await asyncio.to_thread(
                self._write_bundle, target.resolve(), name, diagnostics, audit, sessions, now)
        except OSError as exc:
            raise RequestError(f"folder: cannot write the bundle in {folder}: "
                               f"{exc.strerror or exc}") from None
        return {"path": str(path), "files": files, "bytes": size,
                "_audit": {"path": str(path)}}

    def _write_bundle(self, target: Path, name: str, diagnostics: dict[str, Any],
                      audit: list[dict[str, Any]], sessions: list[dict[str, Any]],
                      now: datetime) -> tuple[Path, list[str], int]:
        """Write the bundle (worker thread); scanned before it stays."""
        config = self.daemon.config
        target.mkdir(parents=True, exist_ok=True)
        bundle = target / name
        number = 1
        while bundle.exists():
            number += 1
            bundle = target / f"{name}-{number}"
        bundle.mkdir()
        header = (f"evterm {__version__} configuration of {config.station.id} as running "
                  f"at {iso_utc(now)}\nsecret values masked (***); key files not included")
        contents = {
            "diagnostics.json": _json(diagnostics),
            "config.redacted.toml": scrub(render_toml(redact_config(config), header)),
            "db-integrity.txt": scrub(database_report(self.daemon.store.store.path)),
            "audit.json": _json(audit),
            "log.txt": scrub(self._log_text()),
            "sessions.json": _json(sessions),
        }
        try:
            for file_name, text in contents.items():
                _write_synced(bundle / file_name, text)
            problems = scan_folder(bundle, secret_texts(config))
        except BaseException:
            shutil.rmtree(bundle, ignore_errors=True)
            raise
        if problems:
            shutil.rmtree(bundle, ignore_errors=True)
            log.critical("export refused: the bundle held secrets",
                         extra=fields(problems="; ".join(problems)))
            raise RequestError("folder: export refused, the bundle would contain "
                               f"secrets ({'; '.join(problems)}); nothing was left there")
        with contextlib.suppress(OSError):
            fd = os.open(bundle, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        size = sum(p.stat().st_size for p in bundle.iterdir())
        return bundle, list(contents), size

    def _log_text(self) -> str:
        path = self.config.log_file
        if not path:
            return ("No log file is configured ([service] log_file). On the terminal the "
                    "log is in the journal: journalctl -u evterm --since -2d\n")
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - EXPORT_LOG_BYTES))
                data = handle.read()
        except OSError as exc:
            return f"The log file {path} cannot be read: {exc.strerror or exc}\n"
        text = data.decode("utf-8", errors="replace")
        if size > EXPORT_LOG_BYTES:
            text = f"[the last {EXPORT_LOG_BYTES} bytes of {path}]\n" + \
                text.split("\n", 1)[-1]
        return text

    # ---- helpers ---------------------------------------------------------------------------

    async def _audit(self, kind: str, detail: dict[str, Any]) -> int:
        store = self.daemon.store
        audit_id: int = await store.call(store.store.add_audit, kind, detail, self.clock.now())
        return audit_id


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _json(value: Any) -> str:
    return json.dumps(scrub_json(value), indent=2, sort_keys=True, default=str) + "\n"


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
