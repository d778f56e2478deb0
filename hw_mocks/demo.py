"""`evterm demo`: the whole terminal on simulated hardware (hw_mocks/demo_stack.py).

mosquitto, a private pcscd with the virtual card reader, the backend simulator (CSMS and
payment gateway), the station simulator (car, power stage, DC meter), the daemon and the
touchscreen app, on a clock running `--speed` times faster. The DC meter is the LEM
DCBM 400/600 (`lem_dcbm400600`), a calibrated meter that signs every session's begin
and end (OCMF, Eichrecht) over its HTTP API; `--meter-model` picks another shipped
model (`isabellenhuette_iem_dcr` signs too; `carlo_gavazzi_em580` is a plain Modbus
meter).

- With a display (DISPLAY set, no `--headless`): the touchscreen opens in a window and
  this terminal becomes the simulator's control panel: plug the car, tap cards, take
  the network away, start from the app (commands: `help`).
- Without one (SSH, CI) or with `--headless`: the scripted walk of
  hw_mocks/demo_scenario.py runs on a private Xvfb — a charge card session, a bank
  card session, a declined card, an offline period, an app start, a problem report,
  a charger fault and a daemon restart — saving a screenshot of every screen in every
  language to `--screenshots`, then prints the receipts, what the backend received and,
  on a signing meter, each session's signed begin and end register values, whether the
  OCMF pair verifies (hw_mocks/demo_signed.py) and the last receipt's transparency QR
  text.
  `--keep` then hands over to the control panel.

The demo never deletes a folder it is given. `--screenshots DIR`: a missing or empty
DIR is created and marked as the demo's (MARKER); in a DIR marked so, only the
screenshots an earlier run wrote (SHOT_NAME) are replaced; any other DIR (your home
folder, a folder with your files) gets a new subfolder `evterm-demo-screens-*` for the
screenshots. The daemon's socket is printed with a ready-to-paste `evterm service`
line; `evterm service restart` restarts the daemon as systemd would
(hw_mocks.demo_stack.DaemonSupervisor).
`--meter-only` shows just the meter simulator through the real Modbus driver.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from drivers.meter import open_meter
from drivers.meter.monitor import MeterMonitor
from drivers.meter.registermap import MeterMapError, shipped_model_path
from hw_mocks.ports import free_port

# The demo's DC meter: a calibrated meter that signs OCMF documents (Eichrecht), served
# over its HTTP API by the station simulator (hw_mocks/lem_sim.py); any shipped model
# can stand in for it (`--meter-model`). Here, not in demo_stack: `evterm` imports this
# module for every command, demo_stack only when a demo runs.
DEMO_METER_MODEL = "lem_dcbm400600"
DEFAULT_SCREENSHOTS = "var/demo-screens"
MARKER = ".evterm-demo"  # in a folder the demo created (screenshots, --folder)
SHOT_NAME = re.compile(r"\d{2,}-[a-z0-9-]+-[a-z]{2}\.png")  # Scenario's NN-name-LANG.png


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the terminal on simulated hardware",
        description="The whole terminal on simulated hardware: mosquitto, a private pcscd "
        "with a virtual card reader, the backend simulator (CSMS and payment gateway), the "
        "station simulator (car, power stage, DC meter: by default the LEM DCBM 400/600, "
        "which signs every session's begin and end (OCMF)), the daemon and the touchscreen. "
        "With a display this shell becomes the control panel (plug, tap cards, take the "
        "network away; type help); without one (or --headless) a scripted walk photographs "
        "every screen and prints the receipts. Nothing you name is deleted: screenshots go "
        "into a folder of the demo's own.")
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
    demo.add_argument("--meter-model", default=DEMO_METER_MODEL,
                      help=f"the station's DC meter, a shipped model (default "
                           f"{DEMO_METER_MODEL}, a signing meter; e.g. "
                           f"isabellenhuette_iem_dcr signs too, carlo_gavazzi_em580 is a "
                           f"plain Modbus meter)")
    demo.add_argument("--payment-terminal", choices=("builtin", "zvt"), default="builtin",
                      help="who takes bank cards: builtin (the virtual PC/SC reader, the "
                      "backend's gateway) or zvt (`evterm sim zvt`, an external payment "
                      "terminal; tap zvt:visa, zvt:visa-declined)")
    demo.add_argument("--meter-only", action="store_true",
                      help="only the meter simulator and a live meter readout")
    demo.add_argument("--model", default="eastron_sdm630",
                      help="--meter-only: the Modbus meter model (default eastron_sdm630)")
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

    meter_model = str(args.meter_model)
    try:
        shipped_model_path(meter_model)
    except MeterMapError as exc:
        _say(f"evterm demo: --meter-model: {exc}")
        return 2
    try:
        if args.folder:
            folder, reused = claim_folder(Path(args.folder), "evterm-demo-")
            if reused:  # a fresh journal: the one the earlier run's daemon created
                shutil.rmtree(folder / "rig" / "state", ignore_errors=True)
        else:
            folder = Path(tempfile.mkdtemp(prefix="evdemo-"))
        shots = None if interactive else screenshots_folder(Path(args.screenshots))
    except OSError as exc:
        _say(f"evterm demo: {exc}")
        return 2
    size = args.size or ("1280x800" if interactive else "800x480")
    stack = DemoStack(folder, speed=args.speed, ui_size=size, meter_model=meter_model,
                      display=os.environ.get("DISPLAY") if interactive else None,
                      payment_terminal=args.payment_terminal)
    _say(f"evterm demo: starting mosquitto, pcscd with the virtual reader, the backend "
         f"simulator, the station simulator (meter {meter_model}), the daemon and the "
         f"touchscreen ({size}) at {args.speed:g}x; files in {folder}")
    try:
        stack.start()
        _say("everything is running")
        _say_socket(stack.socket_path)
        if shots is not None:
            languages = tuple(code.strip() for code in args.languages.split(",") if code.strip())
            scenario = Scenario(stack, shots, languages, say=_say)
            scenario.run_all()
            _print_receipts(scenario.receipts)
            _print_backend(stack)
            _print_signed(stack)
            _print_report(stack)
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


def _say_socket(socket_path: str) -> None:
    _say(f"the daemon's local API: {socket_path}\n"
         f"  service menu from another shell: evterm service --socket {shlex.quote(socket_path)}"
         f" login --wait-card 60\n"
         f"  sessions: evterm session --socket {shlex.quote(socket_path)} status")


def claim_folder(wanted: Path, prefix: str) -> tuple[Path, bool]:
    """A folder the demo may write into and clean, never one of the user's: `wanted`
    when it is missing or empty (created, marked with MARKER) or marked by an earlier
    run (then also True: the caller removes what that run wrote, by name); else a new
    marked subfolder `prefix*` of `wanted`."""
    wanted = wanted.expanduser()
    if wanted.exists() and not wanted.is_dir():
        raise NotADirectoryError(f"{wanted}: not a folder")
    if wanted.is_dir() and (wanted / MARKER).is_file():
        return wanted, True
    if not wanted.exists() or not any(wanted.iterdir()):
        wanted.mkdir(parents=True, exist_ok=True)
        folder = wanted
    else:
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=wanted))
        _say(f"{wanted} holds other files: the demo uses {folder}")
    (folder / MARKER).write_text("made by evterm demo, which may replace what it wrote "
                                 "here\n", encoding="utf-8")
    return folder, False


def screenshots_folder(wanted: Path) -> Path:
    """Where this run's screenshots go (claim_folder); an earlier run's screenshots in it
    are removed by name (SHOT_NAME), nothing else."""
    folder, reused = claim_folder(wanted, "evterm-demo-screens-")
    if reused:
        for old in folder.iterdir():
            if SHOT_NAME.fullmatch(old.name) and old.is_file() and not old.is_symlink():
                old.unlink()
    return folder


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


def _print_signed(stack: object) -> None:
    """Each session's signed begin and end, checked again; the last receipt's QR text."""
    from hw_mocks.demo_signed import last_receipt_qr, signed_sessions, summary_lines
    from hw_mocks.demo_stack import DemoStack

    assert isinstance(stack, DemoStack) and stack.rig is not None
    database = stack.rig.database
    for line in summary_lines(signed_sessions(database), last_receipt_qr(database),
                              stack.meter_model):
        _say(line)


CARDS = ("visa, mastercard, amex, visa-declined, visa-expired, rfid-7, rfid-10, "
         "rfid:04AABBCCDDEEFF (the technician); with --payment-terminal zvt: zvt:visa, "
         "zvt:mastercard, zvt:visa-declined")
HELP = """Control panel (the car, the cards, the network):
  plug | unplug                 the car's cable
  tap CARD                      present a card: visa, mastercard, amex, visa-declined,
                                visa-expired, rfid-7 (charge card), rfid-10 (blocked),
                                the technician card: tap rfid:04AABBCCDDEEFF, then the
                                PIN 2468 on the screen (or evterm service login over SSH);
                                with --payment-terminal zvt bank cards go to the payment
                                terminal: zvt:visa, zvt:mastercard, zvt:visa-declined
  app                           the driver scans the QR code and starts from the phone
  offline | online              the network goes away / comes back
  fault KIND [CODE]             no_reply, garbage, charger_error (code 1-6), ...; clear
  status | receipt [LANG]       the daemon's state; the latest receipt
  shot FILE                     a screenshot of the touchscreen
  socket                        the daemon's socket, for evterm service / session
  quit"""


def _print_report(stack: Any) -> None:
    """The demo's last word: `evterm report` of its own sessions (the daemon's clock runs
    fast: the period is from the rig's start to the daemon's now)."""
    from terminal.report.cli import config_report

    rig = getattr(stack, "rig", None)
    if rig is None:  # nothing ran
        return
    now = datetime.fromtimestamp(rig.anchor_s + (time.time() - rig.anchor_s) * rig.speed, UTC)
    since = datetime.fromtimestamp(rig.anchor_s, UTC) - timedelta(minutes=1)
    text = config_report(rig.config_path, since=since, until=now + timedelta(minutes=1),
                         now=now)
    _say(f"\n--- the report of the demo's sessions (evterm report --config "
         f"{rig.config_path}) ---\n{text}")


def _control_panel(stack: object) -> None:
    _say(HELP)
    while True:
        try:
            line = input("evterm demo> ")
        except EOFError:
            return
        if not panel_command(stack, line):
            return


def panel_command(stack: object, line: str) -> bool:
    """One line of the control panel, its outcome said; False to quit. A line that
    cannot be read or a command that is refused is said, never raised."""
    from hw_mocks.demo_stack import DemoStack

    assert isinstance(stack, DemoStack) and stack.rig is not None
    rig = stack.rig
    try:
        words = shlex.split(line)
    except ValueError as exc:  # an unmatched quote
        _say(f"  cannot read that line ({exc}); type help")
        return True
    if not words:
        return True
    cmd, rest = words[0], words[1:]
    try:
        if cmd in ("quit", "exit"):
            return False
        if cmd == "help":
            _say(HELP)
        elif cmd in ("plug", "unplug"):
            status = rig.ev(cmd)
            _say("  the car is plugged in" if status.get("plugged")
                 else "  the car is unplugged")
        elif cmd == "tap":
            if not rest:
                _say(f"  tap: which card? tap CARD, CARD one of {CARDS}")
                return True
            outcome = stack.tap(rest[0])
            _say(f"  {outcome['result']}: {outcome.get('message', '')}")
        elif cmd == "app":
            _say(f"  {stack.app_start()}")
        elif cmd == "offline":
            stack.offline()
            _say("  the network is gone (the broker stopped)")
        elif cmd == "online":
            stack.online()
            _say("  the network is back")
        elif cmd == "fault":
            _fault(rig, rest)
        elif cmd == "clear":
            rig.ev("clear")
            _say("  faults cleared")
        elif cmd == "status":
            state = rig.state()
            _say("  " + ", ".join(f"{k}={state.get(k)}" for k in (
                "phase", "energy_wh", "power_w", "cost", "cost_cap", "backend_online")))
        elif cmd == "receipt":
            reply = rig.api("receipt", language=rest[0] if rest else "en")
            _say(reply["text"] if reply.get("ok") else f"  {reply.get('error')}")
        elif cmd == "shot" and rest and stack.screen is not None:
            _say(f"  {stack.screen.screenshot(Path(rest[0]).resolve())}")
        elif cmd == "socket":
            _say_socket(stack.socket_path)
        else:
            _say(f"  unknown command {line!r}; type help")
    except Exception as exc:  # the panel survives a refused command
        _say(f"  {cmd}: {exc}")
    return True


def _fault(rig: Any, rest: list[str]) -> None:
    """`fault KIND [CODE]` on the station simulator (hw_mocks.rig.Rig)."""
    if not rest:
        _say("  fault: which kind? fault KIND [CODE], e.g. fault no_reply, "
             "fault charger_error 3")
        return
    extra: dict[str, object] = {}
    if len(rest) > 1:
        if not rest[1].isdigit():
            _say(f"  fault: CODE must be a whole number (1-6), got {rest[1]!r}")
            return
        extra["code"] = int(rest[1])
    rig.ev("fault", kind=rest[0], **extra)
    _say(f"  fault {rest[0]} raised" + (f" with code {extra['code']}" if extra else "")
         + "; clear ends it")


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
