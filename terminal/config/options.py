"""The configuration's options: one frozen dataclass per TOML section, and `Config`.

A declarative table and nothing else: every key with its type, default, unit, allowed
range or choices, the named check of its value (terminal/config/checks.py) and its
documentation (`option(...)`, terminal/config/schema.py). The loader
(terminal/config/loader.py) reads a file against it; docs/configuration.md is generated
from it (terminal/config/reference.py). Adding a key is adding one `option` here.
"""

from __future__ import annotations

from dataclasses import dataclass

import terminal.config.checks as checks
from terminal.config.schema import option
from terminal.kernel.cards import DEFAULT_ACCEPTED_SCHEMES, SCHEMES
from terminal.kernel.driver_texts import LANGUAGES
from terminal.kernel.paths import LOCAL_API_SOCKET


@dataclass(frozen=True)
class StationConfig:
    id: str = option(doc="EVSE id of this charge point, shown on screen and receipts")
    operator: str = option(
        doc="Operator's name, shown on the screen and printed on every receipt",
        check=checks.non_empty_name,
    )
    timezone: str = option(
        "UTC", doc="IANA time zone of the station; tariff times are local", check=checks.timezone
    )
    state_dir: str = option(
        "/var/lib/evterm", doc="Folder for the database and other durable state"
    )


@dataclass(frozen=True)
class MeterConfig:
    model: str = option(
        "eastron_sdm630",
        doc="Register map: the name of a shipped model (drivers/meter/models/NAME.toml; "
        "lower-case letters, digits and _, never a path)",
        check=checks.meter_model,
    )
    url: str = option(
        "tcp://127.0.0.1:502",
        doc="tcp://HOST:PORT or rtu:///dev/ttyUSB0?baud=9600&parity=N&stopbits=1; a signing "
        "meter with an HTTP API: http://HOST:PORT (the IEM-DCR: http://HOST:PORT?ci=EVSE_ID; "
        "docs/meters.md)",
        check=checks.meter_url,
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
    signing_timeout_s: float = option(
        10.0,
        doc="A signing meter (Eichrecht): how long to wait for its signed begin or end "
        "(docs/eichrecht.md)",
        unit="s",
        min_value=0.5,
        max_value=60,
    )

    public_key: str = option(
        "",
        doc="A signing meter's registered public key (hex, DER SubjectPublicKeyInfo, as the "
        "Meter info page shows it): a meter reporting another key refuses new sessions; "
        "empty = the key of the journal's newest document of that meter",
        check=checks.hex_key,
    )

    def problems(self) -> list[str]:
        """The URL must fit the model: a signing meter's driver parses its own URL."""
        return checks.meter_url_fits_model(self.model, self.url)


@dataclass(frozen=True)
class ChargerConfig:
    kind: str = option(
        "modbus_coil",
        doc="Driver of the power stage's control interface (docs/charger.md)",
        check=checks.charger_kind,
    )
    url: str = option(
        "tcp://127.0.0.1:502",
        doc="Where the charger IO answers: tcp://HOST:PORT or rtu:///dev/ttyUSB0?baud=...",
        check=checks.modbus_url("charger"),
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
        check=checks.tariff_file,
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
        check=checks.or_empty(checks.money),
    )


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
        check=checks.optional_file,
    )
    token_key_id: str = option(
        "k1",
        doc="Id of the tokenisation key, carried in every token so keys can rotate",
        check=checks.key_id,
    )
    gateway_key_file: str = option(
        "",
        doc="The payment gateway's X25519 public key (PEM); card data is encrypted to it",
        check=checks.optional_file,
    )
    preauth_amount: str = option(
        "50.00",
        doc="Amount pre-authorised on a bank card (incl. VAT, tariff currency); it is the "
        "session's cost cap",
        check=checks.money,
    )
    budget_choices: str = option(
        "20.00, 50.00, 80.00",
        doc="Budgets the driver may pick on the screen before tapping a bank card, "
        "comma-separated (1 to 4 amounts above 0 and at most 1000, 2 decimals, one of them "
        "preauth_amount): the chosen one is pre-authorised and is the session's cost cap; "
        "empty = no picker, the hold is always preauth_amount",
        check=checks.budget_choices,
    )
    hold_grace_s: float = option(
        180.0,
        doc="A card hold whose session has delivered no energy this long after the approval "
        "is released (voided) at once, and a session still waiting ends; until then a session "
        "that ended without energy (not by the driver) keeps the hold for the same card "
        "tapped again",
        unit="s",
        min_value=30,
        max_value=3600,
    )
    offline_floor_limit: str = option(
        "",
        doc="While the backend is unreachable, card payments up to this amount are accepted "
        "(the session's cap); empty = card payments are declined offline",
        check=checks.or_empty(checks.money),
    )
    country_code: str = option(
        "276", doc="Terminal country (EMV 9F1A), ISO 3166-1 numeric", check=checks.country
    )
    accepted_schemes: str = option(
        ", ".join(DEFAULT_ACCEPTED_SCHEMES),
        doc="Card schemes taken, comma-separated, of: " + ", ".join(SCHEMES) + "; a card "
        "of another scheme is refused with a text naming these (co-badged cards: an "
        "accepted application is chosen)",
        check=checks.card_schemes,
    )
    closing_time: str = option(
        "03:00",
        doc="Local time (HH:MM, [station] timezone) of the daily end-of-day closing: the "
        "card payments since the last closing are reconciled with the gateway's settlement "
        "batch or the ZVT terminal's end-of-day, and a Z-report is stored and sent "
        "(docs/reconciliation.md)",
        check=checks.clock_time,
    )
    terminal: str = option(
        "builtin",
        doc="Who takes bank cards: builtin (the PC/SC reader's EMV read and the backend's "
        "gateway) or zvt (an external payment terminal over ZVT, [zvt]; a bank card on the "
        "PC/SC reader is then refused with \"pay at the card terminal\", charge cards still "
        "work there)",
        choices=("builtin", "zvt"),
    )

    def problems(self) -> list[str]:
        """The default hold (preauth_amount) is one of the budget choices."""
        from terminal.payment.holds import budget_problems

        return budget_problems(self.budget_choices, self.preauth_amount)


