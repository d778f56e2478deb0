"""Driver of the Isabellenhuette IEM-DCR, a signing DC meter with an HTTP/JSON interface.

Provides `IemDcr`, a `drivers.meter.signing.SigningMeter` (model file
drivers/meter/models/isabellenhuette_iem_dcr.toml, `[signing] driver = "iem_dcr"`).
URL: `http://HOST:PORT?ci=EVSE_ID[&ct=TYPE]`: `ci` is the charge point identification
the meter writes into every document (CI), `ct` its type (CT, default from the model
file); the meter accepts both once per power-up (POST gw), together with its time.

Protocol (sources in the model file: EVerest's IsabellenhuetteIemDcr driver):
- live values: GET {api}/metervalue (RD: RV of the import and export registers in
  kWh; U2 volts, I amperes, P watts; MS serial; XT transaction running; XC error code);
- key: GET {api}/publickey {SA, PK}; clock: GET/POST {api}/datetime {TM}, GET/POST
  {api}/gw {CT, CI, TM};
- begin: POST {api}/user {IS, IL, IF, IT, ID, US, TT}, POST {api}/receipt {TX: "B"},
  GET {api}/receipt (the signed begin document);
- end: POST {api}/receipt {TX: "E"} (or another end reason), GET {api}/receipt (the
  signed document with the begin and the end reading).
The meter keeps no transaction id of the terminal: `open_transaction()` answers the id
this driver started, or `HELD_WITHOUT_ID` for a transaction started before (by an
earlier run of the terminal).

HTTP: drivers/meter/http_client.py (one connection per request).
Errors: `read_snapshot()` raises MeterReadError (unreachable / timeout / exception for
an HTTP error status / garbled), the signing calls SigningError (unreachable / timeout
/ refused / invalid / state), each naming the endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from drivers.meter.http_client import (
    HttpAnswer,
    HttpEndpoint,
    HttpFailure,
    parse_http_url,
    request,
)
from drivers.meter.reading import MeterReadError, MeterReading
from drivers.meter.registermap import MeterMapError, MeterModel, TableReader
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

HELD_WITHOUT_ID = "iem-dcr:held"  # the meter holds a transaction the driver did not start
URL_OPTIONS = ("ci", "ct")
_SIGNING_KEYS = {
    "driver": str, "api_base": str, "transaction_fallback": str, "import_obis": str,
    "export_obis": str, "voltage_field": str, "curve": str, "signing_method": str,
    "charge_point_type": str, "show_user_id": bool, "no_error_status": str,
}


def signing_data(model: MeterModel) -> dict[str, Any]:
    """The model's [signing] table, checked; MeterMapError naming the key."""
    r = TableReader(dict(model.signing), "signing", model.source)
    data = {key: r.get(key, kind, required=True) for key, kind in _SIGNING_KEYS.items()}
    r.finish()
    if not data["api_base"].startswith("/") or data["api_base"].endswith("/"):
        raise MeterMapError(f"{model.source}: signing.api_base = {data['api_base']!r}: "
                            "expected a path such as /counter/v1/ocmf")
    return data


def meter_time_text(moment: datetime) -> str:
    """A time as the meter takes it: 2025-06-06T09:26:24,000+0200 (local time)."""
    local = moment.astimezone()
    return local.strftime("%Y-%m-%dT%H:%M:%S,") + f"{local.microsecond // 1000:03d}" \
        + local.strftime("%z")


def parse_meter_time(text: str) -> tuple[datetime, ClockSync]:
    """"2024-12-16T19:00:22,000+0200 U" -> (time, status); ValueError if malformed."""
    stamp, _, status = text.strip().partition(" ")
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S,%f%z"), ClockSync(status or "U")


