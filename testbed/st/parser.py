"""Parse Structured Text into `testbed.st.nodes` with a cached LALR parser built from st.lark.

The lark parser is built once per process; its LALR tables are also cached on
disk (in the user cache directory) so later processes start fast.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from testbed.errors import LiteralError, STCompileError
from testbed.st import nodes as n
from testbed.st.origin import STOrigin, compile_error
from testbed.types import parse_literal

__all__ = ["parse_algorithm", "parse_guard"]

_GRAMMAR = Path(__file__).with_name("st.lark")

_PUNCTUATION = {
    "SEMICOLON": "';'", "COLON": "':'", "COMMA": "','", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "DOT": "'.'", "$END": "end of text",
}


def _cache_file() -> str | bool:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "testbed"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    import lark

    py = f"{sys.version_info[0]}{sys.version_info[1]}"
    return str(folder / f"st-grammar-lark{lark.__version__}-py{py}.cache")


@functools.cache
def _parser() -> Lark:
    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        start=["start", "guard"],
        propagate_positions=True,
        maybe_placeholders=False,
        cache=_cache_file(),
    )


def _terminal_texts() -> dict[str, str]:
    out: dict[str, str] = {}
    for term in _parser().terminals:
        if term.pattern.type == "str":
            out[term.name] = f"'{term.pattern.value}'"
    return out


def _describe(name: str) -> str:
    if name in _PUNCTUATION:
        return _PUNCTUATION[name]
    text = _terminal_texts().get(name)
    if text is not None:
        return text.upper()
    return name.lower().replace("_", " ")


def _syntax_error(exc: UnexpectedInput, origin: STOrigin) -> STCompileError:
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        got = "end of text" if token.type == "$END" else f"{token.value!r}"
        expected = sorted({_describe(e) for e in exc.expected if not e.startswith("__")})
        hint = ", ".join(expected[:10]) + (", ..." if len(expected) > 10 else "")
        message = f"syntax error: unexpected {got}; expected {hint}"
        if token.type == "$END":
            line, column = None, None
    elif isinstance(exc, UnexpectedCharacters):
        message = f"syntax error: unexpected character {exc.char!r}"
    elif isinstance(exc, UnexpectedEOF):
        message = "syntax error: unexpected end of text"
    else:
        message = f"syntax error: {exc}"
    if not isinstance(line, int) or line < 1:
        line, column = None, None
    return compile_error(origin, message, line, column)


def parse_algorithm(text: str, origin: STOrigin) -> n.Program:
    """An algorithm body (optional VAR/VAR_TEMP blocks, then statements)."""
    try:
        tree = _parser().parse(text, start="start")
    except UnexpectedInput as exc:
        raise _syntax_error(exc, origin) from None
    return _Builder(origin).program(tree)


def parse_guard(text: str, origin: STOrigin) -> n.Expr:
    """A single expression (an ECC transition condition)."""
    try:
        tree = _parser().parse(text, start="guard")
    except UnexpectedInput as exc:
        raise _syntax_error(exc, origin) from None
    return _Builder(origin).expr(tree.children[0])


def _pos(item: Tree[Token] | Token) -> n.Pos:
    if isinstance(item, Token):
        return n.Pos(item.line or 0, item.column or 0)
    meta = item.meta
    return n.Pos(getattr(meta, "line", 0), getattr(meta, "column", 0))


def _trees(items: list[Tree[Token] | Token]) -> list[Tree[Token]]:
    return [i for i in items if isinstance(i, Tree)]


class _Builder:
    """Turns lark's parse tree into frozen nodes; literal text is checked here."""

    def __init__(self, origin: STOrigin) -> None:
        self.origin = origin

    # ---- declarations ----------------------------------------------------------------

    def program(self, tree: Tree[Token]) -> n.Program:
        decls: list[n.VarDecl] = []
        body: tuple[n.Stmt, ...] = ()
        for child in _trees(tree.children):
            if child.data == "var_block":
                constant = any(isinstance(c, Token) and c.type == "CONSTANT"
                               for c in child.children)
                decls.extend(self.var_decl(d, constant) for d in _trees(child.children))
            else:
                body = self.stmts(child)
        return n.Program(tuple(decls), body)

    def var_decl(self, tree: Tree[Token], constant: bool) -> n.VarDecl:
        names = tuple(str(t) for t in tree.children if isinstance(t, Token))
        subtrees = _trees(tree.children)
        type_spec = self.type_spec(subtrees[0])
        init = self.initializer(subtrees[1]) if len(subtrees) > 1 else None
        return n.VarDecl(names, type_spec, init, constant, _pos(tree))

    def type_spec(self, tree: Tree[Token]) -> n.TypeSpec:
        kids = tree.children
        if tree.data == "named_type":
            return n.NamedType(str(kids[0]), None, _pos(tree))
        if tree.data == "sized_type":
            return n.NamedType(str(kids[0]), int(str(kids[1]).replace("_", "")), _pos(tree))
        subtrees = _trees(kids)
        dims = tuple(self.subrange(s) for s in subtrees[:-1])
        return n.ArraySpec(dims, self.type_spec(subtrees[-1]), _pos(tree))

    def subrange(self, tree: Tree[Token]) -> tuple[int, int]:
        lo, hi = (self.signed_int(s) for s in _trees(tree.children))
        return lo, hi

    @staticmethod
    def signed_int(tree: Tree[Token]) -> int:
        tokens = [t for t in tree.children if isinstance(t, Token)]
        value = int(str(tokens[-1]).replace("_", ""))
        return -value if len(tokens) == 2 else value

    def initializer(self, tree: Tree[Token] | Token) -> n.Initializer:
        if isinstance(tree, Tree) and tree.data == "array_init":
            items: list[tuple[int, n.Initializer | None]] = []
            for item in _trees(tree.children):
                if item.data == "repeated_item":
                    count = int(str(item.children[0]).replace("_", ""))
                    rest = item.children[1:]
                    items.append((count, self.initializer(rest[0]) if rest else None))
                else:
                    items.append((1, self.initializer(item.children[0])))
            return n.ArrayInit(tuple(items), _pos(tree))
        if isinstance(tree, Tree) and tree.data == "struct_init":
            kids = tree.children
            fields = tuple((str(kids[i]), self.initializer(kids[i + 1]))
                           for i in range(0, len(kids), 2))
            return n.StructInit(fields, _pos(tree))
        return self.expr(tree)

    # ---- statements --------------------------------------------------------------------

    def stmts(self, tree: Tree[Token]) -> tuple[n.Stmt, ...]:
        out: list[n.Stmt] = []
        for child in _trees(tree.children):
            stmt = self.stmt(child)
            if stmt is not None:
                out.append(stmt)
        return tuple(out)

    def stmt(self, tree: Tree[Token]) -> n.Stmt | None:
        kind = tree.data
        kids = tree.children
        pos = _pos(tree)
        if kind == "assign":
            return n.Assign(self.expr(kids[0]), self.expr(kids[1]), pos)
        if kind == "call_stmt":
            call = self.expr(kids[0])
            assert isinstance(call, n.Call)
            return n.CallStmt(call, pos)
        if kind == "if_stmt":
            return self.if_stmt(tree)
        if kind == "case_stmt":
            return self.case_stmt(tree)
        if kind == "for_stmt":
            var = n.Name(str(kids[0]), _pos(kids[0]))
            subtrees = _trees(kids)
            step = None
            if subtrees[2].data == "by_part":
                step = self.expr(subtrees[2].children[0])
            return n.For(var, self.expr(subtrees[0]), self.expr(subtrees[1]), step,
                         self.stmts(subtrees[-1]), pos)
        if kind == "while_stmt":
            return n.While(self.expr(kids[0]), self.stmts(_trees(kids)[1]), pos)
        if kind == "repeat_stmt":
            return n.Repeat(self.stmts(_trees(kids)[0]), self.expr(kids[1]), pos)
        if kind == "exit_stmt":
            return n.Exit(pos)
        if kind == "continue_stmt":
            return n.Continue(pos)
        if kind == "return_stmt":
            return n.Return(pos)
        return None  # empty statement

    def if_stmt(self, tree: Tree[Token]) -> n.If:
        kids = tree.children
        branches = [(self.expr(kids[0]), self.stmts(_trees(kids)[1]))]
        orelse: tuple[n.Stmt, ...] | None = None
        for part in _trees(kids)[2:]:
            if part.data == "elsif":
                branches.append((self.expr(part.children[0]), self.stmts(_trees(part.children)[1])))
            else:
                orelse = self.stmts(_trees(part.children)[0])
        return n.If(tuple(branches), orelse, _pos(tree))

    def case_stmt(self, tree: Tree[Token]) -> n.Case:
        kids = tree.children
        clauses: list[n.CaseClause] = []
        orelse: tuple[n.Stmt, ...] | None = None
        for part in _trees(kids)[1:]:
            if part.data == "else_part":
                orelse = self.stmts(_trees(part.children)[0])
                continue
            labels: list[tuple[n.Expr, n.Expr | None]] = []
            parts = _trees(part.children)
            for label in parts[:-1]:
                values = [self.expr(c) for c in label.children]
                labels.append((values[0], values[1] if len(values) > 1 else None))
            clauses.append(n.CaseClause(tuple(labels), self.stmts(parts[-1]), _pos(part)))
        return n.Case(self.expr(kids[0]), tuple(clauses), orelse, _pos(tree))

    # ---- expressions -------------------------------------------------------------------

    def expr(self, tree: Tree[Token] | Token) -> n.Expr:
        if isinstance(tree, Token):  # pragma: no cover - the grammar wraps every leaf
            raise compile_error(self.origin, f"unexpected {tree.value!r}", tree.line, tree.column)
        kind = tree.data
        kids = tree.children
        pos = _pos(tree)
        if kind == "binop":
            op = str(kids[1]).upper()
            return n.Binary("AND" if op == "&" else op, self.expr(kids[0]), self.expr(kids[2]),
                            pos)
        if kind == "unop":
            return n.Unary(str(kids[0]).upper(), self.expr(kids[1]), pos)
        if kind == "literal":
            return self.literal(kids[0])  # type: ignore[arg-type]
        if kind == "variable":
            return self.variable(tree)
        if kind == "call":
            args = tuple(self.arg(a) for a in _trees(kids))
            return n.Call(str(kids[0]), args, pos)
        raise compile_error(self.origin, f"unsupported construct {kind}", pos.line, pos.column)

    def literal(self, token: Token) -> n.Literal:
        text = str(token)
        try:
            value = parse_literal(text)
        except LiteralError as exc:
            raise compile_error(self.origin, f"bad literal {text}: {exc}", token.line,
                                token.column) from None
        return n.Literal(text, value, _pos(token))

    def variable(self, tree: Tree[Token]) -> n.Expr:
        head = tree.children[0]
        assert isinstance(head, Token)
        node: n.Expr = n.Name(str(head), _pos(head))
        for sel in _trees(tree.children):
            pos = _pos(sel)
            if sel.data == "index":
                node = n.Index(node, tuple(self.expr(c) for c in sel.children), pos)
            elif sel.data == "member":
                node = n.Member(node, str(sel.children[0]), pos)
            else:
                text = str(sel.children[0]).upper().lstrip("%X")
                node = n.Bit(node, int(text.replace("_", "")), pos)
        return node

    def arg(self, tree: Tree[Token]) -> n.CallArg:
        kids = tree.children
        if tree.data == "named_arg":
            return n.CallArg(str(kids[0]), self.expr(kids[1]), _pos(tree))
        if tree.data == "out_arg":
            pos = _pos(tree)
            raise compile_error(self.origin, "output arguments (=>) are not supported",
                                pos.line, pos.column)
        return n.CallArg(None, self.expr(kids[0]), _pos(tree))
