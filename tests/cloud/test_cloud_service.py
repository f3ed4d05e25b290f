"""CloudService as primary host on the embedded broker: ingest, dedupe, twins, bad input."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from amqtt_quirks import AMQTT_LEAKS_SERVER_SOCKETS
from cloud_testkit import EDGE, GROUP, HOST, cloud_config, edge_config

from drivers.mqtt import EmbeddedBroker, MqttClient, MqttClientConfig
from drivers.mqtt.edge_link import EdgeLink
from drivers.mqtt.sparkplug import (
    DataType,
    Metric,
    MetricSpec,
    Payload,
    decode_host_state,
    decode_payload,
    encode_payload,
    state_topic,
)
from testbed.cloud import TWIN_DESIRED, TWIN_REPORTED, CloudService, TwinDocument
from testbed.cloud.protocol import edge_control_metrics

LINE = [MetricSpec("counter", DataType.INT64, 0), MetricSpec("temp", DataType.DOUBLE, 20.0)]

pytestmark = AMQTT_LEAKS_SERVER_SOCKETS



def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_state_online_retained_and_offline_on_close(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The host publishes a retained STATE online, and STATE offline when it closes."""
    port = embedded_broker.port
    async with CloudService(cloud_config(port, tmp_path / "c.db")) as cloud:
        await cloud.wait_connected(5)
    async with MqttClient(MqttClientConfig(port=port)) as probe:
        await probe.wait_connected()
        subscription = await probe.subscribe(state_topic(HOST), qos=1)
        retained = await asyncio.wait_for(subscription.get(), 5)
        assert retained.retain
        assert not decode_host_state(retained.payload).online


