"""FORTE's boot files deployed line by line through the management socket, as 4diac IDE does.

Every line must be answered RDY, and the run must end as `testbed boot FILE` does:
same exit status, same TEST_CONDITION verdicts, same CSV files.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mgmt_testkit import client_for, serve_device, wait_until

from shared_material import shared_path
from testbed.fourdiac.bootfile import load_boot_file
from testbed.fourdiac.mgmt_client import ManagementClient
from testbed.library import TypeLibrary
from testbed.runtime.device import Device

pytestmark = pytest.mark.timeout(60)

MARKER = "testbed: management server listening on "


def systest(*parts: str) -> Path:
    return shared_path("4diac", "forte-systemtests", *parts)


def verdict_lines(stdout: str) -> list[str]:
    return [ln for ln in stdout.splitlines()
            if "TEST_CONDITION" in ln or "tests executed" in ln]


def boot_direct(path: Path, soft: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testbed.cli", "boot", "--timeout", "30",
         *(["--soft"] if soft else []), str(path)],
        capture_output=True, text=True, timeout=60, check=False)


async def boot_via_socket(path: Path, soft: bool) -> tuple[int, str, list[bool]]:
    """`testbed boot -c 127.0.0.1:0` with no file, then replay `path` through the socket."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "testbed.cli", "boot", "--timeout", "30",
        *(["--soft"] if soft else []), "-c", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "FORTE_BOOT_FILE": ""})
    assert proc.stderr is not None
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, "testbed boot -c ended before announcing its port"
                if line.startswith(MARKER):
                    host, _, port = line[len(MARKER):].strip().rpartition(":")
                    break
        async with ManagementClient(host, int(port)) as client:
            results = await client.replay_boot_file(path)
        async with asyncio.timeout(40):
            out, _err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), [r.reply.ok for r in results]


@pytest.mark.parametrize(("boot_file", "soft"), [
    ("hard_pass_example.fboot", False),
    ("soft_pass_example.fboot", True),
    ("soft_pass_example.fboot", False),
    ("fail_example.fboot", False),
])
async def test_systemtest_through_socket_matches_boot(boot_file: str, soft: bool) -> None:
    """Each line is RDY through the socket, and the verdict equals `testbed boot FILE`."""
    path = systest(boot_file)
    code, stdout, oks = await boot_via_socket(path, soft)
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert oks == [True] * len(lines)
    direct = await asyncio.to_thread(boot_direct, path, soft)
    assert code == direct.returncode, stdout
    assert verdict_lines(stdout) == verdict_lines(direct.stdout)
    assert verdict_lines(stdout), "no TEST_CONDITION output at all"


CSV_FILES = ["normalExecution.fboot", "openAndNoClose.fboot", "doubleInit.fboot",
             "initDeinitNoWrite.fboot", "closeNotOpened.fboot", "writeQIFalse.fboot",
             "writeWithoutInit.fboot", "normalExecutionMultiple.fboot", "noNameFile.fboot"]


async def run_in_process(library: TypeLibrary, path: Path) -> tuple[int, int]:
    device = Device("direct", library=library)
    device.console = lambda _line: None
    assert load_boot_file(device, path).ok
    async with asyncio.timeout(20):
        await device.run()
    return device.test_report.executed, device.test_report.failed


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("boot_file", CSV_FILES)
async def test_csv_writer_through_socket(boot_file: str, library: TypeLibrary, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """csvWriter boot files: same replies (all RDY), test counts and CSV files as booting."""
    path = systest("src", "modules", "utils", "csvWriter", boot_file)
    direct_dir, socket_dir = tmp_path / "direct", tmp_path / "socket"
    direct_dir.mkdir()
    socket_dir.mkdir()
    monkeypatch.chdir(direct_dir)
    direct_counts = await run_in_process(library, path)
    monkeypatch.chdir(socket_dir)
    async with serve_device(library) as served:
        async with client_for(served) as client:
            results = await client.replay_boot_file(path)
        assert all(r.reply.ok for r in results), [r.reply.xml for r in results]
        await wait_until(lambda: served.device.shutdown_requested, 20)
        counts = (served.device.test_report.executed, served.device.test_report.failed)
    assert counts == direct_counts
    assert snapshot(socket_dir) == snapshot(direct_dir)
