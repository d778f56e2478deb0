"""A driver's touch extends a card hold's grace deadline (issue 18, EN 301 549 / WCAG 2.2.1
"timing adjustable"): the session machine moves `Authorization.hold_until` to the grace
after the touch, journaled, at most ten graces after the session opened; the snapshot's
`plug_in_until` (the screen's warning banner) is the earlier of the plug-in timeout and the
hold's deadline; settlement keeps and voids by the journaled, extended deadline, and a
retried tap reuses the hold until that deadline. In process on a hand-moved clock (the
rig of tests/unit/test_holds_daemon.py); cards are public test numbers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from terminal.payment.holds import HoldPolicy, HoldStep
from terminal.session import Phase
from terminal.session.events import AuthorizationKept
from terminal.session.machine import MAX_PLUG_IN_EXTENSIONS
from terminal.session.records import SetAuthorization
from tests.unit.session_helpers import RULES, T0, Driver
from tests.unit.test_daemon_ui_api import poll
from tests.unit.test_holds_daemon import payments, run, settle, tap

GRACE_S = 60.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def waiting_driver() -> Driver:
    driver = Driver(rules=replace(RULES, hold_grace_s=GRACE_S))
    driver.authorize(hold_until=at(GRACE_S))
    assert driver.state.phase is Phase.AUTHORIZED
    return driver


# ---- the session machine ------------------------------------------------------------------


def test_a_touch_moves_the_holds_deadline_and_journals_it():
    driver = waiting_driver()
    kept = driver.send(AuthorizationKept(at(40)))
    assert kept.refused is None
    assert kept.state.authorization.hold_until == at(40 + GRACE_S)
    [record] = [r for r in kept.records if isinstance(r, SetAuthorization)]
    assert record.authorization.hold_until == at(100)
    assert driver.tick(99, ev="A").state.phase is Phase.AUTHORIZED  # was due at 60 s
    assert driver.tick(100, ev="A").state.phase is Phase.COMPLETED


def test_touches_extend_the_hold_at_most_ten_graces_after_the_session_opened():
    driver = waiting_driver()
    cap = at(GRACE_S * MAX_PLUG_IN_EXTENSIONS)
    for second in range(30, 1200, 30):
        driver.send(AuthorizationKept(at(second)))
        if driver.state.phase is not Phase.AUTHORIZED:
            break
        assert driver.state.authorization.hold_until <= cap
    assert driver.state.authorization.hold_until == cap


def test_a_touch_never_shortens_the_deadline_and_without_a_hold_journals_nothing():
    driver = Driver(rules=replace(RULES, hold_grace_s=GRACE_S))
    driver.authorize(hold_until=at(500))  # already later than a touch's grace
    assert driver.send(AuthorizationKept(at(10))).records == ()
    assert driver.state.authorization.hold_until == at(500)
    plain = Driver(rules=replace(RULES, hold_grace_s=GRACE_S))
    plain.authorize()  # no card hold (a charge card)
    kept = plain.send(AuthorizationKept(at(10)))
    assert kept.records == () and plain.state.authorization.hold_until is None


def test_settlement_reads_the_sessions_deadline_over_the_approvals_grace():
    policy = HoldPolicy(Decimal("50.00"), (), 180.0)
    common = {"delivered_wh": Decimal(0), "stop_reason": "Timeout", "approved_at": T0}
    assert policy.settlement(now=at(200), **common) is HoldStep.VOID
    assert policy.settlement(now=at(200), hold_until=at(270), **common) is HoldStep.KEEP
    assert policy.settlement(now=at(270), hold_until=at(270), **common) is HoldStep.VOID
    assert policy.deadline(T0, None) == at(180) and policy.deadline(None, None) is None


# ---- the daemon: touch -> journal -> settlement -> a retried tap ---------------------------


def test_a_touch_extends_the_hold_the_kept_hold_and_its_reuse_follow_it(tmp_path):
    """connection_timeout_s 100, grace 180: a touch at 90 s moves the plug-in wait to
    190 s and the hold to 270 s; the plug-in timeout then keeps the hold (it would have been
    void at 180 s), the same card reuses it, and it is voided at 270 s."""

    async def body(station, car, clock, published, gateway) -> None:
        car.plugged = False
        first = await tap(station)
        await poll(station, clock, 90)
        await station.driver_api.touch({"op": "touch"})
        hold_until = station.daemon.state.authorization.hold_until
        assert hold_until == clock.now() + timedelta(seconds=180)
        journaled = station.store.store.session_hold_until(first["session_id"])
        assert journaled == hold_until  # journaled through the session port
        await poll(station, clock, 99)  # 189 s: past the first grace, still waiting
        assert station.daemon.state.phase.value == "Authorized"
        await poll(station, clock, 1)  # 190 s: the plug-in timeout (not the driver)
        assert station.daemon.state.stop_reason.value == "Timeout"
        await poll(station, clock, 1)  # 191 s: the connector is free again
        assert station.daemon.state.phase.value == "Available"
        await settle(station)
        assert gateway.ops() == ["preauthorize"]  # kept until the extended deadline
        second = await tap(station)
        assert (second["result"], second["reason"]) == ("accepted", "hold_reused")
        assert station.daemon.state.authorization.hold_until == hold_until
        left_s = (hold_until - clock.now()).total_seconds()
        await poll(station, clock, int(left_s) - 1)  # a second before the deadline
        assert station.daemon.state.phase.value == "Authorized"
        while station.daemon.state.phase.value == "Authorized":
            await poll(station, clock, 1)
        assert station.daemon.state.stop_reason.value == "Timeout"
        assert hold_until <= clock.now() < hold_until + timedelta(seconds=2)
        await settle(station)
        assert gateway.ops() == ["preauthorize", "void"]
        assert payments(station)[0][2] == "voided"

    run(tmp_path, body)


def test_the_banners_deadline_is_the_holds_when_it_comes_first(tmp_path):
    """grace 60 s < connection_timeout_s 100: `plug_in_until` (the screen warns 20 s before
    it) is the hold's deadline, and a touch moves it."""

    async def body(station, car, clock, published, gateway) -> None:
        car.plugged = False
        await tap(station)
        hold_until = station.daemon.state.authorization.hold_until
        assert station.status.snapshot()["plug_in_until"] == _iso(hold_until)
        await poll(station, clock, 30)
        await station.driver_api.touch({"op": "touch"})
        moved = station.daemon.state.authorization.hold_until
        assert moved == clock.now() + timedelta(seconds=60)
        assert station.status.snapshot()["plug_in_until"] == _iso(moved)

    run(tmp_path, body, payment={"hold_grace_s": 60})


def _iso(moment: datetime) -> str:
    from terminal.kernel.clock import iso_utc

    return iso_utc(moment)
