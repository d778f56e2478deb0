"""LEM DCBM 400/600: a signing DC meter behind its HTTP/JSON API (`SigningMeter`).

Provides `LemDcbm(model, url, unit_id, timeout_s, clock)` for model files whose
`[signing] driver = "lem_dcbm"` (drivers/meter/models/lem_dcbm400600.toml, which lists
the sources: EVerest's LemDCBM400600 module and LEM's operation manual). URL:
`http://HOST:PORT` (port 80 by default). Standard library HTTP/1.1, one request per
connection (drivers/meter/http_client.py).

What the driver asks the meter:
- `read_snapshot()`: GET /vN/livemeasure (kWh, kW, V, A) -> the live, unsigned
  MeterReading; the serial (meterId) and the API version come from GET /v1/status
  once. MeterReadError kinds as the Modbus meter: unreachable, timeout, exception (an
  HTTP error status), garbled (not JSON / missing values).
- `public_key()`: /v1/status `publicKeyOcmf` (RFC 5480 header + key = DER
  SubjectPublicKeyInfo); a bare key (`publicKey`, X||Y or 04||X||Y) is converted.
- `clock_state()`: /v1/status `timeSyncStatusIsOk` and `time`.
- `start_transaction()`: POST /vN/legal with evseId, transactionId, clientId (= the
  OCMF identification data), tariffId/cableId (from the model), userData (the other
  identification fields as compact JSON: IS, IL, IF, IT) and, on v2 firmware, TT (the
  tariff text); expects 201 {"running": true}; then GET /vN/ocmf?transactionId=X gives
  the signed begin document (TX=B).
- `stop_transaction()` / `abort_transaction()`: PUT /vN/legal?transactionId=X
  {"running": false} (200, transactionStatus bit 2 clear), then GET /vN/ocmf -> the
  signed end document. LEM's API takes no end reason: the meter writes it (e.g. P
  after it lost power during the transaction); the driver returns it unchanged.
- `open_transaction()`: /v1/status `transactionIsOnGoing`, then GET /vN/legal.

Time: LEM requires a synchronised clock to start a transaction (valid 48 h, cannot
be set during a transaction, settings written in the first 2 minutes after power-up
may not persist). `start_transaction()` reads the status first and, when the meter
reports its clock unsynchronised, sets it (PUT /v1/settings {"time": {"utc": ...}},
the terminal's clock in UTC) before the start; `set_time()` does it on demand (the
daemon may call it once a day while idle). NTP on the meter is left as configured.

How this avoids problems EVerest's driver had (issues and pull requests of
EVerest/EVerest):
- start values not reaching the backend (#573: "signed meter values for start
  transaction are not expected to be reported"; fixed for the CSMS only in #2214,
  #2259): `start_transaction()` returns the signed begin document at once, so the
  terminal journals it and sends it with the start.
- recovery after a power loss (#806: still-open LEM transactions detected at start-up
  and closed by the next start; a start while one runs stops it implicitly and drops
  its OCMF): this driver never ends a transaction implicitly. A start while one runs
  fails with SigningError("state"); `open_transaction()` reports the dangling one and
  the daemon ends it with `abort_transaction()`, keeping its signed end document. A
  stop of a transaction the meter already ended (the answer was lost) fetches its
  document instead of failing.
- no substitute documents: where EVerest answers a failed stop with the last OCMF it
  cached, this driver raises SigningError; the terminal never stores a document the
  meter did not give for that request.
Errors: SigningError(kind, detail) naming the request and the HTTP status/reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from drivers.meter.http_client import HttpAnswer, HttpFailure, parse_http_url, request
from drivers.meter.reading import MeterReadError, MeterReading
from drivers.meter.registermap import MeterModel, TableReader
from drivers.meter.signing import (
    ClockSync,
    Identification,
    MeterClock,
    MeterKey,
    SignedReading,
    SigningError,
    TxReason,
)
from terminal.kernel.clock import SYSTEM_CLOCK, Clock

TRANSACTION_ONGOING_BIT = 0b100  # transactionStatus / status value bit 2
CURVES = ("secp256r1", "secp384r1", "secp521r1")


@dataclass(frozen=True)
class LemConfig:
    """The model file's [signing] data for this driver."""

    curve: str
    signing_method: str
    status_path: str
    settings_path: str
    live_path: str
    legal_path: str
    ocmf_path: str
    tariff_id: int
    cable_id: int
    max_id_bytes: int
    max_user_data_bytes: int
    transaction_timeout_s: float

    @classmethod
    def from_model(cls, model: MeterModel) -> LemConfig:
        r = TableReader(dict(model.signing), "signing", model.source)
        r.get("driver", str)
        r.used.update(("obis", "energy_unit", "energy_decimals"))  # data for the simulator
        config = cls(
            curve=r.choice("curve", CURVES, required=True),
            signing_method=r.get("signing_method", str, required=True),
            status_path=r.get("status_path", str, "/v1/status"),
            settings_path=r.get("settings_path", str, "/v1/settings"),
            live_path=r.get("live_path", str, "livemeasure"),
            legal_path=r.get("legal_path", str, "legal"),
            ocmf_path=r.get("ocmf_path", str, "ocmf"),
            tariff_id=r.int_in("tariff_id", 0, 4, 0),
            cable_id=r.int_in("cable_id", 0, 7, 0),
            max_id_bytes=r.get("max_id_bytes", int, 37),
            max_user_data_bytes=r.get("max_user_data_bytes", int, 128),
            transaction_timeout_s=r.get("transaction_timeout_s", float, 5.0),
        )
        r.finish()
        if not 0 < config.transaction_timeout_s <= 60:
            raise r.fail("transaction_timeout_s", config.transaction_timeout_s,
                         "a number of seconds above 0, at most 60")
        return config


