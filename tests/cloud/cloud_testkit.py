"""Helpers for the cloud tests: configs, a child edge process, polling with a deadline."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from drivers.mqtt import MqttClientConfig, ReconnectConfig, StoreConfig
from drivers.mqtt.edge_link import EdgeLinkConfig
from drivers.mqtt.sparkplug import EdgeNodeConfig
from testbed.cloud import CloudConfig

FAST = ReconnectConfig(initial_delay_s=0.05, max_delay_s=0.5)
EDGE_CHILD = Path(__file__).with_name("edge_child.py")
GROUP = "plant"
EDGE = "edge1"
HOST = "cloud"


def cloud_config(port: int, db: Path, **kwargs: object) -> CloudConfig:
    mqtt = MqttClientConfig(port=port, reconnect=FAST)
    return CloudConfig.model_validate({"mqtt": mqtt, "host_id": HOST, "db_path": db, **kwargs})


def edge_config(
    port: int, store: Path, *, host_id: str | None = HOST, use_aliases: bool = True
) -> EdgeLinkConfig:
    return EdgeLinkConfig(
        mqtt=MqttClientConfig(port=port, reconnect=FAST),
        node=EdgeNodeConfig(
            group_id=GROUP,
            edge_node_id=EDGE,
            primary_host_id=host_id,
            data_qos=1,
            use_aliases=use_aliases,
        ),
        store=StoreConfig(path=store),
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `check` until it holds (a functional deadline, not a timing assertion)."""
    for _ in range(int(timeout_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")


class EdgeProcess:
    """`edge_child.py` as a subprocess; collects the (store id, counter) pairs it stored."""

    def __init__(self, port: int, store: Path, rate: float, log: Path, start: int = 1) -> None:
        self._args = [str(EDGE_CHILD), str(port), str(store), str(rate), str(start)]
        self._log = log
        self.process: asyncio.subprocess.Process | None = None
        self.stored: list[tuple[int, int]] = []
        self.drained = False
        self._reader: asyncio.Task[None] | None = None

    async def start(self, group: asyncio.TaskGroup) -> None:
        with self._log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                *self._args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        self._reader = group.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode().split()
            if line and line[0] == "stored":
                self.stored.append((int(line[1]), int(line[2])))
            elif line == ["drained"]:
                self.drained = True

    async def wait_stored(self, count: int, timeout_s: float = 30) -> None:
        target = len(self.stored) + count
        await eventually(lambda: len(self.stored) >= target, timeout_s)

    async def stop(self, timeout_s: float = 300) -> None:
        """Ask it to stop reporting, drain its store and exit."""
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(timeout_s):
            await self.process.wait()
        if self._reader is not None:
            await self._reader

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()
        if self._reader is not None:
            await self._reader
