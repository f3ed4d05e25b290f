"""Compiled expression values and the emission of assignments' coercions (wrap, REAL rounding)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from testbed.st.typesys import ExprType, Untyped
from testbed.types import ELEMENTARY, ElementaryType, Kind, to_real32

__all__ = ["NO_CONST", "Value", "const_code", "const_int", "fits_code", "wrap_code"]


class _NoConst:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_CONST"


NO_CONST: object = _NoConst()
_BOOL = ELEMENTARY["BOOL"]


@dataclass(frozen=True, slots=True)
class Value:
    """A compiled expression: Python code that is safe to embed anywhere (an atom or
    parenthesised), its IEC type, its compile-time value if constant, and whether the
    code's value already lies in its type's range (`exact`: no wrap/rounding needed).
    `simple` code is cheap and side-effect free, so it may be evaluated twice."""

    code: str
    type: ExprType
    const: object = NO_CONST
    exact: bool = True
    simple: bool = False

    @property
    def is_const(self) -> bool:
        return self.const is not NO_CONST


def const_int(v: Value) -> int:
    """The compile-time integer value of a constant integer expression."""
    value = v.const
    assert isinstance(value, int), value
    return int(value)


def const_code(value: object) -> str:
    """Python source for a constant value."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "float('-inf')"
        text = repr(value)
        return f"({text})" if value < 0 or text.startswith("-") else text
    if isinstance(value, int):
        return f"({value})" if value < 0 else str(value)
    if isinstance(value, str):
        return repr(value)
    raise TypeError(f"no literal form for {value!r}")


def wrap_code(code: str, t: ElementaryType) -> str:
    """Code that wraps an integer result into `t`'s range (two's complement for signed)."""
    if t.kind is Kind.UNSIGNED or t.kind is Kind.BITS:
        return f"({code} & {(1 << t.bits) - 1})"
    half = 1 << (t.bits - 1)
    return f"(({code} + {half} & {(1 << t.bits) - 1}) - {half})"


def fits_code(value: Value, t: ElementaryType) -> str:
    """Code for `value` (already checked assignable to `t`) coerced to `t` on assignment."""
    kind = t.kind
    src = value.type
    if value.is_const:
        return const_code(_const_for(value.const, t))
    if kind is Kind.REAL:
        src_real = isinstance(src, ElementaryType) and src.kind is Kind.REAL
        if t.name == "LREAL":
            return value.code if src_real or (isinstance(src, Untyped) and src.kind == "real") \
                else f"float({value.code})"
        if src == t and value.exact:
            return value.code
        if isinstance(src, ElementaryType) and src.is_integer and src.bits <= 16:
            return f"float({value.code})"
        return f"_st.real({value.code})"
    if kind in (Kind.SIGNED, Kind.UNSIGNED, Kind.BITS, Kind.DURATION, Kind.DATE,
                Kind.TIME_OF_DAY, Kind.DATE_AND_TIME):
        if value.exact and src != _BOOL:
            return value.code
        if src == _BOOL:
            return f"int({value.code})"
        return wrap_code(value.code, t)
    return value.code


def _const_for(value: object, t: ElementaryType) -> object:
    if t.kind is Kind.REAL:
        f = float(value)  # type: ignore[arg-type]
        return to_real32(f) if t.name == "REAL" else f
    if t.kind is Kind.BOOL:
        return bool(value)
    if t.is_integer and isinstance(value, bool):
        return int(value)
    return value
