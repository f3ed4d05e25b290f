"""`ApplicationRunner`: runs deployed 4diac applications (boot files) and swaps them atomically.

Each application name has one running `Device`. A new version is built on a *fresh* device
with `load_boot_file`; only if every line loads is the old device shut down and the new one
run in its place. A failed load leaves the running application untouched (the half-built
device is killed and thrown away). Versions are kept in a `VersionedFiles` registry, so
`rollback` rebuilds the previous version the same way.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from testbed.deploy.registry import DeployError, VersionedFile, VersionedFiles
from testbed.fourdiac.bootfile import load_boot_file
from testbed.library import TypeLibrary
from testbed.runtime.device import Device

__all__ = ["ApplicationRunner", "RunnerState", "RunningApplication"]

_log = structlog.get_logger(__name__)


class RunnerState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class RunningApplication:
    name: str
    version: str
    device: Device


@dataclass(slots=True)
class _Slot:
    app: RunningApplication
    task: asyncio.Task[None]


class ApplicationRunner:
    """Owns the devices of deployed applications (one TaskGroup, one-shot context manager)."""

    def __init__(self, root: Path, library: TypeLibrary) -> None:
        self._files = VersionedFiles(root, "app.fboot")
        self._library = library
        self._slots: dict[str, _Slot] = {}
        self._state = RunnerState.NEW
        self._group: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        if self._state is not RunnerState.NEW:
            raise RuntimeError("ApplicationRunner is one-shot")
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._state = RunnerState.RUNNING
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Shut every application down and wait for its device. Idempotent."""
        if self._state is not RunnerState.RUNNING:
            self._state = RunnerState.CLOSED
            return
        self._state = RunnerState.CLOSED
        for slot in self._slots.values():
            slot.app.device.shutdown("runner closed")
        self._slots.clear()
        if self._group is not None:
            await self._group.__aexit__(None, None, None)

    @property
    def files(self) -> VersionedFiles:
        """The stored versions (active and previous per application)."""
        return self._files

    def running(self, name: str) -> RunningApplication | None:
        slot = self._slots.get(name)
        return slot.app if slot is not None else None

    async def restore(self, name: str) -> RunningApplication | None:
        """Start the active stored version of `name` (after a restart), if there is one."""
        active = self._files.active(name)
        if active is None:
            return None
        return await self._start(active)

    async def apply(self, name: str, version: str, data: bytes, sha256: str) -> RunningApplication:
        """Verify, store, build on a fresh device, and swap in; DeployError leaves the old one."""
        staged = self._files.stage(name, version, data, sha256)
        app = await self._start(staged)
        self._files.activate(name, version)
        return app

    async def rollback(self, name: str) -> RunningApplication:
        """Run the previous version again (DeployError if there is none or it fails to load)."""
        previous = self._files.previous(name)
        if previous is None:
            raise DeployError(f"application {name}: no previous version to roll back to")
        app = await self._start(previous)
        self._files.rollback(name)
        return app

    async def _start(self, stored: VersionedFile) -> RunningApplication:
        if self._group is None or self._state is not RunnerState.RUNNING:
            raise DeployError(f"application runner is {self._state.value}")
        device = Device(f"{stored.name}@{stored.version}", library=self._library)
        result = load_boot_file(device, stored.path)
        if not result.ok:
            device.kill()
            device.clock.close()
            _log.warning(
                "application_load_failed",
                name=stored.name,
                version=stored.version,
                error=str(result.error),
            )
            raise DeployError(
                f"application {stored.name} {stored.version} did not load: {result.error}"
            )
        old = self._slots.pop(stored.name, None)
        if old is not None:
            old.app.device.shutdown(f"replaced by {stored.version}")
            await old.task
        app = RunningApplication(stored.name, stored.version, device)
        task = self._group.create_task(device.run(), name=f"app:{stored.name}@{stored.version}")
        self._slots[stored.name] = _Slot(app, task)
        _log.info("application_started", name=stored.name, version=stored.version)
        return app