@dataclass(frozen=True)
class ZvtConfig:
    host: str = option(
        "", doc="The payment terminal's address (payment.terminal = zvt); empty = none",
        check=checks.or_empty(checks.host),
    )
    port: int = option(20007, doc="The payment terminal's ZVT TCP port", min_value=1,
                       max_value=65535)
    password: str = option("000000", doc="The payment terminal's 6-digit password",
                           check=checks.zvt_password)
    read_card_timeout_s: int = option(
        60, doc="One Read card wait for a card on the terminal (renewed while idle)",
        unit="s", min_value=5, max_value=255)
    connect_timeout_s: float = option(
        5.0, doc="How long to wait for the terminal's TCP connection", unit="s",
        min_value=0.5, max_value=60)
    response_timeout_s: float = option(
        20.0, doc="The longest silence of the terminal within a command (intermediate "
        "statuses restart it)", unit="s", min_value=1, max_value=300)
    retry_s: float = option(
        5.0, doc="Wait before connecting again to a terminal that cannot be reached",
        unit="s", min_value=0.5, max_value=300)


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
    mqtt_host: str = option(
        "127.0.0.1", doc="MQTT broker host name or address (kind = mqtt); without mqtt_tls "
        "a host other than the loopback is warned about", check=checks.host,
    )
    mqtt_port: int = option(
        1883, doc="MQTT broker port (8883 is usual with TLS)", min_value=1, max_value=65535
    )
    mqtt_tls: bool = option(
        False, doc="Connect with TLS 1.2+; with cert_file/key_file also with a client "
        "certificate (OCPP security profile 3)"
    )
    ca_file: str = option(
        "", doc="PEM file of the CA that signed the broker's certificate; empty = the "
        "system's CAs", check=checks.optional_file
    )
    cert_file: str = option(
        "", doc="PEM client certificate of this station (mqtt_tls = true)",
        check=checks.optional_file,
    )
    key_file: str = option(
        "", doc="PEM private key of the client certificate", check=checks.optional_file
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
        check=checks.or_empty(checks.operator_key),
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
        doc="Unix socket of the local API (docs/local-api.md); who may connect is set by "
        "its file permissions, what each peer may do by its user (roles)",
    )
    socket_mode: str = option(
        "0660",
        doc="Octal permissions of the socket",
        check=checks.octal_mode,
    )
    dev_free_start: bool = option(
        False,
        doc="Development only: the service role (root, the daemon's user) may start a "
        "session with any id token without a technician's login. Logged as a warning at "
        "start and with every such start; the daemon refuses to run with it under systemd",
    )


