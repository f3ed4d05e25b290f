"""Every direct pymodbus call of the Modbus driver lives here.

pymodbus changes its API between minor versions (`slave` became `device_id`,
datastores move to `SimData`/`SimDevice` in 4.0), so the rest of the package
talks to the two small classes below and an upgrade touches this module only.

What this wrapper adds on top of pymodbus 3.16:

- no ownerless tasks: pymodbus's own reconnect (`reconnect_delay`) and
  retries are switched off; the session owns reconnecting;
- a default deadline on every network await, and pymodbus exceptions mapped
  into `drivers.errors` at this boundary;
- a request in flight fails at once when the peer drops the connection,
  instead of waiting for its response timeout;
- the server datastore is built with `SimData`/`SimDevice` (the 4.0 path), which
  sidesteps `ModbusSequentialDataBlock`'s refusal of address 0 (it stores a
  block at `address - 1`, so in 3.16 a block "at 1" serves register 0). The
  register lists of that datastore are exposed for fast typed access from
  Python, and client writes are reported through `SimDevice.action`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

from drivers.errors import (
    ConnectionLost,
    DriverConfigError,
    DriverError,
    DriverTimeout,
    ProtocolError,
)
from drivers.modbus.errors import ModbusExceptionResponse
from drivers.modbus.points import ModbusTable

__all__ = ["DatastoreRun", "PymodbusClient", "PymodbusServer"]

_log = structlog.get_logger(__name__)

# extra time our own deadline grants beyond pymodbus's response timeout, so
# pymodbus normally reports the timeout itself and our deadline is the backstop
_DEADLINE_GRACE_S = 0.5
_CLOSE_TIMEOUT_S = 2.0
# pymodbus keeps a connection through this many unanswered requests before closing it
_MAX_NO_RESPONSES = 3
_LAYOUT_CHANGED = "pymodbus datastore layout changed; update drivers/modbus/_pymodbus.py"


def _bits(response: ModbusPDU, count: int, what: str) -> list[bool]:
    # responses carry whole bytes of bits: keep the `count` asked for
    bits = [bool(bit) for bit in response.bits[:count]]
    if len(bits) != count:
        raise ProtocolError(f"{what}: device returned {len(bits)} bits")
    return bits


class PymodbusClient:
    """One Modbus TCP connection; requests are serialised by the caller."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout_s: float,
        request_timeout_s: float,
        on_connection_lost: Callable[[], None] | None = None,
    ) -> None:
        # pymodbus binds its protocol to the running loop at construction
        self._host = host
        self._port = port
        self._connect_timeout_s = connect_timeout_s
        self._request_timeout_s = request_timeout_s
        self._on_connection_lost = on_connection_lost
        self._in_flight = False
        self._client = AsyncModbusTcpClient(
            host,
            port=port,
            timeout=request_timeout_s,
            retries=0,
            reconnect_delay=0,  # no ownerless reconnect task: the session reconnects
            trace_connect=self._trace_connect,
        )
        self._client.set_max_no_responses(_MAX_NO_RESPONSES)

    @property
    def connected(self) -> bool:
        """True while the TCP connection is up."""
        return bool(self._client.connected)

    def _trace_connect(self, connected: bool) -> None:
        if connected:
            return
        # fail the request in flight now rather than after its response timeout
        future = self._client.ctx.response_future
        if self._in_flight and not future.done():
            future.set_exception(ConnectionException("connection lost"))
        if self._on_connection_lost is not None:
            self._on_connection_lost()

    async def connect(self) -> None:
        """Open the connection within the connect timeout."""
        self._client.ctx.comm_params.timeout_connect = self._connect_timeout_s
        try:
            async with asyncio.timeout(self._connect_timeout_s + _DEADLINE_GRACE_S):
                ok = await self._client.connect()
        except TimeoutError as exc:
            raise DriverTimeout(
                f"connecting to {self._host}:{self._port} took over {self._connect_timeout_s} s"
            ) from exc
        finally:
            self._client.ctx.comm_params.timeout_connect = self._request_timeout_s
        if not ok:
            raise ConnectionLost(f"cannot connect to Modbus device at {self._host}:{self._port}")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._client.close()

    async def _execute(self, what: str, call: Callable[[], Awaitable[ModbusPDU]]) -> ModbusPDU:
        if not self.connected:
            raise ConnectionLost(f"{what}: not connected to {self._host}:{self._port}")
        self._in_flight = True
        try:
            async with asyncio.timeout(self._request_timeout_s + _DEADLINE_GRACE_S):
                response = await call()
        except TimeoutError as exc:
            raise DriverTimeout(f"{what}: no answer within {self._request_timeout_s} s") from exc
        except ConnectionException as exc:
            raise ConnectionLost(f"{what}: connection to {self._host}:{self._port} lost") from exc
        except ModbusIOException as exc:
            if "No response" in str(exc):
                raise DriverTimeout(
                    f"{what}: no answer within {self._request_timeout_s} s"
                ) from exc
            raise ProtocolError(f"{what}: {exc}") from exc
        except ModbusException as exc:
            raise ProtocolError(f"{what}: {exc}") from exc
        finally:
            self._in_flight = False
        if response is None:
            raise ProtocolError(f"{what}: empty response")
        if response.isError():
            raise ModbusExceptionResponse(
                response.function_code & 0x7F, int(getattr(response, "exception_code", 0)), what
            )
        return response

    async def read(
        self, table: ModbusTable, address: int, count: int, unit_id: int
    ) -> list[int] | list[bool]:
        """Read `count` units of `table` from `address` (FC 1, 2, 3 or 4)."""
        what = f"read {count} {table} at {address}"
        client = self._client
        if table is ModbusTable.COIL:
            response = await self._execute(
                what, lambda: client.read_coils(address, count=count, device_id=unit_id)
            )
            return _bits(response, count, what)
        if table is ModbusTable.DISCRETE_INPUT:
            response = await self._execute(
                what, lambda: client.read_discrete_inputs(address, count=count, device_id=unit_id)
            )
            return _bits(response, count, what)
        if table is ModbusTable.HOLDING_REGISTER:
            response = await self._execute(
                what,
                lambda: client.read_holding_registers(address, count=count, device_id=unit_id),
            )
        else:
            response = await self._execute(
                what, lambda: client.read_input_registers(address, count=count, device_id=unit_id)
            )
        registers = list(response.registers)
        if len(registers) != count:
            raise ProtocolError(f"{what}: device returned {len(registers)} registers")
        return registers

    async def write_register(self, address: int, value: int, unit_id: int) -> None:
        """Write one holding register (FC 6)."""
        client = self._client
        await self._execute(
            f"write register {address}",
            lambda: client.write_register(address, value, device_id=unit_id),
        )

    async def write_registers(self, address: int, values: Sequence[int], unit_id: int) -> None:
        """Write consecutive holding registers (FC 16)."""
        client = self._client
        await self._execute(
            f"write {len(values)} registers at {address}",
            lambda: client.write_registers(address, list(values), device_id=unit_id),
        )

    async def write_coil(self, address: int, value: bool, unit_id: int) -> None:
        """Write one coil (FC 5)."""
        client = self._client
        await self._execute(
            f"write coil {address}", lambda: client.write_coil(address, value, device_id=unit_id)
        )

    async def write_coils(self, address: int, values: Sequence[bool], unit_id: int) -> None:
        """Write consecutive coils (FC 15)."""
        client = self._client
        await self._execute(
            f"write {len(values)} coils at {address}",
            lambda: client.write_coils(address, list(values), device_id=unit_id),
        )


