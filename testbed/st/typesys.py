"""IEC 61131-3 typing rules the ST compiler applies: implicit widening, common types.

The rules follow IEC 61131-3 Ed. 3 (Figure 11): only widening conversions are
implicit (SINT -> INT -> DINT -> LINT, unsigned -> wider signed, small integers ->
REAL/LREAL, REAL -> LREAL, BOOL -> BYTE -> ... -> LWORD, CHAR -> STRING, TIME ->
LTIME, ...). Untyped literals (`5`, `2.5`) take the type their context needs.
Anything else needs an explicit `X_TO_Y`, and is a compile-time error.
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.types import ELEMENTARY, ElementaryType, GenericType, Kind
from testbed.types.derived import ArrayType, StructType, VarType, type_name

__all__ = [
    "UNTYPED_INT",
    "UNTYPED_REAL",
    "ExprType",
    "Untyped",
    "common_type",
    "describe",
    "implicitly_converts",
    "is_bits",
    "is_int",
    "is_real",
]


@dataclass(frozen=True, slots=True)
class Untyped:
    """The type of an untyped literal or of an ANY_INT result (LEN, FIND, TRUNC)."""

    kind: str  # "int" or "real"

    @property
    def name(self) -> str:
        return "ANY_INT" if self.kind == "int" else "ANY_REAL"


UNTYPED_INT = Untyped("int")
UNTYPED_REAL = Untyped("real")

ExprType = ElementaryType | GenericType | ArrayType | StructType | Untyped

_WIDENS: dict[str, tuple[str, ...]] = {
    "SINT": ("INT", "DINT", "LINT", "REAL", "LREAL"),
    "INT": ("DINT", "LINT", "REAL", "LREAL"),
    "DINT": ("LINT", "LREAL"),
    "USINT": ("UINT", "UDINT", "ULINT", "INT", "DINT", "LINT", "REAL", "LREAL"),
    "UINT": ("UDINT", "ULINT", "DINT", "LINT", "REAL", "LREAL"),
    "UDINT": ("ULINT", "LINT", "LREAL"),
    "REAL": ("LREAL",),
    "BOOL": ("BYTE", "WORD", "DWORD", "LWORD"),
    "BYTE": ("WORD", "DWORD", "LWORD"),
    "WORD": ("DWORD", "LWORD"),
    "DWORD": ("LWORD",),
    "CHAR": ("STRING",),
    "WCHAR": ("WSTRING",),
    "TIME": ("LTIME",),
    "DATE": ("LDATE",),
    "TIME_OF_DAY": ("LTIME_OF_DAY",),
    "DATE_AND_TIME": ("LDATE_AND_TIME",),
}

# Candidates for the common type of two operands, narrowest first.
_COMMON_ORDER = ("SINT", "USINT", "INT", "UINT", "DINT", "UDINT", "LINT", "ULINT", "REAL",
                 "LREAL", "BYTE", "WORD", "DWORD", "LWORD")


def describe(t: ExprType) -> str:
    """The IEC name of a type, for messages."""
    if isinstance(t, Untyped):
        return "an untyped integer" if t.kind == "int" else "an untyped real"
    return type_name(t)


def is_int(t: ExprType) -> bool:
    """ANY_INT (signed or unsigned integer), including untyped integers."""
    if isinstance(t, Untyped):
        return t.kind == "int"
    return isinstance(t, ElementaryType) and t.kind in (Kind.SIGNED, Kind.UNSIGNED)


def is_bits(t: ExprType) -> bool:
    """ANY_BIT without BOOL (BYTE, WORD, DWORD, LWORD)."""
    return isinstance(t, ElementaryType) and t.kind is Kind.BITS


def is_real(t: ExprType) -> bool:
    if isinstance(t, Untyped):
        return t.kind == "real"
    return isinstance(t, ElementaryType) and t.kind is Kind.REAL


def implicitly_converts(src: ExprType, dst: ExprType) -> bool:
    """True if a value of `src` may be used where `dst` is expected without a conversion."""
    if src == dst:
        return True
    if isinstance(dst, GenericType):
        if isinstance(src, ElementaryType):
            return dst.accepts(src)
        if isinstance(src, Untyped):
            wanted = _UNTYPED_TARGETS[src.kind]
            return any(m in wanted for m in dst.members)
        return isinstance(src, GenericType) or dst.name == "ANY"
    if isinstance(src, GenericType):
        return isinstance(dst, ElementaryType) and dst.name in src.members
    if isinstance(src, Untyped):
        return isinstance(dst, ElementaryType) and dst.name in _UNTYPED_TARGETS[src.kind]
    if isinstance(src, ElementaryType) and isinstance(dst, ElementaryType):
        return dst.name in _WIDENS.get(src.name, ())
    return False


_INTS = frozenset(n for n, t in ELEMENTARY.items() if t.kind in (Kind.SIGNED, Kind.UNSIGNED))
_UNTYPED_TARGETS = {
    "int": _INTS | {"BYTE", "WORD", "DWORD", "LWORD", "REAL", "LREAL"},
    "real": frozenset({"REAL", "LREAL"}),
}


def common_type(a: ExprType, b: ExprType) -> ExprType | None:
    """The type both operands convert to implicitly (narrowest), or None if there is none."""
    if a == b:
        return a
    if isinstance(a, Untyped) and isinstance(b, Untyped):
        return UNTYPED_REAL if "real" in (a.kind, b.kind) else UNTYPED_INT
    if isinstance(a, GenericType) or isinstance(b, GenericType):
        other = b if isinstance(a, GenericType) else a
        generic = a if isinstance(a, GenericType) else b
        assert isinstance(generic, GenericType)
        if isinstance(other, (ArrayType, StructType)):
            return None
        return generic
    if implicitly_converts(a, b):
        return b
    if implicitly_converts(b, a):
        return a
    for name in _COMMON_ORDER:
        candidate = ELEMENTARY[name]
        if implicitly_converts(a, candidate) and implicitly_converts(b, candidate):
            return candidate
    return None


def as_var_type(t: ExprType) -> VarType | None:
    """The declared-type view of an expression type (None for untyped values)."""
    return None if isinstance(t, Untyped) else t
