"""SystemTests.sys (the 4diac project FORTE's boot files came from) through the scripting API.

The Timing application runs ~13 billion FB events as shipped; as DESIGN decides, it
runs here with its loop counts cut by a documented factor (outer iterations 1000 -> 4,
inner counters 100 -> 5 and 65500 -> 655) and is compared with the boot file 4diac
IDE would deploy, cut the same way, by event counts and CSV rows, never by times.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import testbed
from shared_material import shared_path
from testbed.fourdiac.bootfile import load_boot_file, write_boot_file
from testbed.fourdiac.fboot_writer import boot_commands
from testbed.fourdiac.sysfile import read_system
from testbed.fourdiac.system_loader import read_virtual_dns
from testbed.runtime.device import Device

pytestmark = pytest.mark.conformance

CUT = {"Iterations.PV": "4", "FBNuTest.E_CTU.PV": "5", "FBNuTest.E_CTU_1.PV": "655"}


def sys_path() -> Path:
    return shared_path("4diac", "examples", "SystemTests", "SystemTests.sys")


def test_all_applications_load() -> None:
    """Every resource of every device is deployed; unmapped applications get one each."""
    net = testbed.load(sys_path(), start=False)
    names = set(net.device.resources)
    assert {"Hard_Pass_Example", "TimingTestRes", "normalExecutionMultiple"} <= names
    assert len(names) >= 15
    net.close()


@pytest.mark.parametrize(("resource", "executed", "failed"),
                         [("Hard_Pass_Example", 1, 0), ("Fail_Example", 3, 2),
                          ("Soft_Pass_Example", 1, 0)])
def test_selftest_resources_pass_like_forte(resource: str, executed: int, failed: int) -> None:
    """Each self-checking resource gives FORTE's TEST_CONDITION counts through the API.

    Their STEST_END stops the whole device (as it stops FORTE), so each runs alone.
    """
    net = testbed.load(sys_path(), start=False)
    net.device.console = lambda _t: None
    net.device.resources[resource].start()
    net.run_until_idle()
    assert (net.device.test_report.executed, net.device.test_report.failed) == (executed, failed)
    assert net.device.shutdown_reason == "STEST_END"
    net.close()


def _run_via_api(cwd: Path) -> tuple[int, int]:
    net = testbed.load(sys_path(), start=False)
    net.device.console = lambda _t: None
    res = net.device.resources["TimingTestRes"]
    for pin, value in CUT.items():
        res.write_parameter(pin, value)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        res.start()
        events = net.run_until_idle()
    finally:
        os.chdir(old)
        net.close()
    rows = (cwd / "executiontime.csv").read_text().splitlines()
    return events, len(rows)


def _run_via_boot_file(cwd: Path) -> tuple[int, int]:
    system = read_system(sys_path())
    variables = read_virtual_dns(sys_path().parent / "virtualDNS.dns")
    device_name = next(d.name for d in system.devices
                       if any(r.name == "TimingTestRes" for r in d.resources))
    commands = boot_commands(system, device_name, "TimingTestRes", variables=variables)
    cut = []
    for dest, request in commands:
        for pin, value in CUT.items():
            if f'Destination="{pin}"' in request:
                request = request.replace(request.split('Source="')[1].split('"')[0], value, 1)
        cut.append((dest, request))
    boot = cwd / "timing.fboot"
    write_boot_file(boot, cut)
    device = Device("timing")
    device.console = lambda _t: None
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = load_boot_file(device, boot)
        assert result.ok, result.error
        asyncio.run(asyncio.wait_for(device.run(), 120))
    finally:
        os.chdir(old)
    assert device.shutdown_reason == "STEST_END"
    events = device.resources["TimingTestRes"].statistics().events_processed
    rows = (cwd / "executiontime.csv").read_text().splitlines()
    return events, len(rows)


def test_timing_application_matches_its_boot_file(tmp_path: Path) -> None:
    """Same event count and CSV rows as the cut boot file; one row per outer iteration."""
    (tmp_path / "api").mkdir()
    (tmp_path / "boot").mkdir()
    api_events, api_rows = _run_via_api(tmp_path / "api")
    boot_events, boot_rows = _run_via_boot_file(tmp_path / "boot")
    assert api_rows == boot_rows == 3  # Iterations.PV - 1 measured rounds
    assert api_events == boot_events
    # (PV - 1) rounds at each level: 3 iterations x 4 x 655 x (E_CTU_1.CU + E_SWITCH.EI)
    assert api_events > 3 * 4 * 655 * 2
