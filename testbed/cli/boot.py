"""`testbed boot`: run a FORTE boot file like `forte -f FILE`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from testbed.cli.common import add_logging_options

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    boot = sub.add_parser("boot", help="run a FORTE boot file (.fboot) like `forte -f`",
                          description="Run a FORTE boot file on a fresh device. Exit status "
                          "0 only if every TEST_CONDITION passed and (unless --soft) no error "
                          "was logged.")
    boot.add_argument("file", nargs="?", help="boot file (default: $FORTE_BOOT_FILE)")
    boot.add_argument("-f", metavar="FILE", help="boot file (FORTE's option)")
    boot.add_argument("-c", metavar="HOST:PORT", default=None,
                      help="serve the management port on HOST:PORT (FORTE's option; port 0 "
                           "picks a free port); without a boot file the device starts empty "
                           "and waits for a deployment")
    boot.add_argument("--timeout", type=float, default=None, metavar="S",
                      help="fail if STEST_END is not reached within S seconds")
    boot.add_argument("--soft", action="store_true",
                      help="logged errors do not fail the run (FORTE's soft system tests)")
    add_logging_options(boot)
    boot.set_defaults(func=_boot)


def _boot(args: argparse.Namespace) -> int:
    from testbed.boot import run_boot  # keep `testbed --help` fast

    path = args.f or args.file or os.environ.get("FORTE_BOOT_FILE")
    if path and not os.path.exists(path) and os.environ.get("FORTE_BOOT_FILE_FAIL_MISSING"):
        print(f"Boot file {path} could not be opened and FORTE_BOOT_FILE_FAIL_MISSING is set",
              file=sys.stderr)
        return 1
    if not path and args.c:
        path = None
    elif not path:
        print("Usage: testbed boot [options] FILE.fboot  (or -f FILE, or FORTE_BOOT_FILE)",
              file=sys.stderr)
        return 2
    from testbed.errors import ManagementError

    try:
        outcome = asyncio.run(run_boot(path, timeout_s=args.timeout, soft=args.soft,
                                       mgmt_address=args.c))
    except ManagementError as exc:
        print(f"testbed boot: {exc}", file=sys.stderr)
        return 1
    return outcome.exit_code
