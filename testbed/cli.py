"""The `testbed` command: boot, bench (and run, serve, plc, cloud, train, report, validate)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from testbed.logconfig import configure_logging

__all__ = ["main"]


def _add_logging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=("console", "json"), default="console",
                   help="log line format (default: console)")
    p.add_argument("--log-level", default="warning",
                   help="debug, info, warning or error (default: warning)")


def _boot(args: argparse.Namespace) -> int:
    from testbed.boot import run_boot  # keep `testbed --help` fast

    path = args.f or args.file or os.environ.get("FORTE_BOOT_FILE")
    if path and not os.path.exists(path) and os.environ.get("FORTE_BOOT_FILE_FAIL_MISSING"):
        print(f"Boot file {path} could not be opened and FORTE_BOOT_FILE_FAIL_MISSING is set",
              file=sys.stderr)
        return 1
    if not path:
        print("Usage: testbed boot [options] FILE.fboot  (or -f FILE, or FORTE_BOOT_FILE)",
              file=sys.stderr)
        return 2
    outcome = asyncio.run(run_boot(path, timeout_s=args.timeout, soft=args.soft))
    return outcome.exit_code


def _bench(args: argparse.Namespace) -> int:
    from testbed.bench import run_bench

    return run_bench(args.name, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testbed",
        description="IT/OT convergence testbed: IEC 61499 runtime, field drivers, edge AI, "
                    "cloud sync.")
    sub = parser.add_subparsers(dest="command", required=True)

    boot = sub.add_parser("boot", help="run a FORTE boot file (.fboot) like `forte -f`",
                          description="Run a FORTE boot file on a fresh device. Exit status "
                          "0 only if every TEST_CONDITION passed and (unless --soft) no error "
                          "was logged.")
    boot.add_argument("file", nargs="?", help="boot file (default: $FORTE_BOOT_FILE)")
    boot.add_argument("-f", metavar="FILE", help="boot file (FORTE's option)")
    boot.add_argument("-c", metavar="HOST:PORT", default=None,
                      help="management address (FORTE's option; default localhost:61499)")
    boot.add_argument("--timeout", type=float, default=None, metavar="S",
                      help="fail if STEST_END is not reached within S seconds")
    boot.add_argument("--soft", action="store_true",
                      help="logged errors do not fail the run (FORTE's soft system tests)")
    _add_logging(boot)
    boot.set_defaults(func=_boot)

    bench = sub.add_parser("bench", help="run a benchmark and print JSON figure lines")
    bench.add_argument("name", choices=("events", "cycle"), help="benchmark to run")
    bench.add_argument("--outer", type=int, default=None,
                       help="events: OUTER.PV of the boot-file loop (default: as in the file)")
    bench.add_argument("--typelib", action="append", default=[], metavar="DIR",
                       help="events: load E_CTU/E_SWITCH from .fbt files in DIR")
    bench.add_argument("--seconds", type=float, default=10.0,
                       help="cycle: how long to run (default 10)")
    bench.add_argument("--period-ms", type=float, default=10.0,
                       help="cycle: E_CYCLE period (default 10)")
    _add_logging(bench)
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
