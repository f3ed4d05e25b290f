"""Event semantics of a resource, checked against DESIGN's rules (FORTE's behaviour)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from testbed.errors import NetworkError, PathError
from testbed.fbdef import basic_fb, interface
from testbed.library import TypeLibrary
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer
from testbed.runtime.service import ServiceFB


class SRC(ServiceFB):
    """Test source: on REQ sets OUT to each value of `plan` and fires CNF for each."""

    INTERFACE = interface(ei="REQ", eo="CNF(OUT) OTHER", outputs="OUT:DINT AUX:DINT")
    plan: tuple[int, ...] = (1,)

    def on_REQ(self) -> None:
        for v in self.plan:
            self.OUT = v
            self.AUX = v * 10
            self.emit_CNF()


class SINK(ServiceFB):
    """Test sink: records (IN, X) at each REQ; X is sampled only by the other event."""

    INTERFACE = interface(ei="REQ(IN) SETX(X)", eo="CNF", inputs="IN:DINT X:DINT")

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self.seen: list[tuple[int, int]] = []

    def on_REQ(self) -> None:
        self.seen.append((self.IN, self.X))
        self.emit_CNF()

    def on_SETX(self) -> None:
        pass


class BOOM(ServiceFB):
    """Raises on REQ to check that a failing FB does not stop the resource."""

    INTERFACE = interface(ei="REQ", eo="CNF")

    def on_REQ(self) -> None:
        raise RuntimeError("boom")


class Recorder(Tracer):
    def __init__(self) -> None:
        self.fired: list[str] = []
        self.taken: list[str] = []

    def on_emit(self, fb: FBInstance, event: str) -> None:
        self.fired.append(f"{fb.name}.{event}")

    def on_input(self, fb: FBInstance, event: str) -> None:
        self.taken.append(f"{fb.name}.{event}")


LOOPER = basic_fb(
    "LOOPER", interface(ei="GO", eo="DONE"),
    states="START A B", transitions="START->A: GO; A->B: 1; B->A: 1")


@pytest.fixture
def lib() -> TypeLibrary:
    lib = TypeLibrary.with_native_types()
    for cls in (SRC, SINK, BOOM):
        lib.add(cls.FB_TYPE, "tests")
    lib.add(LOOPER, "tests")
    return lib


@pytest.fixture
def r(lib: TypeLibrary) -> Resource:
    device = Device("t", library=lib, clock=VirtualClock())
    device.console = lambda _t: None
    return device.create_resource("R")


def test_fifo_breadth_first_order(r: Resource) -> None:
    """Output events go to the back of the queue: siblings run before grandchildren."""
    for name in ("S", "A", "B"):
        r.create_fb(name, "E_SPLIT")
    r.connect("START.COLD", "S.EI")
    r.connect("S.EO1", "A.EI")
    r.connect("S.EO2", "B.EI")
    rec = Recorder()
    r.add_tracer(rec)
    r.start()
    r.run_until_idle()
    assert rec.taken == ["S.EI", "A.EI", "B.EI"]
    assert rec.fired == ["START.COLD", "S.EO1", "S.EO2", "A.EO1", "A.EO2", "B.EO1", "B.EO2"]


def test_fan_out_follows_connection_creation_order(r: Resource) -> None:
    """One output event to several inputs: destinations are queued in creation order."""
    for name in ("C", "B", "A"):
        r.create_fb(name, "E_SPLIT")
    for name in ("C", "A", "B"):
        r.connect("START.COLD", f"{name}.EI")
    rec = Recorder()
    r.add_tracer(rec)
    r.start()
    r.run_until_idle()
    assert rec.taken == ["C.EI", "A.EI", "B.EI"]


def test_with_sampling_happens_when_the_event_is_processed(r: Resource) -> None:
    """Two queued events from one source are both processed with the latest value (FORTE)."""
    src = r.create_fb("S", "SRC")
    assert isinstance(src, SRC)
    src.plan = (1, 2)
    sink = r.create_fb("K", "SINK")
    assert isinstance(sink, SINK)
    r.connect("START.COLD", "S.REQ")
    r.connect("S.CNF", "K.REQ")
    r.connect("S.OUT", "K.IN")
    r.start()
    r.run_until_idle()
    assert sink.seen == [(2, 0), (2, 0)]


def test_inputs_outside_with_keep_their_last_sampled_value(r: Resource) -> None:
    """X is sampled only by SETX; a REQ reads the value SETX last sampled, not the newest."""
    src = r.create_fb("S", "SRC")
    assert isinstance(src, SRC)
    sink = r.create_fb("K", "SINK")
    assert isinstance(sink, SINK)
    r.connect("S.CNF", "K.SETX")
    r.connect("S.OUT", "K.X")
    r.start()
    src.plan = (5,)
    r.inject("S.REQ")
    r.run_until_idle()
    src.plan = (9,)
    r.connect("S.OTHER", "K.REQ")
    src.emit("OTHER")  # REQ with X connected but not in REQ's WITH
    r.run_until_idle()
    assert sink.seen == [(0, 5)]


def test_outputs_not_in_with_are_not_published(r: Resource) -> None:
    """AUX is in no WITH list: its connection keeps the initial value."""
    r.create_fb("S", "SRC")
    sink = r.create_fb("K", "SINK")
    assert isinstance(sink, SINK)
    r.connect("START.COLD", "S.REQ")
    r.connect("S.CNF", "K.REQ")
    r.connect("S.AUX", "K.IN")
    r.start()
    r.run_until_idle()
    assert sink.seen == [(0, 0)]
    assert r.read("S.AUX") == 10


def test_queue_overflow_drops_newest_and_counts(lib: TypeLibrary) -> None:
    """Past capacity the newest events are dropped, counted and logged; the rest run."""
    device = Device("t", library=lib, clock=VirtualClock(), queue_capacity=4)
    r = device.create_resource("R")
    for i in range(10):
        r.create_fb(f"M{i}", "E_MERGE")
        r.connect("START.COLD", f"M{i}.EI1")
    rec = Recorder()
    r.add_tracer(rec)
    r.start()
    r.run_until_idle()
    stats = r.statistics()
    assert stats.events_dropped == 6
    assert stats.queue_high_water == 4
    assert rec.taken == ["M0.EI1", "M1.EI1", "M2.EI1", "M3.EI1"]


def test_eventless_cycle_is_reported_not_hung(r: Resource) -> None:
    """A cycle of `1` transitions is stopped by the step bound and counted as a fault."""
    r.create_fb("L", "LOOPER")
    r.create_fb("S", "E_SPLIT")
    r.connect("START.COLD", "L.GO")
    r.connect("START.COLD", "S.EI")
    rec = Recorder()
    r.add_tracer(rec)
    r.start()
    r.run_until_idle()
    assert r.statistics().faults == 1
    assert "S.EI" in rec.taken  # the resource went on with the next event


def test_failing_fb_does_not_stop_the_resource(r: Resource) -> None:
    """An exception in one FB is logged and counted; later events still run."""
    r.create_fb("B", "BOOM")
    counter = r.create_fb("C", "E_CTU")
    r.connect("START.COLD", "B.REQ")
    r.connect("START.COLD", "C.CU")
    r.start()
    r.run_until_idle()
    assert r.statistics().faults == 1
    assert counter.get("CV") == 1


def test_data_fan_in_is_rejected(r: Resource) -> None:
    """A data input has one source: a second connection raises NetworkError."""
    r.create_fb("A", "E_CTU")
    r.create_fb("B", "E_CTU")
    r.create_fb("C", "E_SWITCH")
    r.connect("A.Q", "C.G")
    with pytest.raises(NetworkError):
        r.connect("B.Q", "C.G")


def test_type_mismatch_is_rejected(r: Resource) -> None:
    """UINT output to BOOL input is refused; UINT to DINT (widening) is allowed."""
    r.create_fb("A", "E_CTU")
    r.create_fb("C", "E_SWITCH")
    r.create_fb("D", "DINT2DINT")
    with pytest.raises(NetworkError):
        r.connect("A.CV", "C.G")
    r.connect("A.CV", "D.IN")


def test_unknown_paths_name_the_nearest(r: Resource) -> None:
    """An unknown FB or pin raises PathError (a KeyError) naming near matches."""
    r.create_fb("Counter", "E_CTU")
    with pytest.raises(PathError, match="Counter"):
        r.read("Countr.CV")
    with pytest.raises(KeyError, match="CV"):
        r.read("Counter.CVV")


def test_online_delete_keeps_other_state(r: Resource) -> None:
    """Deleting an FB from a running resource leaves other FBs' state and flow intact."""
    a = r.create_fb("A", "E_CTU")
    r.create_fb("B", "E_CTU")
    r.connect("START.COLD", "A.CU")
    r.connect("A.CUO", "B.CU")
    r.start()
    r.run_until_idle()
    r.delete_fb("B")
    r.inject("A.CU")
    r.run_until_idle()
    assert a.get("CV") == 2
    assert all("B" not in (c.source.split(".")[0], c.destination.split(".")[0])
               for c in r.connections)


