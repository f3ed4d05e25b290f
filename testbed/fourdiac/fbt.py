"""Readers for 4diac FB type files (`.fbt`) and adapter types (`.adp`).

An `.fbt` becomes the matching `testbed.model` type: `<BasicFB>` a `BasicFBType`
(ECC states in document order, the first being the initial state; transitions in
document order; ST algorithms), `<SimpleFB>` a `SimpleFBType`, `<FBNetwork>` a
`CompositeFBType`, and `<Service>` or no body an interface-only `ServiceFBType`
(the type library binds those to the native Python implementation by name).
Every error names the file, the line and the element or attribute at fault.
Unknown elements and attributes (TypeHash, packages, VersionInfo, coordinates)
are ignored, so files from 4diac IDE 1.x, 2.x and 3.x all read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import structlog

from testbed.errors import LiteralError, TypeLibraryError
from testbed.fourdiac.xml_common import XmlElement, parse_xml_file
from testbed.model import (
    ECC,
    AdapterDecl,
    AdapterType,
    AlgorithmSpec,
    BasicFBType,
    CompositeFBType,
    ConnectionSpec,
    ECAction,
    ECState,
    ECTransition,
    EventDecl,
    FBInstanceSpec,
    FBNetworkSpec,
    FBType,
    GuardSpec,
    Interface,
    ServiceFBType,
    SimpleFBType,
    STAlgorithm,
    STGuard,
    VarDecl,
    parse_condition,
)
from testbed.types import ELEMENTARY, GENERIC, ArrayType, StructType, parse_value
from testbed.types.derived import VarType

__all__ = [
    "DataTypeTable",
    "body_kind",
    "parse_initial_value",
    "read_adp",
    "read_adp_element",
    "read_connections",
    "read_fbt",
    "read_fbt_element",
    "read_interface",
    "read_network",
    "read_parameters",
    "resolve_var_type",
    "split_condition",
]

log = structlog.get_logger(__name__)

DataTypeTable = Mapping[str, VarType]
"""Derived data types (STRUCTs from `.dtp` files) by name, for `Type="..."` references."""

_GENERIC_ALIASES = {"ANY_STRUCT": "ANY_DERIVED"}
_ARRAY_SPELLING = re.compile(r"^\s*ARRAY\s*\[(.*)\]\s*OF\s+(\S+)\s*$", re.IGNORECASE)
_SIZED_STRING = re.compile(r"^\s*(STRING|WSTRING)\s*\[\s*\d+\s*\]\s*$", re.IGNORECASE)


# --- data types ------------------------------------------------------------------------


def _array_dims(text: str, elem: XmlElement, attr: str) -> tuple[tuple[int, int], ...]:
    """`4` -> ((0, 3),); `0..3` or `[0..3]` -> ((0, 3),); `2, 0..1` -> two dimensions."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    dims: list[tuple[int, int]] = []
    try:
        for raw in body.split(","):
            part = raw.strip()
            if ".." in part:
                lo, hi = part.split("..", 1)
                dims.append((int(lo), int(hi)))
            else:
                size = int(part)
                if size < 1:
                    raise ValueError(f"array size {size} is not positive")
                dims.append((0, size - 1))
        if not dims:
            raise ValueError("no dimension")
        for low, high in dims:
            if high < low:
                raise ValueError(f"bounds [{low}..{high}] are empty")
    except ValueError as exc:
        raise elem.error(f"bad array size {text!r}: {exc}", attr) from exc
    return tuple(dims)