@dataclass(frozen=True)
class UiConfig:
    default_language: str = option(
        "en", doc="Language of the screen when nobody chose one", choices=LANGUAGES
    )
    language_reset_s: float = option(
        60.0,
        doc="Back to default_language after this long on the idle screen with no driver "
        "action (a touch is one; a warning 20 s before)",
        unit="s",
        min_value=10,
        max_value=3600,
    )
    receipt_timeout_s: float = option(
        120.0,
        doc="The receipt is offered on screen until acknowledged or this long after the "
        "session closed or the driver last touched the screen (a warning 20 s before)",
        unit="s",
        min_value=10,
        max_value=3600,
    )
    support_phone: str = option(
        "", doc="Support hotline shown on every screen; empty = none",
        check=checks.at_most_chars(32),
    )
    app_start_url: str = option(
        "",
        doc="URL template of the per-session QR code for app/web start, with {station_id} "
        "and {code} (the code a remote start must carry as start_code); empty = no app "
        "start offered",
        check=checks.or_empty(checks.url_template("station_id", "code")),
    )
    receipt_url: str = option(
        "",
        doc="URL template of the e-receipt, with {station_id} and {session_id}; stored "
        "with each session when its energy starts and printed on its receipt; empty = none",
        check=checks.or_empty(checks.url_template("station_id", "session_id")),
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


@dataclass(frozen=True)
class ServiceConfig:
    pins_file: str = option(
        "",
        doc="JSON file of the technicians' PIN hashes (scrypt), written by `evterm service "
        "set-pin`; empty = nobody can log in to the service menu",
        check=checks.pins_file,
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
        check=checks.absolute_path,
    )
    log_file: str = option(
        "",
        doc="The daemon's log file, copied into diagnostics bundles (the last MiB): the "
        "daemon appends its log to it (created 0600) unless its stderr already goes "
        "there; empty = the bundle says to use journalctl",
    )


@dataclass(frozen=True)
class RetentionConfig:
    """How long the journal keeps what (docs/retention.md). Cross-key rules (checked by
    the loader through `problems()`): outbox_days <= privacy_days <= the legal period,
    thin_readings_after_days <= the legal period."""

    enabled: bool = option(
        True, doc="Prune, thin and anonymise old journal data in the background; false = "
        "keep everything (the database grows without bound)",
    )
    outbox_days: int = option(
        30, doc="Messages the backend acknowledged are deleted this long after delivery "
        "(a reconcile can ask again only for newer ones); undelivered ones are never "
        "deleted", unit="days", min_value=1, max_value=3650,
    )
    thin_readings_after_days: int = option(
        14, doc="This long after a session closed (delivered and settled), its per-poll "
        "readings are thinned to those its bill needs and its phase changes are deleted; "
        "start and stop readings always stay",
        unit="days", min_value=1, max_value=3650,
    )
    reading_interval_s: int = option(
        0, doc="A thinned session keeps at least one reading this often (a coarse load "
        "curve); 0 = only the readings its bill needs", unit="s", min_value=0,
        max_value=86_400,
    )
    privacy_days: int = option(
        180, doc="This long after a session closed, its id token and card token are "
        "replaced by 'anonymised' (also technician ids and free texts of the audit log); "
        "receipts and the figures of the bill stay", unit="days", min_value=1,
        max_value=36_500,
    )
    legal_years: int = option(
        10, doc="Legal retention period of receipts, start/stop readings, signed meter "
        "data, payments and the audit log; a session is deleted entirely after it",
        unit="years", min_value=1, max_value=100,
    )
    step_budget_ms: float = option(
        5.0, doc="Longest time one batch of the job holds the journal before it commits "
        "(a poll waits at most about this long)", unit="ms", min_value=1, max_value=100,
    )
    batch_rows: int = option(
        500, doc="Most rows one batch changes", min_value=10, max_value=10_000,
    )
    interval_s: float = option(
        3600.0, doc="When nothing is due, how often the job looks again (while work "
        "remains it goes on in small batches)", unit="s", min_value=10, max_value=86_400,
    )

    def problems(self) -> list[str]:
        """What breaks the rules between the keys (each names the keys)."""
        legal_days = self.legal_years * 365
        found = []
        if self.outbox_days > self.privacy_days:
            found.append(f"outbox_days = {self.outbox_days}: expected at most privacy_days "
                         f"({self.privacy_days}); delivered messages carry id tokens")
        if self.privacy_days > legal_days:
            found.append(f"privacy_days = {self.privacy_days}: expected at most the legal "
                         f"period (legal_years = {self.legal_years}, {legal_days} days)")
        if self.thin_readings_after_days > legal_days:
            found.append(f"thin_readings_after_days = {self.thin_readings_after_days}: "
                         f"expected at most the legal period (legal_years = "
                         f"{self.legal_years}, {legal_days} days)")
        return found


@dataclass(frozen=True)
class CdrConfig:
    """What an OCPI 2.2.1 CDR says of this station besides the session (docs/cdr.md):
    the operator as an OCPI party and the location of the charge point."""

    country_code: str = option(
        "DE", doc="OCPI country_code of the operator (the CPO) that issues the CDRs",
        check=checks.ocpi_country,
    )
    party_id: str = option(
        "EVT", doc="OCPI party_id of the operator (ISO 15118 operator id, 3 characters)",
        check=checks.ocpi_party,
    )
    location_id: str = option(
        "", doc="OCPI id of the location in the operator's back office; empty = [station] id",
        check=checks.at_most_chars(36),
    )
    location_name: str = option(
        "", doc="Name of the location in CDRs; empty = none", check=checks.at_most_chars(255),
    )
    address: str = option(
        "", doc="Street and number of the location in CDRs", check=checks.at_most_chars(45),
    )
    city: str = option("", doc="City of the location in CDRs", check=checks.at_most_chars(45))
    postal_code: str = option(
        "", doc="Postal code of the location in CDRs; empty = none",
        check=checks.at_most_chars(10),
    )
    country: str = option(
        "DEU", doc="ISO 3166-1 alpha-3 country of the location in CDRs",
        check=checks.country_alpha3,
    )
    latitude: str = option(
        "0.0", doc="Latitude of the location in CDRs (decimal degrees, WGS 84)",
        check=checks.coordinate(90),
    )
    longitude: str = option(
        "0.0", doc="Longitude of the location in CDRs (decimal degrees, WGS 84)",
        check=checks.coordinate(180),
    )
    evse_uid: str = option(
        "", doc="OCPI uid of the EVSE in the back office; empty = [station] id",
        check=checks.at_most_chars(36),
    )
    connector_id: str = option(
        "1", doc="OCPI id of the connector within the EVSE", check=checks.at_most_chars(36),
    )
    connector_standard: str = option(
        "IEC_62196_T2_COMBO", doc="OCPI ConnectorType of the connector (CCS 2 = "
        "IEC_62196_T2_COMBO, CHAdeMO = CHADEMO)",
        choices=("IEC_62196_T2_COMBO", "IEC_62196_T1_COMBO", "CHADEMO", "GBT_DC",
                 "TESLA_S", "IEC_62196_T2", "IEC_62196_T1"),
    )
    connector_format: str = option(
        "CABLE", doc="OCPI ConnectorFormat: CABLE (attached) or SOCKET",
        choices=("CABLE", "SOCKET"),
    )
    connector_power_type: str = option(
        "DC", doc="OCPI PowerType of the connector",
        choices=("DC", "AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE"),
    )


@dataclass(frozen=True)
class UpdateConfig:
    """The signed software update on the board (docs/updates.md); read by `evterm update`,
    the backend's `firmware_update` command and the daemon's status relay."""

    root_dir: str = option(
        "/opt/evterm", doc="Where the releases live: releases/VERSION/venv, the symlink "
        "current -> releases/VERSION, and the updater's journal in update/",
        check=checks.absolute_path,
    )
    python: str = option(
        "/usr/bin/python3", doc="The interpreter a new release's virtualenv is made with",
        check=checks.absolute_path,
    )
    compile_bytecode: bool = option(
        True, doc="Compile a new release's Python files when it is installed (false: a "
        "faster install, a slower first start)",
    )
    restart_command: str = option(
        "systemctl restart evterm", doc="The command that restarts the daemon from the "
        "current release (split like a shell line, run without a shell)",
    )
    health_timeout_s: float = option(
        120.0, doc="After a restart into a new release: the daemon must answer, have "
        "polled the meter, have its readers up and the backend connected within this "
        "time, else the board rolls back to the previous release", unit="s",
        min_value=1, max_value=3600,
    )
    idle_poll_s: float = option(
        5.0, doc="While an installed release waits for the open session to end: how often "
        "the daemon is asked", unit="s", min_value=0.1, max_value=300,
    )


@dataclass(frozen=True)
class ReportConfig:
    """`evterm report` (docs/reports.md): the thresholds of its irregularities, and how
    far back the export bundle's facts reach."""

    export_days: int = option(
        400, doc="The export bundle's facts/ folder holds the sessions, taps and connector "
        "status rows of this many days before the export (what `evterm report` reads "
        "from a bundle)", unit="days", min_value=1, max_value=36_500,
    )

    refund_threshold: str = option(
        "20.00", doc="A refund above this amount (incl. VAT, the station's currency) is "
        "listed as an irregularity", check=checks.money,
    )
    long_idle_s: float = option(
        3600.0, doc="A car left plugged in longer than this after charging ended is "
        "listed as an irregularity", unit="s", min_value=60, max_value=7 * 86_400,
    )
    decline_repeats: int = option(
        3, doc="This many declined taps of one token within decline_window_s are listed "
        "as an irregularity", min_value=2, max_value=100,
    )
    decline_window_s: float = option(
        600.0, doc="The window of decline_repeats", unit="s", min_value=10,
        max_value=86_400,
    )
    meter_jump_wh: int = option(
        100, doc="A meter whose counter at a session's start differs from the previous "
        "session's stop reading by more than this (or runs backwards) is listed as an "
        "irregularity", unit="Wh", min_value=0, max_value=10_000_000,
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
    zvt: ZvtConfig
    auth: AuthConfig
    backend: BackendConfig
    ui: UiConfig
    service: ServiceConfig
    retention: RetentionConfig
    update: UpdateConfig
    report: ReportConfig
    cdr: CdrConfig
