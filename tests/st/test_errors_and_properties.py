"""Compile errors point at file, FB type, algorithm, line and column; arithmetic matches a model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import STCompileError
from testbed.st import STOrigin, compile_algorithm, compile_guard
from testbed.st.functions import div_int, mod_int
from testbed.st.testing import Instance, make_function, run_algorithm
from testbed.types import ArrayType, StructType, convert, elementary

INT, DINT, BOOL = elementary("INT"), elementary("DINT"), elementary("BOOL")
VARS = {"X": INT, "Q": BOOL}
ORIGIN = STOrigin("types/MyFB.fbt", "MyFB", "REQ", line_offset=40)


def error_of(text: str, variables: dict[str, object] | None = None) -> STCompileError:
    with pytest.raises(STCompileError) as info:
        compile_algorithm(text, variables or VARS, origin=ORIGIN)  # type: ignore[arg-type]
    return info.value


def test_syntax_error_names_file_type_algorithm_line_and_column() -> None:
    """A syntax error reports the file, FB type, algorithm and the offset line/column."""
    err = error_of("X := 1;\nX := ;")
    assert err.location is not None
    assert (err.location.file, err.location.line, err.location.column) == (
        "types/MyFB.fbt", 42, 6)
    assert "MyFB, algorithm REQ" in str(err)
    assert "syntax error: unexpected ';'" in str(err)


def test_missing_semicolon_and_unterminated_block() -> None:
    """A missing END_IF and a missing semicolon are syntax errors with a position or EOF."""
    assert "unexpected end of text" in str(error_of("IF Q THEN X := 1;"))
    err = error_of("X := 1\nQ := TRUE;")
    assert err.location is not None
    assert err.location.line == 42


def test_unknown_variable_suggests_close_names() -> None:
    """An unknown variable is reported with its position and the nearest declared names."""
    err = error_of("X := XX + 1;")
    assert "unknown variable 'XX'; did you mean X?" in str(err)
    assert err.location is not None
    assert (err.location.line, err.location.column) == (41, 6)


def test_unknown_function_and_bad_arguments() -> None:
    """Unknown functions, unknown named parameters and missing arguments are compile errors."""
    assert "unknown function 'FOO'" in str(error_of("X := FOO(1);"))
    assert "LIMIT has no parameter 'XX'" in str(error_of("X := LIMIT(MN := 0, XX := 1, MX := 2);"))
    assert "SEL needs argument(s) IN1" in str(error_of("X := SEL(Q, 1);"))


def test_semantic_errors_in_statements() -> None:
    """EXIT outside loops, assignment to constants, bad CASE labels and FOR steps are errors."""
    assert "EXIT outside a loop" in str(error_of("EXIT;"))
    assert "cannot assign to constant 'k'" in str(
        error_of("VAR CONSTANT k : INT := 1; END_VAR k := 2;"))
    duplicate = error_of("CASE X OF 1: X := 1; 1: X := 2; END_CASE;")
    assert "CASE label 1 appears twice" in str(duplicate)
    assert "FOR step of 0" in str(error_of("FOR X := 1 TO 2 BY 0 DO END_FOR;"))
    assert "an IF condition must be BOOL, not INT" in str(error_of("IF X THEN END_IF;"))


def test_bad_literal_is_reported_at_the_literal() -> None:
    """An invalid typed literal (TOD#06:06:66) fails at compile time at its position."""
    err = error_of("X := 1; T := TOD#06:06:66;", {"X": INT, "T": elementary("TOD")})
    assert "bad literal TOD#06:06:66" in str(err)
    assert err.location is not None
    assert err.location.column == 14


def test_guard_errors_name_the_guard() -> None:
    """Guard errors say 'ECC guard' instead of an algorithm name."""
    with pytest.raises(STCompileError, match=r"MyFB, ECC guard\): unknown variable 'Y'"):
        compile_guard("Y > 1", VARS, origin=STOrigin("types/MyFB.fbt", "MyFB", None))


# ---- derived types ------------------------------------------------------------------------


def test_array_type_defaults_coerce_and_spelling() -> None:
    """ArrayType.new gives defaults; coerce pads and wraps elements; bad shapes are rejected."""
    arr = ArrayType(INT, ((1, 3),))
    assert arr.new() == [0, 0, 0]
    assert arr.coerce([70000]) == [4464, 0, 0]
    assert arr.spelling == "ARRAY[1..3] OF INT"
    with pytest.raises(ValueError, match="do not fit"):
        arr.coerce([1, 2, 3, 4])
    grid = ArrayType(BOOL, ((0, 1), (0, 1)))
    assert grid.new() == [[False, False], [False, False]]


def test_struct_values_copy_and_compare_by_value() -> None:
    """StructType values take initial values, copy deeply and compare member-wise."""
    inner = ArrayType(INT, ((0, 1),))
    point = StructType("POINT", (("x", INT, 3), ("tags", inner, None)))
    a = point.new()
    b = point.coerce(a)
    assert a == b
    assert a is not b
    b.tags[0] = 5  # type: ignore[attr-defined]
    assert a != b
    assert a.tags == [0, 0]  # type: ignore[attr-defined]
    assert repr(a) == "POINT(x=3, tags=[0, 0])"
    with pytest.raises(ValueError, match="twice"):
        StructType("BAD", (("a", INT, None), ("A", INT, None)))


# ---- properties -----------------------------------------------------------------------------

SIGNED = {"SINT": 8, "INT": 16, "DINT": 32, "LINT": 64}
UNSIGNED = {"USINT": 8, "UINT": 16, "UDINT": 32, "ULINT": 64}


def _wrap(value: int, type_name: str) -> int:
    bits = SIGNED.get(type_name) or UNSIGNED[type_name]
    value &= (1 << bits) - 1
    if type_name in SIGNED and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


@st.composite
def typed_operands(draw: st.DrawFn) -> tuple[str, int, int, str]:
    type_name = draw(st.sampled_from(sorted(SIGNED | UNSIGNED)))
    t = elementary(type_name)
    a = draw(st.integers(t.min, t.max))
    b = draw(st.integers(t.min, t.max))
    op = draw(st.sampled_from(["+", "-", "*", "/", "MOD"]))
    return type_name, a, b, op


def _model(a: int, b: int, op: str) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return 0 if b == 0 else int(abs(a) // abs(b)) * (1 if (a < 0) == (b < 0) else -1)
    return 0 if b == 0 else (abs(a) % abs(b)) * (1 if a >= 0 else -1)


_CACHE: dict[tuple[str, str], object] = {}


def _compiled(type_name: str, op: str) -> object:
    key = (type_name, op)
    if key not in _CACHE:
        t = elementary(type_name)
        _CACHE[key] = make_function(compile_algorithm(
            f"C := A {op} B;", {"A": t, "B": t, "C": t}, origin=STOrigin(None, "P", "A")))
    return _CACHE[key]


@settings(max_examples=400, deadline=None)
@given(typed_operands())
def test_integer_arithmetic_wraps_like_the_reference_model(case: tuple[str, int, int, str]) -> None:
    """A op B assigned to a typed integer equals the exact result wrapped to the type."""
    type_name, a, b, op = case
    t = elementary(type_name)
    inst = Instance.for_variables({"A": t, "B": t, "C": t}, A=a, B=b)
    _compiled(type_name, op)(inst)  # type: ignore[operator]
    assert _wrap(_model(a, b, op), type_name) == inst.C  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**70), 2**70), st.integers(-(2**70), 2**70))
