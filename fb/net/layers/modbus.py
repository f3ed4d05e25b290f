"""`modbus[(tcp:)host:port:(slave):pollMs:readAddrs:sendAddrs(:respTO:byteTO)]` on comm FBs.

As FORTE's Modbus layer: `sendAddrs` (coils `c`, holding registers `h`) take the SDs of
each REQ; `readAddrs` (any table) fill the RDs. The read addresses are polled every
`pollMs` on absolute deadlines and every cycle delivers the RDs (CNF on a CLIENT, IND on
a SUBSCRIBE), as FORTE does. A CLIENT without read addresses fires CNF once its write is
done; a PUBLISH only writes.
Values are raw (BOOL bits, unsigned 16-bit registers), converted to the RD types.

The connection comes from the device's `IoPool` (`fb.io.pool`), shared per device with
the MODBUS_* FBs; the poll loop is a pool job and ends in `close()`.
Device faults arrive as QO=FALSE: STATUS `RECV_FAILED` / `SEND_FAILED` (the Modbus
exception name or TIMEOUT/NOT_CONNECTED is logged as the detail).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from drivers.errors import DriverConfigError, DriverError
from drivers.modbus import ForteModbusId, ModbusTable, parse_forte_modbus_id
from fb.io.base import convert_value
from fb.io.modbus import (
    ModbusTarget,
    modbus_session,
    modbus_status,
    raw_reads,
    read_values,
    write_groups,
)
from fb.io.pool import IoLease, pool_for
from fb.net.layers.base import (
    CommLayer,
    ComStatus,
    DataPoints,
    LayerContext,
    LayerOutcome,
    Role,
    outcome,
)
from fb.net.layers.encoded import InvalidLayer
from testbed.fourdiac.comm_id import CommId

__all__ = ["ModbusLayer", "create_layer"]

log = structlog.get_logger(__name__)

_RETRY_S = 0.05
"""After a failed poll cycle the next one waits at least this long."""


def create_layer(comm_id: CommId, ctx: LayerContext) -> CommLayer:
    """Build (not open) the modbus stack `comm_id` names, or an InvalidLayer saying why."""
    if len(comm_id.layers) != 1:
        return InvalidLayer(outcome(ComStatus.INVALID_ID,
                                    f"modbus[...] stands alone, got {comm_id}"))
    try:
        forte_id = parse_forte_modbus_id(comm_id.top.params)
    except DriverConfigError as exc:
        return InvalidLayer(outcome(ComStatus.INVALID_ID, str(exc)))
    timeout_s = (forte_id.response_timeout_ms or 1000) / 1000
    unit = 1 if forte_id.unit_id is None else forte_id.unit_id
    reads = ModbusTarget(forte_id.host, forte_id.port, unit,
                         tuple((r.table, a) for r in forte_id.read
                               for a in range(r.first, r.last + 1)), timeout_s)
    sends = ModbusTarget(forte_id.host, forte_id.port, unit,
                         tuple((r.table, a) for r in forte_id.send
                               for a in range(r.first, r.last + 1)), timeout_s)
    problem = _check(forte_id, reads, sends, ctx)
    if problem:
        return InvalidLayer(outcome(ComStatus.INVALID_ID, f"{comm_id}: {problem}"))
    return ModbusLayer(forte_id, reads, sends, ctx)


def _check(forte_id: ForteModbusId, reads: ModbusTarget, sends: ModbusTarget,
           ctx: LayerContext) -> str:
    n_rd = len(ctx.rd_types)
    if ctx.role is Role.SERVER:
        return "a Modbus device is reached with CLIENT, PUBLISH or SUBSCRIBE, not SERVER"
    if ctx.role.receives and len(reads.addresses) != n_rd:
        return f"readAddrs name {len(reads.addresses)} value(s) for {n_rd} RD(s)"
    if ctx.role is Role.SUBSCRIBER and forte_id.poll_interval_ms <= 0:
        return "a SUBSCRIBE needs pollMs > 0"
    if ctx.role is Role.PUBLISHER and not sends.addresses:
        return "a PUBLISH needs sendAddrs"
    return ""


class ModbusLayer:
    """One modbus stack of one comm FB."""

    def __init__(self, forte_id: ForteModbusId, reads: ModbusTarget, sends: ModbusTarget,
                 ctx: LayerContext) -> None:
        self._id = forte_id
        self._reads = reads
        self._sends = sends
        self._ctx = ctx
        self._raw = raw_reads(reads) if reads.addresses else ()
        self._polling = forte_id.poll_interval_ms > 0 and bool(reads.addresses) and \
            ctx.role.receives
        self._lease: IoLease | None = None

    def open(self) -> LayerOutcome | None:
        self._lease = pool_for(self._ctx.scope).lease(self._ctx.fb_name)
        self._lease.spawn(self._poll if self._polling else self._connect, "open")
        return None

    def send(self, points: DataPoints) -> LayerOutcome:
        lease = self._lease
        if lease is None:
            return outcome(ComStatus.NO_SOCKET, "not open")
        if len(points.values) != len(self._sends.addresses):
            return outcome(ComStatus.DATA_TYPE_ERROR,
                           f"sendAddrs name {len(self._sends.addresses)} value(s), "
                           f"got {len(points.values)} SD(s)")
        try:
            groups = write_groups(self._sends, points.values)
        except DriverConfigError as exc:
            return outcome(ComStatus.DATA_TYPE_ERROR, str(exc))
        lease.spawn(lambda: self._request(groups), "request")
        return outcome(ComStatus.OK)

    def close(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.close()

    # -- jobs (on the pool's I/O loop) ---------------------------------------------------

    def _require_lease(self) -> IoLease:
        lease = self._lease
        if lease is None:
            raise DriverConfigError("the modbus layer is closed")
        return lease

    def _device(self) -> ModbusTarget:
        return self._sends if self._sends.addresses else self._reads

    async def _connect(self) -> None:
        try:
            await modbus_session(self._require_lease(), self._device())
        except DriverError as exc:
            self._ctx.opened(outcome(ComStatus.NO_SOCKET, f"{modbus_status(exc)}: {exc}"))
            return
        self._ctx.opened(outcome(ComStatus.OK))

    async def _request(
        self, groups: Sequence[tuple[ModbusTable, int, list[int] | list[bool]]]
    ) -> None:
        try:
            session = await modbus_session(self._require_lease(), self._device())
            for table, address, units in groups:
                await session.write_raw(table, address, units)
        except DriverError as exc:
            self._ctx.fail(outcome(ComStatus.SEND_FAILED, f"{modbus_status(exc)}: {exc}"))
            return
        if self._ctx.role is not Role.CLIENT or self._polling:
            return
        if not self._raw:
            self._ctx.deliver(())
            return
        try:
            values = await read_values(session, self._raw, len(self._ctx.rd_types))
        except DriverError as exc:
            self._ctx.fail(outcome(ComStatus.RECV_FAILED, f"{modbus_status(exc)}: {exc}"))
            return
        self._ctx.deliver(self._typed(values))

    async def _poll(self) -> None:
        try:
            session = await modbus_session(self._require_lease(), self._device())
        except DriverError as exc:
            self._ctx.opened(outcome(ComStatus.NO_SOCKET, f"{modbus_status(exc)}: {exc}"))
            return
        self._ctx.opened(outcome(ComStatus.OK))
        loop = asyncio.get_running_loop()
        interval_s = self._id.poll_interval_ms / 1000
        count = len(self._ctx.rd_types)
        next_cycle = loop.time()
        while True:
            try:
                values = await read_values(session, self._raw, count)
            except DriverError as exc:
                self._ctx.fail(outcome(ComStatus.RECV_FAILED, f"{modbus_status(exc)}: {exc}"))
                next_cycle = max(next_cycle + interval_s, loop.time() + _RETRY_S)
            else:
                self._ctx.deliver(self._typed(values))
                next_cycle += interval_s
                now = loop.time()
                if next_cycle <= now:
                    # overran (the device is slower than INTERVAL): poll again at once,
                    # re-phased; a sub-millisecond timer would cost a whole epoll tick
                    next_cycle = now
            await asyncio.sleep(max(0.0, next_cycle - loop.time()))

    def _typed(self, values: Sequence[object]) -> tuple[object, ...]:
        types = self._ctx.rd_types
        out: list[object] = []
        for index, value in enumerate(values):
            target = types[index] if index < len(types) else None
            converted = convert_value(target, value)
            out.append(value if converted is None else converted)
        return tuple(out)
