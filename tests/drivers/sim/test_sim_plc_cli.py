"""`testbed plc`: one simulated PLC started alone from the command line."""

from __future__ import annotations

import asyncio
import re
import sys

from drivers.modbus import ModbusClientSession, ModbusDeviceConfig, ModbusPoint, ModbusTable


async def test_testbed_plc_prints_endpoints_and_serves_modbus() -> None:
    """`testbed plc --opcua 0 --modbus 0` prints both endpoints; the Modbus one answers."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "testbed.cli", "plc", "--model", "pump", "--opcua", "0",
        "--modbus", "0", "--duration", "8", "--seed", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20.0):
            while not any(line.startswith("Modbus TCP:") for line in lines):
                raw = await proc.stdout.readline()
                assert raw, f"testbed plc ended early: {lines}"
                lines.append(raw.decode().strip())
        text = "\n".join(lines)
        assert re.search(r"OPC UA endpoint: opc\.tcp://127\.0\.0\.1:\d+/testbed/plc", text)
        match = re.search(r"Modbus TCP: 127\.0\.0\.1:(\d+) \(unit 1\)", text)
        assert match is not None
        config = ModbusDeviceConfig(port=int(match.group(1)), points=(
            ModbusPoint(name="speed_cmd", table=ModbusTable.HOLDING_REGISTER, address=0),))
        async with ModbusClientSession(config, poll=False) as session:
            assert await session.read("speed_cmd") == 1800
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(10.0):
            rest = await proc.stdout.read()
            code = await proc.wait()
    assert code == 0
    assert "stopped after" in rest.decode()
