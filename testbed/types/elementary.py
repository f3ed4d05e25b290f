"""IEC 61131-3 elementary data types: their Python representation, defaults and wrap-around.

Values inside the runtime are plain Python objects so compiled code stays fast:
BOOL -> bool; integers and bit strings -> int; REAL/LREAL -> float (REAL rounded
to binary32 on assignment); STRING/WSTRING/CHAR/WCHAR -> str; TIME/LTIME -> int
nanoseconds; DATE/LDATE and DATE_AND_TIME/LDT -> int nanoseconds since
1970-01-01; TIME_OF_DAY/LTOD -> int nanoseconds since midnight.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "ELEMENTARY",
    "GENERIC",
    "DataType",
    "ElementaryType",
    "GenericType",
    "Kind",
    "elementary",
    "to_real32",
]


class Kind(enum.Enum):
    """Broad family of an elementary type; drives conversion and literal rules."""

    BOOL = "bool"
    SIGNED = "signed"
    UNSIGNED = "unsigned"
    BITS = "bits"
    REAL = "real"
    STRING = "string"
    CHAR = "char"
    DURATION = "duration"
    DATE = "date"
    TIME_OF_DAY = "tod"
    DATE_AND_TIME = "dt"


_F32 = struct.Struct("<f")


def to_real32(value: float) -> float:
    """Round a Python float to the nearest IEEE binary32 value (REAL)."""
    try:
        return _F32.unpack(_F32.pack(value))[0]  # type: ignore[no-any-return]
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


@dataclass(frozen=True, slots=True)
class ElementaryType:
    """One IEC elementary type. `coerce` is what an assignment does to a value."""

    name: str
    kind: Kind
    bits: int
    default: object
    aliases: tuple[str, ...] = ()
    coerce: Callable[[object], object] = field(compare=False, repr=False, default=lambda v: v)

    @property
    def is_integer(self) -> bool:
        return self.kind in (Kind.SIGNED, Kind.UNSIGNED, Kind.BITS)

    @property
    def is_numeric(self) -> bool:
        return self.is_integer or self.kind is Kind.REAL

    @property
    def min(self) -> int:
        if self.kind is Kind.SIGNED:
            return -(1 << (self.bits - 1))
        return 0

    @property
    def max(self) -> int:
        if self.kind is Kind.SIGNED:
            return (1 << (self.bits - 1)) - 1
        if self.kind is Kind.BOOL:
            return 1
        return (1 << self.bits) - 1

    def in_range(self, value: int) -> bool:
        return self.min <= value <= self.max

    def __str__(self) -> str:
        return self.name


def _signed(bits: int) -> Callable[[object], object]:
    mask = (1 << bits) - 1
    half = 1 << (bits - 1)

    def coerce(value: object) -> int:
        return ((int(value) + half) & mask) - half  # type: ignore[call-overload,no-any-return]

    return coerce


def _unsigned(bits: int) -> Callable[[object], object]:
    mask = (1 << bits) - 1

    def coerce(value: object) -> int:
        return int(value) & mask  # type: ignore[call-overload,no-any-return]

    return coerce


def _bool(value: object) -> bool:
    return bool(value)


def _real(value: object) -> float:
    return to_real32(float(value))  # type: ignore[arg-type]


def _lreal(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def _string(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _char(value: object) -> str:
    text = _string(value)
    return text[:1]


_INT64 = _signed(64)


def _build() -> dict[str, ElementaryType]:
    types = [
        ElementaryType("BOOL", Kind.BOOL, 1, False, coerce=_bool),
        ElementaryType("SINT", Kind.SIGNED, 8, 0, coerce=_signed(8)),
        ElementaryType("INT", Kind.SIGNED, 16, 0, coerce=_signed(16)),
        ElementaryType("DINT", Kind.SIGNED, 32, 0, coerce=_signed(32)),
        ElementaryType("LINT", Kind.SIGNED, 64, 0, coerce=_signed(64)),
        ElementaryType("USINT", Kind.UNSIGNED, 8, 0, coerce=_unsigned(8)),
        ElementaryType("UINT", Kind.UNSIGNED, 16, 0, coerce=_unsigned(16)),
        ElementaryType("UDINT", Kind.UNSIGNED, 32, 0, coerce=_unsigned(32)),
        ElementaryType("ULINT", Kind.UNSIGNED, 64, 0, coerce=_unsigned(64)),
        ElementaryType("BYTE", Kind.BITS, 8, 0, coerce=_unsigned(8)),
        ElementaryType("WORD", Kind.BITS, 16, 0, coerce=_unsigned(16)),
        ElementaryType("DWORD", Kind.BITS, 32, 0, coerce=_unsigned(32)),
        ElementaryType("LWORD", Kind.BITS, 64, 0, coerce=_unsigned(64)),
        ElementaryType("REAL", Kind.REAL, 32, 0.0, coerce=_real),
        ElementaryType("LREAL", Kind.REAL, 64, 0.0, coerce=_lreal),
        ElementaryType("STRING", Kind.STRING, 8, "", coerce=_string),
        ElementaryType("WSTRING", Kind.STRING, 16, "", coerce=_string),
        ElementaryType("CHAR", Kind.CHAR, 8, "\0", coerce=_char),
        ElementaryType("WCHAR", Kind.CHAR, 16, "\0", coerce=_char),
        ElementaryType("TIME", Kind.DURATION, 64, 0, ("T",), coerce=_INT64),
        ElementaryType("LTIME", Kind.DURATION, 64, 0, ("LT",), coerce=_INT64),
        ElementaryType("DATE", Kind.DATE, 64, 0, ("D",), coerce=_INT64),
        ElementaryType("LDATE", Kind.DATE, 64, 0, ("LD",), coerce=_INT64),
        ElementaryType("TIME_OF_DAY", Kind.TIME_OF_DAY, 64, 0, ("TOD",), coerce=_INT64),
        ElementaryType("LTIME_OF_DAY", Kind.TIME_OF_DAY, 64, 0, ("LTOD",), coerce=_INT64),
        ElementaryType("DATE_AND_TIME", Kind.DATE_AND_TIME, 64, 0, ("DT",), coerce=_INT64),
        ElementaryType("LDATE_AND_TIME", Kind.DATE_AND_TIME, 64, 0, ("LDT",), coerce=_INT64),
    ]
    table: dict[str, ElementaryType] = {}
    for t in types:
        table[t.name] = t
        for alias in t.aliases:
            table[alias] = t
    return table


ELEMENTARY: dict[str, ElementaryType] = _build()
"""Every elementary type by name and by short alias (T, TOD, DT, ...)."""


@dataclass(frozen=True, slots=True)
class GenericType:
    """An IEC generic type (ANY, ANY_INT, ...): accepts a set of elementary types."""

    name: str
    members: frozenset[str]

    def accepts(self, t: ElementaryType) -> bool:
        return t.name in self.members

    @property
    def default(self) -> object:
        return None

    def coerce(self, value: object) -> object:
        return value

    def __str__(self) -> str:
        return self.name


def _generic() -> dict[str, GenericType]:
    signed = {"SINT", "INT", "DINT", "LINT"}
    unsigned = {"USINT", "UINT", "UDINT", "ULINT"}
    ints = signed | unsigned
    reals = {"REAL", "LREAL"}
    bits = {"BOOL", "BYTE", "WORD", "DWORD", "LWORD"}
    strings = {"STRING", "WSTRING"}
    chars = {"CHAR", "WCHAR"}
    durations = {"TIME", "LTIME"}
    dates = {"DATE", "LDATE", "TIME_OF_DAY", "LTIME_OF_DAY", "DATE_AND_TIME", "LDATE_AND_TIME"}
    num = ints | reals
    magnitude = num | durations
    elementary = magnitude | bits | strings | chars | dates
    groups = {
        "ANY": elementary,
        "ANY_DERIVED": frozenset(),
        "ANY_ELEMENTARY": elementary,
        "ANY_MAGNITUDE": magnitude,
        "ANY_NUM": num,
        "ANY_REAL": reals,
        "ANY_INT": ints,
        "ANY_SIGNED": signed,
        "ANY_UNSIGNED": unsigned,
        "ANY_BIT": bits,
        "ANY_CHARS": strings | chars,
        "ANY_STRING": strings,
        "ANY_CHAR": chars,
        "ANY_DATE": dates,
        "ANY_DURATION": durations,
    }
    return {name: GenericType(name, frozenset(members)) for name, members in groups.items()}


GENERIC: dict[str, GenericType] = _generic()

DataType = ElementaryType | GenericType


def elementary(name: str) -> ElementaryType:
    """The elementary type called `name` (case-insensitive, aliases allowed)."""
    try:
        return ELEMENTARY[name.upper()]
    except KeyError:
        raise KeyError(f"unknown elementary type {name!r}") from None
