"""`testbed run [SCENARIO]`: run a scenario end to end and write its run folder."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import sys
from pathlib import Path
from typing import Any, TextIO, cast

from testbed.cli.common import add_logging_options

__all__ = ["DEFAULT_SCENARIO", "register"]

DEFAULT_SCENARIO = "testbed40-predictive-maintenance"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run a scenario (default: the testbed 4.0 scenario)",
                         description="Start plants, edge devices, broker and cloud from one "
                         "scenario.yaml, inject its faults, record metrics and write a run "
                         "folder with report.json, CSV series and report.html.")
    run.add_argument("scenario", nargs="?", default=None,
                     help=f"scenario folder or scenario.yaml (default: {DEFAULT_SCENARIO})")
    run.add_argument("--out", type=Path, default=None,
                     help="run folder (default: runs/<scenario>-<UTC time>)")
    run.add_argument("--duration", type=float, default=None, metavar="S",
                     help="override the scenario's duration")
    run.add_argument("--no-progress", action="store_true", help="plain output, no live view")
    run.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                     help="serve live Prometheus metrics on 127.0.0.1:PORT (0: a free port)")
    add_logging_options(run)
    run.set_defaults(func=_run)


def resolve_scenario(name: str | None) -> Path:
    """A scenario folder: a path, or a name under ./scenarios or the installed tree."""
    candidates: list[Path] = []
    if name is None:
        name = DEFAULT_SCENARIO
    p = Path(name)
    candidates.append(p)
    candidates.append(Path("scenarios") / name)
    candidates.append(Path(__file__).resolve().parents[2] / "scenarios" / name)
    for c in candidates:
        if c.exists():
            return c
    raise SystemExit(f"scenario {name!r} not found (looked in: "
                     f"{', '.join(str(c) for c in candidates)})")


def _run(args: argparse.Namespace) -> int:
    from testbed.errors import ConfigError
    from testbed.logconfig import configure_logging
    from testbed.scenario.runner import ScenarioRunner
    from testbed.scenario.spec import load_scenario

    try:
        spec, folder = load_scenario(resolve_scenario(args.scenario))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.duration is not None:
        spec = spec.model_copy(update={"duration_s": args.duration})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path("runs") / f"{spec.name}-{stamp}"
    live = _LiveView(spec.name, enabled=not args.no_progress and sys.stdout.isatty())
    runner = ScenarioRunner(spec, folder, out, progress=live.update)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "run.log").open("w", encoding="utf-8") as log_file, live:
        # the run folder keeps the log lines the console shows (same format and level) and
        # the protocol stacks' warnings, which the console leaves out (they repeat every
        # second while a PLC or broker outage is injected)
        configure_logging(getattr(args, "log_format", "console"),
                          getattr(args, "log_level", "warning"),
                          stream=cast(TextIO, _Tee(sys.stderr, log_file)),  # write/flush suffice
                          library_log=log_file)
        endpoint = None
        if args.metrics_port is not None:
            from testbed.metrics_endpoint import MetricsEndpoint

            endpoint = MetricsEndpoint([runner.metrics.snapshot], port=args.metrics_port)
            endpoint.start()
            print(f"live metrics: {endpoint.url}", flush=True)
        try:
            result = asyncio.run(runner.run())
        finally:
            if endpoint is not None:
                endpoint.close()
            configure_logging(getattr(args, "log_format", "console"),
                              getattr(args, "log_level", "warning"))
    _print_summary(result.report, result.run_dir)
    return 130 if result.interrupted else 0


class _Tee(io.TextIOBase):
    """Writes every line to two text streams (the console and the run's log file)."""

    def __init__(self, first: TextIO, second: TextIO) -> None:
        self._streams = (first, second)

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()


class _LiveView:
    """A rich live panel when on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, name: str, *, enabled: bool) -> None:
        self.name = name
        self.enabled = enabled
        self._live: Any = None
        self._last_plain = -10.0

    def __enter__(self) -> _LiveView:
        if self.enabled:
            from rich.live import Live

            self._live = Live(refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, status: dict[str, Any]) -> None:
        elapsed = status["elapsed_s"]
        metrics = {k: v for k, v in status.items()
                   if k not in ("elapsed_s", "duration_s", "faults")}
        if self._live is not None:
            from rich.table import Table

            table = Table(title=f"{self.name}: running {elapsed:5.1f} / "
                                f"{status['duration_s']:.0f} s")
            table.add_column("metric")
            table.add_column("value")
            for k, v in metrics.items():
                table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
            for fault in status["faults"][-5:]:
                table.add_row("fault", fault)
            self._live.update(table)
        elif elapsed - self._last_plain >= 5.0:
            self._last_plain = elapsed
            shown = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in metrics.items())
            print(f"[{elapsed:6.1f} s] {shown}", flush=True)


def _print_summary(report: dict[str, Any], run_dir: Path) -> None:
    print(f"scenario {report['scenario']} finished after {report['duration_s']} s "
          f"(seed {report['seed']}, clock {report['clock']})")
    for name, entry in sorted(report["metrics"].items()):
        if "p99" in entry and entry.get("count"):
            print(f"  {name}: p50 {entry['p50']:.4g} p99 {entry['p99']:.4g} "
                  f"{entry.get('unit', '')}")
        elif entry.get("value") is not None:
            print(f"  {name}: {entry['value']:.6g} {entry.get('unit', '')}")
    print(f"run folder: {run_dir} (report.json, report.html)")
