"""Every basic, simple and composite .fbt of the 4diac material loads and compiles.

The exceptions are listed in EXCLUDED with the reason; the test checks each still fails for
that reason, so a runtime change that makes one load (adapters, say) shows up here.
Loaded types then run next to the native ones and must behave the same.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared_material import shared_path
from testbed.bench.events import run_event_loop
from testbed.fourdiac.dtp import read_dtp, resolve_data_types
from testbed.fourdiac.sysfile import read_sub
from testbed.fourdiac.typelib import LoadReport, load_type_dirs
from testbed.library import TypeLibrary
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer

pytestmark = pytest.mark.conformance

# (directory under ../shared/4diac, type name) -> a fragment of the expected error
EXCLUDED: dict[tuple[str, str], str] = {
    # not valid IEC 61131-3 (as documented by the ST compiler's own conformance test)
    ("examples/SystemTests", "DataTypesBitStrings"): "cannot assign BOOL to variable BOOL_O",
    ("examples/SystemTests", "DataTypesTime"): "bad literal TOD#06:06:66",
    ("examples/SystemTests", "OperatorArithmetic"): "MOD needs integer operands, not REAL",
    ("examples/SystemTests", "Functions"): "cannot assign REAL to variable I of type INT",
    ("examples/SystemTests", "ExistingAdapter2"): "TestAdapter",  # guard [TestAdapter.CNF]
    # algorithms in other languages than ST, or FBDK-only data types
    ("typelib", "FB_RANDOM"): "written in AnyText",
    ("examples/SystemTests", "E_LDU"): "unknown data type 'VSTYLE'",
}
# Basic FBs driving plugs/sockets from their ECC: they compile once the runtime executes
# adapters; before that they fail on the adapter's events or data, and nothing else.
ADAPTER_FBS = frozenset({"AdapterTransition", "AdapterTransition2", "ExistingAdapter",
                         "NewAdapter", "NewAdapter2", "TestBoolAdapter", "TestBoolAdapter2",
                         "TestSocketAndPlug", "TestSocketAndPlug_Socket"})
ADAPTER_REASONS = ("adapter", "unknown event", "unknown variable")


def _load(rel: str) -> tuple[TypeLibrary, LoadReport]:
    lib = TypeLibrary.with_native_types()
    report = load_type_dirs(lib, [shared_path("4diac", *rel.split("/"))], override=True,
                            on_error="exclude")
    return lib, report


@pytest.mark.parametrize("rel", ["typelib", "examples/SystemTests"])
def test_every_basic_simple_and_composite_type_compiles(rel: str) -> None:
    """All executable .fbt types compile at load; the listed exclusions fail for their reason."""
    root = shared_path("4diac", *rel.split("/"))
    _, report = _load(rel)
    excluded = {e.name: e.reason for e in report.excluded}
    expected = {name: frag for (d, name), frag in EXCLUDED.items() if d == rel}
    for name in set(excluded) & ADAPTER_FBS:
        assert any(r in excluded.pop(name) for r in ADAPTER_REASONS), name
    assert set(excluded) == set(expected), excluded
    for name, fragment in expected.items():
        assert fragment in excluded[name], (name, excluded[name])
        assert str(root) in excluded[name]  # the reason names the file
    bodies = {"BasicFB": 0, "SimpleFB": 0, "FBNetwork": 0}
    for path in root.rglob("*.fbt"):
        text = path.read_text(encoding="utf-8", errors="replace")
        kind = next((k for k in bodies if f"<{k}" in text), None)
        if kind is not None:
            bodies[kind] += 1
    loaded = len(report.basic) + len(report.simple) + len(report.composite)
    assert loaded + len(report.excluded) == sum(bodies.values())
    assert set(report.compiled) == {*report.basic, *report.simple, *report.composite}
    assert len(report.adapter) == len(list(root.rglob("*.adp")))


def test_exclusion_list_names_existing_files() -> None:
    """7 exclusions (5 non-IEC ST, 2 non-ST), each naming a real .fbt; 9 adapter-driven FBs."""
    assert len(EXCLUDED) == 7
    assert len(ADAPTER_FBS) == 9
    for rel, name in [*EXCLUDED, *(("examples/SystemTests", n) for n in ADAPTER_FBS)]:
        root = shared_path("4diac", *rel.split("/"))
        assert list(root.rglob(f"{name}.fbt")), (rel, name)


def test_structured_types_and_subapps_parse() -> None:
    """Every .dtp and .sub of the 4diac examples reads; structs resolve across the tree."""
    root = shared_path("4diac", "examples", "structured-types")
    specs = [read_dtp(p) for p in sorted(root.rglob("*.dtp"))]
    assert len(specs) == 12
    # ArrowheadSystem.dtp declares Name="ArrowheadService": 4diac IDE goes by the file name
    specs = [replace(s, name=Path(s.file).stem) for s in specs]
    structs = resolve_data_types(specs)
    subs = {p.stem: read_sub(p, structs) for p in sorted(root.rglob("*.sub"))}
    assert len(subs) == 13
    assert all(s.kind == "subapp" and (s.network.instances or s.network.event_connections)
               for s in subs.values())
    lib = TypeLibrary.with_native_types()
    report = load_type_dirs(lib, [root])
    assert len(report.datatype) == 12
    assert len(report.subapp) == 13
    orch = report.data_types["OrchestrationForm"]
    assert orch.member("provider")[1] is report.data_types["ArrowheadSystem"]  # type: ignore[union-attr]


# --- behaviour of loaded types against the native ones --------------------------------


class _Fired(Tracer):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_emit(self, fb: FBInstance, event: str) -> None:
        self.events.append((fb.name, event))


def _run(lib: TypeLibrary, type_name: str, script: list[tuple[str, dict[str, str]]],
         outputs: tuple[str, ...]) -> list[tuple[list[str], dict[str, object]]]:
    device = Device("t", library=lib, clock=VirtualClock())
    device.console = lambda _t: None
    res: Resource = device.create_resource("R")
    fb = res.create_fb("UT", type_name)
    fired = _Fired()
    res.add_tracer(fired)
    res.start()
    res.run_until_idle()
    trace: list[tuple[list[str], dict[str, object]]] = []
    for event, params in script:
        for pin, text in params.items():
            res.write_parameter(f"UT.{pin}", text)
        start = len(fired.events)
        res.inject(f"UT.{event}")
        res.run_until_idle()
        trace.append(([e for n, e in fired.events[start:] if n == "UT"],
                      {o: fb.get(o) for o in outputs}))
    return trace


SCRIPTS: dict[str, tuple[list[tuple[str, dict[str, str]]], tuple[str, ...]]] = {
    "E_CTU": ([("CU", {"PV": "2"}), ("CU", {}), ("CU", {}), ("R", {}), ("CU", {})], ("Q", "CV")),
    "E_SWITCH": ([("EI", {"G": "TRUE"}), ("EI", {"G": "FALSE"})], ()),
    "E_SR": ([("S", {}), ("S", {}), ("R", {}), ("R", {}), ("S", {})], ("Q",)),
    "E_DEMUX": ([("EI", {"K": "2"}), ("EI", {"K": "0"}), ("EI", {"K": "7"})], ()),
    "E_CTUD": ([("CU", {"PV": "2"}), ("CU", {}), ("CD", {}), ("LD", {}), ("R", {})],
               ("QU", "QD", "CV")),
    "E_PERMIT": ([("EI", {"PERMIT": "FALSE"}), ("EI", {"PERMIT": "TRUE"})], ()),
    "E_R_TRIG": ([("EI", {"QI": "FALSE"}), ("EI", {"QI": "TRUE"}), ("EI", {"QI": "TRUE"})], ()),
}


@pytest.mark.parametrize("type_name", sorted(SCRIPTS))
def test_loaded_event_fbs_behave_like_the_native_ones(type_name: str) -> None:
    """E_CTU, E_SWITCH, E_SR, E_DEMUX, ... from .fbt fire the same events with the same data."""
    script, outputs = SCRIPTS[type_name]
    native = TypeLibrary.with_native_types()
    loaded = TypeLibrary.with_native_types()
    report = load_type_dirs(loaded, [shared_path("4diac", "typelib", "events")],
                            only={type_name}, override=True)
    assert loaded.origin(type_name).endswith(f"{type_name}.fbt"), report.summary()
    expected = _run(native, type_name, script, outputs)
    assert _run(loaded, type_name, script, outputs) == expected
    assert any(events for events, _ in expected)


def test_loaded_composite_e_cycle_ticks_on_the_virtual_clock() -> None:
    """The typelib's composite E_CYCLE (E_DELAY fed back) fires EO every DT."""
    lib = TypeLibrary.with_native_types()
    load_type_dirs(lib, [shared_path("4diac", "typelib", "events")], only={"E_CYCLE"},
                   override=True)
    assert lib.get("E_CYCLE").kind == "composite"
    clock = VirtualClock()
    device = Device("t", library=lib, clock=clock)
    res = device.create_resource("R")
    res.create_fb("C", "E_CYCLE")
    fired = _Fired()
    res.add_tracer(fired)
    res.start()
    res.run_until_idle()
    res.write_parameter("C.DT", "T#100ms")
    res.inject("C.START")
    res.run_until_idle()
    clock.advance(350_000_000)
    assert [e for n, e in fired.events if n == "C"] == ["EO"] * 3
    res.inject("C.STOP")
    res.run_until_idle()
    clock.advance(500_000_000)
    assert [e for n, e in fired.events if n == "C"] == ["EO"] * 3


def test_benchmark_loop_counts_the_same_with_loaded_types() -> None:
    """The bench boot file runs the same number of FB executions with .fbt E_CTU/E_SWITCH."""
    boot = shared_path("bench", "event_loop_26M.fboot")
    lib = TypeLibrary.with_native_types()
    report = load_type_dirs(lib, [shared_path("4diac", "typelib")], only={"E_CTU", "E_SWITCH"},
                            override=True)
    assert sorted(report.compiled) == ["E_CTU", "E_SWITCH"]
    native, _, _ = run_event_loop(boot, 2, TypeLibrary.with_native_types())
    loaded, _, _ = run_event_loop(boot, 2, lib)
    assert loaded == native == (2 - 1) * (2 * 65000 + 1) + 2 * 2 + 1

