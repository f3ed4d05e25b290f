"""A Modbus TCP client session: connect, poll, read and write points, reconnect.

`ModbusClientSession` is a one-shot async context manager. Its TaskGroup owns a
single supervisor task that keeps the connection up (exponential backoff after
the device disappears) and runs the poll plan on absolute deadlines. Poll
results are batches of `PointSample`s whose `quality` carries Modbus exception
responses, timeouts and lost connections, so polling never raises for device
faults. Direct calls (`read`, `write`, ...) raise `ProtocolError`
(`ModbusExceptionResponse`), `DriverTimeout` or `ConnectionLost` instead.

One request is in flight per connection (pymodbus is not safe for concurrent
requests): direct calls and the poller share one lock.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

import structlog

from drivers.errors import ConnectionLost, DriverConfigError, DriverError, DriverTimeout
from drivers.modbus._pymodbus import PymodbusClient
from drivers.modbus.codec import PointValue
from drivers.modbus.errors import ModbusExceptionResponse
from drivers.modbus.plan import PollPlan, ReadRequest, plan_for_device
from drivers.modbus.points import (
    ModbusDeviceConfig,
    ModbusPoint,
    ModbusTable,
    decode_point,
    encode_point,
    point_decoder,
)

__all__ = [
    "ModbusClientSession",
    "ModbusSessionStatistics",
    "OverflowPolicy",
    "PointQuality",
    "PointSample",
    "SampleCallback",
    "SessionState",
]

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")


class SessionState(enum.Enum):
    """Lifecycle of a `ModbusClientSession` (one-shot)."""

    NEW = "new"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class PointQuality(enum.StrEnum):
    """How trustworthy a sample's value is."""

    GOOD = "good"
    PROTOCOL_ERROR = "protocol_error"
    """The device answered with a Modbus exception (e.g. illegal address) or garbage."""
    TIMEOUT = "timeout"
    """The device did not answer within the request timeout."""
    NOT_CONNECTED = "not_connected"
    """No connection to the device."""


class OverflowPolicy(enum.StrEnum):
    """What a full sample queue does with a new batch (each drop is counted)."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


@dataclass(frozen=True, slots=True)
class PointSample:
    """One polled value; `value` is None unless `quality` is GOOD."""

    name: str
    value: PointValue | None
    quality: PointQuality
    timestamp: float
    """UNIX time (s) at which the response (or the failure) arrived."""

    @property
    def good(self) -> bool:
        """True when the value came from a successful read."""
        return self.quality is PointQuality.GOOD


SampleCallback = Callable[[tuple[PointSample, ...]], None]
"""Receives each poll cycle's batch on the event loop; it must not block."""


@dataclass(frozen=True, slots=True)
class ModbusSessionStatistics:
    """Counters of a `ModbusClientSession`."""

    state: SessionState
    connected: bool
    requests: int
    errors: int
    """Requests answered with a Modbus exception or malformed data."""
    timeouts: int
    reconnects: int
    """Successful connects after the first."""
    connection_losses: int
    cycles: int
    overruns: int
    """Poll cycles skipped because the previous one ran past their deadline."""
    drops: int
    """Sample batches dropped by the queue's overflow policy."""
    queue_depth: int
    queue_capacity: int


