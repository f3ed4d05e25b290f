"""MqttClient against real brokers: mosquitto (3.1.1 and 5) and the embedded amqtt."""

from __future__ import annotations

import asyncio

import pytest

from drivers.errors import ConnectionLost, DriverTimeout
from drivers.mqtt import (
    ClientState,
    EmbeddedBroker,
    MosquittoBroker,
    MqttClient,
    MqttClientConfig,
    ReconnectConfig,
)

FAST_RECONNECT = ReconnectConfig(initial_delay_s=0.05, max_delay_s=0.3)


async def _roundtrip(port: int, protocol: str, qos: int, topic: str) -> None:
    config = MqttClientConfig(port=port, protocol=protocol)  # type: ignore[arg-type]
    async with MqttClient(config) as subscriber, MqttClient(config) as publisher:
        await subscriber.wait_connected()
        await publisher.wait_connected()
        subscription = await subscriber.subscribe(f"{topic}/#", qos=qos)
        for index in range(20):
            delivery = await publisher.publish(f"{topic}/{index}", f"v{index}".encode(), qos=qos)
            await asyncio.wait_for(delivery.acked, 5)
        received = [await asyncio.wait_for(subscription.get(), 5) for _ in range(20)]
        assert [m.payload for m in received] == [f"v{i}".encode() for i in range(20)]
        assert [m.topic for m in received] == [f"{topic}/{i}" for i in range(20)]
        assert {m.qos for m in received} == {qos}
        assert publisher.statistics().published == 20
        if qos == 1:
            assert publisher.statistics().acked == 20
        assert subscriber.statistics().received == 20


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
@pytest.mark.parametrize("qos", [0, 1])
async def test_roundtrip_on_mosquitto(mosquitto: MosquittoBroker, protocol: str, qos: int) -> None:
    """Messages published at QoS 0/1 reach a subscriber on mosquitto in order, MQTT 3.1.1 and 5."""
    await _roundtrip(mosquitto.port, protocol, qos, f"rt/{protocol}/{qos}")


@pytest.mark.parametrize("qos", [0, 1])
async def test_roundtrip_on_embedded_amqtt(qos: int) -> None:
    """Messages published at QoS 0/1 reach a subscriber on the embedded amqtt broker in order."""
    async with EmbeddedBroker() as broker:
        assert broker.port > 0
        await _roundtrip(broker.port, "3.1.1", qos, f"amqtt/{qos}")


async def test_user_properties_travel_with_mqtt5(mosquitto: MosquittoBroker) -> None:
    """MQTT 5 user properties set on publish are delivered to the subscriber."""
    config = MqttClientConfig(port=mosquitto.port, protocol="5")
    async with MqttClient(config) as client:
        await client.wait_connected()
        subscription = await client.subscribe("props/x", qos=1)
        delivery = await client.publish("props/x", b"p", qos=1, user_properties=[("id", "42")])
        await asyncio.wait_for(delivery.acked, 5)
        message = await asyncio.wait_for(subscription.get(), 5)
        assert message.user_properties == (("id", "42"),)


async def test_publish_while_disconnected_raises_connection_lost() -> None:
    """With no broker listening, publish raises ConnectionLost and wait_connected times out."""
    async with EmbeddedBroker() as broker:
        port = broker.port
    config = MqttClientConfig(port=port, reconnect=FAST_RECONNECT)
    async with MqttClient(config) as client:
        with pytest.raises(DriverTimeout, match="not connected"):
            await client.wait_connected(timeout_s=0.5)
        with pytest.raises(ConnectionLost):
            await client.publish("x", b"y", qos=1)
        assert client.statistics().connect_failures >= 1
    assert client.state is ClientState.CLOSED


