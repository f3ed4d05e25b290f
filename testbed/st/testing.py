"""Helpers to run compiled ST outside a runtime: for tests and for trying ST at a prompt.

    inst = Instance.for_variables({"CV": elementary("UINT")})
    run_algorithm("CV := CV + 1;", {"CV": elementary("UINT")}, inst)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from testbed.st import CompiledAlgorithm, STOrigin, compile_algorithm, compile_guard, stdlib
from testbed.types.derived import ArrayType, StructType, VarType

__all__ = ["Instance", "evaluate_guard", "guard_function", "make_function", "run_algorithm"]

_TEST_ORIGIN = STOrigin(file=None, fb_type="TEST", algorithm="ALG")


class Instance:
    """A stand-in FB instance: a plain object whose attributes are the FB variables."""

    @classmethod
    def for_variables(cls, variables: Mapping[str, VarType], **values: object) -> Instance:
        inst = cls()
        for name, t in variables.items():
            default = t.new() if isinstance(t, (ArrayType, StructType)) else t.default
            setattr(inst, name, values.pop(name, default))
        if values:
            raise KeyError(f"no such variable(s): {sorted(values)}")
        return inst


def make_function(compiled: CompiledAlgorithm, name: str = "algorithm") -> Callable[[object], None]:
    """Wrap compiled lines in `def name(self): ...` the way a code generator would."""
    body = [f"    {line}" for line in compiled.lines] or ["    pass"]
    source = f"def {name}(self):\n" + "\n".join(body) + "\n"
    namespace: dict[str, object] = {"_st": stdlib, **dict(compiled.constants)}
    exec(compile(source, f"<st {name}>", "exec"), namespace)  # noqa: S102 - our own generated code
    function = namespace[name]
    assert callable(function)
    return function


def guard_function(code: str) -> Callable[[object], bool]:
    """Wrap a compiled guard expression in `lambda self: ...`."""
    namespace: dict[str, object] = {"_st": stdlib}
    function = eval(compile(f"lambda self: {code}", "<st guard>", "eval"), namespace)  # noqa: S307 - our own generated code
    assert callable(function)
    return function  # type: ignore[no-any-return]


def run_algorithm(text: str, variables: Mapping[str, VarType], instance: object | None = None,
                  *, origin: STOrigin = _TEST_ORIGIN, **values: object) -> object:
    """Compile `text` and run it once on `instance` (a fresh `Instance` if None); return it."""
    inst = instance if instance is not None else Instance.for_variables(variables, **values)
    make_function(compile_algorithm(text, variables, origin=origin))(inst)
    return inst


def evaluate_guard(text: str, variables: Mapping[str, VarType], instance: object) -> bool:
    """Compile and evaluate a guard on `instance`."""
    return guard_function(compile_guard(text, variables, origin=_TEST_ORIGIN))(instance)