class ModbusClientSession:
    """Polls, reads and writes the points of one Modbus TCP device."""

    def __init__(
        self,
        config: ModbusDeviceConfig,
        *,
        poll: bool = True,
        queue_capacity: int = 64,
        overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
        on_samples: SampleCallback | None = None,
        connect_required: bool = True,
    ) -> None:
        """Samples go to `on_samples` if given, else to a bounded queue read by `receive()`.

        With `connect_required` (default) entering the session fails when the device
        cannot be reached; without it the session starts and keeps retrying.
        """
        if queue_capacity < 1:
            raise DriverConfigError(f"queue_capacity must be at least 1, got {queue_capacity}")
        self._config = config
        self._plan = plan_for_device(config)
        # each point's decoder, built once (by object: the plan and its requests share them)
        self._decoders = {id(point): point_decoder(point) for point in self._plan.points}
        self._poll = poll and bool(config.points)
        self._overflow = overflow
        self._on_samples = on_samples
        self._connect_required = connect_required
        self._queue: asyncio.Queue[tuple[PointSample, ...]] = asyncio.Queue(queue_capacity)
        self._capacity = queue_capacity
        self._state = SessionState.NEW
        self._wire: PymodbusClient | None = None
        self._io_lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._task_group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._split: set[int] = set()  # plan requests read point by point (device refused the span)
        self._ever_connected = False
        self._overflowing = False
        self._requests = 0
        self._errors = 0
        self._timeouts = 0
        self._reconnects = 0
        self._losses = 0
        self._cycles = 0
        self._overruns = 0
        self._drops = 0

    # -- lifecycle -----------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Where the session is in its lifecycle."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while the connection to the device is up."""
        return self._wire is not None and self._wire.connected

    @property
    def config(self) -> ModbusDeviceConfig:
        """The device configuration."""
        return self._config

    @property
    def plan(self) -> PollPlan:
        """The read requests of one poll cycle."""
        return self._plan

    async def __aenter__(self) -> Self:
        if self._state is not SessionState.NEW:
            raise DriverError(
                f"a ModbusClientSession is single-use; this one is {self._state.value}"
            )
        self._state = SessionState.OPENING
        try:
            self._wire = PymodbusClient(
                self._config.host,
                self._config.port,
                connect_timeout_s=self._config.connect_timeout_s,
                request_timeout_s=self._config.request_timeout_s,
                on_connection_lost=self._lost.set,
            )
            if self._connect_required:
                await self._connect()
            task_group = asyncio.TaskGroup()
            await task_group.__aenter__()
            self._task_group = task_group
            self._supervisor = task_group.create_task(
                self._supervise(), name=f"modbus-session {self._config.host}:{self._config.port}"
            )
        except BaseException:
            await self.aclose()
            raise
        self._state = SessionState.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # the body's own exception propagates unchanged: it is not handed to the
        # TaskGroup, which would wrap it into an ExceptionGroup
        await self.aclose()

    async def aclose(self) -> None:
        """Stop polling and close the connection (idempotent; call from the owning task)."""
        if self._state in (SessionState.CLOSING, SessionState.CLOSED):
            return
        self._state = SessionState.CLOSING
        try:
            if self._supervisor is not None:
                self._supervisor.cancel()
            if self._task_group is not None:
                await self._task_group.__aexit__(None, None, None)
        finally:
            if self._wire is not None:
                self._wire.close()
            self._state = SessionState.CLOSED
            _log.debug("modbus_session_closed", host=self._config.host, port=self._config.port)

    # -- connection ----------------------------------------------------------------

    async def _connect(self) -> None:
        assert self._wire is not None
        self._lost.clear()
        await self._wire.connect()
        if self._ever_connected:
            self._reconnects += 1
        self._ever_connected = True
        _log.info(
            "modbus_connected",
            host=self._config.host,
            port=self._config.port,
            reconnects=self._reconnects,
        )

    def _connection_dropped(self, reason: str) -> None:
        self._losses += 1
        if self._wire is not None:
            self._wire.close()
        _log.warning(
            "modbus_connection_lost", host=self._config.host, port=self._config.port, reason=reason
        )

    async def _supervise(self) -> None:
        """Keep the connection up and poll on absolute deadlines, until cancelled."""
        loop = asyncio.get_running_loop()
        backoff = self._config.reconnect_initial_s
        reported_down = False
        next_cycle = loop.time()
        while True:
            if not self.connected:
                try:
                    await self._connect()
                except (ConnectionLost, DriverTimeout) as exc:
                    if not reported_down:
                        reported_down = True
                        self._deliver(
                            self._bad_batch(self._plan.points, PointQuality.NOT_CONNECTED)
                        )
                        _log.warning(
                            "modbus_connect_failed",
                            host=self._config.host,
                            port=self._config.port,
                            error=str(exc),
                            retry_in_s=backoff,
                        )
                    await asyncio.sleep(backoff)
                    backoff = min(2 * backoff, self._config.reconnect_max_s)
                    continue
                backoff = self._config.reconnect_initial_s
                reported_down = False
                next_cycle = loop.time()
            if not self._poll:
                await self._lost.wait()
                self._lost.clear()
                if not self.connected:
                    self._connection_dropped("peer closed the connection")
                    reported_down = True
                continue
            batch = await self._poll_cycle()
            self._cycles += 1
            self._deliver(batch)
            if not self.connected:
                self._connection_dropped("connection failed during a poll cycle")
                reported_down = True  # the batch already says NOT_CONNECTED
                continue
            next_cycle += self._config.poll_interval_s
            now = loop.time()
            if next_cycle <= now:
                skipped = int((now - next_cycle) // self._config.poll_interval_s) + 1
                self._overruns += skipped
                next_cycle += skipped * self._config.poll_interval_s
            try:
                async with asyncio.timeout_at(next_cycle):
                    await self._lost.wait()
            except TimeoutError:
                continue
            self._lost.clear()
            if not self.connected:
                self._connection_dropped("peer closed the connection")
                self._deliver(self._bad_batch(self._plan.points, PointQuality.NOT_CONNECTED))
                reported_down = True

    # -- polling -------------------------------------------------------------------

    @staticmethod
    def _bad_batch(points: Iterable[ModbusPoint], quality: PointQuality) -> tuple[PointSample, ...]:
        now = time.time()
        return tuple(PointSample(p.name, None, quality, now) for p in points)

    async def poll_once(self) -> tuple[PointSample, ...]:
        """Run the poll plan once and return its samples (device faults become quality)."""
        self._require_open()
        return await self._poll_cycle()

    async def _poll_cycle(self) -> tuple[PointSample, ...]:
        samples: list[PointSample] = []
        failed: PointQuality | None = None
        for index, request in enumerate(self._plan.requests):
            if failed is not None:
                samples += self._bad_batch(request.points, failed)
                continue
            if index in self._split:
                for point in request.points:
                    sample = await self._sample_request(
                        ReadRequest(request.table, point.address, point.size, (point,))
                    )
                    samples += sample
                    if sample[0].quality in (PointQuality.TIMEOUT, PointQuality.NOT_CONNECTED):
                        failed = sample[0].quality
                        break
                continue
            batch = await self._sample_request(request, split_index=index)
            samples += batch
            if batch and batch[0].quality in (PointQuality.TIMEOUT, PointQuality.NOT_CONNECTED):
                # a silent or vanished device would cost one timeout per request: stop here
                failed = batch[0].quality
        if failed is not None and len(samples) < len(self._plan.points):
            done = {s.name for s in samples}
            samples += self._bad_batch((p for p in self._plan.points if p.name not in done), failed)
        return tuple(samples)

    async def _sample_request(
        self, request: ReadRequest, split_index: int | None = None
    ) -> tuple[PointSample, ...]:
        try:
            units = await self._read_units(request.table, request.address, request.count)
        except ModbusExceptionResponse as exc:
            if split_index is not None and exc.is_illegal_address and len(request.points) > 1:
                # the device refuses the coalesced span (holes it does not serve): read
                # this request point by point from now on
                self._split.add(split_index)
                _log.info(
                    "modbus_request_split",
                    table=str(request.table),
                    address=request.address,
                    count=request.count,
                    points=len(request.points),
                )
                samples: list[PointSample] = []
                for point in request.points:
                    samples += await self._sample_request(
                        ReadRequest(request.table, point.address, point.size, (point,))
                    )
                return tuple(samples)
            return self._bad_batch(request.points, PointQuality.PROTOCOL_ERROR)
        except DriverTimeout:
            return self._bad_batch(request.points, PointQuality.TIMEOUT)
        except ConnectionLost:
            return self._bad_batch(request.points, PointQuality.NOT_CONNECTED)
        except DriverError:
            return self._bad_batch(request.points, PointQuality.PROTOCOL_ERROR)
        now = time.time()
        decoders, base, good = self._decoders, request.address, PointQuality.GOOD
        return tuple(
            PointSample(point.name, decoders[id(point)](units, point.address - base), good, now)
            for point in request.points
        )

    def _deliver(self, batch: tuple[PointSample, ...]) -> None:
        if not batch:
            return
        if self._on_samples is not None:
            self._on_samples(batch)
            return
        if self._queue.full():
            self._drops += 1
            if not self._overflowing:
                self._overflowing = True
                _log.warning(
                    "modbus_sample_queue_overflowed",
                    capacity=self._capacity,
                    policy=str(self._overflow),
                    drops=self._drops,
                )
            if self._overflow is OverflowPolicy.DROP_NEWEST:
                return
            self._queue.get_nowait()
        elif self._overflowing:
            self._overflowing = False
            _log.info("modbus_sample_queue_recovered", drops=self._drops)
        self._queue.put_nowait(batch)

    async def receive(self) -> tuple[PointSample, ...]:
        """The next poll batch from the queue (waits; the caller owns the deadline)."""
        self._require_queue()
        return await self._queue.get()

    def receive_nowait(self) -> tuple[PointSample, ...] | None:
        """The next poll batch, or None when none is waiting."""
        self._require_queue()
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def _require_queue(self) -> None:
        if self._on_samples is not None:
            raise DriverConfigError("this session delivers samples to its on_samples callback")

    def _require_open(self) -> None:
        if self._state is not SessionState.OPEN:
            raise DriverError(f"the Modbus session is {self._state.value}")

    # -- requests ------------------------------------------------------------------

    def _wire_or_raise(self) -> PymodbusClient:
        self._require_open()
        if self._wire is None or not self._wire.connected:
            raise ConnectionLost(
                f"not connected to Modbus device {self._config.host}:{self._config.port}"
            )
        return self._wire

    async def _guarded(self, request: Awaitable[_T]) -> _T:
        """Run one request under the connection lock, counting its outcome."""
        self._requests += 1
        try:
            return await request
        except DriverTimeout:
            self._timeouts += 1
            raise
        except ConnectionLost:
            if self._wire is not None and not self._wire.connected:
                self._lost.set()
            raise
        except DriverError:
            self._errors += 1
            raise

    async def _read_units(
        self, table: ModbusTable, address: int, count: int
    ) -> list[int] | list[bool]:
        async with self._io_lock:
            wire = self._wire_or_raise()
            return await self._guarded(wire.read(table, address, count, self._config.unit_id))

    async def read(self, name: str) -> PointValue:
        """Read one point now (raises ProtocolError, DriverTimeout or ConnectionLost)."""
        point = self._config.point(name)
        units = await self._read_units(point.table, point.address, point.size)
        return decode_point(point, units)

    async def read_raw(
        self, table: ModbusTable, address: int, count: int
    ) -> list[int] | list[bool]:
        """Read `count` raw units (registers or bits) of `table` from `address`."""
        limit = 2000 if table.is_bit else 125
        if not 1 <= count <= limit or not 0 <= address <= 0xFFFF - count + 1:
            raise DriverConfigError(
                f"cannot read {count} {table} at {address}: 1..{limit} units within 0..65535"
            )
        return await self._read_units(table, address, count)

    async def write(self, name: str, value: PointValue) -> None:
        """Write one point now: FC 5 for a coil, FC 6 for one register, FC 16 for more."""
        point = self._writable_point(name)
        await self._write_units(point.table, point.address, encode_point(point, value), single=True)

    async def write_many(self, values: Mapping[str, PointValue]) -> None:
        """Write several points, joining adjacent ones of a table into FC 15/16 requests.

        All values are encoded before anything is sent, so a bad value writes nothing.
        """
        encoded = sorted(
            (
                (point, encode_point(point, value))
                for point, value in ((self._writable_point(n), v) for n, v in values.items())
            ),
            key=lambda item: (str(item[0].table), item[0].address),
        )
        groups: list[tuple[ModbusTable, int, list[int | bool]]] = []
        for point, units in encoded:
            last = groups[-1] if groups else None
            if (
                last is not None
                and last[0] is point.table
                and last[1] + len(last[2]) == point.address
            ):
                last[2].extend(units)
            else:
                groups.append((point.table, point.address, list(units)))
        for table, address, units in groups:
            await self._write_units(table, address, units, single=False)

    async def write_raw(
        self, table: ModbusTable, address: int, values: Sequence[int] | Sequence[bool]
    ) -> None:
        """Write raw registers (FC 6/16) or coils (FC 5/15) from `address`."""
        if not table.is_client_writable:
            raise DriverConfigError(f"a client cannot write a {table}")
        limit = 1968 if table.is_bit else 123
        if not 1 <= len(values) <= limit or not 0 <= address <= 0xFFFF - len(values) + 1:
            raise DriverConfigError(
                f"cannot write {len(values)} {table} at {address}: 1..{limit} units within 0..65535"
            )
        if not table.is_bit and any(not 0 <= int(v) <= 0xFFFF for v in values):
            raise DriverConfigError("register values must be 0..65535")
        await self._write_units(table, address, list(values), single=False)

    def _writable_point(self, name: str) -> ModbusPoint:
        point = self._config.point(name)
        if not point.writable:
            raise DriverConfigError(f"Modbus point {name!r} is not writable")
        return point

    async def _write_units(
        self,
        table: ModbusTable,
        address: int,
        units: Sequence[int] | Sequence[bool],
        *,
        single: bool,
    ) -> None:
        unit_id = self._config.unit_id
        async with self._io_lock:
            wire = self._wire_or_raise()
            if table is ModbusTable.COIL:
                bits = [bool(u) for u in units]
                if len(bits) == 1:
                    await self._guarded(wire.write_coil(address, bits[0], unit_id))
                else:
                    await self._guarded(wire.write_coils(address, bits, unit_id))
            else:
                registers = [int(u) for u in units]
                if len(registers) == 1 and single:
                    await self._guarded(wire.write_register(address, registers[0], unit_id))
                else:
                    await self._guarded(wire.write_registers(address, registers, unit_id))

    def statistics(self) -> ModbusSessionStatistics:
        """Counters: requests, errors, timeouts, reconnects, drops and more."""
        return ModbusSessionStatistics(
            state=self._state,
            connected=self.connected,
            requests=self._requests,
            errors=self._errors,
            timeouts=self._timeouts,
            reconnects=self._reconnects,
            connection_losses=self._losses,
            cycles=self._cycles,
            overruns=self._overruns,
            drops=self._drops,
            queue_depth=self._queue.qsize(),
            queue_capacity=self._capacity,
        )
