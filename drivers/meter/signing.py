"""Signing (Eichrecht) meters: the interface beside the reading one.

A signing meter is a calibrated meter that produces signed OCMF documents (Open Charge
Metering Format, S.A.F.E. e.V.) for the start and the end of a charging transaction.
The terminal never creates, changes or substitutes a signed value: it asks the meter
to begin and to end a transaction, stores the documents the meter returns, checks them
(signature, pagination, error flags) and hands them on unchanged.

Provides:
- `ClockSync` (OCMF time status), `TxReason` (OCMF reading reason, RD TX),
  `Identification` (the OCMF identification fields IS/IL/IF/IT/ID);
- `SignedReading`: one signed OCMF document as the meter produced it, with the fields
  the terminal uses read out of it (`from_ocmf`);
- `MeterKey` (the meter's public key and signing method), `MeterClock` (its clock);
- `SigningError`: a signing request that failed, with its kind;
- `SigningMeter`: the protocol a signing-meter driver implements (it is a `Meter`
  too: `read_snapshot()` gives the live, unsigned values for the screen and the
  running price).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from drivers.meter.reading import MeterReading
from drivers.meter.registermap import MeterModel


class ClockSync(enum.StrEnum):
    """OCMF time status (the letter after the time in RD TM)."""

    UNSYNCHRONIZED = "U"  # unknown or not synchronised
    INFORMATIVE = "I"  # set, but not by a trusted source
    SYNCHRONIZED = "S"  # synchronised (trusted)
    RELATIVE = "R"  # relative time since the meter's start

    @property
    def trusted(self) -> bool:
        return self is ClockSync.SYNCHRONIZED


class TxReason(enum.StrEnum):
    """OCMF reading reason (RD TX)."""

    BEGIN = "B"
    CHARGING = "C"
    EXCEPTION = "X"
    END = "E"
    LOCAL = "L"  # terminated locally
    REMOTE = "R"  # terminated remotely
    ABORT = "A"  # terminated by an abort (error)
    POWER_FAILURE = "P"  # terminated by a power failure
    SUSPENDED = "S"
    TARIFF = "T"

    @property
    def ends(self) -> bool:
        return self in (TxReason.END, TxReason.LOCAL, TxReason.REMOTE, TxReason.ABORT,
                        TxReason.POWER_FAILURE)


@dataclass(frozen=True)
class Identification:
    """OCMF identification: IS (status), IL (level), IF (flags), IT (type), ID (data).
    Examples: an RFID card: IS=True, IL="VERIFIED" (backend or local list), IF=
    ("RFID_PLAIN", "OCPP_AUTH"), IT="ISO14443", ID=the UID in hex; an ad-hoc card
    payment: IT="CARD_TXN_NR", ID=the payment reference; an app/remote start:
    IT="CENTRAL", ID=the id token. Never a card number (PAN)."""

    status: bool
    level: str
    flags: tuple[str, ...]
    type: str
    data: str

    def to_json(self) -> dict[str, Any]:
        return {"IS": self.status, "IL": self.level, "IF": list(self.flags),
                "IT": self.type, "ID": self.data}


@dataclass(frozen=True)
class SignedReading:
    """One signed OCMF document. `ocmf` is the complete string exactly as the meter
    gave it ("OCMF|{payload}|{signature}"); every other field is read out of it."""

    ocmf: str
    tx: TxReason  # the reason of the (last) reading in RD
    energy_wh: Decimal  # the reading's value (RV), in Wh (converted from kWh)
    meter_time: datetime  # the reading's time (RD TM), with its offset
    clock: ClockSync  # the reading's time status
    pagination: str  # PG, e.g. "T12" (transaction documents) or "F3" (fiscal)
    meter_serial: str  # MS
    status: str  # RD ST: "G" = good
    error_flags: str  # RD EF: "" none, "E" energy, "t" time
    obis: str  # RI, e.g. "1-b:1.8.0"
    identification: dict[str, Any] = field(default_factory=dict)
    tariff_text: str = ""  # TT

    @property
    def pagination_number(self) -> int | None:
        """The counter of PG ("T12" -> 12); None when it is not a T-counter."""
        if len(self.pagination) > 1 and self.pagination[0] == "T" and self.pagination[1:].isdigit():
            return int(self.pagination[1:])
        return None

    @classmethod
    def from_ocmf(cls, text: str) -> SignedReading:
        """Read the fields out of an OCMF string; raise SigningError("invalid") when it
        is not one (the signature is checked elsewhere, with the meter's key)."""
        parts = text.split("|")
        if len(parts) < 3 or parts[0] != "OCMF":
            raise SigningError("invalid", "not an OCMF document (OCMF|payload|signature)")
        try:
            payload = json.loads(parts[1])
            reading = payload["RD"][-1]
            value = Decimal(str(reading["RV"]))
            unit = str(reading.get("RU", "kWh"))
            energy_wh = value * 1000 if unit == "kWh" else value
            time_text = str(reading["TM"])
            stamp, _, sync = time_text.partition(" ")
            meter_time = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S,%f%z")
            return cls(
                ocmf=text,
                tx=TxReason(reading["TX"]),
                energy_wh=energy_wh,
                meter_time=meter_time,
                clock=ClockSync(sync or "U"),
                pagination=str(payload.get("PG", "")),
                meter_serial=str(payload.get("MS", "")),
                status=str(reading.get("ST", "")),
                error_flags=str(reading.get("EF", "") or ""),
                obis=str(reading.get("RI", "")),
                identification={k: payload[k] for k in ("IS", "IL", "IF", "IT", "ID")
                                if k in payload},
                tariff_text=str(payload.get("TT", "")),
            )
        except (ValueError, KeyError, IndexError, TypeError, InvalidOperation) as exc:
            raise SigningError("invalid", f"OCMF document unreadable: {exc}") from exc

    def as_reading(self, at: datetime, live: MeterReading | None = None) -> MeterReading:
        """The signed value as a meter reading taken at `at` (the terminal's clock):
        the energy is the signed register value, exactly; power etc. from `live`."""
        return MeterReading(
            timestamp=at,
            energy_import_wh=self.energy_wh,
            energy_export_wh=live.energy_export_wh if live else None,
            power_w=live.power_w if live else None,
            voltage_v=live.voltage_v if live else None,
            current_a=live.current_a if live else None,
            serial=self.meter_serial or (live.serial if live else None),
        )


@dataclass(frozen=True)
class MeterKey:
    """The meter's public key as the transparency software takes it: the DER
    SubjectPublicKeyInfo in hex (upper case), and the OCMF signing method (SA)."""

    public_key_hex: str
    signing_method: str  # e.g. "ECDSA-secp256r1-SHA256"
    meter_serial: str
    encoding_method: str = "OCMF"


@dataclass(frozen=True)
class MeterClock:
    sync: ClockSync
    meter_time: datetime | None


SIGNING_ERROR_KINDS = ("unreachable", "timeout", "refused", "invalid", "state")


class SigningError(Exception):
    """A signing request that failed. kind: unreachable / timeout (no answer),
    refused (the meter answered with an error), invalid (an answer that is not a
    well-formed signed document), state (the meter is not in the state the request
    needs, e.g. no transaction running)."""

    def __init__(self, kind: str, detail: str) -> None:
        assert kind in SIGNING_ERROR_KINDS
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


class SigningMeter(Protocol):
    """A meter that signs. Also a `Meter`: `read_snapshot()` gives the live values."""

    model: MeterModel

    async def read_snapshot(self) -> MeterReading: ...

    def close(self) -> None: ...

    async def public_key(self) -> MeterKey: ...

    async def clock_state(self) -> MeterClock: ...

    async def start_transaction(
        self, transaction_id: str, identification: Identification, tariff_text: str
    ) -> SignedReading:
        """Begin a transaction on the meter; the signed begin document (TX=B)."""
        ...

    async def stop_transaction(self, transaction_id: str) -> SignedReading:
        """End the running transaction; the signed end document (TX=E)."""
        ...

    async def open_transaction(self) -> str | None:
        """The id of the transaction the meter holds (after a power loss or a crash of
        the terminal), None when it holds none."""
        ...

    async def begin_document(self, transaction_id: str) -> SignedReading:
        """The signed begin document of the transaction the meter holds now (the
        terminal died between asking for the begin and journaling it: fetched again so
        the journal holds every document); SigningError("state") when it holds none."""
        ...

    async def abort_transaction(self, transaction_id: str, reason: TxReason) -> SignedReading:
        """End a transaction the meter still holds after a restart, with an OCMF end
        reason (POWER_FAILURE after a power loss, ABORT after an error): the signed
        end document."""
        ...
