"""Calls of IEC 61131-3 standard functions in ST: argument binding, typing and emission.

Semantics live in `testbed.st.functions` (called as `_st.<name>`) and
`testbed.types.convert` (`X_TO_Y`); simple cases with identical semantics are
emitted inline (`ADD` is `+`, `MAX` is `max`, `INT_TO_DINT` is the value itself).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence

from testbed.st import nodes as n
from testbed.st.expressions import BOOL, LREAL, ExpressionCompiler, _is_numeric
from testbed.st.typesys import (
    UNTYPED_INT,
    ExprType,
    Untyped,
    common_type,
    describe,
    implicitly_converts,
    is_bits,
    is_int,
    is_real,
)
from testbed.st.values import Value, const_int, fits_code, wrap_code
from testbed.types import ELEMENTARY, ElementaryType, GenericType, Kind
from testbed.types.derived import ArrayType, StructType

__all__ = ["compile_call", "known_function"]

Handler = Callable[[ExpressionCompiler, list[Value], n.Call], Value]

_STRING_TYPES = ("STRING", "WSTRING")
_UNIT_NS = {"S": 1_000_000_000, "MS": 1_000_000, "US": 1_000, "NS": 1}
_TIME_IN = re.compile(r"^TIME_IN_(S|MS|US|NS)_TO_(LINT|ULINT|LREAL)$")
_BCD_OF = {"SINT": "BYTE", "USINT": "BYTE", "INT": "WORD", "UINT": "WORD", "DINT": "DWORD",
           "UDINT": "DWORD", "LINT": "LWORD", "ULINT": "LWORD"}


def _bind(comp: ExpressionCompiler, call: n.Call, params: Sequence[str],
          variadic: str | None = None, minimum: int | None = None) -> list[Value]:
    """Match positional and named (`IN1 := x`) arguments to the parameter list."""
    fname = call.name.upper()
    slots: dict[str, n.CallArg] = {}
    positional = [a for a in call.args if a.name is None]
    names = list(params)
    if variadic is not None:
        count = max(len(call.args), minimum or 2)
        start = 0 if variadic == "IN" and fname == "MUX" else 1
        names = list(params) + [f"{variadic}{i}" for i in range(start, start + count)]
    for i, arg in enumerate(positional):
        if i >= len(names):
            raise comp.error(f"{fname} takes at most {len(names)} arguments", arg.pos)
        slots[names[i]] = arg
    for arg in call.args:
        if arg.name is None:
            continue
        key = arg.name.upper()
        if key in ("EN", "ENO"):
            raise comp.error(f"{fname}: EN/ENO are not supported", arg.pos)
        if key not in names:
            raise comp.error(f"{fname} has no parameter {arg.name!r} (parameters: "
                             f"{', '.join(names[:6])}{', ...' if len(names) > 6 else ''})",
                             arg.pos)
        if key in slots:
            raise comp.error(f"{fname}: parameter {key} given twice", arg.pos)
        slots[key] = arg
    needed = len(params) + ((minimum or 2) if variadic is not None else 0)
    present = [name for name in names if name in slots]
    if len(present) < needed or present != names[: len(present)]:
        missing = [name for name in names[:needed] if name not in slots]
        raise comp.error(f"{fname} needs argument(s) {', '.join(missing) or 'in order'}",
                         call.pos)
    return [comp.expr(slots[name].value) for name in present]


def _numeric_common(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> ExprType:
    t: ExprType | None = args[0].type
    for a in args[1:]:
        t = common_type(t, a.type) if t is not None else None
    if t is None or not all(_is_numeric(a.type) or a.type == t for a in args):
        types = ", ".join(describe(a.type) for a in args)
        raise comp.error(f"{call.name.upper()}: no common type for {types}", call.pos)
    return t


def _fold_binary(op: str) -> Handler:
    def handler(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
        result = args[0]
        for a in args[1:]:
            if op in ("AND", "OR", "XOR"):
                result = comp.logical(op, result, a, call.pos)
            else:
                result = comp.arith(op, result, a, call.pos)
        return result

    return handler


def _compare_chain(op: str) -> Handler:
    def handler(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
        parts = [comp.compare(op, a, b, call.pos) for a, b in itertools.pairwise(args)]
        result = parts[0]
        for p in parts[1:]:
            result = comp.logical("AND", result, p, call.pos)
        return result

    return handler


def _move(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
    return args[0]


def _not(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
    v = args[0]
    if v.type == BOOL:
        return Value(f"(not {v.code})", BOOL, simple=v.simple)
    if is_bits(v.type):
        assert isinstance(v.type, ElementaryType)
        return Value(f"({v.code} ^ {(1 << v.type.bits) - 1})", v.type, simple=v.simple)
    raise comp.error(f"NOT needs BOOL or ANY_BIT, not {describe(v.type)}", call.pos)


def _minmax(fn: str) -> Handler:
    def handler(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
        t = _elementary_common(comp, args, call)
        code = f"{fn}({', '.join(a.code for a in args)})"
        return Value(code, t, exact=all(a.exact for a in args))

    return handler


def _elementary_common(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> ExprType:
    t: ExprType | None = args[0].type
    for a in args[1:]:
        t = common_type(t, a.type) if t is not None else None
    if t is None or isinstance(t, (ArrayType, StructType)):
        types = ", ".join(describe(a.type) for a in args)
        raise comp.error(f"{call.name.upper()}: no common type for {types}", call.pos)
    return t


def _limit(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
    mn, value, mx = args
    t = _elementary_common(comp, args, call)
    exact = all(a.exact for a in args)
    return Value(f"min(max({value.code}, {mn.code}), {mx.code})", t, exact=exact)


def _sel(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
    g, in0, in1 = args
    if g.type != BOOL and not (isinstance(g.type, GenericType)):
        raise comp.error(f"SEL: G must be BOOL, not {describe(g.type)}", call.pos)
    t = _elementary_common(comp, [in0, in1], call)
    return Value(f"({in1.code} if {g.code} else {in0.code})", t, exact=in0.exact and in1.exact)


def _mux(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
    k, inputs = args[0], args[1:]
    if not is_int(k.type):
        raise comp.error(f"MUX: K must be an integer, not {describe(k.type)}", call.pos)
    t = _elementary_common(comp, inputs, call)
    listed = ", ".join(a.code for a in inputs)
    return Value(f"_st.mux({k.code}, ({listed},))", t, exact=all(a.exact for a in inputs))


def _abs(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
    v = args[0]
    if not _is_numeric(v.type):
        raise comp.error(f"ABS needs a number, not {describe(v.type)}", call.pos)
    unsigned = isinstance(v.type, ElementaryType) and v.type.kind is Kind.UNSIGNED
    if unsigned:
        return v
    return Value(f"abs({v.code})", v.type, exact=v.type == LREAL)


def _real_of(comp: ExpressionCompiler, v: Value, call: n.Call) -> ExprType:
    t = v.type
    if is_real(t):
        return LREAL if isinstance(t, Untyped) else t
    if isinstance(t, GenericType):
        return t
    if is_int(t):
        if isinstance(t, Untyped):
            return LREAL
        real = ELEMENTARY["REAL"]
        return real if implicitly_converts(t, real) else LREAL
    raise comp.error(f"{call.name.upper()} needs ANY_REAL, not {describe(t)}", call.pos)


def _math(name: str) -> Handler:
    def handler(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
        t = _real_of(comp, args[0], call)
        for extra in args[1:]:
            t2 = _real_of(comp, extra, call)
            t = common_type(t, t2) or LREAL
        code = f"_st.{name}({', '.join(a.code for a in args)})"
        return Value(code, t, exact=t == LREAL)

    return handler


def _trunc(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
    v = args[0]
    if not is_real(v.type):
        raise comp.error(f"TRUNC needs ANY_REAL, not {describe(v.type)}", call.pos)
    return Value(f"_st.trunc({v.code})", UNTYPED_INT, exact=False)


def _shift(kind: str) -> Handler:
    def handler(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
        v, count = args
        t = v.type
        if not (is_bits(t) or (isinstance(t, ElementaryType) and t.kind is Kind.UNSIGNED)):
            raise comp.error(f"{kind.upper()} needs ANY_BIT, not {describe(t)}", call.pos)
        if not is_int(count.type):
            raise comp.error(f"{kind.upper()}: N must be an integer, not "
                             f"{describe(count.type)}", call.pos)
        assert isinstance(t, ElementaryType)
        if kind in ("shl", "shr") and count.is_const and 0 <= const_int(count) < t.bits:
            k = const_int(count)
            if kind == "shl":
                return Value(f"({v.code} << {k} & {(1 << t.bits) - 1})", t, simple=v.simple)
            return Value(f"({v.code} >> {k})", t, simple=v.simple)
        return Value(f"_st.{kind}({v.code}, {count.code}, {t.bits})", t)

    return handler


def _string_arg(comp: ExpressionCompiler, v: Value, call: n.Call) -> ExprType:
    t = v.type
    if isinstance(t, ElementaryType) and t.kind in (Kind.STRING, Kind.CHAR):
        return ELEMENTARY["WSTRING"] if t.name.startswith("W") else ELEMENTARY["STRING"]
    raise comp.error(f"{call.name.upper()} needs a STRING, not {describe(t)}", call.pos)


def _int_arg(comp: ExpressionCompiler, v: Value, call: n.Call, what: str) -> None:
    if not is_int(v.type):
        raise comp.error(f"{call.name.upper()}: {what} must be an integer, not "
                         f"{describe(v.type)}", call.pos)


def _string_fn(name: str, strings: int, ints: int, result: str) -> Handler:
    """Strings first, then integers (L, P); result "str" or "int"."""

    def handler(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
        ts = [_string_arg(comp, a, call) for a in args[:strings]]
        if len(set(ts)) > 1:
            raise comp.error(f"{call.name.upper()}: cannot mix STRING and WSTRING", call.pos)
        for a in args[strings:]:
            _int_arg(comp, a, call, "a length or position")
        code = ", ".join(a.code for a in args)
        if result == "int":
            if name == "len":
                return Value(f"len({code})", UNTYPED_INT)
            return Value(f"_st.{name}({code})", UNTYPED_INT)
        if name == "concat":
            return Value(f"({' + '.join(a.code for a in args)})", ts[0])
        return Value(f"_st.{name}({code})", ts[0])

    return handler


def _now_monotonic(comp: ExpressionCompiler, args: list[Value], call: n.Call) -> Value:
    # the FB's resource clock: real time on a device, virtual time under a VirtualClock
    return Value("_st.now_monotonic(self)", ELEMENTARY["TIME"])


_FUNCTIONS: dict[str, tuple[tuple[str, ...], str | None, int | None, Handler]] = {
    # name: (fixed parameters, variadic prefix, minimum variadic count, handler)
    "ADD": ((), "IN", 2, _fold_binary("+")),
    "MUL": ((), "IN", 2, _fold_binary("*")),
    "SUB": (("IN1", "IN2"), None, None, _fold_binary("-")),
    "DIV": (("IN1", "IN2"), None, None, _fold_binary("/")),
    "MOD": (("IN1", "IN2"), None, None, _fold_binary("MOD")),
    "EXPT": (("IN1", "IN2"), None, None, _fold_binary("**")),
    "MOVE": (("IN",), None, None, _move),
    "AND": ((), "IN", 2, _fold_binary("AND")),
    "OR": ((), "IN", 2, _fold_binary("OR")),
    "XOR": ((), "IN", 2, _fold_binary("XOR")),
    "NOT": (("IN",), None, None, _not),
    "GT": ((), "IN", 2, _compare_chain(">")),
    "GE": ((), "IN", 2, _compare_chain(">=")),
    "EQ": ((), "IN", 2, _compare_chain("=")),
    "LE": ((), "IN", 2, _compare_chain("<=")),
    "LT": ((), "IN", 2, _compare_chain("<")),
    "NE": (("IN1", "IN2"), None, None, _compare_chain("<>")),
    "MAX": ((), "IN", 2, _minmax("max")),
    "MIN": ((), "IN", 2, _minmax("min")),
    "LIMIT": (("MN", "IN", "MX"), None, None, _limit),
    "SEL": (("G", "IN0", "IN1"), None, None, _sel),
    "MUX": (("K",), "IN", 2, _mux),
    "ABS": (("IN",), None, None, _abs),
    "SQRT": (("IN",), None, None, _math("sqrt")),
    "LN": (("IN",), None, None, _math("ln")),
    "LOG": (("IN",), None, None, _math("log")),
    "EXP": (("IN",), None, None, _math("exp")),
    "SIN": (("IN",), None, None, _math("sin")),
    "COS": (("IN",), None, None, _math("cos")),
    "TAN": (("IN",), None, None, _math("tan")),
    "ASIN": (("IN",), None, None, _math("asin")),
    "ACOS": (("IN",), None, None, _math("acos")),
    "ATAN": (("IN",), None, None, _math("atan")),
    "ATAN2": (("Y", "X"), None, None, _math("atan2")),
    "TRUNC": (("IN",), None, None, _trunc),
    "NOW_MONOTONIC": ((), None, None, _now_monotonic),
    "SHL": (("IN", "N"), None, None, _shift("shl")),
    "SHR": (("IN", "N"), None, None, _shift("shr")),
    "ROL": (("IN", "N"), None, None, _shift("rol")),
    "ROR": (("IN", "N"), None, None, _shift("ror")),
    "LEN": (("IN",), None, None, _string_fn("len", 1, 0, "int")),
    "LEFT": (("IN", "L"), None, None, _string_fn("left", 1, 1, "str")),
    "RIGHT": (("IN", "L"), None, None, _string_fn("right", 1, 1, "str")),
    "MID": (("IN", "L", "P"), None, None, _string_fn("mid", 1, 2, "str")),
    "CONCAT": ((), "IN", 2, _string_fn("concat", 99, 0, "str")),
    "INSERT": (("IN1", "IN2", "P"), None, None, _string_fn("insert", 2, 1, "str")),
    "DELETE": (("IN", "L", "P"), None, None, _string_fn("delete", 1, 2, "str")),
    "REPLACE": (("IN1", "IN2", "L", "P"), None, None, _string_fn("replace", 2, 2, "str")),
    "FIND": (("IN1", "IN2"), None, None, _string_fn("find", 2, 0, "int")),
}


# ---- conversions -------------------------------------------------------------------------


def _type_named(name: str) -> ElementaryType | None:
    return ELEMENTARY.get(name)


def _split_conversion(name: str) -> tuple[str, str, str] | None:
    """`X_TO_Y` -> ("plain" | "bcd_from" | "bcd_to" | "trunc", X, Y); X may be "" (TO_Y)."""
    if name.startswith("TRUNC_") and _type_named(name[6:]):
        return "trunc", "", name[6:]
    m = re.fullmatch(r"(\w+)_TRUNC_(\w+)", name)
    if m and _type_named(m.group(1)) and _type_named(m.group(2)):
        return "trunc", m.group(1), m.group(2)
    if name.startswith("TO_"):
        rest = name[3:]
        if rest.startswith("BCD_") and _type_named(rest[4:]):
            return "bcd_to", "", rest[4:]
        if _type_named(rest):
            return "plain", "", rest
    if name.startswith("BCD_TO_") and _type_named(name[7:]):
        return "bcd_from", "", name[7:]
    for m in re.finditer("_TO_", name):
        src, dst = name[: m.start()], name[m.end():]
        if src.endswith("_BCD") and _type_named(src[:-4]) and _type_named(dst):
            return "bcd_from", src[:-4], dst
        if dst.startswith("BCD_") and _type_named(src) and _type_named(dst[4:]):
            return "bcd_to", src, dst[4:]
        if dst == "BCD" and src in _BCD_OF:
            return "bcd_to", src, _BCD_OF[src]
        if _type_named(src) and _type_named(dst):
            return "plain", src, dst
    return None


def _conversion(comp: ExpressionCompiler, call: n.Call) -> Value | None:
    name = call.name.upper()
    m = _TIME_IN.match(name)
    if m is not None:
        (v,) = _bind(comp, call, ("IN",))
        if not isinstance(v.type, ElementaryType) or v.type.kind is not Kind.DURATION:
            raise comp.error(f"{name} needs a TIME, not {describe(v.type)}", call.pos)
        unit = _UNIT_NS[m.group(1)]
        dst = ELEMENTARY[m.group(2)]
        if dst.kind is Kind.REAL:
            return Value(f"_st.time_in_unit_real({v.code}, {unit})", dst)
        code = v.code if unit == 1 else f"_st.time_in_unit({v.code}, {unit})"
        if dst.kind is Kind.UNSIGNED:
            code = wrap_code(code, dst)
        return Value(code, dst)
    split = _split_conversion(name)
    if split is None:
        return None
    kind, src_name, dst_name = split
    (v,) = _bind(comp, call, ("IN",))
    dst = ELEMENTARY[dst_name]
    src = ELEMENTARY[src_name] if src_name else v.type
    if not isinstance(src, ElementaryType):
        raise comp.error(f"{name} cannot convert {describe(v.type)}", call.pos)
    if src_name:
        _check_argument(comp, v, src, call)
    if kind == "trunc":
        if src.kind is not Kind.REAL:
            raise comp.error(f"{name} needs ANY_REAL, not {src.name}", call.pos)
        return Value(fits_code(Value(f"_st.trunc({v.code})", UNTYPED_INT, exact=False), dst),
                     dst)
    if kind == "bcd_from":
        code = f"_st.bcd_to_int({v.code})"
        return Value(fits_code(Value(code, UNTYPED_INT, exact=False), dst), dst)
    if kind == "bcd_to":
        return Value(f"_st.int_to_bcd({v.code}, {dst.bits})", dst)
    return Value(_convert_code(v, src, dst), dst, simple=False)


def _check_argument(comp: ExpressionCompiler, v: Value, src: ElementaryType, call: n.Call) -> None:
    if v.type == src:
        return
    if v.is_const and isinstance(v.type, Untyped):
        comp.coerce(v, src, call.pos, f"the argument of {call.name.upper()}")
        return
    if not implicitly_converts(v.type, src):
        raise comp.error(f"{call.name.upper()} needs {src.name}, not {describe(v.type)}",
                         call.pos)


def _convert_code(v: Value, src: ElementaryType, dst: ElementaryType) -> str:
    """Inline code where `convert` would do exactly this; else `_st.SRC_TO_DST`."""
    int_like = (Kind.SIGNED, Kind.UNSIGNED, Kind.BITS)
    if v.is_const and isinstance(v.type, Untyped):
        v = Value(fits_code(v, src), src, simple=True)
    if src == dst:
        return fits_code(v, dst)
    if src.kind in int_like and dst.kind in int_like:
        if v.exact and dst.min <= src.min and src.max <= dst.max:
            return v.code
        return wrap_code(v.code, dst)
    if src.kind in int_like and dst.kind is Kind.REAL:
        if dst.name == "LREAL" or src.bits <= 16:
            return f"float({v.code})"
        return f"_st.real({v.code})"
    if src.kind is Kind.BOOL and dst.kind in int_like:
        return f"int({v.code})"
    if src.kind is Kind.BOOL and dst.kind is Kind.REAL:
        return f"float({v.code})"
    if src.kind in int_like and dst.kind is Kind.BOOL:
        return f"({v.code} != 0)"
    if src.kind is Kind.REAL and dst.name == "LREAL":
        return v.code
    if src.name == "LREAL" and dst.name == "REAL":
        return f"_st.real({v.code})"
    return f"_st.{src.name}_TO_{dst.name}({v.code})"


def known_function(name: str) -> bool:
    """True if `name` is a standard function or conversion this compiler knows."""
    upper = name.upper()
    return upper in _FUNCTIONS or _TIME_IN.match(upper) is not None or (
        _split_conversion(upper) is not None)


def compile_call(comp: ExpressionCompiler, call: n.Call) -> Value:
    """Type-check and emit a standard function call."""
    name = call.name.upper()
    spec = _FUNCTIONS.get(name)
    if spec is not None:
        params, variadic, minimum, handler = spec
        args = _bind(comp, call, params, variadic, minimum)
        return handler(comp, args, call)
    converted = _conversion(comp, call)
    if converted is not None:
        return converted
    if name in comp.fb_vars or name in comp.locals:
        raise comp.error(f"{call.name!r} is a variable, not a function", call.pos)
    raise comp.error(f"unknown function {call.name!r}", call.pos)
