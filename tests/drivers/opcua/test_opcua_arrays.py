"""Array variables end to end: server nodes with ValueRank/ArrayDimensions, client reads,
subscriptions and writes of arrays, shape and type checks on both sides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client

from drivers.errors import DriverConfigError
from drivers.opcua import (
    AddressSpaceSpec,
    ObjectSpec,
    OpcUaClientConfig,
    OpcUaClientSession,
    OpcUaServer,
    OpcUaServerConfig,
    OpcUaSubscriptionConfig,
    VariableSpec,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

BLOCK = 256
SPACE = AddressSpaceSpec(
    nodes=(
        ObjectSpec(
            name="Plant",
            children=(
                VariableSpec(name="Wave", data_type="Double", dimensions=(BLOCK,)),
                VariableSpec(name="Grid", data_type="Int16", dimensions=(2, 3), writable=True),
                VariableSpec(name="Open", data_type="Float", dimensions=(0,), writable=True),
                VariableSpec(name="Flags", data_type="Boolean", dimensions=(3,),
                             initial=(True, False, True)),
            ),
        ),
    )
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[OpcUaServer]:
    """One server with array variables for the module (port 0, read back)."""
    async with OpcUaServer(OpcUaServerConfig(port=0), SPACE) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="module")
async def session(server: OpcUaServer) -> AsyncIterator[OpcUaClientSession]:
    """A fresh client session per test."""
    async with OpcUaClientSession(OpcUaClientConfig(endpoint=server.endpoint)) as sess:
        yield sess


async def test_array_nodes_declare_rank_and_dimensions(server: OpcUaServer) -> None:
    """A raw asyncua client sees ValueRank and ArrayDimensions as the spec declares."""
    client = Client(server.endpoint, timeout=5)
    async with client:
        wave = client.get_node(server.node_id("Plant/Wave"))
        grid = client.get_node(server.node_id("Plant/Grid"))
        assert await wave.read_value_rank() == 1
        assert await wave.read_array_dimensions() == [BLOCK]
        assert await grid.read_value_rank() == 2
        assert await grid.read_array_dimensions() == [2, 3]


async def test_read_array_of_defaults_and_initials(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """Arrays read as lists (nested for two dimensions) with Good quality."""
    wave, grid, flags = await session.read(
        [server.node_id("Plant/Wave"), server.node_id("Plant/Grid"),
         server.browse_path("Plant/Flags")]
    )
    assert all(r.good for r in (wave, grid, flags))
    assert isinstance(wave.value, list)
    assert len(wave.value) == BLOCK
    assert grid.value == [[0, 0, 0], [0, 0, 0]]
    assert flags.value == [True, False, True]


async def test_numpy_block_written_by_plc_is_read_back(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """A NumPy block published on the server side reads back sample for sample."""
    block = np.sin(np.linspace(0.0, 6.28, BLOCK))
    await server.write_values({"Plant/Wave": block})
    result = (await session.read([server.node_id("Plant/Wave")]))[0]
    assert result.good
    assert np.array_equal(np.asarray(result.value), block)


async def test_server_rejects_block_of_wrong_length(server: OpcUaServer) -> None:
    """The server side refuses a block that does not match ArrayDimensions."""
    with pytest.raises(DriverConfigError, match="dimension 0 needs 256 elements, got 100"):
        await server.write_values({"Plant/Wave": np.zeros(100)})
    with pytest.raises(DriverConfigError, match="needs 1 dimension"):
        await server.write_values({"Plant/Wave": 1.0})


async def test_subscription_delivers_every_new_block(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """Each block the PLC publishes reaches the subscriber whole and in order."""
    sub = await session.subscribe(
        [server.node_id("Plant/Wave")],
        OpcUaSubscriptionConfig(publishing_interval_ms=10, sampling_interval_ms=0.0),
    )
    async with asyncio.timeout(5):
        await sub.get()  # the current block
        for k in range(1, 4):
            block = np.full(BLOCK, float(k)) + np.arange(BLOCK) / BLOCK
            await server.write_values({"Plant/Wave": block})
            got = await sub.get()
            assert got.good
            assert np.array_equal(np.asarray(got.value), block)
    await sub.aclose()


async def test_client_writes_nested_and_open_length_arrays(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """Writes type each element by the node's DataType; open-length arrays take any size."""
    await session.write({server.node_id("Plant/Grid"): [[1, 2, 3], [4, 5, 6]],
                         server.node_id("Plant/Open"): np.arange(5, dtype=np.int32)})
    assert server.read_value("Plant/Grid") == [[1, 2, 3], [4, 5, 6]]
    assert server.read_value("Plant/Open") == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_client_write_of_wrong_element_type_is_a_config_error(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """Out-of-range or non-numeric elements are refused before they go on the wire."""
    with pytest.raises(DriverConfigError, match=r"outside Int16"):
        await session.write({server.node_id("Plant/Grid"): [[1, 2, 3], [4, 5, 70000]]})
    with pytest.raises(DriverConfigError, match=r"Float\[\] needs numbers"):
        await session.write({server.node_id("Plant/Open"): ["a", "b"]})


async def test_variant_of_array_node_is_an_array(server: OpcUaServer) -> None:
    """The node's value Variant is a Double array (what other OPC UA clients decode)."""
    client = Client(server.endpoint, timeout=5)
    async with client:
        dv = await client.get_node(server.node_id("Plant/Wave")).read_data_value()
    assert dv.Value is not None
    assert dv.Value.VariantType is ua.VariantType.Double
    assert dv.Value.is_array
