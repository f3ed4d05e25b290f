"""`testbed serve` as a real process: deploy through the socket, SIGTERM, restart, it is back."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET

from testbed.fourdiac.mgmt_client import ManagementClient

pytestmark = pytest.mark.timeout(60)

ANNOUNCE = "management server listening on "


@dataclass
class Daemon:
    proc: asyncio.subprocess.Process
    host: str
    port: int
    stderr_head: str


@asynccontextmanager
async def serve(config: Path) -> AsyncIterator[Daemon]:
    """Start `testbed serve`, read the announced port, and make sure it ends."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "testbed.cli", "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    head = ""
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, f"testbed serve ended early:\n{head}"
                head += line
                if ANNOUNCE in line:
                    host, _, port = line.split(ANNOUNCE)[1].strip().rpartition(":")
                    break
        yield Daemon(proc, host, int(port), head)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def stop(daemon: Daemon, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    daemon.proc.send_signal(sig)
    async with asyncio.timeout(15):
        _out, err = await daemon.proc.communicate()
    return daemon.proc.returncode or 0, daemon.stderr_head + err.decode()


def config_file(tmp_path: Path, level: str = "warning", extra: str = "") -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "devices:\n"
        "  - name: gw\n"
        "    management: {host: 127.0.0.1, port: 0}\n"
        "    persistence: {boot_file: deployed.fboot, write_delay_s: 0.05}\n"
        f"{extra}"
        f"logging: {{format: json, level: {level}}}\n", encoding="utf-8")
    return path


def app(csv: Path) -> list[tuple[str, str]]:
    """A counter on a cycle, a scratch FB deleted again, and a CSV line written on STOP."""
    body = [
        ("", '<FB Name="RES" Type="EMB_RES"/>', "CREATE"),
        ("RES", '<FB Name="CYC" Type="E_CYCLE"/>', "CREATE"),
        ("RES", '<Connection Source="T#10ms" Destination="CYC.DT"/>', "WRITE"),
        ("RES", '<FB Name="CTR" Type="E_CTU"/>', "CREATE"),
        ("RES", '<Connection Source="60000" Destination="CTR.PV"/>', "WRITE"),
        ("RES", '<FB Name="CSV" Type="CSV_WRITER_1"/>', "CREATE"),
        ("RES", '<Connection Source="TRUE" Destination="CSV.QI"/>', "WRITE"),
        ("RES", f'<Connection Source="{csv}" Destination="CSV.FILE_NAME"/>', "WRITE"),
        ("RES", "<Connection Source=\"'stopped'\" Destination=\"CSV.SD_1\"/>", "WRITE"),
        ("RES", '<FB Name="SCRATCH" Type="E_CTU"/>', "CREATE"),
        ("RES", '<Connection Source="START.COLD" Destination="CYC.START"/>', "CREATE"),
        ("RES", '<Connection Source="START.WARM" Destination="CYC.START"/>', "CREATE"),
        ("RES", '<Connection Source="CYC.EO" Destination="CTR.CU"/>', "CREATE"),
        ("RES", '<Connection Source="CYC.EO" Destination="SCRATCH.CU"/>', "CREATE"),
        ("RES", '<Connection Source="START.COLD" Destination="CSV.INIT"/>', "CREATE"),
        ("RES", '<Connection Source="START.STOP" Destination="CSV.REQ"/>', "CREATE"),
        ("RES", "", "START"),
        ("RES", '<FB Name="SCRATCH" Type="E_CTU"/>', "DELETE"),
    ]
    return [(dest, f'<Request ID="{i}" Action="{action}">{xml}</Request>' if xml
             else f'<Request ID="{i}" Action="{action}"/>')
            for i, (dest, xml, action) in enumerate(body, start=1)]


async def read_cv(client: ManagementClient) -> int:
    reply = await client.command("RES", "READ", '<Connection Source="CTR.CV"/>')
    assert reply.ok, reply.xml
    conn = SafeET.fromstring(reply.xml).find("Connection")
    assert conn is not None
    return int(conn.get("Destination", "-1"))


async def wait_for_cv_above(client: ManagementClient, floor: int) -> int:
    async with asyncio.timeout(5):
        while (cv := await read_cv(client)) <= floor:  # noqa: ASYNC110 - polling a remote device
            await asyncio.sleep(0.02)
    return cv


async def test_deploy_sigterm_restart_restores(tmp_path: Path) -> None:
    """Deployed app persists: SIGTERM stops cleanly (STOP processed), restart runs it again."""
    config = config_file(tmp_path)
    csv = tmp_path / "stop.csv"
    async with serve(config) as daemon:
        async with ManagementClient(daemon.host, daemon.port) as client:
            for dest, xml in app(csv):
                reply = await client.request(dest, xml)
                assert reply.ok, (xml, reply.xml)
            await wait_for_cv_above(client, 2)
        code, err = await stop(daemon)
    assert code == 0, err
    assert "stopped" in csv.read_text(encoding="utf-8")  # E_RESTART.STOP reached CSV.REQ
    persisted = (tmp_path / "deployed.fboot").read_text(encoding="utf-8")
    assert "SCRATCH" not in persisted
    assert persisted.splitlines()[-1] == 'RES;<Request ID="15" Action="START"/>'

    async with serve(config) as daemon:
        async with ManagementClient(daemon.host, daemon.port) as client:
            fbs = SafeET.fromstring((await client.command(
                "RES", "QUERY", '<FB Name="*" Type="*"/>')).xml)
            assert {f.get("Name") for f in fbs.iter("FB")} == {"CYC", "CTR", "CSV"}
            status = SafeET.fromstring((await client.command(
                "RES", "QUERY", '<FB Name="CTR" Type="E_CTU"/>')).xml).find("FBStatus")
            assert status is not None
            assert status.get("Status") == "RUNNING"
            first = await wait_for_cv_above(client, 0)
            await wait_for_cv_above(client, first)
        code, err = await stop(daemon)
    assert code == 0, err


async def test_sighup_reload_keeps_running(tmp_path: Path) -> None:
    """SIGHUP with a broken config logs the error and keeps serving; a device change waits."""
    config = config_file(tmp_path)
    async with serve(config) as daemon:
        config.write_text("devices: [oops\n", encoding="utf-8")
        daemon.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.3)
        async with ManagementClient(daemon.host, daemon.port) as client:
            assert (await client.command("", "QUERY", '<FB Name="*" Type="*"/>')).ok
        config_file(tmp_path, extra="    queue_capacity: 1000\n")
        daemon.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.3)
        async with ManagementClient(daemon.host, daemon.port) as client:
            assert (await client.command("", "QUERY", '<FB Name="*" Type="*"/>')).ok
        code, err = await stop(daemon)
    assert code == 0, err
    assert "config_reload_failed" in err
    assert "config_reload_needs_restart" in err


async def test_port_in_use_fails_cleanly(tmp_path: Path) -> None:
    """A management port that is taken ends the daemon with status 1 and a clear log line."""
    blocker = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        path = tmp_path / "gateway.yaml"
        path.write_text(f"devices:\n  - name: gw\n    management: {{port: {port}}}\n"
                        "logging: {format: json, level: warning}\n", encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "testbed.cli", "serve", "--config", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        async with asyncio.timeout(20):
            _out, err = await proc.communicate()
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert proc.returncode == 1
    assert "gateway_start_failed" in err.decode()
    assert f"127.0.0.1:{port}" in err.decode()
