"""EdgeLink: Sparkplug edge node + store-and-forward on real brokers (embedded amqtt, mosquitto)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from drivers.errors import SecurityError
from drivers.mqtt import (
    EmbeddedBroker,
    EmbeddedBrokerConfig,
    MosquittoBroker,
    MosquittoConfig,
    MqttClient,
    MqttClientConfig,
    ReconnectConfig,
    StoreConfig,
    Subscription,
    TlsConfig,
    generate_test_pki,
)
from drivers.mqtt.edge_link import EdgeLink, EdgeLinkConfig, EdgeLinkState
from drivers.mqtt.sparkplug import (
    DataType,
    Deadband,
    DeadbandKind,
    EdgeNodeConfig,
    EdgeNodeState,
    HostDecoder,
    HostMessage,
    MessageType,
    Metric,
    MetricSpec,
    MetricValueError,
    command_message,
    encode_host_state,
    rebirth_request,
    state_topic,
)

FAST = ReconnectConfig(initial_delay_s=0.05, max_delay_s=0.3)
PUMP = [
    MetricSpec("speed", DataType.DOUBLE, 0.0, deadband=Deadband(DeadbandKind.ABSOLUTE, 0.5)),
    MetricSpec("setpoint", DataType.INT32, 0),
]


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `check` until it holds (a functional deadline, not a timing assertion)."""
    for _ in range(int(timeout_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")


def link_config(
    port: int, path: Path, *, host_id: str | None = None, mqtt: MqttClientConfig | None = None
) -> EdgeLinkConfig:
    return EdgeLinkConfig(
        mqtt=mqtt or MqttClientConfig(port=port, reconnect=FAST),
        node=EdgeNodeConfig(
            group_id="plant", edge_node_id="edge1", primary_host_id=host_id, data_qos=1
        ),
        store=StoreConfig(path=path / "edge.db"),
    )


class Host:
    """A minimal Sparkplug host for the tests: decodes everything it receives, in order."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.decoder = HostDecoder()
        self.messages: list[HostMessage] = []

    async def until(self, count: int, verb: MessageType, timeout_s: float = 10) -> None:
        async with asyncio.timeout(timeout_s):
            while sum(1 for m in self.messages if m.topic.message_type is verb) < count:
                message = await self.subscription.get()
                self.messages.append(self.decoder.decode(message.topic, message.payload))

    def of(self, verb: MessageType) -> list[HostMessage]:
        return [m for m in self.messages if m.topic.message_type is verb]

    async def until_ids(self, wanted: set[int | None], timeout_s: float = 10) -> None:
        """Take messages until a DDATA of every store id in `wanted` arrived (a broker's QoS 1
        redelivery of one already seen does not count twice)."""
        async with asyncio.timeout(timeout_s):
            while not wanted <= {
                m.payload.message_id for m in self.of(MessageType.DDATA) if m.payload is not None
            }:
                message = await self.subscription.get()
                self.messages.append(self.decoder.decode(message.topic, message.payload))


@pytest.fixture
async def embedded() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker(EmbeddedBrokerConfig(port=0)) as broker:
        yield broker


async def _host(port: int) -> tuple[MqttClient, Host]:
    client = MqttClient(MqttClientConfig(port=port, reconnect=FAST))
    await client.__aenter__()
    await client.wait_connected()
    return client, Host(await client.subscribe("spBv1.0/+/+/edge1/#", qos=1, capacity=50_000))


async def test_births_then_data_by_exception_with_message_ids(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    """NBIRTH/DBIRTH come first; DDATA carry store ids; changes inside the deadband stay."""
    client, host = await _host(embedded.port)
    try:
        async with EdgeLink(link_config(embedded.port, tmp_path), devices={"pump": PUMP}) as link:
            await link.wait_ready(5)
            ids = [
                await link.report("pump", {"speed": 10.0}),
                await link.report("pump", {"speed": 10.2}),  # inside the 0.5 deadband
                await link.report("pump", {"speed": 11.0, "setpoint": 3}),
            ]
            assert ids[1] is None
            await host.until(2, MessageType.DDATA)
            await link.wait_drained(5)
            stats = link.statistics()
        verbs = [m.topic.message_type for m in host.messages]
        assert verbs[:2] == [MessageType.NBIRTH, MessageType.DBIRTH]
        data = host.of(MessageType.DDATA)
        assert [m.payload.message_id for m in data if m.payload] == [ids[0], ids[2]]
        assert data[1].values() == {"speed": 11.0, "setpoint": 3}
        assert all(m.seq_status.value == "in_order" for m in data)
        assert stats.suppressed == 1
        assert stats.acked == 2
        assert stats.backlog == 0
    finally:
        await client.aclose()


async def test_report_many_stores_in_one_commit_and_sends_each_in_order(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    """report_many gives one store id per changed report (None if suppressed), commits them
    together, and each goes out as its own DDATA in order, live."""
    client, host = await _host(embedded.port)
    try:
        async with EdgeLink(link_config(embedded.port, tmp_path), devices={"pump": PUMP}) as link:
            await link.wait_ready(5)
            commits = link._store.statistics().commits
            ids = await link.report_many(
                [("pump", {"setpoint": n}) for n in range(1, 40)]
                + [("pump", {"setpoint": 39}), ("pump", {"speed": 5.0})]
            )
            assert link._store.statistics().commits <= commits + 1
            await host.until(40, MessageType.DDATA)
            await link.wait_drained(5)
        assert ids[39] is None  # unchanged: report by exception
        sent = [i for i in ids if i is not None]
        assert sent == sorted(sent)
        assert len(sent) == 40
        data = host.of(MessageType.DDATA)
        assert [m.payload.message_id for m in data if m.payload] == sent
        assert [m.values() for m in data][-2:] == [{"setpoint": 39}, {"speed": 5.0}]
        assert not any(m.payload.metrics[0].is_historical for m in data if m.payload)
    finally:
        await client.aclose()


async def test_messages_past_the_live_buffer_are_read_back_in_order(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    """With a tiny live buffer a fast producer's messages come back from the store, and all
    of them still leave once, in id order, as live data."""
    config = link_config(embedded.port, tmp_path).model_copy(
        update={"live_buffer": 4, "fetch_batch": 7}
    )
    client, host = await _host(embedded.port)
    try:
        async with EdgeLink(config, devices={"pump": PUMP}) as link:
            await link.wait_ready(5)
            ids = await link.report_many([("pump", {"setpoint": n}) for n in range(1, 101)])
            await host.until(100, MessageType.DDATA)
            await link.wait_drained(5)
        data = host.of(MessageType.DDATA)
        assert [m.payload.message_id for m in data if m.payload] == ids
        assert [m.values()["setpoint"] for m in data] == list(range(1, 101))
        assert not any(m.payload.metrics[0].is_historical for m in data if m.payload)
    finally:
        await client.aclose()


async def test_report_many_stores_the_reports_before_a_bad_one(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    """A report naming an undeclared metric raises after the reports before it are stored."""
    async with EdgeLink(link_config(embedded.port, tmp_path), devices={"pump": PUMP}) as link:
        await link.wait_ready(5)
        with pytest.raises(MetricValueError, match="'nope' is not declared"):
            await link.report_many(
                [("pump", {"setpoint": 1}), ("pump", {"nope": 2}), ("pump", {"setpoint": 3})]
            )
        await link.wait_drained(5)
        stats = link.statistics()
    assert stats.stored == 1
    assert stats.acked == 1


async def test_holds_until_primary_host_online_then_replays_historical(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    """Data is held while the primary host is offline, then replayed as historical, in order."""
    client, host = await _host(embedded.port)
    try:
        offline = encode_host_state(False, int(time.time() * 1000))
        await (await client.publish(state_topic("scada"), offline, qos=1, retain=True)).acked
        config = link_config(embedded.port, tmp_path, host_id="scada")
        async with EdgeLink(config, devices={"pump": PUMP}) as link:
            ids = [await link.report("pump", {"setpoint": i}) for i in range(1, 21)]
            await asyncio.sleep(0.3)
            stats = link.statistics()
            assert stats.node_state is EdgeNodeState.WAITING_FOR_HOST
            assert stats.held == 20
            assert stats.backlog == 20
            assert stats.sent_live == 0
            online = encode_host_state(True, int(time.time() * 1000) + 1)
            await (await client.publish(state_topic("scada"), online, qos=1, retain=True)).acked
            await host.until(20, MessageType.DDATA)
            await link.wait_drained(5)
            # the host goes offline again: hold, then replay after it comes back
            await client.publish(
                state_topic("scada"), encode_host_state(False, int(time.time() * 1000) + 2), 1
            )
            await eventually(lambda: link.node.state is EdgeNodeState.HOLDING)
            ids += [await link.report("pump", {"setpoint": i}) for i in range(100, 110)]
            await asyncio.sleep(0.2)
            assert link.statistics().backlog == 10
            await client.publish(
                state_topic("scada"), encode_host_state(True, int(time.time() * 1000) + 3), 1
            )
            await host.until(30, MessageType.DDATA)
            stats = link.statistics()
        data = host.of(MessageType.DDATA)
        assert [m.payload.message_id for m in data if m.payload] == ids
        assert all(m.payload and m.payload.metrics[0].is_historical for m in data)
        assert len(host.of(MessageType.NBIRTH)) == 2
        assert stats.replayed == 30
        assert stats.held == 30
    finally:
        await client.aclose()


async def test_commands_reach_listeners_and_rebirth_is_answered(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    """A DCMD write reaches receive_command and listeners; an NCMD rebirth gets a fresh NBIRTH."""
    client, host = await _host(embedded.port)
    try:
        async with EdgeLink(link_config(embedded.port, tmp_path), devices={"pump": PUMP}) as link:
            heard: list[object] = []
            link.add_command_listener(heard.append)
            await link.wait_ready(5)
            stamp = int(time.time() * 1000)
            write = command_message(
                "plant", "edge1", (Metric("setpoint", DataType.INT32, 42),), stamp, "pump"
            )
            await client.publish(write.topic, write.payload, 1)
            command = await asyncio.wait_for(link.receive_command(), 5)
            assert command.device_id == "pump"
            assert [(m.name, m.value) for m in command.metrics] == [("setpoint", 42)]
            assert heard == [command]
            rebirth = rebirth_request("plant", "edge1", stamp)
            await client.publish(rebirth.topic, rebirth.payload, 1)
            await host.until(2, MessageType.NBIRTH)
            # garbage on the command topic is counted, not fatal
            await client.publish("spBv1.0/plant/NCMD/edge1", b"\xff\x00garbage", 1)
            await eventually(lambda: bool(link.statistics().inbound_rejected))
            assert await link.report("pump", {"setpoint": 7}) is not None
            await link.wait_drained(5)
            assert link.statistics().inbound_rejected == (("malformed", 1),)
    finally:
        await client.aclose()


@pytest.mark.usefixtures("mosquitto_installed")
async def test_broker_outage_backlog_replayed_then_live(tmp_path: Path) -> None:
    """Reports made during an outage are stored, then replayed first, as historical."""
    async with MosquittoBroker(MosquittoConfig(persistence=True)) as broker:
        sub_config = MqttClientConfig(
            port=broker.port, client_id="edge-link-host", clean_session=False, reconnect=FAST
        )
        async with MqttClient(sub_config) as client:
            await client.wait_connected()
            host = Host(await client.subscribe("spBv1.0/#", qos=1, capacity=50_000))
            async with EdgeLink(link_config(broker.port, tmp_path), devices={"pump": PUMP}) as link:
                await link.wait_ready(5)
                ids = [await link.report("pump", {"setpoint": i}) for i in range(1, 11)]
                await link.wait_drained(5)
                async with broker.stopped():
                    await eventually(lambda: not link.statistics().connected)
                    ids += [await link.report("pump", {"setpoint": i}) for i in range(11, 61)]
                    assert link.statistics().backlog == 50
                await link.wait_ready(10)
                ids += [await link.report("pump", {"setpoint": i}) for i in range(61, 71)]
                # the persistent host session may get pre-outage messages again (QoS 1)
                await host.until_ids(set(ids), timeout_s=20)
                stats = link.statistics()
                bd_seq = link.node.bd_seq
        first_seen: list[int] = []
        historical: dict[int, bool] = {}
        for message in host.of(MessageType.DDATA):
            assert message.payload is not None
            assert message.payload.message_id is not None
            if message.payload.message_id not in historical:
                first_seen.append(message.payload.message_id)
                historical[message.payload.message_id] = message.payload.metrics[0].is_historical
        assert first_seen == ids
        assert all(historical[i] for i in ids[10:60])
        assert not any(historical[i] for i in ids[60:])
        # births go at QoS 0 (Sparkplug), so the host may miss the second one while it reconnects
        assert bd_seq == 1
        assert stats.sessions == 2
        assert stats.replayed == 50


@pytest.mark.usefixtures("mosquitto_installed")
async def test_wrong_password_fails_clearly(tmp_path: Path) -> None:
    """Rejected credentials move the link to FAILED and wait_ready raises SecurityError."""
    users = {"edge": SecretStr("right")}
    async with MosquittoBroker(MosquittoConfig(users=users)) as broker:
        mqtt = MqttClientConfig(port=broker.port, username="edge", password=SecretStr("wrong"))
        async with EdgeLink(link_config(broker.port, tmp_path, mqtt=mqtt)) as link:
            with pytest.raises(SecurityError):
                await link.wait_ready(10)
            assert link.state is EdgeLinkState.FAILED
            stats = link.statistics()
            assert stats.security_failures == 1
            assert stats.last_error
            # reports are still stored for a later, correctly configured run
            assert await link.report(None, {}) is None


@pytest.mark.usefixtures("mosquitto_installed")
async def test_untrusted_tls_certificate_fails_clearly(tmp_path: Path) -> None:
    """A broker certificate from an untrusted CA fails the link with SecurityError."""
    other = generate_test_pki(tmp_path / "other", name="other")
    async with MosquittoBroker(MosquittoConfig(tls=True)) as broker:
        tls = TlsConfig(
            ca_file=other.ca_cert, cert_file=other.client_cert, key_file=other.client_key
        )
        mqtt = MqttClientConfig(port=broker.tls_port, tls=tls)
        async with EdgeLink(link_config(broker.tls_port, tmp_path, mqtt=mqtt)) as link:
            with pytest.raises(SecurityError):
                await link.wait_ready(10)
            assert link.statistics().security_failures == 1


async def test_bytes_published_counts_every_topic_and_payload_sent(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    """bytes_published equals the topic + payload bytes a subscriber receives (births + data)."""
    client = MqttClient(MqttClientConfig(port=embedded.port, reconnect=FAST))
    await client.__aenter__()
    try:
        await client.wait_connected()
        sub = await client.subscribe("spBv1.0/+/+/edge1/#", qos=1, capacity=1000)
        async with EdgeLink(link_config(embedded.port, tmp_path), devices={"pump": PUMP}) as link:
            await link.wait_ready(5)
            for speed in (10.0, 20.0, 30.0):
                await link.report("pump", {"speed": speed})
            await link.wait_drained(5)
            stats = link.statistics()
        received = 0
        for _ in range(5):  # NBIRTH, DBIRTH, 3 x DDATA
            message = await asyncio.wait_for(sub.get(), 5)
            received += len(message.topic.encode()) + len(message.payload)
        assert stats.bytes_published == received
    finally:
        await client.aclose()
