"""`evterm meter read`: read a meter once or continuously, one JSON object per snapshot."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from drivers.meter import MeterMapError, TransportError, open_meter
from drivers.meter.monitor import MeterMonitor


def register(subparsers: argparse._SubParsersAction) -> None:
    meter = subparsers.add_parser("meter", help="read an energy meter over Modbus")
    sub = meter.add_subparsers(dest="meter_command", required=True)
    read = sub.add_parser(
        "read",
        help="print one JSON snapshot (or one per interval with --watch)",
        description="Keys: energy_import_wh, energy_export_wh, power_w, voltage_v, "
        "current_a, timestamp, serial (null where the meter has no such value). "
        "With --watch also billable and fault. Exit 2 on a bad URL, unknown model or "
        "unreachable meter.",
    )
    read.add_argument("--model", required=True, help="shipped model name or map file path")
    read.add_argument(
        "--url", required=True, help="tcp://HOST:PORT or rtu:///dev/ttyUSB0?baud=9600&parity=N"
    )
    read.add_argument("--unit", type=int, default=0, help="Modbus unit id (default: model's)")
    read.add_argument("--timeout-s", type=float, default=1.0, help="reply timeout (s)")
    read.add_argument("--watch", action="store_true", help="keep reading")
    read.add_argument("--interval-s", type=float, default=1.0, help="time between reads (s)")
    read.add_argument("--count", type=int, default=0, help="with --watch: stop after N polls")
    read.add_argument("--max-failed-polls", type=int, default=3,
                      help="with --watch: failed polls before a communication fault")
    read.add_argument("--rated-power-w", type=int, default=400_000,
                      help="with --watch: counter steps above this power are faults")
    read.set_defaults(func=run_read)


def _fail(message: str) -> int:
    print(f"evterm meter read: {message}", file=sys.stderr)
    return 2


def run_read(args: argparse.Namespace) -> int:
    try:
        meter = open_meter(args.model, args.url, args.unit, args.timeout_s)
    except (MeterMapError, TransportError) as exc:
        return _fail(str(exc))
    if not 1 <= (args.unit or meter.model.default_unit_id) <= 247:
        return _fail(f"--unit {args.unit}: expected 1 to 247")
    try:
        return asyncio.run(_closing(meter, args))
    except KeyboardInterrupt:
        return 0


async def _closing(meter, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    try:
        return await (_watch(meter, args) if args.watch else _once(meter))
    finally:
        meter.close()


def read_error_text(meter, exc) -> str:  # type: ignore[no-untyped-def]
    """A failed read in words, with what to try: the reason a connection failed, or for
    a meter refusing the model's registers, the hint to check --model."""
    from drivers.meter.modbus_meter import NO_SUCH_REGISTER_TEXT
    from drivers.meter.registermap import available_models

    where = meter.transport.describe()
    if exc.kind == "unreachable":
        return exc.detail
    if exc.kind == "exception" and NO_SUCH_REGISTER_TEXT in exc.detail:
        detail = exc.detail.split("; " + NO_SUCH_REGISTER_TEXT)[0]
        return (f"meter at {where} has no such register of {meter.model.name} ({detail}): "
                f"wrong --model? Shipped models: {', '.join(available_models())}")
    if exc.kind == "timeout":
        return (f"meter at {where} did not answer: {exc.detail} (check --unit, the wiring, "
                "and for RTU the baud rate and parity)")
    return f"meter at {where} did not answer: {exc}"


async def _once(meter) -> int:  # type: ignore[no-untyped-def]
    from drivers.meter import MeterReadError

    try:
        reading = await meter.read_snapshot()
    except MeterReadError as exc:
        return _fail(read_error_text(meter, exc))
    print(json.dumps(reading.to_json()), flush=True)
    return 0


async def _watch(meter, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    monitor = MeterMonitor(meter, args.max_failed_polls, args.rated_power_w)
    loop = asyncio.get_running_loop()
    polls = 0
    last_fault = None
    while not args.count or polls < args.count:
        started = loop.time()
        outcome = await monitor.poll()
        polls += 1
        if outcome.fault != last_fault:
            if outcome.fault:
                print(f"meter fault: {outcome.fault.kind}: {outcome.fault.detail}",
                      file=sys.stderr, flush=True)
            else:
                print("meter fault cleared", file=sys.stderr, flush=True)
            last_fault = outcome.fault
        if outcome.reading is not None:
            line = outcome.reading.to_json()
            line["billable"] = outcome.billable
            line["fault"] = (
                {"kind": outcome.fault.kind, "detail": outcome.fault.detail}
                if outcome.fault else None
            )
            print(json.dumps(line), flush=True)
        else:
            print(f"read failed: {outcome.error}", file=sys.stderr, flush=True)
        await asyncio.sleep(max(0.0, args.interval_s - (loop.time() - started)))
    return 0
