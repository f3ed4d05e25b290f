"""The embedded broker survives clients connecting while others subscribe (amqtt 0.12 bug)."""

from __future__ import annotations

import asyncio

import pytest

from drivers.mqtt import EmbeddedBroker, EmbeddedBrokerConfig, MqttClient, MqttClientConfig
from drivers.mqtt.embedded_broker import _SnapshotIterDict

pytestmark = pytest.mark.timeout(60)


def test_the_subscription_table_may_change_while_it_is_walked() -> None:
    """Iterating keys or items walks a copy: adding and deleting meanwhile is fine."""
    table = _SnapshotIterDict({"a/#": [], "b/#": []})
    for topic in table:
        table[f"{topic}/more"] = []
        del table[topic]
    for topic, _subs in table.items():
        table.pop(topic)
    assert dict(table) == {}


async def test_clients_connecting_during_subscriptions_all_get_messages() -> None:
    """Thirty clients connect and subscribe at once while the broker replays retained
    messages to each connecting session; each then receives a live publish (amqtt 0.12
    alone raised 'dictionary changed size during iteration' and left sessions dead)."""
    async with EmbeddedBroker() as broker:
        config = MqttClientConfig(port=broker.port)
        async with MqttClient(config) as seed:
            await seed.wait_connected()
            await seed.subscribe("r/#", qos=1)  # a filter with retained messages to replay
            for i in range(200):
                await (await seed.publish(f"r/{i}", b"x" * 1000, qos=1, retain=True)).acked

            async def one(i: int) -> bytes:
                await asyncio.sleep(0.002 * i)  # connects overlap others' subscribes
                async with MqttClient(config) as client:
                    await client.wait_connected()
                    inbox = await client.subscribe(f"live/{i}", qos=1)  # a new table key
                    await (await client.publish(f"live/{i}", b"hello", qos=1)).acked
                    async with asyncio.timeout(10):
                        return (await inbox.get()).payload

            payloads = await asyncio.gather(*(one(i) for i in range(30)))
    assert payloads == [b"hello"] * 30


async def test_a_closing_broker_delivers_what_it_acknowledged() -> None:
    """Messages the broker PUBACKed reach their subscriber before it stops (the publisher
    has deleted them from its store by then). Closed at once after a burst, amqtt alone
    drops its broadcast queue and hangs on the unacknowledged deliveries."""
    broker = EmbeddedBroker(EmbeddedBrokerConfig(stop_timeout_s=5.0))
    await broker.__aenter__()
    config = MqttClientConfig(port=broker.port)
    got: list[bytes] = []
    async with MqttClient(config) as sub, MqttClient(config) as pub:
        await sub.wait_connected()
        await pub.wait_connected()
        inbox = await sub.subscribe("burst/#", qos=1)
        pending = [await pub.publish(f"burst/{i}", str(i).encode(), qos=1) for i in range(300)]
        for message in pending:
            await message.acked  # every one PUBACKed: the publisher's responsibility ends
        await broker.aclose()  # at once, as a broker outage does
        await asyncio.sleep(0.2)  # what was sent before the close reaches the client
        while True:
            try:
                got.append(inbox.get_nowait().payload)
            except asyncio.QueueEmpty:
                break
    assert got == [str(i).encode() for i in range(300)]
