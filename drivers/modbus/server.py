"""A Modbus TCP server for simulated PLCs, built from a register map.

The server serves, per table, every address from the lowest to the highest
point (holes read as zero, so coalesced reads that bridge them succeed) and
answers ILLEGAL_DATA_ADDRESS outside that span. Holding registers of points
that are not `writable` reject client writes. A plant model reads and writes
point values from Python with `get`/`set` (no network, no await); client writes
are reported to an optional callback after they are applied.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog

from drivers.errors import DriverConfigError, DriverError
from drivers.modbus._pymodbus import DatastoreRun, PymodbusServer
from drivers.modbus.codec import PointValue
from drivers.modbus.points import (
    DEFAULT_MODBUS_PORT,
    ModbusPoint,
    ModbusTable,
    decode_point,
    encode_point,
)

__all__ = [
    "ModbusServer",
    "ModbusServerStatistics",
    "PointWrite",
    "ServerState",
    "WriteCallback",
]

_log = structlog.get_logger(__name__)


class ServerState(enum.Enum):
    """Lifecycle of a `ModbusServer` (one-shot)."""

    NEW = "new"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PointWrite:
    """A point's new value after a client wrote to it."""

    name: str
    value: PointValue


WriteCallback = Callable[[tuple[PointWrite, ...]], None]
"""Receives the points one client write request changed, in address order."""


@dataclass(frozen=True, slots=True)
class ModbusServerStatistics:
    """Counters of a `ModbusServer`."""

    state: ServerState
    port: int | None
    client_writes: int
    callback_errors: int


def _datastore_runs(points: Iterable[ModbusPoint]) -> dict[ModbusTable, list[DatastoreRun]]:
    """Per table, runs covering min..max address, split where write access changes."""
    all_points = list(points)
    runs: dict[ModbusTable, list[DatastoreRun]] = {}
    for table in ModbusTable:
        table_points = [p for p in all_points if p.table is table]
        if not table_points:
            runs[table] = []
            continue
        start = min(p.address for p in table_points)
        end = max(p.end for p in table_points)
        writable = [False] * (end - start)
        for point in table_points:
            if point.writable or table is ModbusTable.COIL:
                writable[point.address - start : point.end - start] = [True] * point.size
        table_runs: list[DatastoreRun] = []
        run_start = 0
        for index in range(1, end - start + 1):
            if index == end - start or writable[index] != writable[run_start]:
                table_runs.append(
                    DatastoreRun(start + run_start, index - run_start, not writable[run_start])
                )
                run_start = index
        runs[table] = table_runs
    return runs


