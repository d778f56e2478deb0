"""The daemon's time limits the driver can extend (EN 301 549 / WCAG 2.2.1), in process on
a hand-moved clock: the `touch` op keeps the receipt on offer `receipt_timeout_s` from
the touch, as often as the driver wants (more than ten times), and restarts the language
reset, which the snapshot announces (`language_reset`); `service_keep_pin` gives an open
PIN window its full time again; a session waiting to be plugged in gets the connection
timeout from the touch again (the pure machine's `AuthorizationKept`, the snapshot's
`plug_in_until`). Bad input is refused naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from terminal.kernel.clock import iso_utc
from terminal.localapi import RequestError
from terminal.session import AuthorizationKept, Phase, SessionState, StopReason
from terminal.station import Station
from tests.unit.clockfake import FakeClock
from tests.unit.session_helpers import T0, Driver
from tests.unit.test_daemon_ui_api import Car, closed, poll, run, states
from tests.unit.test_service import Ctx, pin_hash  # noqa: F401  (pin_hash: a fixture)
from tests.unit.test_service import run as run_service


def pending(station: Station) -> dict[str, Any] | None:
    return station.status.snapshot()["receipt_pending"]


def test_a_touch_keeps_the_receipt_the_full_time_from_the_touch(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await closed(station, car, clock)
        closed_at = datetime.fromisoformat(station.store.store.session(session_id)["closed_at"])
        clock.advance((closed_at - clock.now()).total_seconds() + 50)  # 10 s before the end
        reply = await station.driver_api.touch({"op": "touch"})
        until = iso_utc(clock.now() + timedelta(seconds=60))
        assert reply["state"]["receipt_pending"] == {"session_id": session_id, "until": until}
        assert states(published)[-1]["receipt_pending"]["until"] == until  # the screen is told
        clock.advance(59.9)
        assert pending(station) is not None
        clock.advance(0.1)
        assert pending(station) is None

    run(tmp_path, body, ui={"receipt_timeout_s": 60})


def test_the_receipt_may_be_kept_ten_times_its_time_then_it_goes(tmp_path):
    """WCAG 2.2.1 asks for at least ten extensions; the next driver's turn and the
    receipt op's reach stay bounded: ten times the receipt's time in all."""
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        session_id = await closed(station, car, clock)
        for _ in range(10):
            clock.advance(55)  # each touch in the warning's last 20 s
            await station.driver_api.touch({"op": "touch"})
            assert pending(station)["session_id"] == session_id  # up to 550 s
        clock.advance(50)
        await station.driver_api.touch({"op": "touch"})  # an 11th touch: no more time
        assert pending(station) is None  # 600 s after the touches began: 10 x 60 s
        await station.driver_api.touch({"op": "touch"})  # too late: nothing comes back
        assert pending(station) is None

    run(tmp_path, body, ui={"receipt_timeout_s": 60})


def test_a_touch_with_unexpected_fields_is_refused_and_changes_nothing(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await closed(station, car, clock)
        before = pending(station)
        published.clear()
        with pytest.raises(RequestError, match=r"^touch: unexpected fields session_id$"):
            await station.driver_api.touch({"op": "touch", "session_id": "x"})
        assert pending(station) == before and published == []

    run(tmp_path, body)


def test_the_snapshot_announces_the_language_reset_and_a_touch_moves_it(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await poll(station, clock)
        assert station.status.snapshot()["language_reset"] is None  # default language
        await station.driver_api.language({"language": "nl"})
        chosen = clock.now()
        await poll(station, clock)
        assert station.status.snapshot()["language_reset"] == {
            "at": iso_utc(chosen + timedelta(seconds=30)), "language": "en"}
        await poll(station, clock, 19)  # 20 s after the choice: in the warning
        await station.driver_api.touch({"op": "touch"})
        touched = clock.now()
        assert station.status.snapshot()["language_reset"]["at"] == iso_utc(
            touched + timedelta(seconds=30))
        await poll(station, clock, 29)
        assert station.screen.language == "nl"
        await poll(station, clock, 1)
        assert station.screen.language == "en"
        assert station.status.snapshot()["language_reset"] is None

    run(tmp_path, body, ui={"language_reset_s": 30})


def test_no_language_reset_is_announced_during_a_session(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        await station.driver_api.language({"language": "fr"})
        await station.driver_api.start({"id_token": "APP-1"})
        await poll(station, clock, 3)
        assert station.status.snapshot()["language_reset"] is None

    run(tmp_path, body, ui={"language_reset_s": 30})


def test_a_touch_on_the_pin_pad_keeps_the_pin_window(tmp_path, pin_hash):  # noqa: F811
    async def body(ctx: Ctx) -> None:
        with pytest.raises(RequestError, match=r"^card: no PIN window is open"):
            await ctx.op("service_keep_pin")
        await ctx.tap()
        for _ in range(12):
            await ctx.poll(1, step_s=50)  # pin_window_s = 60
            reply = await ctx.op("service_keep_pin")
            assert reply["state"]["service"]["pin_until"] == iso_utc(
                ctx.clock.now() + timedelta(seconds=60))
        await ctx.poll(1, step_s=59)
        assert ctx.service()["state"] == "pin"
        await ctx.poll(1, step_s=1)
        assert ctx.service()["state"] == "none"
        with pytest.raises(RequestError, match=r"^card: no PIN window is open"):
            await ctx.op("service_keep_pin")

    run_service(tmp_path, pin_hash, body)


# ---- plugging in after the approval (the connection timeout) ------------------------------


def test_the_machine_gives_more_time_to_plug_in_up_to_ten_timeouts():
    d = Driver()
    d.authorize(0)
    for t_s in range(100, 1100, 100):  # ten touches, each before the time runs out
        d.tick(t_s, 10_000, 0, ev="A")
        kept = d.send(AuthorizationKept(T0 + timedelta(seconds=t_s)))
        assert kept.refused is None and not kept.records and not kept.actions
        assert d.state.authorized_at == T0 + timedelta(seconds=min(t_s, 1080))
    d.tick(1100, 10_000, 0, ev="A")
    d.send(AuthorizationKept(T0 + timedelta(seconds=1100)))  # no more: 10 x 120 s in all
    d.tick(1199, 10_000, 0, ev="A")
    assert d.state.phase is Phase.AUTHORIZED
    d.tick(1200, 10_000, 0, ev="A")
    assert d.state.phase is Phase.COMPLETED and d.state.stop_reason is StopReason.TIMEOUT


def test_more_time_to_plug_in_is_refused_outside_authorized_and_never_goes_back():
    d = Driver()
    refused = d.send(AuthorizationKept(T0))
    assert refused.refused == "no session waits to be plugged in (Available)"
    assert refused.state == SessionState()
    d.authorize(50)
    d.send(AuthorizationKept(T0 + timedelta(seconds=10)))  # older than the approval
    assert d.state.authorized_at == T0 + timedelta(seconds=50)


def test_the_snapshot_says_until_when_to_plug_in_and_a_touch_moves_it(tmp_path):
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        car.plugged = False
        await poll(station, clock)
        assert station.status.snapshot()["plug_in_until"] is None
        await station.driver_api.start({"id_token": "APP-1"})
        approved = clock.now()
        await poll(station, clock)
        snapshot = station.status.snapshot()
        assert snapshot["phase"] == "Authorized"
        assert snapshot["plug_in_until"] == iso_utc(approved + timedelta(seconds=120))
        await poll(station, clock, 110)
        reply = await station.driver_api.touch({"op": "touch"})
        assert reply["state"]["plug_in_until"] == iso_utc(clock.now() + timedelta(seconds=120))
        await poll(station, clock, 119)
        assert station.daemon.state.phase.value == "Authorized"
        car.plugged = True
        await poll(station, clock, 3)
        assert station.daemon.state.phase.value == "Charging"
        assert station.status.snapshot()["plug_in_until"] is None

    run(tmp_path, body)  # [session] connection_timeout_s = 120
