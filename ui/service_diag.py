"""The service menu's diagnostics as text: one block of lines per section (meter,
power unit, readers, backend link, storage, software, recent faults) and one row per
recent session, from the `diagnostics` of the daemon's `service_diagnostics` reply
(terminal/service.py), in the screen's language. No Kivy; ui/service_view.py puts the
blocks into the service menu's widgets.

Provides `DiagnosticsText(diagnostics, language, now, timezone=None, metering=None)`
(timezone: the status snapshot's, else the diagnostics' own; metering: the snapshot's
`metering`, used when the diagnostics carry none) with `section(name)` (a name of
DIAG_SECTIONS; "signing" is the signing meter: model, serial, signature method, both
clocks, fault; empty when the daemon sends no `metering`), `signing_key()` (its public
key in full, in blocks of 4), `session_row(session)` and `clock(iso_time)`; `recent_sessions`,
`session_id`, `export_root` (`[service] export_allowed_root` from the diagnostics'
config).

Each section shows its known fields in words ("Serial number: X (as expected)") and
then every other field the daemon sends, so a field added later is seen without a UI
change: numbers on one line ("polls 8123 · unit id 1"), the rest as "name: value";
a field named with its unit shows the unit after the value ("poll interval 1 s",
"min free storage 100 MB"); empty fields are left out. Times are shown in the station's
local time with its UTC offset, as the receipts print them (`[station] timezone`, from
the diagnostics; UTC until they came): "15:25:03 +01:00" on the day of `now`, else
"2026-11-20 15:25 +01:00".

On failure: a missing, malformed or oddly typed field shows as "-"; a section that
cannot be rendered at all says so (logged), the other sections are still shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from terminal.kernel.formatting import format_age, local_clock, station_zone
from terminal.kernel.locales import get_locale
from terminal.kernel.logsetup import fields, get_logger
from ui.i18n import amount, energy, format_power, supported, tr
from ui.metering import key_blocks, technician_lines
from ui.values import decimal_of, time_of

log = get_logger("ui.service")

DIAG_SECTIONS = ("meter", "signing", "charger", "readers", "backend", "storage", "software",
                 "faults")
FAULTS_SHOWN = 6


class DiagnosticsText:
    def __init__(self, diagnostics: Mapping[str, Any] | None, language: str,
                 now: datetime | None, timezone: object = None,
                 metering: object = None) -> None:
        self.diag: Mapping[str, Any] = diagnostics if isinstance(diagnostics, Mapping) \
            else {}
        own = self.diag.get("metering")
        chosen = own if isinstance(own, Mapping) else metering
        self.metering: Mapping[str, Any] | None = chosen if isinstance(chosen, Mapping) \
            else None
        self.language = supported(language)
        self.now = now
        self.zone = station_zone(timezone) if timezone else diagnostics_zone(self.diag)

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.language, **values)

    def section(self, name: str) -> str:
        """The lines of one section of DIAG_SECTIONS, joined by newlines."""
        try:
            lines = getattr(self, f"_diag_{name}")()
        except Exception:  # one odd section must not hide the others
            log.exception("diagnostics section could not be shown", extra=fields(section=name))
            lines = [self.t("svc_unreadable")]
        return "\n".join(lines) or "-"

    # ---- formats ----

    def yes_no(self, value: Any) -> str:
        if value is None:
            return "-"
        return self.t("svc_yes" if value else "svc_no")

    def number(self, value: Any, places: int) -> str:
        number = decimal_of(value)
        if number is None:
            return "-"
        quantum = Decimal(1).scaleb(-places)
        return get_locale(self.language).number(number.quantize(quantum), places)

    def clock(self, value: Any) -> str:
        """A daemon time in the station's time: "15:25:03 +01:00" today, else
        "2026-11-20 15:25 +01:00"."""
        moment = time_of(value)
        if moment is None:
            return "-" if value is None else str(value)
        return local_clock(moment, self.zone, self.language, self.now)

    def value(self, value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return self.yes_no(value)
        if isinstance(value, Mapping):  # counters: {"polls": 5, "errors_by_kind": {...}}
            parts = []
            for key, item in value.items():
                if isinstance(item, Mapping):
                    parts += [self.quantity(k, v) for k, v in item.items()
                              if not isinstance(v, Mapping | list)]
                elif not isinstance(item, list) and item is not None:
                    parts.append(self.quantity(key, item))
            return ", ".join(parts)
        if isinstance(value, list):
            return str(len(value))
        if isinstance(value, str) and time_of(value) is not None and "T" in value:
            return self.clock(value)
        return str(value)

    def rest(self, section: Mapping[str, Any], used: set[str]) -> list[str]:
        """Every field not shown yet: counters on one line ("polls 8123 · errors 2"),
        anything else as "name: value" (what the daemon adds later shows up too)."""
        lines, counters = [], []
        for key, value in section.items():
            if key in used or isinstance(value, list) or value is None:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                counters.append(self.quantity(key, value))
                continue
            text = self.value(value)
            if text:
                lines.append(f"{_label(key)}: {text}")
        if counters:
            lines.append(" · ".join(counters))
        return lines

    def quantity(self, key: Any, value: Any) -> str:
        """A field and its value, the unit of its name after the value: "poll interval
        1 s", "min free storage 100 MB", "polls 8123"."""
        name, unit = label_and_unit(key)
        shown = self.value(value)
        if isinstance(value, float) and not isinstance(value, bool):
            shown = f"{value:g}"
        return f"{name} {shown} {unit}" if unit else f"{name} {shown}"

    # ---- sections ----

    def _section(self, name: str) -> Mapping[str, Any]:
        value = self.diag.get(name)
        return value if isinstance(value, Mapping) else {}

    def _diag_meter(self) -> list[str]:
        meter = self._section("meter")
        used = {"model", "serial", "expected_serial", "last_reading", "fault"}
        lines = [self.t("svc_meter_model", model=meter.get("model") or "-")]
        serial, expected = meter.get("serial"), meter.get("expected_serial")
        if expected in (None, ""):
            lines.append(self.t("svc_meter_serial", serial=serial or "-"))
        elif str(serial) == str(expected):
            lines.append(self.t("svc_meter_serial_match", serial=serial))
        else:
            lines.append(self.t("svc_meter_serial_mismatch", serial=serial or "-",
                                expected=expected))
        reading = meter.get("last_reading")
        if not isinstance(reading, Mapping):
            lines.append(self.t("svc_meter_no_reading"))
        else:
            energy_wh = decimal_of(reading.get("energy_wh"))
            power_w = decimal_of(reading.get("power_w"))
            lines.append(" · ".join((
                energy(energy_wh, self.language) if energy_wh is not None else "- kWh",
                format_power(power_w, self.language) if power_w is not None else "- kW")))
            lines.append(f"{self.number(reading.get('voltage_v'), 1)} V · "
                         f"{self.number(reading.get('current_a'), 1)} A")
            lines.append(self.t("svc_meter_at", time=self.clock(reading.get("at"))))
        lines.append(self._fault(meter.get("fault")))
        return lines + self.rest(meter, used)

    def _diag_signing(self) -> list[str]:
        metering = self.metering
        used = {"signed", "meter_model", "meter_serial", "public_key", "signing_method",
                "meter_clock", "terminal_clock_synced", "clock_trusted", "fault"}
        lines = technician_lines(metering, self.language)
        return lines + self.rest(metering, used) if metering is not None else lines

    def signing_key(self) -> str:
        """The signing meter's public key in full, in blocks of 4 ("" for none)."""
        metering = self.metering
        if metering is None or metering.get("signed") is not True:
            return ""
        return key_blocks(metering.get("public_key"))

    def _fault(self, fault: Any) -> str:
        return self.t("svc_fault", fault=self.t("svc_none") if not fault else self.value(fault))

    def _diag_charger(self) -> list[str]:
        charger = self._section("charger")
        lines = [self.t("svc_charger_state", state=charger.get("ev_state") or "-"),
                 self.t("svc_charger_output",
                        commanded=self.on_off(charger.get("output_commanded")),
                        confirmed=self.on_off(charger.get("output_confirmed"))),
                 self._fault(charger.get("fault"))]
        used = {"ev_state", "output_commanded", "output_confirmed", "fault"}
        return lines + self.rest(charger, used)

    def on_off(self, value: Any) -> str:
        if value is None:
            return "-"
        return self.t("svc_on" if value else "svc_off")

    def _diag_readers(self) -> list[str]:
        """{"readers": {name: {"state", "last_tap"}}, "pcsc", ...}."""
        section = self._section("readers")
        extra = self.rest(section, {"readers"})
        readers = section.get("readers")
        lines = []
        for name, reader in (readers.items() if isinstance(readers, Mapping) else ()):
            if isinstance(reader, Mapping):
                text = str(reader.get("state") or "-")
                if reader.get("detail"):
                    text = f"{text} ({reader['detail']})"
                tap = reader.get("last_tap")
                if isinstance(tap, Mapping) and tap.get("at"):
                    text = self.t("svc_reader_last_tap", state=text,
                                  time=self.clock(tap.get("at")),
                                  result=tap.get("result") or "-")
            else:
                text = str(reader)
            lines.append(f"{'pcscd' if name == '*' else name}: {text}")
        return (lines or [self.t("svc_no_readers")]) + extra

    def _diag_backend(self) -> list[str]:
        backend = self._section("backend")
        depth = backend.get("outbox_depth")
        age_s = backend.get("oldest_undelivered_age_s")
        connected = backend.get("connected")
        lines = [self.t("svc_backend_link", kind=backend.get("kind") or "-",
                        connected=self.t("svc_connected") if connected
                        else self.t("svc_not_connected")),
                 self.t("svc_backend_ack", time=self.clock(backend.get("last_ack_at")))]
        if not depth:
            lines.append(self.t("svc_backend_outbox_empty"))
        else:
            lines.append(self.t("svc_backend_outbox", depth=depth, age=_age(age_s)))
        used = {"kind", "connected", "last_ack_at", "outbox_depth",
                "oldest_undelivered_age_s", "oldest_undelivered_at"}
        return lines + self.rest(backend, used)

    def _diag_storage(self) -> list[str]:
        storage = self._section("storage")
        lines = [self.t("svc_storage_db", size=self.bytes(storage.get("database_bytes"))),
                 self.t("svc_storage_free", size=self.bytes(storage.get("free_bytes"))),
                 self.t("svc_storage_dir", path=storage.get("state_dir") or "-")]
        used = {"database_bytes", "free_bytes", "state_dir"}
        return lines + self.rest(storage, used)

    def bytes(self, value: Any) -> str:
        number = decimal_of(value)
        if number is None:
            return "-"
        for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
            if abs(number) >= scale:
                return f"{self.number(number / scale, 1)} {unit}"
        return f"{int(number)} B"

    def _diag_software(self) -> list[str]:
        software = self._section("software")
        lines = [self.t("svc_software_version", version=software.get("version") or "-"),
                 self.t("svc_python_version", version=software.get("python") or "-")]
        return lines + self.rest(software, {"version", "python"})

    def _diag_faults(self) -> list[str]:
        faults = self.diag.get("recent_faults")  # newest first, as the daemon sorts them
        if not isinstance(faults, list) or not faults:
            return [self.t("svc_no_faults")]
        items = [f for f in faults if isinstance(f, Mapping)]
        lines = []
        for fault in items[:FAULTS_SHOWN]:  # {"at", "source", "event", "fault"}
            head = [self.clock(fault.get("at")), fault.get("source"), fault.get("event")]
            detail = fault.get("fault")
            text = " ".join(str(part) for part in head if part)
            lines.append(f"{text}: {detail}" if detail else text)
        if len(items) > FAULTS_SHOWN:
            lines.append(self.t("svc_more", count=len(items) - FAULTS_SHOWN))
        return lines

    # ---- sessions ----

    def session_row(self, session: Mapping[str, Any]) -> str:
        """Two lines: "13:02:11 UTC · 42.316 kWh · 24.97 EUR", "StoppedByEV · 5b0e6a6e"."""
        started = session.get("started_at") or session.get("opened_at")  # never started
        energy_wh = decimal_of(session.get("energy_wh"))
        total = session.get("total")
        currency = session.get("currency")
        total_amount = decimal_of(total)
        if total_amount is not None and isinstance(currency, str):
            total_text = amount(total_amount, currency, self.language)
        else:
            total_text = "-" if total is None else str(total)
        first = " · ".join((self.clock(started),
                            energy(energy_wh, self.language) if energy_wh is not None
                            else "- kWh", total_text))
        reason = session.get("stop_reason") or session.get("phase") or "-"
        short_id = (session_id(session) or "-")[:8]
        return f"{first}\n{reason} · {short_id}"


