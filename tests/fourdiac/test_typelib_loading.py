"""Loading type directories: data types, clashes, override, native binding, load-time compile."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import TypeLibraryError
from testbed.fourdiac.dtp import read_dtp, resolve_data_types
from testbed.fourdiac.typelib import library_with, load_type_dirs
from testbed.library import TypeLibrary
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.types import ELEMENTARY, ArrayType, StructType

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'

ITF = """<InterfaceList><EventInputs><Event Name="REQ"><With Var="IN"/></Event></EventInputs>
<EventOutputs><Event Name="CNF"><With Var="OUT"/></Event></EventOutputs>
<InputVars><VarDeclaration Name="IN" Type="{t}"/></InputVars>
<OutputVars><VarDeclaration Name="OUT" Type="{t}"/></OutputVars></InterfaceList>"""


def simple_fbt(name: str, body: str = "OUT := IN + 1;", t: str = "INT") -> str:
    return HEADER + f"""<FBType Name="{name}">{ITF.format(t=t)}
<SimpleFB><Algorithm Name="REQ"><ST Text="{body}"/></Algorithm></SimpleFB></FBType>"""


def service_fbt(name: str) -> str:
    return HEADER + f"""<FBType Name="{name}">{ITF.format(t="INT")}
<Service LeftInterface="A" RightInterface="B"/></FBType>"""


def dtp(name: str, members: str) -> str:
    return HEADER + f"""<!DOCTYPE DataType SYSTEM "http://www.holobloc.com/xml/DataType.dtd">
<DataType Name="{name}"><StructuredType>{members}</StructuredType></DataType>"""


def put(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_nested_structs_resolve_across_files(tmp_path: Path) -> None:
    """A STRUCT member may name a STRUCT from another file; arrays and initial values read."""
    put(tmp_path, "a/Outer.dtp", dtp("Outer", '<VarDeclaration Name="p" Type="Point" '
                                      'ArraySize="2"/><VarDeclaration Name="n" Type="INT" '
                                      'InitialValue="7"/>'))
    put(tmp_path, "b/Point.dtp", dtp("Point", '<VarDeclaration Name="x" Type="LREAL"/>'
                                      '<VarDeclaration Name="y" Type="LREAL"/>'))
    types = resolve_data_types([read_dtp(p) for p in sorted(tmp_path.rglob("*.dtp"))])
    outer = types["Outer"]
    assert isinstance(outer, StructType)
    member = outer.member("p")
    assert member is not None
    assert isinstance(member[1], ArrayType)
    assert member[1].element is types["Point"]
    value = outer.new()
    assert value.n == 7
    assert value.p[1].y == 0.0


def test_struct_reference_cycle_is_an_error(tmp_path: Path) -> None:
    """Two structs containing each other are reported as a cycle with file and line."""
    put(tmp_path, "A.dtp", dtp("A", '<VarDeclaration Name="b" Type="B"/>'))
    put(tmp_path, "B.dtp", dtp("B", '<VarDeclaration Name="a" Type="A"/>'))
    with pytest.raises(TypeLibraryError, match=r"\.dtp:3 .*cycle: A -> B -> A"):
        resolve_data_types([read_dtp(p) for p in sorted(tmp_path.glob("*.dtp"))])


def test_fb_variables_of_struct_type_resolve_through_the_loader(tmp_path: Path) -> None:
    """An .fbt VarDeclaration naming a .dtp type gets the StructType; ST can use its members."""
    put(tmp_path, "Pair.dtp", dtp("Pair", '<VarDeclaration Name="a" Type="INT"/>'
                                   '<VarDeclaration Name="b" Type="INT"/>'))
    put(tmp_path, "SWAP.fbt", simple_fbt("SWAP", "OUT.a := IN.b; OUT.b := IN.a;", "Pair"))
    lib = TypeLibrary()
    report = load_type_dirs(lib, [tmp_path])
    assert report.datatype == ("Pair",)
    assert report.simple == ("SWAP",)
    assert report.compiled == ("SWAP",)
    t = lib.get("SWAP")
    assert t.interface.input_var("IN").type is report.data_types["Pair"]  # type: ignore[union-attr]


def test_duplicate_without_override_names_both_origins(tmp_path: Path) -> None:
    """A .fbt clashing with a native type fails naming both; override=True replaces it."""
    put(tmp_path, "F_ADD.fbt", simple_fbt("F_ADD"))
    lib = TypeLibrary.with_native_types()
    with pytest.raises(TypeLibraryError, match=r"F_ADD defined twice: in fb \(native\) and in "
                                               r".*F_ADD\.fbt"):
        load_type_dirs(lib, [tmp_path])
    report = load_type_dirs(lib, [tmp_path], override=True)
    assert report.simple == ("F_ADD",)
    assert lib.origin("F_ADD").endswith("F_ADD.fbt")


def test_two_files_of_one_type_clash(tmp_path: Path) -> None:
    """The same type in two scanned files is an error naming both files."""
    put(tmp_path, "x/T.fbt", simple_fbt("T"))
    put(tmp_path, "y/T.fbt", simple_fbt("T"))
    with pytest.raises(TypeLibraryError, match=r"T defined twice: in .*x/T\.fbt and in .*y/T"):
        load_type_dirs(TypeLibrary(), [tmp_path])


def test_interface_only_fbt_binds_to_the_native_type(tmp_path: Path) -> None:
    """A service .fbt of a native type binds to it (no clash, even without override)."""
    put(tmp_path, "E_DELAY.fbt", service_fbt("E_DELAY"))
    put(tmp_path, "MY_SIFB.fbt", service_fbt("MY_SIFB"))
    lib = TypeLibrary.with_native_types()
    report = load_type_dirs(lib, [tmp_path])
    assert report.service == ("E_DELAY",)
    assert report.interface_only == ("MY_SIFB",)
    assert lib.origin("E_DELAY") == "fb (native)"
    device = Device("d", library=lib, clock=VirtualClock())
    res = device.create_resource("R")
    res.create_fb("D", "E_DELAY")
    with pytest.raises(TypeLibraryError, match="MY_SIFB has no Python implementation"):
        res.create_fb("S", "MY_SIFB")


def test_st_error_fails_at_load_with_file_and_line(tmp_path: Path) -> None:
    """An algorithm that does not compile fails the load (file:line), not the first event."""
    path = put(tmp_path, "BAD.fbt", simple_fbt("BAD", "OUT := IN + ;"))
    with pytest.raises(TypeLibraryError, match=rf"{path}:\d+.*BAD, algorithm REQ"):
        load_type_dirs(TypeLibrary(), [tmp_path])


def test_exclude_mode_reports_failures_and_loads_the_rest(tmp_path: Path) -> None:
    """on_error='exclude' records failing types with reasons and adds only the good ones."""
    put(tmp_path, "BAD.fbt", simple_fbt("BAD", "OUT := TRUE;"))
    put(tmp_path, "GOOD.fbt", simple_fbt("GOOD"))
    lib = TypeLibrary()
    report = load_type_dirs(lib, [tmp_path], on_error="exclude")
    assert [e.name for e in report.excluded] == ["BAD"]
    assert "cannot assign BOOL" in report.excluded[0].reason
    assert "GOOD" in lib
    assert "BAD" not in lib


def test_unused_algorithm_is_compiled_too(tmp_path: Path) -> None:
    """A broken algorithm no ECC state uses still fails the type, as FORTE's export would."""
    text = simple_fbt("U").replace(
        "</SimpleFB>", '<Algorithm Name="SPARE"><ST Text="OUT := TRUE;"/></Algorithm></SimpleFB>')
    put(tmp_path, "U.fbt", text)
    with pytest.raises(TypeLibraryError, match="algorithm SPARE"):
        load_type_dirs(TypeLibrary(), [tmp_path])


