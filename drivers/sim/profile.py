"""Device profiles: how a model's values appear as Modbus points and OPC UA nodes.

A profile is YAML validated by frozen pydantic models. Every problem is reported as
`file:line: field: reason`: the YAML is composed into nodes first so each key keeps its
line, and a pydantic error location such as `('modbus', 'points', 3, 'address')` is looked
up there. `load_profile(path, model=...)` also checks the profile against a model's signals
(names, kinds, units, writability). Data type and table names match `drivers.modbus`
(`INT16`, `holding_register`) and `drivers.opcua` (`Double`, `Boolean`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.sim.factory import ModelKind
from drivers.sim.model import PlantModel, SignalKind, SignalSpec
from drivers.yamllines import Loc, YamlError, YamlIssue, line_of, validate_model

__all__ = [
    "DeviceProfile",
    "ModbusDataType",
    "ModbusMap",
    "ModbusPoint",
    "ModbusTable",
    "OpcUaDataType",
    "OpcUaMap",
    "OpcUaNode",
    "ProfileError",
    "ProfileIssue",
    "check_profile",
    "load_profile",
    "parse_profile",
]

_BROWSE_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class ModbusTable(enum.StrEnum):
    """The four Modbus data tables (same names as `drivers.modbus`)."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING_REGISTER = "holding_register"
    INPUT_REGISTER = "input_register"

    @property
    def is_bit(self) -> bool:
        """Coils and discrete inputs hold single bits."""
        return self in (ModbusTable.COIL, ModbusTable.DISCRETE_INPUT)

    @property
    def is_writable(self) -> bool:
        """A client may write coils and holding registers."""
        return self in (ModbusTable.COIL, ModbusTable.HOLDING_REGISTER)


class ModbusDataType(enum.StrEnum):
    """How a value is stored in registers (same names as `drivers.modbus`)."""

    BOOL = "BOOL"
    INT16 = "INT16"
    UINT16 = "UINT16"
    INT32 = "INT32"
    UINT32 = "UINT32"
    FLOAT32 = "FLOAT32"
    FLOAT64 = "FLOAT64"

    @property
    def registers(self) -> int:
        """Registers (or bits, for BOOL) one value occupies."""
        return _REGISTERS[self]


_REGISTERS = {
    ModbusDataType.BOOL: 1,
    ModbusDataType.INT16: 1,
    ModbusDataType.UINT16: 1,
    ModbusDataType.INT32: 2,
    ModbusDataType.UINT32: 2,
    ModbusDataType.FLOAT32: 2,
    ModbusDataType.FLOAT64: 4,
}
_INT_RANGES = {
    ModbusDataType.INT16: (-(2**15), 2**15 - 1),
    ModbusDataType.UINT16: (0, 2**16 - 1),
    ModbusDataType.INT32: (-(2**31), 2**31 - 1),
    ModbusDataType.UINT32: (0, 2**32 - 1),
}


class OpcUaDataType(enum.StrEnum):
    """OPC UA built-in types a plant variable may have (names as `drivers.opcua`)."""

    BOOLEAN = "Boolean"
    INT16 = "Int16"
    UINT16 = "UInt16"
    INT32 = "Int32"
    UINT32 = "UInt32"
    INT64 = "Int64"
    UINT64 = "UInt64"
    FLOAT = "Float"
    DOUBLE = "Double"


_OPCUA_INTEGERS = frozenset({
    OpcUaDataType.INT16, OpcUaDataType.UINT16, OpcUaDataType.INT32,
    OpcUaDataType.UINT32, OpcUaDataType.INT64, OpcUaDataType.UINT64,
})
_OPCUA_FLOATS = frozenset({OpcUaDataType.FLOAT, OpcUaDataType.DOUBLE})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModbusPoint(_Frozen):
    """One model value at one Modbus address: raw register value = value × scale."""

    name: str = Field(min_length=1)
    """The model output or input this point exposes."""
    table: ModbusTable
    address: int = Field(ge=0, le=0xFFFF)
    data_type: ModbusDataType
    scale: float = Field(default=1.0, allow_inf_nan=False)
    unit: str = ""

    @field_validator("scale")
    @classmethod
    def _non_zero(cls, value: float) -> float:
        if value == 0.0:
            raise ValueError("scale must not be zero")
        return value


