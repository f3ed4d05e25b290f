"""Comm FB test helpers: the shared FB harness (see tests/fb_harness.py) plus `comm_fb`."""

from __future__ import annotations

from fb_harness import Fired, Recorder, new_resource, running_device, wait_for_event
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource

__all__ = ["Fired", "Recorder", "comm_fb", "new_resource", "running_device", "wait_for_event"]


def comm_fb(res: Resource, name: str, type_name: str, comm_id: str) -> FBInstance:
    fb = res.create_fb(name, type_name)
    res.write_parameter(f"{name}.QI", "TRUE")
    res.write_parameter(f"{name}.ID", comm_id)
    return fb
