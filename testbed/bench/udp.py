"""`udp_roundtrip_p99_ms`: PUBLISH/SUBSCRIBE round trip over UDP loopback against plain asyncio.

Two devices in this process ping-pong one DINT: A.PUB -> B.SUB -> B.PUB -> A.SUB ->
A.PUB ... (fbdk[].ip[127.0.0.1:port], each subscriber on a port-0 socket). The time
between successive IND events of A.SUB is one round trip through two comm FB pairs,
two resources and the kernel. The baseline, measured in the same run on the same
loop, is a plain asyncio datagram echo of the same 5-byte payload (two datagrams per
round trip, as ours). The two alternate in rounds (ours, baseline, ours, ...) so that
load from other processes falls on both alike; each round gives its own p50 and p99
and the figures are the medians over the rounds, so one noisy round moves them little.

Reading a p99: anything that costs a fixed time every so often lands in a share of
the round trips proportional to their length. A 250 Hz timer tick (about 25 us in
a VM) hits one round trip per 4 ms, so a side whose round trip is over 40 us has
ticks in 1% of its samples and its p99 becomes p50 + tick; a preemption (another
process on the core) does the same with milliseconds, hence the preemption count.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from resource import RUSAGE_SELF, getrusage
from typing import cast

from testbed.bench.figures import Figure
from testbed.errors import BenchmarkError
from testbed.fbdef import interface
from testbed.runtime.device import Device
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB

__all__ = ["run_udp_bench"]

_PAYLOAD = bytes.fromhex("440000001a")  # DINT#26 as fbdk puts it on the wire
_WARMUP = 200


@dataclass(frozen=True, slots=True)
class _Round:
    """One side's measured round: round trips (ms), page faults and preemptions meanwhile."""

    trips: tuple[float, ...]
    page_faults: int
    preemptions: int


class _Stamps:
    """Arrival times of the round trips; kernel counters over the measured ones only."""

    def __init__(self, count: int) -> None:
        self.count = count  # warm-up included
        self.ns: list[int] = []
        self._usage: list[tuple[int, int]] = []

    def stamp(self) -> bool:
        """Record one arrival; True when `count` are in."""
        self.ns.append(time.perf_counter_ns())
        n = len(self.ns)
        if n == _WARMUP + 1 or n == self.count:
            usage = getrusage(RUSAGE_SELF)
            self._usage.append((usage.ru_minflt, usage.ru_nivcsw))
        return n >= self.count

    def measured(self) -> _Round:
        stamps = self.ns[_WARMUP:]
        (f0, p0), (f1, p1) = self._usage[0], self._usage[-1]
        return _Round(tuple((t1 - t0) / 1e6 for t0, t1 in itertools.pairwise(stamps)),
                      f1 - f0, p1 - p0)


class _RoundTripStamp(ServiceFB):
    """BENCH_STAMP: stamps each REQ (fired by ping's SUBSCRIBE.IND); done when enough are in.

    An FB on the IND rather than a resource Tracer: a tracer switches every FB of the
    resource to its traced class (three reports per round trip), an instrument cost the
    baseline, which stamps in its datagram callback, does not pay.
    """

    TYPE_NAME = "BENCH_STAMP"
    INTERFACE = interface(ei="REQ")

    def arm(self, count: int, done: asyncio.Event) -> _Stamps:
        self._stamps = _Stamps(count)
        self._done = done
        return self._stamps

    def on_REQ(self) -> None:
        if self._stamps.stamp():
            self._done.set()


def _subscriber_port(res: Resource, name: str) -> int:
    layer = getattr(res.fb(name), "layer", None)
    address = getattr(layer, "local_address", None)
    if not isinstance(address, tuple):
        raise BenchmarkError(f"{res.name}.{name} did not open a UDP socket")
    return int(address[1])


def _comm(res: Resource, name: str, type_name: str, comm_id: str) -> None:
    res.create_fb(name, type_name)
    res.write_parameter(f"{name}.QI", "TRUE")
    res.write_parameter(f"{name}.ID", comm_id)


