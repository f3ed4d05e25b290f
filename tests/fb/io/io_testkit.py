"""Field-I/O FB test helpers: the shared FB harness plus a pump PLC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from drivers.sim.plc import PlcConfig, SimulatedPlc, default_profile_path
from fb_harness import LIBRARY, Fired, Recorder, new_resource
from fb_harness import qualified_fb as io_fb
from fb_harness import running_device as _running_device
from testbed.runtime.device import Device

__all__ = ["LIBRARY", "SPEED", "SPEED_COMMAND", "Fired", "Recorder", "io_fb", "new_resource",
           "pump_plc", "running_device"]

SPEED = "Plant/Pump1/Drive/ShaftSpeed"
SPEED_COMMAND = "Plant/Pump1/Drive/SpeedCommand"


def pump_plc(scan_ms: float = 10.0) -> SimulatedPlc:
    """A pump PLC on free loopback ports."""
    config = PlcConfig(opcua_port=0, modbus_port=0, scan_ms=scan_ms)
    return SimulatedPlc.from_profile_file(default_profile_path("pump"), config, seed=11)


@asynccontextmanager
async def running_device(name: str = "io") -> AsyncIterator[Device]:
    """A real-clock device; on exit its I/O pool thread must have ended."""
    async with _running_device(name, check_io_pool=True) as device:
        yield device
