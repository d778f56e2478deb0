"""The firmware update messages (docs/protocol.md, "firmware_update", "firmware_status").

Shaped after OCPP 2.0.1 UpdateFirmwareRequest and FirmwareStatusNotificationRequest
(OCPP 2.0.1 Part 2, "L. FirmwareManagement"; the status names are OCPP's FirmwareStatusEnumType):

- `FirmwareUpdate` (down, command `firmware_update`): `{"requestId": int, "firmware":
  {"location": URL of the release repository, "version": the release to install}}`.
  `location` is an http(s) URL; `version` is a release name (letters, digits, `.`,
  `+`, `_`, `-`; never a path). A wrong field raises `MessageError` naming it.
- `FIRMWARE_STATUSES`: the statuses the board reports, and `firmware_status_payload`,
  the body of one `firmware_status` outbox message (up/event, kind `firmware_status`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from terminal.backend.json_fields import JsonFields
from terminal.backend.messages import MessageError
from terminal.kernel.redact import shown

FIRMWARE_STATUSES = ("Downloading", "Downloaded", "DownloadFailed", "SignatureVerified",
                     "InvalidSignature", "Installing", "InstallRebooting", "Installed",
                     "InstallationFailed", "InstallVerificationFailed")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
MAX_LOCATION_CHARS = 512
MAX_REQUEST_ID = 2**31 - 1


def check_version(where: str, value: Any) -> str:
    if not isinstance(value, str) or not VERSION.match(value) or ".." in value:
        raise MessageError(where, "expected a release version (1-64 letters, digits, . + _ -), "
                           f"got {shown(value)}")
    return value


@dataclass(frozen=True)
class FirmwareUpdate:
    request_id: int
    location: str
    version: str

    def __post_init__(self) -> None:
        request_id = self.request_id
        if not isinstance(request_id, int) or isinstance(request_id, bool) or \
                not 0 <= request_id <= MAX_REQUEST_ID:
            raise MessageError("FirmwareUpdate.requestId",
                               f"expected an integer 0..{MAX_REQUEST_ID}, got {shown(request_id)}")
        location = self.location
        if not isinstance(location, str) or len(location) > MAX_LOCATION_CHARS or \
                not re.match(r"^https?://[^\s/]+(/\S*)?$", location):
            raise MessageError("FirmwareUpdate.firmware.location",
                               "expected the release repository's http:// or https:// URL "
                               f"(at most {MAX_LOCATION_CHARS} characters)")
        check_version("FirmwareUpdate.firmware.version", self.version)

    def to_json(self) -> dict[str, Any]:
        return {"requestId": self.request_id,
                "firmware": {"location": self.location, "version": self.version}}

    @classmethod
    def from_json(cls, data: Any) -> FirmwareUpdate:
        f = JsonFields(data, "FirmwareUpdate", MessageError)
        firmware = JsonFields(f.obj("firmware"), "FirmwareUpdate.firmware", MessageError)
        return cls(f.raw("requestId"), firmware.raw("location"), firmware.raw("version"))


def firmware_status_payload(request_id: int | None, status: str, version: str,
                            info: str | None = None) -> dict[str, Any]:
    """The body of a `firmware_status` event (FirmwareStatusNotification + version, info)."""
    if status not in FIRMWARE_STATUSES:
        raise ValueError(f"unknown firmware status {status!r}")
    return {"status": status, "requestId": request_id, "version": version, "info": info}
