"""The edge node against a real mosquitto broker, observed by a host-side subscriber."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sparkplug_test_support import PahoTransport

from drivers.mqtt.sparkplug import (
    BD_SEQ_METRIC,
    DataType,
    Deadband,
    DeadbandKind,
    EdgeNode,
    EdgeNodeConfig,
    EdgeNodeState,
    HostDecoder,
    HostMessage,
    Metric,
    MetricSpec,
    PublishOutcome,
    SeqStatus,
    command_message,
    encode_host_state,
    rebirth_request,
    state_topic,
)

_ids = itertools.count()


TANK = [
    MetricSpec("Level", DataType.DOUBLE, 0.0, deadband=Deadband(DeadbandKind.ABSOLUTE, 0.5)),
    MetricSpec("Setpoint", DataType.FLOAT, 1.0),
    MetricSpec("Pump", DataType.BOOLEAN, False),
]


@asynccontextmanager
async def observer(port: int) -> AsyncIterator[PahoTransport]:
    """A host-side client subscribed to the whole Sparkplug namespace."""
    client = PahoTransport(port, f"observer-{next(_ids)}")
    await client.connect()
    await client.subscribe("spBv1.0/#", 1)
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def edge_session(node: EdgeNode, transport: PahoTransport) -> AsyncIterator[None]:
    """Connect `node` over paho: will, CONNECT, subscriptions and births, with a receive pump
    task (owned by a TaskGroup, cancelled on exit) feeding handle_message."""
    node.begin_session()
    await transport.connect()

    async def pump() -> None:
        while True:
            topic, payload = await transport.messages.get()
            await node.handle_message(topic, payload)

    async with asyncio.TaskGroup() as tasks:
        pump_task = tasks.create_task(pump())
        await node.on_connected()
        try:
            yield
        finally:
            pump_task.cancel()
    await transport.close()


def make_edge(port: int, **config: object) -> tuple[EdgeNode, PahoTransport]:
    """An edge node `plant/gw1` (node metric Uptime) on a paho transport to `port`."""
    cfg = EdgeNodeConfig.model_validate({"group_id": "plant", "edge_node_id": "gw1", **config})
    transport = PahoTransport(port, f"edge-{next(_ids)}")
    node = EdgeNode(cfg, transport, node_metrics=[MetricSpec("Uptime", DataType.INT64, 0)])
    return node, transport


async def next_decoded(
    client: PahoTransport, host: HostDecoder, prefix: str = "spBv1.0/plant/"
) -> HostMessage:
    """The next Sparkplug message of group `plant`, decoded by the host decoder."""
    topic, payload = await client.receive_matching(prefix)
    return host.decode(topic, payload)


async def test_births_data_and_deaths_arrive_in_sequence(broker_port: int) -> None:
    """A subscriber sees NBIRTH (seq 0, bdSeq), DBIRTH, DDATA with aliases resolved by the
    host decoder, DDEATH and a clean NDEATH, every seq in order."""
    host = HostDecoder()
    node, transport = make_edge(broker_port)
    await node.add_device("tank", TANK)
    async with observer(broker_port) as obs, edge_session(node, transport):
        nbirth = await next_decoded(obs, host)
        assert nbirth.topic.message_type == "NBIRTH"
        assert nbirth.payload is not None
        assert nbirth.payload.seq == 0
        assert nbirth.values()[BD_SEQ_METRIC] == 0
        assert nbirth.values()["Node Control/Rebirth"] is False
        dbirth = await next_decoded(obs, host)
        assert (dbirth.topic.message_type, dbirth.topic.device_id) == ("DBIRTH", "tank")
        assert dbirth.values() == {"Level": 0.0, "Setpoint": 1.0, "Pump": False}
        assert dbirth.seq_status is SeqStatus.IN_ORDER

        outcome = await node.report("tank", {"Level": 3.0, "Pump": True}, message_id=11)
        assert outcome is PublishOutcome.SENT
        ddata = await next_decoded(obs, host)
        assert ddata.topic.message_type == "DDATA"
        assert ddata.seq_status is SeqStatus.IN_ORDER
        assert ddata.values() == {"Level": 3.0, "Pump": True}  # one batched message
        assert ddata.payload is not None
        assert ddata.payload.message_id == 11
        assert all(m.alias is not None for m in ddata.payload.metrics)

        await node.report(None, {"Uptime": 60}, message_id=12)
        ndata = await next_decoded(obs, host)
        assert (ndata.topic.message_type, ndata.values()) == ("NDATA", {"Uptime": 60})

        await node.device_offline("tank")
        ddeath = await next_decoded(obs, host)
        assert ddeath.topic.message_type == "DDEATH"
        assert ddeath.seq_status is SeqStatus.IN_ORDER
        assert await node.report("tank", {"Level": 9.0}, message_id=13) is PublishOutcome.HELD

        await node.aclose()
        ndeath = await next_decoded(obs, host)
        assert ndeath.topic.message_type == "NDEATH"
        assert ndeath.values()[BD_SEQ_METRIC] == 0
        assert not host.is_online("plant", "gw1")
    stats = host.statistics()
    assert (stats.gaps, stats.seq_duplicates, stats.errors) == (0, 0, ())


async def test_rebirth_command_republishes_births(broker_port: int) -> None:
    """NCMD `Node Control/Rebirth` = true makes the node publish NBIRTH (seq 0, same bdSeq)
    and every DBIRTH again with current values."""
    host = HostDecoder()
    node, transport = make_edge(broker_port)
    await node.add_device("tank", TANK)
    async with observer(broker_port) as obs, edge_session(node, transport):
        await next_decoded(obs, host)
        await next_decoded(obs, host)
        await node.report("tank", {"Setpoint": 4.0}, message_id=1)
        await next_decoded(obs, host)
        request = rebirth_request("plant", "gw1", timestamp_ms=1)
        await obs.publish(request.topic, request.payload, request.qos, request.retain)
        assert (await obs.receive_matching("spBv1.0/plant/NCMD/")) is not None
        nbirth = await next_decoded(obs, host)
        assert nbirth.topic.message_type == "NBIRTH"
        assert nbirth.payload is not None
        assert nbirth.payload.seq == 0
        assert nbirth.values()[BD_SEQ_METRIC] == 0
        dbirth = await next_decoded(obs, host)
        assert dbirth.values()["Setpoint"] == 4.0
        assert node.statistics().rebirth_requests == 1


async def test_ndeath_is_delivered_as_will_when_the_socket_dies(broker_port: int) -> None:
    """When the edge node's TCP connection dies, the broker publishes its NDEATH will carrying
    the session's bdSeq; the next session births with bdSeq + 1."""
    host = HostDecoder()
    node, transport = make_edge(broker_port)
    async with observer(broker_port) as obs:
        will = node.begin_session()
        await transport.connect()
        await node.on_connected()
        nbirth = await next_decoded(obs, host)
        assert nbirth.values()[BD_SEQ_METRIC] == 0
        await transport.kill_socket()
        node.on_connection_lost()
        ndeath_topic, ndeath_payload = await obs.receive_matching("spBv1.0/plant/NDEATH/")
        assert (ndeath_topic, ndeath_payload) == (will.topic, will.payload)
        death = host.decode(ndeath_topic, ndeath_payload)
        assert death.values()[BD_SEQ_METRIC] == 0
        assert not death.stale_death
        assert not host.is_online("plant", "gw1")
        assert node.state is EdgeNodeState.DISCONNECTED

        async with edge_session(node, transport):
            rebirth = await next_decoded(obs, host)
            assert rebirth.topic.message_type == "NBIRTH"
            assert rebirth.values()[BD_SEQ_METRIC] == 1
            assert host.is_online("plant", "gw1")


