"""OCPI 2.2.1 CDRs over a real mosquitto: `evterm daemon` with the MQTT link, `evterm sim
station` and `evterm sim backend`, each its own process. A charged session sends
exactly one CDR whose total is the receipt's amount, also when the daemon is killed
(SIGKILL) during the session and again after everything was delivered; the simulator
checks every CDR field by field and re-prices it with the independent OCPI engine (a
violation fails the test when the simulator is stopped, hw_mocks/backend_process.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hw_mocks.rig import Rig
from terminal.store import Store
from tests.integration.test_mqtt_sessions import (  # noqa: F401 - fixtures
    all_delivered,
    durable_broker,
    mqtt_rig,
)


def _cdr_events(view: dict[str, Any], session_id: str) -> list[dict[str, Any]]:
    return [e for e in view["events"] if e["kind"] == "cdr" and e["session_id"] == session_id]


def _journal(rig: Rig, session_id: str) -> tuple[Decimal | None, int]:
    store = Store.open(rig.database, create=False)
    try:
        rows = store.conn.execute("SELECT COUNT(*) FROM cdrs WHERE session_id = ?",
                                  (session_id,)).fetchone()[0]
        return store.amount_charged(session_id), int(rows)
    finally:
        store.close()


def test_a_charged_session_sends_exactly_one_cdr_with_the_receipts_total(
        mqtt_rig):  # noqa: F811 - the fixture imported above
    rig, sim = mqtt_rig
    reply = rig.api("start", id_token="TOKEN-CDR")
    assert reply["ok"], reply
    session_id = str(reply["session_id"])
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1000)
    rig.kill_daemon()  # a power cut mid-session: the CDR comes with the close
    rig.start_daemon()
    rig.wait_for("energy again", lambda: Decimal(rig.state()["energy_wh"] or 0) > 2500)
    rig.api("stop", reason="Local")
    rig.wait_phase("Finishing")
    rig.ev("unplug")
    rig.wait_phase("Available")
    view = all_delivered(rig, sim)
    events = _cdr_events(view, session_id)
    assert len(events) == 1 and events[0]["idempotency_key"] == f"{session_id}:cdr"
    cdr = events[0]["payload"]["cdr"]
    amount, rows = _journal(rig, session_id)
    assert amount is not None and amount > 0 and rows == 1
    assert Decimal(str(cdr["total_cost"]["incl_vat"])) == amount
    assert cdr["id"] == session_id and cdr["cdr_token"]["uid"] == "TOKEN-CDR"
    assert cdr["auth_method"] == "AUTH_REQUEST" or cdr["auth_method"] == "WHITELIST"
    assert Decimal(str(cdr["total_energy"])) > Decimal("2.5")
    assert view["cdr_violations"] == []
    rig.kill_daemon()  # everything delivered; a second power cut sends nothing twice
    rig.start_daemon()
    rig.wait_for("the backend link", lambda: rig.state()["backend_online"], 10)
    view = all_delivered(rig, sim)
    events = _cdr_events(view, session_id)
    assert len(events) == 1 and events[0]["count"] == 1
    assert _journal(rig, session_id)[1] == 1
    assert view["cdr_violations"] == []
