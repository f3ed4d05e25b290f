"""`testbed boot`: run a FORTE boot file like `forte -f FILE` and judge it as FORTE's CTest does.

Hard mode fails on any logged error and on a failed TEST_CONDITION; soft mode
only on a failed TEST_CONDITION (FORTE's `forte_add_systemtest_soft`). The run
ends at STEST_END, at the timeout, on SIGINT/SIGTERM, or on a management KILL.

With a management address (FORTE's `-c host:port`) the device also serves the
management port while it runs; with no boot file it starts empty and waits for
a deployment (4diac IDE, `ManagementClient`), as FORTE does without `forte.fboot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog

from testbed.fourdiac.bootfile import BootResult, load_boot_file
from testbed.fourdiac.mgmt_server import ManagementServer, settings_from_address
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
    path: str | Path | None,
    *,
    timeout_s: float | None = None,
    soft: bool = False,
    library: TypeLibrary | None = None,
    device_name: str = "testbed",
    mgmt_address: str | None = None,
) -> BootOutcome:
    """Load and run one boot file (or none, with `mgmt_address`) on a fresh device."""
    errors_before = error_tally.errors
    device = Device(device_name, library=library)
    result = load_boot_file(device, path) if path is not None else BootResult(0)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, device.shutdown, f"signal {sig.name}")
    timed_out = False
    try:
        async with asyncio.timeout(timeout_s):
            if mgmt_address is None:
                await device.run()
            else:
                async with ManagementServer(device, settings_from_address(mgmt_address)) as srv:
                    # FORTE-like notice on stderr; scripts and tests read the bound port here
                    print(f"testbed: management server listening on {srv.host}:{srv.port}",
                          file=sys.stderr, flush=True)
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
