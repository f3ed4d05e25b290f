"""Clocks: a real monotonic clock with a timer thread, and a virtual clock for tests.

Timers use absolute deadlines so periodic FBs never drift. On the real clock a
dedicated thread sleeps until the next deadline (asyncio's epoll rounds timeouts
up to whole milliseconds) and hands due timers to their resource's external
queue. The virtual clock runs due timers, in deadline order, only when told to
advance, so networks run deterministically and faster than real time.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Clock", "RealClock", "TimerHandle", "TimerTarget", "VirtualClock"]

_SPIN_NS = 300_000
"""How long before a deadline the timer thread stops sleeping and spins."""

Thunk = Callable[[], None]


class TimerTarget(Protocol):
    """Where a due timer's callback goes: a resource's external queue."""

    def post(self, thunk: Thunk) -> bool: ...

    def run_until_idle(self, max_events: int | None = None) -> int: ...


@dataclass(order=True, slots=True)
class _Entry:
    deadline_ns: int
    seq: int
    target: TimerTarget = field(compare=False)
    thunk: Thunk = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class TimerHandle:
    """A scheduled timer; `cancel()` is idempotent and safe from any thread."""

    __slots__ = ("_entry",)

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    @property
    def deadline_ns(self) -> int:
        return self._entry.deadline_ns

    def cancel(self) -> None:
        self._entry.cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._entry.cancelled


class Clock(Protocol):
    """What FBs and resources need from time."""

    virtual: bool

    def now_ns(self) -> int: ...

    def schedule(self, deadline_ns: int, target: TimerTarget, thunk: Thunk) -> TimerHandle: ...

    def close(self) -> None: ...


class RealClock:
    """Monotonic time with a timer thread that fires at absolute deadlines."""

    virtual = False

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def schedule(self, deadline_ns: int, target: TimerTarget, thunk: Thunk) -> TimerHandle:
        entry = _Entry(deadline_ns, next(self._seq), target, thunk)
        with self._cond:
            if self._closed:
                entry.cancelled = True
                return TimerHandle(entry)
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="testbed-timers",
                                                daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()
        return TimerHandle(entry)

    def _run(self) -> None:
        while True:
            due: list[_Entry] = []
            with self._cond:
                while not self._closed:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0].deadline_ns - time.monotonic_ns()
                    if delay > _SPIN_NS:
                        # sleep until just before the deadline; the OS wakes us late by
                        # tens to hundreds of microseconds, so the rest is spun below
                        self._cond.wait((delay - _SPIN_NS) / 1e9)
                        continue
                    if delay > 0:
                        target = self._heap[0].deadline_ns
                        self._cond.release()
                        try:
                            while time.monotonic_ns() < target:
                                time.sleep(0)  # yields the GIL while spinning
                        finally:
                            self._cond.acquire()
                        continue
                    now = time.monotonic_ns()
                    while self._heap and self._heap[0].deadline_ns <= now:
                        due.append(heapq.heappop(self._heap))
                    break
                if self._closed:
                    return
            for entry in due:
                if not entry.cancelled:
                    entry.target.post(entry.thunk)

    def close(self) -> None:
        """Stop the timer thread; pending timers are dropped. Idempotent."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)


class VirtualClock:
    """Deterministic time that moves only through `advance`; timers run in deadline order."""

    virtual = True

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._heap: list[_Entry] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now

    def schedule(self, deadline_ns: int, target: TimerTarget, thunk: Thunk) -> TimerHandle:
        entry = _Entry(max(deadline_ns, self._now), next(self._seq), target, thunk)
        heapq.heappush(self._heap, entry)
        return TimerHandle(entry)

    def next_deadline_ns(self) -> int | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].deadline_ns if self._heap else None

    def advance(self, ns: int) -> int:
        """Run every timer due within `ns` nanoseconds, each to quiescence; returns timers fired."""
        target_ns = self._now + max(0, ns)
        fired = 0
        while self._heap and self._heap[0].deadline_ns <= target_ns:
            entry = heapq.heappop(self._heap)
            if entry.cancelled:
                continue
            self._now = entry.deadline_ns
            entry.target.post(entry.thunk)
            entry.target.run_until_idle()
            fired += 1
        self._now = target_ns
        return fired

    def close(self) -> None:
        self._heap.clear()
