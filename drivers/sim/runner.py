"""Steps a plant model in time with a clock: absolute deadlines, catch-up when late, no drift.

Step k is due at `t0 + k * dt_s`; after each wake-up the runner takes every step that has
come due, so a late wake-up never shifts later deadlines and simulated time tracks the clock.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog

from drivers.errors import DriverError
from drivers.sim.clock import Clock
from drivers.sim.model import PlantModel, PlantState

__all__ = ["PlantRunner", "RunnerState", "RunnerStatistics"]

_log = structlog.get_logger(__name__)

_YIELD_EVERY_STEPS = 64
"""While catching up, give the event loop a turn after this many steps."""


class RunnerState(enum.Enum):
    """Lifecycle of a one-shot runner."""

    CREATED = "created"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class RunnerStatistics:
    """Counters of a runner: steps taken and how late it woke."""

    steps: int
    wakeups: int
    late_wakeups: int
    """Wake-ups that found more than one step due."""
    catch_up_steps: int
    """Steps taken beyond the first of a wake-up."""
    max_lateness_s: float
    """Largest distance between a due deadline and the wake-up that served it."""


class PlantRunner:
    """Steps a model on a clock inside its own task; a one-shot async context manager.

    `on_step` (synchronous, bounded) is called with each new state, e.g. by a simulated PLC
    to copy values into its server. An exception in it or in the model ends the runner and
    propagates out of the `async with` block.
    """

    def __init__(
        self,
        model: PlantModel,
        clock: Clock,
        *,
        on_step: Callable[[PlantState], None] | None = None,
    ) -> None:
        self._model = model
        self._clock = clock
        self._on_step = on_step
        self._state = RunnerState.CREATED
        self._task_group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._steps = 0
        self._wakeups = 0
        self._late_wakeups = 0
        self._catch_up_steps = 0
        self._max_lateness_s = 0.0
        self._start_s = math.nan

    @property
    def state(self) -> RunnerState:
        """Where the runner is in its lifecycle."""
        return self._state

    @property
    def model(self) -> PlantModel:
        """The model this runner steps."""
        return self._model

    @property
    def start_s(self) -> float:
        """Clock time at which the runner started (NaN before)."""
        return self._start_s

    def statistics(self) -> RunnerStatistics:
        """A snapshot of the runner's counters."""
        return RunnerStatistics(
            steps=self._steps,
            wakeups=self._wakeups,
            late_wakeups=self._late_wakeups,
            catch_up_steps=self._catch_up_steps,
            max_lateness_s=self._max_lateness_s,
        )

    async def __aenter__(self) -> Self:
        if self._state is not RunnerState.CREATED:
            raise DriverError(f"a PlantRunner is one-shot; this one is {self._state.value}")
        task_group = asyncio.TaskGroup()
        await task_group.__aenter__()
        self._task_group = task_group
        self._start_s = self._clock.now_s()
        self._task = task_group.create_task(self._run(), name=f"plant-{type(self._model).__name__}")
        self._state = RunnerState.RUNNING
        _log.info("plant_runner_started", model=type(self._model).__name__, dt_s=self._model.dt_s)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state is not RunnerState.RUNNING:
            self._state = RunnerState.CLOSED
            return
        self._state = RunnerState.CLOSED
        assert self._task is not None
        assert self._task_group is not None
        self._task.cancel()
        try:
            await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            self._fail_waiters()
            _log.info("plant_runner_stopped", model=type(self._model).__name__, steps=self._steps)

    async def aclose(self) -> None:
        """Stop stepping and wait for the task to end; idempotent."""
        await self.__aexit__(None, None, None)

    async def wait_until_time(self, model_time_s: float) -> PlantState:
        """Wait until the model's simulated time has reached `model_time_s`."""
        if self._model.time_s + 1e-9 >= model_time_s:
            return self._model.state()
        if self._state is not RunnerState.RUNNING:
            raise DriverError(f"the runner is {self._state.value}; the model time will not move")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((model_time_s, future))
        await future
        return self._model.state()

    async def _run(self) -> None:
        model = self._model
        dt_s = model.dt_s
        start_s = self._start_s
        taken = 0
        while True:
            await self._clock.sleep_until(start_s + (taken + 1) * dt_s)
            now_s = self._clock.now_s()
            due = max(taken + 1, math.floor((now_s - start_s) / dt_s + 1e-9))
            self._wakeups += 1
            if due - taken > 1:
                self._late_wakeups += 1
                self._catch_up_steps += due - taken - 1
            self._max_lateness_s = max(self._max_lateness_s, now_s - (start_s + (taken + 1) * dt_s))
            while taken < due:
                state = model.step()
                taken += 1
                self._steps = taken
                if self._on_step is not None:
                    self._on_step(state)
                if taken % _YIELD_EVERY_STEPS == 0 and taken < due:
                    await asyncio.sleep(0)
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        if not self._waiters:
            return
        now = self._model.time_s + 1e-9
        pending = []
        for target, future in self._waiters:
            if target <= now:
                if not future.done():
                    future.set_result(None)
            else:
                pending.append((target, future))
        self._waiters = pending

    def _fail_waiters(self) -> None:
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(DriverError("the plant runner closed"))
        self._waiters = []
