"""`testbed validate FILE`: check a scenario, gateway config or application without running it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testbed.cli.common import add_logging_options

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check a scenario (or application) without running it")
    p.add_argument("file", type=Path, help="scenario folder/scenario.yaml, .yaml app, .fboot")
    add_logging_options(p)
    p.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    from testbed.errors import TestbedError

    path: Path = args.file
    try:
        if path.is_dir() or path.name == "scenario.yaml":
            from testbed.scenario.check import check_applications
            from testbed.scenario.spec import load_scenario

            spec, _folder = load_scenario(path)
            apps = check_applications(spec, path / "scenario.yaml" if path.is_dir() else path)
            print(f"{path}: scenario {spec.name} is valid ({len(spec.plants)} plants, "
                  f"{len(spec.edges)} edges, {len(spec.sites)} sites, {apps} applications "
                  f"loaded, {len(spec.faults)} faults)")
            return 0
        from testbed.api import load

        net = load(path, start=False)
        print(f"{path}: application is valid ({len(net.fbs())} FB paths)")
        net.close()
        return 0
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
