"""Durable queue for QoS 1 messages: written to SQLite before sending, removed at PUBACK.

Why SQLite in WAL mode: appends are sequential writes to the write-ahead log, readers (the replay
cursor) never block the writer, and a committed transaction survives the death of the process.

Ids: every message gets the table's `INTEGER PRIMARY KEY AUTOINCREMENT` rowid, a 64-bit integer
that only grows and is never reused, even after the table empties or the process restarts. The
payload can carry it (Sparkplug `uuid` or a metric property) so a consumer drops duplicates.

Durability (`StoreConfig.synchronous`):

* ``NORMAL`` (default): in WAL mode a commit writes the log but does not fsync it; the log is
  synced at checkpoints. A committed message survives SIGKILL or any crash of *this process*
  (the bytes are in the OS page cache), but the most recent commits can be lost if the *machine*
  loses power or the kernel panics. Cheap: thousands of commits per second.
* ``FULL``: every commit fsyncs the log. Committed messages survive power loss too, at the price
  of one fsync per commit (milliseconds on real disks; batching amortises it).

`append()` returns only after its commit, so "stored" means "survives SIGKILL" in both modes.
Acknowledgements are batched into the next commit: losing them in a crash only causes a
re-send, which end-to-end dedupe by id absorbs.

Blocking: SQLite runs in one worker thread owned by the store; the event loop only queues work.
Appends that arrive while a commit is in progress are grouped into the next one (group commit);
`append_many` hands a whole batch over at once (one future, one `executemany`). Acks are
deleted as ranges of consecutive ids, so in-order PUBACKs cost two statements per commit.

Capacity: a byte budget (`max_bytes`: payload + topic + stream) and an age limit (`max_age_s`).
Past the budget, `overflow="drop_oldest"` deletes the oldest messages (counted as
`dropped_oldest`), `overflow="reject_new"` refuses the new one with `StoreFullError` (counted as
`rejected_new`). Expired messages are deleted oldest-first (counted as `expired`). Both removals
delete a prefix of ids, exposed as `removed_through_id`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple, Self, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import DriverError

__all__ = [
    "MessageStore",
    "StoreConfig",
    "StoreError",
    "StoreFullError",
    "StoreOverflow",
    "StoreState",
    "StoreStatistics",
    "StoredMessage",
]

_log = structlog.get_logger(__name__)

StoreOverflow = Literal["drop_oldest", "reject_new"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_stream ON messages (stream, id);
"""
_T = TypeVar("_T")


class StoreError(DriverError):
    """The message store could not read or write its database."""


class StoreFullError(StoreError):
    """The store is at its byte budget and its overflow policy is reject_new."""


class StoreConfig(BaseModel):
    """Where the queue lives and how much it may hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    max_age_s: float | None = Field(default=7 * 24 * 3600.0, gt=0)
    overflow: StoreOverflow = "drop_oldest"
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    max_batch: int = Field(default=1000, ge=1)
    """Appends per commit at most (one `append_many` call larger than this is one commit)."""


class StoreState(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One queued message as the store holds it."""

    id: int
    stream: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_ns: int
    """Wall-clock time of the append (ns since the epoch): the message's original timestamp."""


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """Queue contents and counters since open."""

    state: StoreState
    pending_messages: int
    pending_bytes: int
    max_bytes: int
    appended: int
    acked: int
    dropped_oldest: int
    rejected_new: int
    expired: int
    commits: int
    last_id: int
    removed_through_id: int


class _Append(NamedTuple):
    """One message waiting for its commit (a tuple: thousands are built per second)."""

    stream: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_ns: int


_Outcome = StoredMessage | StoreFullError


@dataclass(frozen=True, slots=True)
class _Request:
    """One `append`/`append_many` call: its messages and the future of their outcomes."""

    items: list[_Append]
    waiter: asyncio.Future[list[_Outcome]]


@dataclass(slots=True)
class _BatchResult:
    outcomes: list[StoredMessage | StoreFullError] = field(default_factory=list)
    acked: int = 0
    dropped: int = 0
    rejected: int = 0
    expired: int = 0


