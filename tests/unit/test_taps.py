"""The tap handler's messages to the screen, in process: a card presented is announced
(`card_present`, reader and kind only) before anything is decided, then its outcome
(`tap`); reader state changes and failed reads announce no card."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.readers.events import EmvTap, ReaderState, RfidTap, TapFailed
from terminal.identification.auth import AuthDecision
from terminal.identification.taps import TapHandler
from terminal.station import Station
from tests.unit.clockfake import FakeClock
from tests.unit.test_daemon_ui_api import Car, run

READER = "ACS ACR1252 00 00"


class Authorizer:
    """Accepts every token; remembers what the screen had been told when it was asked."""

    def __init__(self, published: list[dict[str, Any]]) -> None:
        self.published = published
        self.seen_at_decision: list[list[dict[str, Any]]] = []

    async def authorize(self, id_token: str, token_type: str,
                        now: datetime | None = None) -> AuthDecision:
        self.seen_at_decision.append(list(self.published))
        return AuthDecision(True, "accepted", "local_list")

    async def is_technician(self, id_token: str) -> bool:
        return False


def tap_handler(station: Station, authorizer: Any) -> TapHandler:
    """The station's tap handler with another authoriser and no card payment."""
    return TapHandler(station.daemon, station.clock, station.config.session, station.screen,
                      authorizer, None, station.service.technician_tapped)


def test_a_card_is_announced_before_the_decision_then_its_outcome(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        authorizer = Authorizer(published)
        taps = tap_handler(station, authorizer)
        await taps.handle(RfidTap(READER, "04A1B2C3D4E5F6"))
        present = {"type": "card_present", "reader": READER, "kind": "rfid"}
        told, = authorizer.seen_at_decision
        assert [m for m in told if m["type"] != "state"] == [present]  # before the decision
        kinds = [m["type"] for m in published if m["type"] != "state"]
        assert kinds == ["card_present", "tap"]
        tap = next(m for m in published if m["type"] == "tap")
        assert (tap["result"], tap["kind"]) == ("accepted", "rfid")

    run(tmp_path, body)


def test_a_bank_card_is_announced_without_any_card_data(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        taps = tap_handler(station, Authorizer(published))
        read: Any = object()  # never looked at: this terminal takes no bank cards
        await taps.handle(EmvTap(READER, read))
        present, outcome = [m for m in published if m["type"] != "state"]
        assert present == {"type": "card_present", "reader": READER, "kind": "card"}
        assert (outcome["type"], outcome["kind"], outcome["reason"]) == (
            "tap", "card", "card_not_supported")
        assert "object at" not in json.dumps(published, default=str)

    run(tmp_path, body)


def test_a_card_counts_as_a_drivers_action_for_the_screen_language(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        taps = tap_handler(station, Authorizer(published))
        await station.driver_api.language({"language": "nl"})
        clock.advance(25)
        await station.daemon.poll_once()
        await taps.handle(EmvTap(READER, object()))  # type: ignore[arg-type]
        clock.advance(25)
        await station.daemon.poll_once()
        assert station.screen.language == "nl"  # 50 s after the choice, 25 s after the card
        clock.advance(5)
        await station.daemon.poll_once()
        assert station.screen.language == "en"

    run(tmp_path, body, ui={"language_reset_s": 30})


def test_reader_changes_and_failed_reads_announce_no_card(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        taps = tap_handler(station, Authorizer(published))
        await taps.handle(ReaderState(READER, "ready"))
        await taps.handle(TapFailed(READER, "card removed too early", code="removed"))
        assert [m["type"] for m in published] == ["reader", "tap"]

    run(tmp_path, body)
