"""FedAvg over MQTT with the embedded broker: same result as in-process, topics and QoS 1."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from amqtt_quirks import AMQTT_LEAKS_SERVER_SOCKETS

from drivers.mqtt import (
    EmbeddedBroker,
    MosquittoBroker,
    MosquittoConfig,
    MqttClient,
    MqttClientConfig,
    find_mosquitto,
)
from testbed.ai.errors import FederatedError
from testbed.ai.federated import (
    FederatedConfig,
    MqttTransport,
    PayloadKind,
    TransportStatistics,
    WeightPayload,
    run_federated,
)

pytestmark = [
    pytest.mark.timeout(60),
    AMQTT_LEAKS_SERVER_SOCKETS,
]


@pytest.fixture(autouse=True)
def _collect_leaks_here() -> Iterator[None]:
    """Surface amqtt's leaked server streams inside the test that made them (filtered)."""
    yield
    gc.collect()


async def test_mqtt_transport_gives_the_in_process_result() -> None:
    """Over an embedded broker (with stale retained messages) the result equals in-process."""
    config = FederatedConfig.small(seed=5).model_copy(update={"rounds": 3})
    local = await run_federated(config)
    async with EmbeddedBroker() as broker:
        client = MqttClientConfig(port=broker.port)
        async with MqttClient(client) as observer:
            await observer.wait_connected()
            # a run that died left retained messages behind: the transport clears them first
            for topic in ("testbed/fl/1/site_a", "testbed/fl/0/global"):
                await (await observer.publish(topic, b"stale", qos=1, retain=True)).acked
            seen = await observer.subscribe("testbed/fl/+/+", qos=1)
            async with MqttTransport(client, [s.name for s in config.sites]) as transport:
                remote = await run_federated(config, transport)
                stats = transport.statistics()
            topics = []
            async with asyncio.timeout(5):
                while len(topics) < stats.updates_sent + stats.globals_sent:
                    message = await seen.get()
                    if message.payload and not message.retain:  # skip stale and clears
                        topics.append(message.topic)
            leftovers = await _retained(client)
    assert remote.report.transport == "mqtt"
    assert remote.report.without_timings() == local.report.without_timings().model_copy(
        update={"transport": "mqtt"})
    assert remote.model_onnx == local.model_onnx
    assert stats.updates_sent == 2 * (config.rounds + 1)
    assert stats.globals_sent == config.rounds + 1
    assert stats.rejected == 0
    assert "testbed/fl/0/site_a" in topics
    assert "testbed/fl/0/global" in topics
    assert f"testbed/fl/{config.rounds}/site_b" in topics
    assert f"testbed/fl/{config.rounds}/global" in topics
    assert leftovers == []


async def _retained(config: MqttClientConfig) -> list[str]:
    """Topics under testbed/fl still holding a retained payload (sentinel marks the end)."""
    async with MqttClient(config) as late:
        await late.wait_connected()
        inbox = await late.subscribe("testbed/fl/#", qos=1)
        await (await late.publish("testbed/fl/end/sentinel", b"end", qos=1)).acked
        found = []
        async with asyncio.timeout(5):
            while (message := await inbox.get()).topic != "testbed/fl/end/sentinel":
                if message.payload:
                    found.append(message.topic)
        return found


async def test_missing_site_update_times_out_with_a_clear_error() -> None:
    """If a site never uploads, the aggregator's wait ends in FederatedError naming the round."""
    async with EmbeddedBroker() as broker:
        client = MqttClientConfig(port=broker.port)
        async with MqttTransport(client, ["site_a", "site_b"], timeout_s=0.5) as transport:
            payload = WeightPayload(PayloadKind.STATISTICS, 0, "site_a", 1, ())
            await transport.send_update(0, "site_a", payload.encode())
            first = await transport.next_update(0)
            assert WeightPayload.decode(first).site == "site_a"
            with pytest.raises(FederatedError, match="round 0"):
                await transport.next_update(0)


async def test_unreachable_broker_is_a_federated_error() -> None:
    """A broker that is not there fails the transport's opening with FederatedError."""
    async with EmbeddedBroker() as broker:
        port = broker.port
    client = MqttClientConfig(port=port, connect_timeout_s=0.5)
    with pytest.raises(FederatedError, match=str(port)):
        async with MqttTransport(client, ["site_a", "site_b"]):
            pass


def test_site_names_must_be_single_topic_levels() -> None:
    """A site called `global` or containing `/` is refused before connecting."""
    with pytest.raises(FederatedError, match="topic levels"):
        MqttTransport(MqttClientConfig(), ["global", "site_b"])
    with pytest.raises(FederatedError, match="topic levels"):
        MqttTransport(MqttClientConfig(), ["a/b"])


class _PauseBeforeUpload:
    """Wraps a transport: site_a's upload of `round_index` waits until the test lets it go."""

    def __init__(self, inner: MqttTransport, round_index: int) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.round_index = round_index
        self.reached = asyncio.Event()
        self.resume = asyncio.Event()

    async def send_update(self, round_index: int, site: str, data: bytes) -> None:
        if (round_index, site) == (self.round_index, "site_a"):
            self.reached.set()
            await self.resume.wait()
        await self.inner.send_update(round_index, site, data)

    async def next_update(self, round_index: int) -> bytes:
        return await self.inner.next_update(round_index)

    async def send_global(self, round_index: int, data: bytes) -> None:
        await self.inner.send_global(round_index, data)

    async def next_global(self, site: str, round_index: int) -> bytes:
        return await self.inner.next_global(site, round_index)

    def statistics(self) -> TransportStatistics:
        return self.inner.statistics()


async def test_federation_survives_a_broker_restart() -> None:
    """A broker restart mid-round loses nothing: the result equals the in-process one.

    mosquitto, because amqtt cannot reliably stop with clients connected.
    """
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    config = FederatedConfig.small(seed=6).model_copy(update={"rounds": 4})
    local = await run_federated(config)
    async with MosquittoBroker(MosquittoConfig()) as broker:
        client = MqttClientConfig(port=broker.port)
        async with MqttTransport(client, [s.name for s in config.sites]) as inner:
            transport = _PauseBeforeUpload(inner, round_index=2)
            async with asyncio.TaskGroup() as group:
                run = group.create_task(run_federated(config, transport))
                await transport.reached.wait()
                async with broker.stopped():
                    await asyncio.sleep(0.2)  # the outage: every client loses its connection
                transport.resume.set()
                remote = await run
            stats = inner.statistics()
    assert remote.report.without_timings() == local.report.without_timings().model_copy(
        update={"transport": "mqtt"})
    assert remote.model_onnx == local.model_onnx
    assert stats.republished + stats.retries > 0, stats
