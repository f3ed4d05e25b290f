"""ST statements compiled to Python and run on a stand-in FB instance."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.errors import RuntimeFault
from testbed.st import STOrigin, compile_algorithm
from testbed.st.testing import Instance, run_algorithm
from testbed.types import ArrayType, StructType, elementary

INT, DINT, UINT, BOOL = (elementary(n) for n in ("INT", "DINT", "UINT", "BOOL"))
REAL, STRING = elementary("REAL"), elementary("STRING")
VARS = {"X": DINT, "Y": DINT, "K": DINT, "N": INT, "Q": BOOL, "S": STRING, "R": REAL, "U": UINT}


def run(text: str, **values: object) -> Any:
    return run_algorithm(text, VARS, **values)


def test_if_elsif_else_takes_the_first_true_branch() -> None:
    """IF/ELSIF/ELSE runs exactly the first branch whose condition holds."""
    text = "IF X > 10 THEN Y := 1; ELSIF X > 5 THEN Y := 2; ELSE Y := 3; END_IF;"
    assert [run(text, X=x).Y for x in (11, 7, 0)] == [1, 2, 3]


def test_case_values_ranges_lists_and_else() -> None:
    """CASE matches single values, ranges and lists, with ELSE for the rest."""
    text = """CASE X OF
        1: Y := 10;
        2..4, 8: Y := 20;
        -3: Y := 30;
      ELSE Y := 99;
      END_CASE;"""
    assert [run(text, X=x).Y for x in (1, 3, 8, -3, 5)] == [10, 20, 20, 30, 99]


def test_case_selector_is_evaluated_once() -> None:
    """A computed CASE selector is bound to a temporary, so branches see the old value."""
    text = "CASE X + 1 OF 1: X := 5; 6: X := 100; END_CASE;"
    assert run(text, X=0).X == 5


def test_for_with_negative_step_and_bounds_evaluated_once() -> None:
    """FOR evaluates its end bound once, counts down with BY -1 and writes the variable back."""
    text = "FOR K := 3 TO Y BY -1 DO X := X * 10 + K; Y := 100; END_FOR;"
    inst = run(text, Y=1)
    assert (inst.X, inst.K) == (321, 0)


def test_for_exit_keeps_the_current_value_and_continue_still_steps() -> None:
    """EXIT leaves the loop variable where it was; CONTINUE skips the rest but still steps."""
    inst = run("FOR K := 1 TO 10 DO IF K = 4 THEN EXIT; END_IF; X := X + K; END_FOR;")
    assert (inst.X, inst.K) == (6, 4)
    inst = run("FOR K := 1 TO 5 DO IF K MOD 2 = 0 THEN CONTINUE; END_IF; X := X + K; END_FOR;")
    assert (inst.X, inst.K) == (9, 6)


def test_for_with_variable_step() -> None:
    """A non-constant BY is read once; a positive step counts up."""
    inst = run("FOR K := 0 TO 10 BY Y DO X := X + 1; END_FOR;", Y=5)
    assert (inst.X, inst.K) == (3, 15)


def test_while_and_repeat() -> None:
    """WHILE tests first; REPEAT runs its body at least once and stops when UNTIL holds."""
    assert run("WHILE X < 0 DO X := X + 1; END_WHILE;", X=5).X == 5
    assert run("REPEAT X := X + 1; UNTIL X > 0 END_REPEAT;", X=5).X == 6


def test_continue_in_repeat_still_checks_until() -> None:
    """CONTINUE inside REPEAT jumps to the UNTIL test instead of looping forever."""
    inst = run("REPEAT X := X + 1; IF X > 2 THEN CONTINUE; END_IF; Y := Y + 1; "
               "UNTIL X >= 5 END_REPEAT;")
    assert (inst.X, inst.Y) == (5, 2)


def test_exit_leaves_only_the_innermost_loop() -> None:
    """EXIT in a nested loop ends that loop; the outer one continues."""
    text = """FOR N := 1 TO 3 DO
        WHILE TRUE DO Y := Y + 1; EXIT; END_WHILE;
      END_FOR;"""
    assert run(text).Y == 3


def test_return_is_reported_and_stops_the_algorithm() -> None:
    """RETURN sets uses_return and ends the algorithm early."""
    compiled = compile_algorithm("X := 1; IF Q THEN RETURN; END_IF; X := 2;", VARS,
                                 origin=STOrigin(None, "T", "A"))
    assert compiled.uses_return
    assert run("X := 1; IF Q THEN RETURN; END_IF; X := 2;", Q=True).X == 1


def test_local_var_blocks_initialise_on_every_run() -> None:
    """VAR/VAR_TEMP locals start from their initial values each time the algorithm runs."""
    text = """VAR_TEMP t : DINT := 7; END_VAR
              VAR CONSTANT three : DINT := 3; END_VAR
              t := t + three; X := X + t;"""
    inst = Instance.for_variables(VARS)
    run_algorithm(text, VARS, inst)
    run_algorithm(text, VARS, inst)
    assert inst.X == 20  # type: ignore[attr-defined]


def test_case_insensitive_identifiers_and_keywords() -> None:
    """`x` resolves to the declared `X`; keywords may be written in any case."""
    assert run("if x < 1 then y := 2; End_If;").Y == 2


def test_comments_and_pragmas_are_ignored() -> None:
    """Nested (* *), /* */ and // comments and {pragmas} do not affect the code."""
    text = """(* outer (* inner *) still comment *) X := 1; // trailing
              {attribute 'x'} /* block */ Y := 2;"""
    inst = run(text)
    assert (inst.X, inst.Y) == (1, 2)


