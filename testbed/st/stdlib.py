"""What compiled Structured Text calls at run time, reached as `_st.<name>`.

The code generator injects this module into the generated module's globals as
`_st`. Everything here is a thin alias of `testbed.st.functions` (semantics) or
`testbed.types` (conversions), plus array index checks. Conversions are attributes
named like the IEC function (`_st.INT_TO_STRING`), built on first use from
`testbed.types.convert`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from testbed.errors import RuntimeFault
from testbed.st.functions import (
    acos,
    asin,
    atan,
    atan2,
    concat,
    cos,
    delete,
    div,
    div_int,
    div_real,
    exp,
    expt,
    expt_int,
    find,
    insert,
    left,
    limit,
    ln,
    log,
    mid,
    mod_int,
    mux,
    now_monotonic,
    real,
    replace,
    right,
    rol,
    ror,
    shl,
    shr,
    sin,
    sqrt,
    tan,
    time_in_unit,
    time_in_unit_real,
    time_mul_real,
    trunc,
)
from testbed.types import bcd_to_int, convert, elementary, int_to_bcd
from testbed.types.derived import copy_value

__all__ = [
    "acos",
    "asin",
    "atan",
    "atan2",
    "bcd_to_int",
    "concat",
    "converter",
    "copy_value",
    "cos",
    "delete",
    "div",
    "div_int",
    "div_real",
    "exp",
    "expt",
    "expt_int",
    "find",
    "idx",
    "index_error",
    "insert",
    "int_to_bcd",
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


def index_error(index: int, low: int, high: int) -> int:
    """Raise the fault for an array index outside its declared bounds."""
    raise RuntimeFault(f"array index {index} outside bounds [{low}..{high}]")


def idx(index: int, low: int, high: int) -> int:
    """The 0-based list position of IEC index `index` in `[low..high]`, or a RuntimeFault."""
    if low <= index <= high:
        return index - low
    return index_error(index, low, high)


def converter(src: str, dst: str) -> Callable[[object], object]:
    """The `SRC_TO_DST` conversion function (via `testbed.types.convert`)."""
    s, d = elementary(src), elementary(dst)

    def convert_value(value: object) -> object:
        return convert(value, s, d)

    convert_value.__name__ = f"{s.name}_TO_{d.name}"
    return convert_value


_CONVERSION = re.compile(r"^([A-Z_]+?)_TO_([A-Z_]+)$")


def __getattr__(name: str) -> Callable[[object], object]:
    """`_st.INT_TO_STRING` and friends, created once and cached in the module."""
    m = _CONVERSION.match(name)
    if m is None:
        raise AttributeError(name)
    try:
        fn = converter(m.group(1), m.group(2))
    except KeyError:
        raise AttributeError(name) from None
    globals()[name] = fn
    return fn
