"""Modbus service FBs in a running device against real pymodbus servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from io_testkit import io_fb, new_resource, running_device

from drivers.modbus import ModbusPoint, ModbusServer, ModbusTable
from drivers.sim import FaultKind, FaultSpec
from drivers.sim.plc import SimulatedPlc

pytestmark = pytest.mark.asyncio(loop_scope="module")


def device(port: int, unit: int = 1) -> str:
    return f"127.0.0.1:{port}:{unit}"


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers (a hung device)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(1024):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_read_coalesces_and_returns_raw_registers(plc: SimulatedPlc) -> None:
    """MODBUS_READ_3 reads i0 (speed x10), i1 (current x100) and h0 (command) raw."""
    async with running_device() as dev:
        await plc.wait_scans(3)
        res, rec = new_resource(dev)
        io_fb(res, "Read", "MODBUS_READ_3", DEVICE=device(plc.modbus_port), ADDR="i0..1,h0")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (init,) = await rec.wait("Read", "INITO")
        assert init.values == {"QO": True, "STATUS": "OK"}
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is True
        speed_x10, current_x100, command = (cnf.values[f"RD_{i}"] for i in (1, 2, 3))
        assert isinstance(speed_x10, int)
        assert 10_000 < speed_x10 < 19_000
        assert isinstance(current_x100, int)
        assert current_x100 > 50
        assert command == 1800


async def test_write_sets_the_speed_command(plc: SimulatedPlc) -> None:
    """MODBUS_WRITE_1 to h0 commands the pump's VFD."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "Write", "MODBUS_WRITE_1", DEVICE=device(plc.modbus_port), ADDR="h0",
              SD_1="UINT#900")
        res.connect("START.COLD", "Write.INIT")
        res.connect("Write.INITO", "Write.REQ")
        res.start()
        (cnf,) = await rec.wait("Write", "CNF")
        assert cnf.values == {"QO": True, "STATUS": "OK"}
        await plc.wait_scans(2)
        assert plc.model.input_value("speed_command_rpm") == 900.0


async def test_poll_fires_ind_every_cycle(plc: SimulatedPlc) -> None:
    """MODBUS_POLL_2 fires IND with good values at its INTERVAL."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "Poll", "MODBUS_POLL_2", DEVICE=device(plc.modbus_port), ADDR="i4,i5",
              INTERVAL="T#20ms")
        res.connect("START.COLD", "Poll.INIT")
        res.start()
        inds = await rec.wait("Poll", "IND", count=5)
        assert all(ind.values["QO"] is True for ind in inds)
        flow_x100 = inds[-1].values["RD_1"]
        assert isinstance(flow_x100, int)
        assert flow_x100 > 0


async def test_exception_response_is_reported_in_status() -> None:
    """Reading an address the device does not serve: CNF QO=FALSE, ILLEGAL_DATA_ADDRESS."""
    points = (ModbusPoint(name="a", table=ModbusTable.HOLDING_REGISTER, address=0),)
    async with ModbusServer(points, port=0) as server, running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "Read", "MODBUS_READ_1", DEVICE=device(server.port), ADDR="h40")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is False
        assert cnf.values["STATUS"] == "ILLEGAL_DATA_ADDRESS"


async def test_timeout_is_reported_in_status() -> None:
    """A device that never answers: CNF QO=FALSE, STATUS TIMEOUT; the network keeps running."""
    async with silent_server() as port, running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "Read", "MODBUS_READ_1", DEVICE=device(port), ADDR="h0")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (cnf,) = await rec.wait("Read", "CNF", timeout_s=5.0)
        assert cnf.values["QO"] is False
        assert cnf.values["STATUS"] == "TIMEOUT"
        assert res.statistics().faults == 0


async def test_unreachable_device_fails_init() -> None:
    """INIT against a closed port: INITO QO=FALSE, STATUS NOT_CONNECTED."""
    async with silent_server() as port:
        pass  # the port is free again
    async with running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "Read", "MODBUS_READ_1", DEVICE=device(port), ADDR="h0")
        res.connect("START.COLD", "Read.INIT")
        res.start()
        (init,) = await rec.wait("Read", "INITO")
        assert init.values == {"QO": False, "STATUS": "NOT_CONNECTED"}


async def test_malformed_device_and_addresses_are_invalid_id() -> None:
    """Bad DEVICE, bad ADDR and a count that does not fit the FB: INVALID_ID with the reason."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "A", "MODBUS_READ_1", DEVICE="nohost", ADDR="h0")
        io_fb(res, "B", "MODBUS_READ_1", DEVICE="127.0.0.1:502", ADDR="x9")
        io_fb(res, "C", "MODBUS_READ_2", DEVICE="127.0.0.1:502", ADDR="h0..4")
        io_fb(res, "D", "MODBUS_WRITE_1", DEVICE="127.0.0.1:502", ADDR="i0")
        res.connect("START.COLD", "A.INIT")
        res.connect("A.INITO", "B.INIT")
        res.connect("B.INITO", "C.INIT")
        res.connect("C.INITO", "D.INIT")
        res.start()
        fired = [(await rec.wait(name, "INITO"))[0] for name in "ABCD"]
        statuses = [str(f.values["STATUS"]) for f in fired]
        assert all(f.values["QO"] is False for f in fired)
        assert all(s.startswith("INVALID_ID: ") for s in statuses)
        assert "host:port" in statuses[0]
        assert "'x9'" in statuses[1]
        assert "5 values for 2 pins" in statuses[2]
        assert "input register" in statuses[3] or "i0" in statuses[3]


async def test_plc_outage_turns_poll_bad_then_values_resume(plc: SimulatedPlc) -> None:
    """PLC outage: POLL IND turns NOT_CONNECTED, then good values resume within 2 s."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "Poll", "MODBUS_POLL_1", DEVICE=device(plc.modbus_port), ADDR="i0",
              INTERVAL="T#20ms")
        res.connect("START.COLD", "Poll.INIT")
        res.start()
        await rec.wait("Poll", "IND", count=3)
        start = plc.model.time_s
        plc.add_fault(FaultSpec(kind=FaultKind.COMM_OUTAGE, target="plc", start_s=start + 0.1,
                                end_s=start + 1.0))
        await rec.until(lambda: any(e.values["QO"] is False for e in rec.of("Poll", "IND")),
                        what="bad-quality IND")
        bad = next(e for e in rec.of("Poll", "IND") if e.values["QO"] is False)
        assert bad.values["STATUS"] in ("NOT_CONNECTED", "TIMEOUT")
        async with asyncio.timeout(10.0):
            while plc.statistics().in_outage or plc.statistics().outages == 0:
                await plc.wait_scans(1)
        returned = len(rec.events)
        await rec.until(lambda: any(e.values["QO"] is True for e in rec.events[returned:]
                                    if e.fb == "Poll"),
                        timeout_s=2.0, what="good IND after the server's return")
