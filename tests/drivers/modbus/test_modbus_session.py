"""Client session against a real pymodbus server on loopback: values, faults, reconnects."""

from __future__ import annotations

import socket

import pytest
from modbus_testkit import REGISTER_MAP, SilentServer, device_config, next_batch_where, wait_until

from drivers.errors import (
    ConnectionLost,
    DriverConfigError,
    DriverError,
    DriverTimeout,
    ProtocolError,
)
from drivers.modbus import (
    ModbusClientSession,
    ModbusExceptionResponse,
    ModbusPoint,
    ModbusServer,
    ModbusTable,
    OverflowPolicy,
    PointQuality,
    PointSample,
    PointValue,
    SessionState,
)

VALUES: dict[str, PointValue] = {
    "run": True,
    "valve": False,
    "pump": True,
    "i16": -12345,
    "u16": 54321,
    "i32": -2_000_000_000,
    "u32": 4_000_000_000,
    "f32": 1.5,
    "f64": -3.141592653589793,
    "i64": -(2**62) - 7,
    "u64": 2**64 - 2,
    "text": "pump-01",
    "temp": 21.5,
}


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


OTHER_VALUES: dict[str, PointValue] = {
    "run": False,
    "valve": True,
    "pump": False,
    "i16": 32767,
    "u16": 1,
    "i32": 123_456_789,
    "u32": 65536,
    "f32": -0.125,
    "f64": 1e300,
    "i64": 2**63 - 1,
    "u64": 3,
    "text": "é-6byte",
    "temp": -5.0,
}


@pytest.mark.parametrize("name", sorted(VALUES))
async def test_every_writable_type_is_written_and_read_back(plc: ModbusServer, name: str) -> None:
    """A client write of each data type lands in the server; a value the plant sets reads back."""
    async with ModbusClientSession(device_config(plc.port), poll=False) as session:
        await session.write(name, VALUES[name])
        assert plc.get(name) == pytest.approx(VALUES[name])
        assert await session.read(name) == pytest.approx(VALUES[name])
        plc.set(name, OTHER_VALUES[name])
        assert await session.read(name) == pytest.approx(OTHER_VALUES[name])


async def test_read_only_tables_read_what_the_plant_sets(plc: ModbusServer) -> None:
    """Input registers and discrete inputs set from Python read back over Modbus."""
    plc.set_many({"level": 2.75, "flow": 123.45, "counter": 65535, "alarm": True, "door": False})
    async with ModbusClientSession(device_config(plc.port), poll=False) as session:
        assert await session.read("level") == 2.75
        assert await session.read("flow") == pytest.approx(123.45)
        assert await session.read("counter") == 65535
        assert await session.read("alarm") is True
        assert await session.read("door") is False


async def test_coalesced_polling_returns_every_value(plc: ModbusServer) -> None:
    """One poll cycle reads the whole map in one request per table, all GOOD and correct."""
    plc.set_many({**VALUES, "level": 0.5, "flow": 7.0, "counter": 9, "alarm": True, "status": 4})
    async with ModbusClientSession(device_config(plc.port)) as session:
        assert session.plan.requests_per_cycle == 4
        batch = {s.name: s for s in await session.receive()}
        assert set(batch) == {p.name for p in REGISTER_MAP}
        assert all(s.quality is PointQuality.GOOD for s in batch.values())
        for name, value in VALUES.items():
            assert batch[name].value == pytest.approx(value), name
        assert (batch["level"].value, batch["counter"].value, batch["alarm"].value) == (
            0.5,
            9,
            True,
        )
        plc.set("counter", 10)
        later = await next_batch_where(session, lambda b: b["counter"].value == 10)
        assert later["counter"].good
        stats = session.statistics()
        assert stats.cycles >= 2
        assert stats.requests >= 8
        assert stats.errors == stats.timeouts == stats.drops == 0