def resolve_var_type(type_name: str, array_size: str | None, data_types: DataTypeTable,
                     elem: XmlElement, *, lenient: bool = False) -> VarType:
    """The type of a `VarDeclaration`: elementary, generic, a named STRUCT, or an ARRAY of one.

    `lenient` (interface-only types, whose native implementation decides the real
    types) maps an unknown name to ANY instead of failing.
    """
    spelled = _ARRAY_SPELLING.match(type_name)
    if spelled:
        if array_size:
            raise elem.error("both an ARRAY type and ArraySize are given", "ArraySize")
        return ArrayType(resolve_var_type(spelled.group(2), None, data_types, elem,
                                          lenient=lenient),
                         _array_dims(spelled.group(1), elem, "Type"))
    name = type_name.strip()
    sized = _SIZED_STRING.match(name)
    if sized:
        name = sized.group(1)
    upper = name.upper()
    base: VarType
    if upper in ELEMENTARY:
        base = ELEMENTARY[upper]
    elif upper in GENERIC or upper in _GENERIC_ALIASES:
        base = GENERIC[_GENERIC_ALIASES.get(upper, upper)]
    elif name in data_types:
        base = data_types[name]
    elif upper in {k.upper() for k in data_types}:
        base = next(v for k, v in data_types.items() if k.upper() == upper)
    elif lenient:
        base = GENERIC["ANY"]
    else:
        raise elem.error(f"unknown data type {type_name!r}", "Type")
    if array_size is not None and array_size.strip():
        return ArrayType(base, _array_dims(array_size, elem, "ArraySize"))
    return base


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    quote = ""
    current = ""
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_initial_value(text: str | None, t: VarType, elem: XmlElement,
                        attr: str = "InitialValue") -> object | None:
    """An `InitialValue` read against the declared type; empty means none."""
    if text is None or not text.strip():
        return None
    try:
        if isinstance(t, ArrayType):
            body = text.strip()
            if not (body.startswith("[") and body.endswith("]")):
                raise LiteralError(f"an ARRAY initial value is written [a, b, ...], got {text!r}")
            element = t.element
            values = [parse_initial_value(p, element, elem, attr)
                      for p in _split_top_level(body[1:-1])]
            return t.coerce(values)
        if isinstance(t, StructType):
            raise LiteralError(f"STRUCT initial values are not supported ({t.name})")
        return parse_value(text, t).value
    except (LiteralError, TypeError, ValueError) as exc:
        raise elem.error(f"bad initial value {text!r} for type {t}: {exc}", attr) from exc


def _var_decl(elem: XmlElement, data_types: DataTypeTable, lenient: bool) -> VarDecl:
    name = elem.require("Name")
    t = resolve_var_type(elem.require("Type"), elem.get("ArraySize"), data_types, elem,
                         lenient=lenient)
    initial = parse_initial_value(elem.get("InitialValue"), t, elem)
    return VarDecl(name, t, initial, elem.get("Comment") or "")


# --- interfaces ------------------------------------------------------------------------


def _events(holder: XmlElement | None) -> tuple[EventDecl, ...]:
    if holder is None:
        return ()
    out: list[EventDecl] = []
    for ev in holder.children:
        if ev.tag not in ("Event", "SubAppEvent"):
            continue
        withs = tuple(w.require("Var") for w in ev.findall("With"))
        out.append(EventDecl(ev.require("Name"), withs, ev.get("Comment") or "",
                             ev.get("Type") or "Event"))
    return tuple(out)


def _adapters(holder: XmlElement | None) -> tuple[AdapterDecl, ...]:
    if holder is None:
        return ()
    return tuple(AdapterDecl(a.require("Name"), a.require("Type"), a.get("Comment") or "")
                 for a in holder.findall("AdapterDeclaration"))


def read_interface(elem: XmlElement, data_types: DataTypeTable, *,
                   lenient: bool = False) -> Interface:
    """An `<InterfaceList>` or `<SubAppInterfaceList>` as an `Interface`."""
    sub = elem.tag == "SubAppInterfaceList"
    ev_in = elem.find("SubAppEventInputs" if sub else "EventInputs")
    ev_out = elem.find("SubAppEventOutputs" if sub else "EventOutputs")
    try:
        return Interface(
            event_inputs=_events(ev_in),
            event_outputs=_events(ev_out),
            input_vars=tuple(_var_decl(v, data_types, lenient)
                             for v in elem.section("InputVars", "VarDeclaration")),
            output_vars=tuple(_var_decl(v, data_types, lenient)
                              for v in elem.section("OutputVars", "VarDeclaration")),
            plugs=_adapters(elem.find("Plugs")),
            sockets=_adapters(elem.find("Sockets")),
        )
    except TypeLibraryError as exc:
        if exc.location is not None:
            raise
        raise elem.error(exc.message) from exc


# --- networks --------------------------------------------------------------------------


def read_parameters(elem: XmlElement) -> dict[str, str]:
    """The `<Parameter Name Value>` children of an FB or subapp element."""
    params: dict[str, str] = {}
    for p in elem.findall("Parameter"):
        name = p.require("Name")
        if name in params:
            raise p.error(f"parameter {name!r} given twice", "Name")
        params[name] = p.get("Value") or ""
    return params


def read_connections(elem: XmlElement, tag: str) -> tuple[ConnectionSpec, ...]:
    """The connections of section `tag` (`EventConnections`, ...) of a network element.

    A connection with neither end (4diac IDE leaves those behind when both ends were
    deleted) is skipped with a warning; one with a single end is an error.
    """
    out: list[ConnectionSpec] = []
    for c in elem.section(tag, "Connection"):
        if c.get("Source") is None and c.get("Destination") is None:
            log.warning("dangling_connection_skipped", file=c.file, line=c.line)
            continue
        out.append(ConnectionSpec(c.require("Source"), c.require("Destination")))
    return tuple(out)


