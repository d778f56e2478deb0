"""Deterministic fault injection for the crash tests of card payment.

`EVTERM_FAULT_POINT` names one point; it is read once, when the daemon starts (this
module is imported). `crash_point(name)` at that point kills the process with SIGKILL,
as a power cut would: no clean-up, no finally blocks. Unset (always, outside tests),
`crash_point()` does nothing.

Points: `payment_requested` (the payment is journaled 'requested', the gateway not
asked yet) and `payment_answered` (the gateway approved and holds the money; the
journal still says 'requested'). The ZVT path (terminal.payment.zvt, `ZVT_POINTS`):
after the payment terminal took a pre-authorisation, booking or reversal
(`zvt_preauth_sent`, `zvt_booking_sent`, `zvt_reversal_sent`) and after it answered,
before the journal says so (`zvt_preauth_answered`, `zvt_booking_answered`,
`zvt_reversal_answered`).
"""

from __future__ import annotations

import os
import signal

from terminal.kernel.logsetup import get_logger

ENV = "EVTERM_FAULT_POINT"
POINTS = ("payment_requested", "payment_answered")
ZVT_POINTS = ("zvt_preauth_sent", "zvt_preauth_answered", "zvt_booking_sent",
              "zvt_booking_answered", "zvt_reversal_sent", "zvt_reversal_answered")
_ARMED = os.environ.get(ENV, "")
log = get_logger("payment")


def crash_point(name: str) -> None:
    if _ARMED and name == _ARMED:
        log.critical("fault injection: killed at %s (%s)", name, ENV)
        os.kill(os.getpid(), signal.SIGKILL)
