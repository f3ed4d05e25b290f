"""Fixtures for the field-I/O FB tests: one pump PLC per test module, reset for each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from io_testkit import pump_plc

from drivers.sim.plc import SimulatedPlc


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_plc() -> AsyncIterator[SimulatedPlc]:
    """A pump PLC on free loopback ports for a whole module (its OPC UA server starts slowly)."""
    async with pump_plc() as plc:
        yield plc


@pytest_asyncio.fixture(loop_scope="module")
async def plc(shared_plc: SimulatedPlc) -> SimulatedPlc:
    """The module's PLC with initial commands, no faults, in RUN and serving."""
    shared_plc.reset()
    async with asyncio.timeout(10.0):
        while shared_plc.statistics().in_outage:
            await shared_plc.wait_scans(1)
        steps = shared_plc.statistics().model_steps
        while shared_plc.statistics().model_steps < steps + 2:  # readbacks follow a step
            await shared_plc.wait_scans(1)
    return shared_plc
