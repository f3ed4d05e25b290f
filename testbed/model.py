"""Immutable descriptions of FB *types*: interfaces, ECCs, algorithms and networks.

These objects are what readers (`.fbt`, Python definitions in `fb/`) produce and
what the code generator in `testbed.runtime.codegen` compiles, once per type,
into a Python class. Instances live in `testbed.runtime`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from testbed.errors import TypeLibraryError
from testbed.types import ELEMENTARY, GENERIC, DataType, GenericType

if TYPE_CHECKING:
    from testbed.runtime.instance import FBInstance

__all__ = [
    "ECC",
    "AdapterDecl",
    "AdapterType",
    "AlgorithmSpec",
    "BasicFBType",
    "CompositeFBType",
    "ConnectionSpec",
    "ECAction",
    "ECState",
    "ECTransition",
    "EventDecl",
    "FBInstanceSpec",
    "FBNetworkSpec",
    "FBType",
    "GuardSpec",
    "Interface",
    "PythonAlgorithm",
    "PythonGuard",
    "STAlgorithm",
    "STGuard",
    "ServiceFBType",
    "SimpleFBType",
    "SnippetAlgorithm",
    "SnippetGuard",
    "SubAppType",
    "VarDecl",
    "parse_condition",
    "resolve_data_type",
]


def resolve_data_type(name: str) -> DataType:
    """An elementary or generic type by its IEC name (`DINT`, `ANY_NUM`)."""
    upper = name.strip().upper()
    if upper in ELEMENTARY:
        return ELEMENTARY[upper]
    if upper in GENERIC:
        return GENERIC[upper]
    raise TypeLibraryError(f"unknown data type {name!r}")


@dataclass(frozen=True, slots=True)
class VarDecl:
    """A data input, output or internal variable. `type` may also be an ARRAY or STRUCT type."""

    name: str
    type: Any  # DataType | ArrayType | StructType (derived types live in testbed.types.derived)
    initial: object | None = None
    comment: str = ""

    def initial_value(self) -> object:
        """The value a fresh or reset instance starts with (a fresh copy for aggregates)."""
        if self.initial is not None:
            value = self.initial
        else:
            new = getattr(self.type, "new", None)
            value = new() if callable(new) else self.type.default
        copier = getattr(self.type, "copy", None)
        return copier(value) if callable(copier) and self.initial is not None else value

    @property
    def is_generic(self) -> bool:
        return isinstance(self.type, GenericType)


@dataclass(frozen=True, slots=True)
class EventDecl:
    """An event input or output with the data variables its WITH list names."""

    name: str
    with_vars: tuple[str, ...] = ()
    comment: str = ""
    type: str = "Event"


@dataclass(frozen=True, slots=True)
class AdapterDecl:
    """A plug or socket of an FB interface."""

    name: str
    type_name: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Interface:
    """The outside of an FB type; validated at construction."""

    event_inputs: tuple[EventDecl, ...] = ()
    event_outputs: tuple[EventDecl, ...] = ()
    input_vars: tuple[VarDecl, ...] = ()
    output_vars: tuple[VarDecl, ...] = ()
    plugs: tuple[AdapterDecl, ...] = ()
    sockets: tuple[AdapterDecl, ...] = ()

    def __post_init__(self) -> None:
        names: set[str] = set()
        for n in self.all_names():
            if n in names:
                raise TypeLibraryError(f"interface declares {n!r} twice")
            names.add(n)
        ins = {v.name for v in self.input_vars}
        outs = {v.name for v in self.output_vars}
        for e in self.event_inputs:
            for w in e.with_vars:
                if w not in ins:
                    raise TypeLibraryError(f"event input {e.name} WITH {w!r}: no such input var")
        for e in self.event_outputs:
            for w in e.with_vars:
                if w not in outs:
                    raise TypeLibraryError(f"event output {e.name} WITH {w!r}: no such output var")

    def all_names(self) -> list[str]:
        return [
            *(e.name for e in self.event_inputs),
            *(e.name for e in self.event_outputs),
            *(v.name for v in self.input_vars),
            *(v.name for v in self.output_vars),
            *(a.name for a in self.plugs),
            *(a.name for a in self.sockets),
        ]

    def event_input(self, name: str) -> EventDecl | None:
        return next((e for e in self.event_inputs if e.name == name), None)

    def event_output(self, name: str) -> EventDecl | None:
        return next((e for e in self.event_outputs if e.name == name), None)

    def input_var(self, name: str) -> VarDecl | None:
        return next((v for v in self.input_vars if v.name == name), None)

    def output_var(self, name: str) -> VarDecl | None:
        return next((v for v in self.output_vars if v.name == name), None)


# --- algorithms and guards -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PythonAlgorithm:
    """An algorithm written as a Python callable taking the FB instance."""

    name: str
    fn: Callable[[Any], None]  # called with the FB instance


@dataclass(frozen=True, slots=True)
class SnippetAlgorithm:
    """Python statements over the FB's variable names, inlined by the code generator.

    Assignments to typed variables get IEC wrap-around; names not declared by the
    FB are left alone (module-level helpers such as `abs`).
    """

    name: str
    source: str


@dataclass(frozen=True, slots=True)
class STAlgorithm:
    """Structured Text, compiled once per type by `testbed.st`."""

    name: str
    text: str
    line: int = 0  # line of the algorithm in its source file, for error messages


AlgorithmSpec = PythonAlgorithm | SnippetAlgorithm | STAlgorithm


@dataclass(frozen=True, slots=True)
class PythonGuard:
    fn: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class SnippetGuard:
    expression: str


@dataclass(frozen=True, slots=True)
class STGuard:
    text: str


GuardSpec = PythonGuard | SnippetGuard | STGuard


@dataclass(frozen=True, slots=True)
class ECAction:
    algorithm: str | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True)
class ECState:
    name: str
    actions: tuple[ECAction, ...] = ()
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ECTransition:
    """A transition; `event` None means event-less (`1` or guard only)."""

    source: str
    destination: str
    event: str | None = None
    guard: GuardSpec | None = None
    condition: str = ""


@dataclass(frozen=True, slots=True)
class ECC:
    """States (the first is the initial state) and transitions in priority order."""

    states: tuple[ECState, ...]
    transitions: tuple[ECTransition, ...]

    def state(self, name: str) -> ECState:
        for s in self.states:
            if s.name == name:
                return s
        raise TypeLibraryError(f"ECC has no state {name!r}")


_COND_EVENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(.*)\])?\s*$", re.DOTALL)


def parse_condition(
    condition: str, event_inputs: set[str], guard_kind: Literal["st", "snippet"] = "st"
) -> tuple[str | None, GuardSpec | None]:
    """Split a 4diac transition condition: `1`, `EV`, `EV[guard]` or a bare guard."""
    text = condition.strip()
    make: Callable[[str], GuardSpec] = STGuard if guard_kind == "st" else SnippetGuard
    if text in ("", "1", "TRUE", "true"):
        return None, None
    m = _COND_EVENT.match(text)
    if m and m.group(1) in event_inputs:
        guard = m.group(2)
        if guard is None or guard.strip() in ("", "1", "TRUE"):
            return m.group(1), None
        return m.group(1), make(guard.strip())
    if text.startswith("[") and text.endswith("]"):
        return None, make(text[1:-1].strip())
    return None, make(text)


# --- types -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FBType:
    """Common part of every FB type."""

    name: str
    interface: Interface
    comment: str = ""
    source: str | None = None  # file it was read from, or the Python module

    @property
    def kind(self) -> str:
        return "fb"


@dataclass(frozen=True, slots=True)
class BasicFBType(FBType):
    internal_vars: tuple[VarDecl, ...] = ()
    ecc: ECC = field(default_factory=lambda: ECC((ECState("START"),), ()))
    algorithms: Mapping[str, AlgorithmSpec] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "basic"


@dataclass(frozen=True, slots=True)
class SimpleFBType(FBType):
    """One algorithm per input event (same name), then the output events listed for it."""

    internal_vars: tuple[VarDecl, ...] = ()
    algorithms: Mapping[str, AlgorithmSpec] = field(default_factory=dict)
    outputs_for: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "simple"


@dataclass(frozen=True, slots=True)
class FBInstanceSpec:
    name: str
    type_name: str
    parameters: Mapping[str, str] = field(default_factory=dict)  # pin -> literal text


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """`source`/`destination` as `Fb.Pin`, or a bare pin name for the type's own interface."""

    source: str
    destination: str


