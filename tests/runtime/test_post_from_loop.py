"""`Resource.post_from_loop`: I/O callbacks drain an idle resource at once, never from FB logic."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest

import testbed.runtime.resource as resource_module
from testbed.fbdef import interface
from testbed.library import TypeLibrary
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer
from testbed.runtime.service import ServiceFB


class FEED(ServiceFB):
    """On REQ hands `action` to another resource with post_from_loop (as a loc[] layer would)."""

    INTERFACE = interface(ei="REQ", eo="CNF")
    action: Callable[[], None] = staticmethod(lambda: None)

    def on_REQ(self) -> None:
        self.action()
        self.emit_CNF()


class BURST(ServiceFB):
    """On REQ fires CNF `count` times: a burst of internal events, no wake-up from outside."""

    INTERFACE = interface(ei="REQ", eo="CNF")
    count = 1000

    def on_REQ(self) -> None:
        for _ in range(self.count):
            self.emit_CNF()


class BOOM(ServiceFB):
    """Raises on REQ: a faulty FB in the middle of a chain."""

    INTERFACE = interface(ei="REQ", eo="CNF")

    def on_REQ(self) -> None:
        raise RuntimeError("boom")


@pytest.fixture
def lib() -> TypeLibrary:
    lib = TypeLibrary.with_native_types()
    for cls in (FEED, BURST, BOOM):
        lib.add(cls.FB_TYPE, "tests")
    return lib


@pytest.fixture
async def device(lib: TypeLibrary) -> AsyncIterator[Device]:
    dev = Device("t", library=lib)
    dev.console = lambda _t: None
    async with asyncio.TaskGroup() as tg:
        tg.create_task(dev.run())
        await asyncio.sleep(0)
        yield dev
        dev.shutdown("test over")


class _WhenCounted(Tracer):
    """Sets `done` when counter `fb` has counted to `n`."""

    def __init__(self, fb: str, n: int, done: asyncio.Event) -> None:
        self._fb, self._n, self._done = fb, n, done

    def on_emit(self, fb: FBInstance, event: str) -> None:
        if fb.name == self._fb and fb.get("CV") == self._n:
            self._done.set()


def _counters(r: Resource) -> None:
    """C.CUO drives D.CU: one external event and one consequence."""
    r.create_fb("C", "E_CTU")
    r.create_fb("D", "E_CTU")
    r.connect("C.CUO", "D.CU")
    r.start()


async def _settled(*resources: Resource) -> None:
    """Let the new drain tasks start, then wait until each sleeps idle."""
    await asyncio.sleep(0)
    async with asyncio.timeout(2):
        for r in resources:
            await r.wait_idle()


async def _in_callback(fn: Callable[[], object]) -> object:
    """Run `fn` as a plain loop callback (as a datagram handler runs) and return its result."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[object] = loop.create_future()
    loop.call_soon(lambda: result.set_result(fn()))
    return await result


async def test_idle_resource_runs_the_event_and_its_consequences_before_returning(
        device: Device) -> None:
    """From a loop callback, an idle resource takes the event and its consequences at once."""
    r = device.create_resource("R")
    _counters(r)
    await _settled(r)

    def deliver() -> tuple[bool, object, object]:
        accepted = r.post_from_loop(r.resolve_handler("C.CU"))
        return accepted, r.read("C.CV"), r.read("D.CV")

    assert await _in_callback(deliver) == (True, 1, 1)
    assert r.idle
    assert r.statistics().external_posted == 1


async def test_entries_already_queued_run_first(device: Device) -> None:
    """An entry posted earlier and not yet taken runs before the new one (FIFO, one per round)."""
    r = device.create_resource("R")
    _counters(r)
    await _settled(r)
    order: list[str] = []

    def deliver() -> None:
        r.post(lambda: order.append(f"first sees D.CV={r.read('D.CV')}"))
        r.post_from_loop(r.resolve_handler("C.CU"))
        r.post_from_loop(lambda: order.append(f"last sees D.CV={r.read('D.CV')}"))

    await _in_callback(deliver)
    assert order == ["first sees D.CV=0", "last sees D.CV=1"]


async def test_from_inside_fb_logic_it_only_queues(device: Device) -> None:
    """Posted from an FB's handler (another resource draining), the event waits for its turn."""
    src, dst = device.create_resource("SRC"), device.create_resource("DST")
    _counters(dst)
    order: list[str] = []
    feed = src.create_fb("F", "FEED")
    assert isinstance(feed, FEED)

    def action() -> None:
        order.append("handler starts")
        dst.post_from_loop(lambda: order.append("DST ran"))
        order.append("handler ends")

    feed.action = action
    src.start()
    await _settled(src, dst)

    def deliver() -> list[str]:
        src.post_from_loop(src.resolve_handler("F.REQ"))
        return list(order)  # SRC has run to completion, DST not yet

    assert await _in_callback(deliver) == ["handler starts", "handler ends"]
    async with asyncio.timeout(2):
        await dst.wait_idle()
    assert order == ["handler starts", "handler ends", "DST ran"]


