"""`testbed bench opcua|modbus|loop`: field I/O through FBs against raw stacks, same run.

The servers run in a child process (the "plant side"), so the client side of both the
baseline and the FB network gets the same CPU and the same GIL:

- opcua: N Double variables. Batched reads: raw asyncua `read_values` in a loop vs an
  OPCUA_READ_N whose CNF triggers the next REQ (values delivered as FB events).
  Subscriptions: the server changes all N values at a fixed rate; raw asyncua data-change
  notifications vs IND events of an OPCUA_SUBSCRIBE_N.
  Baseline and FB side run in alternating windows; each figure is the median of three.
- modbus: 500 holding registers spread over a 1,000-register span. The coalescing proof
  is the poll plan's requests per cycle (<= 8). Throughput: raw pymodbus doing the same
  reads back to back vs a MODBUS_POLL_500 polling as fast as it can (requests counted
  from IND events), six alternating rounds per side, medians reported with the spread of
  the per-round ratios.
- loop: the plant writes a counter into an OPC UA variable at 100 Hz; the FB network
  (OPCUA_SUBSCRIBE_1 -> MODBUS_WRITE_1) writes it into a holding register of the plant's
  Modbus server; the plant measures change-to-write latency (CLOCK_MONOTONIC is shared
  between processes). The subscription's publishing interval is 1 ms.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fb.io.base import IoFB
from testbed.bench.figures import Figure
from testbed.errors import BenchmarkError
from testbed.fbdef import interface
from testbed.library import TypeLibrary
from testbed.runtime.device import Device
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB

__all__ = ["run_loop_bench", "run_modbus_bench", "run_opcua_bench"]

_SPAN = 1000
_POINTS = 500
_LOOP_HZ = 100.0
_MODBUS_ROUNDS = 6


class BENCH_COUNT(ServiceFB):
    """Counts REQ events that arrive with QO=TRUE (the bench's FB-side sink)."""

    INTERFACE = interface(ei="REQ(QO)", inputs="QO:BOOL")

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self.good = 0
        self.bad = 0

    def on_REQ(self) -> None:
        if self.QO:
            self.good += 1
        else:
            self.bad += 1


# -- the plant side (child process) ------------------------------------------------------


def _plant_main(kind: str, conn: multiprocessing.connection.Connection, size: int,
                rate_hz: float) -> None:
    """Entry point of the child process: serve, report ports, stop on command."""
    from testbed.logconfig import configure_logging

    configure_logging("console", "warning")
    asyncio.run(_plant(kind, conn, size, rate_hz))


async def _plant(kind: str, conn: multiprocessing.connection.Connection, size: int,
                 rate_hz: float) -> None:
    from drivers.modbus import ModbusPoint, ModbusServer, ModbusTable, PointWrite
    from drivers.opcua import (
        AddressSpaceSpec,
        ObjectSpec,
        OpcUaServer,
        OpcUaServerConfig,
        VariableSpec,
    )

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    command: list[str] = []

    go = asyncio.Event()
    if kind != "loop":
        go.set()

    def on_command() -> None:
        command.append(str(conn.recv()))
        if command[-1] == "go":
            go.set()
        else:
            stop.set()

    variables = tuple(VariableSpec(name=f"V{i}", data_type="Double", initial=0.0)
                      for i in range(size))
    space = AddressSpaceSpec(nodes=(ObjectSpec(kind="folder", name="Plant",
                                               children=variables),))
    opcua = OpcUaServer(OpcUaServerConfig(port=0, publish_current_time=False), space)
    received: dict[int, float] = {}

    def wrote(writes: tuple[PointWrite, ...]) -> None:
        now = time.monotonic()
        for write in writes:
            if isinstance(write.value, int) and write.value not in received:
                received[write.value] = now

    points = [ModbusPoint(name=f"h{a}", table=ModbusTable.HOLDING_REGISTER, address=a,
                          writable=True) for a in range(0, _SPAN, _SPAN // _POINTS)]
    modbus = ModbusServer(points, port=0, on_write=wrote)
    async with opcua, modbus:
        conn.send((opcua.endpoint, opcua.namespace_index, modbus.port))
        loop.add_reader(conn.fileno(), on_command)
        sent: dict[int, float] = {}
        period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        await go.wait()
        start = time.monotonic()
        tick = 0
        while not stop.is_set():
            if period <= 0:
                await asyncio.sleep(0.1)
                continue
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * period - time.monotonic()))
            if kind == "loop":
                value = tick % 65536
                sent[value] = time.monotonic()
                await opcua.write_values({"Plant/V0": float(value)})
            else:
                await opcua.write_values({f"Plant/V{i}": float(tick) for i in range(size)})
        loop.remove_reader(conn.fileno())
        latencies = [(received[v] - t) * 1000.0 for v, t in sent.items() if v in received]
        conn.send((latencies, len(sent)))


class _Plant:
    """The child process running the servers."""

    def __init__(self, kind: str, size: int, rate_hz: float = 0.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_plant_main, args=(kind, child, size, rate_hz),
                                 name=f"bench-plant-{kind}", daemon=True)
        self._proc.start()
        if not self._conn.poll(60.0):
            self.close()
            raise BenchmarkError("the plant process did not start within 60 s")
        self.endpoint, self.namespace, self.modbus_port = self._conn.recv()

    def node_id(self, index: int) -> str:
        return f"ns={self.namespace};s=Plant.V{index}"

    def go(self) -> None:
        """Start the loop plant's writer (the FB network is ready)."""
        self._conn.send("go")

    def finish(self) -> tuple[list[float], int]:
        """Stop the plant's writer; its measured latencies (ms) and how many it sent."""
        self._conn.send("stop")
        if not self._conn.poll(30.0):
            raise BenchmarkError("the plant process did not report")
        latencies, sent = self._conn.recv()
        return list(latencies), int(sent)

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(10.0)


# -- the FB side -----------------------------------------------------------------------


def _library() -> TypeLibrary:
    library = TypeLibrary.with_native_types()
    library.add(BENCH_COUNT.FB_TYPE, __name__)
    return library


async def _run_device(device: Device, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async with asyncio.TaskGroup() as tg:
        tg.create_task(device.run(), name="bench-device")
        await asyncio.sleep(0)
        try:
            await body()
        finally:
            device.shutdown("bench done")
    from fb.io import pool_for

    await pool_for(device).wait_closed(10.0)


async def _wait_count(counter: BENCH_COUNT, count: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while counter.good + counter.bad < count:
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{what}: no FB events within {timeout_s} s")
        await asyncio.sleep(0.01)


def _fb_rate(setup: Callable[[Resource], BENCH_COUNT], seconds: float, what: str) -> float:
    """Good events per second counted by the network's BENCH_COUNT after a warm-up."""
    device = Device("bench", library=_library())
    res = device.create_resource("R")
    counter = setup(res)
    result: list[float] = []

    async def body() -> None:
        res.start()
        await _wait_count(counter, 5, 15.0, what)
        before, start = counter.good, time.perf_counter()
        await asyncio.sleep(seconds)
        result.append((counter.good - before) / (time.perf_counter() - start))

    asyncio.run(_run_device(device, body))
    if counter.bad:
        print(f"{what}: {counter.bad} events with QO=FALSE")
    return result[0]


@dataclass(frozen=True, slots=True)
class _Rounds:
    """Same-run measurements of the baseline and the FB side, one pair per round."""

    raw: tuple[float, ...]
    ours: tuple[float, ...]

    @property
    def raw_median(self) -> float:
        return statistics.median(self.raw)

    @property
    def our_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def ratios(self) -> tuple[float, ...]:
        """Per-round ratios ours/raw (each pair ran back to back)."""
        return tuple(o / r if r else 0.0 for o, r in zip(self.ours, self.raw, strict=True))

    def spread(self) -> str:
        ratios = sorted(self.ratios)
        return (f"per-round ratio min {ratios[0]:.3f}, median {statistics.median(ratios):.3f}, "
                f"max {ratios[-1]:.3f} over {len(ratios)} rounds")


def _alternate(raw: Callable[[], float], ours: Callable[[], float], rounds: int = 3
               ) -> _Rounds:
    """`rounds` back-to-back pairs of baseline and FB side, the order flipping each round
    (ours, raw, raw, ours, ...): shared machines are noisy, and alternating keeps a slow
    spell or a drift from landing on one side only."""
    raw_runs: list[float] = []
    our_runs: list[float] = []
    for index in range(rounds):
        if index % 2 == 0:
            our_runs.append(ours())
            raw_runs.append(raw())
        else:
            raw_runs.append(raw())
            our_runs.append(ours())
    return _Rounds(tuple(raw_runs), tuple(our_runs))


# -- opcua -----------------------------------------------------------------------------


def _raw_opcua_reads(plant: _Plant, nodes: int, seconds: float) -> float:
    from asyncua.client.client import Client

    async def main() -> float:
        async with Client(plant.endpoint) as client:
            targets = [client.get_node(plant.node_id(i)) for i in range(nodes)]
            await client.read_values(targets)
            reads, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                await client.read_values(targets)
                reads += 1
            return reads * nodes / (time.perf_counter() - start)

    return asyncio.run(main())


def _raw_opcua_subscription(plant: _Plant, nodes: int, seconds: float) -> float:
    from asyncua.client.client import Client

    class Handler:
        count = 0

        def datachange_notification(self, node: object, val: object, data: object) -> None:
            Handler.count += 1

    async def main() -> float:
        async with Client(plant.endpoint) as client:
            sub = await client.create_subscription(10.0, Handler())
            await sub.subscribe_data_change([client.get_node(plant.node_id(i))
                                             for i in range(nodes)])
            await asyncio.sleep(0.5)
            before, start = Handler.count, time.perf_counter()
            await asyncio.sleep(seconds)
            rate = (Handler.count - before) / (time.perf_counter() - start)
            await sub.delete()
            return rate

    return asyncio.run(main())


def run_opcua_bench(nodes: int = 100, seconds: float = 5.0, rate_hz: float = 100.0
                    ) -> list[Figure]:
    """Batched reads and subscriptions through FBs vs raw asyncua (values per second)."""
    plant = _Plant("opcua", nodes, rate_hz)
    window = seconds / 3
    try:

        def reader(res: Resource) -> BENCH_COUNT:
            res.create_fb("Read", f"OPCUA_READ_{nodes}")
            res.write_parameter("Read.QI", "TRUE")
            res.write_parameter("Read.ENDPOINT", plant.endpoint)
            for i in range(nodes):
                res.write_parameter(f"Read.NODE_{i + 1}", plant.node_id(i))
            counter = res.create_fb("Count", "BENCH_COUNT")
            res.connect("START.COLD", "Read.INIT")
            res.connect("Read.INITO", "Read.REQ")
            res.connect("Read.CNF", "Read.REQ")
            res.connect("Read.CNF", "Count.REQ")
            res.connect("Read.QO", "Count.QO")
            assert isinstance(counter, BENCH_COUNT)
            return counter

        reads = _alternate(
            lambda: _raw_opcua_reads(plant, nodes, window),
            lambda: _fb_rate(reader, window, "OPCUA_READ") * nodes)
        raw_reads, fb_reads = reads.raw_median, reads.our_median

        def subscriber(res: Resource) -> BENCH_COUNT:
            res.create_fb("Sub", f"OPCUA_SUBSCRIBE_{nodes}")
            res.write_parameter("Sub.QI", "TRUE")
            res.write_parameter("Sub.ENDPOINT", plant.endpoint)
            res.write_parameter("Sub.INTERVAL", "T#10ms")
            for i in range(nodes):
                res.write_parameter(f"Sub.NODE_{i + 1}", plant.node_id(i))
            counter = res.create_fb("Count", "BENCH_COUNT")
            res.connect("START.COLD", "Sub.INIT")
            res.connect("Sub.IND", "Count.REQ")
            res.connect("Sub.QO", "Count.QO")
            assert isinstance(counter, BENCH_COUNT)
            return counter

        subs = _alternate(
            lambda: _raw_opcua_subscription(plant, nodes, window),
            lambda: _fb_rate(subscriber, window, "OPCUA_SUBSCRIBE"))
        raw_sub, fb_sub = subs.raw_median, subs.our_median
    finally:
        plant.close()
    print(f"opcua: {nodes} Double nodes, server in a child process; medians of 3 alternating "
          f"{window:.3g} s windows per side")
    return [
        Figure("opcua", "values_per_s", fb_reads, "1/s", "raw asyncua read_values (same nodes)",
               raw_reads, note=f"OPCUA_READ_{nodes} CNF->REQ chain, batched reads"),
        Figure("opcua", "subscription_values_per_s", fb_sub, "1/s",
               "raw asyncua data-change notifications", raw_sub,
               note=f"OPCUA_SUBSCRIBE_{nodes} IND events; server changes all nodes at "
                    f"{rate_hz:g} Hz, publishing interval 10 ms"),
    ]


# -- modbus ----------------------------------------------------------------------------


def _raw_modbus_cycles(port: int, requests: list[tuple[int, int]], seconds: float) -> float:
    from pymodbus.client import AsyncModbusTcpClient

    async def main() -> float:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2)
        await client.connect()
        try:
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                for address, count in requests:
                    response = await client.read_holding_registers(address, count=count,
                                                                   device_id=1)
                    if response.isError():
                        raise BenchmarkError(f"raw pymodbus read failed: {response}")
                    done += 1
            return done / (time.perf_counter() - start)
        finally:
            client.close()

    return asyncio.run(main())


def run_modbus_bench(seconds: float = 5.0) -> list[Figure]:
    """Coalescing proof and polling throughput vs raw pymodbus (requests per second)."""
    from drivers.modbus import ModbusPoint, ModbusTable, build_poll_plan

    step = _SPAN // _POINTS
    points = [ModbusPoint(name=f"h{a}", table=ModbusTable.HOLDING_REGISTER, address=a)
              for a in range(0, _SPAN, step)]
    plan = build_poll_plan(points)
    per_cycle = plan.requests_per_cycle
    requests = [(r.address, r.count) for r in plan.requests]
    plant = _Plant("modbus", 1, 0.0)
    window = seconds / 3
    try:

        def poller(res: Resource) -> BENCH_COUNT:
            res.create_fb("Poll", f"MODBUS_POLL_{_POINTS}")
            res.write_parameter("Poll.QI", "TRUE")
            res.write_parameter("Poll.DEVICE", f"127.0.0.1:{plant.modbus_port}:1")
            res.write_parameter("Poll.ADDR", ",".join(p.name for p in points))
            res.write_parameter("Poll.INTERVAL", "T#100us")
            counter = res.create_fb("Count", "BENCH_COUNT")
            res.connect("START.COLD", "Poll.INIT")
            res.connect("Poll.IND", "Count.REQ")
            res.connect("Poll.QO", "Count.QO")
            assert isinstance(counter, BENCH_COUNT)
            return counter

        rounds = _alternate(
            lambda: _raw_modbus_cycles(plant.modbus_port, requests, window),
            lambda: _fb_rate(poller, window, "MODBUS_POLL") * per_cycle,
            rounds=_MODBUS_ROUNDS)
    finally:
        plant.close()
    print(f"modbus: {_POINTS} holding registers over a {_SPAN}-register span, "
          f"{per_cycle} requests per poll cycle; server in a child process; medians of "
          f"{_MODBUS_ROUNDS} alternating {window:.3g} s windows per side; {rounds.spread()}")
    return [
        Figure("modbus", "requests_per_s", rounds.our_median, "1/s",
               "raw pymodbus reads (same requests)", rounds.raw_median,
               note=f"MODBUS_POLL_{_POINTS} IND events x {per_cycle} requests; "
                    f"medians of {_MODBUS_ROUNDS} alternating rounds; {rounds.spread()}"),
        Figure("modbus", "requests_per_cycle", float(per_cycle), "1",
               note=f"{_POINTS} registers over a {_SPAN}-register span (target <= 8)"),
    ]


# -- closed loop -------------------------------------------------------------------------


def run_loop_bench(seconds: float = 10.0) -> list[Figure]:
    """OPC UA value change -> FB network -> Modbus write latency at 100 Hz (p50/p99)."""
    plant = _Plant("loop", 1, _LOOP_HZ)
    try:
        device = Device("bench", library=_library())
        res = device.create_resource("R")
        res.create_fb("Sub", "OPCUA_SUBSCRIBE_1")
        res.write_parameter("Sub.QI", "TRUE")
        res.write_parameter("Sub.ENDPOINT", plant.endpoint)
        res.write_parameter("Sub.INTERVAL", "T#1ms")
        res.write_parameter("Sub.NODE_1", plant.node_id(0))
        res.create_fb("Write", "MODBUS_WRITE_1")
        res.write_parameter("Write.QI", "TRUE")
        res.write_parameter("Write.DEVICE", f"127.0.0.1:{plant.modbus_port}:1")
        res.write_parameter("Write.ADDR", "h0")
        res.create_fb("ToUint", "F_LREAL_TO_UINT")
        counter = res.create_fb("Count", "BENCH_COUNT")
        assert isinstance(counter, BENCH_COUNT)
        res.connect("START.COLD", "Sub.INIT")
        res.connect("Sub.INITO", "Write.INIT")
        res.connect("Sub.IND", "ToUint.REQ")
        res.connect("Sub.RD_1", "ToUint.IN")
        res.connect("ToUint.CNF", "Write.REQ")
        res.connect("ToUint.OUT", "Write.SD_1")
        res.connect("Write.CNF", "Count.REQ")
        res.connect("Write.QO", "Count.QO")
        latencies: list[float] = []
        sent: list[int] = []

        async def body() -> None:
            res.start()
            write = res.fbs["Write"]
            assert isinstance(write, IoFB)
            deadline = time.monotonic() + 15.0
            while not write.ready:
                if time.monotonic() > deadline:
                    raise BenchmarkError("closed loop: the FB network did not initialise")
                await asyncio.sleep(0.01)
            plant.go()
            await _wait_count(counter, 5, 15.0, "closed loop")
            await asyncio.sleep(seconds)
            got, total = await asyncio.to_thread(plant.finish)
            latencies.extend(got)
            sent.append(total)

        asyncio.run(_run_device(device, body))
    finally:
        plant.close()
    if len(latencies) < 10:
        raise BenchmarkError(f"closed loop: only {len(latencies)} values came back")
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    note = (f"{_LOOP_HZ:g} Hz, OPC UA subscription publishing interval 1 ms (<= 2 ms), "
            f"{len(latencies)} of {sent[0]} changes written back; p50 {p50:.2f} ms")
    print(f"loop: OPCUA_SUBSCRIBE_1 -> F_LREAL_TO_UINT -> MODBUS_WRITE_1, plant in a child "
          f"process; p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {ordered[-1]:.2f} ms")
    return [
        Figure("loop", "closed_loop_p50_ms", p50, "ms", note="OPC UA change -> Modbus write"),
        Figure("loop", "closed_loop_p99_ms", p99, "ms", note=note),
    ]
