"""`udp_roundtrip_p99_ms`: PUBLISH/SUBSCRIBE round trip over UDP loopback against plain asyncio.

Two devices in this process ping-pong one DINT: A.PUB -> B.SUB -> B.PUB -> A.SUB ->
A.PUB ... (fbdk[].ip[127.0.0.1:port], each subscriber on a port-0 socket). The time
between successive IND events of A.SUB is one round trip through two comm FB pairs,
two resources and the kernel. The baseline, measured in the same run on the same
loop, is a plain asyncio datagram echo of the same 5-byte payload; the two alternate
in rounds so that load from other processes falls on both alike.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from typing import cast

from testbed.bench.figures import Figure
from testbed.errors import BenchmarkError
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer

__all__ = ["run_udp_bench"]

_PAYLOAD = bytes.fromhex("440000001a")  # DINT#26 as fbdk puts it on the wire
_WARMUP = 200
_ROUNDS = 4


class _RoundTrips(Tracer):
    """Timestamps every IND of one FB; stops the run after `count` of them."""

    def __init__(self, fb_name: str, count: int, done: asyncio.Event) -> None:
        self._fb = fb_name
        self._count = count
        self._done = done
        self.stamps_ns: list[int] = []

    def on_emit(self, fb: FBInstance, event: str) -> None:
        if event == "IND" and fb.name == self._fb:
            self.stamps_ns.append(time.perf_counter_ns())
            if len(self.stamps_ns) >= self._count:
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


async def _comm_fb_roundtrips(n: int) -> list[float]:
    dev_a, dev_b = Device("ping"), Device("pong")
    for dev in (dev_a, dev_b):
        dev.console = lambda line: None
    done = asyncio.Event()
    trips = _RoundTrips("SUB", n + _WARMUP + 1, done)
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
            a.add_tracer(trips)
            b.inject("PUB.INIT")
            await asyncio.sleep(0.02)
            a.inject("PUB.INIT")
            async with asyncio.timeout(60):
                await done.wait()
        finally:
            dev_a.shutdown("bench over")
            dev_b.shutdown("bench over")
    stamps = trips.stamps_ns[_WARMUP:]
    return [(t1 - t0) / 1e6 for t0, t1 in itertools.pairwise(stamps)]


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.transport.sendto(data, addr)


class _Pinger(asyncio.DatagramProtocol):
    def __init__(self, count: int, done: asyncio.Future[None]) -> None:
        self._count = count
        self._done = done
        self.stamps_ns: list[int] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.transport.sendto(_PAYLOAD)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.stamps_ns.append(time.perf_counter_ns())
        if len(self.stamps_ns) >= self._count:
            if not self._done.done():
                self._done.set_result(None)
            return
        self.transport.sendto(data)


async def _asyncio_echo_roundtrips(n: int) -> list[float]:
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
    stamps = pinger.stamps_ns[_WARMUP:]
    return [(t1 - t0) / 1e6 for t0, t1 in itertools.pairwise(stamps)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_udp_bench(round_trips: int = 2000) -> list[Figure]:
    """Measure both round trips in one run; p50 and p99 against the asyncio echo."""
    if round_trips < 100:
        raise BenchmarkError("need at least 100 round trips for a p99")

    async def both() -> tuple[list[float], list[float]]:
        # alternate rounds so a burst of load from other processes hits both sides alike
        ours: list[float] = []
        base: list[float] = []
        per_round = max(100, round_trips // _ROUNDS)
        for _ in range(_ROUNDS):
            base += await _asyncio_echo_roundtrips(per_round)
            ours += await _comm_fb_roundtrips(per_round)
        return ours, base

    ours, base = asyncio.run(both())
    note = (f"{len(ours)} round trips PUBLISH_1->SUBSCRIBE_1->PUBLISH_1->SUBSCRIBE_1 between "
            "two devices, fbdk[].ip[] on 127.0.0.1; baseline: asyncio datagram echo, "
            f"{_ROUNDS} alternating rounds in the same run")
    return [
        Figure("deploy", "udp_roundtrip_p50_ms", _percentile(ours, 0.50), "ms",
               "asyncio UDP echo p50", _percentile(base, 0.50), note=note),
        Figure("deploy", "udp_roundtrip_p99_ms", _percentile(ours, 0.99), "ms",
               "asyncio UDP echo p99", _percentile(base, 0.99), note=note),
        Figure("deploy", "udp_roundtrip_mean_ms", statistics.fmean(ours), "ms",
               "asyncio UDP echo mean", statistics.fmean(base)),
    ]
