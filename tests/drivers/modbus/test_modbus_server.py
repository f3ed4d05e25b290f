"""Simulated-PLC server: datastore from a register map, typed access, write callbacks, ports."""

from __future__ import annotations

import asyncio
import socket

import pytest
from modbus_testkit import REGISTER_MAP, device_config, wait_until

from drivers.errors import DriverConfigError, DriverError, ProtocolError
from drivers.modbus import (
    ModbusClientSession,
    ModbusExceptionResponse,
    ModbusPoint,
    ModbusServer,
    ModbusTable,
    PointWrite,
    ServerState,
)

H = ModbusTable.HOLDING_REGISTER


async def test_port_zero_binds_a_free_port_and_reads_it_back() -> None:
    """port=0 listens on a real port that `port` reports; the lifecycle is one-shot."""
    server = ModbusServer(REGISTER_MAP, port=0)
    assert server.state is ServerState.NEW
    with pytest.raises(DriverError, match="not listening"):
        _ = server.port
    async with server:
        assert server.state is ServerState.OPEN
        assert server.port > 0
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.close()
        await writer.wait_closed()
    assert server.state is ServerState.CLOSED
    await server.aclose()
    with pytest.raises(DriverError, match="single-use"):
        await server.__aenter__()
    with pytest.raises(DriverError, match="closed"):
        server.get("u16")


async def test_client_writes_reach_the_callback_with_new_values() -> None:
    """Each client write request reports the changed points with their values after the write."""
    writes: list[tuple[PointWrite, ...]] = []
    async with ModbusServer(REGISTER_MAP, port=0, on_write=writes.append) as plc:
        async with ModbusClientSession(device_config(plc.port), poll=False) as session:
            await session.write("f32", 2.5)
            await session.write_many({"i16": 4, "u16": 5})
            await session.write("pump", True)
            await wait_until(lambda: len(writes) >= 3)
        assert writes[0] == (PointWrite("f32", 2.5),)
        assert writes[1] == (PointWrite("i16", 4), PointWrite("u16", 5))
        assert writes[2] == (PointWrite("pump", True),)
        assert plc.statistics().client_writes == 3


async def test_a_failing_callback_is_counted_and_the_server_keeps_serving() -> None:
    """An exception in the write callback is logged and counted; later requests still work."""

    def broken(_: tuple[PointWrite, ...]) -> None:
        raise RuntimeError("plant model bug")

    async with ModbusServer(REGISTER_MAP, port=0, on_write=broken) as plc:
        session = ModbusClientSession(device_config(plc.port), poll=False)
        async with session:
            await session.write("u16", 9)
            await wait_until(lambda: plc.statistics().callback_errors >= 1)
            assert await session.read("u16") == 9


async def test_datastore_spans_the_map_and_refuses_outside_it(plc: ModbusServer) -> None:
    """Holes inside the map read as zero; addresses past it answer ILLEGAL_DATA_ADDRESS."""
    async with ModbusClientSession(device_config(plc.port), poll=False) as session:
        assert await session.read_raw(H, 25, 5) == [0, 0, 0, 0, 0]
        with pytest.raises(ModbusExceptionResponse) as info:
            await session.read_raw(H, 30, 2)
        assert info.value.is_illegal_address
        with pytest.raises(ModbusExceptionResponse):
            await session.read_raw(ModbusTable.COIL, 40, 1)
        with pytest.raises(ModbusExceptionResponse):
            await session.read_raw(ModbusTable.INPUT_REGISTER, 11, 1)


async def test_read_only_holding_registers_reject_client_writes(plc: ModbusServer) -> None:
    """A holding register of a non-writable point keeps the plant's value against client writes."""
    plc.set("status", 3)
    async with ModbusClientSession(device_config(plc.port), poll=False) as session:
        with pytest.raises(ProtocolError):
            await session.write_raw(H, 30, [99])
        assert await session.read("status") == 3
    assert plc.get("status") == 3


async def test_empty_tables_answer_illegal_address() -> None:
    """A map with registers only serves no coil, discrete input or input register 0."""
    points = (ModbusPoint(name="only", table="holding_register", address=0),)
    async with ModbusServer(points, port=0, initial_values={"only": 42}) as plc:
        session = ModbusClientSession(device_config(plc.port, points), poll=False)
        async with session:
            assert await session.read("only") == 42
            for table in (ModbusTable.COIL, ModbusTable.DISCRETE_INPUT, ModbusTable.INPUT_REGISTER):
                with pytest.raises(ModbusExceptionResponse):
                    await session.read_raw(table, 0, 1)


async def test_server_with_a_unit_id_answers_only_that_unit() -> None:
    """unit_id=5 serves unit 5; a request for unit 6 gets an exception response."""
    async with ModbusServer(REGISTER_MAP, port=0, unit_id=5, initial_values={"u16": 8}) as plc:
        config = device_config(plc.port, unit_id=5)
        async with ModbusClientSession(config, poll=False) as session:
            assert await session.read("u16") == 8
        async with ModbusClientSession(device_config(plc.port, unit_id=6), poll=False) as session:
            with pytest.raises(ProtocolError):
                await session.read("u16")


async def test_typed_set_and_get_cover_every_table(plc: ModbusServer) -> None:
    """set/get reach coils, discrete inputs and both register tables; bad values change nothing."""
    plc.set_many({"pump": True, "door": True, "level": 1.25, "temp": 30.0})
    assert plc.get_many(["pump", "door", "level", "temp", "valve"]) == {
        "pump": True,
        "door": True,
        "level": 1.25,
        "temp": 30.0,
        "valve": False,
    }
    with pytest.raises(DriverConfigError):
        plc.set_many({"u16": 1, "i16": 99999})
    assert plc.get("u16") == 0
    with pytest.raises(DriverConfigError, match="unknown Modbus point 'nope'"):
        plc.get("nope")


def test_bad_server_configurations_are_rejected() -> None:
    """Duplicate names, unknown initial values and bad ports raise DriverConfigError."""
    point = ModbusPoint(name="p", table="coil", address=0)
    with pytest.raises(DriverConfigError, match="used twice"):
        ModbusServer((point, point), port=0)
    with pytest.raises(DriverConfigError, match="unknown Modbus point 'q'"):
        ModbusServer((point,), port=0, initial_values={"q": 1})
    with pytest.raises(DriverConfigError, match="port"):
        ModbusServer((point,), port=70000)


async def test_taken_port_fails_or_falls_back_to_a_free_one() -> None:
    """A taken port is a DriverConfigError, or a free port with fallback_to_free_port."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        with pytest.raises(DriverConfigError, match=f"127.0.0.1:{taken}"):
            async with ModbusServer(REGISTER_MAP, port=taken):
                pass
        async with ModbusServer(REGISTER_MAP, port=taken, fallback_to_free_port=True) as plc:
            assert plc.port != taken
            async with ModbusClientSession(device_config(plc.port), poll=False) as session:
                assert await session.read("u16") == 0


async def test_address_zero_is_served_as_address_zero(plc: ModbusServer) -> None:
    """Points at address 0 of every table are read at protocol address 0 (no off-by-one)."""
    plc.set_many({"run": True, "i16": -2, "level": 0.5})
    async with ModbusClientSession(device_config(plc.port), poll=False) as session:
        assert await session.read_raw(ModbusTable.COIL, 0, 1) == [True]
        assert await session.read_raw(H, 0, 1) == [0xFFFE]
        assert await session.read_raw(ModbusTable.INPUT_REGISTER, 0, 2) == [0x3F00, 0]
