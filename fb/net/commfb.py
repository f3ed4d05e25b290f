"""The generic comm FBs: PUBLISH_n, SUBSCRIBE_n, CLIENT_n_m, SERVER_n_m (and CLIENT_n, SERVER_n).

Interfaces are FORTE's (`CCommFB::createInterfaceSpec`): INIT(QI,ID) and
REQ(QI,SD_1..n) -> INITO(QO,STATUS), CNF(QO,STATUS,RD_1..m) for requesters
(PUBLISH, CLIENT); INIT(QI,ID) and RSP(QI,SD_1..n) -> INITO(QO,STATUS),
IND(QO,STATUS,RD_1..m) for responders (SUBSCRIBE, SERVER). `CLIENT_n_m` has n SDs
and m RDs; `SERVER_n_m` has n SDs and m RDs as well (`SERVER_1_2`: one SD, two RDs);
`CLIENT_n`/`SERVER_n` have n of each.

Behaviour follows `CCommFB::executeEvent`: INIT+ opens the layer stack the ID
names (an ID without brackets means `fbdk[].ip[ID]`), INITO QO=TRUE "OK" or QO=FALSE
with the failure (`INVALID_ID`, `NO_SOCKET`, ...); INIT+ on an open stack is "OK";
INIT- closes it: INITO QO=FALSE "TERMINATED". REQ/RSP with QI=FALSE answers
"INHIBITED"; a PUBLISH confirms each send with CNF; CLIENT and SERVER send and fire
CNF/IND only when data arrives; a CLIENT whose send fails fires CNF QO=FALSE, a
SERVER whose answer cannot go out (the client left) only logs and counts it, so
the usual IND -> RSP wiring cannot spin. Received data is decoded off the
resource task and posted in; a stale delivery (after INIT- or a re-INIT) is dropped.
Faults are STATUS/QO=FALSE and a warning (never an error log: FORTE's hard-mode
tests INIT comm FBs with empty IDs on purpose), never an exception.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import structlog

from fb.net.layers import UnknownLayerError, layer_factory
from fb.net.layers.base import (
    CommLayer,
    ComStatus,
    DataPoints,
    LayerOutcome,
    Role,
    outcome,
)
from fb.net.tasks import StackTasks
from testbed.fbdef import interface
from testbed.fourdiac.comm_id import CommIdError, parse_comm_id
from testbed.fourdiac.fbdk_asn1 import FbdkType
from testbed.model import ServiceFBType
from testbed.runtime.instance import attr_name
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB
from testbed.types import ELEMENTARY, ElementaryType

__all__ = [
    "CommFBStatistics",
    "client_type",
    "publish_type",
    "server_type",
    "subscribe_type",
]

log = structlog.get_logger(__name__)

_OK = outcome(ComStatus.OK)
_SUBSCRIBER, _PUBLISHER = Role.SUBSCRIBER, Role.PUBLISHER  # per event: enum lookups cost ~150 ns


@dataclass(frozen=True, slots=True)
class CommFBStatistics:
    """Counters of one comm FB instance since it was created."""

    sent: int
    send_failures: int
    received: int
    receive_failures: int
    stale_dropped: int


class _StackContext:
    """The `LayerContext` of one opened stack; every call posts into the FB's resource."""

    def __init__(self, fb: _CommFB, generation: int, rd_types: tuple[FbdkType | None, ...],
                 tasks: StackTasks | None) -> None:
        self._fb = fb
        self._post_from_loop = fb.resource.post_from_loop
        self._generation = generation
        self._rd_types = rd_types
        self._tasks = tasks

    @property
    def role(self) -> Role:
        return self._fb.ROLE

    @property
    def fb_name(self) -> str:
        return f"{self._fb.resource.name}.{self._fb.name}"

    @property
    def rd_types(self) -> tuple[FbdkType | None, ...]:
        return self._rd_types

    @property
    def scope(self) -> object:
        res = self._fb.resource
        return res.device if res.device is not None else res

    def deliver(self, values: Sequence[object]) -> None:
        snapshot = tuple(values)
        gen = self._generation
        self._post_from_loop(partial(self._fb._received, gen, snapshot))

    def fail(self, result: LayerOutcome) -> None:
        gen = self._generation
        self._post_from_loop(lambda: self._fb._receive_failed(gen, result))

    def opened(self, result: LayerOutcome) -> None:
        gen = self._generation
        self._fb.post(lambda: self._fb._open_finished(gen, result))

    def lost(self, result: LayerOutcome) -> None:
        gen = self._generation
        self._fb.post(lambda: self._fb._connection_lost(gen, result))

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self._tasks is None:
            coro.close()
            raise RuntimeError("no running event loop to run comm tasks on")
        self._tasks.spawn(coro, name)


