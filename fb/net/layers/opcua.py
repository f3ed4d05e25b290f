"""`opc_ua[ACTION;endpoint#;pairs]`: FORTE's OPC UA client actions on the generic comm FBs.

As in FORTE, the action decides the FB:
- `READ` on `CLIENT_0_m` (or `CLIENT_n_m`): REQ reads the m nodes in one request, CNF
  with RD_1..RD_m;
- `WRITE` on `CLIENT_n_0` or `PUBLISH_n`: REQ writes SD_1..SD_n to the n nodes;
- `SUBSCRIBE` on `SUBSCRIBE_m`: IND with RD_1..RD_m on every data change;
- `CALL_METHOD` on `CLIENT_n_m`: REQ calls the method (one pair: its browse path, or
  `objectPath,methodNodeId` is not FORTE's form; a browse path is) with n inputs.
Pairs are `browsePath[,ns:i|s=id]`; NodeIds win over paths (see
`drivers.opcua.forte_id`). The ID must name a remote endpoint: FORTE's local server
actions (CREATE_*, local READ/WRITE) are refused with INVALID_ID.

Sessions come from the device's `IoPool` (`fb.io.pool`), shared with the OPCUA_* FBs per
endpoint; every task runs in the pool's TaskGroup and ends in `close()`. Bad OPC UA
quality arrives as CNF/IND QO=FALSE, STATUS `RECV_FAILED` (the status name is logged).
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from drivers.errors import DriverConfigError, DriverError
from drivers.opcua import (
    DataValueResult,
    ForteOpcUaAction,
    ForteOpcUaId,
    NodeAddress,
    OpcUaSubscriptionConfig,
    parse_forte_opcua_id,
)
from fb.io.base import convert_value
from fb.io.opcua import opcua_session, opcua_status
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

__all__ = ["OpcUaLayer", "create_layer"]

log = structlog.get_logger(__name__)

_ROLES: dict[ForteOpcUaAction, tuple[Role, ...]] = {
    ForteOpcUaAction.READ: (Role.CLIENT,),
    ForteOpcUaAction.WRITE: (Role.CLIENT, Role.PUBLISHER),
    ForteOpcUaAction.SUBSCRIBE: (Role.SUBSCRIBER,),
    ForteOpcUaAction.CALL_METHOD: (Role.CLIENT,),
}
_SUBSCRIPTION = OpcUaSubscriptionConfig(publishing_interval_ms=50.0, queue_capacity=1024)


def create_layer(comm_id: CommId, ctx: LayerContext) -> CommLayer:
    """Build (not open) the opc_ua stack `comm_id` names, or an InvalidLayer saying why."""
    if len(comm_id.layers) != 1:
        return InvalidLayer(outcome(ComStatus.INVALID_ID,
                                    f"opc_ua[...] stands alone, got {comm_id}"))
    try:
        forte_id = parse_forte_opcua_id(comm_id.top.params)
    except DriverConfigError as exc:
        return InvalidLayer(outcome(ComStatus.INVALID_ID, str(exc)))
    problem = _check(forte_id, ctx)
    if problem:
        return InvalidLayer(outcome(ComStatus.INVALID_ID, f"{comm_id}: {problem}"))
    return OpcUaLayer(forte_id, ctx)


def _check(forte_id: ForteOpcUaId, ctx: LayerContext) -> str:
    roles = _ROLES.get(forte_id.action)
    if roles is None or forte_id.endpoint is None:
        return (f"action {forte_id.action.value} on the local server is not supported; "
                "name a remote endpoint (opc.tcp://host:port#)")
    if ctx.role not in roles:
        names = " or ".join(r.value for r in roles)
        return f"{forte_id.action.value} needs a {names} FB, not a {ctx.role.value}"
    pairs = len(forte_id.pairs)
    rds = len(ctx.rd_types)
    if forte_id.action is ForteOpcUaAction.READ and pairs != rds:
        return f"READ of {pairs} node(s) needs {pairs} RD(s), the FB has {rds}"
    if forte_id.action is ForteOpcUaAction.SUBSCRIBE and pairs != rds:
        return f"SUBSCRIBE of {pairs} node(s) needs {pairs} RD(s), the FB has {rds}"
    if forte_id.action is ForteOpcUaAction.CALL_METHOD and pairs != 1:
        return "CALL_METHOD takes exactly one node pair (the method's browse path)"
    return ""


class OpcUaLayer:
    """One opc_ua client stack of one comm FB."""

    def __init__(self, forte_id: ForteOpcUaId, ctx: LayerContext) -> None:
        assert forte_id.endpoint is not None
        self._id = forte_id
        self._endpoint = forte_id.endpoint
        self._addresses: tuple[NodeAddress, ...] = forte_id.addresses
        self._ctx = ctx
        self._lease: IoLease | None = None
        self._values: list[object] = [None] * len(ctx.rd_types)

    def open(self) -> LayerOutcome | None:
        self._lease = pool_for(self._ctx.scope).lease(self._ctx.fb_name)
        if self._id.action is ForteOpcUaAction.SUBSCRIBE:
            self._lease.spawn(self._subscribe, "subscribe")
        else:
            self._lease.spawn(self._connect, "open")
        return None

    def send(self, points: DataPoints) -> LayerOutcome:
        lease = self._lease
        if lease is None:
            return outcome(ComStatus.NO_SOCKET, "not open")
        action = self._id.action
        values = points.values
        if action is ForteOpcUaAction.WRITE and len(values) != len(self._addresses):
            return outcome(ComStatus.DATA_TYPE_ERROR,
                           f"WRITE of {len(self._addresses)} node(s) got {len(values)} SD(s)")
        if action is ForteOpcUaAction.READ:
            lease.spawn(self._read, "read")
        elif action is ForteOpcUaAction.WRITE:
            lease.spawn(lambda: self._write(values), "write")
        elif action is ForteOpcUaAction.CALL_METHOD:
            lease.spawn(lambda: self._call(values), "call")
        else:
            return outcome(ComStatus.INVALID_OBJECT, f"{action.value} does not send")
        return outcome(ComStatus.OK)

    def close(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.close()

    # -- jobs (on the pool's I/O loop) ---------------------------------------------------

    def _require_lease(self) -> IoLease:
        lease = self._lease
        if lease is None:
            raise DriverConfigError("the opc_ua layer is closed")
        return lease

    async def _connect(self) -> None:
        try:
            session = await opcua_session(self._require_lease(), self._endpoint)
            await session.resolve(self._addresses)
        except DriverError as exc:
            self._ctx.opened(outcome(ComStatus.NO_SOCKET, f"{opcua_status(exc)}: {exc}"))
            return
        self._ctx.opened(outcome(ComStatus.OK))

    async def _read(self) -> None:
        try:
            session = await opcua_session(self._require_lease(), self._endpoint)
            results = await session.read(self._addresses)
        except DriverError as exc:
            self._ctx.fail(outcome(ComStatus.RECV_FAILED, f"{opcua_status(exc)}: {exc}"))
            return
        bad = next((r for r in results if not r.good), None)
        if bad is not None:
            self._ctx.fail(outcome(ComStatus.RECV_FAILED, bad.quality.status_name))
            return
        self._ctx.deliver(self._typed([r.value for r in results]))

    async def _write(self, values: Sequence[object]) -> None:
        try:
            session = await opcua_session(self._require_lease(), self._endpoint)
            qualities = await session.write(list(zip(self._addresses, values, strict=True)),
                                            check=False)
        except DriverError as exc:
            self._ctx.fail(outcome(ComStatus.SEND_FAILED, f"{opcua_status(exc)}: {exc}"))
            return
        bad = next((q for q in qualities if not q.good), None)
        if bad is not None:
            self._ctx.fail(outcome(ComStatus.SEND_FAILED, bad.status_name))
        elif self._ctx.role is Role.CLIENT:
            self._ctx.deliver(self._typed([]))

    async def _call(self, values: Sequence[object]) -> None:
        try:
            session = await opcua_session(self._require_lease(), self._endpoint)
            outputs = await session.call_method(self._addresses[0], *values)
        except DriverError as exc:
            self._ctx.fail(outcome(ComStatus.SEND_FAILED, f"{opcua_status(exc)}: {exc}"))
            return
        if len(outputs) != len(self._ctx.rd_types):
            self._ctx.fail(outcome(ComStatus.DATA_TYPE_ERROR,
                                   f"{len(outputs)} outputs for {len(self._ctx.rd_types)} RDs"))
            return
        self._ctx.deliver(self._typed(outputs))

    async def _subscribe(self) -> None:
        try:
            session = await opcua_session(self._require_lease(), self._endpoint)
            subscription = await session.subscribe(self._addresses, _SUBSCRIPTION)
        except DriverError as exc:
            self._ctx.opened(outcome(ComStatus.NO_SOCKET, f"{opcua_status(exc)}: {exc}"))
            return
        self._ctx.opened(outcome(ComStatus.OK))
        index = {address: i for i, address in enumerate(self._addresses)}
        try:
            async for result in subscription:
                self._notified(result, index)
        finally:
            await subscription.aclose()

    def _notified(self, result: DataValueResult, index: dict[NodeAddress, int]) -> None:
        position = index.get(result.address)
        if position is None:
            return
        if not result.good:
            self._ctx.fail(outcome(ComStatus.RECV_FAILED, result.quality.status_name))
            return
        self._values[position] = result.value
        if any(v is None for v in self._values):
            return  # FORTE fires once every node has a value
        self._ctx.deliver(self._typed(self._values))

    def _typed(self, values: Sequence[object]) -> tuple[object, ...]:
        types = self._ctx.rd_types
        out: list[object] = []
        for index, value in enumerate(values):
            target = types[index] if index < len(types) else None
            converted = convert_value(target, value)
            out.append(value if converted is None else converted)
        return tuple(out)
