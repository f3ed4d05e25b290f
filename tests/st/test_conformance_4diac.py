"""Every ST algorithm and ECC guard in the 4diac type library and SystemTests compiles.

Reads each `.fbt` under `../shared/4diac/typelib/` and `../shared/4diac/examples/SystemTests/`,
builds the variable map from its interface (inputs, outputs, internal variables,
ArraySize; adapters become STRUCTs of their data), and compiles every algorithm
and every transition guard. A handful of the `testfbforcodegenerator` FBs also run.
The few texts that are not valid IEC 61131-3 are listed in EXCLUDED with the reason,
and the test checks they still fail for that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from defusedxml import ElementTree

from testbed.errors import STCompileError
from testbed.st import STOrigin, compile_algorithm, compile_guard
from testbed.st.testing import Instance, guard_function, make_function
from testbed.types import ELEMENTARY, GENERIC, ArrayType, StructType, VarType

pytestmark = pytest.mark.conformance

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "4diac"
ROOTS = (SHARED / "typelib", SHARED / "examples" / "SystemTests")
CODEGEN = SHARED / "examples" / "SystemTests" / "testfbforcodegenerator"

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"4diac reference material not found at {SHARED}")

# (file relative to ../shared/4diac, algorithm name or "guard:<condition>") -> why it fails
EXCLUDED: dict[tuple[str, str], str] = {
    ("examples/SystemTests/testfbforcodegenerator/BasicFBs/DataTypesBitStrings.fbt", "Normal"):
        "cannot assign BOOL to variable BOOL_O of type SINT",
    ("examples/SystemTests/testfbforcodegenerator/BasicFBs/DataTypesBitStrings.fbt",
     "Internal"): "2147483648 is out of range for variable LWORD_O of type USINT",
    ("examples/SystemTests/testfbforcodegenerator/BasicFBs/DataTypesTime.fbt", "Internal"):
        "bad literal TOD#06:06:66",
    ("examples/SystemTests/testfbforcodegenerator/BasicFBs/OperatorArithmetic.fbt", "MOD"):
        "MOD needs integer operands, not REAL",
    ("examples/SystemTests/testfbforcodegenerator/Functions/Functions.fbt", "SQRT"):
        "cannot assign REAL to variable I of type INT",
    ("examples/SystemTests/testfbforcodegenerator/Adapters/ExistingAdapter2.fbt", "OUT"):
        "cannot assign TIME to variable O of type INT",
    ("examples/SystemTests/testfbforcodegenerator/Adapters/ExistingAdapter2.fbt",
     "guard:TestAdapter.CNF"): "unknown variable 'TestAdapter'",
}


@dataclass(slots=True)
class FbtSource:
    """The ST an .fbt holds and the variables it declares."""

    path: Path
    name: str
    variables: dict[str, VarType] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    algorithms: list[tuple[str, str]] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _adapter_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted(root.rglob("*.adp")):
            found.setdefault(path.stem, path)
    return found


def _array_dims(size: str) -> tuple[tuple[int, int], ...]:
    dims = []
    for part in size.split(","):
        part = part.strip()
        if ".." in part:
            lo, hi = part.split("..")
            dims.append((int(lo), int(hi)))
        else:
            dims.append((0, int(part) - 1))
    return tuple(dims)


def _var_type(decl: object) -> VarType | None:
    type_name = decl.get("Type", "")  # type: ignore[attr-defined]
    t: VarType | None = ELEMENTARY.get(type_name.upper()) or GENERIC.get(type_name.upper())
    if t is None:
        return None
    size = decl.get("ArraySize")  # type: ignore[attr-defined]
    return ArrayType(t, _array_dims(size)) if size else t


def _interface_vars(root: object, sections: tuple[str, ...]) -> dict[str, VarType]:
    out: dict[str, VarType] = {}
    for section in sections:
        for container in root.iter(section):  # type: ignore[attr-defined]
            for decl in container.iter("VarDeclaration"):
                t = _var_type(decl)
                if t is not None:
                    out[decl.get("Name")] = t
    return out


def read_fbt(path: Path, adapters: dict[str, Path]) -> FbtSource:
    root = ElementTree.parse(path).getroot()
    src = FbtSource(path, root.get("Name", path.stem))
    src.variables = _interface_vars(root, ("InputVars", "OutputVars", "InternalVars"))
    for ev in root.iter("EventInputs"):
        src.events.update(e.get("Name") for e in ev.iter("Event"))
    for kind in ("Plugs", "Sockets"):
        for section in root.iter(kind):
            for decl in section.iter("AdapterDeclaration"):
                name, adapter_type = decl.get("Name"), decl.get("Type")
                adp = adapters.get(adapter_type)
                if adp is None:
                    src.skipped.append(f"adapter {name}: type {adapter_type} not found")
                    continue
                adp_root = ElementTree.parse(adp).getroot()
                members = _interface_vars(adp_root, ("InputVars", "OutputVars"))
                src.variables[name] = StructType(
                    adapter_type, tuple((m, t, None) for m, t in members.items()))
                for ev in adp_root.iter("Event"):
                    src.events.add(f"{name}.{ev.get('Name')}")
    for alg in root.iter("Algorithm"):
        for st in alg.iter("ST"):
            text = st.get("Text") or st.text
            if text is not None:
                src.algorithms.append((alg.get("Name"), text))
    for tr in root.iter("ECTransition"):
        guard = split_condition(tr.get("Condition", "1"), src.events)
        if guard is not None:
            src.guards.append(guard)
    return src


def split_condition(condition: str, events: set[str]) -> str | None:
    """The guard in a condition: `1`, `EV`, `EV[guard]`, `[guard]`, `EV&guard` or `guard`."""
    text = condition.strip()
    if text in ("1", "") or text in events:
        return None
    m = re.fullmatch(r"([\w.]*)\s*\[(.*)\]", text, re.DOTALL)
    if m and (m.group(1) in events or not m.group(1)):
        return m.group(2).strip()
    m = re.fullmatch(r"([\w.]+)\s*&(.*)", text, re.DOTALL)
    if m and m.group(1) in events:
        return m.group(2).strip()
    return text


def all_sources() -> list[FbtSource]:
    adapters = _adapter_files()
    return [read_fbt(p, adapters) for root in ROOTS for p in sorted(root.rglob("*.fbt"))]


def _key(src: FbtSource, what: str) -> tuple[str, str]:
    return (str(src.path.relative_to(SHARED)), what)


@needs_shared
def test_every_algorithm_and_guard_in_the_4diac_material_compiles() -> None:
    """All ST algorithms and guards compile, except the listed non-IEC texts (which fail so)."""
    compiled_algorithms = compiled_guards = 0
    failures: dict[tuple[str, str], str] = {}
    for src in all_sources():
        for name, text in src.algorithms:
            origin = STOrigin(str(src.path), src.name, name)
            try:
                compile_algorithm(text, src.variables, origin=origin)
                compiled_algorithms += 1
            except STCompileError as exc:
                failures[_key(src, name)] = str(exc)
        for guard in src.guards:
            origin = STOrigin(str(src.path), src.name, None)
            try:
                compile_guard(guard, src.variables, origin=origin)
                compiled_guards += 1
            except STCompileError as exc:
                failures[_key(src, f"guard:{guard}")] = str(exc)
    unexpected = {k: v for k, v in failures.items() if k not in EXCLUDED}
    assert not unexpected, "\n".join(f"{k}: {v}" for k, v in unexpected.items())
    for key, reason in EXCLUDED.items():
        assert key in failures, f"{key} compiles now; drop it from EXCLUDED"
        assert reason in failures[key], failures[key]
    # The material as stored holds 122 algorithms and 35 guards; 6 + 1 are excluded above.
    assert compiled_algorithms >= 116
    assert compiled_guards >= 34


def _codegen(fb: str) -> FbtSource:
    return read_fbt(next(CODEGEN.rglob(f"{fb}.fbt")), _adapter_files())


def _run(fb: str, algorithm: str, **values: object) -> Instance:
    src = _codegen(fb)
    text = dict(src.algorithms)[algorithm]
    origin = STOrigin(str(src.path), src.name, algorithm)
    inst = Instance.for_variables(src.variables, **values)
    make_function(compile_algorithm(text, src.variables, origin=origin))(inst)
    return inst


@needs_shared
def test_codegen_for_loop_sums_and_leaves_the_variable_past_the_end() -> None:
    """LoopFOR: FOR i := 0 TO 4 adds 0..4 to O and leaves i at 5, as FORTE's C loop does."""
    inst = _run("LoopFOR", "FOR", Iterations=4)
    assert (inst.O, inst.i) == (10, 5)  # type: ignore[attr-defined]