def read_network(elem: XmlElement) -> FBNetworkSpec:
    """An `<FBNetwork>` or `<SubAppNetwork>` of typed instances (typed subapps included)."""
    instances: list[FBInstanceSpec] = []
    names: set[str] = set()
    for child in elem.children:
        if child.tag not in ("FB", "SubApp"):
            continue
        name = child.require("Name")
        if child.tag == "SubApp" and not child.get("Type"):
            raise child.error(f"untyped subapp {name!r} inside a type's network is not "
                              "supported (give it a subapp type)", "Type")
        if name in names:
            raise child.error(f"instance {name!r} declared twice", "Name")
        names.add(name)
        instances.append(FBInstanceSpec(name, child.require("Type"), read_parameters(child)))
    return FBNetworkSpec(
        instances=tuple(instances),
        event_connections=read_connections(elem, "EventConnections"),
        data_connections=read_connections(elem, "DataConnections"),
        adapter_connections=read_connections(elem, "AdapterConnections"),
    )


# --- ECC -------------------------------------------------------------------------------

_EVENT_AND_GUARD = re.compile(r"^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\s*&(.*)$", re.DOTALL)
_DOTTED_EVENT = re.compile(r"^\s*([A-Za-z_]\w*\.[A-Za-z_]\w*)\s*(?:\[(.*)\])?\s*$", re.DOTALL)


def split_condition(condition: str, events: set[str]) -> tuple[str | None, GuardSpec | None]:
    """Split a transition condition into (event, ST guard).

    Besides what `parse_condition` reads (`1`, `EV`, `EV[guard]`, `[guard]`, a bare
    guard) this accepts 4diac IDE 1.x's `EV&guard` and adapter events `Plug.EV`.
    """
    m = _EVENT_AND_GUARD.match(condition)
    if m and m.group(1) in events:
        guard = m.group(2).strip()
        return m.group(1), (STGuard(guard) if guard not in ("", "1", "TRUE") else None)
    m = _DOTTED_EVENT.match(condition)
    if m and m.group(1) in events:
        guard = (m.group(2) or "").strip()
        return m.group(1), (STGuard(guard) if guard not in ("", "1", "TRUE") else None)
    return parse_condition(condition, {e for e in events if "." not in e}, "st")


def _adapter_events(interface: Interface, adapters: Mapping[str, AdapterType]) -> set[str]:
    """Events an FB receives through its plugs and sockets, spelled `Adapter.EV`."""
    out: set[str] = set()
    for decl in interface.plugs:
        out |= _adapter_side(decl, adapters, socket=False)
    for decl in interface.sockets:
        out |= _adapter_side(decl, adapters, socket=True)
    return out


def _adapter_side(decl: AdapterDecl, adapters: Mapping[str, AdapterType],
                  socket: bool) -> set[str]:
    adp = adapters.get(decl.type_name)
    if adp is None:
        return set()
    # a plug receives the adapter's event inputs; a socket its event outputs
    evs = adp.interface.event_outputs if socket else adp.interface.event_inputs
    return {f"{decl.name}.{e.name}" for e in evs}


def _algorithm(elem: XmlElement, fb_name: str) -> AlgorithmSpec:
    name = elem.require("Name")
    st = elem.find("ST")
    if st is None:
        other = next((c for c in elem.children if c.tag != "ST"), None)
        language = (other.get("Language") if other is not None else None) or (
            other.tag if other is not None else "no body")
        raise elem.error(f"algorithm {name} of {fb_name} is written in {language}; "
                         "only Structured Text (ST) can run", "Name")
    text = st.get("Text")
    if text is None:
        text = st.text
    return STAlgorithm(name, text, max(st.line - 1, 0))


def _ecc(elem: XmlElement, interface: Interface, events: set[str]) -> ECC:
    states: list[ECState] = []
    seen: set[str] = set()
    for s in elem.findall("ECState"):
        name = s.require("Name")
        if name in seen:
            raise s.error(f"ECC state {name!r} declared twice", "Name")
        seen.add(name)
        actions = tuple(ECAction(a.get("Algorithm") or None, a.get("Output") or None)
                        for a in s.findall("ECAction"))
        for a, act in zip(s.findall("ECAction"), actions, strict=True):
            if act.output and interface.event_output(act.output) is None and "." not in act.output:
                raise a.error(f"action fires unknown output event {act.output!r}", "Output")
        states.append(ECState(name, actions, s.get("Comment") or ""))
    if not states:
        raise elem.error("ECC has no states (the first ECState is the initial state)")
    transitions: list[ECTransition] = []
    for t in elem.findall("ECTransition"):
        source, destination = t.require("Source"), t.require("Destination")
        for attr, end in (("Source", source), ("Destination", destination)):
            if end not in seen:
                raise t.error(f"transition refers to unknown state {end!r}", attr)
        condition = t.get("Condition") or "1"
        event, guard = split_condition(condition, events)
        transitions.append(ECTransition(source, destination, event, guard, condition))
    return ECC(tuple(states), tuple(transitions))


