"""A bounded, micro-batching inference executor: one owned worker thread per loaded model.

Callers (FB event handlers on the resource task) `submit` a request and return at once: the
queue is bounded and a full queue rejects the new request (counted, logged once per burst),
it never blocks. The worker takes the oldest request, then gathers more for at most
`max_wait_s` or until `max_batch` samples, concatenates them along the batch axis, runs the
model once and hands each requester its own slice through its callback (which posts into the
requester's resource). The session is read from a `ModelSlot` at the start of every batch,
so a hot swap takes effect between batches and no request is lost. `close()` finishes the
requests already queued, then joins the thread.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import structlog
from numpy.typing import NDArray

from testbed.ai.errors import ModelError
from testbed.ai.session import ModelSession

__all__ = [
    "BatchingConfig",
    "ExecutorState",
    "ExecutorStatistics",
    "InferenceExecutor",
    "ModelSlot",
    "Outputs",
    "ResultCallback",
]

log = structlog.get_logger(__name__)

Outputs = list[NDArray[np.generic]]
ResultCallback = Callable[[Outputs | ModelError], None]
"""Receives the request's own output slices, or the error that stopped its batch."""


@dataclass(frozen=True, slots=True)
class BatchingConfig:
    """The micro-batching window and the queue bound."""

    max_batch: int = 256
    """Samples per model run at most (a single larger request still runs whole)."""
    max_wait_s: float = 0.001
    """Added latency at most while a batch gathers."""
    queue_capacity: int = 4096
    """Requests waiting at most; past it `submit` rejects the newest (counted)."""

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.queue_capacity < 1 or self.max_wait_s < 0.0:
            raise ValueError(f"invalid batching config {self}")


class ModelSlot:
    """The session currently serving a model; swapped atomically between batches/events."""

    def __init__(self, session: ModelSession) -> None:
        self._session = session
        self.swaps = 0

    @property
    def session(self) -> ModelSession:
        return self._session

    def swap(self, session: ModelSession) -> ModelSession:
        """Serve `session` from now on; returns the previous one."""
        old, self._session = self._session, session
        self.swaps += 1
        return old


class ExecutorState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    CLOSED = "closed"


_RUNNING = ExecutorState.RUNNING  # per request: an enum member lookup costs ~150 ns (3.11)


@dataclass(frozen=True, slots=True)
class ExecutorStatistics:
    """Counters of one executor (`InferenceExecutor.statistics()`)."""

    submitted: int
    rejected: int
    cancelled: int
    completed: int
    failed: int
    batches: int
    samples: int
    largest_batch: int
    queue_length: int
    queue_high_water: int
    queue_capacity: int


@dataclass(slots=True)
class _Request:
    feeds: Mapping[str, NDArray[np.generic]]
    samples: int
    callback: ResultCallback


class InferenceExecutor:
    """Runs one model's requests on one owned thread, micro-batched; see the module doc."""

    def __init__(self, slot: ModelSlot, config: BatchingConfig = BatchingConfig(),
                 *, name: str = "model") -> None:
        self.slot = slot
        self.config = config
        self.name = name
        self.state = ExecutorState.CREATED
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._submitted = self._rejected = self._completed = self._failed = 0
        self._batches = self._samples = self._largest = self._high_water = 0
        self._cancelled = 0
        self._overflowing = False

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self.state is not ExecutorState.CREATED:
            return
        self.state = ExecutorState.RUNNING
        self._thread = threading.Thread(target=self._work, name=f"inference:{self.name}",
                                        daemon=True)
        self._thread.start()

    def submit(self, feeds: Mapping[str, NDArray[np.generic]], samples: int,
               callback: ResultCallback) -> bool:
        """Queue a request of `samples` rows; False (counted) if closed or the queue is full."""
        with self._cond:
            if self.state is not _RUNNING:
                self._rejected += 1
                return False
            if len(self._queue) >= self.config.queue_capacity:
                self._rejected += 1
                if not self._overflowing:
                    self._overflowing = True
                    log.warning("inference_queue_full", model=self.name,
                                capacity=self.config.queue_capacity, rejected=self._rejected)
                return False
            self._queue.append(_Request(feeds, samples, callback))
            self._submitted += 1
            if len(self._queue) > self._high_water:
                self._high_water = len(self._queue)
            self._cond.notify()
        return True

    def close(self, timeout_s: float = 10.0, *, drain: bool = True) -> None:
        """Stop the worker and join it (idempotent).

        With `drain` the requests already queued still run (a hot swap loses nothing);
        without it they are cancelled and counted (their requesters have gone).
        """
        with self._cond:
            if self.state is ExecutorState.CLOSED:
                return
            self.state = ExecutorState.CLOSED
            if not drain:
                self._cancelled += len(self._queue)
                self._queue.clear()
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def statistics(self) -> ExecutorStatistics:
        with self._cond:
            return ExecutorStatistics(
                submitted=self._submitted, rejected=self._rejected,
                cancelled=self._cancelled, completed=self._completed,
                failed=self._failed, batches=self._batches, samples=self._samples,
                largest_batch=self._largest, queue_length=len(self._queue),
                queue_high_water=self._high_water, queue_capacity=self.config.queue_capacity)

    # --- worker ----------------------------------------------------------------------

    def _take_batch(self) -> list[_Request] | None:
        """Block until requests arrive, then gather a batch within the window."""
        cfg = self.config
        with self._cond:
            while not self._queue:
                if self.state is ExecutorState.CLOSED:
                    return None
                self._cond.wait()
            batch = [self._queue.popleft()]
            total = batch[0].samples
            deadline = time.monotonic() + cfg.max_wait_s
            while total < cfg.max_batch:
                if self._queue:
                    if total + self._queue[0].samples > cfg.max_batch:
                        break
                    request = self._queue.popleft()
                    batch.append(request)
                    total += request.samples
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0.0 or self.state is ExecutorState.CLOSED:
                    break
                self._cond.wait(remaining)
            if not self._queue:
                self._overflowing = False
            return batch

    def _work(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Request]) -> None:
        session = self.slot.session
        total = sum(r.samples for r in batch)
        try:
            if len(batch) == 1:
                feeds = batch[0].feeds
            else:
                feeds = {name: np.concatenate([r.feeds[name] for r in batch], axis=0)
                         for name in batch[0].feeds}
            outputs = session.run(feeds)
        except (ModelError, ValueError, KeyError) as exc:
            error = exc if isinstance(exc, ModelError) else ModelError(
                f"{session.origin}: cannot batch requests: {exc}")
            with self._cond:
                self._failed += len(batch)
            for request in batch:
                self._deliver(request, error)
            return
        with self._cond:
            self._batches += 1
            self._samples += total
            self._largest = max(self._largest, total)
            self._completed += len(batch)
        if len(batch) == 1:
            self._deliver(batch[0], outputs)
            return
        start = 0
        for request in batch:
            stop = start + request.samples
            self._deliver(request, [out[start:stop] for out in outputs])
            start = stop

    def _deliver(self, request: _Request, result: Outputs | ModelError) -> None:
        try:
            request.callback(result)
        except Exception as exc:  # a requester's callback failed: report, keep serving others
            log.error("inference_callback_failed", model=self.name,
                      error=f"{type(exc).__name__}: {exc}")
