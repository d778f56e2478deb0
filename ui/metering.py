"""The signing (Eichrecht) meter as the screens word it: pure functions, no Kivy.

Reads the two things the daemon sends about a signing meter (docs/local-api.md):
- the status snapshot's `metering`: {"signed", "meter_model", "meter_serial",
  "public_key" (hex), "signing_method", "meter_clock" ("S"|"I"|"U"|"R"|null),
  "terminal_clock_synced", "clock_trusted", "fault"}; absent from an older daemon;
- a receipt's `signed_meter`: {"meter_serial", "start_wh", "end_wh" (decimal strings),
  "public_key", "signing_method", "qr" (the text for the transparency software's QR
  code), "billable_by_energy", "fault"}; absent for a plain meter.

Provides `metering_of(state)` / `signed_meter_of(receipt)` (the mapping, or None when
absent or malformed), `is_signed(state)` (a signing meter: the "Meter info" button is
offered), `key_blocks(hex)` (the public key in blocks of 4, a fixed number of blocks a
line, so it can be compared block by block with the key the operator registered),
`clock_words(letter, language)` (the meter clock's OCMF time status in words),
`register_kwh(wh, language)` (a signed register value in kWh with every digit it has,
never rounded away) and `technician_lines(metering, language)` (the service menu's
"Signed metering" block, the key left to `key_blocks`).

OCMF time status letters (S.A.F.E. e.V., "OCMF - Open Charge Metering Format",
RD/TM): U unknown or not synchronised, I informative (set, not from a trusted source),
S synchronised, R relative (time since the meter's start).

On failure: a missing or oddly typed field shows as "-"; a key that is not hex is
shown as it came (never dropped), so a wrong key is still visible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from terminal.kernel.locales import get_locale
from ui.i18n import supported, tr
from ui.values import decimal_of

KEY_BLOCK = 4        # hex digits a block
BLOCKS_PER_LINE = 6  # a 91-byte P-256 key (182 hex digits) in 8 lines
CLOCK_STATES = ("S", "I", "U", "R")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def metering_of(state: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The snapshot's `metering`, None when an older daemon sends none."""
    value = (state or {}).get("metering")
    return value if isinstance(value, Mapping) else None


def is_signed(state: Mapping[str, Any] | None) -> bool:
    """The station meters with a signing meter (the driver may look at its key)."""
    metering = metering_of(state)
    return metering is not None and metering.get("signed") is True


def signed_meter_of(receipt: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The receipt body's `signed_meter` (with a QR text), None for a plain meter."""
    body = (receipt or {}).get("receipt")
    value = body.get("signed_meter") if isinstance(body, Mapping) else None
    return value if isinstance(value, Mapping) else None


def text_of(value: Any) -> str:
    """A field shown as text: "-" when missing or empty."""
    if value is None or isinstance(value, bool | Mapping | list):
        return "-"
    text = str(value).strip()
    return text or "-"


def key_blocks(key: Any, per_line: int = BLOCKS_PER_LINE) -> str:
    """The public key in upper-case blocks of 4 hex digits, `per_line` blocks a line:
    "3059 3013 0607 2A86 48CE 3D02\\n0106 ...". Not hex: the text as it came."""
    if not isinstance(key, str) or not key.strip():
        return "-"
    compact = re.sub(r"\s+", "", key)
    if not _HEX.match(compact):
        return key.strip()
    compact = compact.upper()
    blocks = [compact[i:i + KEY_BLOCK] for i in range(0, len(compact), KEY_BLOCK)]
    lines = [" ".join(blocks[i:i + per_line]) for i in range(0, len(blocks), per_line)]
    return "\n".join(lines)


def clock_words(letter: Any, language: str) -> str:
    """The meter clock's OCMF time status in words ("unknown" for null or another)."""
    code = letter if letter in CLOCK_STATES else "none"
    return tr(f"meter_clock_{code}", supported(language))


def register_kwh(energy_wh: Any, language: str) -> str:
    """A signed register value (Wh) in kWh: at least 3 decimals, more when the value
    has them (a signed value is never rounded on screen); "-" when missing."""
    wh = decimal_of(energy_wh)
    if wh is None:
        return "-"
    kwh = (wh / 1000).normalize()
    exponent = kwh.as_tuple().exponent
    places = max(3, -exponent) if isinstance(exponent, int) else 3
    shown = kwh.quantize(Decimal(1).scaleb(-places))
    # a no-break space: the value never wraps away from its unit
    return f"{get_locale(supported(language)).number(shown, places)}\u00a0kWh"


def technician_lines(metering: Mapping[str, Any] | None, language: str) -> list[str]:
    """The service menu's "Signed metering" block without the key: signed or plain,
    model, serial, signing method, both clocks, trusted times, fault. Empty when the
    daemon sends no `metering` (an older daemon)."""
    if metering is None:
        return []
    language = supported(language)

    def t(key: str, **values: object) -> str:
        return tr(key, language, **values)

    def yes_no(value: Any) -> str:
        return "-" if value is None else t("svc_yes" if value else "svc_no")

    if metering.get("signed") is not True:
        return [t("svc_signing_plain")]
    letter = metering.get("meter_clock")
    clock = clock_words(letter, language)
    if letter in CLOCK_STATES:
        clock = f"{clock} ({letter})"
    fault = metering.get("fault")
    return [
        t("svc_signing_meter", model=text_of(metering.get("meter_model")),
          serial=text_of(metering.get("meter_serial"))),
        t("svc_signing_method", method=text_of(metering.get("signing_method"))),
        t("svc_signing_meter_clock", clock=clock),
        t("svc_signing_terminal_clock",
          synced=yes_no(metering.get("terminal_clock_synced")),
          trusted=yes_no(metering.get("clock_trusted"))),
        t("svc_fault", fault=t("svc_none") if not fault else text_of(fault)),
        t("svc_signing_key"),
    ]