@dataclass(frozen=True, slots=True)
class DatastoreRun:
    """Consecutive addresses of one table that the server serves."""

    address: int
    count: int
    readonly: bool = False


_WRITE_TABLE: dict[int, ModbusTable] = {
    5: ModbusTable.COIL,
    15: ModbusTable.COIL,
    6: ModbusTable.HOLDING_REGISTER,
    16: ModbusTable.HOLDING_REGISTER,
    22: ModbusTable.HOLDING_REGISTER,
    23: ModbusTable.HOLDING_REGISTER,
}
_BLOCK_KEY: dict[ModbusTable, str] = {
    ModbusTable.COIL: "c",
    ModbusTable.DISCRETE_INPUT: "d",
    ModbusTable.HOLDING_REGISTER: "h",
    ModbusTable.INPUT_REGISTER: "i",
}
# an empty bit table still needs one SimData of BITS: park 16 bits at the top of
# the address space, where no register map of ours reaches in practice
_EMPTY_BITS_ADDRESS = 0xFFF0

WriteListener = Callable[[ModbusTable, int, int], None]
"""Called with (table, address, count) after a client write is applied."""


def _sim_data(table: ModbusTable, runs: Sequence[DatastoreRun]) -> list[SimData]:
    if table.is_bit:
        if not runs:
            return [SimData(_EMPTY_BITS_ADDRESS, values=[False] * 16, datatype=SimDataType.BITS)]
        return [
            SimData(run.address, values=[False] * run.count, datatype=SimDataType.BITS)
            for run in runs
        ]
    if not runs:
        return [SimData(0, datatype=SimDataType.INVALID)]
    return [
        SimData(
            run.address,
            values=[0] * run.count,
            datatype=SimDataType.REGISTERS,
            readonly=run.readonly,
        )
        for run in runs
    ]


