"""The cloud's telemetry database: one SQLite table per metric stream, exactly-once ingest.

Layout (SQLite, WAL):

* `streams`: one row per (group, edge node, device, metric) with its datatype and the name of
  its table `s_<id>` (rows: arrival order, message id, timestamp, value, historical flag);
* `messages`: the (group, edge node, store message id) of every DATA message ingested. A
  message id seen before is a duplicate (a re-send after a lost PUBACK, a replay): its values
  are skipped in the same transaction, so each message lands exactly once, across restarts;
* `twins`: desired and reported documents per edge node.

SQLite runs in one worker thread owned by the object (the event loop only queues work).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import structlog

from drivers.mqtt.sparkplug import DataType, MetricValue
from testbed.errors import TestbedError

__all__ = [
    "CloudStoreError",
    "IngestOutcome",
    "IngestRecord",
    "IngestValue",
    "Sample",
    "StreamInfo",
    "TelemetryDb",
]

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY,
    group_id TEXT NOT NULL,
    edge_node_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    datatype INTEGER NOT NULL,
    UNIQUE (group_id, edge_node_id, device_id, metric)
);
CREATE TABLE IF NOT EXISTS messages (
    group_id TEXT NOT NULL,
    edge_node_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    PRIMARY KEY (group_id, edge_node_id, message_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS twins (
    group_id TEXT NOT NULL,
    edge_node_id TEXT NOT NULL,
    desired TEXT NOT NULL,
    reported TEXT NOT NULL,
    PRIMARY KEY (group_id, edge_node_id)
);
"""


class CloudStoreError(TestbedError):
    """The cloud's database could not be opened, read or written."""


@dataclass(frozen=True, slots=True)
class IngestValue:
    """One metric value of a DATA message."""

    metric: str
    datatype: DataType
    value: MetricValue
    timestamp_ms: int
    is_historical: bool


@dataclass(frozen=True, slots=True)
class IngestRecord:
    """One DATA message to ingest; `message_id` None (a foreign edge node) skips dedupe."""

    group_id: str
    edge_node_id: str
    device_id: str | None
    message_id: int | None
    values: tuple[IngestValue, ...]
    received_ns: int


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    messages: int
    duplicates: int
    values: int


@dataclass(frozen=True, slots=True)
class Sample:
    """One stored value of a metric stream, in arrival order."""

    message_id: int | None
    timestamp_ms: int
    value: MetricValue
    is_historical: bool


@dataclass(frozen=True, slots=True)
class StreamInfo:
    group_id: str
    edge_node_id: str
    device_id: str | None
    metric: str
    datatype: DataType
    table: str
    rows: int


def _to_sql(value: MetricValue) -> object:
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return value


def _from_sql(datatype: DataType, raw: object) -> MetricValue:
    if raw is None:
        return None
    if datatype is DataType.BOOLEAN:
        return bool(raw)
    if datatype.name.endswith("_ARRAY") and isinstance(raw, str):
        return tuple(json.loads(raw))
    if isinstance(raw, bool | int | float | str | bytes):
        return raw
    raise CloudStoreError(f"unexpected stored value {raw!r}")


