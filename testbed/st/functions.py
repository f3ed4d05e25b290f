"""IEC 61131-3 standard functions with FORTE's semantics: the single home of these rules.

Compiled Structured Text calls these through `testbed.st.stdlib`, and the native
`F_*` function blocks reuse them. Values are the runtime's plain Python values
(see `testbed.types.elementary`). Nothing here raises on bad data: FB code must
not fail on a value, so domain errors give NaN (reals) or 0 (integers) as FORTE's
C++ arithmetic does, and out-of-range string positions clip.

Integer results are exact Python ints; the caller wraps them to the destination
type on assignment (`ElementaryType.coerce`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TypeVar

from testbed.types import to_real32
from testbed.types.convert import round_half_away

__all__ = [
    "acos",
    "asin",
    "atan",
    "atan2",
    "concat",
    "cos",
    "delete",
    "div",
    "div_int",
    "div_real",
    "exp",
    "expt",
    "expt_int",
    "find",
    "insert",
    "left",
    "limit",
    "ln",
    "log",
    "mid",
    "mod_int",
    "mux",
    "now_monotonic",
    "real",
    "replace",
    "right",
    "rol",
    "ror",
    "sel",
    "shl",
    "shr",
    "sin",
    "sqrt",
    "tan",
    "time_in_unit",
    "time_in_unit_real",
    "time_mul_real",
    "trunc",
]

_NAN = float("nan")
_Ordered = TypeVar("_Ordered", int, float, str)


# ---- arithmetic ---------------------------------------------------------------------------


def div_int(a: int, b: int) -> int:
    """Integer division truncating toward zero (C semantics); division by zero gives 0 (FORTE)."""
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def mod_int(a: int, b: int) -> int:
    """IEC MOD: the remainder takes the dividend's sign (C `%`); MOD by zero gives 0 (FORTE)."""
    if b == 0:
        return 0
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def div(a: float, b: float) -> float:
    """DIV on values whose type is only known at run time (generic ANY_NUM variables)."""
    if isinstance(a, int) and isinstance(b, int):
        return div_int(a, b)
    return div_real(a, b)


def div_real(a: float, b: float) -> float:
    """Real division with IEEE results for a zero divisor (+-inf, NaN for 0/0)."""
    if b:
        return a / b
    if a == 0 or math.isnan(a):
        return _NAN
    negative = (a < 0) != (math.copysign(1.0, b) < 0)
    return -math.inf if negative else math.inf


def expt(base: float, exponent: float) -> float:
    """EXPT on reals: `base ** exponent` as C `pow` (NaN for a complex result, inf on overflow)."""
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf
    except ValueError:
        if base == 0:
            return math.inf  # 0 ** negative
        return _NAN


def expt_int(base: int, exponent: int) -> int:
    """EXPT on integers: exact power; a negative exponent truncates toward zero like C."""
    if exponent >= 0:
        return int(base**exponent)
    if base in (1, -1):
        return int(base ** (-exponent))
    return 0


def time_mul_real(duration_ns: int, factor: float) -> int:
    """TIME * REAL, rounded half away from zero to whole nanoseconds."""
    return round_half_away(duration_ns * factor)


def now_monotonic(fb: object = None) -> int:
    """FORTE's NOW_MONOTONIC as a TIME (nanoseconds): the clock of the FB's resource.

    Compiled ST passes the FB instance, so networks on a virtual clock read virtual
    time; without one it is the process's monotonic clock.
    """
    res = getattr(fb, "_res", None)
    clock = getattr(res, "clock", None)
    if clock is not None:
        return int(clock.now_ns())
    return time.monotonic_ns()


def trunc(value: float) -> int:
    """TRUNC: toward zero; NaN and infinities give 0 (no exception in FB code)."""
    if math.isnan(value) or math.isinf(value):
        return 0
    return int(value)


def time_in_unit(duration_ns: int, unit_ns: int) -> int:
    """FORTE's `TIME_IN_MS_TO_LINT` family: whole units, truncated toward zero."""
    return div_int(duration_ns, unit_ns)


def time_in_unit_real(duration_ns: int, unit_ns: int) -> float:
    """FORTE's `TIME_IN_MS_TO_LREAL` family: fractional units."""
    return duration_ns / unit_ns


# ---- numerical functions (ANY_REAL) ----------------------------------------------------------


def _guard(fn: object, *args: float) -> float:
    try:
        return fn(*args)  # type: ignore[operator,no-any-return]
    except (ValueError, ZeroDivisionError):
        return _NAN
    except OverflowError:
        return math.inf