def spki_hex(key_text: str, curve: str) -> str:
    """The meter's public key as DER SubjectPublicKeyInfo hex (upper case): from the
    DER form itself, or a bare point (X||Y, or 04||X||Y) on `curve`. ValueError."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_public_key,
    )

    raw = bytes.fromhex(key_text.strip())
    curve_obj = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(),
                 "secp521r1": ec.SECP521R1()}[curve]
    point_bytes = (curve_obj.key_size + 7) // 8
    if len(raw) == 2 * point_bytes:
        raw = b"\x04" + raw
    if len(raw) == 2 * point_bytes + 1 and raw[0] == 4:
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve_obj, raw)
    else:
        loaded = load_der_public_key(raw)
        if not isinstance(loaded, ec.EllipticCurvePublicKey) or loaded.curve.name != curve:
            raise ValueError(f"not an EC key on {curve}")
        key = loaded
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo).hex().upper()


def _decimal(data: dict[str, Any], key: str) -> Decimal:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"{key} = {value!r} is not a number")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{key} = {value!r} is not a finite number")
    return number


class LemDcbm:
    """The LEM DCBM 400/600 over HTTP (`SigningMeter`)."""

    def __init__(self, model: MeterModel, url: str, unit_id: int = 0, timeout_s: float = 1.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.model = model
        self.config = LemConfig.from_model(model)
        self.endpoint = parse_http_url(url)
        self.transport = self.endpoint  # describe(), as the Modbus meters' transport
        self.timeout_s = timeout_s
        self._clock = clock
        self._prefix: str | None = None  # "/v1" or "/v2", from the firmware version
        self._serial: str | None = None

    def close(self) -> None:
        """Nothing stays open: every request has its own connection."""

    # --- requests ------------------------------------------------------------------------

    async def _send(self, method: str, path: str, body: Any = None,
                    timeout_s: float | None = None) -> HttpAnswer:
        return await request(self.endpoint, method, path, body, timeout_s or self.timeout_s)

    async def _signing(self, method: str, path: str, expect: int, body: Any = None) -> HttpAnswer:
        """A request of a signing operation: SigningError unless the status is `expect`."""
        try:
            answer = await self._send(method, path, body, self.config.transaction_timeout_s)
        except HttpFailure as failure:
            kind = failure.kind if failure.kind in ("unreachable", "timeout") else "invalid"
            raise SigningError(kind, failure.detail) from None
        if answer.status != expect:
            raise SigningError("refused", self._refusal(method, path, answer, expect))
        return answer

    def _refusal(self, method: str, path: str, answer: HttpAnswer, expect: int) -> str:
        said = answer.text().strip().replace("\n", " ")[:200]
        return (f"{method} {path}: HTTP {answer.status} {answer.reason} (expected {expect})"
                + (f": {said}" if said else ""))

    async def _signing_json(self, method: str, path: str, expect: int,
                            body: Any = None) -> dict[str, Any]:
        answer = await self._signing(method, path, expect, body)
        try:
            data = answer.json()
        except ValueError as exc:
            raise SigningError("invalid", f"{method} {path}: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SigningError("invalid", f"{method} {path}: expected a JSON object")
        return data

    async def _status(self) -> dict[str, Any]:
        data = await self._signing_json("GET", self.config.status_path, 200)
        self._learn(data)
        return data

    def _learn(self, status: dict[str, Any]) -> None:
        """Serial and API version from a /status answer."""
        self._serial = str(status.get("meterId", "")) or None
        versions = status.get("version")
        version = str(versions.get("applicationFirmwareVersion", "")) \
            if isinstance(versions, dict) else ""
        parts = version.split(".")
        self._prefix = "/v2" if len(parts) == 4 and parts[1].isdigit() and int(parts[1]) > 1 \
            else "/v1"

    def _path(self, name: str, transaction_id: str | None = None) -> str:
        path = f"{self._prefix or '/v1'}/{name}"
        if transaction_id is not None:
            path += "?transactionId=" + quote(transaction_id, safe="")
        return path

    @staticmethod
    def _bits(status: dict[str, Any], section: str = "status") -> dict[str, Any]:
        try:
            bits = status[section]["bits"]
        except (KeyError, TypeError):
            raise SigningError("invalid", f"/status: no {section}.bits") from None
        if not isinstance(bits, dict):
            raise SigningError("invalid", f"/status: {section}.bits is not an object")
        return bits

    # --- live values ---------------------------------------------------------------------

    async def read_snapshot(self) -> MeterReading:
        path = self.config.status_path
        try:
            if self._prefix is None:
                answer = await self._send("GET", path)
                if answer.status != 200:
                    raise MeterReadError("exception", self._refusal("GET", path, answer, 200))
                self._learn(answer.json())
            path = self._path(self.config.live_path)
            answer = await self._send("GET", path)
        except HttpFailure as failure:
            raise MeterReadError(failure.kind, failure.detail) from None
        except (ValueError, AttributeError) as exc:
            raise MeterReadError("garbled", f"GET {path}: {exc}") from None
        if answer.status != 200:
            raise MeterReadError("exception", self._refusal("GET", path, answer, 200))
        stamp = self._clock.now()
        try:
            data = answer.json()
            return MeterReading(
                timestamp=stamp,
                energy_import_wh=_decimal(data, "energyImportTotal") * 1000,
                energy_export_wh=_decimal(data, "energyExportTotal") * 1000,
                power_w=_decimal(data, "power") * 1000,
                voltage_v=_decimal(data, "voltage"),
                current_a=_decimal(data, "current"),
                serial=self._serial,
            )
        except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation) as exc:
            raise MeterReadError("garbled", f"GET {path}: {type(exc).__name__}: {exc}") from None

    # --- key and clock -------------------------------------------------------------------

    async def public_key(self) -> MeterKey:
        status = await self._status()
        text = status.get("publicKeyOcmf") or status.get("publicKey")
        if not isinstance(text, str) or not text:
            raise SigningError("invalid", f"GET {self.config.status_path}: no publicKeyOcmf")
        try:
            key_hex = spki_hex(text, self.config.curve)
        except ValueError as exc:
            raise SigningError("invalid", f"GET {self.config.status_path}: publicKeyOcmf "
                                          f"is not a {self.config.curve} key: {exc}") from None
        return MeterKey(key_hex, self.config.signing_method, self._serial or "")

    async def clock_state(self) -> MeterClock:
        status = await self._status()
        synced = self._bits(status).get("timeSyncStatusIsOk") is True
        meter_time: datetime | None
        try:
            meter_time = datetime.fromisoformat(str(status.get("time", "")))
        except ValueError:
            meter_time = None
        return MeterClock(ClockSync.SYNCHRONIZED if synced else ClockSync.UNSYNCHRONIZED,
                          meter_time)

    async def set_time(self) -> None:
        """Set the meter's clock to the terminal's (UTC), as LEM's command
        synchronisation requires (refused by the meter during a transaction)."""
        utc = self._clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        path = self.config.settings_path
        data = await self._signing_json("PUT", path, 200, {"time": {"utc": utc}})
        if data.get("result") != 1:
            raise SigningError("refused", f"PUT {path}: the meter did not accept the time "
                                          f"(result {data.get('result')!r})")

    # --- transactions --------------------------------------------------------------------

    def _start_body(self, transaction_id: str, identification: Identification,
                    tariff_text: str) -> dict[str, Any]:
        limit = self.config.max_id_bytes
        for name, value in (("transaction id", transaction_id),
                            ("identification data", identification.data)):
            if len(value.encode()) > limit:
                raise SigningError("refused", f"not sent: the {name} is "
                                              f"{len(value.encode())} bytes, LEM takes {limit}")
        if not transaction_id:
            raise SigningError("refused", "not sent: an empty transaction id")
        user_data = json.dumps({"IS": identification.status, "IL": identification.level,
                                "IF": list(identification.flags), "IT": identification.type},
                               separators=(",", ":"))
        if len(user_data.encode()) > self.config.max_user_data_bytes:
            raise SigningError("refused", f"not sent: identification flags too long for "
                                          f"userData ({len(user_data.encode())} bytes)")
        body: dict[str, Any] = {
            "evseId": "", "transactionId": transaction_id, "clientId": identification.data,
            "tariffId": self.config.tariff_id, "cableId": self.config.cable_id,
            "userData": user_data,
        }
        if self._prefix == "/v2":
            body["TT"] = tariff_text
        return body

    async def start_transaction(self, transaction_id: str, identification: Identification,
                                tariff_text: str) -> SignedReading:
        status = await self._status()
        if self._bits(status).get("transactionIsOnGoing"):
            running = await self._legal_id()
            raise SigningError("state", f"the meter runs transaction {running!r}; end it "
                                        "first (abort_transaction)")
        errors_table = status.get("errors")
        errors = errors_table.get("value", 0) if isinstance(errors_table, dict) else 0
        if errors:
            raise SigningError("state", f"the meter reports errors (value {errors}), "
                                        "which block new transactions")
        if not self._bits(status).get("timeSyncStatusIsOk"):
            await self.set_time()
        body = self._start_body(transaction_id, identification, tariff_text)
        path = self._path(self.config.legal_path)
        data = await self._signing_json("POST", path, 201, body)
        if data.get("running") is not True:
            raise SigningError("invalid", f"POST {path}: transaction {transaction_id!r} "
                                          "created with running = false")
        doc = await self._document(transaction_id)
        if doc.tx is not TxReason.BEGIN:
            raise SigningError("invalid", f"the begin document of {transaction_id!r} has "
                                          f"TX={doc.tx.value}, expected B")
        return doc

    async def _legal_id(self) -> str:
        path = self._path(self.config.legal_path)
        data = await self._signing_json("GET", path, 200)
        return str(data.get("transactionId", ""))

    async def _document(self, transaction_id: str) -> SignedReading:
        path = self._path(self.config.ocmf_path, transaction_id)
        answer = await self._signing("GET", path, 200)
        text = answer.text().strip()
        if not text:
            raise SigningError("invalid", f"GET {path}: empty answer")
        return SignedReading.from_ocmf(text)

    async def open_transaction(self) -> str | None:
        status = await self._status()
        if not self._bits(status).get("transactionIsOnGoing"):
            return None
        return await self._legal_id() or None

    async def stop_transaction(self, transaction_id: str) -> SignedReading:
        return await self._end(transaction_id)

    async def begin_document(self, transaction_id: str) -> SignedReading:
        """GET /vN/ocmf?transactionId=X while the transaction runs: its begin."""
        if await self.open_transaction() != transaction_id:
            raise SigningError("state", f"the meter runs no transaction {transaction_id!r}")
        doc = await self._document(transaction_id)
        if doc.tx is not TxReason.BEGIN:
            raise SigningError("invalid", f"the document of {transaction_id!r} is TX "
                               f"{doc.tx.value}, expected a begin (TX B)")
        return doc

    async def abort_transaction(self, transaction_id: str, reason: TxReason) -> SignedReading:
        """LEM's API takes no end reason: the meter writes its own (P when it lost
        power during the transaction); `reason` is what the terminal expects and is
        not sent. The document is returned as the meter signed it."""
        return await self._end(transaction_id)

    async def _end(self, transaction_id: str) -> SignedReading:
        status = await self._status()
        running = bool(self._bits(status).get("transactionIsOnGoing"))
        current = await self._legal_id()
        if current != transaction_id:
            what = f"runs transaction {current!r}" if running else \
                f"runs no transaction (the last was {current!r})"
            raise SigningError("state", f"cannot end {transaction_id!r}: the meter {what}")
        if running:
            path = self._path(self.config.legal_path, transaction_id)
            data = await self._signing_json("PUT", path, 200, {"running": False})
            try:
                transaction_status = int(data["meterValue"]["transactionStatus"])
            except (KeyError, TypeError, ValueError):
                raise SigningError("invalid", f"PUT {path}: no meterValue.transactionStatus"
                                   ) from None
            if transaction_status & TRANSACTION_ONGOING_BIT:
                raise SigningError("refused", f"PUT {path}: transaction still running "
                                              f"(transactionStatus {transaction_status})")
        doc = await self._document(transaction_id)
        if not doc.tx.ends:
            raise SigningError("invalid", f"the end document of {transaction_id!r} has "
                                          f"TX={doc.tx.value}, not an end reason")
        return doc
