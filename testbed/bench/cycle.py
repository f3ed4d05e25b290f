"""`testbed bench cycle`: E_CYCLE lateness and drift on the real clock.

An E_CYCLE (period P) drives a probe FB that records when each EO is handled.
The k-th EO is due at start + k*P; its lateness is the handling time minus that
deadline. Drift is how much the lateness of the last tenth of the run exceeds
that of the first tenth: with absolute deadlines it stays near zero.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from fb.timers import E_CYCLE
from testbed.bench.figures import Figure
from testbed.fbdef import interface
from testbed.library import TypeLibrary
from testbed.runtime.device import Device
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB

__all__ = ["measure_cycle", "run_cycle_bench"]


class CYCLE_PROBE(ServiceFB):
    """Records the monotonic time at which each REQ is handled."""

    INTERFACE = interface(ei="REQ")

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self.lateness_ns: list[int] = []
        self.cycle: E_CYCLE | None = None

    def on_REQ(self) -> None:
        now = time.monotonic_ns()
        if self.cycle is not None:
            # E_CYCLE re-arms before it fires, so the tick being handled was due one period
            # before the deadline it holds now
            due = self.cycle.pending_deadline_ns - self.cycle.period_ns
            self.lateness_ns.append(now - due)


def measure_cycle(seconds: float, period_ms: float) -> list[float]:
    """Run E_CYCLE for `seconds`; return the lateness of each EO in milliseconds."""
    library = TypeLibrary.with_native_types()
    library.add(CYCLE_PROBE.FB_TYPE, __name__)
    device = Device("cycle-bench", library=library)
    res = device.create_resource("R")
    res.create_fb("Cycle", "E_CYCLE")
    probe = res.create_fb("Probe", "CYCLE_PROBE")
    cycle = res.fbs["Cycle"]
    assert isinstance(probe, CYCLE_PROBE)
    assert isinstance(cycle, E_CYCLE)
    probe.cycle = cycle
    res.write_parameter("Cycle.DT", f"T#{int(period_ms * 1000)}us")
    res.connect("START.COLD", "Cycle.START")
    res.connect("Cycle.EO", "Probe.REQ")

    async def main() -> None:
        async def stopper() -> None:
            await asyncio.sleep(seconds)
            device.shutdown("bench done")

        async with asyncio.TaskGroup() as tg:
            tg.create_task(device.run())
            await asyncio.sleep(0)
            res.start()
            tg.create_task(stopper())

    asyncio.run(main())
    if cycle.overruns:
        print(f"cycle: {cycle.overruns} periods were skipped (more than one period late)")
    return [ns / 1e6 for ns in probe.lateness_ns]


def run_cycle_bench(seconds: float, period_ms: float) -> list[Figure]:
    lateness = measure_cycle(seconds, period_ms)
    if not lateness:
        raise SystemExit("E_CYCLE produced no events")
    ordered = sorted(lateness)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    tenth = max(1, len(lateness) // 10)
    drift = statistics.median(lateness[-tenth:]) - statistics.median(lateness[:tenth])
    print(f"cycle: {len(lateness)} events at {period_ms} ms over {seconds} s; lateness "
          f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {ordered[-1]:.3f} ms; drift {drift:.3f} ms")
    note = f"E_CYCLE {period_ms} ms for {seconds} s, {len(lateness)} events"
    return [
        Figure("cycle", "lateness_p50_ms", p50, "ms", note=note),
        Figure("cycle", "lateness_p99_ms", p99, "ms", note=note),
        Figure("cycle", "lateness_max_ms", ordered[-1], "ms", note=note),
        Figure("cycle", "drift_ms", drift, "ms", note=note),
    ]
