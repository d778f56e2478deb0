"""The backend's `firmware_update` over MQTT, end to end (docs/protocol.md): the MQTT
backend simulator sends the command, the real daemon answers Accepted and leaves the
request for the updater (or refuses naming the field); the updater's FirmwareStatus
reports, written to its journal as the updater writes them, reach the simulator as
`firmware_status` events exactly once and in order."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.mosquitto import Broker
from hw_mocks.rig import Rig
from terminal.update.journal import Journal, JournalState, Step, UpdateRequest
from terminal.update.layout import Layout
from terminal.update.request import take_request
from tests.integration.test_mqtt_sessions import STATION, mqtt_section

pytestmark = pytest.mark.integration
BODY = {"requestId": 42, "firmware": {"location": "https://updates.example/evterm",
                                      "version": "0.2.0"}}


@pytest.fixture
def board(broker: Broker, backend_sim) -> Iterator[tuple[Rig, Any, Path]]:  # type: ignore[no-untyped-def]
    sim = backend_sim(broker)
    folder = Path(tempfile.mkdtemp(prefix="evfw-"))
    root = folder / "opt"
    rig = Rig(folder / "rig", extra={"backend": mqtt_section(broker, sim),
                                     "update": {"root_dir": str(root)}})
    try:
        rig.start_station()
        rig.start_daemon()
        rig.wait_for("the backend link", lambda: rig.state()["backend_online"], 15)
        yield rig, sim, root
    finally:
        rig.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_firmware_update_command_and_status_events(board) -> None:  # type: ignore[no-untyped-def]
    rig, sim, root = board

    def command(body: dict[str, Any]) -> dict[str, Any]:
        reply = sim.admin("command", station_id=STATION, name="firmware_update", body=body)
        assert reply["answer"] is not None, reply
        return dict(reply["answer"])

    refused = command({**BODY, "firmware": {**BODY["firmware"], "location": "file:///x"}})
    assert refused["ok"] is False and refused["field"] == "body.firmware.location", refused
    answer = command(BODY)
    assert answer["ok"] and answer["body"] == {"status": "Accepted", "requestId": 42}, answer
    again = command({**BODY, "requestId": 43})
    assert again["ok"] is False and "waiting" in again["error"], again
    request = take_request(rig.folder / "state")
    assert request == UpdateRequest(42, "0.2.0", "https://updates.example/evterm")

    # what the updater writes while it works (docs/updates.md): relayed by the daemon
    journal = Journal(Layout(root).journal_path)
    state = JournalState(Step.DOWNLOADING, request)
    state.report("Downloading")
    journal.save(state)
    state.report("Downloaded")
    state.report("SignatureVerified")
    state.report("Installing")
    state.step = Step.INSTALLING
    journal.save(state)

    def relayed() -> list[dict[str, Any]] | None:
        events = sim.admin("events", station_id=STATION, kind="firmware_status")["events"]
        return events if len(events) >= 4 else None

    events = rig.wait_for("the firmware statuses at the backend", relayed, 20)
    assert [e["payload"]["status"] for e in events] == [
        "Downloading", "Downloaded", "SignatureVerified", "Installing"]
    assert {e["payload"]["requestId"] for e in events} == {42}
    assert {e["payload"]["version"] for e in events} == {"0.2.0"}
    busy = command({**BODY, "requestId": 44})
    assert busy["ok"] is False and "under way" in busy["error"], busy