async def test_seq_wraps_from_255_to_0(broker_port: int) -> None:
    """300 data messages carry seq 1..255, 0, 1, ... and the host sees no gap."""
    host = HostDecoder()
    node, transport = make_edge(broker_port, data_qos=1)
    async with observer(broker_port) as obs, edge_session(node, transport):
        await next_decoded(obs, host)
        seqs = []
        for i in range(1, 301):
            assert await node.report(None, {"Uptime": i}, message_id=i) is PublishOutcome.SENT
        for _ in range(300):
            msg = await next_decoded(obs, host)
            assert msg.payload is not None
            assert msg.payload.seq is not None
            assert msg.seq_status is SeqStatus.IN_ORDER
            seqs.append(msg.payload.seq)
    assert seqs == [i % 256 for i in range(1, 301)]
    assert host.statistics().gaps == 0


async def test_deadband_suppresses_small_changes(broker_port: int) -> None:
    """Changes inside a metric's deadband are not published; a larger change is."""
    host = HostDecoder()
    node, transport = make_edge(broker_port)
    await node.add_device("tank", TANK)
    async with observer(broker_port) as obs, edge_session(node, transport):
        await next_decoded(obs, host)
        await next_decoded(obs, host)
        for level in (0.1, 0.3, 0.5, -0.4):
            assert await node.report("tank", {"Level": level}, message_id=1) is None
        assert await node.report("tank", {"Level": 0.6}, message_id=2) is PublishOutcome.SENT
        msg = await next_decoded(obs, host)
        assert msg.values() == {"Level": 0.6}
        assert msg.payload is not None
        assert msg.payload.message_id == 2
    assert node.statistics().values_suppressed == 4


