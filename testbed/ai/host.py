"""Loaded models of one resource (or script): shared sessions, executors and a loader thread.

FB instances that name the same model file (same bytes) with the same batching window share
one session and one executor, so their requests are micro-batched together. Loading (file
read, session creation, validation, the batch-1 timing that decides inline execution) runs on
the host's loader thread and reports back through a callback; releasing the last lease of a
model closes its executor on that thread too, so the resource task never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from testbed.ai.errors import ModelError
from testbed.ai.executor import BatchingConfig, InferenceExecutor, ModelSlot
from testbed.ai.session import INLINE_THRESHOLD_S, ModelSession, ModelSignature

__all__ = ["ExecutionMode", "ModelHost", "ModelLease", "ModelOptions", "host_for"]

log = structlog.get_logger(__name__)

ExecutionMode = Literal["auto", "inline", "executor"]


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """How an FB runs its model: `auto` runs batch-1 requests inline when the measured
    batch-1 time is below `inline_threshold_s` (DESIGN rule 6), everything else on the
    executor."""

    mode: ExecutionMode = "auto"
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    threads: int = 1
    inline_threshold_s: float = INLINE_THRESHOLD_S


@dataclass(slots=True)
class _Entry:
    key: tuple[str, str, BatchingConfig]
    slot: ModelSlot
    executor: InferenceExecutor
    batch1_s: float
    refs: int = 0


@dataclass(slots=True)
class ModelLease:
    """One user's hold on a loaded model; `release()` once when done."""

    host: ModelHost
    entry: _Entry
    options: ModelOptions
    released: bool = field(default=False)

    @property
    def slot(self) -> ModelSlot:
        return self.entry.slot

    @property
    def session(self) -> ModelSession:
        return self.entry.slot.session

    @property
    def executor(self) -> InferenceExecutor:
        return self.entry.executor

    @property
    def batch1_s(self) -> float:
        """Measured median time of one batch-1 run at load."""
        return self.entry.batch1_s

    def runs_inline(self, samples: int) -> bool:
        """Whether a request of `samples` rows runs inline under this lease's mode."""
        mode = self.options.mode
        if mode == "inline":
            return True
        if mode == "executor":
            return False
        return samples == 1 and self.entry.batch1_s < self.options.inline_threshold_s

    def release(self, *, drain: bool = True) -> None:
        """Give the model back; the last holder's release closes its executor (`drain`:
        queued requests still run, else they are cancelled)."""
        if not self.released:
            self.released = True
            self.host._release(self.entry, drain)


class ModelHost:
    """Loads and shares models; see the module docstring. Close it when done."""

    def __init__(self, name: str = "models") -> None:
        self.name = name
        self._entries: dict[tuple[str, str, BatchingConfig], _Entry] = {}
        self._lock = threading.Lock()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"loader:{name}")
        self._closed = False

    def __enter__(self) -> ModelHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def acquire(self, path: Path | str, expected: ModelSignature | None = None,
                options: ModelOptions = ModelOptions()) -> ModelLease:
        """Load (or share) a model and validate it; blocking, for scripts and the loader."""
        if self._closed:
            raise ModelError(f"{path}: model host {self.name} is closed")
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"{path}: cannot read model file: {exc.strerror}") from exc
        key = (str(path.resolve()), hashlib.sha256(data).hexdigest(), options.batching)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            session = ModelSession(data, threads=options.threads, label=str(path))
            if expected is not None:
                session.validate(expected)
            batch1 = session.measure_batch1_s()
            slot = ModelSlot(session)
            executor = InferenceExecutor(slot, options.batching, name=path.name)
            with self._lock:
                entry = self._entries.setdefault(key, _Entry(key, slot, executor, batch1))
            if entry.executor is executor:
                executor.start()
                log.info("model_loaded", model=str(path), sha256=key[1][:12],
                         batch1_us=round(batch1 * 1e6, 1))
        elif expected is not None:
            entry.slot.session.validate(expected)
        with self._lock:
            entry.refs += 1
        return ModelLease(self, entry, options)

    def load(self, path: Path | str, expected: ModelSignature | None, options: ModelOptions,
             done: Callable[[ModelLease | ModelError], None]) -> None:
        """`acquire` on the loader thread; `done` gets the lease or the error there."""

        def job() -> None:
            try:
                result: ModelLease | ModelError = self.acquire(path, expected, options)
            except ModelError as exc:
                result = exc
            done(result)

        if self._closed:
            done(ModelError(f"{path}: model host {self.name} is closed"))
            return
        self._loader.submit(job)

    def _release(self, entry: _Entry, drain: bool) -> None:
        with self._lock:
            entry.refs -= 1
            if entry.refs > 0:
                return
            self._entries.pop(entry.key, None)
        if self._closed:
            entry.executor.close(drain=drain)
        else:
            self._loader.submit(entry.executor.close, drain=drain)

    def barrier(self) -> Future[None]:
        """A future done once every load and close submitted so far has finished, its
        callback returned (the loader runs jobs in order): a virtual-clock run waits on it
        before moving time on, so a model answers INIT at the same virtual time each run."""
        if not self._closed:
            with contextlib.suppress(RuntimeError):  # shut down in between
                return self._loader.submit(_nothing)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    @property
    def loaded(self) -> int:
        """Models currently held by at least one lease."""
        with self._lock:
            return len(self._entries)

    def close(self) -> None:
        """Close every executor (finishing queued requests) and the loader (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._loader.shutdown(wait=True)
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.executor.close(drain=False)

    async def aclose(self) -> None:
        """`close()` off the event loop (it joins the loader thread): the device's
        service shutdown awaits it."""
        await asyncio.to_thread(self.close)


def _nothing() -> None:
    """The loader job of a `barrier`."""


_HOSTS: weakref.WeakKeyDictionary[object, ModelHost] = weakref.WeakKeyDictionary()
"""Hosts of device-less resources and scripts; dies with its owner."""


def host_for(owner: object) -> ModelHost:
    """The model host of a device (a device service, closed when its run ends) or of a
    device-less resource or script (kept in a weak map; created on first use)."""
    name = str(getattr(owner, "name", "models"))
    service = getattr(owner, "service", None)
    if callable(service):
        owned: ModelHost = service("model_host", lambda: ModelHost(name=name))
        return owned
    host = _HOSTS.get(owner)
    if host is None or host._closed:
        host = ModelHost(name=name)
        _HOSTS[owner] = host
    return host