@pytest.mark.usefixtures("mosquitto_installed")
async def test_reconnects_and_resubscribes_after_broker_restart() -> None:
    """After a broker outage the client reconnects by itself and its subscription works again."""
    async with MosquittoBroker() as broker:
        config = MqttClientConfig(port=broker.port, reconnect=FAST_RECONNECT)
        async with MqttClient(config) as client:
            await client.wait_connected()
            subscription = await client.subscribe("re/#", qos=1)
            first = client.session_id
            async with broker.stopped():
                await asyncio.wait_for(client.wait_disconnected(), 5)
                assert not client.is_connected
            await client.wait_session_change(first)
            delivery = await client.publish("re/1", b"back", qos=1)
            await asyncio.wait_for(delivery.acked, 5)
            message = await asyncio.wait_for(subscription.get(), 5)
            assert message.payload == b"back"
            stats = client.statistics()
            assert stats.connects == 2
            assert stats.disconnects == 1


async def test_inflight_window_bounds_unacked_messages(mosquitto: MosquittoBroker) -> None:
    """No more than max_inflight QoS 1 messages are ever unacknowledged at once."""
    config = MqttClientConfig(port=mosquitto.port, max_inflight=4)
    async with MqttClient(config) as client:
        await client.wait_connected()
        peak = 0
        deliveries = []
        for index in range(50):
            deliveries.append(await client.publish(f"win/{index}", b"x", qos=1))
            peak = max(peak, client.statistics().inflight)
        await asyncio.wait_for(asyncio.gather(*(d.acked for d in deliveries)), 10)
        assert 1 <= peak <= 4
        assert client.statistics().acked == 50


async def test_publish_nowait_refuses_a_full_window_then_publish_waits_for_room(
    mosquitto: MosquittoBroker,
) -> None:
    """publish_nowait fills the window without waiting and answers None once it is full;
    publish then waits for a PUBACK to free a slot, and every message is acknowledged."""
    config = MqttClientConfig(port=mosquitto.port, max_inflight=2)
    async with MqttClient(config) as client:
        await client.wait_connected()
        # no await in between: no PUBACK can be read, so the window is exactly full
        first = client.publish_nowait("nowait/1", b"a", qos=1)
        second = client.publish_nowait("nowait/2", b"b", qos=1)
        refused = client.publish_nowait("nowait/3", b"c", qos=1)
        qos0 = client.publish_nowait("nowait/0", b"d", qos=0)
        assert first is not None
        assert second is not None
        assert refused is None
        assert qos0 is not None  # QoS 0 takes no slot
        third = await asyncio.wait_for(client.publish("nowait/3", b"c", qos=1), 5)
        await asyncio.wait_for(asyncio.gather(first.acked, second.acked, third.acked), 5)
        assert client.statistics().acked == 3
        assert client.statistics().inflight == 0
        assert client.publish_nowait("nowait/4", b"e", qos=1) is not None


async def test_subscription_overflow_is_counted(mosquitto: MosquittoBroker) -> None:
    """A full subscription queue drops by its policy and counts every drop."""
    config = MqttClientConfig(port=mosquitto.port)
    async with MqttClient(config) as client:
        await client.wait_connected()
        oldest = await client.subscribe("ovf/#", qos=1, capacity=3, overflow="drop_oldest")
        newest = await client.subscribe("ovf/#", qos=1, capacity=3, overflow="drop_newest")
        sentinel = await client.subscribe("ovf/#", qos=1, capacity=100)
        for index in range(10):
            await (await client.publish(f"ovf/{index}", str(index).encode(), qos=1)).acked
        async with asyncio.timeout(5):
            for _ in range(10):
                await sentinel.get()  # every subscription sees a message at the same moment
        assert [oldest.get_nowait().payload for _ in range(3)] == [b"7", b"8", b"9"]
        assert [newest.get_nowait().payload for _ in range(3)] == [b"0", b"1", b"2"]
        assert oldest.statistics().dropped == 7
        assert newest.statistics().dropped == 7
        assert client.statistics().subscription_drops == 14


async def test_aclose_is_idempotent_and_ends_iteration(mosquitto: MosquittoBroker) -> None:
    """aclose twice is harmless; a subscription's iteration ends when the client closes."""
    client = MqttClient(MqttClientConfig(port=mosquitto.port))
    async with client:
        await client.wait_connected()
        subscription = await client.subscribe("close/#")
    await client.aclose()
    assert client.state is ClientState.CLOSED
    assert [m async for m in subscription] == []
    with pytest.raises(RuntimeError, match="one-shot"):
        await client.__aenter__()
