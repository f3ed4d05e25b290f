"""Declarative address-space description for simulated PLCs (data, no callbacks).

A tree of objects/folders holding variables and methods. Method behaviour is not
part of the description: the server takes Python callbacks keyed by method path,
so the same description can come from YAML. Paths are the names joined by ``/``
(``Plant/Pump1/Speed``); the server turns them into browse paths and string NodeIds
(``ns=<idx>;s=Plant.Pump1.Speed``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AddressSpaceSpec",
    "ArgumentSpec",
    "DataTypeName",
    "EngineeringUnitsSpec",
    "MethodSpec",
    "NodeSpec",
    "ObjectSpec",
    "VariableSpec",
]

DataTypeName = Literal[
    "Boolean",
    "SByte",
    "Byte",
    "Int16",
    "UInt16",
    "Int32",
    "UInt32",
    "Int64",
    "UInt64",
    "Float",
    "Double",
    "String",
    "DateTime",
    "ByteString",
]
"""Built-in OPC UA data types a simulated variable can have."""

ScalarValue = bool | int | float | str | bytes | None
InitialValue = ScalarValue | tuple[object, ...]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_name(value: str) -> str:
    if not value or "/" in value or "." in value:
        raise ValueError(f"name {value!r} must be non-empty and contain neither '/' nor '.'")
    return value


class EngineeringUnitsSpec(_Frozen):
    """The EngineeringUnits property (EUInformation); unit ids are UNECE CEFACT codes."""

    display_name: str
    description: str = ""
    unit_id: int = Field(default=-1, description="UNECE common code as Int32; -1 if unknown")


class ArgumentSpec(_Frozen):
    """One method input or output argument."""

    name: str
    data_type: DataTypeName
    description: str = ""


class VariableSpec(_Frozen):
    """A process variable: type, initial value, writability, units.

    ``dimensions`` makes it an array (ValueRank = number of dimensions,
    ArrayDimensions = the lengths, 0 for an open length), e.g. ``(4096,)`` for a
    waveform block; empty means a scalar.
    """

    kind: Literal["variable"] = "variable"
    name: str
    data_type: DataTypeName
    dimensions: tuple[Annotated[int, Field(ge=0)], ...] = ()
    initial: InitialValue = None
    writable: bool = False
    description: str = ""
    engineering_units: EngineeringUnitsSpec | None = None
    eu_range: tuple[float, float] | None = Field(default=None, description="(low, high)")

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _range_ordered(self) -> VariableSpec:
        if self.eu_range is not None and self.eu_range[0] > self.eu_range[1]:
            raise ValueError(f"variable {self.name!r}: eu_range low above high")
        return self


class MethodSpec(_Frozen):
    """A callable method; its behaviour is a callback given to the server by path."""

    kind: Literal["method"] = "method"
    name: str
    description: str = ""
    inputs: tuple[ArgumentSpec, ...] = ()
    outputs: tuple[ArgumentSpec, ...] = ()

    _name = field_validator("name")(_check_name)


class ObjectSpec(_Frozen):
    """An object (or a plain folder) grouping children."""

    kind: Literal["object", "folder"] = "object"
    name: str
    description: str = ""
    children: tuple[NodeSpec, ...] = ()

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _unique_children(self) -> ObjectSpec:
        _ensure_unique(self.children, self.name)
        return self


NodeSpec = Annotated[ObjectSpec | VariableSpec | MethodSpec, Field(discriminator="kind")]
"""Any node of the description, told apart by ``kind``."""

ObjectSpec.model_rebuild()


def _ensure_unique(
    children: tuple[ObjectSpec | VariableSpec | MethodSpec, ...], where: str
) -> None:
    seen: set[str] = set()
    for child in children:
        if child.name in seen:
            raise ValueError(f"{where}: duplicate child name {child.name!r}")
        seen.add(child.name)


class AddressSpaceSpec(_Frozen):
    """The whole description: top-level nodes placed under the Objects folder."""

    nodes: tuple[NodeSpec, ...]

    @model_validator(mode="after")
    def _unique_top(self) -> AddressSpaceSpec:
        _ensure_unique(self.nodes, "Objects")
        return self

    def walk(self) -> Iterator[tuple[str, ObjectSpec | VariableSpec | MethodSpec]]:
        """Every node with its path, parents before children."""

        def visit(
            prefix: str, nodes: tuple[ObjectSpec | VariableSpec | MethodSpec, ...]
        ) -> Iterator[tuple[str, ObjectSpec | VariableSpec | MethodSpec]]:
            for node in nodes:
                path = f"{prefix}/{node.name}" if prefix else node.name
                yield path, node
                if isinstance(node, ObjectSpec):
                    yield from visit(path, node.children)

        return visit("", self.nodes)
