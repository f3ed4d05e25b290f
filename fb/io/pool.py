"""The I/O session pool of one device: where field-I/O FBs do their network work.

Ownership, top to bottom:

- A device (or a resource without a device) has at most one `IoPool`, found with
  `pool_for(scope)` (a weak map, so the pool goes when the device goes).
- The pool runs while any FB holds a lease on it: one supervising task with one
  `asyncio.TaskGroup` that owns every task: the per-FB jobs (reads, writes, polls,
  subscription pumps) and one owner task per driver session. The supervising task runs
  on the device's event loop when the lease is taken inside it (the normal case), or on
  its own loop in an I/O thread when there is none (synchronous virtual-clock use).
- Driver sessions (`OpcUaClientSession`, `ModbusClientSession`) are shared per endpoint
  (same key, same session, reference counted) or private to one FB (a Modbus poll plan).
  Each is opened and closed inside its owner task, as the drivers require.
- An FB holds an `IoLease`. `lease.spawn(coro)` runs a job in the pool's TaskGroup;
  `lease.close()` (INIT-, `on_resource_stop`, deletion) cancels the FB's jobs, drops its
  session references and, for the last lease, stops the pool: jobs are cancelled,
  sessions close under their own deadlines, the TaskGroup and its supervisor end.

FB logic never awaits: jobs report back with `fb.post(...)` (the resource's external
queue, thread-safe), so jobs never touch FB state whichever loop they run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable, Coroutine, Hashable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import structlog

__all__ = ["IoLease", "IoPool", "IoPoolStatistics", "pool_for"]

log = structlog.get_logger(__name__)

SessionFactory = Callable[[], AbstractAsyncContextManager[Any]]
"""Makes an unopened driver session (an async context manager yielding the session)."""

_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class IoPoolStatistics:
    """Counters of a pool."""

    running: bool
    leases: int
    sessions: int
    jobs_started: int
    jobs_failed: int
    generations_started: int


@dataclass(slots=True)
class _SessionSlot:
    """A shared session: its owner task, readiness and reference count."""

    ready: asyncio.Future[Any]
    release: asyncio.Event
    refs: int = 0


class _Runner:
    """One generation of a pool: a loop, its TaskGroup and the pool's sessions.

    Thread mode (no running loop to join, e.g. a virtual-clock network driven by
    synchronous calls) runs its own loop in an I/O thread. Loop mode joins the running
    loop of the device that leased it, as one supervising task held here, so data does
    not cross threads (a hop and a GIL hand-over per event).
    """

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop | None) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = loop
        self._started = threading.Event()
        self._finished = threading.Event()
        self._stop: asyncio.Event | None = None
        self._group: asyncio.TaskGroup | None = None
        self.sessions: dict[Hashable, _SessionSlot] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.owners: set[asyncio.Task[None]] = set()
        self.thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.loop is not None:
            # the supervising task of loop mode; it ends when `stop()` is called
            self._task = self.loop.create_task(self._amain(), name=self.name)
            return
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self.thread.start()
        self._started.wait()

    @property
    def alive(self) -> bool:
        """True until the TaskGroup has closed."""
        return not self._finished.is_set()

    def wait_finished(self, timeout_s: float) -> bool:
        """Block until the TaskGroup has closed (from another thread in loop mode)."""
        return self._finished.wait(timeout_s)

    def _main(self) -> None:
        asyncio.run(self._amain())

    async def _amain(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._started.set()
                await self._stop.wait()
                # jobs were cancelled by their leases; sessions close themselves when
                # released, each under its driver's close deadline
                for slot in self.sessions.values():
                    slot.release.set()
                for task in self.tasks:
                    task.cancel()
                owners = [t for t in self.owners if not t.done()]
                if owners:
                    _, late = await asyncio.wait(owners, timeout=_STOP_TIMEOUT_S)
                    for task in late:
                        task.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the pool's last words: log, never lose them
            log.error("io_pool_failed", pool=self.name, error=f"{type(exc).__name__}: {exc}")
        finally:
            self._group = None
            self._started.set()
            self._finished.set()
            log.debug("io_pool_ended", pool=self.name)

    def call(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the I/O loop (thread-safe)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(fn)

    def create_task(
        self, coro: Coroutine[Any, Any, None], name: str, *, owner: bool = False
    ) -> asyncio.Task[None] | None:
        """Create a job (or a session owner) task in the TaskGroup; on the I/O loop only."""
        if self._group is None or (self._stop is not None and self._stop.is_set()):
            coro.close()
            return None
        task = self._group.create_task(coro, name=name)
        tracked = self.owners if owner else self.tasks
        tracked.add(task)
        task.add_done_callback(tracked.discard)
        return task

    def stop(self) -> None:
        """Ask the pool to cancel everything and end (thread-safe, returns at once)."""

        def set_stop() -> None:
            if self._stop is not None:
                self._stop.set()

        self.call(set_stop)


class IoPool:
    """Sessions and jobs of the field-I/O FBs of one device; see the module docstring."""

    def __init__(self, name: str = "io") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._runner: _Runner | None = None
        self._old_runners: list[_Runner] = []
        self._leases = 0
        self._ids = itertools.count(1)
        self._jobs_started = 0
        self._jobs_failed = 0
        self._generations_started = 0

    def lease(self, owner: str) -> IoLease:
        """A lease for one FB; starts the pool if it does not run.

        Called from a running event loop (a resource task), the pool joins that loop;
        otherwise it runs its own loop in an I/O thread.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            if self._runner is None:
                runner = _Runner(f"{self.name}-io-{next(self._ids)}", loop)
                runner.start()
                self._runner = runner
                self._generations_started += 1
                log.debug("io_pool_started", pool=self.name, thread=runner.name)
            self._leases += 1
            return IoLease(self, self._runner, owner)

    def _returned(self, runner: _Runner) -> None:
        with self._lock:
            self._leases -= 1
            if self._leases == 0 and self._runner is runner:
                self._runner = None
                self._old_runners = [r for r in self._old_runners if r.alive]
                self._old_runners.append(runner)
                runner.stop()

    def wait_stopped(self, timeout_s: float = _STOP_TIMEOUT_S) -> bool:
        """Block until every generation asked to stop has closed (tests, CLI exit).

        In loop mode call it from another thread (`asyncio.to_thread`): the loop must
        keep running for the pool to close.
        """
        with self._lock:
            runners = list(self._old_runners)
        for runner in runners:
            runner.wait_finished(timeout_s)
            if runner.thread is not None:
                runner.thread.join(timeout_s)
        return not any(r.alive for r in runners)

    async def wait_closed(self, timeout_s: float = _STOP_TIMEOUT_S) -> bool:
        """Await the end of every generation asked to stop (for a device's shutdown path).

        A device should await this after its resources stopped and before its event loop
        ends, so sessions finish closing instead of being cancelled by the loop's end.
        """
        with self._lock:
            runners = list(self._old_runners)
        tasks = [r._task for r in runners if r._task is not None and not r._task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)
        threads = [r for r in runners if r.thread is not None and r.alive]
        for runner in threads:
            await asyncio.to_thread(runner.wait_finished, timeout_s)
        return not any(r.alive for r in runners)

    @property
    def running(self) -> bool:
        """True while the pool serves leases."""
        return self._runner is not None

    def statistics(self) -> IoPoolStatistics:
        """A snapshot of the pool's counters."""
        runner = self._runner
        return IoPoolStatistics(
            running=runner is not None,
            leases=self._leases,
            sessions=len(runner.sessions) if runner is not None else 0,
            jobs_started=self._jobs_started,
            jobs_failed=self._jobs_failed,
            generations_started=self._generations_started,
        )

    def _job_started(self) -> None:
        self._jobs_started += 1

    def _job_failed(self) -> None:
        self._jobs_failed += 1