async def test_from_another_thread_the_drain_task_takes_it(device: Device) -> None:
    """From a thread other than the loop's, the entry is queued and the drain task wakes."""
    r = device.create_resource("R")
    _counters(r)
    await _settled(r)
    ran_on: list[int] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def last() -> None:
        ran_on.append(threading.get_ident())
        loop.call_soon_threadsafe(done.set)

    def producer() -> None:
        r.post_from_loop(r.resolve_handler("C.CU"))
        r.post_from_loop(last)

    thread = threading.Thread(target=producer)
    thread.start()
    async with asyncio.timeout(2):
        await done.wait()
    thread.join()
    assert ran_on == [threading.get_ident()]
    assert (r.read("C.CV"), r.read("D.CV")) == (1, 1)


async def test_a_stopped_resource_refuses(device: Device) -> None:
    """A stopped resource takes nothing: post_from_loop returns False and nothing runs."""
    r = device.create_resource("R")
    _counters(r)
    await _settled(r)
    r.stop()
    assert await _in_callback(lambda: r.post_from_loop(r.resolve_handler("C.CU"))) is False
    assert r.read("C.CV") == 0


async def test_a_full_external_queue_drops_by_policy(lib: TypeLibrary) -> None:
    """With no drain task (nothing sleeps), entries queue up and the policy drops, counted."""
    dev = Device("t", library=lib, external_capacity=2)
    r = dev.create_resource("R")
    _counters(r)
    accepted = [r.post_from_loop(r.resolve_handler("C.CU")) for _ in range(3)]
    assert accepted == [True, True, False]
    assert r.statistics().external_dropped == 1
    r.run_until_idle()
    assert r.read("C.CV") == 2


async def test_a_burst_past_the_budget_is_finished_by_the_drain_task(
        device: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the time budget the callback stops after one slice; the woken drain task finishes."""
    monkeypatch.setattr(resource_module, "_BUDGET_S", 0.0)
    r = device.create_resource("R")
    _counters(r)
    await _settled(r)

    r.create_fb("B", "BURST")
    r.connect("B.CNF", "C.CU")
    done = asyncio.Event()
    r.add_tracer(_WhenCounted("D", 1000, done))

    def deliver() -> object:
        r.post_from_loop(r.resolve_handler("B.REQ"))
        return r.read("C.CV")

    counted_inline = await _in_callback(deliver)
    assert isinstance(counted_inline, int)
    assert 0 < counted_inline < 1000
    async with asyncio.timeout(2):
        await done.wait()  # not wait_idle: that would wake the task itself
    assert r.read("C.CV") == 1000


async def test_a_longer_chain_finishes_before_an_entry_posted_during_it(
        device: Device) -> None:
    """An external entry posted by FB logic waits until the consequences of the current one
    ran, also when they are more than the inline drain takes one by one (within a slice)."""
    r = device.create_resource("R")
    _counters(r)
    feed = r.create_fb("F", "FEED")
    assert isinstance(feed, FEED)
    burst = r.create_fb("B", "BURST")
    assert isinstance(burst, BURST)
    burst.count = 100  # past the one-by-one part, within one slice of 256
    r.connect("F.CNF", "B.REQ")
    r.connect("B.CNF", "C.CU")
    seen: list[object] = []

    def post_a_reader() -> None:
        r.post(lambda: seen.append(r.read("C.CV")))

    feed.action = post_a_reader
    await _settled(r)
    await _in_callback(lambda: r.post_from_loop(r.resolve_handler("F.REQ")))
    async with asyncio.timeout(2):
        await r.wait_idle()
    assert seen == [100]
    assert r.read("D.CV") == 100


async def test_a_failing_fb_in_the_chain_is_reported_and_the_chain_goes_on(
        device: Device) -> None:
    """An FB raising inside an inline drain is counted as a fault; the next events still run."""
    r = device.create_resource("R")
    r.create_fb("C", "E_CTU")
    r.create_fb("X", "BOOM")
    r.create_fb("D", "E_CTU")
    r.connect("C.CUO", "X.REQ")
    r.connect("C.CUO", "D.CU")
    r.start()
    await _settled(r)

    def deliver() -> tuple[object, int]:
        r.post_from_loop(r.resolve_handler("C.CU"))
        return r.read("D.CV"), r.statistics().faults

    assert await _in_callback(deliver) == (1, 1)


async def test_a_chain_longer_than_a_slice_finishes_before_the_next_entry(
        device: Device) -> None:
    """Past a slice of 256 events (the drain yields to the loop between slices), the
    consequences of the current external entry still run before the next entry is taken."""
    r = device.create_resource("R")
    _counters(r)
    feed = r.create_fb("F", "FEED")
    assert isinstance(feed, FEED)
    burst = r.create_fb("B", "BURST")
    assert isinstance(burst, BURST)
    burst.count = 2000  # several slices
    r.connect("F.CNF", "B.REQ")
    r.connect("B.CNF", "C.CU")
    seen: list[object] = []
    feed.action = lambda: r.post(lambda: seen.append(r.read("C.CV")))
    await _settled(r)
    await _in_callback(lambda: r.post_from_loop(r.resolve_handler("F.REQ")))
    async with asyncio.timeout(5):
        await r.wait_idle()
    assert seen == [2000]
