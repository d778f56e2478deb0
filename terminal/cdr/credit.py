"""Credit CDRs: how a CDR already sent is corrected (OCPI 2.2.1, mod_cdrs.asciidoc,
"Credit CDRs": a CDR is never changed or replaced once sent; a Credit CDR is sent for
it, then a new CDR).

Provides `corrections(current, amount_paid, refunded, key, at) -> (credit, corrected)`
for a refund of the session's payment:
- the Credit CDR: all the data of `current`, `id` = its id + "-C" (at most 39
  characters, as the spec allows), `credit` true, `credit_reference_id` = its id, and
  only `total_cost` negated;
- the new CDR: all the data of `current` with a new unique id (a UUID derived from the
  session and the refund, so built again it is the same) and `total_cost` = what the
  driver paid after the refunds (`amount_paid`, its net in the proportion of the
  current total's net), `remark` saying what was refunded. The charging periods and the
  tariff stay: a refund changes what is paid, not what was consumed.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.kernel.money import round_money

REFUNDED = "Refunded {refunded} {currency}; paid {paid} {currency}."
"""The new CDR's remark after a refund (starts with "Refunded ")."""
_NAMESPACE = uuid.UUID("6f1c1f7e-6c43-4d7e-9a53-0f0c1d3e2b10")


def corrected_id(session_id: str, key: str) -> str:
    """The new CDR's id after the correction `key` (a refund id): a UUID, 36 characters."""
    return str(uuid.uuid5(_NAMESPACE, f"{session_id}\n{key}"))


def corrections(current: dict[str, Any], *, amount_paid: Decimal, refunded: Decimal,
                key: str, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Credit CDR of `current` and the new CDR that replaces it."""
    currency = current["currency"]
    total = current["total_cost"]
    credit = copy.deepcopy(current)
    credit["id"] = f"{current['id']}-C"
    credit["credit"] = True
    credit["credit_reference_id"] = current["id"]
    credit["total_cost"] = {"excl_vat": -Decimal(total["excl_vat"]),
                            "incl_vat": -Decimal(total["incl_vat"])}
    credit["last_updated"] = iso_utc(at)
    corrected = copy.deepcopy(current)
    corrected.pop("credit", None)
    corrected.pop("credit_reference_id", None)
    corrected["id"] = corrected_id(current["session_id"], key)
    incl = Decimal(total["incl_vat"])
    net = round_money(amount_paid * Decimal(total["excl_vat"]) / incl, currency) if incl \
        else Decimal(0)
    corrected["total_cost"] = {"excl_vat": net, "incl_vat": amount_paid}
    corrected["remark"] = REFUNDED.format(refunded=refunded, paid=amount_paid,
                                          currency=currency)
    corrected["last_updated"] = iso_utc(at)
    return credit, corrected
