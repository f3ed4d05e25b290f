"""Composite FBs: flattened into the resource, with FORTE's WITH boundary."""

from __future__ import annotations

import pytest

from testbed.fbdef import interface
from testbed.library import TypeLibrary
from testbed.model import CompositeFBType, ConnectionSpec, FBInstanceSpec, FBNetworkSpec
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.resource import Resource

COUNT = CompositeFBType(
    name="COUNT_C",
    interface=interface(ei="REQ(N) RST", eo="CNF(CV) DONE", inputs="N:UINT",
                        outputs="CV:UINT"),
    network=FBNetworkSpec(
        instances=(FBInstanceSpec("CTR", "E_CTU"), FBInstanceSpec("SW", "E_SWITCH")),
        event_connections=(ConnectionSpec("REQ", "CTR.CU"), ConnectionSpec("RST", "CTR.R"),
                           ConnectionSpec("CTR.CUO", "CNF"), ConnectionSpec("CTR.CUO", "SW.EI"),
                           ConnectionSpec("SW.EO1", "DONE")),
        data_connections=(ConnectionSpec("N", "CTR.PV"), ConnectionSpec("CTR.CV", "CV"),
                          ConnectionSpec("CTR.Q", "SW.G")),
    ),
)

OUTER = CompositeFBType(
    name="OUTER_C",
    interface=interface(ei="GO", eo="OUT(CV)", outputs="CV:UINT"),
    network=FBNetworkSpec(
        instances=(FBInstanceSpec("INNER", "COUNT_C", {"N": "UINT#2"}),),
        event_connections=(ConnectionSpec("GO", "INNER.REQ"), ConnectionSpec("INNER.CNF", "OUT")),
        data_connections=(ConnectionSpec("INNER.CV", "CV"),),
    ),
)


@pytest.fixture
def r() -> Resource:
    lib = TypeLibrary.with_native_types()
    lib.add(COUNT, "tests")
    lib.add(OUTER, "tests")
    device = Device("t", library=lib, clock=VirtualClock())
    return device.create_resource("R")


def test_composite_is_flattened_with_inner_fbs_in_the_resource(r: Resource) -> None:
    """Inner FBs live in the resource as `<composite>.<inner>`."""
    r.create_fb("C", "COUNT_C")
    assert {"C", "C.CTR", "C.SW"} <= set(r.fbs)


def test_composite_boundary_samples_and_publishes_with(r: Resource) -> None:
    """N is sampled when REQ enters; CV reaches the outside only with CNF."""
    r.create_fb("C", "COUNT_C")
    r.create_fb("SRC", "UINT2UINT")
    r.create_fb("DST", "UINT2UINT")
    r.connect("SRC.OUT", "C.N")
    r.connect("C.CV", "DST.IN")
    r.connect("C.CNF", "DST.REQ")
    r.write_parameter("SRC.IN", "2")
    r.start()
    r.inject("SRC.REQ")
    r.run_until_idle()
    r.inject("C.REQ")
    r.run_until_idle()
    assert r.read("C.CTR.PV") == 2
    assert r.read("C.CV") == 1
    assert r.read("DST.OUT") == 1
    r.inject("C.REQ")
    r.run_until_idle()
    assert r.read("C.CTR.Q") is True
    assert r.read("DST.OUT") == 2


def test_composite_output_events_fire_from_inner_events(r: Resource) -> None:
    """An inner event wired to an interface output event fires it outside."""
    r.create_fb("C", "COUNT_C")
    r.create_fb("E", "E_CTU")
    r.connect("C.DONE", "E.CU")
    r.write_parameter("C.N", "1")
    r.start()
    r.inject("C.REQ")
    r.run_until_idle()
    assert r.read("E.CV") == 1


def test_nested_composites_and_instance_parameters(r: Resource) -> None:
    """A composite inside a composite; the inner instance's parameter applies."""
    r.create_fb("O", "OUTER_C")
    r.start()
    r.inject("O.GO")
    r.run_until_idle()
    assert r.read("O.INNER.CTR.PV") == 2
    assert r.read("O.CV") == 1


def test_deleting_a_composite_removes_its_inner_fbs(r: Resource) -> None:
    """DELETE of the composite also deletes the flattened inner FBs."""
    r.create_fb("C", "COUNT_C")
    r.delete_fb("C")
    assert not any(name.startswith("C") for name in r.fbs if name != "START")