def ocmf_in(body: str) -> str:
    """The OCMF document in an answer: the body itself, or the document inside a
    wrapper (braces, quotes); exactly as the meter wrote it. ValueError if none."""
    import json

    start = body.find("OCMF|")
    if start < 0:
        raise ValueError("no OCMF document in the answer")
    decoder = json.JSONDecoder()
    _, payload_end = decoder.raw_decode(body, start + 5)
    if body[payload_end:payload_end + 1] != "|":
        raise ValueError("no '|' after the OCMF payload")
    _, end = decoder.raw_decode(body, payload_end + 1)
    return body[start:end]


class IemDcr:
    """One IEM-DCR at `url`; `unit_id` is unused (HTTP)."""

    def __init__(self, model: MeterModel, url: str, unit_id: int = 0, timeout_s: float = 1.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.model = model
        self.conf = signing_data(model)
        self.endpoint: HttpEndpoint = parse_http_url(url, allowed_options=URL_OPTIONS)
        self.timeout_s = timeout_s
        self._clock = clock
        self.charge_point_id = self.endpoint.options.get("ci", "")
        self.charge_point_type = self.endpoint.options.get("ct") or self.conf["charge_point_type"]
        self._transaction_id: str | None = None
        self._serial: str | None = None
        del unit_id

    def config_problem(self) -> str | None:
        """What a station's configuration lacks for this meter (`config check`): the
        charge point id it writes into every document (reading alone needs none)."""
        if self.charge_point_id:
            return None
        return "the IEM-DCR needs the charge point id: add ?ci=EVSE_ID to the meter URL"

    def close(self) -> None:
        """Nothing to close: one connection per request."""

    # -- HTTP --------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return f"{self.conf['api_base']}/{name}"

    async def _call(self, method: str, name: str, body: dict[str, Any] | None = None,
                    *, path: str | None = None) -> HttpAnswer:
        """A signing request: SigningError for no answer or an error status."""
        path = path or self._path(name)
        try:
            answer = await request(self.endpoint, method, path, body, self.timeout_s)
        except HttpFailure as exc:
            kind = exc.kind if exc.kind in ("unreachable", "timeout") else "invalid"
            raise SigningError(kind, exc.detail) from None
        if answer.status != 200:
            raise SigningError("refused", f"{method} {path}: HTTP {answer.status} "
                               f"{_short(answer.text())}")
        return answer

    async def _json(self, name: str) -> dict[str, Any]:
        answer = await self._call("GET", name)
        data = _object(answer)
        if data is None:
            raise SigningError("invalid", f"GET {self._path(name)}: not a JSON object: "
                               f"{_short(answer.text())}")
        return data

    # -- live values -------------------------------------------------------------------

    async def _metervalue(self) -> dict[str, Any]:
        """GET metervalue, for read_snapshot: MeterReadError on failure."""
        path = self._path("metervalue")
        try:
            answer = await request(self.endpoint, "GET", path, None, self.timeout_s)
        except HttpFailure as exc:
            raise MeterReadError(exc.kind, exc.detail) from None
        if answer.status != 200:
            raise MeterReadError("exception", f"GET {path}: HTTP {answer.status} "
                                 f"{_short(answer.text())}")
        data = _object(answer)
        if data is None:
            raise MeterReadError("garbled", f"GET {path}: not a JSON object: "
                                 f"{_short(answer.text())}")
        return data

    def _register(self, data: Mapping[str, Any], obis: str) -> Decimal | None:
        for entry in data.get("RD") or []:
            if isinstance(entry, dict) and entry.get("RI") == obis and "RV" in entry:
                value = _decimal(entry["RV"], f"RD {obis} RV")
                unit = entry.get("RU", "kWh")
                if unit not in ("kWh", "Wh"):
                    raise ValueError(f"RD {obis} RU = {unit!r}: expected kWh or Wh")
                return value * 1000 if unit == "kWh" else value
        return None

    async def read_snapshot(self) -> MeterReading:
        data = await self._metervalue()
        stamp = self._clock.now()
        where = f"GET {self._path('metervalue')}"
        try:
            energy = self._register(data, self.conf["import_obis"])
            if energy is None:
                raise ValueError(f"no RD entry {self.conf['import_obis']} (the import register)")
            serial = data.get("MS")
            self._serial = str(serial) if serial else self._serial
            return MeterReading(
                timestamp=stamp,
                energy_import_wh=energy,
                energy_export_wh=self._register(data, self.conf["export_obis"]),
                power_w=_optional(data, "P"),
                voltage_v=_optional(data, self.conf["voltage_field"]),
                current_a=_optional(data, "I"),
                serial=self._serial,
            )
        except ValueError as exc:
            raise MeterReadError("garbled", f"{where}: {exc}") from None

    async def _status(self) -> tuple[bool, str]:
        """(a transaction is running, XC) from metervalue, as a signing request."""
        try:
            data = await self._metervalue()
        except MeterReadError as exc:
            kind = {"exception": "refused", "garbled": "invalid"}.get(exc.kind, exc.kind)
            raise SigningError(kind, exc.detail) from None
        running = data.get("XT")
        if not isinstance(running, bool):
            raise SigningError("invalid", f"GET {self._path('metervalue')}: XT = "
                               f"{running!r}: expected true or false")
        if data.get("MS"):
            self._serial = str(data["MS"])
        return running, str(data.get("XC", ""))

    # -- key and clock -----------------------------------------------------------------

    async def public_key(self) -> MeterKey:
        data = await self._json("publickey")
        key, method = data.get("PK"), data.get("SA") or self.conf["signing_method"]
        if not isinstance(key, str) or not key or any(c not in "0123456789abcdefABCDEF"
                                                      for c in key):
            raise SigningError("invalid", f"GET {self._path('publickey')}: PK = "
                               f"{_short(str(key))}: expected the key in hex")
        if self._serial is None:
            await self._status()
        return MeterKey(public_key_hex=key.upper(), signing_method=str(method),
                        meter_serial=self._serial or "")

    async def _meter_clock(self) -> MeterClock:
        data = await self._json("datetime")
        try:
            moment, sync = parse_meter_time(str(data["TM"]))
        except (KeyError, ValueError) as exc:
            raise SigningError("invalid", f"GET {self._path('datetime')}: TM unreadable: "
                               f"{exc}") from None
        return MeterClock(sync=sync, meter_time=moment)

    async def set_clock(self) -> MeterClock:
        """Write the terminal's time into the meter: with CT and CI (POST gw) the first
        time after the meter's power-up, else POST datetime. The clock state after."""
        gw = await self._json("gw")
        now = meter_time_text(self._clock.now())
        if not gw.get("CT"):
            if not self.charge_point_id:
                raise SigningError("refused", "the meter needs the charge point id once "
                                   "after power-up: add ?ci=EVSE_ID to the meter URL")
            await self._call("POST", "gw", {"CT": self.charge_point_type,
                                            "CI": self.charge_point_id, "TM": now})
        else:
            await self._call("POST", "datetime", {"TM": now})
        return await self._meter_clock()

    async def clock_state(self) -> MeterClock:
        """The meter's clock; when it is unsynchronised (after a power-up) the terminal's
        time is written first (`set_clock`)."""
        state = await self._meter_clock()
        if state.sync is ClockSync.UNSYNCHRONIZED:
            return await self.set_clock()
        return state

    # -- transactions ------------------------------------------------------------------

    async def _receipt(self, expect_end: bool) -> SignedReading:
        answer = await self._call("GET", "receipt")
        where = f"GET {self._path('receipt')}"
        try:
            doc = SignedReading.from_ocmf(ocmf_in(answer.text(errors="strict")))
        except (ValueError, SigningError) as exc:
            raise SigningError("invalid", f"{where}: {exc}") from None
        if doc.tx.ends != expect_end or (not expect_end and doc.tx is not TxReason.BEGIN):
            wanted = "an end reading" if expect_end else "a begin reading (TX B)"
            raise SigningError("invalid", f"{where}: the document's last reading is TX "
                               f"{doc.tx.value}, expected {wanted}")
        return doc

    async def start_transaction(self, transaction_id: str, identification: Identification,
                                tariff_text: str) -> SignedReading:
        running, status = await self._status()
        if running:
            raise SigningError("state", "the meter already holds a transaction "
                               f"(GET {self._path('metervalue')} XT true); end it first")
        if status and status != self.conf["no_error_status"]:
            raise SigningError("refused", f"the meter reports an error: XC {status}")
        clock = await self.clock_state()
        if clock.sync is ClockSync.UNSYNCHRONIZED:
            raise SigningError("refused", f"the meter's clock stays unsynchronised after "
                               f"POST {self._path('datetime')}")
        user: dict[str, Any] = dict(identification.to_json())
        user["US"] = self.conf["show_user_id"]
        if tariff_text:
            user["TT"] = tariff_text
        await self._call("POST", "user", user)
        await self._call("POST", "receipt", {"TX": TxReason.BEGIN.value})
        self._transaction_id = transaction_id
        return await self._receipt(expect_end=False)

    async def _end(self, reason: TxReason) -> SignedReading:
        running, _ = await self._status()
        if not running:
            raise SigningError("state", "the meter holds no transaction "
                               f"(GET {self._path('metervalue')} XT false)")
        try:
            await self.clock_state()  # after a power-up: the end reading gets a set time
        except SigningError as exc:
            if exc.kind in ("unreachable", "timeout"):
                raise
            # otherwise end anyway: the document then carries the clock status U
        try:
            await self._call("POST", "receipt", {"TX": reason.value})
        except SigningError as exc:
            if exc.kind != "refused" or reason is TxReason.END:
                raise
            await self._call("POST", "receipt", {"TX": TxReason.END.value})
        doc = await self._receipt(expect_end=True)
        self._transaction_id = None
        return doc

    async def stop_transaction(self, transaction_id: str) -> SignedReading:
        if self._transaction_id not in (None, transaction_id):
            raise SigningError("state", f"transaction {transaction_id!r} is not the one "
                               f"running ({self._transaction_id!r})")
        return await self._end(TxReason.END)

    async def begin_document(self, transaction_id: str) -> SignedReading:
        """GET receipt while the meter holds a transaction: its begin (the meter keeps
        one transaction; `transaction_id` only names it in errors)."""
        running, _ = await self._status()
        if not running:
            raise SigningError("state", f"the meter holds no transaction ({transaction_id!r})")
        return await self._receipt(expect_end=False)

    async def open_transaction(self) -> str | None:
        running, _ = await self._status()
        if not running:
            self._transaction_id = None
            return None
        return self._transaction_id or HELD_WITHOUT_ID

    async def abort_transaction(self, transaction_id: str, reason: TxReason) -> SignedReading:
        """End what the meter holds with `reason` (the meter knows one transaction, so
        `transaction_id` only names it in errors); "E" if the meter refuses the reason."""
        if not reason.ends:
            raise SigningError("state", f"TX {reason.value} is not an end reason")
        try:
            return await self._end(reason)
        except SigningError as exc:
            raise SigningError(exc.kind, f"abort {transaction_id}: {exc.detail}") from None


def _object(answer: HttpAnswer) -> dict[str, Any] | None:
    """The answer's body as a JSON object; None when it is not one."""
    try:
        data = answer.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"{name} = {value!r}: expected a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{name} = {value!r}: expected a number") from None
    if not number.is_finite():
        raise ValueError(f"{name} = {value!r}: expected a finite number")
    return number


def _optional(data: Mapping[str, Any], key: str) -> Decimal | None:
    return _decimal(data[key], key) if data.get(key) is not None else None
