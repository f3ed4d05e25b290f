"""Adapters: plugs and sockets, the events they add and the data they share.

An adapter type is declared from the plug's side. A plug `P` of type `T` gives its
FB the event inputs `P.<e>` for `e` in T's event inputs and the event outputs
`P.<e>` for T's event outputs; a socket sees the same events mirrored. Plug and
socket share one data object (FORTE: no WITH sampling across an adapter), a STRUCT
value whose members are the adapter's data pins, reached as `self.P.DT` in code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from testbed.errors import TypeLibraryError
from testbed.model import AdapterType, EventDecl, FBType
from testbed.types.derived import StructType

__all__ = ["AdapterInfo", "AdapterResolver", "adapter_infos", "event_attr"]

AdapterResolver = Callable[[str], AdapterType]


def event_attr(event: str) -> str:
    """The attribute suffix of an event (`TimeOut.START` -> `TimeOut__START`)."""
    return event.replace(".", "__")


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    """One plug or socket of an FB type, with the events it adds."""

    name: str
    adapter: AdapterType
    is_plug: bool
    data: StructType
    inputs: tuple[EventDecl, ...]   # events this FB receives through the adapter
    outputs: tuple[EventDecl, ...]  # events this FB sends through the adapter


_STRUCTS: dict[int, StructType] = {}


def _data_struct(adapter: AdapterType) -> StructType:
    key = id(adapter)
    struct = _STRUCTS.get(key)
    if struct is None:
        itf = adapter.interface
        members = tuple((v.name, v.type, v.initial) for v in (*itf.input_vars, *itf.output_vars))
        struct = StructType(f"{adapter.name}$data", members)
        _STRUCTS[key] = struct
    return struct


def adapter_infos(fb: FBType, resolve: AdapterResolver | None) -> tuple[AdapterInfo, ...]:
    """The plugs and sockets of `fb`, resolved to their adapter types."""
    decls = [(d, True) for d in fb.interface.plugs] + [(d, False) for d in fb.interface.sockets]
    if not decls:
        return ()
    if resolve is None:
        raise TypeLibraryError(f"FB type {fb.name} has adapters but no adapter types are known")
    out: list[AdapterInfo] = []
    for decl, is_plug in decls:
        adapter = resolve(decl.type_name)
        itf = adapter.interface
        ins, outs = (itf.event_inputs, itf.event_outputs) if is_plug else (
            itf.event_outputs, itf.event_inputs)
        out.append(AdapterInfo(
            decl.name, adapter, is_plug, _data_struct(adapter),
            tuple(EventDecl(f"{decl.name}.{e.name}") for e in ins),
            tuple(EventDecl(f"{decl.name}.{e.name}") for e in outs)))
    return tuple(out)
