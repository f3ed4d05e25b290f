"""Server killed and restarted on the same port: bad quality, then values resume."""

from __future__ import annotations

import asyncio

import pytest
from opcua_testkit import ADDRESS_SPACE, HANDLERS, wait_until

from drivers.errors import ConnectionLost
from drivers.opcua import (
    OpcUaClientConfig,
    OpcUaClientSession,
    OpcUaReconnectConfig,
    OpcUaServer,
    OpcUaServerConfig,
    OpcUaSessionState,
    OpcUaSubscriptionConfig,
)


async def test_restart_reports_gap_then_resubscribes() -> None:
    """After a server restart the subscriber sees Bad quality, then new values within seconds."""
    first = OpcUaServer(
        OpcUaServerConfig(port=0, publish_current_time=False),
        ADDRESS_SPACE,
        method_handlers=HANDLERS,
    )
    await first.start()
    port = first.port
    config = OpcUaClientConfig(
        endpoint=first.endpoint,
        watchdog_interval_s=0.5,
        reconnect=OpcUaReconnectConfig(initial_delay_s=0.1, max_delay_s=0.5),
    )
    second: OpcUaServer | None = None
    try:
        async with OpcUaClientSession(config) as session:
            sub = await session.subscribe(
                [first.node_id("Plant/Pump1/Speed")],
                OpcUaSubscriptionConfig(publishing_interval_ms=20),
            )
            async with asyncio.timeout(5):
                assert (await sub.get()).good
            await first.aclose()
            async with asyncio.timeout(5):
                gap = await sub.get()
            assert gap.quality.bad  # BadShutdown (asyncua) or BadNotConnected (ours)
            assert gap.value is None
            await wait_until(lambda: session.state is OpcUaSessionState.RECONNECTING)
            with pytest.raises(ConnectionLost):
                await session.read([first.node_id("Plant/Pump1/Speed")])
            second = OpcUaServer(
                OpcUaServerConfig(port=port, publish_current_time=False),
                ADDRESS_SPACE,
                method_handlers=HANDLERS,
            )
            await second.start()
            await session.wait_connected(timeout_s=10)
            await second.write_values({"Plant/Pump1/Speed": 1234.0})
            async with asyncio.timeout(5):
                while (result := await sub.get()).value != 1234.0:
                    pass
            assert result.good
            assert (await session.read_value(second.node_id("Plant/Pump1/Speed"))) == 1234.0
            stats = session.statistics()
            assert stats.connection_losses == 1
            assert stats.connects == 2
            assert stats.subscriptions[0].activations == 2
    finally:
        await first.aclose()
        if second is not None:
            await second.aclose()


async def test_no_reconnect_leaves_session_disconnected() -> None:
    """With reconnect disabled a lost server leaves the session DISCONNECTED, reads fail."""
    server = OpcUaServer(
        OpcUaServerConfig(port=0, publish_current_time=False),
        ADDRESS_SPACE,
        method_handlers=HANDLERS,
    )
    await server.start()
    config = OpcUaClientConfig(
        endpoint=server.endpoint, reconnect=OpcUaReconnectConfig(enabled=False)
    )
    async with OpcUaClientSession(config) as session:
        await server.aclose()
        await wait_until(lambda: session.state is OpcUaSessionState.DISCONNECTED)
        with pytest.raises(ConnectionLost):
            await session.read(["i=2259"])
    assert session.state is OpcUaSessionState.CLOSED
