"""A device: resources in one process, their clock, and their run tasks.

The device owns a TaskGroup while it runs; every resource's drain task lives in
it, including resources created while running (management CREATE).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import structlog

from testbed.errors import ManagementError, NetworkError
from testbed.library import TypeLibrary
from testbed.runtime.clock import Clock, RealClock
from testbed.runtime.resource import Resource, ResourceStatistics, TestReport

__all__ = ["Device", "DeviceState"]

log = structlog.get_logger(__name__)

RESOURCE_TYPES = ("EMB_RES", "RMT_RES", "PANEL_RESOURCE", "RESOURCE")

S = TypeVar("S")
_SERVICE_CLOSE_TIMEOUT_S = 5.0


class DeviceState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


class Device:
    """Holds resources; `run()` drives them until `shutdown()` (or STEST_END) is called."""

    def __init__(
        self,
        name: str = "testbed",
        library: TypeLibrary | None = None,
        clock: Clock | None = None,
        *,
        queue_capacity: int = 65_536,
        external_capacity: int = 4_096,
    ) -> None:
        self.name = name
        self.library = library if library is not None else TypeLibrary.with_native_types()
        self.clock: Clock = clock if clock is not None else RealClock()
        self.queue_capacity = queue_capacity
        self.external_capacity = external_capacity
        self.resources: dict[str, Resource] = {}
        self.test_report = TestReport()
        self.console: Callable[[str], None] = _print_line
        self.state = DeviceState.CREATED
        self.shutdown_reason: str | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._shutdown: asyncio.Event | None = None
        self._shutdown_requested = False
        self._tasks: list[asyncio.Task[None]] = []
        self._services: dict[str, Any] = {}

    # --- resources ------------------------------------------------------------------

    def create_resource(self, name: str, type_name: str = "EMB_RES") -> Resource:
        if type_name not in RESOURCE_TYPES:
            raise ManagementError("UNSUPPORTED_TYPE", f"unknown resource type {type_name!r}")
        if name in self.resources:
            raise ManagementError("INVALID_STATE", f"resource {name!r} exists")
        res = Resource(name, self.library, self.clock, device=self,
                       capacity=self.queue_capacity, external_capacity=self.external_capacity)
        self.resources[name] = res
        if self._tg is not None:
            self._tasks.append(self._tg.create_task(res.run(), name=f"resource:{name}"))
        return res

    def delete_resource(self, name: str) -> None:
        res = self.resource(name)
        res.kill()
        del self.resources[name]

    def resource(self, name: str) -> Resource:
        try:
            return self.resources[name]
        except KeyError:
            raise NetworkError(f"device {self.name} has no resource {name!r}") from None

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources.values())

    # --- services shared by FBs (I/O session pools, comm endpoints, model hosts) ----------

    def service(self, key: str, factory: Callable[[], S]) -> S:
        """The device-wide service `key`, created by `factory` on first use.

        Services are owned by the device: when `run()` ends, each one's `aclose()` (or
        `wait_closed()`) is awaited, so I/O sessions close before the loop stops.
        """
        svc = self._services.get(key)
        if svc is None:
            svc = factory()
            self._services[key] = svc
        return svc

    async def _close_services(self) -> None:
        for key, svc in reversed(list(self._services.items())):
            closer = getattr(svc, "aclose", None) or getattr(svc, "wait_closed", None)
            if closer is None:
                continue
            try:
                async with asyncio.timeout(_SERVICE_CLOSE_TIMEOUT_S):
                    await closer()
            except TimeoutError:
                log.warning("service_close_timed_out", service=key)
            except Exception as exc:  # a service failing to close must not hide the rest
                log.error("service_close_failed", service=key, error=str(exc))
        # the closed services stay registered: a device runs once, and callers may still
        # ask them how they ended

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        for res in self.resources.values():
            res.start()

    def stop(self) -> None:
        for res in self.resources.values():
            res.stop()

    def kill(self) -> None:
        for res in self.resources.values():
            res.kill()

    def shutdown(self, reason: str = "requested") -> None:
        """Ask `run()` to finish (STEST_END, SIGTERM, management KILL of the device)."""
        if self.shutdown_reason is None:
            self.shutdown_reason = reason
        self._shutdown_requested = True
        for res in self.resources.values():
            if res.state.value == "running":
                res.kill()
        if self._shutdown is not None:
            self._shutdown.set()

    @property
    def shutdown_requested(self) -> bool:
        return self._shutdown_requested

    async def run(self) -> None:
        """Run every resource's task until `shutdown()`; then stop them all and return."""
        self._shutdown = asyncio.Event()
        if self._shutdown_requested:
            self._shutdown.set()
        self.state = DeviceState.RUNNING
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._tasks = [tg.create_task(r.run(), name=f"resource:{r.name}")
                               for r in self.resources.values()]
                await self._shutdown.wait()
                self._tg = None
                for t in self._tasks:
                    t.cancel()
            self.kill()
            with contextlib.suppress(Exception):
                await self._close_services()
        finally:
            self._tg = None
            self._tasks = []
            self.state = DeviceState.STOPPED
            self.clock.close()

    def statistics(self) -> dict[str, ResourceStatistics]:
        return {name: r.statistics() for name, r in self.resources.items()}


def _print_line(text: str) -> None:
    print(text, flush=True)
