"""Boot commands from a 4diac system match what 4diac IDE exported for FORTE's system tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_material import shared_path
from testbed.errors import ConfigError
from testbed.fourdiac.bootfile import read_boot_file
from testbed.fourdiac.fboot_writer import boot_commands, write_fboot
from testbed.fourdiac.sysfile import SystemSpec, read_system

# the placeholders SystemTests.sys uses, with the values FORTE's exported boot files carry
VARIABLES = {
    "csvFileName": "csvWriteTest.csv",
    "csvFirstValue": "csvFirstValue",
    "dintValueToTest": "DINT#26",
    "intCommID1": "239.192.0.2:61499",
    "intCommID2": "239.192.0.2:61500",
    "intCommID3": "239.192.0.2:61501",
    "intCommID4": "239.192.0.2:61502",
}

CSV = "src/modules/utils/csvWriter/"
# (device, resource) -> boot file under ../shared/4diac/forte-systemtests
REFERENCES = {
    ("DuT", "Soft_Pass_Example"): "soft_pass_example.fboot",
    ("DuT", "Hard_Pass_Example"): "hard_pass_example.fboot",
    ("DuT", "Fail_Example"): "fail_example.fboot",
    ("DuT", "DeInitCommFB"): "deInit_commFb.fboot",
    ("Client", "simpleClientTest"): "simple_client.fboot",
    ("Server", "simpleServerTest"): "simple_server.fboot",
    ("Client", "multiDeviceStart"): "multiDevice1.fboot",
    ("MiddleSystem", "multiDeviceMiddle"): "multiDevice2.fboot",
    ("Server", "multiDeviceEnd"): "multiDevice3.fboot",
    ("CSVWriterTestDevice", "normalExecution"): CSV + "normalExecution.fboot",
    ("CSVWriterTestDevice", "openAndNoClose"): CSV + "openAndNoClose.fboot",
    ("CSVWriterTestDevice", "doubleInit"): CSV + "doubleInit.fboot",
    ("CSVWriterTestDevice", "initDeinitNoWrite"): CSV + "initDeinitNoWrite.fboot",
    ("CSVWriterTestDevice", "closeNotOpened"): CSV + "closeNotOpened.fboot",
    ("CSVWriterTestDevice", "writeWithoutInit"): CSV + "writeWithoutInit.fboot",
    ("CSVWriterTestDevice", "writeQIFalse"): CSV + "writeQIFalse.fboot",
    ("CSVWriterTestDevice", "normalExecutionMultiple"): CSV + "normalExecutionMultiple.fboot",
    ("CSVWriterTestDevice", "noNameFile"): CSV + "noNameFile.fboot",
}

# FORTE's copy of this boot file was edited after export: the value carries a type prefix
HAND_EDITS = {
    ("CSVWriterTestDevice", "normalExecutionMultiple"): (
        'Source="csvFirstValue"', 'Source="STRING#csvFirstValue"'),
}


@pytest.fixture(scope="module")
def system() -> SystemSpec:
    return read_system(shared_path("4diac", "examples", "SystemTests", "SystemTests.sys"))


@pytest.mark.parametrize(("device", "resource"), sorted(REFERENCES))
def test_boot_commands_equal_the_ide_export(system: SystemSpec, device: str,
                                            resource: str) -> None:
    """Each resource deploys line for line as the boot file 4diac IDE wrote for FORTE."""
    rel = REFERENCES[(device, resource)].split("/")
    reference = shared_path("4diac", "forte-systemtests", *rel)
    expected = [f"{c.destination};{c.request}" for c in read_boot_file(reference)]
    mine = [f"{d};{r}" for d, r in boot_commands(system, device, resource, variables=VARIABLES)]
    edit = HAND_EDITS.get((device, resource))
    if edit is not None:
        assert sum(edit[0] in line for line in mine) == 1
        mine = [line.replace(*edit) for line in mine]
    assert mine == expected


def test_subapp_members_get_dotted_names(system: SystemSpec) -> None:
    """FBs inside a mapped subapp are created as Subapp.FB; its pins relay connections."""
    commands = boot_commands(system, "CSVWriterTestDevice", "normalExecution")
    created = [r for _, r in commands if 'Action="CREATE"><FB' in r]
    assert any('Name="NormalExecution.CSV_WRITER_1"' in r for r in created)
    assert any('Source="START.COLD" Destination="NormalExecution.STRING2STRING.REQ"' in r
               for _, r in commands)
    assert commands[-1][1].endswith('Action="START"/>')


def test_subapp_parameters_reach_the_inner_pins(system: SystemSpec) -> None:
    """A parameter on a subapp input (Timing's FBNuTest.iterations) is written to the inner pin."""
    commands = boot_commands(system, "DuT", "TimingTestRes")
    writes = [r for _, r in commands if 'Action="WRITE"' in r]
    assert any('Source="100" Destination="FBNuTest.E_CTU.PV"' in r for r in writes)
    assert any('Source="FBNuTest.E_CTU_1.RO" Destination="FBNuTest.E_CTU.CU"' in r
               for _, r in commands)
    assert any('Source="E_SWITCH_2.EO0" Destination="FBNuTest.E_CTU.CU"' in r
               for _, r in commands)
    assert any('Source="FBNuTest.E_CTU.RO" Destination="E_StopWatch.STOP"' in r
               for _, r in commands)


def test_write_fboot_round_trips_through_the_boot_reader(system: SystemSpec,
                                                         tmp_path: Path) -> None:
    """write_fboot produces a file the boot-file reader reads back command for command."""
    path = tmp_path / "hard.fboot"
    commands = write_fboot(path, system, "DuT", "Hard_Pass_Example")
    back = read_boot_file(path)
    assert [(c.destination, c.request) for c in back] == commands


def test_unknown_device_or_resource_is_a_config_error(system: SystemSpec) -> None:
    """Asking for a device or resource the system lacks names it."""
    with pytest.raises(ConfigError, match="no device 'Nope'"):
        boot_commands(system, "Nope", "R")
    with pytest.raises(ConfigError, match="no resource 'Nope'"):
        boot_commands(system, "DuT", "Nope")