class _CommFB(ServiceFB):
    """Shared INIT/send/receive handling of the four generic comm FB families."""

    ROLE: ClassVar[Role]
    REQUESTER: ClassVar[bool] = False  # PUBLISH/CLIENT: REQ -> CNF; else RSP -> IND
    N_SD: ClassVar[int] = 0
    N_RD: ClassVar[int] = 0
    SD_PINS: ClassVar[tuple[str, ...]] = ()
    SD_ATTRS: ClassVar[tuple[str, ...]] = ()
    RD_ATTRS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self._layer: CommLayer | None = None
        self._tasks: StackTasks | None = None
        self._generation = 0
        self._open_pending = False
        self._sent = 0
        self._send_failures = 0
        self._received_count = 0
        self._receive_failures = 0
        self._stale = 0
        self._sd_types: tuple[FbdkType, ...] | None = None  # the SD types last sent

    # --- events -------------------------------------------------------------------------

    def on_INIT(self) -> None:
        if not self.QI:
            self._close_stack()
            self._report_init(outcome(ComStatus.TERMINATED))
            return
        if self._layer is not None:
            if not self._open_pending:
                self._report_init(outcome(ComStatus.OK))
            return
        result = self._open_stack()
        if result is not None:
            self._report_init(result)

    def _send_event(self) -> None:
        if not self.QI:
            self._fire_data_event(outcome(ComStatus.INHIBITED))
            return
        if self.ROLE is _SUBSCRIBER:
            return
        layer = self._layer
        if layer is None or self._open_pending:
            self._send_failures += 1
            self._fire_data_event(outcome(ComStatus.NO_SOCKET, "not initialised"))
            return
        points = self._data_points()
        if isinstance(points, LayerOutcome):
            self._send_failures += 1
            log.warning("comm_send_failed", fb=self._label, status=points.text,
                        detail=points.detail)
            self._fire_data_event(points)
            return
        try:
            result = layer.send(points)
        except Exception as exc:  # a layer bug must not reach the scheduler
            result = outcome(ComStatus.SEND_FAILED, f"{type(exc).__name__}: {exc}")
        if result.ok:
            self._sent += 1
            if self.ROLE is _PUBLISHER:
                self._fire_data_event(result)
            return
        self._send_failures += 1
        log.warning("comm_send_failed", fb=self._label, status=result.text,
                    detail=result.detail)
        if self.ROLE is Role.SERVER:
            # no IND for a reply that could not go out: applications answer every IND
            # with RSP, so an IND here would loop IND -> RSP -> IND while no client is there
            self.STATUS = result.text
            return
        self._fire_data_event(result)

    # --- opening and closing ------------------------------------------------------------

    @property
    def _label(self) -> str:
        return f"{self.resource.name}.{self.name}"

    def _open_stack(self) -> LayerOutcome | None:
        text = str(self.ID or "").strip()
        if not text:
            return outcome(ComStatus.INVALID_ID, "empty ID")
        try:
            comm_id = parse_comm_id(text)
            factory = layer_factory(comm_id.top.name)
        except (CommIdError, UnknownLayerError) as exc:
            return outcome(ComStatus.INVALID_ID, str(exc))
        self._generation += 1
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._tasks = StackTasks(loop, self._label) if loop is not None else None
        ctx = _StackContext(self, self._generation, self._rd_types(), self._tasks)
        try:
            layer = factory(comm_id, ctx)
            self._layer = layer
            result = layer.open()
        except Exception as exc:  # a layer bug must not reach the scheduler
            result = outcome(ComStatus.INVALID_OBJECT, f"{type(exc).__name__}: {exc}")
        if result is None:
            self._open_pending = True
            return None
        if not result.ok:
            self._close_stack()
        return result

    def _close_stack(self) -> None:
        layer, self._layer = self._layer, None
        tasks, self._tasks = self._tasks, None
        self._open_pending = False
        self._generation += 1  # anything still in flight is stale from now on
        if layer is not None:
            try:
                layer.close()
            except Exception as exc:  # closing must always finish
                log.warning("comm_close_failed", fb=self._label,
                            error=f"{type(exc).__name__}: {exc}")
        if tasks is not None:
            tasks.close()

    def _report_init(self, result: LayerOutcome) -> None:
        if not result.ok and result.status is not ComStatus.TERMINATED:
            log.warning("comm_init_failed", fb=self._label, id=str(self.ID),
                        status=result.text, detail=result.detail)
        self.QO = result.ok
        self.STATUS = result.text
        self.emit_INITO()

    # --- callbacks posted by the stack's context ----------------------------------------

    def _open_finished(self, generation: int, result: LayerOutcome) -> None:
        if generation != self._generation or not self._open_pending:
            self._stale += 1
            return
        self._open_pending = False
        if not result.ok:
            self._close_stack()
        self._report_init(result)

    def _connection_lost(self, generation: int, result: LayerOutcome) -> None:
        if generation != self._generation:
            self._stale += 1
            return
        log.warning("comm_connection_lost", fb=self._label, status=result.text,
                    detail=result.detail)
        self._close_stack()
        self.QO = False
        self.STATUS = result.text
        self.emit_INITO()

    def _received(self, generation: int, values: tuple[object, ...]) -> None:
        if generation != self._generation or self._layer is None:
            self._stale += 1
            return
        if len(values) != self.N_RD:
            self._receive_failed(generation, outcome(
                ComStatus.DATA_TYPE_ERROR, f"{len(values)} values for {self.N_RD} RDs"))
            return
        if self.N_RD == 1:
            setattr(self, self.RD_ATTRS[0], values[0])
        else:
            for attr, value in zip(self.RD_ATTRS, values, strict=True):
                setattr(self, attr, value)
        self._received_count += 1
        self._fire_data_event(_OK)

    def _receive_failed(self, generation: int, result: LayerOutcome) -> None:
        if generation != self._generation or self._layer is None:
            self._stale += 1
            return
        self._receive_failures += 1
        log.warning("comm_receive_failed", fb=self._label, status=result.text,
                    detail=result.detail)
        self._fire_data_event(result)

    def _fire_data_event(self, result: LayerOutcome) -> None:
        self.QO = result.ok
        self.STATUS = result.text
        if self.REQUESTER:
            self.emit_CNF()
        else:
            self.emit_IND()

    # --- data ---------------------------------------------------------------------------

    def _rd_types(self) -> tuple[FbdkType | None, ...]:
        out: list[FbdkType | None] = []
        for i in range(1, self.N_RD + 1):
            name = self.input_type_name(f"RD_{i}")
            out.append(ELEMENTARY.get(name) if name else None)
        return tuple(out)

    def _data_points(self) -> DataPoints | LayerOutcome:
        anytypes: dict[str, object] = self.__dict__.get("_anytype") or {}
        if self.N_SD == 1:  # the common case, without the lists
            pin = self.SD_PINS[0]
            t = anytypes.get(pin)
            value = getattr(self, self.SD_ATTRS[0])
            if not isinstance(t, ElementaryType) or value is None:
                return outcome(ComStatus.DATA_TYPE_ERROR, f"{pin} has no concrete type or value")
            one = self._sd_types
            if one is None or one[0] is not t:
                one = self._sd_types = (t,)
            return DataPoints(one, (value,))
        types: list[FbdkType] = []
        values: list[object] = []
        for pin, attr in zip(self.SD_PINS, self.SD_ATTRS, strict=True):
            t = anytypes.get(pin)
            value = getattr(self, attr)
            if not isinstance(t, ElementaryType) or value is None:
                return outcome(ComStatus.DATA_TYPE_ERROR, f"{pin} has no concrete type or value")
            types.append(t)
            values.append(value)
        checked = tuple(types)
        if checked == self._sd_types:  # the same tuple object each time: the codec's cache key
            return DataPoints(self._sd_types, tuple(values))
        self._sd_types = checked
        return DataPoints(checked, tuple(values))

    # --- lifecycle ----------------------------------------------------------------------

    def on_resource_stop(self) -> None:
        self._close_stack()

    def statistics(self) -> CommFBStatistics:
        return CommFBStatistics(self._sent, self._send_failures, self._received_count,
                                self._receive_failures, self._stale)

    @property
    def layer(self) -> CommLayer | None:
        """The open (or opening) layer stack, for tests and diagnostics."""
        return self._layer


