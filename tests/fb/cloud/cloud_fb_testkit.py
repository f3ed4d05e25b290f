"""Cloud FB test helpers: the shared FB harness (see tests/fb_harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fb_harness import LIBRARY, Fired, Recorder, new_resource
from fb_harness import qualified_fb as cloud_fb
from fb_harness import running_device as _running_device
from testbed.runtime.device import Device

__all__ = ["LIBRARY", "Fired", "Recorder", "cloud_fb", "new_resource", "running_device"]


@asynccontextmanager
async def running_device(name: str = "io") -> AsyncIterator[Device]:
    """A real-clock device; on exit its I/O pool thread must have ended."""
    async with _running_device(name, check_io_pool=True) as device:
        yield device
