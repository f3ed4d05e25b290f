"""`testbed report RUN_DIR`: re-render a run folder's report.html and print its summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from testbed.cli.common import add_logging_options

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="re-render the report of a run folder")
    p.add_argument("run_dir", type=Path)
    add_logging_options(p)
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from testbed.cli.run import _print_summary
    from testbed.scenario.report import load_report, render_html

    run_dir: Path = args.run_dir
    if not (run_dir / "report.json").exists():
        print(f"error: {run_dir} has no report.json")
        return 2
    out = render_html(run_dir)
    _print_summary(load_report(run_dir), run_dir)
    print(f"rendered {out}")
    return 0
