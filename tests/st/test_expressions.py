"""ST expressions: IEC precedence, typing, wrap-around, division, strings, conversions, guards."""

from __future__ import annotations

import math
from typing import Any

import pytest

from testbed.errors import STCompileError
from testbed.st import STOrigin, compile_algorithm, compile_guard
from testbed.st.testing import Instance, evaluate_guard, run_algorithm
from testbed.types import elementary

T = {n: elementary(n) for n in ("BOOL", "SINT", "INT", "DINT", "LINT", "USINT", "UINT",
                                "UDINT", "BYTE", "WORD", "REAL", "LREAL", "STRING", "TIME",
                                "WSTRING")}
ORIGIN = STOrigin("lib/FB.fbt", "FB", "ALG")


def value_of(expr: str, target: str, **inputs: tuple[str, object]) -> Any:
    """Assign `expr` to a variable OUT of type `target`; inputs are name=(type, value)."""
    variables = {"OUT": T[target], **{k: T[t] for k, (t, _) in inputs.items()}}
    values = {k: v for k, (_, v) in inputs.items()}
    return run_algorithm(f"OUT := {expr};", variables, **values).OUT  # type: ignore[attr-defined]


@pytest.mark.parametrize(("expr", "expected"), [
    ("2 + 3 * 4", 14),
    ("(2 + 3) * 4", 20),
    ("-2 ** 2", -4),  # ** binds tighter than unary minus
    ("2 ** 3 ** 2", 64),  # left-associative, as IEC
    ("10 - 4 - 3", 3),
    ("17 MOD 5 * 2", 4),
    ("-7 / 2", -3),  # truncation toward zero
    ("-7 MOD 2", -1),  # sign of the dividend
    ("7 / 0", 0),  # FORTE: division by zero yields 0
    ("7 MOD 0", 0),
])
def test_integer_arithmetic_follows_iec_precedence(expr: str, expected: int) -> None:
    """Operators bind as IEC 61131-3 Table 71 says and integer division truncates."""
    assert value_of(expr if "**" not in expr else expr.replace("2 **", "2.0 **"), "LREAL"
                    if "**" in expr else "DINT") == expected


@pytest.mark.parametrize(("expr", "expected"), [
    ("A OR B AND C", True),   # AND before OR
    ("NOT A AND B", False),   # NOT before AND
    ("A XOR B OR C", True),
    ("A = B = C", False),      # (A = B) = C: not a Python chain
    ("1 < 2 = TRUE", True),
    ("A & B", False),
])
def test_boolean_precedence(expr: str, expected: bool) -> None:
    """Boolean operators and comparison chains evaluate as IEC, not as Python chains."""
    variables = {"A": ("BOOL", True), "B": ("BOOL", False), "C": ("BOOL", True)}
    assert value_of(expr, "BOOL", **variables) is expected


def test_assignment_wraps_to_the_destination_type() -> None:
    """Integer results wrap like two's complement on assignment (INT, UINT, SINT, USINT)."""
    assert value_of("X + 1", "INT", X=("INT", 32767)) == -32768
    assert value_of("X - 1", "UINT", X=("UINT", 0)) == 65535
    assert value_of("X * 2", "SINT", X=("SINT", 100)) == -56
    assert value_of("X + 10", "USINT", X=("USINT", 250)) == 4


def test_intermediate_integer_results_are_exact() -> None:
    """Intermediates are not wrapped: (X + 1) / 2 for X = 32767 is 16384 before assignment."""
    assert value_of("(X + 1) / 2", "DINT", X=("INT", 32767)) == 16384


def test_real_and_integer_division() -> None:
    """`/` divides reals as reals (with IEEE zero division) and integers by truncation."""
    assert value_of("A / B", "LREAL", A=("LREAL", 7.0), B=("LREAL", 2.0)) == 3.5
    assert value_of("A / B", "LREAL", A=("LREAL", 1.0), B=("LREAL", 0.0)) == math.inf
    assert math.isnan(value_of("A / B", "LREAL", A=("LREAL", 0.0), B=("LREAL", 0.0)))
    assert value_of("A / B", "DINT", A=("DINT", -9), B=("DINT", 4)) == -2
    assert value_of("A / B", "DINT", A=("DINT", 9), B=("DINT", 0)) == 0


def test_real_assignment_rounds_to_binary32() -> None:
    """A REAL variable holds the binary32 value; LREAL keeps double precision."""
    assert value_of("0.1", "REAL") == 0.10000000149011612
    assert value_of("0.1", "LREAL") == 0.1
    assert value_of("A * 3.0", "REAL", A=("REAL", 0.1)) == pytest.approx(0.3, rel=1e-7)


