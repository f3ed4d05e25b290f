"""4diac's E_TimeOut (a composite with an ATimeOut socket) serves a plug of ours."""

from __future__ import annotations

import pytest

from shared_material import shared_path
from testbed.fbdef import basic_fb, interface
from testbed.library import TypeLibrary
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Tracer

pytestmark = pytest.mark.conformance

USER = basic_fb("TIMEOUT_USER", interface(ei="GO", eo="LATE", plugs="T:ATimeOut"),
                states="START ARM[arm/T.START] WAIT FIRE[/LATE]",
                transitions="START->ARM: GO; ARM->WAIT: 1; WAIT->FIRE: T.TimeOut; "
                            "FIRE->START: 1",
                algorithms={"arm": "T.DT = 50_000_000"})


class Log(Tracer):
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.fired: list[tuple[int, str]] = []

    def on_emit(self, fb: FBInstance, event: str) -> None:
        self.fired.append((self.clock.now_ns() // 1_000_000, f"{fb.name}.{event}"))


def test_e_timeout_from_the_typelib_times_out_through_the_adapter() -> None:
    """START through the plug reaches the socket's inner E_DELAY; TimeOut comes back at DT."""
    from testbed.fourdiac.typelib import load_type_dirs

    lib = TypeLibrary.with_native_types()
    load_type_dirs(lib, [shared_path("4diac", "typelib", "events")], override=True)
    lib.add(USER, "tests")
    clock = VirtualClock()
    res = Device("t", library=lib, clock=clock).create_resource("R")
    res.create_fb("TO", "E_TimeOut")
    res.create_fb("U", "TIMEOUT_USER")
    res.connect("U.T", "TO.TimeOutSocket")
    log = Log(clock)
    res.add_tracer(log)
    res.start()
    res.inject("U.GO")
    res.run_until_idle()
    clock.advance(49_000_000)
    assert ("U.LATE" not in [e for _, e in log.fired])
    clock.advance(10_000_000)
    assert (50, "TO.TimeOutSocket.TimeOut") in log.fired
    assert (50, "U.LATE") in log.fired