def test_arrays_are_checked_and_zero_based_internally() -> None:
    """ARRAY[1..3] maps index 1 to the first element; out-of-range indices raise RuntimeFault."""
    arr = ArrayType(INT, ((1, 3),))
    variables = {"A": arr, "I": INT}
    inst = run_algorithm("A[1] := 5; A[I] := 7;", variables, I=3)
    assert inst.A == [5, 0, 7]  # type: ignore[attr-defined]
    with pytest.raises(RuntimeFault, match=r"array index 0 outside bounds \[1..3\]"):
        run_algorithm("A[I] := 1;", variables, I=0)
    with pytest.raises(RuntimeFault):
        run_algorithm("A[I + 3] := 1;", variables, I=1)


def test_multi_dimensional_array_and_local_array_initialiser() -> None:
    """ARRAY[0..1, 0..2] is indexed with two subscripts; `[1, 2(5)]` repeats values."""
    grid = ArrayType(DINT, ((0, 1), (0, 2)))
    text = """VAR t : ARRAY[0..3] OF DINT := [1, 2(5)]; END_VAR
              G[1, 2] := t[0] + t[2] + t[3];"""
    inst = run_algorithm(text, {"G": grid})
    assert inst.G == [[0, 0, 0], [0, 0, 6]]  # type: ignore[attr-defined]


def test_array_and_struct_assignment_copies_by_value() -> None:
    """Assigning an ARRAY or STRUCT copies it; later changes do not alias."""
    point = StructType("POINT", (("x", INT, None), ("y", INT, 4)))
    arr = ArrayType(INT, ((0, 1),))
    variables = {"A": arr, "B": arr, "P": point, "P2": point}
    inst = run_algorithm("B := A; A[0] := 9; P2 := P; P.x := 3; P2.Y := P2.y + 1;", variables)
    assert (inst.B, inst.A) == ([0, 0], [9, 0])  # type: ignore[attr-defined]
    assert (inst.P.x, inst.P2.x, inst.P2.y) == (3, 0, 5)  # type: ignore[attr-defined]


def test_nested_struct_and_array_of_struct_members() -> None:
    """Member access chains through nested STRUCTs and arrays of STRUCTs."""
    inner = StructType("INNER", (("v", DINT, None),))
    outer = StructType("OUTER", (("items", ArrayType(inner, ((0, 2),)), None),
                                 ("total", DINT, None)))
    text = """FOR I := 0 TO 2 DO O.items[I].v := I * 10; END_FOR;
              O.total := O.items[1].v + O.items[2].v;"""
    inst = run_algorithm(text, {"O": outer, "I": INT})
    assert inst.O.total == 30  # type: ignore[attr-defined]


def test_local_struct_variable_uses_the_published_constants() -> None:
    """A STRUCT declared in a local VAR block is built through CompiledAlgorithm.constants."""
    point = StructType("POINT", (("x", INT, None), ("y", INT, 4)))
    compiled = compile_algorithm("VAR p : POINT := (x := 2); END_VAR X := p.x + p.y;", VARS,
                                 origin=STOrigin(None, "T", "A"), data_types={"POINT": point})
    assert [v for _, v in compiled.constants] == [point.value_class]
    inst = run_algorithm("X := 1;", VARS)
    from testbed.st.testing import make_function

    make_function(compiled)(inst)
    assert inst.X == 6


def test_bit_access_reads_and_writes_single_bits() -> None:
    """`x.3` and `x.%X3` read one bit; assigning to a bit sets or clears only that bit."""
    variables = {"W": elementary("WORD"), "Q": BOOL, "N": INT}
    inst = run_algorithm("Q := W.%X3; W.0 := TRUE; W.3 := FALSE; N.15 := TRUE;",
                         variables, W=0b1000)
    assert (inst.Q, inst.W, inst.N) == (True, 1, -32768)  # type: ignore[attr-defined]
