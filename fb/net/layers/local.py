"""`loc[name]`: publish/subscribe between resources of one device, values passed in process.

As FORTE's local comm layer: every SUBSCRIBE with the same name in the same device
receives what a PUBLISH with that name sends; nothing is encoded. Delivery posts into
each subscriber's resource (thread-safe), so resources never call into each other.
A value whose count does not match a subscriber's RDs is `DATA_TYPE_ERROR` there.
Channels live in a per-device hub, kept in a weak map keyed by the device object
(the hub dies with its device; no process-wide state outlives it).
"""

from __future__ import annotations

import threading
import weakref

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

__all__ = ["LocalHub", "LocalLayer", "create_layer"]


class LocalHub:
    """The `loc[]` channels of one device: name -> subscribers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[LayerContext]] = {}

    def subscribe(self, name: str, ctx: LayerContext) -> None:
        with self._lock:
            self._subscribers.setdefault(name, []).append(ctx)

    def unsubscribe(self, name: str, ctx: LayerContext) -> None:
        with self._lock:
            subs = self._subscribers.get(name, [])
            if ctx in subs:
                subs.remove(ctx)
            if not subs:
                self._subscribers.pop(name, None)

    def publish(self, name: str, values: tuple[object, ...]) -> int:
        """Deliver to every subscriber of `name`; returns how many there were."""
        with self._lock:
            subs = list(self._subscribers.get(name, ()))
        for ctx in subs:
            if len(values) != len(ctx.rd_types):
                ctx.fail(outcome(ComStatus.DATA_TYPE_ERROR,
                                 f"loc[{name}]: {len(values)} values for "
                                 f"{len(ctx.rd_types)} RDs"))
            else:
                ctx.deliver(values)
        return len(subs)


_HUBS: weakref.WeakKeyDictionary[object, LocalHub] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def hub_for(scope: object) -> LocalHub:
    """The hub of a device (created on first use)."""
    with _HUBS_LOCK:
        hub = _HUBS.get(scope)
        if hub is None:
            hub = LocalHub()
            _HUBS[scope] = hub
        return hub


class LocalLayer:
    """One PUBLISH or SUBSCRIBE endpoint of a `loc[name]` channel."""

    def __init__(self, name: str, ctx: LayerContext) -> None:
        self._name = name
        self._ctx = ctx
        self._hub = hub_for(ctx.scope)
        self._open = False

    def open(self) -> LayerOutcome | None:
        if self._ctx.role is Role.SUBSCRIBER:
            self._hub.subscribe(self._name, self._ctx)
        self._open = True
        return outcome(ComStatus.OK)

    def send(self, points: DataPoints) -> LayerOutcome:
        if not self._open:
            return outcome(ComStatus.NO_SOCKET, "closed")
        self._hub.publish(self._name, points.values)
        return outcome(ComStatus.OK)

    def close(self) -> None:
        if self._open and self._ctx.role is Role.SUBSCRIBER:
            self._hub.unsubscribe(self._name, self._ctx)
        self._open = False


def create_layer(comm_id: CommId, ctx: LayerContext) -> CommLayer:
    """`loc[name]` alone; only PUBLISH and SUBSCRIBE use it."""
    name = comm_id.top.params.strip()
    if len(comm_id.layers) != 1 or not name:
        return InvalidLayer(outcome(ComStatus.INVALID_ID, f"{comm_id}: expected loc[name]"))
    if ctx.role not in (Role.PUBLISHER, Role.SUBSCRIBER):
        return InvalidLayer(outcome(ComStatus.INVALID_ID,
                                    "loc[] connects PUBLISH and SUBSCRIBE only"))
    return LocalLayer(name, ctx)
