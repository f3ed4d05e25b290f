"""Comm FB test helpers: a real-clock device on the test's loop and an event recorder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from testbed.library import TypeLibrary
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer

_LIBRARY = TypeLibrary.with_native_types()


@dataclass(frozen=True, slots=True)
class Fired:
    fb: str
    event: str
    values: dict[str, object]


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

    async def wait(self, fb: str, event: str, count: int = 1, timeout_s: float = 3.0,
                   ) -> list[Fired]:
        """The first `count` firings of `fb.event`, waiting up to `timeout_s` for them."""
        await wait_for_event(self.changed, lambda: len(self.of(fb, event)) >= count,
                             timeout_s, f"{fb}.{event} x{count}")
        return self.of(fb, event)[:count]


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


@asynccontextmanager
async def running_device(name: str = "dev") -> AsyncIterator[Device]:
    """A real-clock device whose resources run on the current loop until the block ends."""
    device = Device(name, library=_LIBRARY)
    device.console = lambda line: None
    async with asyncio.TaskGroup() as tg:
        tg.create_task(device.run(), name=f"device:{name}")
        await asyncio.sleep(0)
        try:
            yield device
        finally:
            device.shutdown("test over")


def new_resource(device: Device, name: str = "R") -> tuple[Resource, Recorder]:
    res = device.create_resource(name)
    rec = Recorder()
    res.add_tracer(rec)
    return res, rec


def comm_fb(res: Resource, name: str, type_name: str, comm_id: str) -> FBInstance:
    fb = res.create_fb(name, type_name)
    res.write_parameter(f"{name}.QI", "TRUE")
    res.write_parameter(f"{name}.ID", comm_id)
    return fb
