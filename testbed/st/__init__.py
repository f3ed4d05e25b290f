"""IEC 61131-3 Structured Text compiled to Python source, once per FB type.

`compile_algorithm` turns an algorithm body into Python statements and
`compile_guard` an ECC transition condition into one Python expression. The code
runs inside a method whose first parameter is `self` (the FB instance): FB
variables are `self.<DeclaredName>`, algorithm locals are `_t_<name>`, and run-time
helpers are `_st.<name>` with `_st` = `testbed.st.stdlib` in the module globals.
Every type error is found here, at compile time, never at the first event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from testbed.st.compiler import AlgorithmCompiler
from testbed.st.expressions import ExpressionCompiler
from testbed.st.origin import STOrigin
from testbed.st.parser import parse_algorithm, parse_guard
from testbed.types.derived import VarType

__all__ = ["CompiledAlgorithm", "STOrigin", "compile_algorithm", "compile_guard"]


@dataclass(frozen=True, slots=True)
class CompiledAlgorithm:
    """Python statements for one algorithm (base indent 0, four spaces per level).

    `uses_return`: the body contains RETURN, so it must be wrapped in its own def
    rather than inlined. `constants`: objects the code refers to by name (`_k_<n>`,
    e.g. the value class of a STRUCT declared in a local VAR block); they must be
    placed in the generated module's globals next to `_st`. Empty for most algorithms.
    """

    lines: tuple[str, ...]
    uses_return: bool
    constants: tuple[tuple[str, object], ...] = ()


def compile_algorithm(text: str, variables: Mapping[str, VarType], *, origin: STOrigin,
                      data_types: Mapping[str, VarType] | None = None) -> CompiledAlgorithm:
    """Compile an algorithm body; raises STCompileError naming file, FB type, algorithm, line.

    `variables` maps the FB's declared variable names to their types; `data_types`
    optionally names STRUCT/ARRAY types that local VAR blocks may use.
    """
    program = parse_algorithm(text, origin)
    compiler = AlgorithmCompiler(variables, origin, data_types)
    compiler.program(program)
    return CompiledAlgorithm(tuple(compiler.lines), compiler.uses_return,
                             tuple(compiler.constants.items()))


def compile_guard(text: str, variables: Mapping[str, VarType], *, origin: STOrigin) -> str:
    """Compile an ECC transition guard (without its `EVENT[...]` wrapper) to a Python expression."""
    node = parse_guard(text, origin)
    compiler = ExpressionCompiler(variables, origin)
    return compiler.condition(node, "a transition condition").code
