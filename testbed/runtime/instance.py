"""FB instances: the base class every generated or hand-written FB class extends.

Layout (attribute names the code generator relies on):
- each variable is an attribute named as declared (`self.CV`);
- `_i_<IN>`: the `Cell` an input samples from (None when unconnected);
- `_o_<OUT>`: the `Cell` an output publishes to (None when unconnected);
- `_e_<EO>`: a tuple of bound handlers, the destinations of an output event;
- `_ev_<EI>`: the handler method of an event input (what the queue holds);
- `_q`, `_wm`, `_res`: the owning resource's queue, its growth watermark, the resource.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from testbed.model import FBType, VarDecl
from testbed.runtime.adapters import AdapterInfo, event_attr

if TYPE_CHECKING:
    from testbed.runtime.resource import Resource

__all__ = ["Cell", "FBInstance", "attr_name"]

Handler = Callable[[], None]


class Cell:
    """The value held by a data connection (one per connected source output)."""

    __slots__ = ("v",)

    def __init__(self, value: object) -> None:
        self.v = value

    def __repr__(self) -> str:
        return f"Cell({self.v!r})"


def attr_name(var: str) -> str:
    """The Python attribute for an IEC variable name (IEC names are kept verbatim)."""
    if keyword.iskeyword(var) or var.startswith("_") or not var.isidentifier():
        return "v_" + "".join(c if c.isalnum() else "_" for c in var)
    return var


class FBInstance:
    """Base of every FB instance. Subclasses are generated per type (see codegen)."""

    __slots__ = ("__dict__", "__weakref__", "_fb_name", "_q", "_res", "_s", "_wm")

    FB_TYPE: ClassVar[FBType]
    EI_HANDLERS: ClassVar[dict[str, str]] = {}  # event input -> handler method name
    EO_NAMES: ClassVar[tuple[str, ...]] = ()
    INPUTS: ClassVar[dict[str, VarDecl]] = {}
    OUTPUTS: ClassVar[dict[str, VarDecl]] = {}
    INTERNALS: ClassVar[dict[str, VarDecl]] = {}
    ADAPTERS: ClassVar[dict[str, AdapterInfo]] = {}  # plugs and sockets by name
    TRACED: ClassVar[type[FBInstance] | None] = None  # the traced twin of this class
    PLAIN: ClassVar[type[FBInstance] | None] = None

    def __init__(self, name: str, resource: Resource) -> None:
        self._fb_name = name
        self._res = resource
        self._q = resource._queue
        self._wm = 0  # first emit records the high-water mark (see Resource._queue_grew)
        self._s = 0
        for ev in self.EO_NAMES:
            setattr(self, "_e_" + event_attr(ev), ())
        for name, info in self.ADAPTERS.items():
            setattr(self, attr_name(name), info.data.new())  # replaced when connected
        for v in self.INPUTS.values():
            setattr(self, "_i_" + attr_name(v.name), None)
        for v in self.OUTPUTS.values():
            setattr(self, "_o_" + attr_name(v.name), None)
        self.reset_variables()

    # --- identity -------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._fb_name

    @property
    def resource(self) -> Resource:
        return self._res

    @property
    def type_name(self) -> str:
        return self.FB_TYPE.name

    def __repr__(self) -> str:
        return f"<{self.FB_TYPE.name} {self._fb_name}>"

    # --- variables ------------------------------------------------------------------

    def reset_variables(self) -> None:
        """Every variable back to its initial value; ECC to its initial state."""
        self._s = 0
        for table in (self.INPUTS, self.OUTPUTS, self.INTERNALS):
            for v in table.values():
                setattr(self, attr_name(v.name), v.initial_value())

    def var_decl(self, name: str) -> VarDecl | None:
        return self.INPUTS.get(name) or self.OUTPUTS.get(name) or self.INTERNALS.get(name)

    def get(self, name: str) -> Any:  # values are whatever the variable's IEC type maps to
        return getattr(self, attr_name(name))

    def set(self, name: str, value: object) -> None:
        setattr(self, attr_name(name), value)

    def handler(self, event: str) -> Handler:
        """The bound handler that delivers event input `event` to this FB."""
        return getattr(self, self.EI_HANDLERS[event])  # type: ignore[no-any-return]

    # --- lifecycle hooks (service FBs override) -------------------------------------

    def on_resource_start(self, warm: bool) -> None:
        """Called when the owning resource starts (before E_RESTART fires)."""

    def on_resource_stop(self) -> None:
        """Called when the owning resource stops or is killed: cancel timers, close I/O."""

    def on_delete(self) -> None:
        """Called when the FB is deleted from a running resource."""
        self.on_resource_stop()
