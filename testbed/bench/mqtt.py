"""`testbed bench mqtt`: the persisted Sparkplug uplink against raw paho, latency, bytes.

Figures (same run, same broker: mosquitto when installed, else the embedded amqtt broker).
The throughput figures run in alternating rounds (persisted, raw paho, client, persisted, ...)
on this shared, noisy machine and report the median of each side; the note gives the spread of
the per-round ratios.

* `mqtt/persisted_qos1_msgs_per_s`: DDATA messages per second through the edge link (report
  by exception, committed to the SQLite store before sending, QoS 1, removed at PUBACK), from
  the first report until the store is empty; reports go in batches of 500 through
  `EdgeLink.report_many` (one DDATA per report, one commit per batch: group commit).
  Baseline: raw paho (its own network thread, no persistence) publishing the same number of
  QoS 1 messages of the same size with the same in-flight window, until the last PUBACK.
* `mqtt/client_qos1_msgs_per_s`: the project's `MqttClient` alone (no store, no Sparkplug)
  against the same baseline, to show how much of the gap is the client itself.
* `mqtt/e2e_latency_p50_ms`, `mqtt/e2e_latency_p99_ms`: from `report()` on the edge to the
  decoded DDATA at a host subscriber (store commit, forwarding, broker, decode), at a steady
  rate.
* `mqtt/bytes_per_value_sparkplug_batched` and `mqtt/bytes_per_value_sparkplug_rbe`: topic +
  payload bytes per reported value for 10 noisy, slowly varying signals sampled together,
  as one DDATA per sample (aliases), without and with a deadband, against one JSON message per
  value (`{"device", "metric", "value", "timestamp"}`) as the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from drivers.mqtt import (
    EmbeddedBroker,
    EmbeddedBrokerConfig,
    MosquittoBroker,
    MosquittoConfig,
    MqttClient,
    MqttClientConfig,
    StoreConfig,
    find_mosquitto,
)
from drivers.mqtt.edge_link import EdgeLink, EdgeLinkConfig
from drivers.mqtt.sparkplug import (
    DataType,
    Deadband,
    DeadbandKind,
    EdgeNode,
    EdgeNodeConfig,
    HostDecoder,
    MessageType,
    MetricSpec,
)
from drivers.mqtt.sparkplug import OutgoingMessage as SparkplugMessage
from testbed.bench.figures import Figure
from testbed.errors import BenchmarkError

__all__ = ["run_mqtt_bench"]

_WINDOW = 256
_ROUNDS = 5
_REPORT_BATCH = 500
_GROUP, _EDGE, _DEVICE = "bench", "edge1", "line"


def run_mqtt_bench(
    messages: int = 20_000, latency_s: float = 5.0, rounds: int = _ROUNDS
) -> list[Figure]:
    """Run every MQTT figure against one broker; returns the figures."""
    if rounds < 1:
        raise BenchmarkError(f"rounds must be at least 1, got {rounds}")
    return asyncio.run(_bench(messages, latency_s, rounds))


def _spread(ours: list[float], baseline: list[float]) -> str:
    ratios = [a / b for a, b in zip(ours, baseline, strict=True)]
    return (f"{min(ratios):.2f}..{max(ratios):.2f} "
            f"(median {statistics.median(ratios):.2f})")


@contextlib.asynccontextmanager
async def _broker() -> AsyncIterator[tuple[int, str]]:
    if find_mosquitto() is not None:
        async with MosquittoBroker(MosquittoConfig()) as mosquitto:
            yield mosquitto.port, "mosquitto"
    else:
        async with EmbeddedBroker(EmbeddedBrokerConfig(port=0)) as embedded:
            yield embedded.port, "embedded amqtt (mosquitto not installed)"


async def _bench(messages: int, latency_s: float, rounds: int) -> list[Figure]:
    persisted: list[float] = []
    raw: list[float] = []
    client: list[float] = []
    size = len(await _sample_ddata())
    async with _broker() as (port, broker_name):
        with tempfile.TemporaryDirectory() as tmp:
            for round_number in range(rounds):
                store = Path(tmp) / f"rate{round_number}.db"
                persisted.append(await _persisted_rate(port, store, messages))
                raw.append(await asyncio.to_thread(_raw_paho_rate, port, messages, size))
                client.append(await _client_rate(port, messages, size))
            p50, p99, count = await _latency(port, Path(tmp) / "latency.db", latency_s)
    batched, rbe, json_bytes = await _bytes_per_value()
    setup = (f"broker {broker_name}; {messages} messages of {size} B per round, window "
             f"{_WINDOW}, median of {rounds} alternating rounds")
    persisted_note = (
        f"{setup}; ours: EdgeLink.report_many of {_REPORT_BATCH} reports (one DDATA each: "
        "Sparkplug collect + encode, SQLite WAL commit before sending, QoS 1, delete at "
        "PUBACK) until the store is empty; raw: paho publish() of "
        "the same QoS 1 payloads, no persistence, until the last PUBACK; "
        f"per-round ratios {_spread(persisted, raw)}"
    )
    client_note = (
        "drivers.mqtt.MqttClient alone (no store, no Sparkplug) until the last PUBACK: where "
        f"the gap is; per-round ratios {_spread(client, raw)}"
    )
    return [
        Figure("mqtt", "persisted_qos1_msgs_per_s", statistics.median(persisted), "1/s",
               "raw paho QoS 1, no persistence", statistics.median(raw), persisted_note),
        Figure("mqtt", "client_qos1_msgs_per_s", statistics.median(client), "1/s",
               "raw paho QoS 1, no persistence", statistics.median(raw), client_note),
        Figure("mqtt", "e2e_latency_p50_ms", p50, "ms", note=f"{count} DDATA at 200/s"),
        Figure("mqtt", "e2e_latency_p99_ms", p99, "ms",
               note=f"{count} DDATA at 200/s, report() to host decode, {broker_name}"),
        Figure("mqtt", "bytes_per_value_sparkplug_batched", batched, "B",
               "one JSON message per value", json_bytes, "10 metrics per DDATA, aliases"),
        Figure("mqtt", "bytes_per_value_sparkplug_rbe", rbe, "B",
               "one JSON message per value", json_bytes,
               "batched + report by exception (deadband 0.5 on signals with noise 0.2)"),
    ]


def _link_config(port: int, store: Path) -> EdgeLinkConfig:
    return EdgeLinkConfig(
        mqtt=MqttClientConfig(port=port, max_inflight=_WINDOW),
        node=EdgeNodeConfig(group_id=_GROUP, edge_node_id=_EDGE, data_qos=1),
        store=StoreConfig(path=store),
        replay_rate_msgs_per_s=1e6,
    )


_COUNTER = [MetricSpec("counter", DataType.INT64, 0), MetricSpec("sent_ns", DataType.INT64, 0)]


async def _persisted_rate(port: int, store: Path, messages: int) -> float:
    """Messages per second through the edge link, from the first report to an empty store."""
    async with EdgeLink(_link_config(port, store), devices={_DEVICE: _COUNTER}) as link:
        await link.wait_ready(10)
        start = time.perf_counter()
        for first in range(100_000, 100_000 + messages, _REPORT_BATCH):
            last = min(first + _REPORT_BATCH, 100_000 + messages)
            # values from 100_000 up encode in as many bytes as `_sample_ddata`'s: every DDATA
            # has the baseline's payload size (give or take the seq byte past 127)
            await link.report_many(
                [(_DEVICE, {"counter": n, "sent_ns": n}) for n in range(first, last)]
            )
        await link.wait_drained(300)
        elapsed = time.perf_counter() - start
        stats = link.statistics()
    if stats.acked < messages:
        raise BenchmarkError(f"only {stats.acked} of {messages} messages were acknowledged")
    return messages / elapsed


async def _sample_ddata() -> bytes:
    """One DDATA as the edge link sends it (two INT64 metrics by alias, seq, uuid with the
    store id): the payload size the baselines publish."""
    sent: list[SparkplugMessage] = []

    class _Capture:
        def set_will(self, will: SparkplugMessage | None) -> None:
            del will

        async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
            sent.append(SparkplugMessage(topic, payload, qos, retain))

        async def subscribe(self, topic: str, qos: int) -> None:
            del topic, qos

    node = EdgeNode(EdgeNodeConfig(group_id=_GROUP, edge_node_id=_EDGE), _Capture())
    await node.add_device(_DEVICE, _COUNTER)
    node.begin_session()
    await node.on_connected()
    message = node.collect(_DEVICE, {"counter": 123_456, "sent_ns": time.time_ns()})
    assert message is not None
    await node.publish_data(message, 123_456)
    return sent[-1].payload


async def _client_rate(port: int, messages: int, size: int) -> float:
    """QoS 1 messages per second through the project's MqttClient, no store, no Sparkplug."""
    async with MqttClient(MqttClientConfig(port=port, max_inflight=_WINDOW)) as client:
        await client.wait_connected()
        payload = bytes(size)
        topic = f"spBv1.0/{_GROUP}/DDATA/clnt1/{_DEVICE}"  # as long as the edge link's topic
        pending: list[asyncio.Future[None]] = []
        start = time.perf_counter()
        for _ in range(messages):
            pending.append((await client.publish(topic, payload, qos=1)).acked)
        await asyncio.gather(*pending)
        return messages / (time.perf_counter() - start)


