"""Modbus TCP service FBs: MODBUS_READ_n, MODBUS_WRITE_n, MODBUS_POLL_n.

DEVICE is `host:port[:unit]` (unit 1 by default). ADDR lists n addresses the way FORTE's
modbus layer writes them: `c` coil, `d` discrete input, `h` holding register, `i` input
register, single or ranges, e.g. `i0..3,h10` (4 + 1 = 5 values). Values are raw: BOOL
for bits, the 16-bit register as an unsigned number (converted to the type the RD pin is
connected to). Reads are coalesced into the fewest requests (<= 125 registers each).

READ, WRITE and POLL share one connection per device through the device's `IoPool`; a
POLL FB runs its own job there, polling on absolute deadlines every INTERVAL, and fires
IND per cycle. Device faults become quality: QO=FALSE with STATUS `TIMEOUT`, `NOT_CONNECTED`,
`PROTOCOL_ERROR` or the Modbus exception name (`ILLEGAL_DATA_ADDRESS`, ...).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from drivers.errors import ConnectionLost, DriverConfigError, DriverError, DriverTimeout
from drivers.modbus import (
    ForteAddressRange,
    ModbusClientSession,
    ModbusDeviceConfig,
    ModbusExceptionResponse,
    ModbusPoint,
    ModbusTable,
    PollPlan,
    build_poll_plan,
    parse_forte_modbus_id,
)
from fb.family import family_type, pin_count, pin_names
from fb.io.base import STATUS_INVALID_ID, STATUS_OK, IoFB
from fb.io.pool import IoLease
from testbed.model import ServiceFBType

__all__ = [
    "ModbusTarget",
    "RawRead",
    "modbus_poll_type",
    "modbus_read_type",
    "modbus_session",
    "modbus_status",
    "modbus_write_type",
    "parse_modbus_target",
    "raw_reads",
    "read_plan",
    "read_values",
    "write_groups",
]

log = structlog.get_logger(__name__)

_MAX_PINS = 2000
_count = functools.partial(pin_count, limit=_MAX_PINS)
_make = functools.partial(family_type, module=__name__)
_names = pin_names
_DEVICE = re.compile(r"^(?:tcp:)?([A-Za-z0-9.\-]+):(\d{1,5})(?::(\d{1,3}))?$")


@dataclass(frozen=True, slots=True)
class ModbusTarget:
    """A parsed DEVICE + ADDR: where to talk and which addresses, in pin order."""

    host: str
    port: int
    unit_id: int
    addresses: tuple[tuple[ModbusTable, int], ...]
    request_timeout_s: float = 1.0

    @property
    def key(self) -> tuple[str, str, int, int, float]:
        """The pool key of the shared session for this device."""
        return ("modbus", self.host, self.port, self.unit_id, self.request_timeout_s)

    def points(self, *, writable: bool) -> tuple[ModbusPoint, ...]:
        """One raw point per distinct address (named like `h3`), in first-use order."""
        seen: dict[str, ModbusPoint] = {}
        for table, address in self.addresses:
            name = point_name(table, address)
            if name not in seen:
                seen[name] = ModbusPoint(name=name, table=table, address=address,
                                         writable=writable and table.is_client_writable)
        return tuple(seen.values())

    def device_config(self, points: Sequence[ModbusPoint] = (),
                      poll_interval_s: float = 1.0) -> ModbusDeviceConfig:
        """Connection settings with quick reconnects (backoff capped at 1 s)."""
        return ModbusDeviceConfig(
            host=self.host, port=self.port, unit_id=self.unit_id,
            connect_timeout_s=2.0, request_timeout_s=self.request_timeout_s,
            poll_interval_s=poll_interval_s, reconnect_initial_s=0.05, reconnect_max_s=1.0,
            points=tuple(points),
        )


def point_name(table: ModbusTable, address: int) -> str:
    """`h3`, `c0`, ... (FORTE's address notation)."""
    return str(ForteAddressRange(table, address, address))


def parse_modbus_target(device: str, addr: str, *, count: int, sending: bool,
                        request_timeout_s: float = 1.0) -> ModbusTarget:
    """Parse DEVICE and ADDR; ADDR must name exactly `count` values."""
    match = _DEVICE.match(device.strip())
    if match is None:
        raise DriverConfigError(f"DEVICE {device!r} is not host:port[:unit]")
    host, port_text, unit_text = match.groups()
    port = int(port_text)
    unit = 1 if unit_text is None else int(unit_text)
    read, send = ("", addr) if sending else (addr, "")
    parsed = parse_forte_modbus_id(f"modbus[tcp:{host}:{port}:{unit}:1000:{read}:{send}]")
    ranges = parsed.send if sending else parsed.read
    addresses = tuple((r.table, a) for r in ranges for a in range(r.first, r.last + 1))
    if len(addresses) != count:
        raise DriverConfigError(f"ADDR {addr!r} names {len(addresses)} values for {count} pins")
    return ModbusTarget(host, port, unit, addresses, request_timeout_s)


def read_plan(target: ModbusTarget) -> PollPlan:
    """The coalesced read requests for the target's addresses."""
    return build_poll_plan(target.points(writable=False))


def write_groups(target: ModbusTarget, values: Sequence[object]
                 ) -> list[tuple[ModbusTable, int, list[int] | list[bool]]]:
    """Consecutive addresses of one table joined into one FC 15/16 request each."""
    groups: list[tuple[ModbusTable, int, list[int] | list[bool]]] = []
    for (table, address), value in zip(target.addresses, values, strict=True):
        unit: int | bool = bool(value) if table.is_bit else _register(value)
        last = groups[-1] if groups else None
        if last is not None and last[0] is table and last[1] + len(last[2]) == address:
            last[2].append(unit)  # type: ignore[arg-type]
        else:
            groups.append((table, address, [unit]))
    return groups


def _register(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return round(value) & 0xFFFF
    if isinstance(value, int):
        return value & 0xFFFF
    raise DriverConfigError(f"cannot write {value!r} to a register")


def modbus_status(exc: BaseException) -> str:
    """STATUS text for a Modbus failure."""
    if isinstance(exc, ModbusExceptionResponse):
        return exc.exception_name
    if isinstance(exc, DriverTimeout):
        return "TIMEOUT"
    if isinstance(exc, ConnectionLost):
        return "NOT_CONNECTED"
    return "PROTOCOL_ERROR"


async def modbus_session(lease: IoLease, target: ModbusTarget) -> ModbusClientSession:
    """The pool's shared (non-polling) session for the target's device."""
    config = target.device_config()
    session = await lease.session(target.key, lambda: ModbusClientSession(config, poll=False))
    assert isinstance(session, ModbusClientSession)
    return session


@dataclass(frozen=True, slots=True)
class RawRead:
    """One coalesced read request and where its units go: (value index, offset).

    `runs` is the same mapping as slice pairs (values[dst] = units[src]): evenly spaced
    addresses of consecutive values move in one slice copy, not one Python step each.
    """

    table: ModbusTable
    address: int
    count: int
    picks: tuple[tuple[int, int], ...]
    runs: tuple[tuple[slice, slice], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "runs", _runs(self.picks))


def _runs(picks: tuple[tuple[int, int], ...]) -> tuple[tuple[slice, slice], ...]:
    """Maximal runs of picks whose value index rises by 1 and offset by a fixed step >= 1."""
    runs: list[tuple[slice, slice]] = []
    i = 0
    while i < len(picks):
        index, offset = picks[i]
        step, j = 1, i + 1
        if j < len(picks) and picks[j][0] == index + 1 and picks[j][1] > offset:
            step = picks[j][1] - offset
            while (j < len(picks) and picks[j][0] == index + (j - i)
                   and picks[j][1] == offset + step * (j - i)):
                j += 1
        n = j - i
        runs.append((slice(index, index + n), slice(offset, offset + step * (n - 1) + 1, step)))
        i = j
    return tuple(runs)


def raw_reads(target: ModbusTarget) -> tuple[RawRead, ...]:
    """The target's addresses as coalesced requests (<= 125 registers / 2000 bits each)."""
    plan = read_plan(target)
    reads = []
    for request in plan.requests:
        picks = tuple(
            (index, address - request.address)
            for index, (table, address) in enumerate(target.addresses)
            if table is request.table and request.address <= address < request.end
        )
        reads.append(RawRead(request.table, request.address, request.count, picks))
    return tuple(reads)


async def read_values(session: ModbusClientSession, reads: Sequence[RawRead],
                      count: int) -> tuple[object, ...]:
    """Run the reads once: raw units (BOOL bits, unsigned registers) in address order."""
    values: list[object] = [None] * count
    for read in reads:
        units = await session.read_raw(read.table, read.address, read.count)
        for dst, src in read.runs:
            values[dst] = units[src]
    return tuple(values)


class ModbusFB(IoFB):
    """Shared INIT handling: parse DEVICE and ADDR, open the connection."""

    SENDING = False

    def on_INIT(self) -> None:
        if not self.QI:
            self._deinit()
            return
        try:
            self._target = parse_modbus_target(
                str(self.DEVICE or ""), str(self.ADDR or ""), count=self.N_RD or self.N_SD,
                sending=self.SENDING)
            self._reads = raw_reads(self._target) if not self.SENDING else ()
        except DriverConfigError as exc:
            log.warning("io_invalid_config", fb=self.label, error=str(exc))
            self._init_done(False, f"{STATUS_INVALID_ID}: {exc}")
            return
        self._open_lease()
        self._prepare()
        self._spawn(self._init_job, "init")

    def _prepare(self) -> None:
        """Take more configuration in the resource task (POLL: the interval)."""

    async def _init_job(self, lease: IoLease, generation: int) -> None:
        try:
            await modbus_session(lease, self._target)
        except DriverError as exc:
            status = modbus_status(exc)
            log.warning("io_modbus_init_failed", fb=self.label, error=str(exc))
            self._post_current(generation, lambda: self._init_done(False, status))
            return
        self._post_current(generation, lambda: self._init_done(True, STATUS_OK))

    def _finish(self, ok: bool, status: str, values: tuple[object, ...] | None) -> None:
        self._end_request()
        self._answer(ok, status, values)


class _ReadFB(ModbusFB):
    def on_REQ(self) -> None:
        if self._begin_request():
            self._spawn(self._read_job, "read")

    async def _read_job(self, lease: IoLease, generation: int) -> None:
        try:
            session = await modbus_session(lease, self._target)
            values = await read_values(session, self._reads, self.N_RD)
        except DriverError as exc:
            status = modbus_status(exc)
            self._post_current(generation, lambda: self._finish(False, status, None))
            return
        self._post_current(generation, lambda: self._finish(True, STATUS_OK, values))


class _WriteFB(ModbusFB):
    SENDING = True

    def on_REQ(self) -> None:
        if not self._begin_request():
            return
        values = [self.get(f"SD_{i}") for i in range(1, self.N_SD + 1)]
        try:
            groups = write_groups(self._target, values)
        except DriverConfigError as exc:
            self._finish(False, f"DATA_TYPE_ERROR: {exc}", None)
            return
        self._spawn(lambda lease, gen: self._write_job(lease, gen, groups), "write")

    async def _write_job(self, lease: IoLease, generation: int,
                         groups: list[tuple[ModbusTable, int, list[int] | list[bool]]]) -> None:
        try:
            session = await modbus_session(lease, self._target)
            for table, address, units in groups:
                await session.write_raw(table, address, units)
        except DriverError as exc:
            status = modbus_status(exc)
            self._post_current(generation, lambda: self._finish(False, status, None))
            return
        self._post_current(generation, lambda: self._finish(True, STATUS_OK, None))


class _PollFB(ModbusFB):
    """Polls on absolute deadlines in a pool job; IND with RD_1..RD_n (and quality) per cycle.

    The device connection is the shared one (reconnects are the session's); the values are
    the raw units sliced out of the coalesced responses, so a cycle costs little more than
    its requests. After a failed cycle the next one waits at least `_RETRY_S`.
    """

    def _fire_data_event(self) -> None:
        self.emit_IND()

    def _prepare(self) -> None:
        interval_s = int(self.INTERVAL or 0) / 1e9
        self._interval_s = interval_s if interval_s > 0 else 1.0

    async def _init_job(self, lease: IoLease, generation: int) -> None:
        try:
            session = await modbus_session(lease, self._target)
        except DriverError as exc:
            status = modbus_status(exc)
            log.warning("io_modbus_init_failed", fb=self.label, error=str(exc))
            self._post_current(generation, lambda: self._init_done(False, status))
            return
        self._post_current(generation, lambda: self._init_done(True, STATUS_OK))
        await self._poll(session, generation)

    async def _poll(self, session: ModbusClientSession, generation: int) -> None:
        loop = asyncio.get_running_loop()
        interval_s = self._interval_s
        reads, count = self._reads, self.N_RD
        next_cycle = loop.time()
        while True:
            try:
                values = await read_values(session, reads, count)
            except DriverError as exc:
                status = modbus_status(exc)
                self._post_current(generation,
                                   functools.partial(self._answer, False, status, None))
                next_cycle = max(next_cycle + interval_s, loop.time() + _RETRY_S)
            else:
                self._post_current(generation,
                                   functools.partial(self._answer, True, STATUS_OK, values))
                next_cycle += interval_s
                now = loop.time()
                if next_cycle <= now:
                    # overran (the device is slower than INTERVAL): poll again at once,
                    # re-phased; a sub-millisecond timer would cost a whole epoll tick
                    next_cycle = now
            await asyncio.sleep(max(0.0, next_cycle - loop.time()))


_RETRY_S = 0.05


# -- type families ----------------------------------------------------------------------


def modbus_read_type(m: re.Match[str]) -> ServiceFBType:
    """MODBUS_READ_<n>: read n addresses (coalesced) on REQ; CNF with RD_1..RD_n."""
    n = _count(m.group(1), "MODBUS_READ")
    rds = _names("RD", n)
    return _make(
        f"MODBUS_READ_{n}", _ReadFB, "INIT(QI,DEVICE,ADDR) REQ(QI)",
        f"INITO(QO,STATUS) CNF(QO,STATUS,{','.join(rds)})",
        "QI:BOOL DEVICE:WSTRING ADDR:WSTRING",
        " ".join(["QO:BOOL", "STATUS:WSTRING", *(f"{x}:ANY" for x in rds)]),
        0, n, f"Read {n} Modbus value(s) on REQ")


def modbus_write_type(m: re.Match[str]) -> ServiceFBType:
    """MODBUS_WRITE_<n>: write SD_1..SD_n to n coils/holding registers on REQ."""
    n = _count(m.group(1), "MODBUS_WRITE")
    sds = _names("SD", n)
    return _make(
        f"MODBUS_WRITE_{n}", _WriteFB, "INIT(QI,DEVICE,ADDR) " + f"REQ(QI,{','.join(sds)})",
        "INITO(QO,STATUS) CNF(QO,STATUS)",
        " ".join(["QI:BOOL", "DEVICE:WSTRING", "ADDR:WSTRING", *(f"{x}:ANY" for x in sds)]),
        "QO:BOOL STATUS:WSTRING", n, 0, f"Write {n} Modbus value(s) on REQ")


def modbus_poll_type(m: re.Match[str]) -> ServiceFBType:
    """MODBUS_POLL_<n>: poll n addresses every INTERVAL; IND with RD_1..RD_n per cycle."""
    n = _count(m.group(1), "MODBUS_POLL")
    rds = _names("RD", n)
    return _make(
        f"MODBUS_POLL_{n}", _PollFB, "INIT(QI,DEVICE,ADDR,INTERVAL)",
        f"INITO(QO,STATUS) IND(QO,STATUS,{','.join(rds)})",
        "QI:BOOL DEVICE:WSTRING ADDR:WSTRING INTERVAL:TIME",
        " ".join(["QO:BOOL", "STATUS:WSTRING", *(f"{x}:ANY" for x in rds)]),
        0, n, f"Poll {n} Modbus value(s) every INTERVAL")
