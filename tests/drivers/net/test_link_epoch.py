"""EmulatedLink's epoch: its clock (and so its gate windows) can start at a chosen instant."""

from __future__ import annotations

import asyncio
import time

import pytest

from drivers.errors import DriverError
from drivers.net import EmulatedLink, GateEntry, GateSchedule, LinkProfile

MS = 1_000_000
CYCLE_NS = 200 * MS
# class 5 may send only in the first 10 ms of every 200 ms of link time
GATE = GateSchedule(entries=(GateEntry(duration_us=10_000, open_classes=frozenset({5})),
                             GateEntry(duration_us=190_000, open_classes=frozenset({0}))))


async def test_epoch_sets_the_link_clock_and_the_gate_phase() -> None:
    """With the epoch 50 ms ago, link time starts at 50 ms: a class-5 datagram sent then
    waits for the gate window at link time 200 ms."""
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[float] = asyncio.Queue()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            got.put_nowait(time.monotonic())

    sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    local_addr=("127.0.0.1", 0))
    try:
        epoch = time.monotonic_ns() - 50 * MS
        async with EmulatedLink(LinkProfile(gate=GATE), epoch_ns=epoch) as link:
            assert link.now_ns() >= 50 * MS
            port = await link.add_port(sink.get_extra_info("sockname"), traffic_class=5)
            sent_at = time.monotonic()
            sender.sendto(b"x", ("127.0.0.1", port.port))
            offset_ns = link.now_ns() % CYCLE_NS  # at or after the send, in link time
            arrived = await asyncio.wait_for(got.get(), 5)
            assert offset_ns >= 10 * MS  # sent while the class's gate was closed ...
            assert arrived - sent_at >= (CYCLE_NS - offset_ns) / 1e9 - 0.001  # ... it waited
            assert link.statistics().delivered == 1
    finally:
        sink.close()
        sender.close()


async def test_epoch_in_the_future_is_refused() -> None:
    """A link clock that would start in the future is a DriverError on entry."""
    link = EmulatedLink(LinkProfile(), epoch_ns=time.monotonic_ns() + 10**9)
    with pytest.raises(DriverError, match="future"):
        await link.__aenter__()
