"""The scripted demo: two sessions on the simulated station, shown as they happen.

1. A charge card session: the car charges until its battery is full, stays plugged
   two simulated minutes (the idle fee accrues), leaves; the receipt is printed.
2. A session with a 5.00 EUR cost cap (as a card pre-authorisation would give): the
   terminal stops delivery before the cap is passed.
Then it prints what the outbox holds for the backend. With `--keep` everything keeps
running and prints the commands to drive it by hand.
"""

from __future__ import annotations

import argparse
import shutil
import time
from decimal import Decimal
from pathlib import Path

from hw_mocks.rig import REPO, Rig, RigError
from terminal.store import Store

DEMO_TARIFF = REPO / "examples" / "tariffs" / "de_dc_hpc_demo.json"


def _line(rig: Rig) -> str:
    state = rig.state()
    energy = Decimal(state["energy_wh"] or 0) / 1000
    power = Decimal(state["power_w"] or 0) / 1000
    cost = state["cost"]
    money = f"{cost['incl_vat']} {cost['currency']}" if cost else "-"
    cap = f" of {state['cost_cap']}" if state["cost_cap"] else ""
    return (f"  {state['phase']:<14} {energy:9.3f} kWh {power:7.1f} kW  {money}{cap}"
            + (f"  ({state['stop_reason']})" if state["stop_reason"] else ""))


def _watch(rig: Rig, until: tuple[str, ...], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        print(_line(rig), flush=True)
        if rig.state()["phase"] in until:
            return
        time.sleep(1.0)
    raise RigError(f"the session did not reach {' or '.join(until)}")


def _session(rig: Rig, title: str, idle_s: float, **start: object) -> None:
    print(f"\n== {title}", flush=True)
    reply = rig.api("start", **start)
    print(f"  authorised: session {reply['session_id']}")
    rig.ev("plug")
    print("  car plugged in")
    _watch(rig, ("Finishing",))
    if idle_s:
        end = time.monotonic() + idle_s / rig.speed
        while time.monotonic() < end:
            print(_line(rig), flush=True)
            time.sleep(1.0)
    rig.ev("unplug")
    print("  car unplugged")
    rig.wait_phase("Available", timeout_s=20)
    receipt = rig.api("receipt", session_id=reply["session_id"])
    print("\n" + receipt["text"])


def run_scripted(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    shutil.rmtree(folder / "state", ignore_errors=True)
    rig = Rig(folder, speed=args.speed, tariff_file=DEMO_TARIFF, poll_interval_s=1.0,
              operator="evterm demo operator",
              curve={"max_power_w": 150_000, "ramp_s": 10, "constant_s": 240,
                     "taper_s": 240, "taper_end_power_w": 20_000})
    rig.write_config()
    try:
        rig.start_station()
        ready = rig.start_daemon()
        print(f"evterm demo: station simulator and daemon running at {args.speed:g}x "
              f"(config {rig.config_path}, database {ready['database']})")
        _session(rig, "Session 1: charge card, battery full, 3 minutes idle", 180,
                 id_token="04A1B2C3D4E5F6")
        _session(rig, "Session 2: 5.00 EUR pre-authorised", 0, id_token="APP-USER-42",
                 source="app", cost_cap="5.00")
        store = Store.open(rig.database, create=False)
        pending = store.outbox(pending_only=True)
        store.close()
        print(f"outbox: {len(pending)} messages waiting for the backend link:")
        for message in pending:
            kind = message.payload.get("event_type", message.kind)
            print(f"  {message.idempotency_key:<52} {kind}")
        if args.keep:
            print("\nStill running; Ctrl-C to stop. Drive it by hand:\n"
                  f"  evterm sim ev plug --control {rig.control_path}\n"
                  f"  evterm session --socket {rig.socket_path} start --id-token MYCARD\n"
                  f"  evterm session --socket {rig.socket_path} status\n"
                  f"  evterm session --socket {rig.socket_path} stop\n"
                  f"  evterm sim ev unplug --control {rig.control_path}\n"
                  f"  evterm session --socket {rig.socket_path} receipt --language de")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except RigError as exc:
        print(f"evterm demo: {exc}")
        return 1
    finally:
        rig.close()
    return 0