async def test_primary_host_offline_holds_data_and_online_resumes(broker_port: int) -> None:
    """With a primary host the node births only once STATE says online, holds data while it
    is offline (stale STATE ignored), and on online again rebirths and sends; held data is
    replayed as historical."""
    host = HostDecoder()
    node, transport = make_edge(broker_port, primary_host_id="scada")
    async with observer(broker_port) as obs, edge_session(node, transport):
        assert node.state is EdgeNodeState.WAITING_FOR_HOST
        first = node.collect(None, {"Uptime": 1})
        assert first is not None
        assert await node.publish_data(first, message_id=1) is PublishOutcome.HELD

        topic = state_topic("scada")
        await obs.publish(topic, encode_host_state(True, 1000), 1, True)
        nbirth = await next_decoded(obs, host)
        assert nbirth.topic.message_type == "NBIRTH"
        await asyncio.wait_for(node.wait_ready(), 5)

        await obs.publish(topic, encode_host_state(False, 2000), 1, True)
        async with asyncio.timeout(5):
            while node.state is not EdgeNodeState.HOLDING:  # noqa: ASYNC110 - the node has no event for HOLDING; bounded by the timeout
                await asyncio.sleep(0.01)
        second = node.collect(None, {"Uptime": 2})
        assert second is not None
        assert await node.publish_data(second, message_id=2) is PublishOutcome.HELD

        await obs.publish(topic, encode_host_state(True, 1500), 1, True)  # older: ignored
        await obs.publish(topic, encode_host_state(True, 3000), 1, True)
        rebirth = await next_decoded(obs, host)
        assert rebirth.topic.message_type == "NBIRTH"
        assert node.can_publish
        assert node.statistics().state_messages_ignored == 1

        for message_id, held in ((1, first), (2, second)):
            assert await node.publish_data(held, message_id, historical=True) is PublishOutcome.SENT
            replay = await next_decoded(obs, host)
            assert replay.payload is not None
            assert replay.payload.message_id == message_id
            assert all(m.is_historical for m in replay.payload.metrics)
        live = await node.report(None, {"Uptime": 3}, message_id=3)
        assert live is PublishOutcome.SENT
        msg = await next_decoded(obs, host)
        assert msg.values() == {"Uptime": 3}
        assert not msg.payload.metrics[0].is_historical  # type: ignore[union-attr]
    assert node.statistics().data_held == 2


async def test_dcmd_writes_reach_the_application_queue(broker_port: int) -> None:
    """A DCMD written by alias is delivered to the application with the metric name."""
    node, transport = make_edge(broker_port)
    await node.add_device("tank", TANK)
    async with observer(broker_port) as obs, edge_session(node, transport):
        await obs.receive_matching("spBv1.0/plant/DBIRTH/")
        write = Metric(None, DataType.FLOAT, 7.5, alias=node.alias_of("tank", "Setpoint"))
        cmd = command_message("plant", "gw1", (write,), timestamp_ms=5, device_id="tank")
        await obs.publish(cmd.topic, cmd.payload, cmd.qos, cmd.retain)
        received = await asyncio.wait_for(node.receive_command(), 5)
        assert received.device_id == "tank"
        assert [(m.name, m.value) for m in received.metrics] == [("Setpoint", 7.5)]

        bad = command_message("plant", "gw1", (Metric("Nope", DataType.BOOLEAN, True),), 6, "tank")
        await obs.publish(bad.topic, bad.payload, bad.qos, bad.retain)
        async with asyncio.timeout(5):
            while not node.statistics().inbound_rejected:  # noqa: ASYNC110 - counters have no event; bounded by the timeout
                await asyncio.sleep(0.01)
        assert node.statistics().inbound_rejected == (("unknown_alias", 1),)
        assert node.receive_command_nowait() is None
