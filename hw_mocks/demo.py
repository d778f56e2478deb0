"""`evterm demo`: the whole terminal on simulated hardware (hw_mocks/demo_stack.py).

mosquitto, a private pcscd with the virtual card reader, the backend simulator (CSMS and
payment gateway), the station simulator (car, power stage, DC meter on Modbus), the
daemon and the touchscreen app, on a clock running `--speed` times faster.

- With a display (DISPLAY set, no `--headless`): the touchscreen opens in a window and
  this terminal becomes the simulator's control panel: plug the car, tap cards, take
  the network away, start from the app (commands: `help`).
- Without one (SSH, CI) or with `--headless`: the scripted walk of
  hw_mocks/demo_scenario.py runs on a private Xvfb — a charge card session, a bank
  card session, a declined card, an offline period, an app start, a problem report,
  a charger fault and a daemon restart — saving a screenshot of every screen in every
  language to `--screenshots`, then prints the receipts and what the backend received.
  `--keep` then hands over to the control panel.
`--meter-only` shows just the meter simulator through the real Modbus driver.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from decimal import Decimal
from pathlib import Path

from drivers.meter import open_meter
from drivers.meter.monitor import MeterMonitor
from hw_mocks.ports import free_port

DEFAULT_SCREENSHOTS = "var/demo-screens"


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run the terminal on simulated hardware")
    demo.add_argument("--speed", type=float, default=30.0,
                      help="simulated seconds per real second (default 30)")
    demo.add_argument("--folder", default=None,
                      help="where the demo keeps its config, database and logs "
                           "(default: a new folder under /tmp)")
    demo.add_argument("--headless", action="store_true",
                      help="run the scripted scenario on a virtual screen even when a "
                           "display exists")
    demo.add_argument("--screenshots", default=DEFAULT_SCREENSHOTS,
                      help=f"folder for the scenario's screenshots (default "
                           f"{DEFAULT_SCREENSHOTS})")
    demo.add_argument("--size", default=None,
                      help="screen size WIDTHxHEIGHT (default 1280x800 in a window, "
                           "800x480 for the screenshots)")
    demo.add_argument("--languages", default="en,de,fr,nl",
                      help="languages photographed for every screen (default en,de,fr,nl)")
    demo.add_argument("--keep", action="store_true",
                      help="after the scripted scenario, keep running with the control panel")
    demo.add_argument("--meter-only", action="store_true",
                      help="only the meter simulator and a live meter readout")
    demo.add_argument("--model", default="eastron_sdm630", help="meter model (--meter-only)")
    demo.add_argument("--duration-s", type=float, default=0,
                      help="--meter-only: stop after this many seconds (0 = until Ctrl-C)")
    demo.set_defaults(func=run)


def start_meter_sim(model: str, port: int, *extra: str) -> subprocess.Popen[str]:
    """Start `evterm sim meter` on TCP and wait for its ready line."""
    from hw_mocks.rig import wait_ready

    proc = subprocess.Popen(
        [sys.executable, "-m", "terminal.cli", "sim", "meter", "--model", model,
         "--tcp", f"127.0.0.1:{port}", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_ready(proc, "meter simulator", details=lambda: "see its messages above")
    return proc


def run(args: argparse.Namespace) -> int:
    if args.meter_only:
        return _run_meter_only(args)
    interactive = bool(os.environ.get("DISPLAY")) and not args.headless
    return _run_stack(args, interactive)


# ---- the whole terminal ------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, flush=True)


def _run_stack(args: argparse.Namespace, interactive: bool) -> int:
    from hw_mocks.demo_scenario import Scenario
    from hw_mocks.demo_stack import DemoStack

    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="evdemo-"))
    if args.folder:
        shutil.rmtree(folder / "rig" / "state", ignore_errors=True)
    size = args.size or ("1280x800" if interactive else "800x480")
    stack = DemoStack(folder, speed=args.speed, ui_size=size,
                      display=os.environ.get("DISPLAY") if interactive else None)
    _say(f"evterm demo: starting mosquitto, pcscd with the virtual reader, the backend "
         f"simulator, the station simulator, the daemon and the touchscreen ({size}) at "
         f"{args.speed:g}x; files in {folder}")
    try:
        stack.start()
        _say("everything is running")
        if not interactive:
            shots = Path(args.screenshots)
            shutil.rmtree(shots, ignore_errors=True)
            shots.mkdir(parents=True)
            languages = tuple(code.strip() for code in args.languages.split(",") if code.strip())
            scenario = Scenario(stack, shots, languages, say=_say)
            scenario.run_all()
            _print_receipts(scenario.receipts)
            _print_backend(stack)
            _say(f"\nScreenshots: {shots.resolve()}")
        if interactive or args.keep:
            _control_panel(stack)
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        _say(f"evterm demo: {type(exc).__name__}: {exc}")
        _say(f"(logs in {folder})")
        return 1
    finally:
        stack.close()
    return 0


def _print_receipts(receipts: dict[str, str]) -> None:
    for name, text in receipts.items():
        if name.endswith("(en)") or name.endswith("(de)"):
            _say(f"\n== Receipt {name}\n{text}")


def _print_backend(stack: object) -> None:
    from hw_mocks.demo_stack import DemoStack

    assert isinstance(stack, DemoStack) and stack.backend is not None
    view = stack.wait_delivered()
    _say("\n== What the backend received (every message exactly once, in order)")
    by_session: dict[str, Counter[str]] = {}
    for event in view["events"]:
        kind = event["payload"].get("event_type") or event["kind"]
        by_session.setdefault(event.get("session_id") or "-", Counter())[kind] += 1
    for session_id, kinds in by_session.items():
        summary = ", ".join(f"{kind} x{count}" for kind, count in kinds.items())
        _say(f"  session {session_id}: {summary}")
    _say(f"  order violations: {len(view['order_violations'])}")
    ledger = stack.backend.admin("ledger")["payments"]
    for payment in ledger:
        _say(f"  card payment {payment['masked_pan']} ({payment['scheme']}): "
             f"{payment['status']}, approved {payment['approved']}, captured "
             f"{payment['captured']} {payment['currency']}")


HELP = """Control panel (the car, the cards, the network):
  plug | unplug                 the car's cable
  tap CARD                      present a card: visa, mastercard, amex, visa-declined,
                                visa-expired, rfid-7 (charge card), rfid-10 (blocked),
                                the technician card: tap rfid:04AABBCCDDEEFF, then the
                                PIN 2468 on the screen (or evterm service login over SSH)
  app                           the driver scans the QR code and starts from the phone
  offline | online              the network goes away / comes back
  fault KIND [CODE]             no_reply, garbage, charger_error (code 1-6), ...; clear
  status | receipt [LANG]       the daemon's state; the latest receipt
  shot FILE                     a screenshot of the touchscreen
  quit"""


def _control_panel(stack: object) -> None:
    from hw_mocks.demo_stack import DemoStack

    assert isinstance(stack, DemoStack) and stack.rig is not None
    rig = stack.rig
    _say(HELP)
    while True:
        try:
            line = input("evterm demo> ")
        except EOFError:
            return
        words = shlex.split(line)
        if not words:
            continue
        cmd, rest = words[0], words[1:]
        try:
            if cmd in ("quit", "exit"):
                return
            if cmd == "help":
                _say(HELP)
            elif cmd in ("plug", "unplug"):
                rig.ev(cmd)
            elif cmd == "tap" and rest:
                outcome = stack.tap(rest[0])
                _say(f"  {outcome['result']}: {outcome.get('message', '')}")
            elif cmd == "app":
                _say(f"  {stack.app_start()}")
            elif cmd == "offline":
                stack.offline()
            elif cmd == "online":
                stack.online()
            elif cmd == "fault" and rest:
                extra = {"code": int(rest[1])} if len(rest) > 1 else {}
                rig.ev("fault", kind=rest[0], **extra)
            elif cmd == "clear":
                rig.ev("clear")
            elif cmd == "status":
                state = rig.state()
                _say("  " + ", ".join(f"{k}={state.get(k)}" for k in (
                    "phase", "energy_wh", "power_w", "cost", "cost_cap", "backend_online")))
            elif cmd == "receipt":
                reply = rig.api("receipt", language=rest[0] if rest else "en")
                _say(reply["text"] if reply.get("ok") else f"  {reply.get('error')}")
            elif cmd == "shot" and rest and stack.screen is not None:
                _say(f"  {stack.screen.screenshot(Path(rest[0]).resolve())}")
            else:
                _say(f"  unknown command {line!r}; type help")
        except Exception as exc:  # the panel survives a refused command
            _say(f"  {type(exc).__name__}: {exc}")


# ---- meter only --------------------------------------------------------------------------


def _kwh(value: Decimal | None) -> str:
    return "-" if value is None else f"{value / 1000:,.3f} kWh"


def _one_decimal(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.1f}"


async def _readout(model: str, url: str, duration_s: float) -> None:
    meter = open_meter(model, url)
    monitor = MeterMonitor(meter)
    loop = asyncio.get_running_loop()
    start = loop.time()
    first: Decimal | None = None
    print(f"meter {meter.model.name} at {url}; Ctrl-C to stop")
    try:
        while not duration_s or loop.time() - start < duration_s:
            outcome = await monitor.poll()
            r = outcome.reading
            if r is None:
                print(f"  meter not answering: {outcome.error}")
            else:
                first = r.energy_import_wh if first is None else first
                power = "-" if r.power_w is None else f"{r.power_w / 1000:7.1f} kW"
                print(
                    f"  {r.timestamp:%H:%M:%S}  counter {_kwh(r.energy_import_wh)}  "
                    f"session {_kwh(r.energy_import_wh - first)}  {power}  "
                    f"{_one_decimal(r.voltage_v)} V  {_one_decimal(r.current_a)} A  "
                    f"serial {r.serial}"
                    + (f"  FAULT {outcome.fault.kind}" if outcome.fault else "")
                )
            await asyncio.sleep(1.0)
    finally:
        meter.close()


def _run_meter_only(args: argparse.Namespace) -> int:
    port = free_port()
    sim = start_meter_sim(args.model, port, "--ramp-s", "10")
    try:
        asyncio.run(_readout(args.model, f"tcp://127.0.0.1:{port}", args.duration_s))
    except KeyboardInterrupt:
        pass
    finally:
        sim.terminate()
        sim.wait(timeout=5)
    return 0
