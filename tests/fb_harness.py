"""Shared FB test harness: a real-clock device on the test's loop and an event recorder.

Used by the comm (`tests/fb/net`), field-I/O (`tests/fb/io`) and cloud (`tests/fb/cloud`)
FB tests. The device owns its I/O session pool as a service and closes it when its run
ends; `running_device` checks that the pool's thread really ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from testbed.library import TypeLibrary
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer

LIBRARY = TypeLibrary.with_native_types()


@dataclass(frozen=True, slots=True)
class Fired:
    fb: str
    event: str
    values: dict[str, object]


async def wait_for_event(changed: asyncio.Event, cond: Callable[[], bool],
                         timeout_s: float = 3.0, what: str = "") -> None:
    """Wait until `cond()` holds, re-checking each time `changed` is set."""
    try:
        async with asyncio.timeout(timeout_s):
            while not cond():
                changed.clear()
                await changed.wait()
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout_s} s: {what}") from None


@dataclass
class Recorder(Tracer):
    """Every output event fired in a resource, with the values of its WITH outputs."""

    events: list[Fired] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_emit(self, fb: FBInstance, event: str) -> None:
        decl = fb.FB_TYPE.interface.event_output(event)
        values = {v: fb.get(v) for v in (decl.with_vars if decl else ())}
        self.events.append(Fired(fb.name, event, values))
        self.changed.set()  # resources run on the test's loop thread

    def of(self, fb: str, event: str) -> list[Fired]:
        return [e for e in self.events if e.fb == fb and e.event == event]

    async def wait(self, fb: str, event: str, count: int = 1, timeout_s: float = 5.0,
                   ) -> list[Fired]:
        """The first `count` firings of `fb.event`, waiting up to `timeout_s`."""
        await self.until(lambda: len(self.of(fb, event)) >= count, timeout_s,
                         f"{fb}.{event} x{count}")
        return self.of(fb, event)[:count]

    async def until(self, cond: Callable[[], bool], timeout_s: float = 5.0,
                    what: str = "") -> None:
        """Wait until `cond()` holds, re-checking after every fired event."""
        await wait_for_event(self.changed, cond, timeout_s, what)


@asynccontextmanager
async def running_device(name: str = "dev", *, check_io_pool: bool = False,
                         ) -> AsyncIterator[Device]:
    """A real-clock device on the current loop until the block ends.

    With `check_io_pool`, asserts afterwards that the device's I/O pool thread ended.
    """
    device = Device(name, library=LIBRARY)
    device.console = lambda line: None
    async with asyncio.TaskGroup() as tg:
        tg.create_task(device.run(), name=f"device:{name}")
        await asyncio.sleep(0)
        try:
            yield device
        finally:
            device.shutdown("test over")
    if check_io_pool:
        from fb.io import pool_for

        pool = pool_for(device)
        assert await pool.wait_closed(10.0), "the I/O pool thread did not end"
        assert not pool.running


def new_resource(device: Device, name: str = "R") -> tuple[Resource, Recorder]:
    res = device.create_resource(name)
    rec = Recorder()
    res.add_tracer(rec)
    return res, rec


def qualified_fb(res: Resource, name: str, type_name: str, **params: str) -> FBInstance:
    """Create a service FB with QI=TRUE and the given parameters (literal text)."""
    fb = res.create_fb(name, type_name)
    res.write_parameter(f"{name}.QI", "TRUE")
    for pin, text in params.items():
        res.write_parameter(f"{name}.{pin}", text)
    return fb