@needs_shared
def test_codegen_while_and_repeat_loops() -> None:
    """LoopWHILE runs while i < Iterations; LoopREPEAT runs until Iterations < i."""
    w = _run("LoopWHILE", "WHILE", Iterations=4)
    assert (w.O, w.i) == (6, 4)  # type: ignore[attr-defined]
    r = _run("LoopREPEAT", "REPEAT", Iterations=3)
    assert (r.O, r.i) == (6, 4)  # type: ignore[attr-defined]


@needs_shared
def test_codegen_case_and_if_chains() -> None:
    """ConditionSWITCH_CASE picks the 10 branch or ELSE; IF_ELSEIF_ELSE falls to ELSE."""
    assert _run("ConditionSWITCH_CASE", "Switch", InputInt=10).EQ10 is True  # type: ignore[attr-defined]
    other = _run("ConditionSWITCH_CASE", "Switch", InputInt=7)
    assert (other.EQ5, other.EQ10, other.ELSEO) == (False, False, True)  # type: ignore[attr-defined]
    inst = _run("ConditionIF_ELSE", "IF_ELSEIF_ELSE", a=1, b=2, c=3)
    assert (inst.B_IF, inst.B_IF_ELSEIF, inst.B_IF_ELSE) == (False, False, True)  # type: ignore[attr-defined]


