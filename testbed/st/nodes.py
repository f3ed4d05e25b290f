"""The Structured Text syntax tree: frozen slotted nodes, each with its source position."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.types import TypedValue

__all__ = [
    "ArrayInit",
    "ArraySpec",
    "Assign",
    "Binary",
    "Bit",
    "Call",
    "CallArg",
    "CallStmt",
    "Case",
    "CaseClause",
    "Continue",
    "Exit",
    "Expr",
    "For",
    "If",
    "Index",
    "Initializer",
    "Literal",
    "Member",
    "Name",
    "NamedType",
    "Pos",
    "Program",
    "Repeat",
    "Return",
    "Stmt",
    "StructInit",
    "TypeSpec",
    "Unary",
    "VarDecl",
    "While",
]


@dataclass(frozen=True, slots=True)
class Pos:
    """1-based line and column inside the ST text."""

    line: int
    column: int


# ---- expressions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    text: str
    value: TypedValue
    pos: Pos


@dataclass(frozen=True, slots=True)
class Name:
    ident: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Index:
    base: Expr
    indices: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Member:
    base: Expr
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Bit:
    """Partial access to one bit: `x.3` or `x.%X3`."""

    base: Expr
    bit: int
    pos: Pos


@dataclass(frozen=True, slots=True)
class CallArg:
    name: str | None  # None for a positional argument
    value: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[CallArg, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-", "+", "NOT"
    operand: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # upper-case: "OR", "XOR", "AND", "=", "<>", "<", ..., "+", "*", "MOD", "**"
    left: Expr
    right: Expr
    pos: Pos


Expr = Literal | Name | Index | Member | Bit | Call | Unary | Binary


# ---- declarations -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NamedType:
    name: str
    length: int | None  # STRING[n]
    pos: Pos


@dataclass(frozen=True, slots=True)
class ArraySpec:
    dims: tuple[tuple[int, int], ...]
    element: TypeSpec
    pos: Pos


TypeSpec = NamedType | ArraySpec


@dataclass(frozen=True, slots=True)
class ArrayInit:
    items: tuple[tuple[int, Initializer | None], ...]  # (repeat count, value or None = default)
    pos: Pos


@dataclass(frozen=True, slots=True)
class StructInit:
    fields: tuple[tuple[str, Initializer], ...]
    pos: Pos


Initializer = Expr | ArrayInit | StructInit


@dataclass(frozen=True, slots=True)
class VarDecl:
    names: tuple[str, ...]
    type: TypeSpec
    init: Initializer | None
    constant: bool
    pos: Pos


# ---- statements -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assign:
    target: Expr
    value: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class CallStmt:
    call: Call
    pos: Pos


@dataclass(frozen=True, slots=True)
class If:
    branches: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...] | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class CaseClause:
    labels: tuple[tuple[Expr, Expr | None], ...]  # (value, None) or (low, high)
    body: tuple[Stmt, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Case:
    selector: Expr
    clauses: tuple[CaseClause, ...]
    orelse: tuple[Stmt, ...] | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class For:
    var: Name
    start: Expr
    end: Expr
    step: Expr | None
    body: tuple[Stmt, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class While:
    cond: Expr
    body: tuple[Stmt, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Repeat:
    body: tuple[Stmt, ...]
    cond: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Exit:
    pos: Pos


@dataclass(frozen=True, slots=True)
class Continue:
    pos: Pos


@dataclass(frozen=True, slots=True)
class Return:
    pos: Pos


Stmt = Assign | CallStmt | If | Case | For | While | Repeat | Exit | Continue | Return


@dataclass(frozen=True, slots=True)
class Program:
    """An algorithm body: its local declarations and its statements."""

    decls: tuple[VarDecl, ...]
    body: tuple[Stmt, ...]
