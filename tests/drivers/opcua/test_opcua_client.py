"""Client session against a real asyncua server on loopback: reads, writes, methods, subs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from opcua_testkit import ADDRESS_SPACE, HANDLERS, wait_until

from drivers.errors import ConnectionLost, DriverConfigError, ProtocolError
from drivers.opcua import (
    OpcUaClientConfig,
    OpcUaClientSession,
    OpcUaServer,
    OpcUaServerConfig,
    OpcUaSessionState,
    OpcUaStatusError,
    OpcUaSubscriptionConfig,
    OverflowPolicy,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[OpcUaServer]:
    """One simulated PLC for the whole module (port 0, read back)."""
    config = OpcUaServerConfig(port=0, publish_current_time=False)
    async with OpcUaServer(config, ADDRESS_SPACE, method_handlers=HANDLERS) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="module")
async def session(server: OpcUaServer) -> AsyncIterator[OpcUaClientSession]:
    """A fresh client session per test."""
    async with OpcUaClientSession(OpcUaClientConfig(endpoint=server.endpoint)) as sess:
        yield sess


async def test_server_reports_real_port(server: OpcUaServer) -> None:
    """Port 0 binds a free port that the server reports back."""
    assert server.port > 0
    assert str(server.port) in server.endpoint


async def test_batched_read_by_browse_path_and_node_id(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """One read returns values of browse-path and NodeId addresses with Good quality."""
    results = await session.read(
        [
            server.browse_path("Plant/Pump1/Speed"),
            server.node_id("Plant/Pump1/Running"),
            server.node_id("Plant/Pump1/Tag"),
            "i=2259",  # Server_ServerStatus_State
        ]
    )
    assert [r.value for r in results[:3]] == [1450.0, True, "P-101"]
    assert all(r.good for r in results)
    assert results[0].source_timestamp is not None
    resolved = await session.resolve(
        [server.browse_path("Plant/Pump1/Speed"), server.node_id("Plant/Pump1/Speed")]
    )
    assert resolved[0] == resolved[1] == server.node_id("Plant/Pump1/Speed")


async def test_unknown_node_reads_as_bad_quality(session: OpcUaClientSession) -> None:
    """A read of a missing NodeId carries BadNodeIdUnknown instead of raising."""
    (result,) = await session.read(["ns=2;s=Nope"])
    assert result.quality.bad
    assert result.quality.status_name == "BadNodeIdUnknown"
    with pytest.raises(OpcUaStatusError) as info:
        await session.read_value("ns=2;s=Nope")
    assert info.value.status_name == "BadNodeIdUnknown"


async def test_unknown_browse_path_raises_protocol_error(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """A browse path that matches nothing raises ProtocolError with the status."""
    with pytest.raises(ProtocolError, match="BadNoMatch"):
        await session.read([server.browse_path("Plant/Pump9/Speed")])


async def test_batched_write_is_typed_and_visible_on_server(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """A batched write converts to each node's type and the server holds the values."""
    qualities = await session.write(
        {
            server.node_id("Plant/Pump1/Setpoint"): 12.5,
            server.browse_path("Plant/Pump1/Mode"): 3,
        }
    )
    assert all(q.good for q in qualities)
    assert server.read_values(["Plant/Pump1/Setpoint", "Plant/Pump1/Mode"]) == [12.5, 3]
    with pytest.raises(DriverConfigError, match="Int16"):
        await session.write({server.node_id("Plant/Pump1/Mode"): 1.5})


