"""Timed event FBs: E_CYCLE, E_DELAY, E_RDELAY, E_TRAIN, E_TABLE, E_N_TABLE.

All deadlines are absolute on the resource's clock (real or virtual), so a cycle
does not drift: the n-th EO of E_CYCLE is due at start + n*DT whatever the
latency of the previous ones. A cycle that falls more than one period behind
skips the missed periods (counted in `overruns`) instead of firing a burst.
"""

from __future__ import annotations

from testbed.fbdef import interface
from testbed.runtime.clock import TimerHandle
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB

__all__ = ["E_CYCLE", "E_DELAY", "E_N_TABLE", "E_RDELAY", "E_TABLE", "E_TRAIN"]


class _TimedFB(ServiceFB):
    """Shared timer handling: one pending timer per instance, cancelled on stop."""

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self._timer: TimerHandle | None = None
        self._deadline_ns = 0

    def _arm(self, deadline_ns: int) -> None:
        self._deadline_ns = deadline_ns
        self._timer = self._res.clock.schedule(deadline_ns, self._res, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def active(self) -> bool:
        return self._timer is not None

    def _expired(self) -> None:
        if self._timer is None:  # cancelled after it was already handed over
            return
        self._timer = None
        self.on_timer()

    def on_timer(self) -> None:
        raise NotImplementedError

    def on_resource_stop(self) -> None:
        self._cancel()


class E_CYCLE(_TimedFB):
    """Periodic generation of an event every DT after START, until STOP."""

    INTERFACE = interface(ei="START(DT) STOP", eo="EO", inputs="DT:TIME")

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self._period_ns = 0
        self.overruns = 0

    def on_START(self) -> None:
        if self.active:
            return
        period = int(self.DT)
        if period <= 0:
            return  # FORTE ignores a zero or negative cycle time
        self._period_ns = period
        self._arm(self.now_ns() + period)

    def on_STOP(self) -> None:
        self._cancel()

    @property
    def period_ns(self) -> int:
        return self._period_ns

    @property
    def pending_deadline_ns(self) -> int:
        """The deadline of the next EO (absolute, on the resource clock)."""
        return self._deadline_ns

    def on_timer(self) -> None:
        nxt = self._deadline_ns + self._period_ns
        now = self.now_ns()
        if now >= nxt:  # more than one period late: skip what was missed, keep the phase
            missed = (now - self._deadline_ns) // self._period_ns
            self.overruns += missed
            nxt = self._deadline_ns + (missed + 1) * self._period_ns
        self._arm(nxt)
        self.emit_EO()


class E_DELAY(_TimedFB):
    """Delayed propagation of an event; a START while running is ignored."""

    INTERFACE = interface(ei="START(DT) STOP", eo="EO", inputs="DT:TIME")

    def on_START(self) -> None:
        if not self.active:
            self._arm(self.now_ns() + max(0, int(self.DT)))

    def on_STOP(self) -> None:
        self._cancel()

    def on_timer(self) -> None:
        self.emit_EO()


class E_RDELAY(E_DELAY):
    """Delayed propagation of an event; a START while running restarts the delay."""

    INTERFACE = interface(ei="START(DT) STOP", eo="EO", inputs="DT:TIME")

    def on_START(self) -> None:
        self._cancel()
        self._arm(self.now_ns() + max(0, int(self.DT)))


class E_TRAIN(_TimedFB):
    """A train of N events spaced by DT after START; CV counts 0..N-1."""

    INTERFACE = interface(ei="START(DT) STOP(DT)", eo="EO(CV)", inputs="DT:TIME N:UINT",
                          outputs="CV:UINT")

    def on_START(self) -> None:
        # as 4diac's E_TRAIN (E_CTU + E_DELAY): N = 0 still gives one event, CV = 0
        if self.active:
            return
        self._count = 0
        self._arm(self.now_ns() + max(0, int(self.DT)))

    def on_STOP(self) -> None:
        self._cancel()

    def on_timer(self) -> None:
        self.CV = self._count
        self._count += 1
        if self._count < self.N:
            self._arm(self._deadline_ns + max(0, int(self.DT)))
        self.emit_EO()




class E_TABLE(_TimedFB):
    """Up to four events after the delays DT[0..N-1]; CV is the index of each EO."""

    INTERFACE = interface(ei="START(DT,N) STOP", eo="EO(CV)", inputs="DT:TIME[4] N:UINT",
                          outputs="CV:UINT")

    def on_START(self) -> None:
        if self.active or self.N == 0:
            return
        self._index = 0
        self._arm(self.now_ns() + max(0, int(self.DT[0])))

    def on_STOP(self) -> None:
        self._cancel()

    def on_timer(self) -> None:
        self.CV = self._index
        self._index += 1
        if self._index < min(self.N, 4):
            self._arm(self._deadline_ns + max(0, int(self.DT[self._index])))
        self.emit_EO()


class E_N_TABLE(_TimedFB):
    """EO0..EO3 in turn after the delays DT[0..N-1]."""

    INTERFACE = interface(ei="START(DT,N) STOP", eo="EO0 EO1 EO2 EO3",
                          inputs="DT:TIME[4] N:UINT")

    def on_START(self) -> None:
        if self.active or self.N == 0:
            return
        self._index = 0
        self._arm(self.now_ns() + max(0, int(self.DT[0])))

    def on_STOP(self) -> None:
        self._cancel()

    def on_timer(self) -> None:
        index = self._index
        self._index += 1
        if self._index < min(self.N, 4):
            self._arm(self._deadline_ns + max(0, int(self.DT[self._index])))
        self.emit(f"EO{index}")


