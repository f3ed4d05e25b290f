"""The pump PLC's vibration waveform as an OPC UA array node, block by block."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from asyncua.client.client import Client

from drivers.opcua import OpcUaClientConfig, OpcUaClientSession, OpcUaSubscriptionConfig
from drivers.sim.plc import PlcConfig, SimulatedPlc, default_profile_path

VIBRATION = "Plant/Pump1/Bearing/Vibration"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plc() -> AsyncIterator[SimulatedPlc]:
    """One pump PLC on free loopback ports for the module."""
    config = PlcConfig(opcua_port=0, modbus_port=0, scan_ms=10.0)
    async with SimulatedPlc.from_profile_file(default_profile_path("pump"), config,
                                              seed=3) as running:
        yield running


async def test_waveform_node_is_a_block_sized_array(plc: SimulatedPlc) -> None:
    """The vibration node has ValueRank 1, ArrayDimensions [block] and reads a full block."""
    block = len(plc.model.state().waveforms["vibration"].samples)
    client = Client(plc.opcua_endpoint, timeout=5)
    async with client:
        node = client.get_node(plc.node_id(VIBRATION))
        assert await node.read_value_rank() == 1
        assert await node.read_array_dimensions() == [block]
    config = OpcUaClientConfig(endpoint=plc.opcua_endpoint)
    async with OpcUaClientSession(config) as session:
        (result,) = await session.read([plc.browse_path(VIBRATION)])
    assert result.good
    assert isinstance(result.value, list)
    assert len(result.value) == block
    assert np.isfinite(result.value).all()
    assert float(np.std(result.value)) > 0.0


async def test_subscriber_gets_disjoint_new_blocks(plc: SimulatedPlc) -> None:
    """Each notification is a whole new block: no sample of one block repeats in the next."""
    config = OpcUaClientConfig(endpoint=plc.opcua_endpoint)
    async with OpcUaClientSession(config) as session:
        sub = await session.subscribe(
            [plc.node_id(VIBRATION)],
            OpcUaSubscriptionConfig(publishing_interval_ms=20, sampling_interval_ms=0.0),
        )
        blocks = []
        async with asyncio.timeout(10):
            while len(blocks) < 4:
                result = await sub.get()
                assert result.good
                blocks.append(np.asarray(result.value))
    assert all(len(b) == len(blocks[0]) for b in blocks)
    for older, newer in itertools.pairwise(blocks[1:]):
        assert not set(older.tolist()) & set(newer.tolist())
