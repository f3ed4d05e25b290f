"""Base class for function blocks written in Python (service interface FBs and helpers).

Subclass `ServiceFB`, declare `INTERFACE`, write `on_<EVENT>` for each event input
and call `self.emit_<EVENT>()` (or `self.emit("EVENT")`) to fire outputs. WITH
sampling and output publication are generated, as for compiled basic FBs. Slow
work goes to tasks or threads and comes back with `self.post(callable)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from testbed.model import Interface, ServiceFBType
from testbed.runtime.codegen import install_service_methods
from testbed.runtime.instance import FBInstance

__all__ = ["ServiceFB"]


class ServiceFB(FBInstance):
    """An FB implemented in Python. The class name is the IEC type name unless TYPE_NAME says."""

    INTERFACE: ClassVar[Interface]
    TYPE_NAME: ClassVar[str | None] = None
    COMMENT: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "INTERFACE" not in cls.__dict__ or cls.__name__.endswith("[traced]"):
            return
        fb_type = ServiceFBType(
            name=cls.__dict__.get("TYPE_NAME") or cls.__name__,
            interface=cls.INTERFACE,
            comment=cls.COMMENT or (cls.__doc__ or "").strip().split("\n")[0],
            source=cls.__module__,
            implementation=cls,
        )
        install_service_methods(cls, fb_type)

    if TYPE_CHECKING:
        # variables (`self.QI`) and emitters (`self.emit_CNF()`) are generated per type
        def __getattr__(self, name: str) -> Any: ...

    def emit(self, event: str) -> None:
        """Fire output event `event` (publishes its WITH outputs, queues its destinations)."""
        getattr(self, "emit_" + event)()

    def post(self, thunk: Callable[[], None]) -> bool:
        """Run `thunk` inside the resource later; safe from any thread."""
        return self._res.post(thunk)

    def post_from_loop(self, thunk: Callable[[], None]) -> bool:
        """`post` for I/O callbacks: runs the resource at once if it sleeps idle on this loop."""
        return self._res.post_from_loop(thunk)

    def now_ns(self) -> int:
        return self._res.clock.now_ns()

    def input_type_name(self, pin: str) -> str | None:
        """The concrete type an ANY input took from its connection or parameter, if known."""
        types = self.__dict__.get("_anytype")
        t = types.get(pin) if types else None
        return t.name if t is not None else None