def _internal_vars(body: XmlElement, data_types: DataTypeTable) -> tuple[VarDecl, ...]:
    out = [_var_decl(v, data_types, False) for v in body.section("InternalVars", "VarDeclaration")]
    out += [_var_decl(v, data_types, False)
            for v in body.section("InternalConstVars", "VarDeclaration")]
    return tuple(out)


# --- whole files -----------------------------------------------------------------------


def body_kind(root: XmlElement) -> str:
    """`basic`, `simple`, `composite` or `service` (service sequence or no body at all)."""
    if root.find("BasicFB") is not None:
        return "basic"
    if root.find("SimpleFB") is not None:
        return "simple"
    if root.find("FBNetwork") is not None:
        return "composite"
    return "service"


def read_fbt_element(root: XmlElement, data_types: DataTypeTable | None = None,
                     adapters: Mapping[str, AdapterType] | None = None) -> FBType:
    """The FB type an `<FBType>` element describes."""
    if root.tag != "FBType":
        raise root.error(f"expected <FBType>, got <{root.tag}>")
    dts: DataTypeTable = data_types or {}
    name = root.require("Name")
    source = root.file
    comment = root.get("Comment") or ""
    kind = body_kind(root)
    itf_elem = root.find("InterfaceList")
    if itf_elem is None:
        raise root.error(f"FB type {name} has no <InterfaceList>")
    interface = read_interface(itf_elem, dts, lenient=kind == "service")
    if kind == "service":
        return ServiceFBType(name, interface, comment, source, implementation=None)
    if kind == "composite":
        net = root.find("FBNetwork")
        assert net is not None  # body_kind found it
        return CompositeFBType(name, interface, comment, source, read_network(net))
    body = root.find("BasicFB") or root.find("SimpleFB")
    assert body is not None
    internal_fbs = body.find("InternalFBs")
    if internal_fbs is not None:
        raise internal_fbs.error(f"{name}: internal FBs of basic FBs are not supported")
    internal = _internal_vars(body, dts)
    algorithms: dict[str, AlgorithmSpec] = {}
    for alg_elem in body.findall("Algorithm"):
        alg = _algorithm(alg_elem, name)
        if alg.name in algorithms:
            raise alg_elem.error(f"algorithm {alg.name!r} declared twice", "Name")
        algorithms[alg.name] = alg
    if kind == "simple":
        return SimpleFBType(name, interface, comment, source, internal, algorithms)
    ecc_elem = body.find("ECC")
    if ecc_elem is None:
        raise body.error(f"basic FB {name} has no <ECC>")
    events = {e.name for e in interface.event_inputs} | _adapter_events(interface, adapters or {})
    ecc = _ecc(ecc_elem, interface, events)
    for state, s_elem in zip(ecc.states, ecc_elem.findall("ECState"), strict=True):
        for act in state.actions:
            if act.algorithm and act.algorithm not in algorithms:
                raise s_elem.error(f"state {state.name} uses unknown algorithm "
                                   f"{act.algorithm!r}", "ECAction")
    return BasicFBType(name, interface, comment, source, internal, ecc, algorithms)


def read_fbt(path: str | Path, data_types: DataTypeTable | None = None,
             adapters: Mapping[str, AdapterType] | None = None) -> FBType:
    """Read one `.fbt` file."""
    return read_fbt_element(parse_xml_file(path), data_types, adapters)


def read_adp_element(root: XmlElement, data_types: DataTypeTable | None = None) -> AdapterType:
    """The adapter type an `<AdapterType>` element describes."""
    if root.tag != "AdapterType":
        raise root.error(f"expected <AdapterType>, got <{root.tag}>")
    name = root.require("Name")
    itf_elem = root.find("InterfaceList")
    if itf_elem is None:
        raise root.error(f"adapter type {name} has no <InterfaceList>")
    interface = read_interface(itf_elem, data_types or {})
    return AdapterType(name, interface, root.get("Comment") or "", root.file)


def read_adp(path: str | Path, data_types: DataTypeTable | None = None) -> AdapterType:
    """Read one `.adp` file (adapter type: a name and the plug-side interface)."""
    return read_adp_element(parse_xml_file(path), data_types)