@dataclass(frozen=True, slots=True)
class FBNetworkSpec:
    instances: tuple[FBInstanceSpec, ...] = ()
    event_connections: tuple[ConnectionSpec, ...] = ()
    data_connections: tuple[ConnectionSpec, ...] = ()
    adapter_connections: tuple[ConnectionSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class CompositeFBType(FBType):
    network: FBNetworkSpec = field(default_factory=FBNetworkSpec)

    @property
    def kind(self) -> str:
        return "composite"


@dataclass(frozen=True, slots=True)
class ServiceFBType(FBType):
    """An FB implemented by a Python class (a `testbed.runtime.ServiceFB` subclass)."""

    implementation: type[FBInstance] | None = None

    @property
    def kind(self) -> str:
        return "service"


# --- adapters and subapplication types (read from .adp and .sub files) --------------


@dataclass(frozen=True, slots=True)
class AdapterType(FBType):
    """An adapter (`.adp`): an interface seen from the plug side.

    The plug's event inputs/outputs and data inputs/outputs are those declared; a
    socket of this type sees them mirrored (inputs become outputs and vice versa).
    """

    @property
    def kind(self) -> str:
        return "adapter"


@dataclass(frozen=True, slots=True)
class SubAppType(FBType):
    """A subapplication type (`.sub`): an interface and the network it groups.

    Unlike a composite FB there is no boundary: events and data pass straight through
    the interface pins when the subapp is flattened.
    """

    network: FBNetworkSpec = field(default_factory=FBNetworkSpec)

    @property
    def kind(self) -> str:
        return "subapp"
