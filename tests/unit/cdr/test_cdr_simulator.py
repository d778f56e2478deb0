"""The MQTT backend simulator keeps every CDR it receives and records a violation for a
malformed or mispriced one (what fails the test that used it, at its teardown); a
CDR sent twice is one CDR."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hw_mocks.backend_logic import BackendLogic
from hw_mocks.backend_mqtt import BackendMqtt
from terminal.backend import cdr_message, protocol
from terminal.cdr import dumps
from terminal.pricing import Sample, SessionInput, parse_tariff
from tests.unit.cdr.helpers import cdr_of
from tests.unit.retention_helpers import TARIFF

D = Decimal
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _event(cdr: dict[str, Any]) -> protocol.Event:
    return protocol.Event(cdr_message.KIND, cdr_message.key(cdr["id"]), "2025-03-03T10:00:00Z",
                          cdr_message.payload(cdr["id"], cdr), session_id=cdr["id"])


def _cdr(session_id: str) -> dict[str, Any]:
    samples = tuple(Sample(START + timedelta(minutes=m), D(100) * m, D(6000), D(0))
                    for m in range(20))
    session = SessionInput(START, samples[-1].t, samples, D(100))
    found = cdr_of(parse_tariff(TARIFF), session, "Europe/Berlin", session_id=session_id)
    return dict(json.loads(dumps(found)))


def test_the_simulator_records_a_mispriced_cdr_and_keeps_a_right_one_once() -> None:
    sim = BackendMqtt(BackendLogic(X25519PrivateKey.generate()), "127.0.0.1", 1,
                      station_timezone="Europe/Berlin")
    right = _cdr("S-right")
    sim._on_event("ST1", _event(right))
    sim._on_event("ST1", _event(right))  # sent again after a restart
    assert sim.cdr_violations == []
    assert sim.events["S-right:cdr"]["count"] == 2 and sim.duplicates == 1
    wrong = _cdr("S-wrong")
    wrong["total_cost"]["incl_vat"] = float(D(str(wrong["total_cost"]["incl_vat"])) + 1)
    sim._on_event("ST1", _event(wrong))
    assert [v["session_id"] for v in sim.cdr_violations] == ["S-wrong"]
    assert "re-priced" in sim.cdr_violations[0]["problem"]
    assert sim.status()["cdr_violations"] == 1
    assert sim.events_view()["cdr_violations"] == sim.cdr_violations