class IoLease:
    """One FB's claim on the pool: its jobs and the session references it holds."""

    def __init__(self, pool: IoPool, runner: _Runner, owner: str) -> None:
        self._pool = pool
        self._runner = runner
        self._owner = owner
        self._tasks: set[asyncio.Task[None]] = set()
        self._keys: list[Hashable] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        """True after `close()`."""
        return self._closed

    @property
    def pool(self) -> IoPool:
        """The pool this lease was taken from (device-level settings hang off it)."""
        return self._pool

    def spawn(self, coro_fn: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """Run `coro_fn()` as a job in the pool's TaskGroup (thread-safe, returns at once)."""
        if self._closed:
            return
        runner = self._runner

        def start() -> None:
            if self._closed:
                return
            task = runner.create_task(self._guard(coro_fn(), name), f"{self._owner}:{name}")
            if task is not None:
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._pool._job_started()
        runner.call(start)

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        # a failing job must not take the pool's TaskGroup (and every other FB) down
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._pool._job_failed()
            log.error("io_job_failed", owner=self._owner, job=name,
                      error=f"{type(exc).__name__}: {exc}")

    async def session(self, key: Hashable, factory: SessionFactory) -> Any:
        """The session for `key`, opened once and shared; call from a job (on the I/O loop).

        The returned object is what the factory's context manager yields. Failure to open
        raises the driver's error here and leaves no entry behind.
        """
        runner = self._runner
        slot = runner.sessions.get(key)
        if slot is None:
            loop = asyncio.get_running_loop()
            slot = _SessionSlot(loop.create_future(), asyncio.Event())
            runner.sessions[key] = slot
            task = runner.create_task(self._own_session(runner, key, slot, factory),
                                      f"session:{key}", owner=True)
            if task is None:
                del runner.sessions[key]
                raise asyncio.CancelledError
        if key not in self._keys:
            self._keys.append(key)
            slot.refs += 1
        # asyncio.wait, not await: a cancelled waiter must not cancel the shared opening
        await asyncio.wait([slot.ready])
        if slot.ready.cancelled():
            raise asyncio.CancelledError
        exc = slot.ready.exception()
        if exc is not None:
            self._keys.remove(key)
            raise exc
        return slot.ready.result()

    @staticmethod
    async def _own_session(
        runner: _Runner, key: Hashable, slot: _SessionSlot, factory: SessionFactory
    ) -> None:
        try:
            async with factory() as session:
                slot.ready.set_result(session)
                await slot.release.wait()
        except asyncio.CancelledError:
            if not slot.ready.done():
                slot.ready.cancel()
            raise
        except Exception as exc:
            if not slot.ready.done():
                slot.ready.set_exception(exc)
            else:
                log.warning("io_session_failed", key=str(key), error=f"{type(exc).__name__}: {exc}")
        finally:
            if runner.sessions.get(key) is slot:
                del runner.sessions[key]
            if slot.ready.done() and not slot.ready.cancelled():
                slot.ready.exception()  # mark a failure as retrieved

    def close(self) -> None:
        """Cancel this FB's jobs and drop its session references (thread-safe, idempotent)."""
        if self._closed:
            return
        self._closed = True
        runner = self._runner

        def finish() -> None:
            for task in list(self._tasks):
                task.cancel()
            for key in self._keys:
                slot = runner.sessions.get(key)
                if slot is None:
                    continue
                slot.refs -= 1
                if slot.refs <= 0:
                    slot.release.set()
            self._keys.clear()

        runner.call(finish)
        self._pool._returned(runner)


_POOLS: weakref.WeakKeyDictionary[object, IoPool] = weakref.WeakKeyDictionary()
_POOLS_LOCK = threading.Lock()


def pool_for(scope: object) -> IoPool:
    """The I/O pool of a device (or of a device-less resource), created on first use.

    A device owns it as a service (closed when the device's run ends); a resource
    without a device keeps it in a weak map keyed by the resource.
    """
    service = getattr(scope, "service", None)
    if callable(service):
        owned: IoPool = service("io_pool", lambda: IoPool(getattr(scope, "name", "io")))
        return owned
    with _POOLS_LOCK:
        pool = _POOLS.get(scope)
        if pool is None:
            pool = IoPool(getattr(scope, "name", "io"))
            _POOLS[scope] = pool
        return pool

