"""Compile ST statements (algorithm bodies) to Python source lines.

Control flow maps onto Python directly; FOR keeps IEC's rules (bounds and step
evaluated once, the loop variable written back on every iteration and left at
the first value past the end, CONTINUE still steps), REPEAT checks its UNTIL
condition on CONTINUE too, CASE evaluates its selector once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from testbed.st import nodes as n
from testbed.st.expressions import ExpressionCompiler, LocalVar
from testbed.st.origin import STOrigin
from testbed.st.typesys import describe, is_int
from testbed.st.values import Value, const_code, const_int
from testbed.types import ELEMENTARY, ElementaryType, Kind
from testbed.types.derived import ArrayType, StructType, VarType

__all__ = ["AlgorithmCompiler"]

_INDENT = "    "


@dataclass(frozen=True, slots=True)
class _Loop:
    kind: str  # "for", "while", "repeat"
    on_continue: tuple[str, ...]  # lines to run before `continue`


class AlgorithmCompiler(ExpressionCompiler):
    """Compiles one algorithm; `lines` is the result, `uses_return` whether RETURN occurs."""

    def __init__(self, variables: Mapping[str, VarType], origin: STOrigin,
                 data_types: Mapping[str, VarType] | None = None) -> None:
        super().__init__(variables, origin, data_types)
        self.lines: list[str] = []
        self.loops: list[_Loop] = []
        self.uses_return = False

    def emit(self, line: str, depth: int) -> None:
        self.lines.append(_INDENT * depth + line)

    # ---- program --------------------------------------------------------------------------

    def program(self, program: n.Program) -> None:
        for decl in program.decls:
            self.declare(decl)
        self.block(program.body, 0, allow_empty=True)

    def declare(self, decl: n.VarDecl) -> None:
        t = self.resolve_type(decl.type)
        for name in decl.names:
            key = name.upper()
            if key in self.locals:
                raise self.error(f"local variable {name!r} declared twice", decl.pos)
            if key in self.fb_vars:
                raise self.error(f"local variable {name!r} hides the FB variable "
                                 f"{self.fb_vars[key][0]!r}", decl.pos)
            init = self.initial_code(t, decl.init, name, decl.pos)
            if decl.constant and isinstance(decl.init, (n.Literal, n.Unary, n.Binary)):
                v = self.expr(decl.init)
                if v.is_const and isinstance(t, ElementaryType):
                    value = t.coerce(v.const)
                    self.locals[key] = LocalVar(name, t, True, value)
                    continue
            self.locals[key] = LocalVar(name, t, decl.constant)
            self.emit(f"_t_{name} = {init}", 0)

    def resolve_type(self, spec: n.TypeSpec) -> VarType:
        if isinstance(spec, n.ArraySpec):
            try:
                return ArrayType(self.resolve_type(spec.element), spec.dims)
            except ValueError as exc:
                raise self.error(str(exc), spec.pos) from None
        key = spec.name.upper()
        if spec.length is not None and key not in ("STRING", "WSTRING"):
            raise self.error(f"{spec.name}[{spec.length}]: only STRING types take a length",
                             spec.pos)
        found = ELEMENTARY.get(key) or self.data_types.get(key)
        if found is None:
            raise self.error(f"unknown type {spec.name!r}", spec.pos)
        return found

    def initial_code(self, t: VarType, init: n.Initializer | None, name: str,
                     pos: n.Pos) -> str:
        what = f"local variable {name}"
        if init is None:
            return self.default_code(t)
        if isinstance(init, n.ArrayInit):
            if not isinstance(t, ArrayType):
                raise self.error(f"an array initialiser needs an ARRAY, {name} is "
                                 f"{describe(t)}", init.pos)
            return self.array_init_code(t, init, what)
        if isinstance(init, n.StructInit):
            if not isinstance(t, StructType):
                raise self.error(f"a structure initialiser needs a STRUCT, {name} is "
                                 f"{describe(t)}", init.pos)
            parts = []
            for member, value in init.fields:
                found = t.member(member)
                if found is None:
                    raise self.error(f"STRUCT {t.name} has no member {member!r}", init.pos)
                parts.append(f"{found[0]}={self.initial_code(found[1], value, name, pos)}")
            return f"{self.constant(t.value_class)}({', '.join(parts)})"
        return self.coerce(self.expr(init), t, init.pos, what)

    def array_init_code(self, t: ArrayType, init: n.ArrayInit, what: str) -> str:
        element: VarType = ArrayType(t.element, t.dims[1:]) if len(t.dims) > 1 else t.element
        size = t.shape[0]
        items: list[str] = []
        for count, value in init.items:
            code = self.default_code(element) if value is None else self.initial_code(
                element, value, what, init.pos)
            items.extend([code] * count)
        if len(items) > size:
            raise self.error(f"{len(items)} initial values for {t.spelling}", init.pos)
        items.extend(self.default_code(element) for _ in range(size - len(items)))
        return f"[{', '.join(items)}]"

    def default_code(self, t: VarType) -> str:
        if isinstance(t, ArrayType):
            element: VarType = ArrayType(t.element, t.dims[1:]) if len(t.dims) > 1 else (
                t.element)
            inner = self.default_code(element)
            return f"[{inner} for _ in range({t.shape[0]})]"
        if isinstance(t, StructType):
            return f"{self.constant(t.value_class)}()"
        return const_code(t.default) if t.default is not None else "None"

    # ---- statements -------------------------------------------------------------------------

    def block(self, stmts: tuple[n.Stmt, ...], depth: int, allow_empty: bool = False) -> None:
        before = len(self.lines)
        for stmt in stmts:
            self.stmt(stmt, depth)
        if len(self.lines) == before and not allow_empty:
            self.emit("pass", depth)

    def stmt(self, s: n.Stmt, depth: int) -> None:
        if isinstance(s, n.Assign):
            self.assign(s, depth)
        elif isinstance(s, n.CallStmt):
            self.emit(self.expr(s.call).code, depth)
        elif isinstance(s, n.If):
            self.if_stmt(s, depth)
        elif isinstance(s, n.Case):
            self.case_stmt(s, depth)
        elif isinstance(s, n.For):
            self.for_stmt(s, depth)
        elif isinstance(s, n.While):
            cond = self.condition(s.cond, "a WHILE condition")
            self.emit(f"while {cond.code}:", depth)
            self.loop_body(_Loop("while", ()), s.body, depth + 1)
        elif isinstance(s, n.Repeat):
            cond = self.condition(s.cond, "an UNTIL condition")
            self.emit("while True:", depth)
            check = (f"if {cond.code}:", f"{_INDENT}break")
            self.loop_body(_Loop("repeat", check), s.body, depth + 1)
            for line in check:
                self.emit(line, depth + 1)
        elif isinstance(s, n.Exit):
            if not self.loops:
                raise self.error("EXIT outside a loop", s.pos)
            self.emit("break", depth)
        elif isinstance(s, n.Continue):
            if not self.loops:
                raise self.error("CONTINUE outside a loop", s.pos)
            for line in self.loops[-1].on_continue:
                self.emit(line, depth)
            self.emit("continue", depth)
        else:
            self.uses_return = True
            self.emit("return", depth)

    def loop_body(self, loop: _Loop, body: tuple[n.Stmt, ...], depth: int) -> None:
        self.loops.append(loop)
        try:
            self.block(body, depth)
        finally:
            self.loops.pop()

    def target(self, node: n.Expr) -> Value:
        """An assignable place; constants and non-variables are rejected."""
        if isinstance(node, n.Name):
            local = self.locals.get(node.ident.upper())
            if local is not None and local.constant:
                raise self.error(f"cannot assign to constant {local.name!r}", node.pos)
        elif isinstance(node, (n.Index, n.Member)):
            self.target(node.base)
        elif not isinstance(node, n.Bit):
            raise self.error("only variables can be assigned", node.pos)
        return self.expr(node)

    def assign(self, s: n.Assign, depth: int) -> None:
        if isinstance(s.target, n.Bit):
            self.assign_bit(s, depth)
            return
        place = self.target(s.target)
        what = f"variable {_describe_target(s.target)}"
        code = self.coerce(self.expr(s.value), place.type, s.value.pos, what)  # type: ignore[arg-type]
        self.emit(f"{place.code} = {code}", depth)

    def assign_bit(self, s: n.Assign, depth: int) -> None:
        node = s.target
        assert isinstance(node, n.Bit)
        self.target(node.base)
        base = self.expr(node.base)
        t = base.type
        self.bit(node)  # validates the base type and bit number
        assert isinstance(t, ElementaryType)
        bool_code = self.coerce(self.expr(s.value), ELEMENTARY["BOOL"], s.value.pos,
                                f"bit {node.bit}")
        mask = 1 << node.bit
        set_code = f"{base.code} | {mask}"
        if t.kind is Kind.SIGNED and node.bit == t.bits - 1:
            set_code = f"{base.code} | {-mask}"
        self.emit(f"{base.code} = ({set_code}) if {bool_code} else ({base.code} & {~mask})",
                  depth)

    def if_stmt(self, s: n.If, depth: int) -> None:
        for i, (cond_node, body) in enumerate(s.branches):
            cond = self.condition(cond_node, "an IF condition")
            self.emit(f"{'if' if i == 0 else 'elif'} {cond.code}:", depth)
            self.block(body, depth + 1)
        if s.orelse is not None:
            self.emit("else:", depth)
            self.block(s.orelse, depth + 1)

    def case_stmt(self, s: n.Case, depth: int) -> None:
        sel = self.expr(s.selector)
        if not (is_int(sel.type) or (isinstance(sel.type, ElementaryType)
                                     and sel.type.kind is Kind.BITS)):
            raise self.error(f"a CASE selector must be an integer, not {describe(sel.type)}",
                             s.selector.pos)
        code = sel.code
        if not sel.simple:
            code = self.temp("case")
            self.emit(f"{code} = {sel.code}", depth)
        seen: set[int] = set()
        first = True
        for clause in s.clauses:
            tests = []
            for low_node, high_node in clause.labels:
                low = self.case_label(low_node, sel)
                if high_node is None:
                    if low in seen:
                        raise self.error(f"CASE label {low} appears twice", low_node.pos)
                    seen.add(low)
                    tests.append(f"{code} == {const_code(low)}")
                else:
                    high = self.case_label(high_node, sel)
                    if high < low:
                        raise self.error(f"empty CASE range {low}..{high}", low_node.pos)
                    tests.append(f"{const_code(low)} <= {code} <= {const_code(high)}")
            self.emit(f"{'if' if first else 'elif'} {' or '.join(tests)}:", depth)
            self.block(clause.body, depth + 1)
            first = False
        if s.orelse is not None:
            if first:
                self.block(s.orelse, depth, allow_empty=True)
            else:
                self.emit("else:", depth)
                self.block(s.orelse, depth + 1)

    def case_label(self, node: n.Expr, sel: Value) -> int:
        v = self.expr(node)
        if not v.is_const or (not is_int(v.type) and not (
                isinstance(v.type, ElementaryType) and v.type.kind is Kind.BITS)):
            raise self.error("a CASE label must be an integer constant", node.pos)
        if isinstance(sel.type, ElementaryType):
            self.coerce(v, sel.type, node.pos, "the CASE selector")
        return const_int(v)

    def for_stmt(self, s: n.For, depth: int) -> None:
        var = self.target(s.var)
        t = var.type
        if not (isinstance(t, ElementaryType) and is_int(t)):
            raise self.error(f"a FOR variable must be an integer, not {describe(t)}", s.var.pos)
        what = f"FOR variable {s.var.ident}"
        start = self.coerce(self.expr(s.start), t, s.start.pos, what)
        end_v = self.expr(s.end)
        end = self.coerce(end_v, t, s.end.pos, what)
        step_v = self.expr(s.step) if s.step is not None else Value("1", t, const=1, simple=True)
        if not is_int(step_v.type):
            raise self.error(f"a FOR step must be an integer, not {describe(step_v.type)}",
                             step_v_pos(s))
        counter = self.temp("for")
        self.emit(f"{counter} = {start}", depth)
        if not end_v.is_const:
            limit = self.temp("end")
            self.emit(f"{limit} = {end}", depth)
            end = limit
        if step_v.is_const:
            step_value = const_int(step_v)
            if step_value == 0:
                raise self.error("a FOR step of 0 never ends", step_v_pos(s))
            step = const_code(step_value)
            cond = f"{counter} <= {end}" if step_value > 0 else f"{counter} >= {end}"
        else:
            step = self.temp("step")
            self.emit(f"{step} = {step_v.code}", depth)
            cond = (f"({step} > 0 and {counter} <= {end}) or "
                    f"({step} < 0 and {counter} >= {end})")
        advance = f"{counter} = {var.code} + {step}"
        self.emit(f"while {cond}:", depth)
        self.emit(f"{var.code} = {counter}", depth + 1)
        self.loop_body(_Loop("for", (advance,)), s.body, depth + 1)
        self.emit(advance, depth + 1)
        self.emit("else:", depth)
        wrapped = self.coerce(Value(counter, t, exact=False, simple=True), t, s.pos, what)
        self.emit(f"{var.code} = {wrapped}", depth + 1)


def step_v_pos(s: n.For) -> n.Pos:
    return s.step.pos if s.step is not None else s.pos


def _describe_target(node: n.Expr) -> str:
    if isinstance(node, n.Name):
        return node.ident
    if isinstance(node, n.Member):
        return f"{_describe_target(node.base)}.{node.name}"
    if isinstance(node, n.Index):
        return f"{_describe_target(node.base)}[...]"
    return "?"