class ModbusMap(_Frozen):
    """The register map of one simulated Modbus slave."""

    unit_id: int = Field(default=1, ge=0, le=247)
    word_order: Literal["big", "little"] = "big"
    points: tuple[ModbusPoint, ...] = ()


class OpcUaNode(_Frozen):
    """One model value as an OPC UA variable under Objects/Plant/..."""

    name: str = Field(min_length=1)
    browse_path: str = Field(min_length=1)
    """Slash-separated browse names from the Objects folder: `Objects/Plant/Pump1/Flow`."""
    data_type: OpcUaDataType
    unit: str = ""
    writable: bool = False
    array: bool = False
    """True for waveforms (one-dimensional arrays of samples)."""

    @field_validator("browse_path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        segments = value.split("/")
        if len(segments) < 3 or segments[:2] != ["Objects", "Plant"]:
            raise ValueError(f"browse path {value!r} must start with Objects/Plant/")
        for segment in segments[2:]:
            if not _BROWSE_SEGMENT.match(segment):
                raise ValueError(f"browse path segment {segment!r} is not a plain name")
        return value


class OpcUaMap(_Frozen):
    """The node map of one simulated OPC UA server."""

    namespace_uri: str = Field(default="urn:testbed:plant", min_length=1)
    nodes: tuple[OpcUaNode, ...] = ()


class DeviceProfile(_Frozen):
    """How one plant model is exposed by a simulated PLC."""

    profile: str = Field(min_length=1)
    model: ModelKind
    description: str = ""
    modbus: ModbusMap = ModbusMap()
    opcua: OpcUaMap = OpcUaMap()


ProfileIssue = YamlIssue
"""One problem in a profile, located at a field (and a line, when loaded from a file)."""


class ProfileError(YamlError):
    """A profile that does not parse, validate or fit its model; lists every issue found."""


def load_profile(path: str | Path, *, model: PlantModel | None = None) -> DeviceProfile:
    """Read, validate and (given a model) cross-check a profile file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(str(file), [ProfileIssue((), f"cannot read: {exc}")]) from exc
    return parse_profile(text, source=str(file), model=model)


def parse_profile(
    text: str, *, source: str = "<profile>", model: PlantModel | None = None
) -> DeviceProfile:
    """Validate profile YAML text; errors name `source`, the line and the field."""
    try:
        profile, lines = validate_model(DeviceProfile, text, source)
    except YamlError as exc:
        raise ProfileError(exc.file, exc.issues) from exc
    problems = check_profile(profile, model)
    if problems:
        raise ProfileError(
            source, [ProfileIssue(p.loc, p.message, line_of(lines, p.loc)) for p in problems]
        )
    return profile


def check_profile(profile: DeviceProfile, model: PlantModel | None = None) -> list[ProfileIssue]:
    """Consistency problems of a profile (overlaps, types), and its fit to a model if given."""
    issues = list(_check_modbus(profile.modbus))
    issues.extend(_check_opcua(profile.opcua))
    if model is not None:
        issues.extend(_check_against_model(profile, model))
    return issues


def _check_modbus(modbus: ModbusMap) -> Iterator[ProfileIssue]:
    used: dict[tuple[ModbusTable, int], int] = {}
    for index, point in enumerate(modbus.points):
        loc: Loc = ("modbus", "points", index)
        if point.table.is_bit != (point.data_type is ModbusDataType.BOOL):
            yield ProfileIssue((*loc, "data_type"),
                               f"{point.data_type} does not fit table {point.table}")
            continue
        if point.address + point.data_type.registers - 1 > 0xFFFF:
            yield ProfileIssue((*loc, "address"), "value runs past the end of the table")
        for offset in range(point.data_type.registers):
            key = (point.table, point.address + offset)
            if key in used:
                yield ProfileIssue(
                    (*loc, "address"),
                    f"{point.table} {point.address + offset} is already used by "
                    f"points[{used[key]}] ({modbus.points[used[key]].name})",
                )
                break
            used[key] = index


def _check_opcua(opcua: OpcUaMap) -> Iterator[ProfileIssue]:
    seen: dict[str, int] = {}
    for index, node in enumerate(opcua.nodes):
        if node.browse_path in seen:
            yield ProfileIssue(("opcua", "nodes", index, "browse_path"),
                               f"duplicate of nodes[{seen[node.browse_path]}]")
        seen.setdefault(node.browse_path, index)


def _check_against_model(profile: DeviceProfile, model: PlantModel) -> Iterator[ProfileIssue]:
    outputs = {spec.name: spec for spec in model.outputs}
    inputs = {spec.name: spec for spec in model.inputs}
    known = sorted({*outputs, *inputs})
    for index, point in enumerate(profile.modbus.points):
        loc: Loc = ("modbus", "points", index)
        spec = inputs.get(point.name) or outputs.get(point.name)
        if spec is None:
            yield ProfileIssue((*loc, "name"), f"{point.name!r} is not a signal of the "
                               f"{type(model).__name__}; known: {known}")
            continue
        if point.table.is_writable and point.name not in inputs:
            yield ProfileIssue((*loc, "table"),
                               f"{point.name!r} is an output; {point.table} is writable")
        yield from _check_modbus_kind(loc, point, spec)
        if point.unit != spec.unit:
            yield ProfileIssue((*loc, "unit"), f"unit {point.unit!r} differs from the "
                               f"model's {spec.unit!r}")
    for index, node in enumerate(profile.opcua.nodes):
        loc = ("opcua", "nodes", index)
        spec = inputs.get(node.name) or outputs.get(node.name)
        if spec is None:
            yield ProfileIssue((*loc, "name"), f"{node.name!r} is not a signal of the "
                               f"{type(model).__name__}; known: {known}")
            continue
        if node.writable and node.name not in inputs:
            yield ProfileIssue((*loc, "writable"), f"{node.name!r} is an output, not writable")
        yield from _check_opcua_kind(loc, node, spec)
        if node.unit != spec.unit:
            yield ProfileIssue((*loc, "unit"), f"unit {node.unit!r} differs from the "
                               f"model's {spec.unit!r}")


def _check_modbus_kind(loc: Loc, point: ModbusPoint, spec: SignalSpec) -> Iterator[ProfileIssue]:
    kind, data_type = spec.kind, point.data_type
    if kind is SignalKind.WAVEFORM:
        yield ProfileIssue((*loc, "name"), f"{spec.name!r} is a waveform; Modbus cannot hold it")
    elif (kind is SignalKind.BOOL) != (data_type is ModbusDataType.BOOL):
        yield ProfileIssue((*loc, "data_type"), f"{data_type} cannot hold {kind} {spec.name!r}")
    elif kind is SignalKind.INT and data_type in (ModbusDataType.FLOAT32, ModbusDataType.FLOAT64):
        yield ProfileIssue((*loc, "data_type"), f"counter {spec.name!r} needs an integer type")
    elif data_type in _INT_RANGES:
        low, high = _INT_RANGES[data_type]
        for bound in (spec.minimum, spec.maximum):
            if bound is not None and not low <= bound * point.scale <= high:
                yield ProfileIssue((*loc, "scale"), f"{spec.name} {bound} × {point.scale} "
                                   f"does not fit {data_type} [{low}, {high}]")
                break


def _check_opcua_kind(loc: Loc, node: OpcUaNode, spec: SignalSpec) -> Iterator[ProfileIssue]:
    kind = spec.kind
    if (kind is SignalKind.WAVEFORM) != node.array:
        what = "a waveform needs array: true" if node.array is False else "scalar, not an array"
        yield ProfileIssue((*loc, "array"), f"{spec.name!r}: {what}")
    allowed = {
        SignalKind.BOOL: {OpcUaDataType.BOOLEAN},
        SignalKind.INT: _OPCUA_INTEGERS,
        SignalKind.REAL: _OPCUA_FLOATS,
        SignalKind.WAVEFORM: _OPCUA_FLOATS,
    }[kind]
    if node.data_type not in allowed:
        yield ProfileIssue((*loc, "data_type"),
                           f"{node.data_type} cannot hold {kind} {spec.name!r}; "
                           f"use one of {sorted(str(t) for t in allowed)}")
