"""IEC 61131-3 type conversions (`X_TO_Y`, BCD, TRUNC) with 4diac's rules.

Integers wrap on narrowing (as FORTE's static casts do); REAL to integer rounds
half away from zero; TIME converts to and from integer milliseconds (FORTE
2.x/3.x `TIME_TO_*`); anything to STRING prints the value the way `format_value`
does, without quotes.
"""

from __future__ import annotations

import math

from testbed.errors import LiteralError
from testbed.types.elementary import ElementaryType, Kind, elementary
from testbed.types.literals import NS_PER, format_value, parse_value

__all__ = ["bcd_to_int", "convert", "convert_by_name", "int_to_bcd", "round_half_away"]

_MS = NS_PER["ms"]


def round_half_away(value: float) -> int:
    """IEC rounding of REAL to integer: half away from zero (C `round`)."""
    if math.isnan(value) or math.isinf(value):
        return 0
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)


def _to_string(value: object, src: ElementaryType) -> str:
    if src.kind in (Kind.STRING, Kind.CHAR):
        return str(value)
    return format_value(src, value)


def convert(value: object, src: ElementaryType, dst: ElementaryType) -> object:
    """Convert `value` of type `src` to type `dst` as `SRC_TO_DST` would."""
    sk, dk = src.kind, dst.kind
    if sk is Kind.DATE_AND_TIME and dk is Kind.DATE:
        return int(value) - int(value) % NS_PER["d"]  # type: ignore[call-overload]
    if sk is Kind.DATE_AND_TIME and dk is Kind.TIME_OF_DAY:
        return int(value) % NS_PER["d"]  # type: ignore[call-overload]
    if dk in (Kind.STRING, Kind.CHAR):
        return dst.coerce(_to_string(value, src))
    if sk in (Kind.STRING, Kind.CHAR):
        text = str(value).strip()
        try:
            return parse_value(text, dst).value
        except LiteralError:
            return dst.default
    if dk is Kind.BOOL:
        if sk is Kind.REAL:
            return float(value) != 0.0  # type: ignore[arg-type]
        return int(value) != 0  # type: ignore[call-overload]
    if sk is Kind.BOOL:
        number = 1 if value else 0
        return dst.coerce(float(number) if dk is Kind.REAL else number)
    if sk is Kind.DURATION and dk is not Kind.DURATION:
        ms = int(value) // _MS if int(value) >= 0 else -(-int(value) // _MS)  # type: ignore[call-overload]
        return dst.coerce(float(ms) if dk is Kind.REAL else ms)
    if dk is Kind.DURATION and sk is not Kind.DURATION:
        if sk is Kind.REAL:
            return dst.coerce(round_half_away(float(value) * _MS))  # type: ignore[arg-type]
        return dst.coerce(int(value) * _MS)  # type: ignore[call-overload]
    if dk is Kind.REAL:
        return dst.coerce(float(value))  # type: ignore[arg-type]
    if sk is Kind.REAL:
        return dst.coerce(round_half_away(float(value)))  # type: ignore[arg-type]
    return dst.coerce(int(value))  # type: ignore[call-overload]


def convert_by_name(value: object, src: str, dst: str) -> object:
    """`convert` with type names (`"DINT"`, `"REAL"`)."""
    return convert(value, elementary(src), elementary(dst))


def int_to_bcd(value: int, bits: int) -> int:
    """Unsigned integer -> packed BCD in `bits` bits (digits beyond the width are cut)."""
    out = 0
    shift = 0
    v = abs(int(value))
    while v and shift < bits:
        v, digit = divmod(v, 10)
        out |= digit << shift
        shift += 4
    return out


def bcd_to_int(value: int) -> int:
    """Packed BCD -> unsigned integer (invalid nibbles count as their value, as FORTE)."""
    out = 0
    mult = 1
    v = int(value)
    while v:
        out += (v & 0xF) * mult
        v >>= 4
        mult *= 10
    return out


