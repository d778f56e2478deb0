"""One logging setup for every evterm process.

Lines look like `2026-11-21T10:00:00.123Z WARNING evterm.meter: read failed kind=timeout`:
one line per event, key=value fields after the message, so `grep kind=timeout` works.
A repeating fault goes through `FaultLogger`: logged once when it starts, then at most
once per interval with a counter, and once when it clears — never several lines a second
(the board logs to flash).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any, TextIO

from terminal.kernel.clock import SYSTEM_CLOCK, Clock, iso_utc

ROOT_LOGGER = "evterm"


def fields(**values: Any) -> dict[str, Any]:
    """Structured fields for a log call: `log.info("started", extra=fields(port=5020))`."""
    return {"fields": values}


def _render_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c.isspace() or c in '="' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        self._clock = clock

    def format(self, record: logging.LogRecord) -> str:
        from datetime import UTC, datetime

        stamp = iso_utc(datetime.fromtimestamp(record.created, UTC))
        line = f"{stamp} {record.levelname} {record.name}: {record.getMessage()}"
        extra = getattr(record, "fields", None)
        if extra:
            line += " " + " ".join(f"{k}={_render_value(v)}" for k, v in extra.items())
        if record.exc_info:
            line += " exc=" + _render_value(self.formatException(record.exc_info))
        return line


LOG_FILE_MODE = 0o600


def setup_logging(level: str = "INFO", stream: TextIO | None = None,
                  log_file: str | None = None) -> logging.Logger:
    """Configure the `evterm` logger tree once; later calls replace the handlers. With
    `log_file` the log also goes to that file (appended, created 0600, an existing one
    made 0600), unless `stream`, default stderr, already writes into it (then the file
    is only made 0600). OSError naming the file when it cannot be opened."""
    root = logging.getLogger(ROOT_LOGGER)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if isinstance(handler, _LogFileHandler):
            handler.close()
    out = stream or sys.stderr
    handlers: list[logging.Handler] = [logging.StreamHandler(out)]
    if log_file:
        if _same_file(out, log_file):
            with contextlib.suppress(OSError):  # another user's file: theirs to fix
                os.chmod(log_file, LOG_FILE_MODE)
        else:
            handlers.append(_LogFileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(KeyValueFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # pymodbus logs every retry and reconnect; our FaultLogger says it once.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    return root


class _LogFileHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Appends to a log file created 0600 (an existing one is made 0600)."""

    def __init__(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_FILE_MODE)
            os.fchmod(fd, LOG_FILE_MODE)
        except OSError as exc:
            raise OSError(f"service.log_file {path}: cannot open: {exc.strerror}") from None
        super().__init__(os.fdopen(fd, "a", encoding="utf-8", buffering=1))

    def close(self) -> None:
        try:
            self.flush()
            self.stream.close()
        finally:
            super().close()


def _same_file(stream: TextIO, path: str) -> bool:
    """Whether `stream` writes into the file at `path`."""
    try:
        return os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (OSError, ValueError, AttributeError):
        return False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{ROOT_LOGGER}.{name}")


class FaultLogger:
    """Rate-limited logging of one repeating fault (meter absent, broker down, ...)."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        interval_s: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._logger = logger
        self._what = what
        self._interval_s = interval_s
        self._clock = clock
        self.count = 0
        self._first_s = 0.0
        self._last_logged_s = 0.0
        self._unlogged = 0

    @property
    def active(self) -> bool:
        return self.count > 0

    def failed(self, reason: str) -> None:
        now_s = self._clock.monotonic_s()
        self.count += 1
        if self.count == 1:
            self._first_s = self._last_logged_s = now_s
            self._logger.warning(
                "%s failing", self._what, extra=fields(reason=reason, count=1)
            )
            return
        self._unlogged += 1
        if now_s - self._last_logged_s >= self._interval_s:
            self._logger.warning(
                "%s still failing",
                self._what,
                extra=fields(
                    reason=reason,
                    count=self.count,
                    since_s=round(now_s - self._first_s, 1),
                    suppressed=self._unlogged - 1,
                ),
            )
            self._last_logged_s = now_s
            self._unlogged = 0

    def recovered(self) -> None:
        if not self.count:
            return
        self._logger.info(
            "%s recovered",
            self._what,
            extra=fields(
                failures=self.count,
                after_s=round(self._clock.monotonic_s() - self._first_s, 1),
            ),
        )
        self.count = 0
        self._unlogged = 0
