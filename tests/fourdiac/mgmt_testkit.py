"""Helpers for management-port tests: a running in-process device with its server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from testbed.fourdiac.mgmt_client import ManagementClient
from testbed.fourdiac.mgmt_server import ManagementServer, ServerSettings
from testbed.library import TypeLibrary
from testbed.runtime.device import Device


@dataclass
class Served:
    device: Device
    server: ManagementServer
    lines: list[str]


@asynccontextmanager
async def serve_device(library: TypeLibrary | None = None,
                       settings: ServerSettings | None = None) -> AsyncIterator[Served]:
    """An empty running device (real clock) and its management server on a free port."""
    device = Device("dev", library=library)
    lines: list[str] = []
    device.console = lines.append
    settings = settings or ServerSettings(port=0)
    async with asyncio.TaskGroup() as tg:
        run = tg.create_task(device.run(), name="device")
        try:
            async with ManagementServer(device, settings) as server:
                yield Served(device, server, lines)
        finally:
            device.shutdown("test end")
            async with asyncio.timeout(5):
                await run


@asynccontextmanager
async def client_for(served: Served) -> AsyncIterator[ManagementClient]:
    async with ManagementClient(served.server.host, served.server.port) as client:
        yield client


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Poll `predicate()` until true (a generous functional deadline, not a timing check)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling runtime state, there is no event
            await asyncio.sleep(0.01)
