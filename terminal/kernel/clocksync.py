"""Whether the terminal's own clock is synchronised (NTP), for the Eichrecht clock rule.

Provides `terminal_clock_synced() -> bool | None`: True when the kernel says the system
clock is synchronised, False when it says it is not, None when it cannot be asked (not
Linux, no C library, the call failed). Callers treat None as "not synchronised".

How: adjtimex(2) with `modes = 0` (read only, no privilege needed). The clock is
synchronised unless the return value is TIME_ERROR (5) or STA_UNSYNC (0x0040) is set in
`status` (the kernel sets it while no NTP daemon disciplines the clock, e.g. after boot
before the first NTP answer, and when the daemon stops updating it; chronyd,
systemd-timesyncd and ntpd clear it once synchronised).

Override: the environment variable `EVTERM_CLOCK_SYNCED` = `1` (synchronised) or `0`
(not) replaces the kernel's answer. The demo, the test rig and the simulators run on a
scaled clock, which no NTP daemon disciplines, and set it; a field terminal leaves it
unset. Any other value is a `ClockSyncSettingError` naming the variable
(`check_override()` at start-up reports it before the first session).

Sources: the Linux man page adjtimex(2) (struct timex, STA_UNSYNC, TIME_ERROR) and
<sys/timex.h> of glibc for the layout of struct timex.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping

ENV = "EVTERM_CLOCK_SYNCED"
STA_UNSYNC = 0x0040
TIME_ERROR = 5
_OVERRIDES = {"1": True, "0": False}


class ClockSyncSettingError(ValueError):
    """EVTERM_CLOCK_SYNCED has a value other than 1 or 0."""


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h> (the `adjtimex` symbol's layout: C longs, and the
    32-bit time_t timeval on 32-bit systems), with the 11 reserved ints at the end."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
        # room to spare: a kernel or C library with a longer struct writes here, never
        # past the buffer
        ("_spare", ctypes.c_char * 64),
    ]


def clock_sync_override(environ: Mapping[str, str] | None = None) -> bool | None:
    """The value of EVTERM_CLOCK_SYNCED: True for 1, False for 0, None when unset or
    empty; ClockSyncSettingError for anything else."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not value:
        return None
    if value not in _OVERRIDES:
        raise ClockSyncSettingError(
            f"{ENV}: invalid value {value!r}; allowed: 1 (clock synchronised) or 0 (not), "
            "or unset to ask the kernel")
    return _OVERRIDES[value]


def check_override(environ: Mapping[str, str] | None = None) -> None:
    """Raise ClockSyncSettingError now (at start-up) when EVTERM_CLOCK_SYNCED is bad."""
    clock_sync_override(environ)


def kernel_clock_synced() -> bool | None:
    """The kernel's answer through adjtimex(2); None when it cannot be asked."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    adjtimex.argtypes = [ctypes.POINTER(_Timex)]
    adjtimex.restype = ctypes.c_int
    timex = _Timex()  # zeroed: modes = 0, read only
    return synced_from(adjtimex(ctypes.byref(timex)), timex.status)


def synced_from(state: int, status: int) -> bool | None:
    """adjtimex's return value and `status` as an answer: None when the call failed
    (-1), False for TIME_ERROR or STA_UNSYNC, else True."""
    if state < 0:
        return None
    return state != TIME_ERROR and not status & STA_UNSYNC


def terminal_clock_synced(environ: Mapping[str, str] | None = None) -> bool | None:
    """Whether the terminal's clock is synchronised: EVTERM_CLOCK_SYNCED when set, else
    the kernel's NTP state; None when neither says (treat as not synchronised)."""
    override = clock_sync_override(environ)
    if override is not None:
        return override
    return kernel_clock_synced()
