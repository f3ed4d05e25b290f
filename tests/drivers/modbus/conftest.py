"""Fixtures for the Modbus driver tests: a simulated PLC on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from modbus_testkit import REGISTER_MAP

from drivers.modbus import ModbusServer


@pytest.fixture
async def plc() -> AsyncIterator[ModbusServer]:
    """A simulated PLC serving REGISTER_MAP on a free loopback port."""
    async with ModbusServer(REGISTER_MAP, port=0) as server:
        yield server