def test_only_selects_types_and_library_with_builds_a_library(tmp_path: Path) -> None:
    """only= loads just the named types; library_with adds loaded types over the natives."""
    put(tmp_path, "A1.fbt", simple_fbt("A1"))
    put(tmp_path, "A2.fbt", simple_fbt("A2", "OUT := ;"))  # broken but not selected
    lib = TypeLibrary()
    report = load_type_dirs(lib, [tmp_path], only={"A1"})
    assert report.simple == ("A1",)
    assert "A2" not in lib
    lib2 = library_with([tmp_path / "A1.fbt"])
    assert lib2.origin("A1").endswith("A1.fbt")
    assert lib2.origin("E_CTU") == "fb (native)"


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A type directory that does not exist is a TypeLibraryError naming it."""
    with pytest.raises(TypeLibraryError, match=r"no_such_dir.*type directory not found"):
        load_type_dirs(TypeLibrary(), [tmp_path / "no_such_dir"])


def test_loaded_simple_fb_runs(tmp_path: Path) -> None:
    """A loaded simple FB computes on REQ and fires CNF with its WITH data."""
    put(tmp_path, "INC.fbt", simple_fbt("INC", "OUT := IN * 2 + 1;"))
    lib = TypeLibrary.with_native_types()
    load_type_dirs(lib, [tmp_path])
    device = Device("d", library=lib, clock=VirtualClock())
    res = device.create_resource("R")
    fb = res.create_fb("X", "INC")
    res.start()
    res.run_until_idle()
    res.write_parameter("X.IN", "20")
    res.inject("X.REQ")
    res.run_until_idle()
    assert fb.get("OUT") == 41
    assert fb.var_decl("OUT").type is ELEMENTARY["INT"]  # type: ignore[union-attr]
