"""Store-and-forward through real mosquitto outages: exactly once after dedupe, in order."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from drivers.mqtt import (
    ForwarderConfig,
    MessageStore,
    MosquittoBroker,
    MosquittoConfig,
    MqttClient,
    MqttClientConfig,
    ReceivedMessage,
    ReconnectConfig,
    StoreConfig,
    StoreForwardPublisher,
    Subscription,
    parse_stamped,
    stamp_store_id,
)

pytestmark = pytest.mark.usefixtures("mosquitto_installed")

CHILD = Path(__file__).with_name("mqtt_child.py")
FAST = ReconnectConfig(initial_delay_s=0.05, max_delay_s=0.3)


def _subscriber_config(port: int, client_id: str) -> MqttClientConfig:
    # a persistent session: the broker queues what arrives while the subscriber reconnects
    return MqttClientConfig(port=port, client_id=client_id, clean_session=False, reconnect=FAST)


class _Dedupe:
    """A consumer that keeps the first copy of every store id, in arrival order."""

    def __init__(self) -> None:
        self.first_seen: list[int] = []
        self.historical: dict[int, bool] = {}
        self.topics: dict[int, str] = {}
        self.duplicates = 0

    def take(self, message: ReceivedMessage) -> None:
        stamped = parse_stamped(message.payload)
        if stamped.store_id in self.historical:
            self.duplicates += 1
            return
        self.first_seen.append(stamped.store_id)
        self.historical[stamped.store_id] = stamped.historical
        self.topics[stamped.store_id] = message.topic

    async def until(self, subscription: Subscription, wanted: set[int], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not wanted <= self.historical.keys():
                self.take(await subscription.get())


async def test_broker_outage_every_message_once_in_order(tmp_path: Path) -> None:
    """Publishing through a broker outage: after restart each message arrives once, in order."""
    async with (
        MosquittoBroker(MosquittoConfig(persistence=True)) as broker,
        MqttClient(_subscriber_config(broker.port, "outage-sub")) as subscriber,
        MqttClient(MqttClientConfig(port=broker.port, reconnect=FAST)) as client,
        MessageStore(StoreConfig(path=tmp_path / "q.db")) as store,
        StoreForwardPublisher(client, store, encoder=stamp_store_id) as publisher,
    ):
        await subscriber.wait_connected()
        await client.wait_connected()
        subscription = await subscriber.subscribe("outage/#", qos=1, capacity=10_000)
        consumer = _Dedupe()
        ids = [await publisher.publish("outage/a", b"before") for _ in range(50)]
        await consumer.until(subscription, set(ids), 10)
        async with broker.stopped():
            await asyncio.wait_for(client.wait_disconnected(), 5)
            for _ in range(100):
                ids.append(await publisher.publish("outage/a", b"during"))
                await asyncio.sleep(0.01)
        for _ in range(50):
            ids.append(await publisher.publish("outage/a", b"after"))
        await consumer.until(subscription, set(ids), 20)
        assert consumer.first_seen == ids  # every id once after dedupe, in publish order
        assert all(consumer.historical[i] for i in ids[50:150])  # stored during the outage
        assert not any(consumer.historical[i] for i in ids[:50])
        stats = publisher.statistics()
        assert stats.sent_historical >= 100
        assert stats.sessions == 2
        await store.flush()
        async with asyncio.timeout(5):
            while store.statistics().pending_messages:
                await store.flush()  # PUBACKs still arriving
                await asyncio.sleep(0.01)


async def test_sigkilled_publisher_backlog_is_replayed(tmp_path: Path) -> None:
    """A publisher SIGKILLed during an outage loses nothing: its successor replays the backlog."""
    path = tmp_path / "q.db"
    async with (
        MosquittoBroker(MosquittoConfig(persistence=True)) as broker,
        MqttClient(_subscriber_config(broker.port, "kill-sub")) as subscriber,
    ):
        await subscriber.wait_connected()
        subscription = await subscriber.subscribe("kill/#", qos=1, capacity=10_000)
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), "publish", str(broker.port), str(path), "kill/a",
            stdout=asyncio.subprocess.PIPE,
        )
        stored: list[int] = []
        try:
            assert child.stdout is not None

            async def read_stored(count: int) -> None:
                assert child.stdout is not None
                async with asyncio.timeout(20):
                    target = len(stored) + count
                    while len(stored) < target:
                        line = (await child.stdout.readline()).decode().strip()
                        if line.startswith("stored "):
                            stored.append(int(line.split()[1]))

            await read_stored(30)  # live, while the broker is up
            async with broker.stopped():
                await read_stored(60)  # only into the store now
                child.kill()
                await child.wait()
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        assert child.returncode == -9
        consumer = _Dedupe()
        async with (
            MqttClient(MqttClientConfig(port=broker.port, reconnect=FAST)) as client,
            MessageStore(StoreConfig(path=path)) as store,
            StoreForwardPublisher(client, store, encoder=stamp_store_id),
        ):
            await consumer.until(subscription, set(stored), 20)
        assert set(stored) <= set(consumer.first_seen)  # 0 lost
        assert consumer.first_seen == sorted(consumer.first_seen)


async def test_replay_is_rate_limited_and_other_streams_keep_flowing(tmp_path: Path) -> None:
    """A stream's backlog drains at the replay rate before its live data; other streams flow."""
    config = StoreConfig(path=tmp_path / "q.db")
    async with MessageStore(config) as store:
        backlog = [(await store.append("a", "rate/a", b"old")).id for _ in range(60)]
    async with (
        MosquittoBroker() as broker,
        MqttClient(MqttClientConfig(port=broker.port)) as subscriber,
    ):
        await subscriber.wait_connected()
        subscription = await subscriber.subscribe("rate/#", qos=1, capacity=10_000)
        consumer = _Dedupe()
        forwarding = ForwarderConfig(replay_rate_msgs_per_s=30, replay_burst=5)
        async with (
            MqttClient(MqttClientConfig(port=broker.port)) as client,
            MessageStore(config) as store,
            StoreForwardPublisher(client, store, forwarding, stamp_store_id) as publisher,
        ):
            await client.wait_connected()
            live_a = await publisher.publish("rate/a", b"new", stream="a")
            live_b = [await publisher.publish("rate/b", b"new", stream="b") for _ in range(5)]
            await consumer.until(subscription, set(live_b), 10)
            backlog_done_when_b_arrived = sum(1 for i in backlog if i in consumer.historical)
            await consumer.until(subscription, {*backlog, live_a}, 20)
        a_order = [i for i in consumer.first_seen if consumer.topics[i] == "rate/a"]
        assert a_order == [*backlog, live_a]  # backlog first, then live, per stream
        assert backlog_done_when_b_arrived < len(backlog)  # b did not wait for a's backlog
        assert all(consumer.historical[i] for i in backlog)
        assert not consumer.historical[live_a]
        assert not any(consumer.historical[i] for i in live_b)
