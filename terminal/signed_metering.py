"""The signing meter's transactions for the daemon (Eichrecht, docs/eichrecht.md).

Provides `SignedMetering`, built by the composition root when the meter signs:
- `begin(action, live)` / `end(action, live)`: one request to the meter at a time; the
  document it returns is checked (terminal.signed.verify: signature with the meter's
  key, pagination after the meter's previous document, error flags, status, and for an
  end the begin/end pairing) and journaled as it came, in its own transaction, before
  anything is done with it; the answer is a `SignedStart` / `SignedEnd` event for the
  session machine. A begin whose document fails its checks is ended on the meter at
  once (reason A) and the session gets no energy; an end that cannot be signed or
  fails its checks makes the session not billable by energy. Never a value of our own.
- `reconcile(keep)`: a transaction the meter still holds that no open session waits
  for (after a power loss, a lost connection, a crash) is ended with reason P or A and
  its document journaled under its session (the transaction id is the session id);
- `refresh()`: the meter's public key and clock, kept for the status, the screen and
  the checks (again every minute by `run()`); a key that changes under the same meter
  serial refuses new sessions (`refusal()`, a gate of the daemon) and tells the operator;
- `summary(session_id)`: what the bill needs (terminal.signed_billing.SignedSummary);
- `status()`: the `metering` block of the status snapshot.

Failures are reported, never raised: the meter unreachable, a timeout, a refusal or an
unreadable answer give a problem text in the event and an audit event for the operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from drivers.meter.reading import MeterReading
from drivers.meter.signing import (
    Identification,
    MeterClock,
    MeterKey,
    SignedReading,
    SigningError,
    SigningMeter,
    TxReason,
)
from terminal.kernel.clock import Clock
from terminal.kernel.clocksync import terminal_clock_synced
from terminal.kernel.logsetup import fields, get_logger
from terminal.session import Authorization, BeginSigned, EndSigned, SignedEnd, SignedStart
from terminal.signed.verify import verify_document, verify_pair
from terminal.signed_billing import SignedSummary
from terminal.store import AsyncStore

log = get_logger("signed")
END_ATTEMPTS = 3  # an end is asked this often before the session is not billed by energy
KEY_CHANGED = ("the meter's public key is not the registered one: new sessions refused "
               "until a technician has checked the meter and set [meter] public_key to its "
               "key (docs/eichrecht.md)")


def identification(auth: Authorization | None) -> Identification:
    """The OCMF identification of a session (never a card number: an ad-hoc card
    payment is identified by its payment reference)."""
    if auth is None:
        return Identification(False, "NONE", (), "NONE", "")
    level = "UNKNOWN" if auth.recheck else "VERIFIED"
    if auth.source == "card":
        return Identification(True, level, ("OCPP_AUTH",), "CARD_TXN_NR",
                              auth.payment_reference or "")
    if auth.source == "rfid":
        return Identification(True, level, ("RFID_PLAIN", "OCPP_AUTH"), "ISO14443",
                              auth.id_token)
    if auth.source in ("app", "remote"):
        return Identification(True, level, ("OCPP_RS",), "CENTRAL", auth.id_token)
    return Identification(True, "HEARSAY", (), "LOCAL", auth.id_token)


def signed_meter_value(doc: SignedReading, key: MeterKey) -> dict[str, str]:
    """OCPP 2.x SignedMeterValueType."""
    return {"signedMeterData": doc.ocmf, "signingMethod": key.signing_method,
            "encodingMethod": key.encoding_method, "publicKey": key.public_key_hex}


class SignedMetering:
    def __init__(self, meter: SigningMeter, store: AsyncStore, clock: Clock, *,
                 timeout_s: float, tariff_text: Callable[[Authorization | None], str],
                 audit: Callable[[str, dict[str, Any]], Any],
                 registered_key_hex: str = "") -> None:
        self.meter = meter
        self.store = store
        self.clock = clock
        self.timeout_s = timeout_s
        self.tariff_text = tariff_text
        self.audit = audit  # (kind, detail) -> the operator is told (an audit event)
        self.key: MeterKey | None = None
        self.meter_clock: MeterClock | None = None
        self.fault: str | None = None
        self.registered_key_hex = registered_key_hex.strip().upper()  # [meter] public_key
        self.key_changed = False  # refuses new sessions
        self._lock = asyncio.Lock()
        self._rows: dict[str, list[dict[str, Any]]] = {}  # per session, journaled

    # ---- meter facts -------------------------------------------------------------------

    async def refresh(self) -> None:
        try:
            key = await asyncio.wait_for(self.meter.public_key(), self.timeout_s)
            self.meter_clock = await asyncio.wait_for(self.meter.clock_state(), self.timeout_s)
        except (SigningError, TimeoutError, OSError) as exc:
            self.fault = f"meter key/clock unavailable: {_why(exc)}"
            return
        if self.registered_key_hex:
            registered: MeterKey | None = MeterKey(self.registered_key_hex,
                                                   key.signing_method, key.meter_serial)
        else:
            registered = self.key or await self._journaled_key(key.meter_serial)
        if registered is not None and key.meter_serial == registered.meter_serial \
                and key.public_key_hex != registered.public_key_hex:
            if not self.key_changed:  # told once, not at every refresh
                self.key_changed = True
                await self._tell("signed_meter_key_changed", {
                    "meter_serial": key.meter_serial, "public_key": key.public_key_hex,
                    "previous": registered.public_key_hex})
                log.error("the meter's public key changed; new sessions refused",
                          extra=fields(meter_serial=key.meter_serial))
            self.key = registered  # documents are checked with the key it had
            return
        self.fault = KEY_CHANGED if self.key_changed else None
        self.key = key

    async def _journaled_key(self, meter_serial: str) -> MeterKey | None:
        """The key the journal's newest document of this meter was checked with: a key
        that changed while the terminal was down is caught at the first refresh."""
        last = await self.store.call(self.store.store.last_signed_value, meter_serial)
        if last is None:
            return None
        return MeterKey(last["public_key"], last["signing_method"], meter_serial)

    def refusal(self) -> str | None:
        """A gate of new sessions: refused while the meter's key is not the one it had
        (a swapped or tampered meter: documents it signs would not verify with the key
        registered for this station)."""
        return KEY_CHANGED if self.key_changed else None

    async def run(self, interval_s: float) -> None:
        """Keep the key and the clock state fresh (the screen, the status, the checks):
        every `interval_s`, between two transaction requests, never during one."""
        while True:
            await self.clock.sleep(interval_s)
            if not self._lock.locked():
                async with self._lock:
                    await self.refresh()

    def status(self) -> dict[str, Any]:
        key, clock = self.key, self.meter_clock
        synced = terminal_clock_synced()
        meter_clock = clock.sync.value if clock else None
        return {
            "signed": True,
            "meter_model": self.meter.model.name,
            "meter_serial": key.meter_serial if key else None,
            "public_key": key.public_key_hex if key else None,
            "signing_method": key.signing_method if key else None,
            "meter_clock": meter_clock,
            "terminal_clock_synced": synced,
            "clock_trusted": bool(synced) and meter_clock == "S",
            "fault": self.fault,
        }

    # ---- transactions ------------------------------------------------------------------

    async def begin(self, action: BeginSigned, live: MeterReading | None) -> SignedStart:
        session_id = action.session_id
        async with self._lock:
            await self.reconcile_locked(keep=None)
            if self.key is None:
                await self.refresh()
            key = self.key
            if key is None:
                return await self._start_failed(session_id, self.fault or "no public key")
            try:
                doc = await asyncio.wait_for(self.meter.start_transaction(
                    session_id, identification(action.authorization),
                    self.tariff_text(action.authorization)[:250]), self.timeout_s)
            except (SigningError, TimeoutError, OSError) as exc:
                await self.reconcile_locked(keep=None)  # a begin the meter did take
                return await self._start_failed(session_id, f"begin: {_why(exc)}")
            problems = await self._journal(session_id, "begin", doc, key, TxReason.BEGIN)
            if problems:
                await self._end_on_meter(session_id, TxReason.ABORT, key)
                return await self._start_failed(session_id, "; ".join(problems))
            now = self.clock.now()
            return SignedStart(now, session_id, doc.as_reading(now, live),
                               signed_meter_value(doc, key))

    async def end(self, action: EndSigned, live: MeterReading | None) -> SignedEnd:
        session_id = action.session_id
        async with self._lock:
            key = self.key
            doc: SignedReading | None = None
            why = "no public key"
            if key is not None:
                await self._journal_missing_begin(session_id, key)
            for attempt in range(END_ATTEMPTS if key else 0):
                if attempt:
                    await self.clock.sleep(1.0)
                try:
                    doc = await self._end_request(session_id, TxReason(action.reason))
                    break
                except (SigningError, TimeoutError, OSError) as exc:
                    why = _why(exc)
                    if isinstance(exc, SigningError) and exc.kind in ("state", "refused"):
                        break
            if doc is None or key is None:
                problem = f"the end was not signed: {why}"
                await self._tell("signed_meter_end_missing",
                                 {"session_id": session_id, "problem": problem})
                return SignedEnd(self.clock.now(), session_id, None, None, problem)
            problems = await self._journal(session_id, "end", doc, key, None)
            now = self.clock.now()
            signed = signed_meter_value(doc, key)
            if problems:
                return SignedEnd(now, session_id, None, signed, "; ".join(problems))
            return SignedEnd(now, session_id, doc.as_reading(now, live), signed)

    async def reconcile(self, keep: str | None) -> None:
        async with self._lock:
            await self.reconcile_locked(keep)

    async def reconcile_locked(self, keep: str | None) -> None:
        """End a transaction the meter holds that no session waits for (`keep`: the open
        session's, ended by its own EndSigned)."""
        try:
            held = await asyncio.wait_for(self.meter.open_transaction(), self.timeout_s)
        except (SigningError, TimeoutError, OSError) as exc:
            log.warning("cannot ask the meter for an open transaction",
                        extra=fields(error=_why(exc)))
            return
        if held is None or held == keep:
            return
        if self.key is None:
            await self.refresh()
        if self.key is not None:
            await self._end_on_meter(held, TxReason.POWER_FAILURE, self.key)

    def summary(self, session_id: str) -> SignedSummary | None:
        return SignedSummary.from_rows(self._rows.get(session_id, []))

    def forget(self, session_id: str) -> None:
        self._rows.pop(session_id, None)

    # ---- inside ------------------------------------------------------------------------

    async def _journal_missing_begin(self, transaction_id: str, key: MeterKey) -> None:
        """Before a transaction is ended: when its begin never reached the journal (the
        terminal died between asking for it and journaling it), fetch it from the meter
        and journal it, so the journal holds every document the meter signed."""
        rows = await self._session_rows(transaction_id)
        if any(r["kind"] == "begin" for r in rows):
            return
        try:
            doc = await asyncio.wait_for(self.meter.begin_document(transaction_id),
                                         self.timeout_s)
        except (SigningError, TimeoutError, OSError) as exc:
            log.warning("the begin of a held transaction cannot be fetched",
                        extra=fields(session=transaction_id, error=_why(exc)))
            return
        await self._journal(transaction_id, "begin", doc, key, TxReason.BEGIN)

    async def _end_request(self, session_id: str, reason: TxReason) -> SignedReading:
        if reason in (TxReason.ABORT, TxReason.POWER_FAILURE):
            call = self.meter.abort_transaction(session_id, reason)
        else:
            call = self.meter.stop_transaction(session_id)
        return await asyncio.wait_for(call, self.timeout_s)

    async def _end_on_meter(self, session_id: str, reason: TxReason, key: MeterKey) -> None:
        """End a transaction nobody bills from (a failed begin, one left after a power
        loss); its documents are journaled all the same (gap-free)."""
        await self._journal_missing_begin(session_id, key)
        try:
            doc = await self._end_request(session_id, reason)
        except (SigningError, TimeoutError, OSError) as exc:
            log.error("the meter's transaction could not be ended",
                      extra=fields(session=session_id, error=_why(exc)))
            return
        await self._journal(session_id, "late_end", doc, key, None)
        await self._tell("signed_meter_transaction_closed",
                         {"session_id": session_id, "reason": reason.value,
                          "pagination": doc.pagination})

    async def _journal(self, session_id: str, kind: str, doc: SignedReading, key: MeterKey,
                       expected: TxReason | None) -> list[str]:
        """Check a document and journal it as it came; the problems found. A document
        already journaled for the session (an end asked again after a restart: the meter
        answers the end it signed before) is not journaled twice."""
        store = self.store.store
        rows = await self._session_rows(session_id)
        if (same := next((r for r in rows if r["ocmf"] == doc.ocmf), None)) is not None:
            return list(same["problems"])
        last = await self.store.call(store.last_signed_value, doc.meter_serial)
        previous = SignedReading.from_ocmf(last["ocmf"]) if last else None
        problems = list(verify_document(doc, key, previous))
        if expected is not None and doc.tx is not expected:
            problems.append(f"reading reason {doc.tx.value}, expected {expected.value}")
        if kind == "end":
            begin = next((r for r in rows if r["kind"] == "begin"), None)
            if begin is None:
                problems.append("no signed begin to pair the end with")
            else:
                problems += verify_pair(SignedReading.from_ocmf(begin["ocmf"]), doc, key)
        synced = terminal_clock_synced()
        now = self.clock.now()
        await self.store.call(store.add_signed_value, session_id, kind, doc, key, problems, now,
                              synced)
        rows.append({
            "kind": kind, "meter_serial": doc.meter_serial, "public_key": key.public_key_hex,
            "signing_method": key.signing_method, "ocmf": doc.ocmf,
            "energy_wh": str(doc.energy_wh), "clock": doc.clock.value,
            "terminal_clock_synced": None if synced is None else int(synced),
            "problems": problems})
        if problems:
            log.error("signed meter value failed its checks",
                      extra=fields(session=session_id, kind=kind, problems="; ".join(problems)))
            await self._tell("signed_meter_value_invalid",
                             {"session_id": session_id, "kind": kind, "problems": problems,
                              "pagination": doc.pagination})
        return problems

    async def _session_rows(self, session_id: str) -> list[dict[str, Any]]:
        """The session's documents: this run's, or the journal's after a restart."""
        if session_id not in self._rows:
            rows = await self.store.call(self.store.store.signed_values, session_id)
            self._rows[session_id] = [*rows]
        return self._rows[session_id]

    async def _start_failed(self, session_id: str, problem: str) -> SignedStart:
        log.error("the meter did not sign the start", extra=fields(session=session_id,
                                                                   problem=problem))
        await self._tell("signed_meter_begin_failed", {"session_id": session_id,
                                                       "problem": problem})
        return SignedStart(self.clock.now(), session_id, None, None, problem)

    async def _tell(self, kind: str, detail: dict[str, Any]) -> None:
        try:
            await self.audit(kind, detail)
        except Exception:  # the operator's notice must never stop billing
            log.exception("audit event not recorded", extra=fields(kind=kind))


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
