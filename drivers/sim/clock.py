"""Clocks a plant runner can step on: the real monotonic clock and a manual virtual one.

The runner only needs `now_s()` and `sleep_until(t_s)` with absolute deadlines, so any clock
with those two methods (the runtime's virtual clock, too) drives a plant.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

from drivers.errors import DriverConfigError

__all__ = ["Clock", "ManualClock", "MonotonicClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time in seconds with absolute-deadline sleeps."""

    def now_s(self) -> float:
        """The current time in seconds (monotonic, arbitrary origin)."""
        ...

    async def sleep_until(self, t_s: float) -> None:
        """Return once `now_s() >= t_s` (at once, after yielding, if it already is)."""
        ...


class MonotonicClock:
    """The real clock: `time.monotonic`, sleeping to absolute deadlines so nothing drifts.

    asyncio rounds timer waits to the loop's resolution (about a millisecond); lateness is
    absorbed by the runner's catch-up, never accumulated.
    """

    def now_s(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    async def sleep_until(self, t_s: float) -> None:
        """Sleep until the monotonic clock reaches `t_s`."""
        while True:
            remaining = t_s - time.monotonic()
            if remaining <= 0.0:
                await asyncio.sleep(0)
                return
            await asyncio.sleep(remaining)


class ManualClock:
    """A virtual clock that moves only when told: `advance()` wakes the sleepers now due.

    With `auto_advance=True` every `sleep_until` jumps the clock straight to its deadline,
    so a single runner steps as fast as the CPU allows (use it with one sleeper).
    """

    def __init__(self, start_s: float = 0.0, *, auto_advance: bool = False) -> None:
        self._now_s = start_s
        self._auto_advance = auto_advance
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now_s(self) -> float:
        """The virtual time."""
        return self._now_s

    @property
    def sleepers(self) -> int:
        """How many coroutines wait in `sleep_until`."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep_until(self, t_s: float) -> None:
        """Wait until the virtual time reaches `t_s`."""
        if self._auto_advance and t_s > self._now_s:
            self._now_s = t_s
        if t_s <= self._now_s:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (t_s, next(self._order), future))
        await future

    def advance(self, delta_s: float) -> None:
        """Move the virtual time forward and wake every sleeper whose deadline has come."""
        if delta_s < 0.0:
            raise DriverConfigError(f"a clock cannot go back ({delta_s} s)")
        self._now_s += delta_s
        while self._sleepers and self._sleepers[0][0] <= self._now_s:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
