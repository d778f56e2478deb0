"""The ZVT series of bench/bench_taps.py: tap -> decision with an external ZVT payment
terminal (`[payment] terminal = zvt`), every part its own process.

The stack of tests/integration/zvt_rig.py: the station simulator, `evterm sim zvt` (the
payment terminal on TCP, with its control socket), the loopback backend simulator and
the daemon. The daemon keeps the terminal waiting for a card (Read card 06 C0); a tap is
the control socket's `present`. Per tap:

- `present_to_decision_ms`: just before `present` is sent on the simulator's control
  socket -> the daemon's `tap` event at a local-API subscriber. The whole path: the
  simulator's card wait noticing the card, its Read card answer, the token, the journal,
  the ZVT pre-authorisation (ACK, intermediate statuses, Status information, receipt
  lines, Completion), the decision published.
- `present_to_card_ms`: the same start -> the daemon's `card_present` event (the Read
  card answer taken by the daemon). Mostly the simulator's card-wait polling.
- `decision_ms`: the daemon's own figure in the `tap` event (the Read card answer
  received -> decision published): our overhead plus the pre-authorisation exchange.

The simulator's own delays at its default behaviour (hw_mocks/zvt_sim.py): its card
wait looks for a presented card every 50 ms (CARD_POLL_S, not configurable; 0-50 ms,
about 25 ms on average, inside `present_to_card_ms` only); `slow_s` is 0, so the
intermediate statuses ("insert card", "waiting for host") are sent at once, with no
"please wait" time. The default is therefore already the simulator's zero-delay
setting; `--zvt-slow-s` runs the series again with `slow_s` "please wait" seconds per
pre-authorisation (statuses every 0.5 s), as a real terminal talking to its host would.

Every accepted tap's session is stopped (`stop`, reason Local) and the daemon waited
for until it is Available and the terminal waits for a card again, so the hold is
reversed at the terminal and every tap is a new pre-authorisation.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stats import summary

from tests.integration.zvt_rig import ZvtRig, zvt_rig

CARD = "visa"
TAP_TIMEOUT_S = 20.0


def _tap(zvt: ZvtRig) -> tuple[dict[str, Any], float, float | None]:
    """Present CARD once; (the tap event, present->tap ms, present->card_present ms)."""
    events = zvt.events or zvt.subscribe()
    zvt.wait_card_wait()
    mark = events.mark()
    sent_s = time.monotonic()
    zvt.control("present", card=CARD)
    outcome = events.tap(mark, TAP_TIMEOUT_S)
    tap_index = events.messages.index(outcome, mark)
    card_ms = None
    for index in range(mark, tap_index):
        if events.messages[index].get("type") == "card_present":
            card_ms = (events.arrival_s[index] - sent_s) * 1000
            break
    return outcome, (events.arrival_s[tap_index] - sent_s) * 1000, card_ms


def _end_session(zvt: ZvtRig, outcome: dict[str, Any]) -> None:
    """Stop the tap's session; its hold is reversed at the terminal."""
    if outcome["result"] != "accepted":
        return
    reply = zvt.rig.api("stop", reason="Local")
    if not reply.get("ok"):
        raise RuntimeError(f"stop refused: {reply}")
    zvt.rig.wait_phase("Available", timeout_s=20)
    zvt.wait_settled(outcome["session_id"], "voided")


def run_series(zvt: ZvtRig, taps: int, slow_s: float) -> dict[str, Any]:
    """`taps` taps with the simulator's `slow_s` set; p50/p95/max of each figure."""
    zvt.control("set", slow_s=slow_s)
    whole_ms: list[float] = []
    card_ms: list[float] = []
    own_ms: list[float] = []
    outcomes: dict[str, int] = {}
    reversed_before = len(zvt.control("status")["reversed"])
    for _ in range(taps):
        outcome, whole, card = _tap(zvt)
        if outcome["result"] == "accepted" and outcome.get("decided_by") != "zvt":
            raise RuntimeError(f"a tap not decided by the ZVT terminal: {outcome}")
        whole_ms.append(whole)
        if card is not None:
            card_ms.append(card)
        if outcome.get("decision_ms") is not None:
            own_ms.append(float(outcome["decision_ms"]))
        outcomes[outcome["reason"]] = outcomes.get(outcome["reason"], 0) + 1
        _end_session(zvt, outcome)
    state = zvt.control("status")  # the simulator state, as in its --state file
    if state["reservations"]:
        raise RuntimeError(f"holds left at the terminal after the series: "
                           f"{state['reservations']}")
    reversals = len(state["reversed"]) - reversed_before
    if reversals != outcomes.get("accepted", 0):
        raise RuntimeError(f"{outcomes.get('accepted', 0)} holds taken but {reversals} "
                           "reversed at the terminal")
    return {"simulator_slow_s": slow_s,
            "present_to_decision_ms": summary(whole_ms),
            "present_to_card_ms": summary(card_ms),
            "decision_ms": summary(own_ms), "outcomes": outcomes,
            "holds_reversed": reversals}


def zvt_series(folder: Path, taps: int, slow_s: float | None) -> dict[str, Any]:
    """The ZVT series at the simulator's default speed, and with `slow_s` when given."""
    with zvt_rig(folder) as zvt:
        result = {"default_speed": run_series(zvt, taps, 0.0)}
        if slow_s:
            result["slow"] = run_series(zvt, taps, slow_s)
    result["note"] = ("present_to_decision_ms: control-socket present -> the daemon's tap "
                      "event at a local-API subscriber; present_to_card_ms: -> its "
                      "card_present event (the simulator polls its card wait every 50 ms); "
                      "decision_ms: the daemon's own (Read card answer -> decision, with "
                      "the ZVT pre-authorisation). Each session stopped and its hold "
                      "reversed before the next tap.")
    return result
