"""Adapters: plug and socket share data directly and exchange events through the queue."""

from __future__ import annotations

import pytest

from testbed.errors import NetworkError
from testbed.fbdef import basic_fb, interface
from testbed.library import TypeLibrary
from testbed.model import AdapterType
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.resource import Resource

AREQ = AdapterType("AREQ", interface(ei="CNF", eo="REQ", inputs="OUT:INT", outputs="IN:INT"))

ASKER = basic_fb(
    "ASKER", interface(ei="GO(X)", eo="DONE(RESULT)", inputs="X:INT", outputs="RESULT:INT",
                       plugs="P:AREQ"),
    states="START SEND[ask/P.REQ] WAIT DONE[take/DONE]",
    transitions="START->SEND: GO; SEND->WAIT: 1; WAIT->DONE: P.CNF; DONE->START: 1",
    algorithms={"ask": "P.IN = X", "take": "RESULT = P.OUT"})

DOUBLER = basic_fb(
    "DOUBLER", interface(sockets="S:AREQ"),
    states="START WORK[double/S.CNF]",
    transitions="START->WORK: S.REQ; WORK->START: 1",
    algorithms={"double": "S.OUT = S.IN * 2"})


@pytest.fixture
def r() -> Resource:
    lib = TypeLibrary.with_native_types()
    for t in (AREQ, ASKER, DOUBLER):
        lib.add(t, "tests")
    return Device("t", library=lib, clock=VirtualClock()).create_resource("R")


def test_plug_and_socket_round_trip(r: Resource) -> None:
    """The plug's REQ reaches the socket, whose CNF comes back; data is shared directly."""
    asker = r.create_fb("A", "ASKER")
    r.create_fb("D", "DOUBLER")
    r.connect("A.P", "D.S")
    r.write_parameter("A.X", "21")
    r.start()
    r.inject("A.GO")
    r.run_until_idle()
    assert asker.get("RESULT") == 42
    assert asker.P is r.fbs["D"].S  # type: ignore[attr-defined]


def test_unconnected_plug_sends_nowhere(r: Resource) -> None:
    """Without an adapter connection the plug's events go nowhere and nothing fails."""
    asker = r.create_fb("A", "ASKER")
    r.start()
    r.inject("A.GO")
    r.run_until_idle()
    assert asker.get("RESULT") == 0
    assert r.statistics().faults == 0


def test_adapter_connection_rules(r: Resource) -> None:
    """Plug to socket only, once each; disconnect gives the socket its own data again."""
    r.create_fb("A", "ASKER")
    r.create_fb("B", "ASKER")
    r.create_fb("D", "DOUBLER")
    with pytest.raises(NetworkError):
        r.connect("A.P", "B.P")
    r.connect("A.P", "D.S")
    with pytest.raises(NetworkError):
        r.connect("B.P", "D.S")
    r.disconnect("A.P", "D.S")
    assert r.fbs["A"].P is not r.fbs["D"].S  # type: ignore[attr-defined]