def sqrt(x: float) -> float:
    """SQRT; NaN for a negative argument."""
    return _guard(math.sqrt, x)


def ln(x: float) -> float:
    """LN; -inf for 0, NaN for a negative argument."""
    if x == 0:
        return -math.inf
    return _guard(math.log, x)


def log(x: float) -> float:
    """LOG (base 10); -inf for 0, NaN for a negative argument."""
    if x == 0:
        return -math.inf
    return _guard(math.log10, x)


def exp(x: float) -> float:
    """EXP; inf on overflow."""
    return _guard(math.exp, x)


def sin(x: float) -> float:
    return _guard(math.sin, x)


def cos(x: float) -> float:
    return _guard(math.cos, x)


def tan(x: float) -> float:
    return _guard(math.tan, x)


def asin(x: float) -> float:
    return _guard(math.asin, x)


def acos(x: float) -> float:
    return _guard(math.acos, x)


def atan(x: float) -> float:
    return _guard(math.atan, x)


def atan2(y: float, x: float) -> float:
    return _guard(math.atan2, y, x)


def real(x: float) -> float:
    """Round to binary32 (a REAL result)."""
    return to_real32(x)


# ---- selection ------------------------------------------------------------------------------


def sel(g: bool, in0: object, in1: object) -> object:
    """SEL: IN1 when G, else IN0."""
    return in1 if g else in0


def limit(mn: _Ordered, value: _Ordered, mx: _Ordered) -> _Ordered:
    """LIMIT = MIN(MAX(IN, MN), MX)."""
    return min(max(value, mn), mx)


def mux(k: int, inputs: Sequence[object]) -> object:
    """MUX: input number K (0-based); a K out of range selects IN0 rather than failing."""
    if 0 <= k < len(inputs):
        return inputs[k]
    return inputs[0]


# ---- bit shifts -----------------------------------------------------------------------------


def shl(value: int, n: int, bits: int) -> int:
    """SHL within `bits` bits; a negative or huge count shifts everything out."""
    if n < 0 or n >= bits:
        return 0
    return (value << n) & ((1 << bits) - 1)


def shr(value: int, n: int, bits: int) -> int:
    """SHR (logical) within `bits` bits."""
    if n < 0 or n >= bits:
        return 0
    return (value & ((1 << bits) - 1)) >> n


def rol(value: int, n: int, bits: int) -> int:
    """ROL: rotate left within `bits` bits (count taken modulo the width)."""
    n %= bits
    mask = (1 << bits) - 1
    value &= mask
    return ((value << n) | (value >> (bits - n))) & mask


def ror(value: int, n: int, bits: int) -> int:
    """ROR: rotate right within `bits` bits (count taken modulo the width)."""
    return rol(value, bits - (n % bits), bits)


# ---- strings (positions are 1-based, as IEC) ---------------------------------------------------


def left(text: str, length: int) -> str:
    """LEFT: the first L characters (none for L <= 0)."""
    return text[: max(length, 0)]


def right(text: str, length: int) -> str:
    """RIGHT: the last L characters (none for L <= 0)."""
    return text[len(text) - min(max(length, 0), len(text)):]


def mid(text: str, length: int, position: int) -> str:
    """MID: L characters starting at position P (1-based); empty when P is outside the text."""
    if position < 1 or position > len(text) or length <= 0:
        return ""
    start = position - 1
    return text[start : start + length]


def concat(*parts: str) -> str:
    """CONCAT: the parts joined."""
    return "".join(parts)


def insert(text: str, inserted: str, position: int) -> str:
    """INSERT: IN2 inserted after the P-th character of IN1 (P clipped to the text)."""
    p = min(max(position, 0), len(text))
    return text[:p] + inserted + text[p:]


def delete(text: str, length: int, position: int) -> str:
    """DELETE: L characters removed starting at position P (1-based)."""
    if position < 1 or position > len(text) or length <= 0:
        return text
    start = position - 1
    return text[:start] + text[start + length :]


def replace(text: str, replacement: str, length: int, position: int) -> str:
    """REPLACE: L characters starting at position P replaced by IN2."""
    if position < 1 or position > len(text) + 1:
        return text
    start = position - 1
    return text[:start] + replacement + text[start + max(length, 0) :]


def find(text: str, pattern: str) -> int:
    """FIND: 1-based position of the first occurrence of IN2 in IN1, 0 if absent."""
    if not pattern:
        return 0
    return text.find(pattern) + 1