async def test_exception_response_is_bad_quality_in_polls_and_an_error_in_calls(
    plc: ModbusServer,
) -> None:
    """Unmapped addresses: the poll marks only that point PROTOCOL_ERROR; direct calls raise."""
    ghost = ModbusPoint(name="ghost", table="holding_register", address=100)
    points = (*REGISTER_MAP, ghost)
    plc.set("u16", 77)
    async with ModbusClientSession(device_config(plc.port, points)) as session:
        batch = {s.name: s for s in await session.receive()}
        assert batch["ghost"].quality is PointQuality.PROTOCOL_ERROR
        assert batch["ghost"].value is None
        assert batch["u16"].good
        assert batch["u16"].value == 77
        with pytest.raises(ModbusExceptionResponse) as info:
            await session.read("ghost")
        assert isinstance(info.value, ProtocolError)
        assert info.value.exception_code == 2
        with pytest.raises(ProtocolError, match="ILLEGAL_DATA_ADDRESS"):
            await session.write_raw(ModbusTable.HOLDING_REGISTER, 30, [1])  # read-only point
        assert session.statistics().errors >= 2


async def test_silent_device_gives_timeout_quality_and_driver_timeout() -> None:
    """A device that accepts TCP but never answers yields TIMEOUT samples and DriverTimeout."""
    async with SilentServer() as silent:
        config = device_config(silent.port, request_timeout_s=0.2, poll_interval_s=0.1)
        async with ModbusClientSession(config) as session:
            batch = await next_batch_where(
                session, lambda b: b["u16"].quality is PointQuality.TIMEOUT, within_s=5
            )
            assert all(s.quality is PointQuality.TIMEOUT for s in batch.values())
            with pytest.raises((DriverTimeout, ConnectionLost)):
                await session.read("u16")
            assert session.statistics().timeouts >= 1


async def test_polling_resumes_after_the_server_restarts_on_the_same_port() -> None:
    """Server stopped: NOT_CONNECTED samples; restarted on the same port: GOOD values within 5 s."""
    first = ModbusServer(REGISTER_MAP, port=0, initial_values={"counter": 1})
    async with first:
        port = first.port
        session = ModbusClientSession(device_config(port))
        async with session:
            await next_batch_where(session, lambda b: b["counter"].value == 1)
            await first.aclose()
            down = await next_batch_where(
                session, lambda b: b["counter"].quality is PointQuality.NOT_CONNECTED
            )
            assert down["u16"].value is None
            with pytest.raises(ConnectionLost):
                await session.read("counter")
            async with ModbusServer(REGISTER_MAP, port=port, initial_values={"counter": 2}):
                back = await next_batch_where(
                    session, lambda b: b["counter"].value == 2, within_s=5
                )
                assert all(s.good for s in back.values())
                assert await session.read("counter") == 2
            stats = session.statistics()
            assert stats.reconnects >= 1
            assert stats.connection_losses >= 1


async def test_unreachable_device_fails_entry_when_connection_is_required() -> None:
    """With connect_required (default) entering fails with ConnectionLost and the session closes."""
    session = ModbusClientSession(device_config(free_port()))
    with pytest.raises(ConnectionLost, match="cannot connect"):
        await session.__aenter__()
    assert session.state is SessionState.CLOSED


async def test_session_waits_for_a_device_that_appears_later() -> None:
    """Without connect_required the session reports NOT_CONNECTED, then polls once the PLC is up."""
    port = free_port()
    async with ModbusClientSession(device_config(port), connect_required=False) as session:
        first = {s.name: s for s in await session.receive()}
        assert all(s.quality is PointQuality.NOT_CONNECTED for s in first.values())
        async with ModbusServer(REGISTER_MAP, port=port, initial_values={"u16": 5}):
            await next_batch_where(session, lambda b: b["u16"].value == 5, within_s=5)


@pytest.mark.parametrize(
    ("policy", "kept"), [(OverflowPolicy.DROP_NEWEST, 1), (OverflowPolicy.DROP_OLDEST, 2)]
)
async def test_full_queue_drops_by_policy_and_counts(
    plc: ModbusServer, policy: OverflowPolicy, kept: int
) -> None:
    """A one-batch queue nobody reads keeps the oldest or the newest batch and counts drops."""
    plc.set("counter", 1)
    config = device_config(plc.port, poll_interval_s=0.02)
    async with ModbusClientSession(config, queue_capacity=1, overflow=policy) as session:
        await wait_until(lambda: session.statistics().queue_depth >= 1)
        plc.set("counter", 2)
        await wait_until(lambda: session.statistics().drops >= 5)
        stats = session.statistics()
        assert stats.queue_depth == stats.queue_capacity == 1
        batch = session.receive_nowait()
        assert batch is not None
        assert {s.name: s.value for s in batch}["counter"] == kept


