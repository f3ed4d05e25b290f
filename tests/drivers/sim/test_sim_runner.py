"""PlantRunner on virtual and real clocks: catch-up, no drift, lifecycle, error propagation."""

from __future__ import annotations

import asyncio
import math

import pytest

from drivers.errors import DriverError
from drivers.sim import (
    ManualClock,
    MonotonicClock,
    PlantRunner,
    PlantState,
    RunnerState,
    TankConfig,
    TankModel,
)


def _tank(dt_s: float = 0.01) -> TankModel:
    return TankModel(TankConfig(dt_s=dt_s))


async def test_auto_advancing_clock_runs_many_steps_fast() -> None:
    """On an auto-advancing virtual clock 10 000 steps run at once, none of them late."""
    clock = ManualClock(auto_advance=True)
    async with PlantRunner(_tank(), clock) as runner:
        state = await runner.wait_until_time(100.0)
        assert state.time_s == pytest.approx(100.0)
        stats = runner.statistics()
    assert stats.steps >= 10_000
    assert stats.late_wakeups == 0
    assert stats.catch_up_steps == 0
    assert 0.0 <= clock.now_s() - runner.model.time_s <= 0.01 + 1e-9  # at most one step apart


async def test_manual_clock_jumps_are_caught_up_without_drift() -> None:
    """After irregular clock jumps the model has taken exactly floor(elapsed / dt) steps."""
    clock = ManualClock(start_s=1000.0)
    model = _tank(dt_s=0.01)
    seen: list[PlantState] = []
    async with PlantRunner(model, clock, on_step=seen.append) as runner:
        for jump_s in [0.013, 0.5, 0.0001, 0.0069, 2.25, 0.01, 7.777, 0.003]:
            clock.advance(jump_s)
            expected = math.floor((clock.now_s() - 1000.0) / 0.01 + 1e-9)
            await runner.wait_until_time(expected * 0.01)
            await asyncio.sleep(0)
            assert runner.statistics().steps == expected
            assert model.time_s == pytest.approx(expected * 0.01)
        stats = runner.statistics()
    assert stats.late_wakeups > 0
    assert stats.catch_up_steps > 900
    assert stats.max_lateness_s > 7.0
    assert [s.step for s in seen] == list(range(1, stats.steps + 1))


async def test_runner_sleeps_while_the_clock_stands_still() -> None:
    """Without clock movement the runner takes no step and waits on the clock."""
    clock = ManualClock()
    async with PlantRunner(_tank(), clock) as runner:
        for _ in range(5):
            await asyncio.sleep(0)
        assert runner.statistics().steps == 0
        assert clock.sleepers == 1


async def test_real_clock_runner_tracks_time() -> None:
    """On the monotonic clock the model reaches 0.2 s of simulated time within 2 s."""
    clock = MonotonicClock()
    async with asyncio.timeout(2.0), PlantRunner(_tank(dt_s=0.01), clock) as runner:
        state = await runner.wait_until_time(0.2)
        elapsed = clock.now_s() - runner.start_s
    assert state.time_s >= 0.2 - 1e-9
    assert elapsed >= 0.2 - 1e-3  # never ahead of the clock


async def test_runner_is_one_shot_and_close_is_idempotent() -> None:
    """The lifecycle runs CREATED -> RUNNING -> CLOSED once; aclose may repeat; reuse fails."""
    runner = PlantRunner(_tank(), ManualClock())
    assert runner.state is RunnerState.CREATED
    async with runner:
        assert runner.state is RunnerState.RUNNING
        await runner.aclose()
        assert runner.state is RunnerState.CLOSED
    await runner.aclose()
    with pytest.raises(DriverError, match="one-shot"):
        async with runner:
            pass
    with pytest.raises(DriverError, match="closed"):
        await runner.wait_until_time(10.0)


async def test_failing_step_callback_ends_the_runner_and_propagates() -> None:
    """An exception from on_step stops the runner and surfaces from the async with block."""
    def explode(state: PlantState) -> None:
        if state.step == 3:
            raise ZeroDivisionError("boom")

    clock = ManualClock(auto_advance=True)
    with pytest.raises(ExceptionGroup) as info:
        async with PlantRunner(_tank(), clock, on_step=explode) as runner:
            await runner.wait_until_time(1.0)
    assert info.group_contains(ZeroDivisionError)


async def test_cancelled_body_stops_the_runner() -> None:
    """Cancelling the task that holds the runner cancels the runner's task too."""
    clock = ManualClock()
    runner = PlantRunner(_tank(), clock)

    async def hold() -> None:
        async with runner:
            await asyncio.Event().wait()

    async with asyncio.TaskGroup() as group:
        task = group.create_task(hold())
        await asyncio.sleep(0)
        assert runner.state is RunnerState.RUNNING
        task.cancel()
    assert task.cancelled()
    assert runner.state is RunnerState.CLOSED
    assert clock.sleepers == 0