async def _comm_fb_roundtrips(n: int) -> _Round:
    dev_a, dev_b = Device("ping"), Device("pong")
    for dev in (dev_a, dev_b):
        dev.console = lambda line: None
    dev_a.library.add(_RoundTripStamp.FB_TYPE, __name__)
    done = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(dev_a.run(), name="bench:ping")
        tg.create_task(dev_b.run(), name="bench:pong")
        await asyncio.sleep(0)
        try:
            a, b = dev_a.create_resource("A"), dev_b.create_resource("B")
            for res in (a, b):
                _comm(res, "SUB", "SUBSCRIBE_1", "fbdk[].ip[127.0.0.1:0]")
                res.create_fb("V", "DINT2DINT")
                res.connect("SUB.RD_1", "V.IN")
                res.start()
                res.inject("SUB.INIT")
            await asyncio.sleep(0.05)
            port_a, port_b = _subscriber_port(a, "SUB"), _subscriber_port(b, "SUB")
            _comm(a, "PUB", "PUBLISH_1", f"127.0.0.1:{port_b}")
            _comm(b, "PUB", "PUBLISH_1", f"127.0.0.1:{port_a}")
            a.write_parameter("PUB.SD_1", "DINT#26")
            b.connect("V.OUT", "PUB.SD_1")
            b.connect("SUB.IND", "V.REQ")
            b.connect("V.CNF", "PUB.REQ")
            a.connect("SUB.IND", "PUB.REQ")
            a.connect("PUB.INITO", "PUB.REQ")  # the first ping
            stamp = a.create_fb("STAMP", "BENCH_STAMP")
            assert isinstance(stamp, _RoundTripStamp)
            stamps = stamp.arm(n + _WARMUP + 1, done)
            a.connect("SUB.IND", "STAMP.REQ")  # after PUB.REQ: the next ping goes out first
            b.inject("PUB.INIT")
            await asyncio.sleep(0.02)
            a.inject("PUB.INIT")
            async with asyncio.timeout(60):
                await done.wait()
        finally:
            dev_a.shutdown("bench over")
            dev_b.shutdown("bench over")
    return stamps.measured()


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.transport.sendto(data, addr)


class _Pinger(asyncio.DatagramProtocol):
    def __init__(self, count: int, done: asyncio.Future[None]) -> None:
        self._done = done
        self.stamps = _Stamps(count)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.transport.sendto(_PAYLOAD)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if self.stamps.stamp():
            if not self._done.done():
                self._done.set_result(None)
            return
        self.transport.sendto(data)


async def _asyncio_echo_roundtrips(n: int) -> _Round:
    loop = asyncio.get_running_loop()
    echo_transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    port = echo_transport.get_extra_info("sockname")[1]
    done: asyncio.Future[None] = loop.create_future()
    pinger = _Pinger(n + _WARMUP + 1, done)
    ping_transport, _ = await loop.create_datagram_endpoint(
        lambda: pinger, remote_addr=("127.0.0.1", port))
    try:
        async with asyncio.timeout(60):
            await done
    finally:
        ping_transport.close()
        echo_transport.close()
    return pinger.stamps.measured()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True, slots=True)
class _Side:
    """One side's round trips, kept per round (each round gives its own p50/p99)."""

    rounds: tuple[tuple[float, ...], ...]
    page_faults: int  # minor faults over all its rounds (see `_measured_round`)
    preemptions: int  # involuntary context switches over all its rounds

    def median_of(self, q: float) -> float:
        return statistics.median(_percentile(list(r), q) for r in self.rounds)

    def spread_of(self, q: float) -> str:
        per_round = [_percentile(list(r), q) for r in self.rounds]
        return f"{min(per_round) * 1000:.0f}-{max(per_round) * 1000:.0f} us"

    @property
    def samples(self) -> int:
        return sum(len(r) for r in self.rounds)

    def mean(self) -> float:
        return statistics.fmean(itertools.chain.from_iterable(self.rounds))

    def per_1000(self, count: int) -> float:
        return 1000 * count / max(1, self.samples)


