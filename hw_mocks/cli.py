"""`evterm sim ...`: the simulated hardware, usable on a technician's bench too."""

from __future__ import annotations

import argparse
import sys

from drivers.meter.registermap import MeterMapError, load_model
from drivers.meter.transport import BAUD_RATES, PARITIES
from hw_mocks.ev_model import PowerCurve
from hw_mocks.meter_sim import FAULT_KINDS, Fault, FaultSpecError, MeterSimulator, run_forever


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:5020")
    return host, int(port)


def _fault(text: str) -> Fault:
    try:
        return Fault.parse(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    sim = subparsers.add_parser("sim", help="simulated hardware (meter, ...)")
    sub = sim.add_subparsers(dest="sim_command", required=True)
    meter = sub.add_parser(
        "meter",
        help="serve a meter model over Modbus TCP or RTU, driven by an EV power curve",
        description=f"Faults: {', '.join(FAULT_KINDS)}; give --fault KIND[@START_S][+DURATION_S].",
    )
    meter.add_argument("--model", required=True, help="shipped model name or map file path")
    where = meter.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=_host_port, metavar="HOST:PORT")
    where.add_argument("--rtu", metavar="PATH", help="serial device, e.g. one end of a pty pair")
    meter.add_argument("--unit", type=int, default=0, help="unit id (default: model's)")
    meter.add_argument("--baud", type=int, choices=BAUD_RATES, default=None)
    meter.add_argument("--parity", choices=PARITIES, default=None)
    meter.add_argument("--stop-bits", type=int, choices=(1, 2), default=None)
    meter.add_argument("--no-line-time", action="store_true",
                       help="RTU: answer at once instead of after the real line time")
    curve = PowerCurve()
    meter.add_argument("--max-power-w", type=float, default=curve.max_power_w)
    meter.add_argument("--ramp-s", type=float, default=curve.ramp_s)
    meter.add_argument("--constant-s", type=float, default=curve.constant_s)
    meter.add_argument("--taper-s", type=float, default=curve.taper_s)
    meter.add_argument("--taper-end-power-w", type=float, default=curve.taper_end_power_w)
    meter.add_argument("--voltage-v", type=float, default=curve.voltage_v)
    meter.add_argument("--start-energy-wh", type=float, default=12_345_678.0)
    meter.add_argument("--serial", default="20260001")
    meter.add_argument("--fault", type=_fault, action="append", default=[],
                       metavar="KIND[@START_S][+DURATION_S]")
    meter.set_defaults(func=run_meter)


def run_meter(args: argparse.Namespace) -> int:
    try:
        model = load_model(args.model)
    except MeterMapError as exc:
        print(f"evterm sim meter: {exc}", file=sys.stderr)
        return 2
    baud = args.baud or model.default_baud
    sim = MeterSimulator(
        model=model,
        curve=PowerCurve(
            max_power_w=args.max_power_w,
            ramp_s=args.ramp_s,
            constant_s=args.constant_s,
            taper_s=args.taper_s,
            taper_end_power_w=args.taper_end_power_w,
            voltage_v=args.voltage_v,
        ),
        start_energy_wh=args.start_energy_wh,
        serial=args.serial,
        unit_id=args.unit,
        faults=args.fault,
        line_baud=None if (args.tcp or args.no_line_time) else baud,
    )
    return run_forever(
        sim,
        tcp=args.tcp,
        rtu=args.rtu,
        baud=baud,
        parity=args.parity or model.default_parity,
        stop_bits=args.stop_bits or model.default_stop_bits,
    )