class ModbusServer:
    """A simulated PLC: a Modbus TCP server over a register map (one-shot context manager)."""

    def __init__(
        self,
        points: Sequence[ModbusPoint],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_MODBUS_PORT,
        unit_id: int | None = None,
        initial_values: Mapping[str, PointValue] | None = None,
        on_write: WriteCallback | None = None,
        fallback_to_free_port: bool = False,
    ) -> None:
        """`port=0` takes a free port (read it back from `port`); no `unit_id` answers any unit."""
        self._points: dict[str, ModbusPoint] = {}
        for point in points:
            if point.name in self._points:
                raise DriverConfigError(f"point name {point.name!r} is used twice")
            self._points[point.name] = point
        if not 0 <= port <= 65535:
            raise DriverConfigError(f"port must be 0..65535, got {port}")
        if unit_id is not None and not 0 <= unit_id <= 255:
            raise DriverConfigError(f"unit_id must be 0..255, got {unit_id}")
        self._host = host
        self._requested_port = port
        self._fallback = fallback_to_free_port
        self._initial = dict(initial_values or {})
        for name in self._initial:
            self._point(name)
        self._on_write = on_write
        self._state = ServerState.NEW
        self._port: int | None = None
        self._client_writes = 0
        self._callback_errors = 0
        self._by_table: dict[ModbusTable, tuple[ModbusPoint, ...]] = {
            table: tuple(sorted((p for p in points if p.table is table), key=lambda p: p.address))
            for table in ModbusTable
        }
        self._backend = PymodbusServer(
            _datastore_runs(points), unit_id=unit_id, on_write=self._client_wrote
        )

    @property
    def state(self) -> ServerState:
        """Where the server is in its lifecycle."""
        return self._state

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._port is None:
            raise DriverError("the Modbus server is not listening")
        return self._port

    @property
    def points(self) -> tuple[ModbusPoint, ...]:
        """The register map."""
        return tuple(self._points.values())

    async def __aenter__(self) -> Self:
        if self._state is not ServerState.NEW:
            raise DriverError(f"a ModbusServer is single-use; this one is {self._state.value}")
        self._state = ServerState.OPENING
        try:
            self._port = await self._listen()
        except BaseException:
            await self.aclose()
            raise
        self._state = ServerState.OPEN
        _log.info(
            "modbus_server_started", host=self._host, port=self._port, points=len(self._points)
        )
        return self

    async def _listen(self) -> int:
        try:
            return await self._backend.start(self._host, self._requested_port, self._set_initial)
        except DriverConfigError:
            if not self._fallback or self._requested_port == 0:
                raise
        _log.warning(
            "modbus_port_taken", host=self._host, port=self._requested_port, fallback="free port"
        )
        return await self._backend.start(self._host, 0, self._set_initial)

    def _set_initial(self) -> None:
        """The initial values, in place before a client can connect (none reads or writes
        the zeros of a fresh datastore, nor is a client's write overwritten)."""
        for name, value in self._initial.items():
            self.set(name, value)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and drop client connections (idempotent)."""
        if self._state in (ServerState.CLOSING, ServerState.CLOSED):
            return
        self._state = ServerState.CLOSING
        try:
            await self._backend.stop()
        finally:
            self._state = ServerState.CLOSED
            _log.info("modbus_server_stopped", host=self._host, port=self._port)

    def _point(self, name: str) -> ModbusPoint:
        try:
            return self._points[name]
        except KeyError:
            known = ", ".join(sorted(self._points)) or "none"
            raise DriverConfigError(f"unknown Modbus point {name!r} (known: {known})") from None

    def _require_datastore(self) -> None:
        if self._state not in (ServerState.OPENING, ServerState.OPEN):
            raise DriverError(f"the Modbus server is {self._state.value}: no datastore")

    def get(self, name: str) -> PointValue:
        """The current engineering value of a point."""
        self._require_datastore()
        point = self._point(name)
        return decode_point(point, self._backend.get(point.table, point.address, point.size))

    def get_many(self, names: Iterable[str]) -> dict[str, PointValue]:
        """Current values of several points."""
        return {name: self.get(name) for name in names}

    def set(self, name: str, value: PointValue) -> None:
        """Set a point's engineering value, whatever its table (the plant side of the PLC)."""
        self._require_datastore()
        point = self._point(name)
        self._backend.set(point.table, point.address, encode_point(point, value))

    def set_many(self, values: Mapping[str, PointValue]) -> None:
        """Set several points; all are encoded first, so a bad value changes nothing."""
        self._require_datastore()
        encoded = [
            (self._point(name), encode_point(self._point(name), v)) for name, v in values.items()
        ]
        for point, units in encoded:
            self._backend.set(point.table, point.address, units)

    def statistics(self) -> ModbusServerStatistics:
        """Counters: client writes seen, callback errors."""
        return ModbusServerStatistics(
            state=self._state,
            port=self._port,
            client_writes=self._client_writes,
            callback_errors=self._callback_errors,
        )

    def _client_wrote(self, table: ModbusTable, address: int, count: int) -> None:
        self._client_writes += 1
        if self._on_write is None or self._state is not ServerState.OPEN:
            return
        end = address + count
        changed = tuple(
            PointWrite(point.name, self.get(point.name))
            for point in self._by_table[table]
            if point.address < end and point.end > address
        )
        if not changed:
            return
        try:
            self._on_write(changed)
        except Exception:
            # runs from the event loop's callback queue: nobody upstream could catch it
            self._callback_errors += 1
            _log.exception("modbus_write_callback_failed", points=[w.name for w in changed])
