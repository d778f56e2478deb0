"""The kill -9 loop of the recovery tests, shared by the Modbus meter's test
(tests/integration/test_recovery.py) and the signing meter's
(tests/integration/test_signed_recovery.py).

Provides `crash_loop(rig, rng, kills_while_charging, max_kills)`: with the station
simulator running, starts the daemon, drives the session a little (start and plug in,
stop, unplug while the terminal is up), waits a random moment, kills the daemon with
SIGKILL and now and then unplugs the car while the terminal is down; until
`kills_while_charging` kills happened while the car drew power. Then the daemon is
started once more, the car unplugged, the connector left Available and the daemon
stopped. The answer (`CrashLoop`) has the meter's counter before and after and which
sessions were open and charging at a kill, for the callers' assertions.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

from hw_mocks.rig import Rig

ENERGY_PHASES = ("Charging", "SuspendedEV", "SuspendedEVSE")
ID_TOKEN = "TOKEN-A"


@dataclass
class CrashLoop:
    counter_before_wh: Decimal
    counter_after_wh: Decimal
    kills: int = 0
    kills_while_charging: int = 0
    # sessions in an energy phase with the car drawing power when the daemon was killed
    killed_while_charging: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def start(rig: Rig) -> str:
    reply = rig.api("start", id_token=ID_TOKEN)
    assert reply["ok"], reply
    return str(reply["session_id"])


def crash_loop(rig: Rig, rng: random.Random, *, kills_while_charging: int = 50,
               max_kills: int = 150, wait_s: tuple[float, float] = (0.0, 0.4),
               next_session_p: float = 0.0) -> CrashLoop:
    """Kill the daemon at random moments until `kills_while_charging` kills happened
    while charging (at most `max_kills` kills in all); `wait_s`: the range of the
    random wait (real seconds) between driving the session and the kill;
    `next_session_p`: how often, after unplugging an ended session, the next one is
    started and plugged in before the kill (a signed session never resumes, so each
    one can be killed only once while charging)."""
    began = time.monotonic()
    result = CrashLoop(Decimal(str(rig.ev("status")["energy_import_wh"])), Decimal(0))
    while result.kills_while_charging < kills_while_charging:
        assert result.kills < max_kills, (
            f"only {result.kills_while_charging} of {result.kills} kills while charging")
        rig.start_daemon()
        state = rig.state()
        status = rig.ev("status")
        phase = state["phase"]
        if phase == "Available":
            start(rig)
            if not status["plugged"]:
                rig.ev("plug")
        elif phase in ("Finishing", "Completed", "Faulted") and status["plugged"]:
            rig.ev("unplug")
            if next_session_p and rng.random() < next_session_p and phase == "Completed":
                rig.wait_phase("Available", timeout_s=10)
                start(rig)
                rig.ev("plug")
        elif phase in ENERGY_PHASES:
            roll = rng.random()
            if roll < 0.08:
                rig.api("stop", id_token=ID_TOKEN)
            elif roll < 0.16:
                rig.ev("unplug")
        time.sleep(rng.uniform(*wait_s))
        state = rig.state()
        charging = rig.ev("status")["power_w"] > 0
        rig.kill_daemon()
        result.kills += 1
        result.kills_while_charging += charging
        if charging and state["phase"] in ENERGY_PHASES and state.get("session_id"):
            result.killed_while_charging.append(str(state["session_id"]))
        if rng.random() < 0.1 and rig.ev("status")["plugged"]:
            rig.ev("unplug")  # the driver leaves while the terminal is down
    rig.start_daemon()
    if rig.ev("status")["plugged"]:
        rig.ev("unplug")
    rig.wait_phase("Available", timeout_s=20)
    rig.stop_daemon()
    result.counter_after_wh = Decimal(str(rig.ev("status")["energy_import_wh"]))
    result.duration_s = time.monotonic() - began
    return result
