"""DeviceHost in-process: deployments into configured resources survive a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET

from testbed.fourdiac.mgmt_client import ManagementClient
from testbed.gateway.config import parse_gateway_config
from testbed.gateway.daemon import DeviceHost
from testbed.library import TypeLibrary

pytestmark = pytest.mark.timeout(30)

CONFIG = """
devices:
  - name: gw
    management: {port: 0}
    resources: [{name: EMB_RES}]
    persistence: {boot_file: deployed.fboot, write_delay_s: 0.01}
"""


async def run_host(host: DeviceHost, body: Callable[[DeviceHost], Awaitable[None]]) -> None:
    """Run `host` until `body(host)` returns, then stop it as SIGTERM would."""
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(host.run(stop))
        async with asyncio.timeout(10):
            while host.server is None or host.server.port == 0:  # noqa: ASYNC110 - startup
                await asyncio.sleep(0.01)
        try:
            await body(host)
        finally:
            stop.set()
    assert task.done()


async def fb_names(client: ManagementClient, res: str) -> set[str]:
    root = SafeET.fromstring((await client.command(res, "QUERY", '<FB Name="*" Type="*"/>')).xml)
    return {f.get("Name", "") for f in root.iter("FB")}


@pytest.mark.parametrize("recreate", [False, True])
async def test_configured_resource_deployment_restored(tmp_path: Path, library: TypeLibrary,
                                                       recreate: bool) -> None:
    """FBs deployed into a configured resource (kept or recreated by the IDE) come back."""
    config = parse_gateway_config(CONFIG, "g.yaml", tmp_path).devices[0]

    async def deploy(host: DeviceHost) -> None:
        assert host.server is not None
        async with ManagementClient(host.server.host, host.server.port) as c:
            if recreate:  # what 4diac IDE does to a resource it redeploys
                assert (await c.command("", "KILL", '<FB Name="EMB_RES" Type="*"/>')).ok
                assert (await c.command("", "DELETE", '<FB Name="EMB_RES" Type="*"/>')).ok
                assert (await c.command("", "CREATE",
                                        '<FB Name="EMB_RES" Type="EMB_RES"/>')).ok
            assert (await c.command("EMB_RES", "CREATE", '<FB Name="C" Type="E_CTU"/>')).ok
            assert (await c.command("EMB_RES", "START")).ok

    async def check(host: DeviceHost) -> None:
        assert host.server is not None
        async with ManagementClient(host.server.host, host.server.port) as c:
            assert await fb_names(c, "EMB_RES") == {"C"}
        assert host.device.resources["EMB_RES"].state.value == "running"

    await run_host(DeviceHost(config, library), deploy)
    assert (tmp_path / "deployed.fboot").exists()
    await run_host(DeviceHost(config, library), check)
    # and once more: the restored journal persists the same application again
    await run_host(DeviceHost(config, library), check)
