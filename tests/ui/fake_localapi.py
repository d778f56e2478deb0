"""A stand-in for the daemon's local API (docs/local-api.md) for the layout tests: it
serves whatever snapshot the test sets, so every screen can be put up in a second
without a simulator, a session or a technician card.

`FakeLocalApi(path).start()`; `set_state(**changes)` replaces fields of the snapshot and
pushes it; `push(message)` pushes an event (a `tap`). The station meters with a signing
meter: the snapshot has `metering` and receipts a `signed_meter` (`signed_meter`, the
attribute, replaces it; None: a plain meter's receipt). It answers `subscribe`,
`language` (the snapshot follows), `receipt` (a receipt shaped like the daemon's, in the
language asked for), `ack_receipt`, `report_problem`, `stop` and the technician's
`service_login` (any PIN), `service_diagnostics` (`diagnostics`), `service_receipt`,
`service_action`, `service_report_daily` (`daily`: `daily_reply()`, the last 30 days)
and `service_logout`, and the driver's `vat_number` (checked with the
kernel's rule and against the running session, as the daemon does; each one asked for
is kept in `vat_requests`). Nothing else is checked: it is a screen's backdrop.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from terminal.kernel.vat import VatNumberError, check_vat_number
from tests.unit.metering_helpers import metering, signed_meter

SESSION = "d049f413-c9f1-4d4d-bca7-3a241559d6ca"
PRICE_TEXTS = {
    "en": ["0.59 EUR/kWh incl. 19 % VAT",
           "Idle fee 0.10 EUR/min incl. 19 % VAT (after 10 min)"],
    "de": ["0,59 EUR/kWh inkl. 19 % MwSt.",
           "Blockiergebühr 0,10 EUR/min inkl. 19 % MwSt. (nach 10 min)"],
    "fr": ["0,59 EUR/kWh TVA 19\u00a0% incluse",
           "Frais d'occupation 0,10 EUR/min TVA 19\u00a0% incluse (après 10 min)"],
    "nl": ["0,59 EUR/kWh incl. 19 % btw",
           "Parkeertarief 0,10 EUR/min incl. 19 % btw (na 10 min)"],
}
PUSHES_STATE = ("language", "ack_receipt", "service_login", "service_logout", "budget",
                "vat_number")
RECEIPT_URL = f"https://pay.evterm.example/receipt/{SESSION}"


def base_state() -> dict[str, Any]:
    return {
        "station_id": "DE*EVT*E0001*1", "phase": "Available", "session_id": None,
        "plugged": False, "output_on": False, "energy_wh": None, "power_w": None,
        "cost": None, "cost_cap": None, "energy_cap_wh": None, "stop_reason": None,
        "since": "2026-12-02T10:00:00Z", "meter_fault": None, "charger_fault": None,
        "price_list": {"tariff_id": "DE-HPC-DEMO", "currency": "EUR", "texts": PRICE_TEXTS},
        "backend_online": True, "accepting_sessions": True, "card_payment": True,
        "readers": {"ACS ACR1252 00 00": "ready"}, "language": "en",
        "languages": ["en", "de", "fr", "nl"], "operator": "Autobahn Fast Charge GmbH",
        "support_phone": "+49 30 1234 5678", "now": "2026-12-02T10:30:00Z",
        "session_started_at": None, "elapsed_s": None, "idle": None,
        "receipt_pending": None, "out_of_service": None,
        "app_start": {"url": "https://pay.evterm.example/start/DE*EVT*E0001*1/K7Q2MZ4P",
                      "code": "K7Q2MZ4P"},
        "service": {"state": "none", "technician": None, "locked_until": None},
        "metering": metering(),
        "card_hold": {"amount": "50.00", "currency": "EUR",
                      "choices": ["20.00", "50.00", "80.00"], "budget": None,
                      "grace_s": 180.0},
    }


def daily_reply(days: int = 30, empty: bool = False) -> dict[str, Any]:
    """A `service_report_daily` reply: 30 days from 2026-11-03 to 2026-12-02, sessions on
    most days (none on the 10th), a fault on two; `empty`: all zeros."""
    rows = []
    start = date(2026, 11, 3)
    for index in range(days):
        sessions = 0 if empty or index == 9 else index % 5 + 1
        rows.append({"date": (start + timedelta(days=index)).isoformat(),
                     "sessions": sessions,
                     "energy_wh": str(Decimal(sessions) * Decimal("23456.7")),
                     "gross": str(Decimal(sessions) * Decimal("13.84")),
                     "faults": 1 if not empty and index in (4, 21) else 0})
    return {"days": days, "first_day": rows[0]["date"], "timezone": "Europe/Berlin",
            "currency": "EUR", "rows": rows}


def receipt_text(language: str) -> str:
    """42-character lines like the printed receipt (the words do not matter here)."""
    sep = "." if language == "en" else ","
    rows = [("Station", "DE*EVT*E0001*1"), ("Start", "02/12/2026 10:51:55"),
            ("Stop", "02/12/2026 11:02:00"), ("Duration", "0:10:05"),
            ("Meter", "20260001"), ("Meter start", f"12 345{sep}678 kWh"),
            ("Meter stop", f"12 361{sep}553 kWh"), ("Energy", f"15{sep}875 kWh"),
            ("Energy 0.4958 EUR/kWh", f"7{sep}87 EUR"), ("Subtotal", f"7{sep}87 EUR"),
            ("VAT 19 %", f"1{sep}50 EUR"), ("Total incl. VAT", f"9{sep}37 EUR"),
            ("Payment", "Visa \u2022\u2022\u2022\u2022 1111"),
            ("Authorised", f"50{sep}00 EUR")]
    lines = ["Charging receipt", "Autobahn Fast Charge GmbH"]
    lines += [f"{label:<20}{value:>22}"[:42] for label, value in rows]
    lines += ["-" * 42, "Receipt online:", RECEIPT_URL[:42], RECEIPT_URL[42:]]
    return "\n".join(lines) + "\n"


def receipt_body(language: str, signed: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"schema_version": 1, "language": language, "session_id": SESSION,
            "currency": "EUR", "energy_wh": "15875", "energy_kwh": "15.875",
            "total": {"excl_vat": "7.87", "incl_vat": "9.37"}, "amount_charged": "9.37",
            # a refund: the "charged" row is shown too (the tallest summary)
            "amount_refunded": "0.37", "amount_paid": "9.00",
            "payment": {"method": "card", "card_scheme": "Visa", "card_last4": "1111",
                        "reference": "A1B2C3", "authorised_amount": "50.00"},
            "receipt_url": RECEIPT_URL}
    if signed is not None:
        body["signed_meter"] = signed
    return body


class FakeLocalApi:
    def __init__(self, path: str, diagnostics: dict[str, Any] | None = None) -> None:
        self.path = path
        self.state = base_state()
        self.diagnostics = diagnostics or {}
        self.signed_meter: dict[str, Any] | None = signed_meter()
        self.budgets: list[Any] = []  # the `budget` ops received, their amounts
        self.vat_requests: list[dict[str, Any]] = []
        self.daily: dict[str, Any] = daily_reply()  # the last 30 days (service_report_daily)
        self._subscribers: list[socket.socket] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def start(self) -> FakeLocalApi:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        sock.listen(4)
        self._sock = sock
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        with self._lock:
            for conn in self._subscribers:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._subscribers.clear()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def set_state(self, **changes: Any) -> None:
        with self._lock:
            self.state.update(changes)
        self.push({"type": "state", "state": self.state})

    def reset(self, **changes: Any) -> None:
        """The base snapshot (idle, online, in service) with `changes`, pushed."""
        language = self.state.get("language", "en")
        with self._lock:
            self.state = {**base_state(), "language": language, **changes}
        self.push({"type": "state", "state": self.state})

    def push(self, message: dict[str, Any]) -> None:
        line = json.dumps(message).encode() + b"\n"
        with self._lock:
            for conn in list(self._subscribers):
                try:
                    conn.sendall(line)
                except OSError:
                    self._subscribers.remove(conn)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()  # type: ignore[union-attr]
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn.makefile("rb") as lines:
            for line in lines:
                request = json.loads(line)
                reply = self._answer(conn, request)
                if "id" in request:
                    reply["id"] = request["id"]
                with self._lock:
                    conn.sendall(json.dumps(reply).encode() + b"\n")
                if request.get("op") in PUSHES_STATE:
                    self.push({"type": "state", "state": self.state})

    def _answer(self, conn: socket.socket, request: dict[str, Any]) -> dict[str, Any]:
        op = str(request.get("op"))
        reply: dict[str, Any] = {"ok": True, "op": op}
        if op == "subscribe":
            with self._lock:
                self._subscribers.append(conn)
            reply["state"] = self.state
        elif op == "language":
            self.state["language"] = request.get("language")
            reply |= {"language": request.get("language"), "state": self.state}
        elif op in ("receipt", "service_receipt"):
            language = str(request.get("language") or "en")
            reply |= {"session_id": SESSION,
                      "receipt": receipt_body(language, self.signed_meter),
                      "text": receipt_text(language)}
        elif op == "budget":  # the daemon's rule is tested in tests/unit/test_holds_daemon.py
            amount = request.get("amount")
            hold = dict(self.state["card_hold"])
            hold |= {"budget": amount, "amount": amount or "50.00"}
            self.state["card_hold"] = hold
            self.budgets.append(amount)
            reply |= {"amount": amount, "state": self.state}
        elif op == "ack_receipt":
            self.state["receipt_pending"] = None
            reply |= {"session_id": SESSION, "state": self.state}
        elif op == "report_problem":
            reply["reference"] = 4711
        elif op == "vat_number":
            reply = self._vat_number(request)
        elif op == "service_login":
            self.state["service"] = {"state": "active", "technician": "\u2026EEFF",
                                     "locked_until": None}
            reply |= {"token": "layout-test-token", "technician": "\u2026EEFF",
                      "expires_in_s": 600}
        elif op == "service_diagnostics":
            reply["diagnostics"] = self.diagnostics
        elif op == "service_report_daily":
            reply |= self.daily
        elif op == "service_sessions":
            reply["sessions"] = []
        elif op == "service_action":
            reply["action"] = request.get("action")
        elif op == "service_logout":
            self.state["service"] = {"state": "none", "technician": None,
                                     "locked_until": None}
        return reply

    def _vat_number(self, request: dict[str, Any]) -> dict[str, Any]:
        """As the daemon's driver API: the number by the kernel's rule, the open session."""
        self.vat_requests.append(dict(request))
        session_id = request.get("session_id")
        if session_id is None or session_id != self.state.get("session_id"):
            return {"ok": False, "op": "vat_number",
                    "error": f"session_id: {session_id!r} is not the open session on the "
                             f"screen"}
        try:
            number = check_vat_number(request.get("vat_number"))
        except VatNumberError as exc:
            return {"ok": False, "op": "vat_number", "error": str(exc)}
        return {"ok": True, "op": "vat_number", "vat_number": number, "state": self.state}
