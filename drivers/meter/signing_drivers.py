"""Which class drives a signing meter: the `[signing] driver` names of the model files.

Each signing meter is a model file in drivers/meter/models/ (data: live registers or
endpoints, the OBIS code, the curve, the sources it was written from) plus one class.
`SIGNING_DRIVERS` maps the driver name to "module:Class"; the class is built as
`Class(model, url, unit_id, timeout_s, clock)` and implements
`drivers.meter.signing.SigningMeter`.
"""

from __future__ import annotations

import importlib
from typing import Any

SIGNING_DRIVERS: dict[str, str] = {
    "iem_dcr": "drivers.meter.iem_dcr:IemDcr",
    "lem_dcbm": "drivers.meter.lem_dcbm:LemDcbm",
}


def signing_driver(name: str) -> Any:
    """The driver class registered as `name`."""
    module, _, cls = SIGNING_DRIVERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
