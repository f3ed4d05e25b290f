"""The contract between the generic comm FBs and one communication layer stack.

A comm FB (PUBLISH_n, SUBSCRIBE_n, CLIENT_n_m, SERVER_n_m) parses its `ID` into a
`testbed.fourdiac.comm_id.CommId`, looks the *outermost* layer name up in
`fb.net.layers.LAYER_FACTORIES` and calls the factory with the ID and a
`LayerContext`. The factory returns a `CommLayer`; from then on the FB calls:

- `open()` on INIT+ (QI=TRUE). It returns a `LayerOutcome` at once (`OK`,
  `INVALID_ID`, `NO_SOCKET`, ...) or `None` when opening takes I/O; the layer then
  reports later, from any thread, with `ctx.opened(outcome)`. Either way the FB fires
  INITO with QO = outcome.ok and STATUS = outcome.status text.
- `send(points)` on REQ+ (PUBLISH, CLIENT) or RSP+ (SERVER). It must not block: hand
  slow work to `ctx.spawn(...)` and report a later failure with `ctx.fail(...)`.
  PUBLISH fires CNF with the returned outcome; CLIENT/SERVER fire nothing on success
  (their CNF/IND come with the answer), and CNF/IND with QO=FALSE on failure.
- `close()` on INIT- (QI=FALSE), on resource stop/kill and FB deletion. Idempotent,
  synchronous, quick: cancel I/O, release sockets. Nothing may be delivered after it.

Data comes back through the context, from any thread or task (it is decoded off the
resource task): `ctx.deliver(values)` sets RD_1..RD_m and fires IND (SUBSCRIBE,
SERVER) or CNF (CLIENT) with QO=TRUE, STATUS "OK"; `ctx.fail(outcome)` fires the same
event with QO=FALSE and the outcome's status (a malformed datagram is
`RECV_FAILED`/`DATA_TYPE_ERROR`); `ctx.lost(outcome)` says the connection is gone
(INITO with QO=FALSE, STATUS `TERMINATED`, stack closed). A layer never raises into
the FB: every fault is an outcome.

Adding a layer: write `create_layer(comm_id: CommId, ctx: LayerContext) -> CommLayer`
in a module under `fb/net/layers/` and add one line `"name": "module:function"` to
`LAYER_FACTORIES` in `fb/net/layers/__init__.py`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from testbed.fourdiac.comm_id import CommId
from testbed.fourdiac.fbdk_asn1 import FbdkType

__all__ = [
    "ComStatus",
    "CommLayer",
    "DataPoints",
    "LayerContext",
    "LayerFactory",
    "LayerOutcome",
    "Role",
    "outcome",
]


class ComStatus(enum.Enum):
    """FORTE's comm response texts (`CBaseCommFB::scm_sResponseTexts`), used verbatim as STATUS."""

    OK = "OK"
    INVALID_ID = "INVALID_ID"
    TERMINATED = "TERMINATED"
    INVALID_OBJECT = "INVALID_OBJECT"
    DATA_TYPE_ERROR = "DATA_TYPE_ERROR"
    INHIBITED = "INHIBITED"
    NO_SOCKET = "NO_SOCKET"
    SEND_FAILED = "SEND_FAILED"
    RECV_FAILED = "RECV_FAILED"


class Role(enum.Enum):
    """Which generic comm FB drives the stack (decides who sends and who receives)."""

    PUBLISHER = "publisher"
    SUBSCRIBER = "subscriber"
    CLIENT = "client"
    SERVER = "server"

    @property
    def sends(self) -> bool:
        return self is not Role.SUBSCRIBER

    @property
    def receives(self) -> bool:
        return self is not Role.PUBLISHER


@dataclass(frozen=True, slots=True)
class LayerOutcome:
    """The result of open/send or a receive fault: a FORTE status and a human detail for logs.

    `ok` and `text` (the STATUS string) are worked out once here, not per event.
    """

    status: ComStatus
    detail: str = ""
    ok: bool = field(init=False, repr=False, compare=False)
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ok", self.status is ComStatus.OK)
        object.__setattr__(self, "text", self.status.value)


def outcome(status: ComStatus, detail: str = "") -> LayerOutcome:
    """Shorthand for `LayerOutcome(status, detail)`."""
    return LayerOutcome(status, detail)


class DataPoints:
    """The SD values a REQ/RSP sends, with the concrete IEC type of each (ANY inputs typed).

    A plain slots class, built once per send: a frozen dataclass costs 2.5x as much to
    make (its `object.__setattr__` per field). Treat it as immutable.
    """

    __slots__ = ("types", "values")

    def __init__(self, types: tuple[FbdkType, ...], values: tuple[object, ...]) -> None:
        if len(types) != len(values):
            raise ValueError("DataPoints needs one type per value")
        self.types = types
        self.values = values

    def __repr__(self) -> str:
        return f"DataPoints(types={self.types!r}, values={self.values!r})"


class LayerContext(Protocol):
    """What a layer may use of its FB. Every method is safe to call from any thread."""

    @property
    def role(self) -> Role: ...

    @property
    def fb_name(self) -> str:
        """`resource.FB`, for log lines."""

    @property
    def rd_types(self) -> tuple[FbdkType | None, ...]:
        """The concrete type of each RD output (None: not connected, take it from the wire)."""

    @property
    def scope(self) -> object:
        """An object identifying the device (key for in-process registries such as `loc[]`)."""

    def deliver(self, values: Sequence[object]) -> None:
        """Received data: set RD_1..RD_m, fire IND/CNF with QO=TRUE (posted to the resource)."""

    def fail(self, result: LayerOutcome) -> None:
        """A receive-side fault or a late send failure: fire IND/CNF with QO=FALSE."""

    def opened(self, result: LayerOutcome) -> None:
        """Finish a pending `open()` (returned None): fire INITO with QO=result.ok."""

    def lost(self, result: LayerOutcome) -> None:
        """The connection is gone for good (a CLIENT's server closed): the FB closes the
        stack and fires INITO with QO=FALSE, as FORTE does on `e_InitTerminated`."""

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a coroutine owned by this stack; it is cancelled and awaited on `close()`."""


class CommLayer(Protocol):
    """One opened (or opening) layer stack, from the FB's point of view."""

    def open(self) -> LayerOutcome | None:
        """Open on INIT+; None means pending (report with `ctx.opened`)."""

    def send(self, points: DataPoints) -> LayerOutcome:
        """Send the SDs on REQ+/RSP+ without blocking."""

    def close(self) -> None:
        """Close on INIT-/stop/delete; idempotent; no delivery afterwards."""


LayerFactory = Callable[[CommId, LayerContext], CommLayer]
"""`create_layer(comm_id, ctx)`: builds (does not open) the stack an ID names."""