def _pin_malloc_thresholds() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; False where that is not glibc.

    asyncio reads each datagram into a fresh 256 KiB buffer. With glibc's dynamic
    thresholds, whether freeing it trims the heap back to the OS depends on what the
    heap looked like before (garbage left by the previous round decides it): when it
    does, every buffer is faulted in again (4 faults per round trip) and the echo
    runs 2.5x slower for the rest of the run. Fixed thresholds take that heap-state
    lottery out of both sides; MALLOC_TRIM_THRESHOLD_ would do the same from outside.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_trim_threshold, 64 << 20)) and bool(mallopt(m_mmap_threshold, 1 << 20))


async def _measured_round(run: Callable[[int], Awaitable[_Round]], n: int) -> _Round:
    """One round from a collected heap.

    Each side starts without the other's garbage; the fault count shows a heap that
    faults its buffers in per datagram (see `_pin_malloc_thresholds`) if it recurs.
    The preemptions show contention: a round trip the scheduler cut into waits a
    whole time slice (milliseconds), so once preemptions pass 1% of a side's round
    trips its p99 measures the scheduler, and the slower side gets there first.
    """
    gc.collect()
    return await run(n)


def run_udp_bench(round_trips: int = 8000, rounds: int = 8) -> list[Figure]:
    """Both round trips in one run, in alternating rounds; medians of the per-round p50/p99.

    `round_trips` per side, split evenly over `rounds` rounds (each after its own
    warm-up of 200); a round needs 100 round trips at least for its p99.
    """
    if rounds < 1 or round_trips // rounds < 100:
        raise BenchmarkError(f"need at least 100 round trips per round for a p99 "
                             f"(got {round_trips} over {rounds} rounds)")
    per_round = round_trips // rounds
    pinned = _pin_malloc_thresholds()

    async def both() -> tuple[_Side, _Side]:
        # ours, baseline, ours, baseline...: a burst of load from other processes
        # falls on both sides alike, and one bad round moves the median little
        sides: tuple[list[_Round], list[_Round]] = ([], [])
        for _ in range(rounds):
            for out, run in ((sides[0], _comm_fb_roundtrips), (sides[1], _asyncio_echo_roundtrips)):
                out.append(await _measured_round(run, per_round))
        ours, base = (_Side(tuple(r.trips for r in side), sum(r.page_faults for r in side),
                            sum(r.preemptions for r in side)) for side in sides)
        return ours, base

    ours, base = asyncio.run(both())
    what = (f"ours: ping.PUBLISH_1 -> pong.SUBSCRIBE_1 -> DINT2DINT -> pong.PUBLISH_1 -> "
            f"ping.SUBSCRIBE_1, whose IND fires the next REQ (two devices, "
            f"fbdk[].ip[127.0.0.1:port], one DINT = 5 bytes, IND to IND); "
            f"baseline: plain asyncio datagram ping -> echo of the same 5 bytes; "
            f"same loop, {rounds} alternating rounds of {per_round} round trips per side "
            f"(+200 warm-up each, heap collected before each"
            f"{', glibc malloc thresholds fixed' if pinned else ''}); value = median of "
            f"the per-round percentiles")
    return [
        Figure("deploy", "udp_roundtrip_p50_ms", ours.median_of(0.50), "ms",
               "asyncio UDP echo p50", base.median_of(0.50),
               note=f"{what}; per-round p50 ours {ours.spread_of(0.50)}, "
                    f"baseline {base.spread_of(0.50)}"),
        Figure("deploy", "udp_roundtrip_p99_ms", ours.median_of(0.99), "ms",
               "asyncio UDP echo p99", base.median_of(0.99),
               note=f"per-round p99 ours {ours.spread_of(0.99)}, baseline "
                    f"{base.spread_of(0.99)}; target ratio <= 2"),
        Figure("deploy", "udp_roundtrip_mean_ms", ours.mean(), "ms",
               "asyncio UDP echo mean", base.mean(),
               note=f"all {ours.samples} round trips per side pooled; per 1000 measured "
                    f"round trips: minor page faults ours "
                    f"{ours.per_1000(ours.page_faults):.0f}, baseline "
                    f"{base.per_1000(base.page_faults):.0f}; preemptions ours "
                    f"{ours.per_1000(ours.preemptions):.0f}, baseline "
                    f"{base.per_1000(base.preemptions):.0f}; load {os.getloadavg()[0]:.1f} "
                    f"on {os.cpu_count()} CPUs"),
    ]
