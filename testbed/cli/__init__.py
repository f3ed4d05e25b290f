"""The `testbed` command. Each subcommand lives in its own module with a `register` function.

To add a command, write `testbed/cli/<name>.py` with `register(subparsers)` that sets
`func=` on its parser, and append its module name to `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from testbed.logconfig import configure_logging

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: list[str] = [
    "run",
    "validate",
    "report",
    "boot",
    "serve",
    "bench",
    "plc",
    "train",
    "cloud",
]
"""Subcommand modules under `testbed.cli`, in help order."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testbed",
        description="IT/OT convergence testbed: IEC 61499 runtime, field drivers, edge AI, "
                    "cloud sync.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"testbed.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "log_format", "console"), getattr(args, "log_level", "warning"))
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