def test_bool_logic_and_bitwise_logic() -> None:
    """AND/OR/XOR/NOT are logical on BOOL and bitwise on ANY_BIT."""
    assert value_of("A AND NOT B", "BOOL", A=("BOOL", True), B=("BOOL", False)) is True
    assert value_of("A XOR B", "BYTE", A=("BYTE", 0xF0), B=("BYTE", 0xFF)) == 0x0F
    assert value_of("NOT A", "WORD", A=("WORD", 1)) == 0xFFFE
    assert value_of("A OR 16#0F", "BYTE", A=("BYTE", 0xF0)) == 0xFF


def test_implicit_widening_is_allowed() -> None:
    """INT widens to DINT and REAL, UINT to DINT, BYTE to WORD, REAL to LREAL, INT + 1.5 is REAL."""
    assert value_of("A + 1.5", "REAL", A=("INT", 1)) == 2.5
    assert value_of("A + B", "DINT", A=("INT", -5), B=("UINT", 60000)) == 59995
    assert value_of("A", "REAL", A=("INT", -5)) == -5.0
    assert value_of("A", "WORD", A=("BYTE", 7)) == 7
    assert value_of("A", "LREAL", A=("REAL", 0.5)) == 0.5


@pytest.mark.parametrize(("expr", "target", "inputs", "message"), [
    ("S", "INT", {"S": ("STRING", "x")}, "cannot assign STRING to variable OUT of type INT"),
    ("A", "INT", {"A": ("DINT", 1)}, "use DINT_TO_INT"),
    ("A", "INT", {"A": ("REAL", 1.0)}, "use REAL_TO_INT"),
    ("A + 1.5", "LREAL", {"A": ("LINT", 1)},
     "no implicit conversion between LINT and an untyped real"),
    ("A + B", "DINT", {"A": ("INT", 1), "B": ("WORD", 1)}, "operator + needs numbers"),
    ("A AND B", "BOOL", {"A": ("INT", 1), "B": ("INT", 1)}, "AND needs two BOOL or two ANY_BIT"),
    ("70000", "INT", {}, "70000 is out of range for variable OUT of type INT [-32768..32767]"),
    ("A MOD B", "LREAL", {"A": ("LREAL", 1.0), "B": ("LREAL", 1.0)}, "MOD needs integer"),
    ("S < W", "BOOL", {"S": ("STRING", ""), "W": ("WSTRING", "")}, "cannot compare STRING"),
])
def test_type_errors_are_compile_errors(expr: str, target: str,
                                        inputs: dict[str, tuple[str, object]],
                                        message: str) -> None:
    """Type mismatches fail at compile time with a message that names the types."""
    with pytest.raises(STCompileError) as info:
        value_of(expr, target, **inputs)
    assert message in str(info.value)


def test_typed_literals() -> None:
    """Typed and based literals, durations and escaped strings have their IEC values."""
    assert value_of("16#FF + 2#1010", "DINT") == 265
    assert value_of("DINT#-26", "DINT") == -26
    assert value_of("T#1s500ms + TIME#2ms", "TIME") == 1_502_000_000
    assert value_of("'it$'s$N'", "STRING") == "it's\n"
    assert value_of("REAL#1.5", "REAL") == 1.5
    assert value_of("TRUE", "BOOL") is True


def test_string_functions() -> None:
    """LEN, LEFT, RIGHT, MID, CONCAT, INSERT, DELETE, REPLACE and FIND (1-based positions)."""
    s = ("STRING", "Hello World")
    assert value_of("LEN(S)", "INT", S=s) == 11
    assert value_of("LEFT(S, 5)", "STRING", S=s) == "Hello"
    assert value_of("RIGHT(IN := S, L := 5)", "STRING", S=s) == "World"
    assert value_of("MID(S, 3, 2)", "STRING", S=s) == "ell"  # L = 3 characters from P = 2
    assert value_of("CONCAT(S, '!', '?')", "STRING", S=s) == "Hello World!?"
    assert value_of("INSERT(S, ',', 5)", "STRING", S=s) == "Hello, World"
    assert value_of("DELETE(S, 6, 6)", "STRING", S=s) == "Hello"
    assert value_of("REPLACE(S, 'J', 1, 1)", "STRING", S=s) == "Jello World"
    assert value_of("FIND(S, 'World')", "INT", S=s) == 7
    assert value_of("FIND(S, 'x')", "INT", S=s) == 0


