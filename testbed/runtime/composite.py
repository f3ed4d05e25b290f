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
from testbed.runtime.adapters import adapter_infos, event_attr
from testbed.runtime.codegen import all_events, class_vars, emit_lines, sample_lines
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
        self._adapter_out: dict[str, dict[str, Cell]] = {}  # adapter -> pin -> inner cell

    def _forward(self, event: str) -> None:
        for var, cell in self._inner_in.items():
            if isinstance(cell, Cell):
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
        adapter, dot, _ = event.partition(".")
        if dot and adapter in self.ADAPTERS:  # inner outputs wired to adapter data pins
            data = getattr(self, attr_name(adapter))
            for pin, cell in self._adapter_out.get(adapter, {}).items():
                setattr(data, pin, cell.v)
        getattr(self, "_fire_" + event_attr(event))()

    def on_delete(self) -> None:
        for inner in list(self.inner_names):
            if inner in self._res.fbs:
                self._res.delete_fb(inner)


def _is_interface(fb: CompositeFBType, pin: str) -> bool:
    """A bare pin (`EO`) or an adapter pin of the composite itself (`Socket.START`)."""
    head, dot, _ = pin.partition(".")
    return not dot or head in {a.name for a in (*fb.interface.plugs, *fb.interface.sockets)}


class _AdapterCell:
    """A cell that reads an adapter data pin of the composite (shared, not sampled)."""

    __slots__ = ("_attr", "_comp", "_pin")

    def __init__(self, comp: CompositeInstance, adapter: str, pin: str) -> None:
        self._comp = comp
        self._attr = attr_name(adapter)
        self._pin = pin

    @property
    def v(self) -> object:
        return getattr(getattr(self._comp, self._attr), self._pin)


def _build_class(fb: CompositeFBType, library: TypeLibrary) -> type[CompositeInstance]:
    adapters = adapter_infos(fb, library.adapter_type)
    ins, outs = all_events(fb, adapters)

    def methods(traced: bool) -> dict[str, Any]:
        src: list[str] = []
        for ev in ins:
            body = [f"self._res._trace_input(self, {ev.name!r})"] if traced else []
            body += [*sample_lines(ev), f"self._forward({ev.name!r})"]
            src.append("\n".join([f"def _ev_{event_attr(ev.name)}(self):",
                                  *("    " + b for b in body)]))
        for ev in outs:
            src.append("\n".join([f"def _fire_{event_attr(ev.name)}(self):",
                                  *("    " + b for b in emit_lines(ev, traced))]))
            src.append(f"def _in_{event_attr(ev.name)}(self):\n"
                       f"    self._collect({ev.name!r})")
        namespace: dict[str, Any] = {}
        exec(compile("\n\n".join(src), f"<testbed:{fb.name}>", "exec"), namespace)  # noqa: S102
        return namespace

    cv = class_vars(fb, adapters)
    # inner events reaching interface output events arrive at `$<EO>` (internal pins)
    cv["EI_HANDLERS"] = {**cv["EI_HANDLERS"],
                         **{f"${event_attr(e.name)}": f"_in_{event_attr(e.name)}"
                            for e in outs}}
    plain: type[CompositeInstance] = type(fb.name, (CompositeInstance,),
                                          {**cv, "INTERNALS": {}, **methods(False)})
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
    cls = _build_class(fb, library)

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
    inner_ev: dict[str, list[str]] = {}
    for c in fb.network.event_connections:
        if _is_interface(fb, c.source):  # interface input event -> inner event input
            if c.source not in comp.EI_HANDLERS:
                raise NetworkError(f"composite {fb.name}: no event input {c.source!r}")
            inner_ev.setdefault(c.source, []).append(prefix + c.destination)
        elif _is_interface(fb, c.destination):  # inner event output -> interface output
            if c.destination not in comp.EO_NAMES:
                raise NetworkError(f"composite {fb.name}: no event output {c.destination!r}")
            res.connect_internal(prefix + c.source,
                                 f"{comp.name}.${event_attr(c.destination)}")
        else:
            res.connect(prefix + c.source, prefix + c.destination)
    comp._inner_ev = {ev: tuple(res.resolve_handler(p) for p in paths)
                      for ev, paths in inner_ev.items()}
    for c in fb.network.data_connections:
        _wire_data(comp, fb, res, prefix, c)


def _source_cell(res: Resource, source: str) -> Cell:
    """The connection cell of an inner FB's output (created on first use)."""
    src, spin = res.resolve(source)
    key = (src.name, spin)
    cell = res._out_cells.get(key)
    if cell is None:
        cell = Cell(src.get(spin))
        res._out_cells[key] = cell
        setattr(src, "_o_" + attr_name(spin), cell)
    return cell


def _wire_data(comp: CompositeInstance, fb: CompositeFBType, res: Resource, prefix: str,
               c: ConnectionSpec) -> None:
    itf = fb.interface
    if "." in c.source and _is_interface(fb, c.source):  # adapter data pin -> inner input
        adapter, _, pin = c.source.partition(".")
        dst, dpin = res.resolve(prefix + c.destination)
        setattr(dst, "_i_" + attr_name(dpin), _AdapterCell(comp, adapter, pin))
        return
    if "." in c.destination and _is_interface(fb, c.destination):  # inner output -> adapter
        adapter, _, pin = c.destination.partition(".")
        comp._adapter_out.setdefault(adapter, {})[pin] = _source_cell(res, prefix + c.source)
        return
    if _is_interface(fb, c.source):
        if itf.input_var(c.source) is None:
            raise NetworkError(f"composite {fb.name}: no data input {c.source!r}")
        cell = comp._inner_in.get(c.source)
        if cell is None:
            cell = Cell(comp.get(c.source))
            comp._inner_in[c.source] = cell
        dst, dpin = res.resolve(prefix + c.destination)
        setattr(dst, "_i_" + attr_name(dpin), cell)
    elif _is_interface(fb, c.destination):
        if itf.output_var(c.destination) is None:
            raise NetworkError(f"composite {fb.name}: no data output {c.destination!r}")
        comp._inner_out[c.destination] = _source_cell(res, prefix + c.source)
    else:
        res.connect(prefix + c.source, prefix + c.destination)