async def test_write_to_read_only_node_raises_status(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """Writing a non-writable variable raises with BadNotWritable; check=False returns it."""
    with pytest.raises(OpcUaStatusError) as info:
        await session.write({server.node_id("Plant/Pump1/Speed"): 1.0})
    assert info.value.status_name in {"BadNotWritable", "BadUserAccessDenied"}
    (quality,) = await session.write({server.node_id("Plant/Pump1/Speed"): 1.0}, check=False)
    assert quality.bad


async def test_engineering_units_property(server: OpcUaServer, session: OpcUaClientSession) -> None:
    """Speed carries an EngineeringUnits EUInformation and an EURange property."""
    units, value_range = await session.read(
        [
            server.browse_path("Plant/Pump1/Speed") + "/0:EngineeringUnits",
            server.browse_path("Plant/Pump1/Speed") + "/0:EURange",
        ]
    )
    assert units.good
    assert units.value.DisplayName.Text == "rpm"
    assert (value_range.value.Low, value_range.value.High) == (0.0, 3000.0)


async def test_method_call_by_browse_path(server: OpcUaServer, session: OpcUaClientSession) -> None:
    """A method call types its arguments and returns the handler's outputs."""
    assert await session.call_method(server.browse_path("Plant/Pump1/Scale"), 2.5, 4) == [10.0]
    with pytest.raises(OpcUaStatusError) as info:
        await session.call_method(server.browse_path("Plant/Pump1/Scale"), 2.5, 0)
    assert info.value.status_name == "BadInvalidArgument"
    assert server.statistics().method_calls >= 2


async def test_subscription_delivers_changes(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """A subscription yields the initial value, then values written by the PLC side."""
    sub = await session.subscribe(
        [server.node_id("Plant/Pump1/Speed")],
        OpcUaSubscriptionConfig(publishing_interval_ms=20),
    )
    async with asyncio.timeout(5):
        first = await sub.get()
        assert first.good
        await server.write_values({"Plant/Pump1/Speed": 1500.0})
        while (result := await sub.get()).value != 1500.0:
            pass
    assert result.good
    await server.write_values({"Plant/Pump1/Speed": 1450.0})
    stats = session.statistics()
    assert stats.subscriptions[0].delivered >= 2
    await sub.aclose()
    assert session.statistics().subscriptions == ()


async def test_bad_status_from_plc_reaches_subscriber(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """A sensor failure published as Bad status arrives as Bad quality."""
    sub = await session.subscribe(
        [server.node_id("Plant/Pump1/Tag")], OpcUaSubscriptionConfig(publishing_interval_ms=20)
    )
    async with asyncio.timeout(5):
        assert (await sub.get()).good
        await server.write_values({"Plant/Pump1/Tag": "P-101"}, status="BadSensorFailure")
        result = await sub.get()
    assert result.quality.status_name == "BadSensorFailure"
    await server.write_values({"Plant/Pump1/Tag": "P-101"})
    await sub.aclose()


async def test_bounded_queue_overflow_is_counted(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """With capacity 2 and drop_oldest, unread notifications are dropped and counted."""
    sub = await session.subscribe(
        [server.node_id("Plant/Pump1/Setpoint")],
        OpcUaSubscriptionConfig(
            publishing_interval_ms=10, queue_capacity=2, overflow=OverflowPolicy.DROP_OLDEST
        ),
    )
    async with asyncio.timeout(10):
        for i in range(12):
            await server.write_values({"Plant/Pump1/Setpoint": float(100 + i)})
            await asyncio.sleep(0.03)
        await wait_until(lambda: sub.statistics().received >= 6)
    stats = sub.statistics()
    assert stats.queued == 2
    assert stats.dropped_oldest == stats.received - 2
    assert session.statistics().notifications_dropped == stats.dropped_oldest
    last = [sub.get_nowait(), sub.get_nowait()]
    assert last[-1] is not None
    assert last[-1].value == 111.0  # drop_oldest keeps the newest
    await sub.aclose()


async def test_drop_newest_keeps_the_first(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """drop_newest keeps the first notifications and counts the rest as dropped."""
    sub = await session.subscribe(
        [server.node_id("Plant/Pump1/Setpoint")],
        OpcUaSubscriptionConfig(
            publishing_interval_ms=10, queue_capacity=1, overflow=OverflowPolicy.DROP_NEWEST
        ),
    )
    async with asyncio.timeout(10):
        await wait_until(lambda: sub.statistics().received >= 1)
        first_value = server.read_value("Plant/Pump1/Setpoint")
        for i in range(5):
            await server.write_values({"Plant/Pump1/Setpoint": float(200 + i)})
            await asyncio.sleep(0.03)
        await wait_until(lambda: sub.statistics().received >= 4)
    stats = sub.statistics()
    assert stats.dropped_newest == stats.received - 1
    kept = sub.get_nowait()
    assert kept is not None
    assert kept.value == first_value
    await sub.aclose()


async def test_block_policy_applies_back_pressure(
    server: OpcUaServer, session: OpcUaClientSession
) -> None:
    """block never drops: the publish loop waits and the newest value arrives after draining."""
    sub = await session.subscribe(
        [server.node_id("Plant/Pump1/Setpoint")],
        OpcUaSubscriptionConfig(
            publishing_interval_ms=10, queue_capacity=1, overflow=OverflowPolicy.BLOCK
        ),
    )
    async with asyncio.timeout(10):
        await wait_until(lambda: sub.statistics().received >= 1)
        for i in range(4):
            await server.write_values({"Plant/Pump1/Setpoint": float(300 + i)})
            await asyncio.sleep(0.03)
        await wait_until(lambda: sub.statistics().blocked_puts >= 1)
        seen = []
        while not seen or seen[-1] != 303.0:
            seen.append((await sub.get()).value)
    stats = sub.statistics()
    assert stats.dropped_newest == stats.dropped_oldest == 0
    await sub.aclose()


async def test_one_shot_lifecycle(server: OpcUaServer) -> None:
    """aclose is idempotent; a closed session refuses work; reopening is refused."""
    session = OpcUaClientSession(OpcUaClientConfig(endpoint=server.endpoint))
    await session.open()
    assert session.state is OpcUaSessionState.CONNECTED
    await session.aclose()
    await session.aclose()
    assert session.state is OpcUaSessionState.CLOSED
    with pytest.raises(ConnectionLost):
        await session.read([server.node_id("Plant/Pump1/Speed")])
    with pytest.raises(Exception, match="one-shot"):
        await session.open()


async def test_connect_to_nothing_raises_connection_lost() -> None:
    """Connecting where no server listens raises ConnectionLost, not an asyncua error."""
    config = OpcUaClientConfig(endpoint="opc.tcp://127.0.0.1:1/none", connect_timeout_s=3)
    with pytest.raises(ConnectionLost):
        async with OpcUaClientSession(config):
            pass
