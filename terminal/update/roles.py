"""TUF's four top-level roles as evterm's release repository uses them: which are signed
offline by several key holders, and how long each one's metadata stays valid by default
(docs/updates.md). No python-tuf import, so `evterm`'s command line loads fast."""

from __future__ import annotations

from decimal import Decimal

ROLES = ("root", "targets", "snapshot", "timestamp")
OFFLINE_ROLES = ("root", "targets")  # threshold and keys per role apply to these
DEFAULT_EXPIRY_DAYS = {"root": Decimal(365), "targets": Decimal(90), "snapshot": Decimal(30),
                       "timestamp": Decimal(1)}
