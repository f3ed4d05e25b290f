"""IEC 61131-3 derived types: ARRAY and STRUCT, and the `VarType` every variable has.

Values stay plain Python objects so compiled Structured Text is fast: an ARRAY is
a (nested, for several dimensions) Python list indexed from 0 internally; a
STRUCT is an instance of a small slotted class generated once per `StructType`.
Both are copied by value on assignment (`copy_value`), as IEC requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from testbed.types.elementary import ElementaryType, GenericType

__all__ = ["ArrayType", "StructType", "StructValue", "VarType", "copy_value", "type_name"]


def copy_value(value: object) -> object:
    """A by-value copy of a variable's value (lists and structs deep, scalars as they are)."""
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    if isinstance(value, StructValue):
        return value._copy()
    return value


def type_name(t: VarType) -> str:
    """The IEC spelling of a type, for messages (`ARRAY[0..4] OF INT`)."""
    return t.name if not isinstance(t, ArrayType) else t.spelling


@dataclass(frozen=True, slots=True)
class ArrayType:
    """`ARRAY[lo..hi, ...] OF element`; `dims` holds the inclusive bounds per dimension."""

    element: VarType
    dims: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not self.dims:
            raise ValueError("an ARRAY needs at least one dimension")
        for lo, hi in self.dims:
            if hi < lo:
                raise ValueError(f"ARRAY bounds [{lo}..{hi}] are empty")

    @property
    def spelling(self) -> str:
        bounds = ", ".join(f"{lo}..{hi}" for lo, hi in self.dims)
        return f"ARRAY[{bounds}] OF {type_name(self.element)}"

    @property
    def name(self) -> str:
        return self.spelling

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(hi - lo + 1 for lo, hi in self.dims)

    @property
    def default(self) -> list[object]:
        return self.new()

    def new(self) -> list[object]:
        """A fresh default value: nested lists filled with the element's default."""
        return self._filled(0)

    def _filled(self, depth: int) -> list[object]:
        lo, hi = self.dims[depth]
        if depth + 1 < len(self.dims):
            return [self._filled(depth + 1) for _ in range(hi - lo + 1)]
        return [_default_of(self.element) for _ in range(hi - lo + 1)]

    def coerce(self, value: object) -> list[object]:
        """A copy of `value` shaped like this array, each element coerced to the element type.

        Missing trailing elements take the default (as an IEC initialiser list does);
        surplus elements are an error.
        """
        return self._coerce(value, 0)

    def _coerce(self, value: object, depth: int) -> list[object]:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise TypeError(f"{self.spelling} needs a sequence, got {type(value).__name__}")
        lo, hi = self.dims[depth]
        size = hi - lo + 1
        if len(value) > size:
            raise ValueError(f"{len(value)} values do not fit {self.spelling}")
        if depth + 1 < len(self.dims):
            rows: list[object] = [self._coerce(v, depth + 1) for v in value]
            rows.extend(self._filled(depth + 1) for _ in range(size - len(rows)))
            return rows
        out = [self.element.coerce(v) for v in value]
        out.extend(_default_of(self.element) for _ in range(size - len(out)))
        return out

    def __str__(self) -> str:
        return self.spelling


class StructValue:
    """Base of the value classes `StructType` generates: slotted, equal by members, copyable."""

    __slots__ = ()
    _type: StructType

    def __init__(self, **members: object) -> None:
        for name, member_type, initial in self._type.members:
            value = members.pop(name) if name in members else _initial(member_type, initial)
            object.__setattr__(self, name, value)
        if members:
            raise TypeError(f"{self._type.name} has no member(s) {sorted(members)}")

    def _copy(self) -> StructValue:
        clone = object.__new__(type(self))
        for name in self._type.member_names:
            object.__setattr__(clone, name, copy_value(getattr(self, name)))
        return clone

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._type.member_names)

    def __hash__(self) -> int:
        raise TypeError(f"{self._type.name} values are mutable and unhashable")

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._type.member_names)
        return f"{self._type.name}({inner})"


@dataclass(frozen=True, slots=True)
class StructType:
    """A named STRUCT: ordered members `(name, type, initial value or None)`."""

    name: str
    members: tuple[tuple[str, VarType, object], ...]
    _value_class: list[type[StructValue]] = field(
        default_factory=list, init=False, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for member, _, _ in self.members:
            key = member.upper()
            if key in seen:
                raise ValueError(f"STRUCT {self.name} declares member {member!r} twice")
            seen.add(key)

    @property
    def member_names(self) -> tuple[str, ...]:
        return tuple(m[0] for m in self.members)

    def member(self, name: str) -> tuple[str, VarType] | None:
        """The declared spelling and type of member `name` (case-insensitive), or None."""
        key = name.upper()
        for member, member_type, _ in self.members:
            if member.upper() == key:
                return member, member_type
        return None

    @property
    def value_class(self) -> type[StructValue]:
        """The slotted class of this STRUCT's values (generated on first use)."""
        if not self._value_class:
            cls = type(self.name, (StructValue,), {"__slots__": self.member_names, "_type": self})
            self._value_class.append(cls)
        return self._value_class[0]

    @property
    def default(self) -> StructValue:
        return self.new()

    def new(self) -> StructValue:
        """A fresh value with every member at its initial value (or its type's default)."""
        return self.value_class()

    def coerce(self, value: object) -> StructValue:
        """A by-value copy of a value of this STRUCT."""
        if isinstance(value, StructValue) and value._type == self:
            return value._copy()
        raise TypeError(f"{self.name} cannot hold a {type(value).__name__}")

    def __str__(self) -> str:
        return self.name


VarType: TypeAlias = ElementaryType | GenericType | ArrayType | StructType
"""The type of any declared variable: elementary, generic (ANY_*), ARRAY or STRUCT."""


def _default_of(t: VarType) -> object:
    if isinstance(t, (ArrayType, StructType)):
        return t.new()
    return t.default


def _initial(t: VarType, initial: object) -> object:
    if initial is None:
        return _default_of(t)
    return t.coerce(initial)
