"""The touchscreen's state that the daemon keeps for every client (docs/local-api.md).

Provides `Screen(ui_config, station_id, clock)`:
- the screen's language, reset to `[ui] default_language` after `language_reset_s` on
  the idle screen (no session open, no receipt on offer) without a driver's action
  (`note_intent()` is a tap or a button);
- the receipt on offer after a session until acknowledged or `receipt_timeout_s`
  after the session closed or the driver last touched the screen (`keep()`, the local
  API's `touch`: as often as the driver wants, EN 301 549 / WCAG 2.2.1);
- when the language reset is due (`language_reset()`, for the screen's warning);
- the code of the app-start QR code: new at start, after each session and when a remote
  start used it; the app-start URL with it;
- the e-receipt URL of a session;
- the card budget the driver picked before tapping (`budget`, `choose_budget()`;
  terminal.payment.holds): kept until a session opens or the idle screen's quiet time
  (`language_reset_s`) passes.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from terminal.config import UiConfig
from terminal.kernel.clock import Clock, iso_utc
from terminal.kernel.logsetup import fields, get_logger

log = get_logger("screen")

START_CODE_ALPHABET = string.ascii_uppercase + "23456789"
START_CODE_CHARS = 8


def new_start_code() -> str:
    """A random code for the app-start QR code: 8 of A-Z and 2-9."""
    return "".join(secrets.choice(START_CODE_ALPHABET) for _ in range(START_CODE_CHARS))


def fill_url(template: str, **values: str) -> str:
    """A `[ui]` URL template with its placeholders filled, each value URL-quoted."""
    return template.format(**{key: quote(value, safe="*") for key, value in values.items()})


MAX_EXTENSIONS = 10  # a time limit a touch extends lasts at most this many times its length


class Screen:
    def __init__(self, config: UiConfig, station_id: str, clock: Clock) -> None:
        self.config = config
        self.station_id = station_id
        self.clock = clock
        self.language = config.default_language
        self.start_code = new_start_code()
        self.receipt_pending: tuple[str, datetime] | None = None  # (session id, closed at)
        self._last_intent_at: datetime | None = None
        self._idle_since: datetime | None = None
        self._receipt_kept_at: datetime | None = None  # the driver's last touch on it
        self.budget: Decimal | None = None  # the card budget picked; None = the default

    def choose_budget(self, amount: Decimal | None) -> None:
        """The driver picked a budget (None: back to the default hold)."""
        self.budget = amount
        self.note_intent()

    def note_intent(self) -> None:
        """A driver did something (a tap, a button): the idle screen's language timer
        starts again."""
        self._last_intent_at = self.clock.now()

    def keep(self, now: datetime) -> None:
        """The driver touched the screen: the language timer starts again and the receipt
        on offer (if any) stays `receipt_timeout_s` from now."""
        self.note_intent()
        if self.pending_receipt(now) is not None:
            self._receipt_kept_at = now

    def rotate_start_code(self) -> None:
        """A new app-start code: the QR code on screen changes, the old one is refused."""
        self.start_code = new_start_code()

    def app_start(self) -> dict[str, str] | None:
        template = self.config.app_start_url
        if not template:
            return None
        url = fill_url(template, station_id=self.station_id, code=self.start_code)
        return {"url": url, "code": self.start_code}

    def receipt_url(self, session_id: str) -> str | None:
        """The e-receipt URL of a session (stored with it), None when none is offered."""
        template = self.config.receipt_url
        if not template:
            return None
        return fill_url(template, station_id=self.station_id, session_id=session_id)

    # ---- the session's course --------------------------------------------------------------

    def session_opened(self) -> None:
        self.receipt_pending = None  # the next driver is here
        self._receipt_kept_at = None
        self.budget = None  # it became this session's hold

    def session_closed(self, session_id: str | None, closed_at: datetime,
                       has_receipt: bool) -> None:
        self.start_code = new_start_code()
        self._receipt_kept_at = None
        if has_receipt and session_id:
            self.receipt_pending = (session_id, closed_at)

    def pending_receipt(self, now: datetime) -> dict[str, str] | None:
        """The latest closed session's receipt while it is offered on screen."""
        if self.receipt_pending is None:
            return None
        session_id, closed_at = self.receipt_pending
        kept_at = self._receipt_kept_at
        since = max(closed_at, kept_at) if kept_at is not None else closed_at
        timeout = timedelta(seconds=self.config.receipt_timeout_s)
        # touches extend it, up to MAX_EXTENSIONS times its time in all (the next
        # driver's turn and the receipt op's reach stay bounded)
        until = min(since + timeout, closed_at + MAX_EXTENSIONS * timeout)
        if now >= until:
            self.receipt_pending = None
            self._receipt_kept_at = None
            return None
        return {"session_id": session_id, "until": iso_utc(until)}

    def reset_language_when_idle(self, now: datetime, session_open: bool) -> None:
        """Back to the default language after `[ui] language_reset_s` on the idle screen
        (no session open, no receipt on offer) without a driver's action."""
        if session_open or self.pending_receipt(now) is not None:
            self._idle_since = None
            return
        if self._idle_since is None:
            self._idle_since = now
        default = self.config.default_language
        if self.language == default and self.budget is None:
            return
        quiet_since = max(self._idle_since, self._last_intent_at or self._idle_since)
        if (now - quiet_since).total_seconds() >= self.config.language_reset_s:
            self.budget = None  # the next driver starts from the default hold
            if self.language == default:
                return
            log.info("screen language reset", extra=fields(previous=self.language,
                                                           language=default))
            self.language = default

    def language_reset(self) -> dict[str, str] | None:
        """When the idle screen's language goes back to the default, as the last poll
        found it: `{"at", "language"}`, None when no reset is on its way."""
        default = self.config.default_language
        if self._idle_since is None or self.language == default:
            return None
        quiet_since = max(self._idle_since, self._last_intent_at or self._idle_since)
        at = quiet_since + timedelta(seconds=self.config.language_reset_s)
        return {"at": iso_utc(at), "language": default}
