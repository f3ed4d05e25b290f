"""`testbed plc`: run one simulated PLC (plant model + OPC UA + Modbus servers) alone.

Defaults are the ports people expect (OPC UA 4840, Modbus 5020); a taken default port
falls back to a free one and says so. Runs until Ctrl-C / SIGTERM (or `--duration`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from testbed.cli.common import add_logging_options

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plc = sub.add_parser("plc", help="start a simulated PLC (OPC UA + Modbus) alone")
    plc.add_argument("--model", choices=("pump", "conveyor", "tank"), default="pump",
                     help="plant model (default: pump)")
    plc.add_argument("--profile", type=Path, default=None, metavar="FILE",
                     help="device profile YAML (default: configs/profiles/<model>.yaml)")
    plc.add_argument("--opcua", type=int, default=None, metavar="PORT",
                     help="OPC UA port (default 4840, a free port if taken; 0 = any)")
    plc.add_argument("--modbus", type=int, default=None, metavar="PORT",
                     help="Modbus TCP port (default 5020, a free port if taken; 0 = any)")
    plc.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    plc.add_argument("--seed", type=int, default=0, help="model noise seed (default 0)")
    plc.add_argument("--scan-ms", type=float, default=10.0, help="scan period (default 10)")
    plc.add_argument("--duration", type=float, default=None, metavar="S",
                     help="stop after S seconds (default: run until interrupted)")
    add_logging_options(plc)
    plc.set_defaults(func=_plc)


def _plc(args: argparse.Namespace) -> int:
    from drivers.errors import DriverConfigError
    from drivers.modbus import DEFAULT_MODBUS_PORT
    from drivers.sim.plc import DEFAULT_OPCUA_PORT, PlcConfig, SimulatedPlc, default_profile_path
    from drivers.sim.profile import ProfileError

    profile_path = args.profile or default_profile_path(args.model)
    explicit = args.opcua is not None or args.modbus is not None
    config = PlcConfig(
        host=args.host,
        opcua_port=DEFAULT_OPCUA_PORT if args.opcua is None else args.opcua,
        modbus_port=DEFAULT_MODBUS_PORT if args.modbus is None else args.modbus,
        scan_ms=args.scan_ms,
        fallback_to_free_port=not explicit,
    )
    try:
        plc = SimulatedPlc.from_profile_file(profile_path, config, seed=args.seed)
    except (ProfileError, DriverConfigError) as exc:
        print(f"testbed plc: {exc}", flush=True)
        return 2
    if plc.profile.model != args.model and args.profile is None:
        print(f"testbed plc: {profile_path} is a {plc.profile.model} profile", flush=True)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        async with plc:
            for name, wanted, got in (("OPC UA", config.opcua_port, plc.opcua_port),
                                      ("Modbus", config.modbus_port, plc.modbus_port)):
                if wanted not in (0, got):
                    print(f"{name} port {wanted} is taken; listening on {got} instead",
                          flush=True)
            print(f"simulated PLC: model {plc.profile.model}, profile {plc.profile.profile} "
                  f"({profile_path})", flush=True)
            print(f"OPC UA endpoint: {plc.opcua_endpoint}", flush=True)
            print(f"Modbus TCP: {plc.modbus_endpoint} (unit {plc.profile.modbus.unit_id})",
                  flush=True)
            print(f"OPC UA nodes: {plc.browse_path('Plant')}/...; methods Start, Stop, Reset",
                  flush=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.duration):
                    await stop.wait()
            stats = plc.statistics()
            print(f"stopped after {stats.scans} scans ({stats.model_steps} model steps)",
                  flush=True)

    try:
        asyncio.run(run())
    except DriverConfigError as exc:
        print(f"testbed plc: {exc}", flush=True)
        return 2
    return 0
