"""`testbed bench NAME`: benchmarks with same-run baselines."""

from __future__ import annotations

import argparse

from testbed.cli.common import add_logging_options

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="run a benchmark and print JSON figure lines")
    bench.add_argument("name", choices=("events", "cycle", "ai", "deploy", "mqtt", "opcua",
                                        "modbus", "loop"),
                       help="benchmark to run")
    bench.add_argument("--outer", type=int, default=None,
                       help="events: OUTER.PV of the boot-file loop (default: as in the file)")
    bench.add_argument("--typelib", action="append", default=[], metavar="DIR",
                       help="events: load E_CTU/E_SWITCH from .fbt files in DIR")
    bench.add_argument("--seconds", type=float, default=10.0,
                       help="cycle, loop: how long to run; opcua, modbus: half of it per "
                            "measured phase (default 10)")
    bench.add_argument("--period-ms", type=float, default=10.0,
                       help="cycle: E_CYCLE period (default 10)")
    bench.add_argument("--fbs", type=int, default=1000,
                       help="deploy: FBs in the deployed application (default 1000)")
    bench.add_argument("--messages", type=int, default=20_000,
                       help="mqtt: QoS 1 messages in the throughput figure (default 20000)")
    bench.add_argument("--nodes", type=int, default=100,
                       help="opcua: Double variables read and subscribed (default 100)")
    add_logging_options(bench)
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from testbed.bench import run_bench

    return run_bench(args.name, args)
