"""`testbed bench NAME`: benchmarks that report figures against same-run baselines."""

from __future__ import annotations

import argparse

from testbed.bench.figures import Figure, print_figures

__all__ = ["Figure", "run_bench"]


def run_bench(name: str, args: argparse.Namespace) -> int:
    """Run benchmark `name`, print its figures; returns the process exit status."""
    if name == "events":
        from testbed.bench.events import run_events_bench

        figures = run_events_bench(getattr(args, "file", None), args.outer, args.typelib)
    elif name == "cycle":
        from testbed.bench.cycle import run_cycle_bench

        figures = run_cycle_bench(args.seconds, args.period_ms)
    elif name == "ai":
        from testbed.bench.ai import run_ai_bench

        figures = run_ai_bench()
    elif name == "deploy":
        from testbed.bench.deploy import run_deploy_bench

        figures = run_deploy_bench(getattr(args, "fbs", 1000))
    elif name == "mqtt":
        from testbed.bench.mqtt import run_mqtt_bench

        figures = run_mqtt_bench(getattr(args, "messages", 20_000))
    elif name in ("opcua", "modbus", "loop"):
        figures = _run_field_bench(name, args)
    else:
        raise SystemExit(f"unknown benchmark {name!r}")
    print_figures(figures)
    return 0


def _run_field_bench(name: str, args: argparse.Namespace) -> list[Figure]:
    from testbed.bench.field import run_loop_bench, run_modbus_bench, run_opcua_bench

    seconds = float(getattr(args, "seconds", 10.0))
    if name == "opcua":
        return run_opcua_bench(int(getattr(args, "nodes", 100)), seconds / 2)
    if name == "modbus":
        return run_modbus_bench(seconds / 2)
    return run_loop_bench(seconds)
