"""`testbed boot`: run a FORTE boot file like `forte -f FILE` and judge it as FORTE's CTest does.

Hard mode fails on any logged error and on a failed TEST_CONDITION; soft mode
only on a failed TEST_CONDITION (FORTE's `forte_add_systemtest_soft`). The run
ends at STEST_END, at the timeout, or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path

import structlog

from testbed.fourdiac.bootfile import load_boot_file
from testbed.library import TypeLibrary
from testbed.logconfig import error_tally
from testbed.runtime.device import Device

__all__ = ["BootOutcome", "run_boot"]

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 124


@dataclass(frozen=True, slots=True)
class BootOutcome:
    exit_code: int
    tests_executed: int
    tests_failed: int
    errors_logged: int
    boot_error: str | None
    timed_out: bool
    ended_by: str | None


async def run_boot(
    path: str | Path,
    *,
    timeout_s: float | None = None,
    soft: bool = False,
    library: TypeLibrary | None = None,
    device_name: str = "testbed",
) -> BootOutcome:
    """Load and run one boot file on a fresh device; returns the verdict."""
    errors_before = error_tally.errors
    device = Device(device_name, library=library)
    result = load_boot_file(device, path)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, device.shutdown, f"signal {sig.name}")
    timed_out = False
    try:
        async with asyncio.timeout(timeout_s):
            await device.run()
    except TimeoutError:
        timed_out = True
        device.shutdown("timeout")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        device.kill()
        device.clock.close()
    report = device.test_report
    device.console(report.summary())
    errors = error_tally.errors - errors_before
    if timed_out:
        log.error("boot_timed_out", file=str(path), timeout_s=timeout_s)
    failed = (result.error is not None or report.failed > 0 or timed_out
              or (not soft and errors > 0))
    code = EXIT_TIMEOUT if timed_out else (EXIT_FAILED if failed else EXIT_OK)
    return BootOutcome(code, report.executed, report.failed, errors,
                       str(result.error) if result.error else None, timed_out,
                       device.shutdown_reason)