def test_div_and_mod_helpers_truncate_like_c(a: int, b: int) -> None:
    """div_int/mod_int truncate toward zero and satisfy a = b*q + r (0 for b = 0)."""
    q, r = div_int(a, b), mod_int(a, b)
    if b == 0:
        assert (q, r) == (0, 0)
    else:
        assert a == b * q + r
        assert abs(r) < abs(b)
        assert r == 0 or (r < 0) == (a < 0)


NUMERIC = ["SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT", "BYTE", "WORD",
           "DWORD", "LWORD", "REAL", "LREAL", "BOOL"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NUMERIC), st.sampled_from(NUMERIC), st.data())
def test_inline_conversions_agree_with_types_convert(src_name: str, dst_name: str,
                                                     data: st.DataObject) -> None:
    """Every X_TO_Y the compiler inlines gives exactly what testbed.types.convert gives."""
    src, dst = elementary(src_name), elementary(dst_name)
    if src.kind.name == "REAL":
        value: object = src.coerce(data.draw(st.floats(-1e9, 1e9, allow_nan=False)))
    elif src_name == "BOOL":
        value = data.draw(st.booleans())
    else:
        value = data.draw(st.integers(src.min, src.max))
    inst = run_algorithm(f"B := {src_name}_TO_{dst_name}(A);", {"A": src, "B": dst}, A=value)
    assert convert(value, src, dst) == inst.B  # type: ignore[attr-defined]