def test_restart_events_and_reset_reapply_parameters(r: Resource) -> None:
    """COLD on first start, WARM after stop/start; RESET restores parameters."""
    counter = r.create_fb("C", "E_CTU")
    r.write_parameter("C.PV", "7")
    r.connect("START.COLD", "C.CU")
    r.connect("START.WARM", "C.CU")
    r.connect("START.STOP", "C.R")
    r.start()
    r.run_until_idle()
    assert counter.get("CV") == 1
    r.stop()
    assert counter.get("CV") == 0  # STOP was processed before stopping
    r.start()
    r.run_until_idle()
    assert counter.get("CV") == 1
    counter.set("PV", 99)
    r.reset()
    assert counter.get("PV") == 7
    assert counter.get("CV") == 0


async def test_external_posts_from_threads_are_processed(lib: TypeLibrary) -> None:
    """Work posted from other threads runs inside the resource task, in order."""
    device = Device("t", library=lib)
    r = device.create_resource("R")
    counter = r.create_fb("C", "E_CTU")
    r.start()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def producer() -> None:
        for _ in range(100):
            r.post(r.resolve_handler("C.CU"))
        r.post(lambda: loop.call_soon(done.set))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(device.run())
        thread = threading.Thread(target=producer)
        thread.start()
        await asyncio.wait_for(done.wait(), 5)
        thread.join()
        device.shutdown()
    assert counter.get("CV") == 100
    assert r.statistics().external_posted == 101


