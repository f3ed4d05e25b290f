"""Composite FBs, flattened into the owning resource (FORTE's `CCompositeFB`).

Inner instances are ordinary FBs of the resource, named `<composite>.<inner>`. The
composite itself stays as a boundary object: an interface input event samples its
WITH inputs, refreshes the cells the inner FBs read, and queues the inner
destinations; an inner event reaching an interface output event copies the
connected inner outputs into the composite's outputs (its WITH list) and fires it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from testbed.errors import NetworkError, TypeLibraryError
from testbed.model import CompositeFBType, ConnectionSpec
from testbed.runtime.codegen import emit_lines, sample_lines
from testbed.runtime.instance import Cell, FBInstance, attr_name

if TYPE_CHECKING:
    from testbed.library import Factory, TypeLibrary
    from testbed.runtime.resource import Resource

__all__ = ["CompositeInstance", "composite_factory"]


class CompositeInstance(FBInstance):
    """The boundary object of one composite FB instance."""

    INNER_INPUT_CELLS: dict[str, Cell]

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self.inner_names: list[str] = []
        self._inner_in: dict[str, Cell] = {}  # interface input -> cell inner FBs read
        self._inner_out: dict[str, Cell | None] = {}  # interface output -> inner source cell
        self._inner_ev: dict[str, tuple[Any, ...]] = {}  # interface input event -> handlers

    def _forward(self, event: str) -> None:
        for var, cell in self._inner_in.items():
            cell.v = self.get(var)
        targets = self._inner_ev.get(event, ())
        if targets:
            q = self._q
            q.extend(targets)
            if len(q) > self._wm:
                self._res._queue_grew(self)

    def _collect(self, event: str) -> None:
        decl = self.FB_TYPE.interface.event_output(event)
        for var in decl.with_vars if decl else ():
            cell = self._inner_out.get(var)
            if cell is not None:
                self.set(var, cell.v)
        getattr(self, "_fire_" + event)()

    def on_delete(self) -> None:
        for inner in list(self.inner_names):
            if inner in self._res.fbs:
                self._res.delete_fb(inner)


def _is_interface(pin: str) -> bool:
    return "." not in pin


def _build_class(fb: CompositeFBType) -> type[CompositeInstance]:
    itf = fb.interface

    def methods(traced: bool) -> dict[str, Any]:
        src: list[str] = []
        for ev in itf.event_inputs:
            body = [f"self._res._trace_input(self, {ev.name!r})"] if traced else []
            body += [*sample_lines(ev), f"self._forward({ev.name!r})"]
            src.append("\n".join([f"def _ev_{ev.name}(self):", *("    " + b for b in body)]))
        for ev in itf.event_outputs:
            src.append("\n".join([f"def _fire_{ev.name}(self):",
                                  *("    " + b for b in emit_lines(ev, traced))]))
            src.append(f"def _in_{ev.name}(self):\n    self._collect({ev.name!r})")
        namespace: dict[str, Any] = {}
        exec(compile("\n\n".join(src), f"<testbed:{fb.name}>", "exec"), namespace)  # noqa: S102
        return namespace

    class_vars: dict[str, Any] = {
        "FB_TYPE": fb,
        "EI_HANDLERS": {e.name: f"_ev_{e.name}" for e in itf.event_inputs},
        "EO_NAMES": tuple(e.name for e in itf.event_outputs),
        "INPUTS": {v.name: v for v in itf.input_vars},
        "OUTPUTS": {v.name: v for v in itf.output_vars},
        "INTERNALS": {},
    }
    plain: type[CompositeInstance] = type(fb.name, (CompositeInstance,),
                                          {**class_vars, **methods(False)})
    traced: type[CompositeInstance] = type(fb.name + "[traced]", (plain,), methods(True))
    for cls in (plain, traced):
        cls.TRACED = traced
        cls.PLAIN = plain
    return plain


def composite_factory(fb: CompositeFBType, library: TypeLibrary) -> Factory:
    """A factory creating the boundary object and the flattened inner FBs and connections."""
    for inst in fb.network.instances:
        if inst.type_name not in library:
            raise TypeLibraryError(
                f"composite {fb.name}: inner FB {inst.name} has unknown type {inst.type_name!r}")
    cls = _build_class(fb)

    def create(name: str, resource: Resource) -> FBInstance:
        comp = cls(name, resource)
        prefix = name + "."
        for inst in fb.network.instances:
            resource.create_fb(prefix + inst.name, inst.type_name)
            comp.inner_names.append(prefix + inst.name)
            for pin, text in inst.parameters.items():
                resource.write_parameter(f"{prefix}{inst.name}.{pin}", text)
        resource.fbs[name] = comp  # inner connections below resolve the boundary by name
        try:
            _wire(comp, fb, resource, prefix)
        finally:
            del resource.fbs[name]
        return comp

    return create


def _wire(comp: CompositeInstance, fb: CompositeFBType, res: Resource, prefix: str) -> None:
    itf = fb.interface
    inner_ev: dict[str, list[str]] = {}
    for c in fb.network.event_connections:
        if _is_interface(c.source):  # interface input event -> inner event input
            if itf.event_input(c.source) is None:
                raise NetworkError(f"composite {fb.name}: no event input {c.source!r}")
            inner_ev.setdefault(c.source, []).append(prefix + c.destination)
        elif _is_interface(c.destination):  # inner event output -> interface output event
            if itf.event_output(c.destination) is None:
                raise NetworkError(f"composite {fb.name}: no event output {c.destination!r}")
            _append_target(res, prefix + c.source, getattr(comp, f"_in_{c.destination}"))
        else:
            res.connect(prefix + c.source, prefix + c.destination)
    comp._inner_ev = {ev: tuple(res.resolve_handler(p) for p in paths)
                      for ev, paths in inner_ev.items()}
    for c in fb.network.data_connections:
        _wire_data(comp, fb, res, prefix, c)


def _append_target(res: Resource, source: str, handler: Any) -> None:
    src, pin = res.resolve(source)
    setattr(src, "_e_" + pin, (*getattr(src, "_e_" + pin), handler))
    res.extra_targets.setdefault(source, []).append(handler)


def _wire_data(comp: CompositeInstance, fb: CompositeFBType, res: Resource, prefix: str,
               c: ConnectionSpec) -> None:
    itf = fb.interface
    if _is_interface(c.source):
        if itf.input_var(c.source) is None:
            raise NetworkError(f"composite {fb.name}: no data input {c.source!r}")
        cell = comp._inner_in.get(c.source)
        if cell is None:
            cell = Cell(comp.get(c.source))
            comp._inner_in[c.source] = cell
        dst, dpin = res.resolve(prefix + c.destination)
        setattr(dst, "_i_" + attr_name(dpin), cell)
    elif _is_interface(c.destination):
        if itf.output_var(c.destination) is None:
            raise NetworkError(f"composite {fb.name}: no data output {c.destination!r}")
        src, spin = res.resolve(prefix + c.source)
        key = (src.name, spin)
        cell = res._out_cells.get(key)
        if cell is None:
            cell = Cell(src.get(spin))
            res._out_cells[key] = cell
            setattr(src, "_o_" + attr_name(spin), cell)
        comp._inner_out[c.destination] = cell
    else:
        res.connect(prefix + c.source, prefix + c.destination)


