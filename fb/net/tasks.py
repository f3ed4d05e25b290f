"""The owner of the asyncio tasks one comm layer stack runs (MQTT sessions, slow opens).

Comm FBs run inside a resource's drain task, which has no TaskGroup to lend, and
their INIT-/stop hooks are synchronous. So each stack gets a `StackTasks`: tasks are
created through it, tracked, and cancelled on `close()`; `aclose()` also awaits them.
A task that fails is logged (`comm_task_failed`), never silently dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

__all__ = ["StackTasks"]

log = structlog.get_logger(__name__)


class StackTasks:
    """A set of tasks with one owner; closing cancels every one of them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: str) -> None:
        self._loop = loop
        self._owner = owner
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Start `coro` now (on the owner's loop); after close it is closed unstarted."""
        if self._closed:
            coro.close()
            return
        task = self._loop.create_task(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.warning("comm_task_failed", owner=self._owner, task=task.get_name(),
                        error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Cancel every task; idempotent."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Cancel and wait for every task to finish."""
        self.close()
        pending = list(self._tasks)
        if pending:
            await asyncio.wait(pending)

    def __len__(self) -> int:
        return len(self._tasks)