async def test_a_burst_of_thread_posts_wakes_the_sleeping_resource_once(lib: TypeLibrary) -> None:
    """Posts from a worker thread while the resource sleeps send one wake-up, not one each.

    Each wake-up writes the loop's self-pipe (a syscall that hands the GIL over): an
    inference batch's 256 results cost 34 us each that way. None of the posts is lost.
    """
    device = Device("t", library=lib)
    r = device.create_resource("R")
    counter = r.create_fb("C", "E_CTU")
    r.start()
    loop = asyncio.get_running_loop()
    wakes = 0
    plain = loop.call_soon_threadsafe

    def counting(callback: object, *args: object) -> object:
        nonlocal wakes
        wakes += 1
        return plain(callback, *args)  # type: ignore[arg-type]

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(device.run())
            await asyncio.sleep(0.01)  # the resource task starts and goes to sleep
            await r.wait_idle()
            for burst in range(1, 4):
                wakes_before = wakes
                thread = threading.Thread(
                    target=lambda: [r.post(r.resolve_handler("C.CU")) for _ in range(200)])
                thread.start()
                thread.join()  # all 200 posted while the resource task still sleeps
                async with asyncio.timeout(5):
                    await r.wait_idle()
                assert counter.get("CV") == 200 * burst
                assert wakes - wakes_before == 1
            device.shutdown()
    finally:
        del loop.call_soon_threadsafe
    assert counter.get("CV") == 600
    assert r.statistics().external_posted == 600


def test_external_overflow_policy_counts_drops(lib: TypeLibrary) -> None:
    """A full external queue drops by policy and counts it."""
    device = Device("t", library=lib, clock=VirtualClock(), external_capacity=3)
    r = device.create_resource("R")
    counter = r.create_fb("C", "E_CTU")
    r.start()
    accepted = [r.post(r.resolve_handler("C.CU")) for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    r.run_until_idle()
    assert counter.get("CV") == 3
    assert r.statistics().external_dropped == 2
