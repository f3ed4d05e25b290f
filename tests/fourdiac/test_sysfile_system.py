"""Reading 4diac systems (.sys): applications, devices, resources, mapping; deploying them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_material import shared_path
from testbed.errors import TypeLibraryError
from testbed.fourdiac.bootfile import load_boot_file
from testbed.fourdiac.fboot_writer import write_fboot
from testbed.fourdiac.sysfile import SubAppSpec, SystemSpec, read_system
from testbed.fourdiac.typelib import load_type_dirs
from testbed.library import TypeLibrary
from testbed.model import FBInstanceSpec
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device


@pytest.fixture(scope="module")
def system() -> SystemSpec:
    return read_system(shared_path("4diac", "examples", "SystemTests", "SystemTests.sys"))


@pytest.fixture(scope="module")
def systemtests_library() -> TypeLibrary:
    lib = TypeLibrary.with_native_types()
    load_type_dirs(lib, [shared_path("4diac", "examples", "SystemTests")], override=True,
                   on_error="exclude")
    return lib


def test_applications_devices_and_mapping(system: SystemSpec) -> None:
    """SystemTests.sys: 8 applications, 5 devices, segments, links and the mapping."""
    assert [a.name for a in system.applications] == [
        "Timing", "Soft_Pass_Example", "Fail_Example", "Hard_Pass_Example", "DeInitCommFB",
        "simpleCommunicationTest", "CSVWriterTests", "MultiDevice"]
    dut = system.device("DuT")
    assert dut is not None
    assert dut.type_name == "FORTE_PC"
    assert dut.parameters["MGR_ID"] == '"localhost:61499"'
    assert [r.name for r in dut.resources][:2] == ["TimingTestRes", "Hard_Pass_Example"]
    assert {r.type_name for d in system.devices for r in d.resources} == {"EMB_RES"}
    assert [s.name for s in system.segments] == ["Ethernet"]
    assert {lk.comm_resource for lk in system.links} == {"Client", "Server", "MiddleSystem"}
    assert system.mapped_from("DuT.TimingTestRes.FBNuTest") == "Timing.FBNuTest"
    assert len(system.mappings) == 68


def test_nested_subapps_keep_interface_network_and_parameters(system: SystemSpec) -> None:
    """Timing's FBNuTest subapp has its interface, inner FBs with parameters and connections."""
    timing = system.application("Timing")
    assert timing is not None
    sub = timing.network.element("FBNuTest")
    assert isinstance(sub, SubAppSpec)
    assert sub.network is not None
    assert [e.name for e in sub.interface.event_inputs] == ["Start"]
    assert sub.parameters == {"iterations": "100"}
    inner = sub.network.element("E_CTU_1")
    assert isinstance(inner, FBInstanceSpec)
    assert inner.parameters == {"PV": "65500"}
    assert system.find_in_application("Timing.FBNuTest.E_SWITCH") is not None
    # the resource copy of a mapped subapp holds only its interface
    res = system.device("DuT").resource("TimingTestRes")  # type: ignore[union-attr]
    copy = res.network.element("FBNuTest")  # type: ignore[union-attr]
    assert isinstance(copy, SubAppSpec)
    assert copy.network is None


@pytest.mark.parametrize("resource", ["Hard_Pass_Example", "Soft_Pass_Example", "Fail_Example"])
def test_deployed_resource_runs_its_test_conditions(system: SystemSpec, resource: str,
                                                    systemtests_library: TypeLibrary,
                                                    tmp_path: Path) -> None:
    """A generated boot file replays onto a device and its TEST_CONDITIONs report as FORTE's."""
    path = tmp_path / f"{resource}.fboot"
    write_fboot(path, system, "DuT", resource)
    device = Device("DuT", library=systemtests_library, clock=VirtualClock())
    lines: list[str] = []
    device.console = lines.append
    result = load_boot_file(device, path)
    assert result.ok, result.error
    device.resources[resource].run_until_idle()
    report = device.test_report
    expected = {"Hard_Pass_Example": (1, 0), "Soft_Pass_Example": (1, 0),
                "Fail_Example": (3, 2)}[resource]
    assert (report.executed, report.failed) == expected, lines
    assert device.shutdown_requested  # STEST_END ran


def test_timing_resource_deploys_with_its_subapp(system: SystemSpec,
                                                 systemtests_library: TypeLibrary,
                                                 tmp_path: Path) -> None:
    """The Timing resource (mapped subapp, CSV writer, stopwatch) loads onto a device."""
    path = tmp_path / "timing.fboot"
    commands = write_fboot(path, system, "DuT", "TimingTestRes")
    device = Device("DuT", library=systemtests_library, clock=VirtualClock())
    device.console = lambda _t: None
    result = load_boot_file(device, path)
    assert result.ok, result.error
    assert result.commands == len(commands)
    res = device.resources["TimingTestRes"]
    assert res.fbs["FBNuTest.E_CTU"].get("PV") == 100
    assert res.fbs["FBNuTest.E_CTU_1"].get("PV") == 65500
    device.kill()


def test_bad_system_file_names_file_and_line(tmp_path: Path) -> None:
    """A malformed .sys element is reported with file:line and the missing attribute."""
    path = tmp_path / "bad.sys"
    path.write_text('<?xml version="1.0"?>\n<System Name="S">\n  <Device Name="D">\n'
                    "  </Device>\n</System>\n", encoding="utf-8")
    with pytest.raises(TypeLibraryError, match=r"bad\.sys:3 \(<Device> Type of 'D'\)"):
        read_system(path)