def _raw_paho_rate(port: int, messages: int, size: int) -> float:
    """QoS 1 messages per second through a bare paho client (its own network thread)."""
    done = threading.Event()
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        if acked >= messages:
            done.set()

    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(_WINDOW)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_publish = on_publish
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(10):  # like the edge link, the clock starts once connected
            raise BenchmarkError("raw paho: no CONNACK within 10 s")
        payload = bytes(size)
        topic = f"spBv1.0/{_GROUP}/DDATA/raw01/{_DEVICE}"  # as long as the edge link's topic
        start = time.perf_counter()
        for _ in range(messages):
            client.publish(topic, payload, qos=1)
        if not done.wait(300):
            raise BenchmarkError(f"raw paho: only {acked} of {messages} PUBACKs")
        elapsed = time.perf_counter() - start
    finally:
        client.disconnect()
        client.loop_stop()
    return messages / elapsed


async def _latency(port: int, store: Path, seconds: float) -> tuple[float, float, int]:
    """p50/p99 ms from report() to the decoded DDATA at a host subscriber."""
    latencies_ms: list[float] = []
    decoder = HostDecoder()
    async with MqttClient(MqttClientConfig(port=port)) as host:
        await host.wait_connected()
        subscription = await host.subscribe(f"spBv1.0/{_GROUP}/#", qos=1, capacity=100_000)

        async def receive() -> None:
            async for message in subscription:
                decoded = decoder.decode(message.topic, message.payload)
                if decoded.topic.message_type is MessageType.DDATA and decoded.payload:
                    sent = decoded.values().get("sent_ns")
                    if isinstance(sent, int):
                        latencies_ms.append((time.perf_counter_ns() - sent) / 1e6)

        async with asyncio.TaskGroup() as group:
            receiver = group.create_task(receive())
            async with EdgeLink(_link_config(port, store), devices={_DEVICE: _COUNTER}) as link:
                await link.wait_ready(10)
                period = 1 / 200
                deadline = time.monotonic()
                for n in range(1, int(seconds * 200) + 1):
                    await link.report(_DEVICE, {"counter": n, "sent_ns": time.perf_counter_ns()})
                    deadline += period
                    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                await link.wait_drained(30)
                await asyncio.sleep(0.2)
            receiver.cancel()
    if len(latencies_ms) < 10:
        raise BenchmarkError(f"latency: only {len(latencies_ms)} messages arrived")
    latencies_ms.sort()
    p99 = latencies_ms[min(len(latencies_ms) - 1, math.ceil(0.99 * len(latencies_ms)) - 1)]
    return statistics.median(latencies_ms), p99, len(latencies_ms)


