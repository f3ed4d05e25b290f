"""Options shared by the `testbed` subcommands."""

from __future__ import annotations

import argparse

__all__ = ["add_logging_options"]


def add_logging_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=("console", "json"), default="console",
                   help="log line format (default: console)")
    p.add_argument("--log-level", default="warning",
                   help="debug, info, warning or error (default: warning)")
