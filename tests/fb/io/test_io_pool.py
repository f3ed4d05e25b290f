"""IoPool: task ownership, shared sessions and both run modes (device loop, own thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from fb.io.pool import IoPool


class FakeSession:
    """A stand-in driver session that records its lifecycle (no network involved)."""

    opened = 0
    closed = 0

    @classmethod
    @asynccontextmanager
    async def open(cls) -> AsyncIterator[FakeSession]:
        cls.opened += 1
        try:
            yield cls()
        finally:
            cls.closed += 1


@pytest.fixture(autouse=True)
def _reset_fake() -> None:
    FakeSession.opened = 0
    FakeSession.closed = 0


async def test_loop_mode_shares_one_session_and_closes_it_with_the_last_lease() -> None:
    """Two leases on one key get the same session, opened once, closed after both leave."""
    pool = IoPool("t")
    first, second = pool.lease("A"), pool.lease("B")
    got: list[object] = []
    done = asyncio.Event()

    async def use(lease_name: str) -> None:
        lease = first if lease_name == "A" else second
        got.append(await lease.session("key", FakeSession.open))
        if len(got) == 2:
            done.set()

    first.spawn(lambda: use("A"), "use")
    second.spawn(lambda: use("B"), "use")
    async with asyncio.timeout(5.0):
        await done.wait()
    assert got[0] is got[1]
    assert FakeSession.opened == 1
    assert pool.statistics().sessions == 1
    first.close()
    await asyncio.sleep(0.01)
    assert FakeSession.closed == 0
    second.close()
    assert await pool.wait_closed(5.0)
    assert FakeSession.closed == 1
    assert not pool.running


async def test_closing_a_lease_cancels_its_jobs() -> None:
    """A job still running when its FB lets go is cancelled (no orphan task)."""
    pool = IoPool("t")
    lease = pool.lease("A")
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    lease.spawn(forever, "forever")
    async with asyncio.timeout(5.0):
        await started.wait()
        lease.close()
        await cancelled.wait()
    assert await asyncio.to_thread(pool.wait_stopped, 5.0)


async def test_a_failing_job_is_counted_and_the_pool_keeps_working() -> None:
    """An exception in one job is logged and counted; other jobs still run."""
    pool = IoPool("t")
    lease = pool.lease("A")
    ran = asyncio.Event()

    async def broken() -> None:
        raise RuntimeError("boom")

    async def fine() -> None:
        ran.set()

    lease.spawn(broken, "broken")
    lease.spawn(fine, "fine")
    async with asyncio.timeout(5.0):
        await ran.wait()
    await asyncio.sleep(0.01)
    assert pool.statistics().jobs_failed == 1
    lease.close()
    assert await asyncio.to_thread(pool.wait_stopped, 5.0)


def test_thread_mode_without_a_running_loop() -> None:
    """Leased outside any event loop, the pool runs jobs in its own thread and ends it."""
    pool = IoPool("t")
    lease = pool.lease("A")
    where: list[str] = []
    done = threading.Event()

    async def job() -> None:
        where.append(threading.current_thread().name)
        done.set()

    lease.spawn(job, "job")
    assert done.wait(5.0)
    assert where[0] != threading.main_thread().name
    lease.close()
    assert pool.wait_stopped(5.0)
    assert not any(t.name == where[0] for t in threading.enumerate())