def recent_sessions(diagnostics: Mapping[str, Any] | None, limit: int = 10
                    ) -> list[Mapping[str, Any]]:
    """The diagnostics' `recent_sessions` (newest first, as the daemon lists them)."""
    if not isinstance(diagnostics, Mapping):
        return []
    sessions = diagnostics.get("recent_sessions")
    if not isinstance(sessions, list):
        return []
    return [s for s in sessions if isinstance(s, Mapping)][:limit]


def export_root(diagnostics: Mapping[str, Any] | None) -> str | None:
    """`[service] export_allowed_root` from the diagnostics' config, when shown there."""
    config = (diagnostics or {}).get("config")
    service = config.get("service") if isinstance(config, Mapping) else None
    root = service.get("export_allowed_root") if isinstance(service, Mapping) else None
    return root if isinstance(root, str) and root.startswith("/") else None


def session_id(session: Mapping[str, Any]) -> str | None:
    """A recent session's id."""
    value = session.get("id")
    return value if isinstance(value, str) and value else None


UNITS = (("_ms", "ms"), ("_s", "s"), ("_wh", "Wh"), ("_kwh", "kWh"), ("_w", "W"),
         ("_v", "V"), ("_a", "A"), ("_mb", "MB"), ("_bytes", "bytes"))


def label_and_unit(key: Any) -> tuple[str, str]:
    """A field's name in words and the unit its name ends with: ("poll interval", "s")
    for poll_interval_s, ("polls", "") for polls."""
    name = str(key)
    for suffix, unit in UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)].replace("_", " "), unit
    return name.replace("_", " "), ""


def _label(key: Any) -> str:
    name, unit = label_and_unit(key)
    return f"{name} ({unit})" if unit else name


def diagnostics_zone(diagnostics: Mapping[str, Any]) -> tzinfo:
    """The station's time zone: the diagnostics' station.timezone, else the shown config's
    [station] timezone; UTC when neither is there."""
    station = diagnostics.get("station")
    name = station.get("timezone") if isinstance(station, Mapping) else None
    config = diagnostics.get("config")
    if name is None and isinstance(config, Mapping):
        section = config.get("station")
        name = section.get("timezone") if isinstance(section, Mapping) else None
    return station_zone(name)


def _age(seconds: Any) -> str:
    value = decimal_of(seconds)
    return "-" if value is None else format_age(value)