class _Requester(_CommFB):
    on_REQ = _CommFB._send_event  # bound directly: one call less per sent event


class _Responder(_CommFB):
    on_RSP = _CommFB._send_event


def _make(type_name: str, base: type[_CommFB], role: Role, n_sd: int, n_rd: int) -> ServiceFBType:
    sds = [f"SD_{i}" for i in range(1, n_sd + 1)]
    rds = [f"RD_{i}" for i in range(1, n_rd + 1)]
    send_ev, recv_ev = ("REQ", "CNF") if base is _Requester else ("RSP", "IND")
    itf = interface(
        ei=f"INIT(QI,ID) {send_ev}({','.join(['QI', *sds])})",
        eo=f"INITO(QO,STATUS) {recv_ev}({','.join(['QO', 'STATUS', *rds])})",
        inputs=" ".join(["QI:BOOL", "ID:WSTRING", *(f"{s}:ANY" for s in sds)]),
        outputs=" ".join(["QO:BOOL", "STATUS:WSTRING", *(f"{r}:ANY" for r in rds)]),
    )
    cls = type(type_name, (base,), {"INTERFACE": itf, "ROLE": role, "N_SD": n_sd,
                                     "N_RD": n_rd, "REQUESTER": base is _Requester,
                                     "SD_PINS": tuple(sds),
                                     "SD_ATTRS": tuple(attr_name(p) for p in sds),
                                     "RD_ATTRS": tuple(attr_name(p) for p in rds),
                                     "__module__": __name__,
                                     "__doc__": f"{role.value.capitalize()} comm FB "
                                                f"({n_sd} SD, {n_rd} RD), FORTE-compatible IDs"})
    fb_type = getattr(cls, "FB_TYPE", None)
    if not isinstance(fb_type, ServiceFBType):
        raise TypeError(f"{type_name} did not build a service FB type")
    return fb_type


def publish_type(m: re.Match[str]) -> ServiceFBType:
    """PUBLISH_<n>: n SDs, sends on REQ, CNF per send."""
    n = int(m.group(1))
    return _make(f"PUBLISH_{n}", _Requester, Role.PUBLISHER, n, 0)


def subscribe_type(m: re.Match[str]) -> ServiceFBType:
    """SUBSCRIBE_<n>: n RDs, IND per message."""
    n = int(m.group(1))
    return _make(f"SUBSCRIBE_{n}", _Responder, Role.SUBSCRIBER, 0, n)


def client_type(m: re.Match[str]) -> ServiceFBType:
    """CLIENT_<n>_<m> (n SDs, m RDs) or CLIENT_<n> (n of each)."""
    n = int(m.group(1))
    k = int(m.group(2)) if m.group(2) is not None else n
    return _make(m.group(0), _Requester, Role.CLIENT, n, k)


def server_type(m: re.Match[str]) -> ServiceFBType:
    """SERVER_<n>_<m> (n SDs, m RDs) or SERVER_<n> (n of each)."""
    n = int(m.group(1))
    k = int(m.group(2)) if m.group(2) is not None else n
    return _make(m.group(0), _Responder, Role.SERVER, n, k)
