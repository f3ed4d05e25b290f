"""Register map and helpers shared by the Modbus driver tests (real pymodbus on loopback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from drivers.modbus import (
    ModbusClientSession,
    ModbusDeviceConfig,
    ModbusPoint,
    PointSample,
)

P = ModbusPoint
REGISTER_MAP: tuple[ModbusPoint, ...] = (
    P(name="run", table="coil", address=0, writable=True),
    P(name="valve", table="coil", address=1, writable=True),
    P(name="pump", table="coil", address=17, writable=True),
    P(name="alarm", table="discrete_input", address=2),
    P(name="door", table="discrete_input", address=5),
    P(name="i16", table="holding_register", address=0, data_type="INT16", writable=True),
    P(name="u16", table="holding_register", address=1, data_type="UINT16", writable=True),
    P(
        name="i32",
        table="holding_register",
        address=2,
        data_type="INT32",
        word_order="little",
        writable=True,
    ),
    P(
        name="u32",
        table="holding_register",
        address=4,
        data_type="UINT32",
        byte_order="little",
        writable=True,
    ),
    P(name="f32", table="holding_register", address=6, data_type="FLOAT32", writable=True),
    P(
        name="f64",
        table="holding_register",
        address=8,
        data_type="FLOAT64",
        word_order="little",
        byte_order="little",
        writable=True,
    ),
    P(name="i64", table="holding_register", address=12, data_type="INT64", writable=True),
    P(name="u64", table="holding_register", address=16, data_type="UINT64", writable=True),
    P(
        name="text",
        table="holding_register",
        address=20,
        data_type="STRING",
        length=4,
        writable=True,
    ),
    P(
        name="temp",
        table="holding_register",
        address=24,
        data_type="INT16",
        scale=0.1,
        offset=-5.0,
        unit="degC",
        writable=True,
    ),
    P(name="status", table="holding_register", address=30, data_type="UINT16"),
    P(name="level", table="input_register", address=0, data_type="FLOAT32", unit="m"),
    P(name="flow", table="input_register", address=2, data_type="UINT32", scale=0.01),
    P(name="counter", table="input_register", address=10, data_type="UINT16"),
)


def device_config(
    port: int, points: tuple[ModbusPoint, ...] = REGISTER_MAP, **overrides: Any
) -> ModbusDeviceConfig:
    """A fast-polling config for tests (overrides are config fields)."""
    fields: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "points": points,
        "poll_interval_s": 0.05,
        "request_timeout_s": 0.5,
        "connect_timeout_s": 1.0,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.4,
    }
    fields.update(overrides)
    return ModbusDeviceConfig(**fields)


async def next_batch_where(
    session: ModbusClientSession,
    predicate: Callable[[dict[str, PointSample]], bool],
    *,
    within_s: float = 5.0,
) -> dict[str, PointSample]:
    """Receive batches until one satisfies `predicate` (fails the test after `within_s`)."""
    deadline = time.monotonic() + within_s
    async with asyncio.timeout(within_s):
        while True:
            batch = {s.name: s for s in await session.receive()}
            if predicate(batch):
                return batch
            assert time.monotonic() < deadline


class SilentServer:
    """A TCP server that accepts connections and never answers (a hung device)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        while await reader.read(4096):
            pass

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


async def wait_until(predicate: Callable[[], bool], *, within_s: float = 5.0) -> None:
    """Check `predicate` every 10 ms; fail the test if it stays false for `within_s`."""
    for _ in range(int(within_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {within_s} s")
