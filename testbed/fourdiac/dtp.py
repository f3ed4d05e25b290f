"""Reader for 4diac structured data types (`.dtp`): `<DataType><StructuredType>` -> `StructType`.

Members may name other structured types, possibly defined in another file of the
same directory tree, so reading is two steps: `read_dtp` collects the raw
declarations, `resolve_data_types` builds the `StructType`s in dependency order
(a reference cycle or an unknown member type is an error naming file and line).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from testbed.fourdiac.fbt import DataTypeTable, parse_initial_value, resolve_var_type
from testbed.fourdiac.xml_common import XmlElement, parse_xml_file
from testbed.types import ELEMENTARY, GENERIC, StructType
from testbed.types.derived import VarType

__all__ = ["DataTypeSpec", "read_dtp", "read_dtp_element", "resolve_data_types"]


@dataclass(frozen=True, slots=True)
class DataTypeSpec:
    """A structured type as read: its name, comment and member declarations (unresolved)."""

    name: str
    comment: str
    members: tuple[XmlElement, ...]
    element: XmlElement

    @property
    def file(self) -> str:
        return self.element.file

    def references(self) -> set[str]:
        """Member type names that are neither elementary nor generic."""
        out: set[str] = set()
        for m in self.members:
            t = (m.get("Type") or "").strip()
            if t.upper() not in ELEMENTARY and t.upper() not in GENERIC:
                out.add(t)
        return out


def read_dtp_element(root: XmlElement) -> DataTypeSpec:
    """The structured type a `<DataType>` element declares."""
    if root.tag != "DataType":
        raise root.error(f"expected <DataType>, got <{root.tag}>")
    name = root.require("Name")
    struct = root.find("StructuredType")
    if struct is None:
        kinds = ", ".join(c.tag for c in root.children if c.tag not in (
            "Identification", "VersionInfo", "CompilerInfo", "ASN1Tag", "Attribute"))
        raise root.error(f"data type {name}: only <StructuredType> is supported "
                         f"(found {kinds or 'no body'})")
    members = tuple(struct.findall("VarDeclaration"))
    if not members:
        raise struct.error(f"STRUCT {name} has no members")
    seen: set[str] = set()
    for m in members:
        key = m.require("Name").upper()
        if key in seen:
            raise m.error(f"STRUCT {name} declares member {m.get('Name')!r} twice", "Name")
        seen.add(key)
        m.require("Type")
    return DataTypeSpec(name, root.get("Comment") or "", members, root)


def read_dtp(path: str | Path) -> DataTypeSpec:
    """Read one `.dtp` file (unresolved; see `resolve_data_types`)."""
    return read_dtp_element(parse_xml_file(path))


def resolve_data_types(specs: Iterable[DataTypeSpec],
                       known: DataTypeTable | None = None) -> dict[str, StructType]:
    """Build the `StructType`s of `specs`, resolving member references among them and `known`."""
    pending: dict[str, DataTypeSpec] = {}
    for spec in specs:
        if spec.name in pending:
            other = pending[spec.name]
            raise spec.element.error(
                f"data type {spec.name} defined twice: in {other.file}:{other.element.line} "
                f"and here", "Name")
        pending[spec.name] = spec
    table: dict[str, VarType] = dict(known or {})
    built: dict[str, StructType] = {}
    visiting: list[str] = []

    def build(spec: DataTypeSpec) -> StructType:
        if spec.name in built:
            return built[spec.name]
        if spec.name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(spec.name):], spec.name])
            raise spec.element.error(f"structured types refer to each other in a cycle: {cycle}")
        visiting.append(spec.name)
        for ref in sorted(spec.references()):
            base = ref.strip()
            if base in pending and base not in built:
                build(pending[base])
        members: list[tuple[str, VarType, object]] = []
        for m in spec.members:
            t = resolve_var_type(m.require("Type"), m.get("ArraySize"), table, m)
            members.append((m.require("Name"), t, parse_initial_value(m.get("InitialValue"), t, m)))
        struct = StructType(spec.name, tuple(members))
        visiting.pop()
        built[spec.name] = struct
        table[spec.name] = struct
        return struct

    for spec in pending.values():
        build(spec)
    return built

