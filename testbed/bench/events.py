"""`testbed bench events`: FB event executions per second on FORTE's two-loop boot file.

The boot file (`../shared/bench/event_loop_26M.fboot`: nested E_CTU/E_SWITCH loops,
about 25.9 M executions) runs on a device exactly as `testbed boot` would. The
baseline is a plain `deque` dispatch loop over trivial objects, in the same run.
Also measured: peak RSS of an idle device holding 1,000 E_CTU instances, in a
fresh interpreter so nothing else inflates it.
"""

from __future__ import annotations

import asyncio
import json
import resource as rusage
import subprocess
import sys
import time
from pathlib import Path

from testbed.bench.baseline import deque_dispatch_rate
from testbed.bench.figures import Figure
from testbed.errors import BenchmarkError
from testbed.fourdiac.bootfile import load_boot_file
from testbed.library import TypeLibrary
from testbed.runtime.device import Device

__all__ = ["DEFAULT_BOOT_FILE", "idle_rss_mb", "run_event_loop", "run_events_bench"]

DEFAULT_BOOT_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / \
    "event_loop_26M.fboot"


def _find_boot_file(path: str | None) -> Path:
    candidates = [Path(path)] if path else [Path("../shared/bench/event_loop_26M.fboot"),
                                            DEFAULT_BOOT_FILE]
    for c in candidates:
        if c.is_file():
            return c
    raise BenchmarkError(f"benchmark boot file not found (tried {', '.join(map(str, candidates))})")


async def _run_device(device: Device) -> None:
    await device.run()


def run_event_loop(boot_file: Path, outer: int | None, library: TypeLibrary) -> tuple[int, float,
                                                                                      float]:
    """Run the boot-file loop; returns (FB executions, wall seconds, CPU seconds)."""
    device = Device("bench", library=library)
    device.console = lambda _text: None
    result = load_boot_file(device, boot_file)
    if result.error is not None:
        raise BenchmarkError(f"benchmark boot file failed: {result.error}")
    if outer is not None:
        # the first START in the file already ran; rebuild with the new OUTER.PV
        device = Device("bench", library=library)
        device.console = lambda _text: None
        _load_with_outer(device, boot_file, outer)
    res = next(iter(device.resources.values()))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    asyncio.run(_run_device(device))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return res.statistics().events_processed, wall, cpu


def _load_with_outer(device: Device, boot_file: Path, outer: int) -> None:
    lines = boot_file.read_text(encoding="utf-8").splitlines()
    patched = [ln.replace('Source="200" Destination="OUTER.PV"',
                          f'Source="{outer}" Destination="OUTER.PV"') for ln in lines]
    tmp = boot_file.with_name(f".outer_{outer}.fboot")
    try:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".fboot", delete=False,
                                         encoding="utf-8") as fh:
            fh.write("\n".join(patched) + "\n")
            tmp = Path(fh.name)
        result = load_boot_file(device, tmp)
        if result.error is not None:
            raise BenchmarkError(f"benchmark boot file failed: {result.error}")
    finally:
        tmp.unlink(missing_ok=True)


_RSS_PROBE = """
import json, resource, gc
from testbed.runtime.device import Device
from testbed.runtime.clock import VirtualClock
device = Device("rss", clock=VirtualClock())
res = device.create_resource("R")
for i in range({n}):
    res.create_fb(f"CTU{{i}}", "E_CTU")
res.start()
res.run_until_idle()
gc.collect()
# VmHWM is this address space's peak; ru_maxrss would include the parent's peak, which
# Linux carries across fork+exec
hwm = None
try:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
except OSError:
    pass
print(json.dumps({{"maxrss_kb": hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def idle_rss_mb(n_fbs: int = 1000) -> float:
    """Peak RSS (MB) of a fresh interpreter holding an idle device with `n_fbs` E_CTU."""
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _RSS_PROBE.format(n=n_fbs)],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["maxrss_kb"]) / 1024.0


def run_events_bench(boot_file: str | None, outer: int | None,
                     typelib_dirs: list[str]) -> list[Figure]:
    path = _find_boot_file(boot_file)
    library = TypeLibrary.with_native_types()
    variant = "native"  # or "typelib" when E_CTU/E_SWITCH come from .fbt files
    if typelib_dirs:
        from testbed.fourdiac.typelib import load_type_dirs

        wanted = ("E_CTU", "E_SWITCH")
        report = load_type_dirs(library, typelib_dirs, only=wanted, override=True)
        missing = [n for n in wanted if n not in report.compiled]
        if missing:
            raise BenchmarkError(f"--typelib {' '.join(typelib_dirs)}: no compilable .fbt for "
                                 f"{', '.join(missing)}")
        variant = "typelib"
    baseline_before = deque_dispatch_rate()
    executions, wall, cpu = run_event_loop(path, outer, library)
    baseline_after = deque_dispatch_rate()
    baseline = max(baseline_before, baseline_after)
    peak = rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 1024.0
    rate = executions / wall
    print(f"events: {executions} FB executions in {wall:.3f} s wall, {cpu:.3f} s CPU "
          f"({variant} E_CTU/E_SWITCH); peak RSS {peak:.1f} MB")
    figures = [
        Figure("events", "fb_executions_per_s", rate, "1/s", "python deque dispatch",
               baseline, note=f"{variant} types, {executions} executions"),
        Figure("events", "fb_executions_per_cpu_s", executions / cpu, "1/s",
               "python deque dispatch", baseline, note=f"{variant} types"),
        Figure("events", "peak_rss_mb", peak, "MB", note="this benchmark process"),
        Figure("events", "peak_rss_mb_1000_fbs", idle_rss_mb(1000), "MB",
               note="fresh interpreter, idle device with 1,000 E_CTU"),
    ]
    return figures
