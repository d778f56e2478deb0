"""`evterm demo`: the whole terminal on simulated hardware.

The station simulator (car, power stage and meter on Modbus TCP) and the daemon as
separate processes on a scaled clock, then scripted sessions through the daemon's
local API with a live readout and the receipts (terminal/demo_script.py).
`--meter-only` shows just the meter through the real driver. Later issues add the UI,
the card readers and the backend.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
from decimal import Decimal

from drivers.meter import open_meter
from drivers.meter.monitor import MeterMonitor


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run the terminal on simulated hardware")
    demo.add_argument("--speed", type=float, default=30.0,
                      help="simulated seconds per real second (default 30)")
    demo.add_argument("--folder", default="var/demo",
                      help="where the demo keeps its config, database and logs")
    demo.add_argument("--keep", action="store_true",
                      help="after the scripted sessions, keep running for hands-on use")
    demo.add_argument("--meter-only", action="store_true",
                      help="only the meter simulator and a live meter readout")
    demo.add_argument("--model", default="eastron_sdm630", help="meter model (--meter-only)")
    demo.add_argument("--duration-s", type=float, default=0,
                      help="--meter-only: stop after this many seconds (0 = until Ctrl-C)")
    demo.set_defaults(func=run)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def run(args: argparse.Namespace) -> int:
    if args.meter_only:
        return _run_meter_only(args)
    from terminal.demo_script import run_scripted

    return run_scripted(args)


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