async def test_callback_mode_delivers_batches_and_has_no_queue(plc: ModbusServer) -> None:
    """With on_samples every cycle's batch goes to the callback; receive() is refused."""
    batches: list[tuple[PointSample, ...]] = []
    async with ModbusClientSession(device_config(plc.port), on_samples=batches.append) as session:
        await wait_until(lambda: len(batches) >= 3)
        with pytest.raises(DriverConfigError, match="callback"):
            await session.receive()
    assert all(len(b) == len(REGISTER_MAP) for b in batches)


async def test_write_many_joins_adjacent_points(plc: ModbusServer) -> None:
    """write_many writes coils and registers (grouped FC 15/16) and encodes all before sending."""
    async with ModbusClientSession(device_config(plc.port), poll=False) as session:
        await session.write_many({"run": True, "valve": True, "i16": -1, "u16": 2, "f32": 0.25})
        assert plc.get_many(["run", "valve", "i16", "u16", "f32"]) == {
            "run": True,
            "valve": True,
            "i16": -1,
            "u16": 2,
            "f32": 0.25,
        }
        requests_before = session.statistics().requests
        with pytest.raises(DriverConfigError):
            await session.write_many({"u16": 3, "i16": 10**6})
        assert session.statistics().requests == requests_before
        assert plc.get("u16") == 2


async def test_raw_access_and_poll_once(plc: ModbusServer) -> None:
    """Raw reads/writes address tables directly; poll_once runs the plan on demand."""
    async with ModbusClientSession(device_config(plc.port), poll=False) as session:
        await session.write_raw(ModbusTable.COIL, 0, [True, True])
        assert await session.read_raw(ModbusTable.COIL, 0, 3) == [True, True, False]
        await session.write_raw(ModbusTable.HOLDING_REGISTER, 0, [0xFFFF, 7])
        assert plc.get_many(["i16", "u16"]) == {"i16": -1, "u16": 7}
        samples = {s.name: s for s in await session.poll_once()}
        assert samples["u16"].value == 7
        assert session.receive_nowait() is None
        with pytest.raises(DriverConfigError):
            await session.write_raw(ModbusTable.INPUT_REGISTER, 0, [1])
        with pytest.raises(DriverConfigError):
            await session.read_raw(ModbusTable.HOLDING_REGISTER, 0, 126)


async def test_writes_to_read_only_points_are_refused_before_sending(plc: ModbusServer) -> None:
    """Writing a point not marked writable, or an unknown point, is a DriverConfigError."""
    async with ModbusClientSession(device_config(plc.port), poll=False) as session:
        with pytest.raises(DriverConfigError, match="not writable"):
            await session.write("status", 1)
        with pytest.raises(DriverConfigError, match="unknown Modbus point 'nope'"):
            await session.write("nope", 1)


async def test_lifecycle_is_one_shot_and_aclose_is_idempotent(plc: ModbusServer) -> None:
    """aclose twice is fine; a closed session refuses calls and cannot be re-entered."""
    session = ModbusClientSession(device_config(plc.port))
    assert session.state is SessionState.NEW
    async with session:
        assert session.state is SessionState.OPEN
        assert session.connected
    assert session.state is SessionState.CLOSED
    await session.aclose()
    assert not session.connected
    with pytest.raises(DriverError):
        await session.read("u16")
    with pytest.raises(DriverError, match="single-use"):
        await session.__aenter__()


async def test_errors_in_the_body_propagate_unwrapped(plc: ModbusServer) -> None:
    """An exception raised inside `async with session` leaves it as itself, not a group."""
    session = ModbusClientSession(device_config(plc.port))
    with pytest.raises(KeyError, match="boom"):
        async with session:
            raise KeyError("boom")
    assert session.state is SessionState.CLOSED