async def _bytes_per_value() -> tuple[float, float, float]:
    """Bytes per value: Sparkplug batched, batched + RBE, and one JSON message per value."""
    rng = random.Random(7)
    names = [f"signal_{i}" for i in range(10)]
    samples = []
    for step in range(500):
        samples.append({
            name: round(50 + 10 * math.sin(step / 50 + i) + rng.gauss(0, 0.2), 3)
            for i, name in enumerate(names)
        })
    json_bytes = 0
    for step, sample in enumerate(samples):
        for name, value in sample.items():
            topic = f"plant/{_EDGE}/{_DEVICE}/{name}"
            body = json.dumps({"device": _DEVICE, "metric": name, "value": value,
                               "timestamp": 1_700_000_000_000 + step * 100})
            json_bytes += len(topic) + len(body)
    values = len(samples) * len(names)
    batched = await _sparkplug_bytes(samples, names, None)
    rbe = await _sparkplug_bytes(samples, names, Deadband(DeadbandKind.ABSOLUTE, 0.5))
    return batched / values, rbe / values, json_bytes / values


async def _sparkplug_bytes(
    samples: list[dict[str, float]], names: list[str], deadband: Deadband | None
) -> int:
    total = 0

    class _Count:
        def set_will(self, will: SparkplugMessage | None) -> None:
            del will

        async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
            nonlocal total
            if "/DDATA/" in topic:
                total += len(topic) + len(payload)

        async def subscribe(self, topic: str, qos: int) -> None:
            del topic, qos

    node = EdgeNode(EdgeNodeConfig(group_id=_GROUP, edge_node_id=_EDGE), _Count())
    specs = [MetricSpec(n, DataType.DOUBLE, 0.0, deadband=deadband) for n in names]
    await node.add_device(_DEVICE, specs)
    node.begin_session()
    await node.on_connected()
    for step, sample in enumerate(samples, start=1):
        message = node.collect(_DEVICE, sample, 1_700_000_000_000 + step * 100)
        if message is not None:
            await node.publish_data(message, step)
    return total
