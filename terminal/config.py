"""The one configuration loader: a TOML file -> typed, frozen objects.

Each section is a frozen dataclass whose fields carry their documentation, unit,
default and allowed range (`option(...)`). The loader checks every value against that
schema, reports unknown keys (typos surface) and collects every problem into one
`ConfigError` naming the key, the bad value and what is allowed. docs/configuration.md
is generated from the same schema (`evterm config docs`), so the two cannot drift.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from terminal.kernel.driver_texts import LANGUAGES
from terminal.kernel.paths import LOCAL_API_SOCKET

DEFAULT_CONFIG_PATH = Path("/etc/evterm/evterm.toml")


class ConfigError(ValueError):
    """Bad configuration; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration {source}:\n{lines}")


_REQUIRED = object()


def option(
    default: Any = _REQUIRED,
    *,
    doc: str,
    unit: str = "",
    min_value: float | None = None,
    max_value: float | None = None,
    choices: tuple[str, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A documented config key. `check` returns a description of what is allowed when
    the value is bad, or None when it is fine."""
    meta = {
        "doc": doc,
        "unit": unit,
        "min": min_value,
        "max": max_value,
        "choices": choices,
        "check": check,
    }
    if default is _REQUIRED:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def _check_timezone(value: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "an IANA time zone name such as Europe/Berlin"
    return None


def _check_meter_model(value: str) -> str | None:
    from drivers.meter.registermap import MeterMapError, load_model

    try:
        load_model(value)
    except MeterMapError as exc:
        return str(exc)
    return None


def _check_meter_url(value: str) -> str | None:
    from drivers.meter.transport import TransportError, parse_meter_url

    try:
        parse_meter_url(value)
    except TransportError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class StationConfig:
    id: str = option(doc="EVSE id of this charge point, shown on screen and receipts")
    operator: str = option(
        doc="Operator's name, shown on the screen and printed on every receipt",
        check=lambda v: None if v.strip() else "a non-empty name",
    )
    timezone: str = option(
        "UTC", doc="IANA time zone of the station; tariff times are local", check=_check_timezone
    )
    state_dir: str = option(
        "/var/lib/evterm", doc="Folder for the database and other durable state"
    )


@dataclass(frozen=True)
class MeterConfig:
    model: str = option(
        "eastron_sdm630",
        doc="Register map: a shipped model name (drivers/meter/models/*.toml) or a path",
        check=_check_meter_model,
    )
    url: str = option(
        "tcp://127.0.0.1:502",
        doc="tcp://HOST:PORT or rtu:///dev/ttyUSB0?baud=9600&parity=N&stopbits=1",
        check=_check_meter_url,
    )
    unit_id: int = option(
        0, doc="Modbus unit (slave) id; 0 = the model's factory default", min_value=0, max_value=247
    )
    poll_interval_s: float = option(
        1.0, doc="Time between two meter snapshots", unit="s", min_value=0.1, max_value=60
    )
    timeout_s: float = option(
        1.0, doc="How long to wait for one Modbus reply", unit="s", min_value=0.05, max_value=10
    )
    max_failed_polls: int = option(
        3,
        doc="Consecutive failed polls after which a communication fault is reported",
        min_value=1,
        max_value=100,
    )
    rated_power_w: int = option(
        400_000,
        doc="Highest power the charger can deliver; an energy step above what it allows is a fault",
        unit="W",
        min_value=1,
        max_value=2_000_000,
    )
    expected_serial: str = option(
        "",
        doc="Serial number the meter must report; empty = not checked",
    )


def _check_charger_kind(value: str) -> str | None:
    from drivers.charger import CHARGER_KINDS

    return None if value in CHARGER_KINDS else "one of " + ", ".join(CHARGER_KINDS)


def _check_tariff_file(value: str) -> str | None:
    from terminal.pricing import TariffError, load_tariff

    try:
        load_tariff(value)
    except OSError as exc:
        return f"cannot read the tariff file: {exc.strerror}"
    except TariffError as exc:
        return f"not a valid OCPI 2.2.1 tariff: {exc}"
    return None


def _check_money(value: str) -> str | None:
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(value)
    except InvalidOperation:
        return "an amount as text, e.g. \"50.00\", or \"\" for none"
    return None if amount.is_finite() and amount > 0 else "an amount above 0"


@dataclass(frozen=True)
class ChargerConfig:
    kind: str = option(
        "modbus_coil",
        doc="Driver of the power stage's control interface (docs/charger.md)",
        check=_check_charger_kind,
    )
    url: str = option(
        "tcp://127.0.0.1:502",
        doc="Where the charger IO answers: tcp://HOST:PORT or rtu:///dev/ttyUSB0?baud=...",
        check=_check_meter_url,
    )
    unit_id: int = option(2, doc="Modbus unit id of the charger IO", min_value=1, max_value=247)
    timeout_s: float = option(
        1.0, doc="How long to wait for one reply", unit="s", min_value=0.05, max_value=10
    )
    max_failed_polls: int = option(
        3,
        doc="Consecutive failed status reads after which the charger is faulted",
        min_value=1,
        max_value=100,
    )
    output_off_timeout_s: float = option(
        2.0,
        doc="Time the power stage has to confirm that energy delivery is off; "
        "longer ends the session as ChargerFault",
        unit="s",
        min_value=0.1,
        max_value=30,
    )


@dataclass(frozen=True)
class SessionConfig:
    tariff_file: str = option(
        "/etc/evterm/tariff.json",
        doc="OCPI 2.2.1 tariff of the station (docs/pricing.md), in force until the "
        "backend sends another",
        check=_check_tariff_file,
    )
    connection_timeout_s: float = option(
        120.0,
        doc="An authorised session without a vehicle plugged in ends (Timeout) after this",
        unit="s",
        min_value=5,
        max_value=3600,
    )
    ev_power_timeout_s: float = option(
        300.0,
        doc="Energy offered but the vehicle never draws power: charging ends (Timeout)",
        unit="s",
        min_value=5,
        max_value=7200,
    )
    ev_finished_after_s: float = option(
        60.0,
        doc="The vehicle stops asking for energy this long after having charged: it is "
        "full (StoppedByEV); shorter pauses are SuspendedEV",
        unit="s",
        min_value=1,
        max_value=3600,
    )
    charging_threshold_w: int = option(
        100,
        doc="Power above which the vehicle is charging (below: parking/idle time)",
        unit="W",
        min_value=0,
        max_value=10_000,
    )
    checkpoint_interval_s: float = option(
        0.0,
        doc="Journal a meter reading at most this often during a session; 0 = every poll. "
        "Billing uses the journaled readings only",
        unit="s",
        min_value=0,
        max_value=300,
    )
    meter_value_interval_s: float = option(
        60.0,
        doc="Send the backend a transaction Updated event with the meter value this often",
        unit="s",
        min_value=1,
        max_value=3600,
    )
    stop_latency_s: float = option(
        1.0,
        doc="Time from deciding to stop until no energy flows; the cost and energy caps "
        "are checked against what will have flowed by then plus one poll interval",
        unit="s",
        min_value=0,
        max_value=30,
    )
    authorization_valid_s: float = option(
        86_400.0,
        doc="How long a local/app authorisation stays valid when it carries no expiry; "
        "after a restart a session resumes only within it",
        unit="s",
        min_value=60,
        max_value=30 * 86_400,
    )
    default_cost_cap: str = option(
        "",
        doc="Cost cap (incl. VAT, tariff currency) for sessions authorised without one; "
        "empty = none",
        check=lambda v: None if v == "" else _check_money(v),
    )



def _optional_money(value: str) -> str | None:
    return None if value == "" else _check_money(value)


def _check_country(value: str) -> str | None:
    return None if len(value) == 3 and value.isdigit() else (
        "an ISO 3166-1 numeric country code of 3 digits, e.g. \"276\" for Germany")


@dataclass(frozen=True)
class ReadersConfig:
    pcsc: bool = option(
        True, doc="Watch PC/SC readers (RFID/NFC charge cards and contactless bank cards)"
    )
    pcsc_readers: str = option(
        "",
        doc="Comma-separated parts of the PC/SC reader names to use; empty = every reader",
    )
    pcsc_socket: str = option(
        "",
        doc="pcscd's socket (PCSCLITE_CSOCK_NAME); empty = the system's "
        "/run/pcscd/pcscd.comm",
    )
    serial_rfid_device: str = option(
        "", doc="Serial 125 kHz RFID reader (RDM6300 frame), e.g. /dev/ttyUSB0; empty = none"
    )
    serial_rfid_baud: int = option(
        9600, doc="Baud rate of the serial RFID reader", min_value=1200, max_value=115200
    )


@dataclass(frozen=True)
class PaymentConfig:
    token_key_file: str = option(
        "",
        doc="File with the fleet tokenisation key (hex, at least 32 bytes); card payment "
        "is offered only with this and gateway_key_file",
    )
    token_key_id: str = option(
        "k1",
        doc="Id of the tokenisation key, carried in every token so keys can rotate",
        check=lambda v: None if re.fullmatch(r"[A-Za-z0-9_-]{1,16}", v) else
        "1 to 16 of A-Z a-z 0-9 _ -",
    )
    gateway_key_file: str = option(
        "",
        doc="The payment gateway's X25519 public key (PEM); card data is encrypted to it",
    )
    preauth_amount: str = option(
        "50.00",
        doc="Amount pre-authorised on a bank card (incl. VAT, tariff currency); it is the "
        "session's cost cap",
        check=_check_money,
    )
    offline_floor_limit: str = option(
        "",
        doc="While the backend is unreachable, card payments up to this amount are accepted "
        "(the session's cap); empty = card payments are declined offline",
        check=_optional_money,
    )
    country_code: str = option(
        "276", doc="Terminal country (EMV 9F1A), ISO 3166-1 numeric", check=_check_country
    )


@dataclass(frozen=True)
class AuthConfig:
    local_pre_authorize: bool = option(
        True,
        doc="Online, start at once for a token valid in the local list or cache "
        "(OCPP LocalPreAuthorize); false = always ask the backend",
    )
    local_authorize_offline: bool = option(
        True,
        doc="Offline, accept tokens valid in the local list or cache "
        "(OCPP LocalAuthorizeOffline)",
    )
    offline_tx_for_unknown_id: bool = option(
        False,
        doc="Offline, accept tokens that are not known at all "
        "(OCPP OfflineTxForUnknownIdEnabled)",
    )
    max_energy_on_invalid_id_wh: int = option(
        0,
        doc="For a session started offline with an unknown token that the backend later "
        "rejects: energy allowed before it stops (OCPP MaxEnergyOnInvalidId); 0 = stop at "
        "once",
        unit="Wh",
        min_value=0,
        max_value=1_000_000,
    )
    online_timeout_s: float = option(
        2.0,
        doc="How long to wait for the backend's answer to a token before the offline "
        "policy decides",
        unit="s",
        min_value=0.1,
        max_value=30,
    )
    cache_size: int = option(
        1000, doc="Tokens kept in the authorisation cache (least recently used go first)",
        min_value=0, max_value=100_000,
    )
    cache_ttl_s: float = option(
        7 * 86_400.0,
        doc="How long a cached accepted token counts when its answer had no expiry",
        unit="s",
        min_value=0,
        max_value=90 * 86_400,
    )
    technician_ids: str = option(
        "",
        doc="Comma-separated card UIDs (hex) of technician cards, besides those the local "
        "list marks; a technician card can stop any session",
    )


def _check_optional_file(value: str) -> str | None:
    return None if value == "" or Path(value).is_file() else "an existing file (or empty)"


def _check_operator_key(value: str) -> str | None:
    if value == "":
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(Path(value).read_bytes())
    except (OSError, ValueError):
        return "a readable PEM file with the operator's Ed25519 public key (or empty)"
    if not isinstance(key, Ed25519PublicKey):
        return "an Ed25519 public key in PEM (this file holds another kind of key)"
    return None


@dataclass(frozen=True)
class BackendConfig:
    kind: str = option(
        "none",
        doc="How the terminal reaches the operator's backend: none (offline; the offline "
        "policy decides), loopback (JSON lines on a Unix socket, for the backend simulator) "
        "or mqtt (MQTT 5 broker, docs/protocol.md)",
        choices=("none", "loopback", "mqtt"),
    )
    socket_path: str = option(
        "", doc="Unix socket of the loopback backend (kind = loopback)"
    )
    request_timeout_s: float = option(
        5.0,
        doc="How long to wait for the backend's answer to a payment request",
        unit="s",
        min_value=0.5,
        max_value=60,
    )
    mqtt_host: str = option("127.0.0.1", doc="MQTT broker host name or address (kind = mqtt)")
    mqtt_port: int = option(
        1883, doc="MQTT broker port (8883 is usual with TLS)", min_value=1, max_value=65535
    )
    mqtt_tls: bool = option(
        False, doc="Connect with TLS 1.2+; with cert_file/key_file also with a client "
        "certificate (OCPP security profile 3)"
    )
    ca_file: str = option(
        "", doc="PEM file of the CA that signed the broker's certificate; empty = the "
        "system's CAs", check=_check_optional_file
    )
    cert_file: str = option(
        "", doc="PEM client certificate of this station (mqtt_tls = true)",
        check=_check_optional_file,
    )
    key_file: str = option(
        "", doc="PEM private key of the client certificate", check=_check_optional_file
    )
    keepalive_s: int = option(
        30, doc="MQTT keepalive; the broker publishes the Last Will (status offline) after "
        "about 1.5 times this without traffic", unit="s", min_value=5, max_value=3600,
    )
    session_expiry_s: int = option(
        86_400, doc="How long the broker keeps this station's MQTT session (subscriptions, "
        "queued commands) while it is disconnected", unit="s", min_value=0,
        max_value=30 * 86_400,
    )
    reconnect_max_s: int = option(
        30, doc="Longest wait between two reconnection attempts (backoff from 1 s)",
        unit="s", min_value=1, max_value=600,
    )
    inflight_window: int = option(
        100, doc="Outbox messages published and not yet acknowledged (PUBACK) at a time",
        min_value=1, max_value=1000,
    )
    operator_key_file: str = option(
        "", doc="PEM Ed25519 public key of the operator; tariff and local list commands "
        "must be signed by it (empty = such commands are refused)",
        check=_check_operator_key,
    )
    min_free_storage_mb: int = option(
        50, doc="Below this free space in the database's folder the terminal stops "
        "accepting new sessions (and says so in its status)", unit="MB", min_value=0,
        max_value=1_000_000,
    )
    status_interval_s: float = option(
        60.0, doc="How often the retained status (outbox depth, storage) is republished",
        unit="s", min_value=1, max_value=3600,
    )


@dataclass(frozen=True)
class LocalApiConfig:
    socket_path: str = option(
        LOCAL_API_SOCKET,
        doc="Unix socket of the local API (docs/local-api.md); access is by its file "
        "permissions",
    )
    socket_mode: str = option(
        "0660",
        doc="Octal permissions of the socket",
        check=lambda v: None if len(v) in (3, 4) and set(v) <= set("01234567") else
        "octal digits such as 0660",
    )


def _check_url_template(*names: str) -> Callable[[str], str | None]:
    """A URL template that may use exactly the placeholders `names` (empty = none)."""
    allowed = ", ".join("{" + n + "}" for n in names)

    def check(value: str) -> str | None:
        if value == "":
            return None
        try:
            filled = value.format(**{n: "x" for n in names})
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            return f"an http(s) URL whose only placeholders are {allowed} (or empty)"
        if not filled.startswith(("https://", "http://")) or any(c.isspace() for c in filled):
            return f"an http(s) URL without spaces, placeholders {allowed} (or empty)"
        return None

    return check


@dataclass(frozen=True)
class UiConfig:
    default_language: str = option(
        "en", doc="Language of the screen when nobody chose one", choices=LANGUAGES
    )
    language_reset_s: float = option(
        60.0,
        doc="Back to default_language after this long on the idle screen with no driver "
        "action",
        unit="s",
        min_value=10,
        max_value=3600,
    )
    receipt_timeout_s: float = option(
        120.0,
        doc="The receipt is offered on screen until acknowledged or this long after the "
        "session closed",
        unit="s",
        min_value=10,
        max_value=3600,
    )
    support_phone: str = option(
        "", doc="Support hotline shown on every screen; empty = none",
        check=lambda v: None if len(v) <= 32 else "at most 32 characters",
    )
    app_start_url: str = option(
        "",
        doc="URL template of the per-session QR code for app/web start, with {station_id} "
        "and {code} (the code a remote start must carry as start_code); empty = no app "
        "start offered",
        check=_check_url_template("station_id", "code"),
    )
    receipt_url: str = option(
        "",
        doc="URL template of the e-receipt, with {station_id} and {session_id}; stored "
        "with each session when its energy starts and printed on its receipt; empty = none",
        check=_check_url_template("station_id", "session_id"),
    )


@dataclass(frozen=True)
class LoggingConfig:
    level: str = option(
        "INFO", doc="Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    fault_interval_s: float = option(
        60.0,
        doc="A repeating fault is logged at most once per this interval, with a counter",
        unit="s",
        min_value=1,
        max_value=3600,
    )


def _check_pins_file(value: str) -> str | None:
    if value == "":
        return None
    return None if Path(value).is_file() else (
        "an existing JSON file of technician PIN hashes (evterm service set-pin), or empty")


@dataclass(frozen=True)
class ServiceConfig:
    pins_file: str = option(
        "",
        doc="JSON file of the technicians' PIN hashes (scrypt), written by `evterm service "
        "set-pin`; empty = nobody can log in to the service menu",
        check=_check_pins_file,
    )
    pin_window_s: float = option(
        60.0,
        doc="After a technician card is tapped, how long its PIN may be entered",
        unit="s",
        min_value=10,
        max_value=600,
    )
    idle_logout_s: float = option(
        300.0,
        doc="A technician is logged out after this long without a service operation",
        unit="s",
        min_value=30,
        max_value=3600,
    )
    max_failed_pins: int = option(
        5,
        doc="Wrong PINs in a row after which PIN entry is locked",
        min_value=1,
        max_value=20,
    )
    lockout_s: float = option(
        30.0,
        doc="The first lockout's length; each further lockout doubles it (a good PIN "
        "resets)",
        unit="s",
        min_value=1,
        max_value=3600,
    )
    max_lockout_s: float = option(
        3600.0,
        doc="The longest lockout",
        unit="s",
        min_value=1,
        max_value=86_400,
    )
    export_allowed_root: str = option(
        "/media",
        doc="Diagnostics bundles may only be written below this folder (the USB stick "
        "mounts)",
        check=lambda v: None if v.startswith("/") else "an absolute path",
    )
    log_file: str = option(
        "",
        doc="The daemon's log file (where its stderr goes), copied into diagnostics "
        "bundles (the last MiB); empty = the bundle says to use journalctl",
    )


@dataclass(frozen=True)
class Config:
    station: StationConfig
    meter: MeterConfig
    charger: ChargerConfig
    session: SessionConfig
    localapi: LocalApiConfig
    logging: LoggingConfig
    readers: ReadersConfig
    payment: PaymentConfig
    auth: AuthConfig
    backend: BackendConfig
    ui: UiConfig
    service: ServiceConfig


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _allowed(meta: dict[str, Any], kind: type) -> str:
    if meta["choices"]:
        return "one of " + ", ".join(meta["choices"])
    text = _TYPE_NAMES[kind]
    lo, hi = meta["min"], meta["max"]
    unit = f" {meta['unit']}" if meta["unit"] else ""
    if lo is not None and hi is not None:
        text += f" from {lo} to {hi}{unit}"
    elif lo is not None:
        text += f" of at least {lo}{unit}"
    return text


def _check_value(key: str, value: Any, kind: type, meta: dict[str, Any]) -> tuple[Any, str | None]:
    bad = f"{key} = {value!r}: expected {_allowed(meta, kind)}"
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return value, bad
    if meta["choices"] and value not in meta["choices"]:
        return value, bad
    if meta["min"] is not None and value < meta["min"]:
        return value, bad
    if meta["max"] is not None and value > meta["max"]:
        return value, bad
    if meta["check"] is not None and (why := meta["check"](value)):
        return value, f"{key} = {value!r}: {why}"
    return value, None


def _build_section(name: str, cls: type, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"[{name}] must be a table, got {raw!r}")
        raw = {}
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in sorted(set(raw) - set(known)):
        problems.append(
            f"{name}.{key}: unknown key (known keys in [{name}]: {', '.join(sorted(known))})"
        )
    values: dict[str, Any] = {}
    for key, fld in known.items():
        full = f"{name}.{key}"
        if key not in raw:
            if fld.default is dataclasses.MISSING:
                problems.append(f"{full}: required key missing ({fld.metadata['doc']})")
            continue
        value, problem = _check_value(full, raw[key], hints[key], dict(fld.metadata))
        if problem:
            problems.append(problem)
        else:
            values[key] = value
    try:
        return cls(**values)
    except TypeError:
        return None  # a required key is missing; already reported


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    problems: list[str] = []
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    hints = get_type_hints(Config)
    for name in sorted(set(data) - set(sections)):
        problems.append(f"[{name}]: unknown section (known: {', '.join(sections)})")
    built = {
        name: _build_section(name, hints[name], data.get(name, {}), problems) for name in sections
    }
    if problems:
        raise ConfigError(source, problems)
    return Config(**built)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; raise ConfigError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse_config(data, str(path))


def render_reference() -> str:
    """docs/configuration.md, generated from the schema above."""
    out = [
        "# Configuration reference",
        "",
        "<!-- generated by `evterm config docs`; edit terminal/config.py, not this file -->",
        "",
        f"One TOML file, `{DEFAULT_CONFIG_PATH}` in the field (`--config FILE` elsewhere),",
        "read once at start. Every problem is reported at once, naming the key, the bad value",
        "and what is allowed; unknown keys and sections are errors, so typos surface.",
        "Check a file without starting anything: `evterm config check FILE`.",
        "",
    ]
    hints = get_type_hints(Config)
    for sect in dataclasses.fields(Config):
        cls = hints[sect.name]
        out += [f"## [{sect.name}]", "", "| key | type | unit | default | allowed | meaning |",
                "|---|---|---|---|---|---|"]
        kinds = get_type_hints(cls)
        for fld in dataclasses.fields(cls):
            meta = fld.metadata
            default = "required" if fld.default is dataclasses.MISSING else f"`{fld.default!r}`"
            allowed = _allowed(dict(meta), kinds[fld.name])
            if meta["check"] is not None:
                allowed += " (checked)"
            out.append(
                f"| `{fld.name}` | {kinds[fld.name].__name__} | {meta['unit'] or '-'} | {default} "
                f"| {allowed} | {meta['doc']} |"
            )
        out.append("")
    return "\n".join(out)
