"""Type-check ST expressions and emit tight Python for them.

Every compiled expression is a `Value`: embeddable Python code plus its IEC type.
Plain arithmetic on known types is inline Python; only operations whose IEC meaning
differs from Python's (signed integer division and MOD, real division by zero,
EXPT, math functions) go through `_st` helpers. Integer intermediates are exact;
the wrap to the destination type happens on assignment (see `values.fits_code`).
"""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Mapping
from dataclasses import dataclass

from testbed.errors import STCompileError
from testbed.st import nodes as n
from testbed.st.functions import div_int, mod_int
from testbed.st.origin import STOrigin, compile_error
from testbed.st.typesys import (
    UNTYPED_INT,
    UNTYPED_REAL,
    ExprType,
    Untyped,
    common_type,
    describe,
    implicitly_converts,
    is_bits,
    is_int,
    is_real,
)
from testbed.st.values import NO_CONST, Value, const_code, const_int, fits_code
from testbed.types import ELEMENTARY, ElementaryType, GenericType, Kind, to_real32
from testbed.types.derived import ArrayType, StructType, VarType

__all__ = ["ExpressionCompiler", "LocalVar"]

BOOL = ELEMENTARY["BOOL"]
LREAL = ELEMENTARY["LREAL"]
_REAL32_MAX = 3.4028234663852886e38
_TIME_KINDS = (Kind.DURATION, Kind.DATE, Kind.TIME_OF_DAY, Kind.DATE_AND_TIME)
_PY_COMPARE = {"=": "==", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


@dataclass(frozen=True, slots=True)
class LocalVar:
    """A VAR/VAR_TEMP declared inside an algorithm (a Python local `_t_<name>`)."""

    name: str
    type: VarType
    constant: bool
    const: object = NO_CONST


def _is_time(t: ExprType) -> bool:
    return isinstance(t, ElementaryType) and t.kind in _TIME_KINDS


def _is_numeric(t: ExprType) -> bool:
    if isinstance(t, Untyped):
        return True
    if isinstance(t, GenericType):
        return bool(t.members) and all(ELEMENTARY[m].is_numeric for m in t.members)
    return isinstance(t, ElementaryType) and t.is_numeric and t.kind is not Kind.BITS


def _is_boolish(t: ExprType) -> bool:
    return t == BOOL or (isinstance(t, GenericType) and t.members == frozenset({"BOOL"}))


class ExpressionCompiler:
    """Compiles expressions against the FB's variables and the algorithm's locals."""

    def __init__(self, variables: Mapping[str, VarType], origin: STOrigin,
                 data_types: Mapping[str, VarType] | None = None) -> None:
        self.origin = origin
        self.fb_vars: dict[str, tuple[str, VarType]] = {}
        for name, t in variables.items():
            key = name.upper()
            if key in self.fb_vars:
                raise compile_error(origin, f"variables {self.fb_vars[key][0]!r} and {name!r} "
                                            "differ only in case")
            if keyword.iskeyword(name) or not name.isidentifier():
                raise compile_error(origin, f"variable name {name!r} cannot be used in "
                                            "generated Python (it is a Python keyword)")
            self.fb_vars[key] = (name, t)
        self.data_types = {k.upper(): v for k, v in (data_types or {}).items()}
        self.locals: dict[str, LocalVar] = {}
        self.temp_count = 0
        self.constants: dict[str, object] = {}

    # ---- helpers ------------------------------------------------------------------------

    def error(self, message: str, pos: n.Pos | None) -> STCompileError:
        if pos is None or pos.line <= 0:
            return compile_error(self.origin, message)
        return compile_error(self.origin, message, pos.line, pos.column)

    def temp(self, purpose: str) -> str:
        """A fresh helper local (`_t__` cannot clash with `_t_<IEC identifier>`)."""
        self.temp_count += 1
        return f"_t__{purpose}{self.temp_count}"

    def constant(self, value: object) -> str:
        """A module-level name for an object the generated code needs (see CompiledAlgorithm)."""
        for name, existing in self.constants.items():
            if existing is value:
                return name
        name = f"_k_{len(self.constants)}"
        self.constants[name] = value
        return name

    # ---- entry ----------------------------------------------------------------------------

    def expr(self, node: n.Expr) -> Value:
        if isinstance(node, n.Literal):
            return self.literal(node)
        if isinstance(node, n.Name):
            return self.name(node)
        if isinstance(node, n.Binary):
            return self.binary(node)
        if isinstance(node, n.Unary):
            return self.unary(node)
        if isinstance(node, n.Index):
            return self.index(node)
        if isinstance(node, n.Member):
            return self.member(node)
        if isinstance(node, n.Bit):
            return self.bit(node)
        from testbed.st.builtins import compile_call  # builtins depend on this module

        return compile_call(self, node)

    def literal(self, node: n.Literal) -> Value:
        tv = node.value
        if tv.type is None:
            return Value(const_code(tv.value), UNTYPED_INT, const=tv.value, simple=True)
        if tv.type.name == "LREAL" and "#" not in node.text:
            return Value(const_code(tv.value), UNTYPED_REAL, const=tv.value, simple=True)
        return Value(const_code(tv.value), tv.type, const=tv.value, simple=True)

    def name(self, node: n.Name) -> Value:
        key = node.ident.upper()
        local = self.locals.get(key)
        if local is not None:
            if local.const is not NO_CONST:
                return Value(const_code(local.const), local.type, const=local.const, simple=True)
            return Value(f"_t_{local.name}", local.type, simple=True)
        entry = self.fb_vars.get(key)
        if entry is None:
            known = [v[0] for v in self.fb_vars.values()] + [v.name for v in self.locals.values()]
            close = difflib.get_close_matches(node.ident, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise self.error(f"unknown variable {node.ident!r}{hint}", node.pos)
        return Value(f"self.{entry[0]}", entry[1], simple=True)

    # ---- selectors ----------------------------------------------------------------------

    def index(self, node: n.Index) -> Value:
        base = self.expr(node.base)
        if not isinstance(base.type, ArrayType):
            raise self.error(f"{describe(base.type)} is not an ARRAY and cannot be indexed",
                             node.pos)
        array = base.type
        if len(node.indices) > len(array.dims):
            raise self.error(f"{len(node.indices)} indices for {array.spelling}", node.pos)
        code = base.code
        simple = base.simple
        for (lo, hi), index_node in zip(array.dims, node.indices, strict=False):
            index = self.expr(index_node)
            if not (is_int(index.type) or isinstance(index.type, GenericType)):
                raise self.error(f"an ARRAY index must be an integer, not "
                                 f"{describe(index.type)}", index_node.pos)
            if index.is_const:
                k = const_int(index)
                if not lo <= k <= hi:
                    raise self.error(f"index {k} outside {array.spelling}", index_node.pos)
                code = f"{code}[{k - lo}]"
            elif index.simple and index.exact:
                i = index.code
                shifted = i if lo == 0 else f"{i} - {lo}"
                code = (f"{code}[{shifted} if {lo} <= {i} <= {hi} "
                        f"else _st.index_error({i}, {lo}, {hi})]")
            else:
                code = f"{code}[_st.idx({index.code}, {lo}, {hi})]"
                simple = False
            simple = simple and index.simple
        rest = array.dims[len(node.indices):]
        element: VarType = ArrayType(array.element, rest) if rest else array.element
        return Value(code, element, simple=simple)

    def member(self, node: n.Member) -> Value:
        base = self.expr(node.base)
        if not isinstance(base.type, StructType):
            raise self.error(f"{describe(base.type)} has no member {node.name!r}", node.pos)
        found = base.type.member(node.name)
        if found is None:
            names = ", ".join(base.type.member_names)
            raise self.error(f"STRUCT {base.type.name} has no member {node.name!r} "
                             f"(members: {names})", node.pos)
        name, t = found
        if keyword.iskeyword(name):
            raise self.error(f"member name {name!r} is a Python keyword", node.pos)
        return Value(f"{base.code}.{name}", t, simple=base.simple)

    def bit(self, node: n.Bit) -> Value:
        base = self.expr(node.base)
        t = base.type
        if not (isinstance(t, ElementaryType) and t.is_integer):
            raise self.error(f"bit access .{node.bit} needs an ANY_BIT or integer variable, not "
                             f"{describe(t)}", node.pos)
        if node.bit >= t.bits:
            raise self.error(f"bit {node.bit} is outside {t.name} ({t.bits} bits)", node.pos)
        return Value(f"({base.code} >> {node.bit} & 1 == 1)", BOOL, simple=base.simple)

    # ---- operators ----------------------------------------------------------------------

    def unary(self, node: n.Unary) -> Value:
        v = self.expr(node.operand)
        t = v.type
        if node.op == "NOT":
            if _is_boolish(t):
                if v.is_const:
                    return Value(const_code(not v.const), BOOL, const=not v.const, simple=True)
                return Value(f"(not {v.code})", BOOL, simple=v.simple)
            if is_bits(t):
                assert isinstance(t, ElementaryType)
                return Value(f"({v.code} ^ {(1 << t.bits) - 1})", t, simple=v.simple)
            raise self.error(f"NOT needs BOOL or ANY_BIT, not {describe(t)}", node.pos)
        if not (_is_numeric(t) or _is_time(t)):
            raise self.error(f"unary {node.op} needs a number, not {describe(t)}", node.pos)
        if node.op == "+":
            return v
        if v.is_const:
            value = -v.const  # type: ignore[operator]
            exact = not (isinstance(t, ElementaryType) and t.is_integer and not t.in_range(value))
            return Value(const_code(value), t, const=value if exact else NO_CONST,
                         exact=exact, simple=True)
        exact = t == LREAL or isinstance(t, GenericType)
        return Value(f"(-{v.code})", t, exact=exact, simple=v.simple)

    def binary(self, node: n.Binary) -> Value:
        a = self.expr(node.left)
        b = self.expr(node.right)
        op = node.op
        if op in ("AND", "OR", "XOR"):
            return self.logical(op, a, b, node.pos)
        if op in _PY_COMPARE:
            return self.compare(op, a, b, node.pos)
        return self.arith(op, a, b, node.pos)

    def logical(self, op: str, a: Value, b: Value, pos: n.Pos) -> Value:
        simple = a.simple and b.simple
        if _is_boolish(a.type) and _is_boolish(b.type):
            if a.is_const and b.is_const:
                x, y = bool(a.const), bool(b.const)
                r = x and y if op == "AND" else x or y if op == "OR" else x != y
                return Value(const_code(r), BOOL, const=r, simple=True)
            if op == "XOR":
                return Value(f"({a.code} ^ {b.code})", BOOL, simple=simple)
            return Value(f"({a.code} {op.lower()} {b.code})", BOOL, simple=simple)
        t = common_type(a.type, b.type)
        if t is not None and (is_bits(t) or (isinstance(t, Untyped) and t.kind == "int")):
            py = {"AND": "&", "OR": "|", "XOR": "^"}[op]
            if a.is_const and b.is_const:
                xi, yi = const_int(a), const_int(b)
                ri = xi & yi if op == "AND" else xi | yi if op == "OR" else xi ^ yi
                return Value(const_code(ri), t, const=ri, simple=True)
            return Value(f"({a.code} {py} {b.code})", t, exact=a.exact and b.exact,
                         simple=simple)
        if isinstance(t, GenericType):
            py = {"AND": "&", "OR": "|", "XOR": "^"}[op]
            return Value(f"({a.code} {py} {b.code})", t, simple=simple)
        raise self.error(f"{op} needs two BOOL or two ANY_BIT operands, not {describe(a.type)} "
                         f"and {describe(b.type)}", pos)

    def compare(self, op: str, a: Value, b: Value, pos: n.Pos) -> Value:
        t = common_type(a.type, b.type)
        if t is None:
            raise self.error(f"cannot compare {describe(a.type)} with {describe(b.type)} "
                             "without a conversion", pos)
        if isinstance(t, (ArrayType, StructType)) and op not in ("=", "<>"):
            raise self.error(f"{op} is not defined for {describe(t)}", pos)
        py = _PY_COMPARE[op]
        if a.is_const and b.is_const:
            r = eval(f"{a.code} {py} {b.code}", {})  # noqa: S307 - our own constant literals
            return Value(const_code(bool(r)), BOOL, const=bool(r), simple=True)
        return Value(f"({a.code} {py} {b.code})", BOOL, simple=a.simple and b.simple)

    def arith(self, op: str, a: Value, b: Value, pos: n.Pos) -> Value:
        if _is_time(a.type) or _is_time(b.type):
            return self.time_arith(op, a, b, pos)
        if not (_is_numeric(a.type) and _is_numeric(b.type)):
            raise self.error(f"operator {op} needs numbers, not {describe(a.type)} and "
                             f"{describe(b.type)}", pos)
        t = common_type(a.type, b.type)
        if t is None:
            raise self.error(f"no implicit conversion between {describe(a.type)} and "
                             f"{describe(b.type)} for {op}; convert one operand explicitly", pos)
        simple = a.simple and b.simple
        if op == "**":
            return self.power(a, b, pos)
        generic = isinstance(t, GenericType)
        real = is_real(t)
        if op in ("+", "-", "*"):
            if a.is_const and b.is_const:
                folded = self._fold(op, a.const, b.const)
                return self._const_result(folded, t)
            exact = t == LREAL or generic
            return Value(f"({a.code} {op} {b.code})", t, exact=exact, simple=simple)
        if op == "/":
            if generic:
                return Value(f"_st.div({a.code}, {b.code})", t)
            if real:
                if b.is_const and b.const != 0:
                    return Value(f"({a.code} / {b.code})", t, exact=t == LREAL, simple=simple)
                if b.simple:
                    return Value(f"({a.code} / {b.code} if {b.code} else "
                                 f"_st.div_real({a.code}, {b.code}))", t, exact=t == LREAL)
                return Value(f"_st.div_real({a.code}, {b.code})", t, exact=t == LREAL)
            if a.is_const and b.is_const:
                                return self._const_result(div_int(const_int(a), const_int(b)), t)
            return self._int_div(a, b, t)
        if op == "MOD":
            if real or generic or not is_int(t):
                if generic:
                    return Value(f"_st.mod_int({a.code}, {b.code})", t)
                raise self.error(f"MOD needs integer operands, not {describe(t)}", pos)
            if a.is_const and b.is_const:
                                return self._const_result(mod_int(const_int(a), const_int(b)), t)
            if self._non_negative(a) and self._non_negative(b):
                if b.is_const and b.const != 0:
                    return Value(f"({a.code} % {b.code})", t, simple=simple)
                if b.simple:
                    return Value(f"({a.code} % {b.code} if {b.code} else 0)", t)
            return Value(f"_st.mod_int({a.code}, {b.code})", t)
        raise self.error(f"unknown operator {op}", pos)  # pragma: no cover - grammar bound

    @staticmethod
    def _non_negative(v: Value) -> bool:
        if v.is_const:
            return const_int(v) >= 0
        t = v.type
        return v.exact and isinstance(t, ElementaryType) and t.kind in (Kind.UNSIGNED,
                                                                        Kind.BITS)

    def _int_div(self, a: Value, b: Value, t: ExprType) -> Value:
        nonzero = b.is_const and b.const != 0
        if self._non_negative(a) and self._non_negative(b):
            if nonzero:
                return Value(f"({a.code} // {b.code})", t, simple=a.simple)
            if b.simple:
                return Value(f"({a.code} // {b.code} if {b.code} else 0)", t)
        small = isinstance(t, ElementaryType) and t.bits <= 32 and a.exact and (
            b.exact or b.is_const)
        if small and (nonzero or b.simple):
            signed = isinstance(t, ElementaryType) and t.kind is Kind.SIGNED
            body = f"int({a.code} / {b.code})"
            if nonzero:
                return Value(body, t, exact=not signed)
            return Value(f"({body} if {b.code} else 0)", t, exact=not signed)
        return Value(f"_st.div_int({a.code}, {b.code})", t, exact=False)

    def power(self, a: Value, b: Value, pos: n.Pos) -> Value:
        if is_real(a.type) or isinstance(a.type, GenericType):
            t: ExprType = a.type
            if isinstance(t, Untyped):
                t = LREAL
            return Value(f"_st.expt({a.code}, {b.code})", t, exact=t == LREAL)
        if is_int(a.type) and is_int(b.type):
            return Value(f"_st.expt_int({a.code}, {b.code})", a.type, exact=False)
        raise self.error(f"** needs a real base (or integer base and exponent), not "
                         f"{describe(a.type)} ** {describe(b.type)}", pos)

    @staticmethod
    def _fold(op: str, x: object, y: object) -> object:
        if op == "+":
            return x + y  # type: ignore[operator]
        if op == "-":
            return x - y  # type: ignore[operator]
        return x * y  # type: ignore[operator]

    def _const_result(self, value: object, t: ExprType) -> Value:
        if isinstance(t, ElementaryType) and t.is_integer and not t.in_range(int(value)):  # type: ignore[call-overload]
            return Value(const_code(value), t, exact=False, simple=True)
        if t == ELEMENTARY["REAL"]:
            value = to_real32(float(value))  # type: ignore[arg-type]
        return Value(const_code(value), t, const=value, simple=True)

    def time_arith(self, op: str, a: Value, b: Value, pos: n.Pos) -> Value:
        ta, tb = a.type, b.type
        simple = a.simple and b.simple

        def kind(t: ExprType) -> Kind | None:
            return t.kind if isinstance(t, ElementaryType) else None

        ka, kb = kind(ta), kind(tb)
        if op in ("+", "-") and _is_time(ta) and _is_time(tb):
            if ka is Kind.DURATION and kb is Kind.DURATION:
                t = common_type(ta, tb)
                if t is not None:
                    return Value(f"({a.code} {op} {b.code})", t, exact=False, simple=simple)
            elif kb is Kind.DURATION and ka in (Kind.TIME_OF_DAY, Kind.DATE_AND_TIME):
                return Value(f"({a.code} {op} {b.code})", ta, exact=False, simple=simple)
            elif op == "-" and ka == kb and ka in (Kind.DATE, Kind.TIME_OF_DAY,
                                                   Kind.DATE_AND_TIME):
                long = isinstance(ta, ElementaryType) and ta.name.startswith("L")
                t = ELEMENTARY["LTIME" if long else "TIME"]
                return Value(f"({a.code} - {b.code})", t, exact=False, simple=simple)
        elif op in ("*", "/") and ka is Kind.DURATION and _is_numeric(tb):
            if op == "*":
                if is_real(tb):
                    return Value(f"_st.time_mul_real({a.code}, {b.code})", ta, exact=False)
                return Value(f"({a.code} * {b.code})", ta, exact=False, simple=simple)
            if is_real(tb):
                return Value(f"_st.time_mul_real({a.code}, _st.div_real(1.0, {b.code}))", ta,
                             exact=False)
            return Value(f"_st.div_int({a.code}, {b.code})", ta, exact=False)
        elif op == "*" and kb is Kind.DURATION and _is_numeric(ta):
            return self.time_arith(op, b, a, pos)
        raise self.error(f"operator {op} is not defined for {describe(ta)} and {describe(tb)}",
                         pos)

    # ---- assignment compatibility ---------------------------------------------------------

    def coerce(self, v: Value, target: VarType, pos: n.Pos | None, what: str) -> str:
        """Code for `v` stored into a variable of type `target`, or a compile error."""
        src = v.type
        if isinstance(target, (ArrayType, StructType)):
            if src != target:
                raise self.error(f"cannot assign {describe(src)} to {what} of type "
                                 f"{describe(target)}", pos)
            if isinstance(target, StructType):
                return f"{v.code}._copy()"
            if len(target.dims) == 1 and isinstance(target.element, ElementaryType):
                return f"{v.code}[:]"
            return f"_st.copy_value({v.code})"
        if isinstance(src, (ArrayType, StructType)):
            raise self.error(f"cannot assign {describe(src)} to {what} of type "
                             f"{describe(target)}", pos)
        if isinstance(target, GenericType):
            if not implicitly_converts(src, target):
                raise self.error(f"{describe(src)} is not {target.name} ({what})", pos)
            return v.code
        if v.is_const and isinstance(src, Untyped):
            self._check_const(v, target, pos, what)
            return fits_code(v, target)
        if v.is_const and src == ELEMENTARY["STRING"] and target.kind is Kind.CHAR:
            if len(str(v.const)) != 1:
                raise self.error(f"{what} of type {target.name} needs one character", pos)
            return v.code
        if not implicitly_converts(src, target):
            hint = ""
            if isinstance(src, ElementaryType):
                hint = f"; use {src.name}_TO_{target.name}"
            raise self.error(f"cannot assign {describe(src)} to {what} of type {target.name} "
                             f"without a conversion{hint}", pos)
        return fits_code(v, target)

    def _check_const(self, v: Value, t: ElementaryType, pos: n.Pos | None, what: str) -> None:
        value = v.const
        ok = False
        if isinstance(v.type, Untyped) and v.type.kind == "int":
            k = int(value)  # type: ignore[call-overload]
            if t.is_integer:
                ok = t.in_range(k)
                if not ok:
                    raise self.error(f"{k} is out of range for {what} of type {t.name} "
                                     f"[{t.min}..{t.max}]", pos)
            elif t.kind is Kind.REAL:
                ok = True
            elif t.kind is Kind.BOOL:
                ok = k in (0, 1)
        elif t.kind is Kind.REAL:
            ok = t.name == "LREAL" or abs(float(value)) <= _REAL32_MAX  # type: ignore[arg-type]
            if not ok:
                raise self.error(f"{value} is out of range for {what} of type REAL", pos)
        if not ok:
            raise self.error(f"cannot assign {describe(v.type)} {v.code} to {what} of type "
                             f"{t.name}", pos)

    def condition(self, node: n.Expr, what: str) -> Value:
        """A BOOL expression (IF/WHILE/UNTIL condition, guard)."""
        v = self.expr(node)
        if _is_boolish(v.type) or isinstance(v.type, GenericType):
            return v
        if v.is_const and isinstance(v.type, Untyped) and v.const in (0, 1):
            return Value(const_code(bool(v.const)), BOOL, const=bool(v.const), simple=True)
        raise self.error(f"{what} must be BOOL, not {describe(v.type)}", node_pos(node))


def node_pos(node: n.Expr) -> n.Pos:
    return node.pos