class _Database:
    """The SQLite side; every method runs in the store's worker thread."""

    def __init__(self, config: StoreConfig) -> None:
        self._config = config
        try:
            config.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(config.path), isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={config.synchronous}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise StoreError(
                    f"{config.path}: schema version {version}, expected {_SCHEMA_VERSION}"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            row = self._db.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages"
            ).fetchone()
            self.pending_bytes, self.pending_messages = int(row[0]), int(row[1])
            seq = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'messages'"
            ).fetchone()
            self.last_id = int(seq[0]) if seq is not None else 0
            low = self._db.execute("SELECT MIN(id) FROM messages").fetchone()[0]
            self.removed_through_id = (int(low) - 1) if low is not None else self.last_id
        except sqlite3.Error as exc:
            raise StoreError(f"{config.path}: cannot open message store: {exc}") from exc
        self._next_expiry_check = 0.0

    def close(self) -> None:
        self._db.close()

    def write_batch(self, appends: list[_Append], acks: list[int]) -> _BatchResult:
        result = _BatchResult()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result.acked = self._delete_ids(acks)
                result.expired = self._expire()
                if not self._insert_all(appends, result):
                    for item in appends:
                        result.outcomes.append(self._insert(item, result))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            # the transaction rolled back: restore the counters from the database
            row = self._db.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages"
            ).fetchone()
            self.pending_bytes, self.pending_messages = int(row[0]), int(row[1])
            raise StoreError(f"{self._config.path}: write failed: {exc}") from exc
        return result

    def _delete_ids(self, ids: list[int]) -> int:
        """Delete acknowledged ids as runs of consecutive ids (PUBACKs mostly come in order,
        so a batch of thousands of acks is usually one range: two statements)."""
        removed = 0
        for low, high in _id_ranges(ids):
            row = self._db.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages WHERE id BETWEEN ? AND ?",
                (low, high),
            ).fetchone()
            self._db.execute("DELETE FROM messages WHERE id BETWEEN ? AND ?", (low, high))
            self.pending_bytes -= int(row[0])
            self.pending_messages -= int(row[1])
            removed += int(row[1])
        return removed

    def _delete_through(self, last_id: int) -> int:
        row = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages WHERE id <= ?", (last_id,)
        ).fetchone()
        self._db.execute("DELETE FROM messages WHERE id <= ?", (last_id,))
        self.pending_bytes -= int(row[0])
        self.pending_messages -= int(row[1])
        self.removed_through_id = max(self.removed_through_id, last_id)
        return int(row[1])

    def _expire(self) -> int:
        max_age_s = self._config.max_age_s
        now = time.monotonic()
        if max_age_s is None or now < self._next_expiry_check or self.pending_messages == 0:
            return 0
        self._next_expiry_check = now + 1.0
        cutoff_ns = time.time_ns() - int(max_age_s * 1e9)
        oldest = self._db.execute(
            "SELECT created_ns FROM messages ORDER BY id LIMIT 1"
        ).fetchone()
        if oldest is None or oldest[0] >= cutoff_ns:
            return 0
        last = self._db.execute(
            "SELECT MAX(id) FROM messages WHERE created_ns < ?", (cutoff_ns,)
        ).fetchone()[0]
        return self._delete_through(int(last))

    def _insert_all(self, appends: list[_Append], result: _BatchResult) -> bool:
        """Insert the whole batch with one `executemany` when it fits the budget as it is
        (no overflow decision per message); False leaves it to `_insert`, one by one.

        Ids are given explicitly, continuing from `last_id` (AUTOINCREMENT's high-water mark,
        which SQLite raises to the largest id inserted), so they are known without a query.
        """
        if not appends:
            return True
        sizes = [len(a.payload) + len(a.topic.encode()) + len(a.stream.encode()) for a in appends]
        total = sum(sizes)
        if self.pending_bytes + total > self._config.max_bytes:
            return False
        first = self.last_id + 1
        self._db.executemany(
            "INSERT INTO messages (id, stream, topic, payload, qos, retain, created_ns, size) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (first + n, a.stream, a.topic, a.payload, a.qos, a.retain, a.created_ns, size)
                for n, (a, size) in enumerate(zip(appends, sizes, strict=True))
            ],
        )
        self.last_id = first + len(appends) - 1
        self.pending_bytes += total
        self.pending_messages += len(appends)
        result.outcomes.extend(
            StoredMessage(first + n, a.stream, a.topic, a.payload, a.qos, a.retain, a.created_ns)
            for n, a in enumerate(appends)
        )
        return True

    def _insert(self, item: _Append, result: _BatchResult) -> StoredMessage | StoreFullError:
        size = len(item.payload) + len(item.topic.encode()) + len(item.stream.encode())
        budget = self._config.max_bytes
        if size > budget or (
            self.pending_bytes + size > budget and self._config.overflow == "reject_new"
        ):
            result.rejected += 1
            return StoreFullError(
                f"{self._config.path}: store full ({self.pending_bytes} of {budget} bytes); "
                f"message of {size} bytes on {item.topic!r} rejected"
            )
        if self.pending_bytes + size > budget:
            result.dropped += self._drop_oldest(self.pending_bytes + size - budget)
        cursor = self._db.execute(
            "INSERT INTO messages (stream, topic, payload, qos, retain, created_ns, size) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item.stream, item.topic, item.payload, item.qos, int(item.retain), item.created_ns,
             size),
        )
        message_id = cursor.lastrowid
        assert message_id is not None
        self.last_id = message_id
        self.pending_bytes += size
        self.pending_messages += 1
        return StoredMessage(
            id=message_id,
            stream=item.stream,
            topic=item.topic,
            payload=item.payload,
            qos=item.qos,
            retain=item.retain,
            created_ns=item.created_ns,
        )

    def _drop_oldest(self, need_bytes: int) -> int:
        freed = 0
        cut = None
        after = 0
        while freed < need_bytes:
            rows = self._db.execute(
                "SELECT id, size FROM messages WHERE id > ? ORDER BY id LIMIT 256", (after,)
            ).fetchall()
            if not rows:
                break
            for message_id, size in rows:
                freed += int(size)
                cut = int(message_id)
                if freed >= need_bytes:
                    break
            after = int(rows[-1][0])
        return self._delete_through(cut) if cut is not None else 0

    def fetch(self, stream: str, after_id: int, limit: int) -> list[StoredMessage]:
        try:
            rows = self._db.execute(
                "SELECT id, stream, topic, payload, qos, retain, created_ns FROM messages "
                "WHERE stream = ? AND id > ? ORDER BY id LIMIT ?",
                (stream, after_id, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self._config.path}: read failed: {exc}") from exc
        return [
            StoredMessage(
                id=int(r[0]), stream=r[1], topic=r[2], payload=bytes(r[3]), qos=int(r[4]),
                retain=bool(r[5]), created_ns=int(r[6]),
            )
            for r in rows
        ]

    def pending_by_stream(self) -> dict[str, int]:
        try:
            rows = self._db.execute(
                "SELECT stream, COUNT(*) FROM messages GROUP BY stream"
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self._config.path}: read failed: {exc}") from exc
        return {str(stream): int(count) for stream, count in rows}


def _id_ranges(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted, distinct ids as inclusive (low, high) runs of consecutive integers."""
    ranges: list[tuple[int, int]] = []
    if not ids:
        return ranges
    ordered = sorted(set(ids))
    low = high = ordered[0]
    for message_id in ordered[1:]:
        if message_id != high + 1:
            ranges.append((low, high))
            low = message_id
        high = message_id
    ranges.append((low, high))
    return ranges


@dataclass(slots=True)
class _Counters:
    appended: int = 0
    acked: int = 0
    dropped_oldest: int = 0
    rejected_new: int = 0
    expired: int = 0
    commits: int = 0


class MessageStore:
    """The durable QoS 1 queue; a one-shot async context manager owning one SQLite thread."""

    def __init__(self, config: StoreConfig) -> None:
        self._config = config
        self._state = StoreState.NEW
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._db: _Database | None = None
        self._pending: list[_Request] = []
        self._acks: list[int] = []
        self._dirty = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._counters = _Counters()
        self._task_group: asyncio.TaskGroup | None = None
        self._writer: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[StoredMessage], None]] = []

    @property
    def config(self) -> StoreConfig:
        return self._config

    @property
    def state(self) -> StoreState:
        return self._state

    async def __aenter__(self) -> Self:
        if self._state is not StoreState.NEW:
            raise RuntimeError(f"MessageStore is one-shot; state is {self._state.value}")
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="mqtt-store"
        )
        try:
            self._db = await self._run(_Database, self._config)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._state = StoreState.CLOSED
            raise
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._writer = self._task_group.create_task(self._write_loop(), name="mqtt-store-writer")
        self._state = StoreState.OPEN
        _log.info(
            "message_store_opened",
            path=str(self._config.path),
            pending_messages=self._db.pending_messages,
            last_id=self._db.last_id,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Commit what is queued (appends and acks), then close the database. Idempotent."""
        if self._state in (StoreState.CLOSING, StoreState.CLOSED):
            return
        if self._state is StoreState.NEW:
            self._state = StoreState.CLOSED
            return
        self._state = StoreState.CLOSING
        try:
            await self.flush()
        finally:
            if self._writer is not None:
                self._writer.cancel()
            if self._task_group is not None:
                await self._task_group.__aexit__(None, None, None)
            for request in self._pending:
                if not request.waiter.done():
                    request.waiter.set_exception(
                        StoreError("store closed before the message was written")
                    )
            self._pending.clear()
            if self._db is not None:
                await self._run(self._db.close)
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self._state = StoreState.CLOSED
            _log.info("message_store_closed", path=str(self._config.path))

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ---- API ----------------------------------------------------------------------------------

    async def append(
        self, stream: str, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> StoredMessage:
        """Queue one message and return once it is committed (durable against SIGKILL).

        Raises `StoreFullError` under reject_new when the budget is exhausted.
        """
        (outcome,) = await self._submit(
            [_Append(stream, topic, bytes(payload), qos, retain, time.time_ns())]
        )
        if isinstance(outcome, StoreFullError):
            raise outcome
        return outcome

    async def append_many(
        self, messages: Sequence[tuple[str, str, bytes]], qos: int = 1, retain: bool = False
    ) -> list[StoredMessage | StoreFullError]:
        """Queue (stream, topic, payload) messages in order and return once all of them are
        committed, in one transaction when they fit `max_batch`: one future and one commit
        instead of one per message.

        Each outcome is the stored message, or the `StoreFullError` that refused it under
        reject_new (later messages may still fit).
        """
        now = time.time_ns()
        return await self._submit(
            [_Append(stream, topic, bytes(payload), qos, retain, now)
             for stream, topic, payload in messages]
        )

    async def _submit(self, items: list[_Append]) -> list[_Outcome]:
        if self._state is not StoreState.OPEN:
            raise StoreError(f"store is {self._state.value}")
        waiter: asyncio.Future[list[_Outcome]] = asyncio.get_running_loop().create_future()
        if not items:
            return []
        self._pending.append(_Request(items, waiter))
        self._idle.clear()
        self._dirty.set()
        return await waiter

    def ack(self, message_id: int) -> None:
        """Mark a message delivered; deleted in the next commit."""
        if self._state in (StoreState.NEW, StoreState.CLOSED):
            return
        self._acks.append(message_id)
        self._idle.clear()
        self._dirty.set()

    def add_append_listener(self, listener: Callable[[StoredMessage], None]) -> None:
        """Call `listener` for every committed message, in id order, on the event loop."""
        self._listeners.append(listener)

    async def flush(self) -> None:
        """Wait until every queued append and ack is committed."""
        while self._pending or self._acks or not self._idle.is_set():
            self._dirty.set()
            await self._idle.wait()

    async def fetch(self, stream: str, after_id: int, limit: int) -> list[StoredMessage]:
        """Up to `limit` messages of `stream` with id > after_id, oldest first."""
        if self._db is None or self._state is not StoreState.OPEN:
            raise StoreError(f"store is {self._state.value}")
        return await self._run(self._db.fetch, stream, after_id, limit)

    async def pending_by_stream(self) -> dict[str, int]:
        """Number of queued messages per stream."""
        if self._db is None or self._state is not StoreState.OPEN:
            raise StoreError(f"store is {self._state.value}")
        return await self._run(self._db.pending_by_stream)

    @property
    def last_id(self) -> int:
        """The highest id ever handed out (0 for a fresh store)."""
        return self._db.last_id if self._db is not None else 0

    @property
    def removed_through_id(self) -> int:
        """Every id up to this one was acked away, dropped or expired, never to be sent."""
        return self._db.removed_through_id if self._db is not None else 0

    # ---- writer -------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        assert self._db is not None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not self._pending and not self._acks:
                self._idle.set()
                continue
            batch = self._take_batch()
            acks, self._acks = self._acks, []
            items = [item for request in batch for item in request.items]
            try:
                result = await self._run(self._db.write_batch, items, acks)
            except StoreError as exc:
                # acks of this batch are lost: their messages are sent again (dedupe absorbs it)
                _log.error(
                    "message_store_write_failed", path=str(self._config.path), error=str(exc)
                )
                for request in batch:
                    if not request.waiter.done():
                        request.waiter.set_exception(exc)
                self._dirty.set()
                continue
            self._account(result)
            self._deliver(batch, result.outcomes)
            self._dirty.set()

    def _take_batch(self) -> list[_Request]:
        """Whole requests, oldest first, up to `max_batch` messages (at least one request)."""
        taken = 0
        count = 0
        for request in self._pending:
            if count and count + len(request.items) > self._config.max_batch:
                break
            count += len(request.items)
            taken += 1
        batch = self._pending[:taken]
        del self._pending[:taken]
        return batch

    def _deliver(self, batch: list[_Request], outcomes: list[_Outcome]) -> None:
        """Tell the listeners about every stored message in id order, then wake the callers."""
        listeners = self._listeners
        start = 0
        for request in batch:
            mine = outcomes[start : start + len(request.items)]
            start += len(request.items)
            for outcome in mine:
                if not isinstance(outcome, StoreFullError):
                    for listener in listeners:
                        listener(outcome)
            if not request.waiter.done():
                request.waiter.set_result(mine)

    def _account(self, result: _BatchResult) -> None:
        counters = self._counters
        counters.commits += 1
        counters.acked += result.acked
        counters.appended += sum(1 for o in result.outcomes if not isinstance(o, StoreFullError))
        if result.dropped:
            counters.dropped_oldest += result.dropped
            _log.warning(
                "message_store_overflowed",
                path=str(self._config.path),
                policy="drop_oldest",
                dropped=result.dropped,
            )
        if result.rejected:
            counters.rejected_new += result.rejected
            _log.warning(
                "message_store_overflowed",
                path=str(self._config.path),
                policy="reject_new",
                rejected=result.rejected,
            )
        if result.expired:
            counters.expired += result.expired
            _log.warning(
                "message_store_expired", path=str(self._config.path), expired=result.expired
            )

    def statistics(self) -> StoreStatistics:
        db = self._db
        counters = self._counters
        return StoreStatistics(
            state=self._state,
            pending_messages=db.pending_messages if db is not None else 0,
            pending_bytes=db.pending_bytes if db is not None else 0,
            max_bytes=self._config.max_bytes,
            appended=counters.appended,
            acked=counters.acked,
            dropped_oldest=counters.dropped_oldest,
            rejected_new=counters.rejected_new,
            expired=counters.expired,
            commits=counters.commits,
            last_id=self.last_id,
            removed_through_id=self.removed_through_id,
        )
