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


def signing_url_problem(model: Any, url: str) -> str | None:
    """Why `url` (or the model's [signing] data) does not fit the signing meter `model`:
    its driver is built (which parses both, and does no I/O) and asked for what a
    station needs (`config_problem()`, where it has one); None when it fits."""
    from drivers.meter.registermap import MeterMapError
    from drivers.meter.transport import TransportError

    try:
        driver = signing_driver(model.signing["driver"])(model, url)
    except (TransportError, MeterMapError) as exc:
        return str(exc)
    problem = getattr(driver, "config_problem", lambda: None)()
    driver.close()
    return problem
