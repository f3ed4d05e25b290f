"""Shipped `.fbt` interface files of the field-I/O FBs: current, and readable by 4diac tooling."""

from __future__ import annotations

from pathlib import Path

import pytest

from fb.io.fbt import GENERATED_DIR, SHIPPED_TYPES, expected_files
from testbed.fbdef import interface
from testbed.fourdiac.fbt import read_fbt
from testbed.fourdiac.fbt_export import fbt_text
from testbed.library import TypeLibrary
from testbed.model import FBType, Interface, ServiceFBType

LIBRARY = TypeLibrary.with_native_types()


def _shape(itf: Interface) -> tuple[object, ...]:
    def types(decls: tuple[object, ...]) -> list[tuple[str, str, object]]:
        return [(d.name, str(getattr(d.type, "name", d.type)), d.initial)  # type: ignore[attr-defined]
                for d in decls]

    return (
        [(e.name, e.with_vars) for e in itf.event_inputs],
        [(e.name, e.with_vars) for e in itf.event_outputs],
        types(itf.input_vars),
        types(itf.output_vars),
    )


def test_shipped_files_match_the_python_definitions() -> None:
    """Every shipped .fbt equals what the generator writes now (python -m fb.io.fbt)."""
    expected = expected_files(LIBRARY)
    shipped = {p.name: p.read_text(encoding="utf-8") for p in GENERATED_DIR.glob("*.fbt")}
    assert sorted(shipped) == sorted(expected)
    stale = [name for name, text in expected.items() if shipped[name] != text]
    assert not stale, f"regenerate with `python -m fb.io.fbt`: {stale}"


@pytest.mark.parametrize("name", SHIPPED_TYPES)
def test_shipped_file_reads_back_to_the_same_interface(name: str) -> None:
    """The .fbt reader gives back the Python type's name, events, WITH lists and variables."""
    read = read_fbt(GENERATED_DIR / f"{name}.fbt")
    native = LIBRARY.get(name)
    assert read.name == name
    assert isinstance(read, ServiceFBType)
    assert _shape(read.interface) == _shape(native.interface)


def test_arrays_and_initial_values_round_trip(tmp_path: Path) -> None:
    """ARRAY sizes and initial values (TIME, BOOL, numbers, strings) survive export and read."""
    itf = interface(ei="REQ(DT,N,ON,NAME)", eo="CNF(X)",
                    inputs="DT:TIME[4] N:UINT=3 ON:BOOL=TRUE NAME:WSTRING=\"pump\" "
                           "P:TIME=T#250ms K:LREAL=1.5",
                    outputs="X:DINT")
    fb_type: FBType = ServiceFBType("ROUND_TRIP", itf, "a test type", "tests")
    path = tmp_path / "ROUND_TRIP.fbt"
    path.write_text(fbt_text(fb_type), encoding="utf-8")
    read = read_fbt(path)
    assert _shape(read.interface) == _shape(itf)
    dims = getattr(read.interface.input_vars[0].type, "dims", None)
    assert dims == ((0, 3),)