class _Database:
    """The SQLite side; every method runs in the worker thread."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._streams: dict[tuple[str, str, str, str], int] = {
                (g, e, d, m): int(i)
                for i, g, e, d, m in self._db.execute(
                    "SELECT id, group_id, edge_node_id, device_id, metric FROM streams"
                )
            }
        except sqlite3.Error as exc:
            raise CloudStoreError(f"{path}: cannot open cloud database: {exc}") from exc
        self._path = path

    def close(self) -> None:
        self._db.close()

    def _stream_id(self, record: IngestRecord, value: IngestValue) -> int:
        key = (record.group_id, record.edge_node_id, record.device_id or "", value.metric)
        stream_id = self._streams.get(key)
        if stream_id is None:
            cursor = self._db.execute(
                "INSERT INTO streams (group_id, edge_node_id, device_id, metric, datatype)"
                " VALUES (?, ?, ?, ?, ?)",
                (*key, int(value.datatype)),
            )
            stream_id = int(cursor.lastrowid or 0)
            self._db.execute(
                f"CREATE TABLE s_{stream_id} (row INTEGER PRIMARY KEY, message_id INTEGER,"
                " timestamp_ms INTEGER NOT NULL, value, is_historical INTEGER NOT NULL,"
                " received_ns INTEGER NOT NULL)"
            )
            self._db.execute(f"CREATE INDEX s_{stream_id}_ts ON s_{stream_id} (timestamp_ms)")
            self._streams[key] = stream_id
        return stream_id

    def ingest(self, records: Sequence[IngestRecord]) -> IngestOutcome:
        messages = duplicates = values = 0
        try:
            self._db.execute("BEGIN")
            for record in records:
                if record.message_id is not None:
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?)",
                        (
                            record.group_id,
                            record.edge_node_id,
                            record.message_id,
                            record.received_ns,
                        ),
                    )
                    if cursor.rowcount == 0:
                        duplicates += 1
                        continue
                messages += 1
                for value in record.values:
                    stream_id = self._stream_id(record, value)
                    self._db.execute(
                        f"INSERT INTO s_{stream_id}"  # noqa: S608 - table name from an int id
                        " (message_id, timestamp_ms, value, is_historical, received_ns)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (
                            record.message_id,
                            value.timestamp_ms,
                            _to_sql(value.value),
                            int(value.is_historical),
                            record.received_ns,
                        ),
                    )
                    values += 1
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise CloudStoreError(f"{self._path}: ingest failed: {exc}") from exc
        return IngestOutcome(messages, duplicates, values)

    def query(
        self,
        group_id: str | None,
        edge_node_id: str,
        device_id: str | None,
        metric: str,
        since_ms: int | None,
        until_ms: int | None,
    ) -> list[Sample]:
        keys = [
            (key, sid)
            for key, sid in self._streams.items()
            if key[1:] == (edge_node_id, device_id or "", metric)
            and (group_id is None or key[0] == group_id)
        ]
        if not keys:
            return []
        if len(keys) > 1:
            groups = sorted(key[0] for key, _ in keys)
            raise CloudStoreError(
                f"edge node {edge_node_id!r} exists in several groups {groups}: name the group"
            )
        stream_id = keys[0][1]
        (datatype,) = self._db.execute(
            "SELECT datatype FROM streams WHERE id = ?", (stream_id,)
        ).fetchone()
        columns = "message_id, timestamp_ms, value, is_historical"
        sql = f"SELECT {columns} FROM s_{stream_id}"  # noqa: S608 - table name from an int id
        where: list[str] = []
        args: list[int] = []
        if since_ms is not None:
            where.append("timestamp_ms >= ?")
            args.append(since_ms)
        if until_ms is not None:
            where.append("timestamp_ms < ?")
            args.append(until_ms)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY row"
        kind = DataType(int(datatype))
        return [
            Sample(mid, int(ts), _from_sql(kind, raw), bool(hist))
            for mid, ts, raw, hist in self._db.execute(sql, args)
        ]

    def streams(self) -> list[StreamInfo]:
        result = []
        for sid, g, e, d, m, t in self._db.execute(
            "SELECT id, group_id, edge_node_id, device_id, metric, datatype FROM streams"
        ):
            count_sql = f"SELECT COUNT(*) FROM s_{int(sid)}"  # noqa: S608 - int table id
            (rows,) = self._db.execute(count_sql).fetchone()
            result.append(StreamInfo(g, e, d or None, m, DataType(int(t)), f"s_{sid}", int(rows)))
        return result

    def twin(self, group_id: str, edge_node_id: str) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT desired, reported FROM twins WHERE group_id = ? AND edge_node_id = ?",
            (group_id, edge_node_id),
        ).fetchone()
        return (str(row[0]), str(row[1])) if row is not None else None

    def save_twin(self, group_id: str, edge_node_id: str, desired: str, reported: str) -> None:
        self._db.execute(
            "INSERT INTO twins VALUES (?, ?, ?, ?) ON CONFLICT (group_id, edge_node_id)"
            " DO UPDATE SET desired = excluded.desired, reported = excluded.reported",
            (group_id, edge_node_id, desired, reported),
        )


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class TelemetryDb:
    """Async face of the cloud database; a one-shot async context manager owning one thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._state = _State.NEW
        self._db: _Database | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Self:
        if self._state is not _State.NEW:
            raise RuntimeError("TelemetryDb is one-shot")
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cloud-db")
        try:
            self._db = await self._run(_Database, self._path)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._state = _State.CLOSED
            raise
        self._state = _State.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the database and its thread. Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            if self._db is not None:
                await self._run(self._db.close)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> _Database:
        if self._db is None or self._state is not _State.OPEN:
            raise CloudStoreError(f"{self._path}: database is {self._state.value}")
        return self._db

    async def ingest(self, records: Sequence[IngestRecord]) -> IngestOutcome:
        """Store DATA messages in one transaction, skipping message ids seen before."""
        return await self._run(self._open().ingest, list(records))

    async def query(
        self,
        edge_node_id: str,
        device_id: str | None,
        metric: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
        *,
        group_id: str | None = None,
    ) -> list[Sample]:
        """Values of one metric stream in arrival order, optionally within [since, until)."""
        db = self._open()
        return await self._run(
            db.query, group_id, edge_node_id, device_id, metric, since_ms, until_ms
        )

    async def streams(self) -> list[StreamInfo]:
        """Every metric stream with its table name and row count."""
        return await self._run(self._open().streams)

    async def twin(self, group_id: str, edge_node_id: str) -> tuple[str, str] | None:
        """The stored (desired, reported) JSON documents of an edge node, if any."""
        return await self._run(self._open().twin, group_id, edge_node_id)

    async def save_twin(
        self, group_id: str, edge_node_id: str, desired: str, reported: str
    ) -> None:
        await self._run(self._open().save_twin, group_id, edge_node_id, desired, reported)

    async def export_parquet(self, directory: Path) -> list[Path]:
        """One Parquet file per stream when pyarrow is installed; [] (logged) otherwise."""
        try:
            import pyarrow as pa  # type: ignore[import-not-found]  # optional dependency
            import pyarrow.parquet as pq  # type: ignore[import-not-found]  # optional
        except ImportError:
            _log.info("parquet_export_skipped", reason="pyarrow is not installed")
            return []
        written: list[Path] = []
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        for info in await self.streams():
            samples = await self.query(
                info.edge_node_id, info.device_id, info.metric, group_id=info.group_id
            )
            table = pa.table(
                {
                    "message_id": [s.message_id for s in samples],
                    "timestamp_ms": [s.timestamp_ms for s in samples],
                    "value": [str(s.value) for s in samples],
                    "is_historical": [s.is_historical for s in samples],
                }
            )
            path = directory / f"{info.table}.parquet"
            await asyncio.to_thread(pq.write_table, table, str(path))
            written.append(path)
        return written
