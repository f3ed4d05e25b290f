"""Field-I/O FB test helpers: a real-clock device, an event recorder, a pump PLC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from drivers.sim.plc import PlcConfig, SimulatedPlc, default_profile_path
from fb.io import pool_for
from testbed.library import TypeLibrary
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer

LIBRARY = TypeLibrary.with_native_types()
SPEED = "Plant/Pump1/Drive/ShaftSpeed"
SPEED_COMMAND = "Plant/Pump1/Drive/SpeedCommand"


def pump_plc(scan_ms: float = 10.0) -> SimulatedPlc:
    """A pump PLC on free loopback ports."""
    config = PlcConfig(opcua_port=0, modbus_port=0, scan_ms=scan_ms)
    return SimulatedPlc.from_profile_file(default_profile_path("pump"), config, seed=11)


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
        self.changed.set()

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
        try:
            async with asyncio.timeout(timeout_s):
                while not cond():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"not reached within {timeout_s} s: {what}") from None


@asynccontextmanager
async def running_device(name: str = "io") -> AsyncIterator[Device]:
    """A real-clock device on the current loop; on exit its I/O pool thread must end."""
    device = Device(name, library=LIBRARY)
    device.console = lambda line: None
    async with asyncio.TaskGroup() as tg:
        tg.create_task(device.run(), name=f"device:{name}")
        await asyncio.sleep(0)
        try:
            yield device
        finally:
            device.shutdown("test over")
    stopped = await pool_for(device).wait_closed(10.0)
    assert stopped, "the I/O pool thread did not end"
    assert not pool_for(device).running


def new_resource(device: Device, name: str = "R") -> tuple[Resource, Recorder]:
    res = device.create_resource(name)
    rec = Recorder()
    res.add_tracer(rec)
    return res, rec


def io_fb(res: Resource, name: str, type_name: str, **params: str) -> FBInstance:
    """Create an FB with QI=TRUE and the given parameters (literal text)."""
    fb = res.create_fb(name, type_name)
    res.write_parameter(f"{name}.QI", "TRUE")
    for pin, text in params.items():
        res.write_parameter(f"{name}.{pin}", text)
    return fb
