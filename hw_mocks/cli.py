"""`evterm sim ...`: the simulated hardware, usable on a technician's bench too.

- `sim meter`: one meter model with a car charging from the start (hw_mocks.meter_sim)
- `sim station`: car + charger power stage + meter behind one Modbus TCP port, played
  through a control socket (hw_mocks.station_sim)
- `sim ev ...`: the control socket's client (plug, unplug, suspend, resume, fault,
  clear, status)
- `sim tap`, `sim pcscd`, `sim rfid`: card emulators for a real pcscd (vpcd) and a
  125 kHz serial reader on a pty (hw_mocks.card_cli)
- `sim backend-loopback`, `sim backend-admin`, `sim gateway-keys`: the operator's
  backend and payment gateway (hw_mocks.backend_cli)
- `sim zvt`: a ZVT payment terminal on TCP with a control socket (hw_mocks.zvt_sim)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from drivers.meter.registermap import MeterMapError, MeterModel, load_model
from drivers.meter.transport import BAUD_RATES, PARITIES
from hw_mocks import backend_cli, card_cli
from hw_mocks.ev_model import CHARGER_FAULT_KINDS, ChargingPoint, Fault, FaultSpecError, PowerCurve
from hw_mocks.meter_sim import (
    FAULT_KINDS,
    SIGNING_FAULT_KINDS,
    MeterSimulator,
    SimTime,
    fault_kinds,
    run_forever,
)
from terminal.cliargs import positive_number
from terminal.kernel.clock import make_clock


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:5020")
    return host, int(port)


def _fault_parser(allowed: tuple[str, ...]) -> Callable[[str], Fault]:
    def parse(text: str) -> Fault:
        try:
            return Fault.parse(text, allowed)
        except FaultSpecError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _add_clock(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clock-speed", type=positive_number, default=1.0, metavar="X",
        help="simulated time runs X times faster (give the daemon the same; default 1)",
    )
    parser.add_argument(
        "--clock-anchor", type=float, default=None, metavar="EPOCH_S",
        help="epoch seconds where simulated and real time agree (default: now)",
    )


def _add_curve(parser: argparse.ArgumentParser) -> None:
    curve = PowerCurve()
    parser.add_argument("--max-power-w", type=float, default=curve.max_power_w, metavar="W",
                        help="the car's charging power after the ramp (default %(default)g W)")
    parser.add_argument("--ramp-s", type=float, default=curve.ramp_s, metavar="S",
                        help="seconds from 0 to the full power (default %(default)g)")
    parser.add_argument("--constant-s", type=float, default=curve.constant_s, metavar="S",
                        help="seconds at the full power (default %(default)g)")
    parser.add_argument("--taper-s", type=float, default=curve.taper_s, metavar="S",
                        help="seconds the power then falls, until the battery is full "
                        "(default %(default)g)")
    parser.add_argument("--taper-end-power-w", type=float, default=curve.taper_end_power_w,
                        metavar="W", help="the power at the end of the taper (default "
                        "%(default)g W)")
    parser.add_argument("--voltage-v", type=float, default=curve.voltage_v, metavar="V",
                        help="the DC voltage while charging (default %(default)g V)")


def _curve(args: argparse.Namespace) -> PowerCurve:
    return PowerCurve(
        max_power_w=args.max_power_w,
        ramp_s=args.ramp_s,
        constant_s=args.constant_s,
        taper_s=args.taper_s,
        taper_end_power_w=args.taper_end_power_w,
        voltage_v=args.voltage_v,
    )


def _sim_time(args: argparse.Namespace) -> SimTime:
    anchor = time.time() if args.clock_anchor is None else args.clock_anchor
    return SimTime(make_clock(args.clock_speed, anchor))


def register(subparsers: argparse._SubParsersAction) -> None:
    sim = subparsers.add_parser(
        "sim", help="simulated hardware (meter, station, EV, cards, backend)")
    sub = sim.add_subparsers(dest="sim_command", required=True)
    _register_meter(sub)
    _register_station(sub)
    _register_ev(sub)
    card_cli.register(sub)
    backend_cli.register(sub)
    _register_zvt(sub)


def _register_meter(sub: argparse._SubParsersAction) -> None:
    meter = sub.add_parser(
        "meter",
        help="serve a meter model over Modbus TCP or RTU (a signing model over HTTP), "
        "driven by an EV power curve",
        description=f"Faults: {', '.join(FAULT_KINDS)}; a signing model (--http) also "
        f"{', '.join(SIGNING_FAULT_KINDS)}; give --fault KIND[@START_S][+DURATION_S] "
        "(simulated seconds since start).",
    )
    meter.add_argument("--model", required=True, help="shipped model name or map file path")
    where = meter.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=_host_port, metavar="HOST:PORT",
                       help="serve Modbus TCP on this address, e.g. 127.0.0.1:5020")
    where.add_argument("--rtu", metavar="PATH", help="serial device, e.g. one end of a pty pair")
    where.add_argument("--http", type=_host_port, metavar="HOST:PORT",
                       help="a signing meter's HTTP API (lem_dcbm400600, "
                       "isabellenhuette_iem_dcr), e.g. 127.0.0.1:8080")
    meter.add_argument("--state", default=None, metavar="PATH",
                       help="isabellenhuette_iem_dcr: file of its key, pagination and open "
                       "transaction, kept across restarts (default: none, a new key)")
    meter.add_argument("--unit", type=int, default=0, help="unit id (default: model's)")
    meter.add_argument("--baud", type=int, choices=BAUD_RATES, default=None,
                       help="RTU: bits per second (default: the model's)")
    meter.add_argument("--parity", choices=PARITIES, default=None,
                       help="RTU: parity N, E or O (default: the model's)")
    meter.add_argument("--stop-bits", type=int, choices=(1, 2), default=None,
                       help="RTU: stop bits (default: the model's)")
    meter.add_argument("--no-line-time", action="store_true",
                       help="RTU: answer at once instead of after the real line time")
    _add_curve(meter)
    meter.add_argument("--start-energy-wh", type=float, default=12_345_678.0, metavar="WH",
                       help="the import counter at start (default %(default)g Wh)")
    meter.add_argument("--serial", default="20260001",
                       help="the serial number the meter reports (default %(default)s)")
    meter.add_argument("--fault", type=_fault_parser(FAULT_KINDS + SIGNING_FAULT_KINDS),
                       action="append", default=[], metavar="KIND[@START_S][+DURATION_S]",
                       help=f"a fault to play (repeatable): {', '.join(FAULT_KINDS)}; "
                       f"signing meters also {', '.join(SIGNING_FAULT_KINDS)}")
    _add_clock(meter)
    meter.set_defaults(func=run_meter)


def _load_model(name: str, command: str) -> MeterModel | None:
    try:
        return load_model(name)
    except MeterMapError as exc:
        print(f"evterm sim {command}: {exc}", file=sys.stderr)
        return None


HTTP_METER_DRIVERS = ("lem_dcbm", "iem_dcr")  # signing drivers with an HTTP simulator


def _signing_problem(model: MeterModel, http: bool, faults: list[Fault],
                     option: str) -> str | None:
    """Why this model cannot be served so (None: it can)."""
    if http and model.signing.get("driver") not in HTTP_METER_DRIVERS:
        return (f"{option}: {model.name} has no HTTP API (only signing models with the "
                f"{' or '.join(HTTP_METER_DRIVERS)} driver have one, e.g. lem_dcbm400600)")
    if model.signs and not http:
        return f"{model.name} is a signing meter with an HTTP API: give {option} HOST:PORT"
    allowed = fault_kinds(model)
    wrong = [f.kind for f in faults if f.kind not in allowed + CHARGER_FAULT_KINDS]
    if wrong:
        return (f"fault {wrong[0]!r} is for signing meters; {model.name} plays "
                + ", ".join(allowed))
    return None


def run_meter(args: argparse.Namespace) -> int:
    model = _load_model(args.model, "meter")
    if model is None:
        return 2
    if problem := _signing_problem(model, args.http is not None, args.fault, "--http"):
        print(f"evterm sim meter: {problem}", file=sys.stderr)
        return 2
    baud = args.baud or model.default_baud
    sim = MeterSimulator(
        model=model,
        point=ChargingPoint.charging(_curve(args)),
        start_energy_wh=args.start_energy_wh,
        serial=args.serial,
        unit_id=args.unit,
        faults=args.fault,
        line_baud=None if (args.tcp or args.no_line_time) else baud,
        sim_time=_sim_time(args),
    )
    if args.http is not None and model.signing.get("driver") == "iem_dcr":
        from pathlib import Path

        from hw_mocks import iem_dcr_sim

        try:
            iem = iem_dcr_sim.IemDcrSimulator(
                sim, serial=args.serial if args.serial != "20260001" else "1ISA0200000001",
                state_path=Path(args.state) if args.state else None)
        except (ValueError, OSError, iem_dcr_sim.SimStateError) as exc:
            print(f"evterm sim meter: {exc}", file=sys.stderr)
            return 2
        return iem_dcr_sim.run_forever(iem, *args.http)
    if args.http is not None:
        from hw_mocks import lem_sim

        return lem_sim.run_forever(lem_sim.LemSim(sim), *args.http)
    return run_forever(
        sim,
        tcp=args.tcp,
        rtu=args.rtu,
        baud=baud,
        parity=args.parity or model.default_parity,
        stop_bits=args.stop_bits or model.default_stop_bits,
    )


def _register_station(sub: argparse._SubParsersAction) -> None:
    from hw_mocks.station_sim import DEFAULT_CHARGER_UNIT, STATION_FAULT_KINDS

    station = sub.add_parser(
        "station",
        help="car + charger power stage + meter on one Modbus TCP port, with a control socket",
        description="The car starts unplugged; play it with `evterm sim ev ... --control PATH`. "
        f"Faults: {', '.join(STATION_FAULT_KINDS)}; give --fault KIND[@START_S][+DURATION_S] "
        "(simulated seconds since start).",
    )
    station.add_argument("--meter-model", required=True,
                         help="shipped meter model name or map file path")
    station.add_argument("--tcp", type=_host_port, required=True, metavar="HOST:PORT",
                         help="Modbus TCP: the charger IO (and a Modbus meter)")
    station.add_argument("--meter-http", type=_host_port, default=None, metavar="HOST:PORT",
                         help="a signing meter's HTTP API (e.g. lem_dcbm400600) on this "
                         "address")
    station.add_argument("--control", required=True, metavar="PATH",
                         help="Unix socket for the control requests (JSON lines)")
    station.add_argument("--meter-unit", type=int, default=0,
                         help="meter unit id (default: the model's)")
    station.add_argument("--charger-unit", type=int, default=DEFAULT_CHARGER_UNIT,
                         help=f"charger IO unit id (default {DEFAULT_CHARGER_UNIT})")
    _add_curve(station)
    station.add_argument("--start-energy-wh", type=float, default=12_345_678.0, metavar="WH",
                         help="the meter's import counter at start (default %(default)g Wh)")
    station.add_argument("--serial", default="20260001",
                         help="the serial number the meter reports (default %(default)s)")
    station.add_argument("--fault", type=_fault_parser(STATION_FAULT_KINDS), action="append",
                         default=[], metavar="KIND[@START_S][+DURATION_S]")
    _add_clock(station)
    station.set_defaults(func=run_station)


def run_station(args: argparse.Namespace) -> int:
    from hw_mocks import station_sim

    model = _load_model(args.meter_model, "station")
    if model is None:
        return 2
    problem = _signing_problem(model, args.meter_http is not None, args.fault, "--meter-http")
    if problem:
        print(f"evterm sim station: {problem}", file=sys.stderr)
        return 2
    point = ChargingPoint()
    meter = MeterSimulator(
        model=model,
        point=point,
        start_energy_wh=args.start_energy_wh,
        serial=args.serial,
        unit_id=args.meter_unit,
        faults=[f for f in args.fault if f.kind not in CHARGER_FAULT_KINDS],
        sim_time=_sim_time(args),
    )
    for fault in args.fault:
        if fault.kind in CHARGER_FAULT_KINDS:
            point.add_fault(0.0, fault)
    try:
        station = station_sim.StationSimulator(meter, _curve(args), args.charger_unit)
    except ValueError as exc:
        print(f"evterm sim station: {exc}", file=sys.stderr)
        return 2
    return station_sim.run_forever(station, tcp=args.tcp, control_path=args.control,
                                   meter_http=args.meter_http)


EV_ACTIONS = {
    "plug": "plug a car in (curve options override the station's)",
    "unplug": "unplug the car",
    "suspend": "the car stops asking for energy (state B)",
    "resume": "the car asks for energy again (state C)",
    "status": "print the station's status",
    "clear": "clear every fault",
    "fault": "inject a fault from now on",
}


def _register_ev(sub: argparse._SubParsersAction) -> None:
    from hw_mocks.station_sim import STATION_FAULT_KINDS

    ev = sub.add_parser(
        "ev", help="play the car at a running `sim station` and inject faults",
        description="Sends one request to the station's control socket and prints the reply.",
    )
    actions = ev.add_subparsers(dest="ev_action", required=True)
    for action, text in EV_ACTIONS.items():
        parser = actions.add_parser(action, help=text, description=text)
        parser.add_argument("--control", required=True, metavar="PATH",
                            help="the station's control socket")
        parser.add_argument("--timeout-s", type=positive_number, default=5.0)
        if action == "plug":
            for key in ("max_power_w", "ramp_s", "constant_s", "taper_s",
                        "taper_end_power_w", "voltage_v"):
                parser.add_argument(f"--{key.replace('_', '-')}", type=float, default=None)
        if action == "fault":
            parser.add_argument("kind", metavar="KIND",
                                help=", ".join(STATION_FAULT_KINDS))
            parser.add_argument("--duration-s", type=positive_number, default=None,
                                help="simulated seconds (default: until `clear`)")
            parser.add_argument("--code", type=int, default=None,
                                help="charger_error: the fault code (docs/charger.md)")
        parser.set_defaults(func=run_ev)


def run_ev(args: argparse.Namespace) -> int:
    from hw_mocks.station_sim import ControlError, control

    request: dict[str, Any] = {"cmd": args.ev_action}
    if args.ev_action == "plug":
        for key in ("max_power_w", "ramp_s", "constant_s", "taper_s",
                    "taper_end_power_w", "voltage_v"):
            if getattr(args, key) is not None:
                request[key] = getattr(args, key)
    if args.ev_action == "fault":
        request["kind"] = args.kind
        if args.duration_s is not None:
            request["duration_s"] = args.duration_s
        if args.code is not None:
            request["code"] = args.code
    try:
        reply = control(args.control, request, timeout_s=args.timeout_s)
    except (ControlError, ValueError) as exc:
        print(f"evterm sim ev {args.ev_action}: {exc}", file=sys.stderr)
        return 2
    if not reply.get("ok"):
        print(f"evterm sim ev {args.ev_action}: {reply.get('error')}", file=sys.stderr)
        return 2
    print(json.dumps(reply))
    return 0


def _register_zvt(sub: argparse._SubParsersAction) -> None:
    from hw_mocks.zvt_sim_state import DROP_STEPS

    zvt = sub.add_parser(
        "zvt", help="a ZVT payment terminal (ECR interface over TCP) with a control socket",
        description="Approves by default. The options set what every transaction does; "
        'the control socket changes it: {"cmd": "set"|"next", "decline": "05", '
        '"partial": "12.34", "slow_s": 2, "drop_after": "status", "card_removed": true, '
        '"card": "visa", "whole_only": true}, {"cmd": "status"}, {"cmd": "reset"}, '
        '{"cmd": "present", "card": "visa"} (a card held to a waiting Read card). '
        'docs/zvt.md.',
    )
    zvt.add_argument("--tcp", type=_host_port, required=True, metavar="HOST:PORT",
                     help="serve ZVT on this address, e.g. 127.0.0.1:20007")
    zvt.add_argument("--state", default=None, metavar="FILE",
                     help="JSON file of the reservations, batch and counters, kept across "
                     "restarts (default: none, in memory)")
    zvt.add_argument("--control", default=None, metavar="SOCK",
                     help="Unix socket for the control requests (JSON lines)")
    zvt.add_argument("--decline", default=None, metavar="CODE",
                     help="decline every pre-authorisation with this result code (hex, "
                     "e.g. 05, 6C)")
    zvt.add_argument("--partial", default=None, metavar="AMOUNT",
                     help="approve at most AMOUNT (EUR, e.g. 12.34)")
    zvt.add_argument("--slow-s", type=float, default=0.0, metavar="S",
                     help="seconds of 'please wait' intermediate statuses per transaction")
    zvt.add_argument("--drop-after", choices=DROP_STEPS, default=None, metavar="STEP",
                     help=f"close the connection after this step: {', '.join(DROP_STEPS)}")
    zvt.add_argument("--card-removed", action="store_true",
                     help="the card is pulled while read (result 64)")
    zvt.add_argument("--card", default="visa", help="visa, mastercard, girocard or maestro")
    zvt.add_argument("--terminal-id", type=int, default=29001006,
                     help="the terminal id, 8 digits (default %(default)s)")
    zvt.add_argument("--password", default="000000", metavar="DIGITS",
                     help="the terminal's 6-digit password (default %(default)s)")
    zvt.set_defaults(func=run_zvt)


def run_zvt(args: argparse.Namespace) -> int:
    from hw_mocks import zvt_sim
    from hw_mocks.zvt_sim_state import Behaviour, SimStateError, behaviour_from

    request: dict[str, Any] = {"slow_s": args.slow_s, "drop_after": args.drop_after,
                               "card_removed": args.card_removed, "card": args.card}
    if args.decline is not None:
        request["decline"] = args.decline
    if args.partial is not None:
        request["partial"] = args.partial
    problem = None
    if not (args.password.isdigit() and len(args.password) == 6):
        problem = f"--password: {args.password!r} is not 6 digits"
    elif not 0 <= args.terminal_id <= 99_999_999:
        problem = f"--terminal-id: {args.terminal_id} is not at most 8 digits"
    if problem is None:
        try:
            behaviour = behaviour_from(request, Behaviour(), zvt_sim.CURRENCY)
            state = zvt_sim.open_state(args.state)
        except SimStateError as exc:
            problem = str(exc)
    if problem is not None:
        print(f"evterm sim zvt: {problem}", file=sys.stderr)
        return 2
    sim = zvt_sim.ZvtSimulator(state, behaviour, args.terminal_id, int(args.password))
    return zvt_sim.run_forever(sim, args.tcp, args.control)
