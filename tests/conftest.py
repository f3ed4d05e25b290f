"""Shared fixtures: the native type library and virtual-clock devices."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.library import TypeLibrary
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.resource import Resource


@pytest.fixture(scope="session")
def library() -> TypeLibrary:
    """The native type library (compiled classes are cached inside it)."""
    return TypeLibrary.with_native_types()


@pytest.fixture
def vdevice(library: TypeLibrary) -> Iterator[Device]:
    """A device on a virtual clock whose console output is collected in `device.lines`."""
    device = Device("test", library=library, clock=VirtualClock())
    lines: list[str] = []
    device.console = lines.append
    device.lines = lines  # type: ignore[attr-defined]
    yield device
    device.kill()


@pytest.fixture
def res(vdevice: Device) -> Resource:
    """One EMB_RES resource on the virtual-clock device."""
    return vdevice.create_resource("RES")