def test_numeric_and_selection_functions() -> None:
    """MAX/MIN/LIMIT/SEL/MUX/ABS/SQRT/EXPT and the comparison functions."""
    assert value_of("MAX(A, 3, -1)", "INT", A=("INT", 2)) == 3
    assert value_of("LIMIT(0, A, 10)", "INT", A=("INT", 12)) == 10
    assert value_of("SEL(G := B, IN0 := 1, IN1 := 2)", "INT", B=("BOOL", True)) == 2
    assert value_of("MUX(A, 10, 20, 30)", "INT", A=("INT", 2)) == 30
    assert value_of("ABS(A)", "INT", A=("INT", -4)) == 4
    assert value_of("SQRT(A)", "REAL", A=("REAL", 16.0)) == 4.0
    assert math.isnan(value_of("SQRT(A)", "LREAL", A=("LREAL", -1.0)))
    assert value_of("EXPT(A, 2)", "LREAL", A=("LREAL", 3.0)) == 9.0
    assert value_of("GT(3, A, 1)", "BOOL", A=("INT", 2)) is True
    assert value_of("ADD(A, 1, 2)", "INT", A=("INT", 2)) == 5
    assert value_of("NE(A, 2)", "BOOL", A=("INT", 2)) is False


def test_shift_and_rotate() -> None:
    """SHL/SHR shift within the type width; ROL/ROR rotate."""
    assert value_of("SHL(A, 4)", "BYTE", A=("BYTE", 0x81)) == 0x10
    assert value_of("SHR(A, N)", "BYTE", A=("BYTE", 0x81), N=("INT", 7)) == 1
    assert value_of("ROL(A, 1)", "BYTE", A=("BYTE", 0x81)) == 0x03
    assert value_of("ROR(A, 1)", "WORD", A=("WORD", 1)) == 0x8000


def test_conversions() -> None:
    """X_TO_Y conversions: wrap on narrowing, round half away for REAL, BCD, TRUNC, strings."""
    assert value_of("DINT_TO_INT(A)", "INT", A=("DINT", 70000)) == 4464
    assert value_of("REAL_TO_INT(A)", "INT", A=("REAL", 2.5)) == 3
    assert value_of("REAL_TO_INT(A)", "INT", A=("REAL", -2.5)) == -3
    assert value_of("TRUNC(A)", "INT", A=("REAL", -2.7)) == -2
    assert value_of("REAL_TRUNC_INT(A)", "INT", A=("REAL", 2.7)) == 2
    assert value_of("INT_TO_STRING(A)", "STRING", A=("INT", -12)) == "-12"
    assert value_of("STRING_TO_INT(S)", "INT", S=("STRING", "42")) == 42
    assert value_of("WORD_BCD_TO_UINT(A)", "UINT", A=("WORD", 0x1234)) == 1234
    assert value_of("UINT_TO_BCD_WORD(A)", "WORD", A=("UINT", 1234)) == 0x1234
    assert value_of("BOOL_TO_INT(B)", "INT", B=("BOOL", True)) == 1
    assert value_of("TIME_TO_DINT(A)", "DINT", A=("TIME", 1_500_000_000)) == 1500
    assert value_of("TIME_IN_MS_TO_LREAL(A)", "LREAL", A=("TIME", 1_500_000)) == 1.5
    assert value_of("TO_DINT(A)", "DINT", A=("INT", 5)) == 5


def test_guards_compile_to_boolean_expressions() -> None:
    """A guard is one Python expression; it must be BOOL."""
    variables = {"CV": T["UINT"], "N": T["UINT"], "G": T["BOOL"]}
    inst = Instance.for_variables(variables, CV=1, N=5)
    assert evaluate_guard("CV < MIN(3, N - 1)", variables, inst) is True
    assert evaluate_guard("NOT G", variables, inst) is True
    code = compile_guard("(CV<65535)", variables, origin=ORIGIN)
    assert "self.CV" in code
    with pytest.raises(STCompileError, match="a transition condition must be BOOL, not UINT"):
        compile_guard("CV + 1", variables, origin=ORIGIN)


def test_generated_code_is_inline_for_plain_arithmetic() -> None:
    """Plain typed arithmetic needs no helper call: only a wrap mask on assignment."""
    compiled = compile_algorithm("CV := CV + 1;", {"CV": T["UINT"]}, origin=ORIGIN)
    assert compiled.lines == ("self.CV = ((self.CV + 1) & 65535)",)
    compiled = compile_algorithm("Q := A AND B;", {k: T["BOOL"] for k in "QAB"}, origin=ORIGIN)
    assert compiled.lines == ("self.Q = (self.A and self.B)",)