@needs_shared
def test_codegen_operators_on_their_declared_types() -> None:
    """BYTE NOT is bitwise, BOOL XOR chains, REAL division is real, INT ** is an integer power."""
    assert _run("OperatorBitwise", "NOT", A=0x0F).OUT == 0xF0  # type: ignore[attr-defined]
    assert _run("OperatorBitwise", "AND", A=0xFF, B=0x3C, C=0x0F).OUT == 0x0C  # type: ignore[attr-defined]
    assert _run("OperatorLogical", "XOR", A=True, B=True, C=True).OUT is True  # type: ignore[attr-defined]
    assert _run("OperatorArithmetic", "DIV", A=7.0, B=2.0).OUT == 3.5  # type: ignore[attr-defined]
    assert _run("OperatorRelational", "GRTEQ", A=3, B=3).OUT is True  # type: ignore[attr-defined]
    mult = _run("MultAMultE", "EXP", I=3)
    assert mult.EXP == 27  # type: ignore[attr-defined]


@needs_shared
def test_codegen_integer_limits_and_internal_counters() -> None:
    """DataTypesInteger Min stores every type's minimum; InternalVariables counts across runs."""
    inst = _run("DataTypesInteger", "Min")
    assert (inst.SINT1, inst.DINT1, inst.LINT1) == (-128, -2147483648, -(2**63))  # type: ignore[attr-defined]
    src = _codegen("InternalVariables")
    alg = make_function(compile_algorithm(dict(src.algorithms)["A_PLUS"], src.variables,
                                          origin=STOrigin(None, src.name, "A_PLUS")))
    fb = Instance.for_variables(src.variables)
    alg(fb)
    alg(fb)
    assert (fb.A_O, fb.A) == (1, 2)  # type: ignore[attr-defined]


@needs_shared
def test_typelib_e_ctu_guard_and_algorithm_agree() -> None:
    """E_CTU: the CU guard holds below 65535 and CU counts up and sets Q at PV."""
    src = read_fbt(SHARED / "typelib" / "events" / "E_CTU.fbt", _adapter_files())
    guard = guard_function(compile_guard(src.guards[0], src.variables,
                                         origin=STOrigin(None, "E_CTU", None)))
    cu = make_function(compile_algorithm(dict(src.algorithms)["CU"], src.variables,
                                         origin=STOrigin(None, "E_CTU", "CU")))
    fb = Instance.for_variables(src.variables, PV=2)
    cu(fb)
    assert (fb.CV, fb.Q, guard(fb)) == (1, False, True)  # type: ignore[attr-defined]
    cu(fb)
    assert (fb.CV, fb.Q) == (2, True)  # type: ignore[attr-defined]
    fb.CV = 65535  # type: ignore[attr-defined]
    assert guard(fb) is False
