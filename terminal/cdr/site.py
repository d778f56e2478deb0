"""The station as an OCPI 2.2.1 CDR names it: the issuing party and the CdrLocation.

Provides `CdrSite` (frozen: the CPO's `country_code` and `party_id`, the location's id,
name, address, city, postal code, country, coordinates, the EVSE's uid and id and the
connector's id, standard, format and power type) and `CdrSite.to_location()`, the
OCPI `CdrLocation` object (OCPI 2.2.1, mod_cdrs.asciidoc, "CdrLocation class").
The composition root builds it from `[station]` and `[cdr]` of the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CdrSite:
    """The fields of a CDR that come from the station, not from the session."""

    country_code: str
    party_id: str
    location_id: str
    address: str
    city: str
    country: str
    latitude: str
    longitude: str
    evse_uid: str
    evse_id: str
    connector_id: str
    connector_standard: str = "IEC_62196_T2_COMBO"
    connector_format: str = "CABLE"
    connector_power_type: str = "DC"
    name: str = ""
    postal_code: str = ""

    def to_location(self) -> dict[str, Any]:
        """The OCPI CdrLocation (optional `name` and `postal_code` only when set)."""
        found: dict[str, Any] = {"id": self.location_id}
        if self.name:
            found["name"] = self.name
        found.update({"address": self.address, "city": self.city})
        if self.postal_code:
            found["postal_code"] = self.postal_code
        found.update({
            "country": self.country,
            "coordinates": {"latitude": self.latitude, "longitude": self.longitude},
            "evse_uid": self.evse_uid,
            "evse_id": self.evse_id,
            "connector_id": self.connector_id,
            "connector_standard": self.connector_standard,
            "connector_format": self.connector_format,
            "connector_power_type": self.connector_power_type,
        })
        return found


def site_of(station_id: str, cdr: Any) -> CdrSite:
    """The site of the `[station] id` and a `[cdr]` section (terminal.config CdrConfig)."""
    return CdrSite(
        country_code=cdr.country_code, party_id=cdr.party_id,
        location_id=cdr.location_id or station_id, address=cdr.address, city=cdr.city,
        country=cdr.country, latitude=cdr.latitude, longitude=cdr.longitude,
        evse_uid=cdr.evse_uid or station_id, evse_id=station_id,
        connector_id=cdr.connector_id, connector_standard=cdr.connector_standard,
        connector_format=cdr.connector_format,
        connector_power_type=cdr.connector_power_type, name=cdr.location_name,
        postal_code=cdr.postal_code,
    )