class _Block:
    """Direct view of one table of pymodbus's runtime datastore."""

    __slots__ = ("_registers", "_start", "is_bits")

    def __init__(self, block: Any, is_bits: bool) -> None:
        # pymodbus's runtime block is an untyped tuple (start, count, registers, flags)
        start, _count, registers, _flags = block
        if not isinstance(start, int) or not isinstance(registers, list):
            raise DriverError(
                "pymodbus datastore layout changed; update drivers/modbus/_pymodbus.py"
            )
        self._start: int = start
        self._registers: list[int] = registers
        self.is_bits = is_bits

    def get(self, address: int, count: int) -> list[int] | list[bool]:
        if self.is_bits:
            bits: list[bool] = []
            for bit_address in range(address, address + count):
                register = self._registers[bit_address // 16 - self._start]
                bits.append(bool((register >> (bit_address % 16)) & 1))
            return bits
        offset = address - self._start
        return self._registers[offset : offset + count]

    def set(self, address: int, values: Sequence[int] | Sequence[bool]) -> None:
        if self.is_bits:
            for bit_address, bit in enumerate(values, start=address):
                index = bit_address // 16 - self._start
                mask = 1 << (bit_address % 16)
                if bit:
                    self._registers[index] |= mask
                else:
                    self._registers[index] &= ~mask
            return
        offset = address - self._start
        self._registers[offset : offset + len(values)] = [int(v) for v in values]


class PymodbusServer:
    """A pymodbus TCP server over a datastore of the given runs per table."""

    def __init__(
        self,
        runs: Mapping[ModbusTable, Sequence[DatastoreRun]],
        *,
        unit_id: int | None,
        on_write: WriteListener,
    ) -> None:
        self._runs = runs
        self._unit_id = unit_id
        self._on_write = on_write
        self._server: ModbusTcpServer | None = None
        self._listener: asyncio.Server | None = None
        self._blocks: dict[ModbusTable, _Block] = {}

    async def _action(
        self,
        function_code: int,
        _start_address: int,
        address: int,
        _count: int,
        _registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        # runs before pymodbus applies the write, with no await in between: report it
        # on the next loop iteration, when the datastore holds the new values
        table = _WRITE_TABLE.get(function_code)
        if set_values is not None and table is not None:
            asyncio.get_running_loop().call_soon(self._on_write, table, address, len(set_values))

    async def start(self, host: str, port: int,
                    before_listening: Callable[[], None] | None = None) -> int:
        """Listen on host:port (0 = a free port) and return the bound port.

        `before_listening` runs once the datastore exists and before any client can
        connect (initial values no client write can race with).
        """
        device = SimDevice(
            id=0 if self._unit_id is None else self._unit_id,
            simdata=(
                _sim_data(ModbusTable.COIL, self._runs.get(ModbusTable.COIL, ())),
                _sim_data(
                    ModbusTable.DISCRETE_INPUT, self._runs.get(ModbusTable.DISCRETE_INPUT, ())
                ),
                _sim_data(
                    ModbusTable.HOLDING_REGISTER, self._runs.get(ModbusTable.HOLDING_REGISTER, ())
                ),
                _sim_data(
                    ModbusTable.INPUT_REGISTER, self._runs.get(ModbusTable.INPUT_REGISTER, ())
                ),
            ),
            use_bit_addressing=True,
            action=self._action,
        )
        server = ModbusTcpServer(device, address=(host, port))
        try:
            runtime = server.context.devices[device.id]  # type: ignore[union-attr]
            self._blocks = {
                table: _Block(runtime.block[key], table.is_bit) for table, key in _BLOCK_KEY.items()
            }
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DriverError(_LAYOUT_CHANGED) from exc
        if before_listening is not None:
            before_listening()
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise DriverConfigError(
                f"cannot listen for Modbus TCP on {host}:{port} (address in use or not permitted)"
            ) from exc
        listener: Any = server.transport  # an asyncio.Server, typed as a transport by pymodbus
        if not isinstance(listener, asyncio.Server) or not listener.sockets:
            raise DriverError("pymodbus server did not expose its listening socket")
        self._server = server
        self._listener = listener
        bound: int = listener.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        """Stop listening and drop every client connection (idempotent)."""
        server, listener = self._server, self._listener
        self._server = self._listener = None
        if server is None:
            return
        await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
        if listener is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await listener.wait_closed()
            _log.debug("modbus_listener_closed")

    def get(self, table: ModbusTable, address: int, count: int) -> list[int] | list[bool]:
        """Current values of `count` units of `table` from `address`."""
        return self._blocks[table].get(address, count)

    def set(self, table: ModbusTable, address: int, values: Sequence[int] | Sequence[bool]) -> None:
        """Overwrite units of `table` from `address` (bypasses read-only flags)."""
        self._blocks[table].set(address, values)