async def test_telemetry_ingested_exactly_once_in_order(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """DDATA values land once each, in order, per stream; a re-sent copy is a duplicate."""
    port = embedded_broker.port
    async with (
        CloudService(cloud_config(port, tmp_path / "c.db")) as cloud,
        MqttClient(MqttClientConfig(port=port)) as tap,
    ):
        await cloud.wait_connected(5)
        await tap.wait_connected()
        copies = await tap.subscribe(f"spBv1.0/{GROUP}/DDATA/#", qos=1, capacity=1000)
        async with EdgeLink(edge_config(port, tmp_path / "e.db"), devices={"line": LINE}) as link:
            await link.wait_ready(5)
            ids = [
                await link.report("line", {"counter": n, "temp": 20.0 + n}) for n in range(1, 51)
            ]
            await cloud.wait_until(lambda s: s.messages_ingested >= 50, 10)
            samples = await cloud.query(EDGE, "line", "counter")
            assert [s.value for s in samples] == list(range(1, 51))
            assert [s.message_id for s in samples] == ids
            temps = await cloud.query(EDGE, "line", "temp", since_ms=0, until_ms=_now_ms() + 1)
            assert temps[-1].value == 70.0
            assert cloud.statistics().gaps == 0
            first = await asyncio.wait_for(copies.get(), 5)
            await tap.publish(first.topic, first.payload, qos=1)  # the same message id again
            stats = await cloud.wait_until(lambda s: s.duplicates >= 1, 5)
        assert stats.messages_ingested == 50
        assert len(await cloud.query(EDGE, "line", "counter")) == 50
        streams = {(s.device_id, s.metric): s.rows for s in await cloud.db.streams()}
        assert streams == {("line", "counter"): 50, ("line", "temp"): 50}


async def test_twin_desired_pushed_reported_and_persisted(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Desired properties reach the edge as NCMD; its report closes the delta; desired persists."""
    port = embedded_broker.port
    db = tmp_path / "c.db"
    async with CloudService(cloud_config(port, db)) as cloud:
        await cloud.wait_connected(5)
        config = edge_config(port, tmp_path / "e.db")
        async with EdgeLink(config, node_metrics=edge_control_metrics()) as link:
            await link.wait_ready(5)
            desired = await cloud.set_desired(GROUP, EDGE, {"sample_rate_hz": 10, "mode": "auto"})
            command = await asyncio.wait_for(link.receive_command(), 5)
            (metric,) = command.metrics
            assert metric.name == TWIN_DESIRED
            assert isinstance(metric.value, str)
            received = TwinDocument.model_validate_json(metric.value)
            assert received == desired
            assert desired.version == 1
            # the delta may already be closing (the edge reports asynchronously): the
            # desired side is what is certain at this point
            assert (await cloud.twin(GROUP, EDGE)).desired == desired
            await link.report(None, {TWIN_REPORTED: received.model_dump_json()})
            # the report is ingested asynchronously: wait for the twin itself, not a counter
            # (births are ingested too, so a message count can be reached before the report)
            async with asyncio.timeout(5):
                while (twin := await cloud.twin(GROUP, EDGE)).delta:  # noqa: ASYNC110 - a poll of the stored twin, no event exists
                    await asyncio.sleep(0.02)
            assert twin.delta == {}
            assert twin.reported.properties["mode"] == "auto"
    async with CloudService(cloud_config(port, db)) as cloud:
        twin = await cloud.twin(GROUP, EDGE)
        assert twin.desired == desired
        assert twin.delta == {}


async def test_bad_input_is_counted_and_ingest_continues(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Malformed, oversize and unknown-alias messages are counted by reason; good data lands."""
    port = embedded_broker.port
    config = cloud_config(port, tmp_path / "c.db", max_payload_bytes=4096)
    async with (
        CloudService(config) as cloud,
        MqttClient(MqttClientConfig(port=port)) as rogue,
    ):
        await cloud.wait_connected(5)
        await rogue.wait_connected()
        await rogue.publish("spBv1.0/plant/DDATA/rogue/dev", b"\x0a\xff\xff garbage", qos=1)
        alias_only = Payload(
            timestamp_ms=_now_ms(),
            metrics=(Metric(None, DataType.INT32, 1, alias=99),),
            seq=1,
        )
        await rogue.publish("spBv1.0/plant/DDATA/ghost/dev", encode_payload(alias_only), qos=1)
        huge = Payload(
            timestamp_ms=_now_ms(), metrics=(Metric("blob", DataType.BYTES, b"x" * 10_000),)
        )
        await rogue.publish("spBv1.0/plant/NDATA/rogue", encode_payload(huge), qos=1)
        await rogue.publish("spBv1.0/plant/NOPE/rogue", b"", qos=1)
        rebirths = await rogue.subscribe("spBv1.0/plant/NCMD/ghost", qos=1)
        stats = await cloud.wait_until(lambda s: len(s.rejected) >= 3, 5)
        rejected = dict(stats.rejected)
        assert rejected["malformed"] >= 2  # garbage bytes and the unknown verb
        assert rejected["oversize"] == 1
        assert rejected["unknown_alias"] == 1
        request = decode_payload((await asyncio.wait_for(rebirths.get(), 5)).payload)
        assert request.metric("Node Control/Rebirth").value is True
        async with EdgeLink(edge_config(port, tmp_path / "e.db"), devices={"line": LINE}) as link:
            await link.wait_ready(5)
            await link.report("line", {"counter": 1})
            await cloud.wait_until(lambda s: s.messages_ingested >= 1, 5)


async def test_sequence_gap_is_detected_and_rebirth_requested(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A skipped seq is counted as a gap with its missing messages and answered by a rebirth."""
    port = embedded_broker.port
    async with (
        CloudService(cloud_config(port, tmp_path / "c.db")) as cloud,
        MqttClient(MqttClientConfig(port=port)) as node,
    ):
        await cloud.wait_connected(5)
        await node.wait_connected()
        ncmd = await node.subscribe("spBv1.0/plant/NCMD/raw", qos=1)
        birth = Payload(
            timestamp_ms=_now_ms(),
            metrics=(
                Metric("bdSeq", DataType.INT64, 0),
                Metric("x", DataType.INT32, 0, alias=1),
            ),
            seq=0,
        )
        await node.publish("spBv1.0/plant/NBIRTH/raw", encode_payload(birth), qos=1)
        for seq in (1, 5):
            data = Payload(
                timestamp_ms=_now_ms(),
                metrics=(Metric(None, DataType.INT32, seq, alias=1),),
                seq=seq,
            )
            await node.publish("spBv1.0/plant/NDATA/raw", encode_payload(data), qos=1)
        stats = await cloud.wait_until(lambda s: s.gaps >= 1, 5)
        assert stats.missing_messages == 3
        request = decode_payload((await asyncio.wait_for(ncmd.get(), 5)).payload)
        assert request.metric("Node Control/Rebirth").value is True
        assert [s.value for s in await cloud.query("raw", None, "x")] == [1, 5]
