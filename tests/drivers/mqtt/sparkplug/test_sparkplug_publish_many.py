"""EdgeNode.publish_data_many: a batch of data messages under one lock and one deadline."""

from __future__ import annotations

import dataclasses

from drivers.errors import DriverConfigError
from drivers.mqtt.sparkplug import (
    DataType,
    EdgeNode,
    EdgeNodeConfig,
    MetricSpec,
    OutgoingMessage,
    PublishOutcome,
    decode_payload,
    message_id_from_uuid,
)

_SPECS = [MetricSpec("counter", DataType.INT64, 0)]


class _Recorder:
    """A SparkplugTransport that keeps what is published, in order."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def set_will(self, will: OutgoingMessage | None) -> None:
        del will

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.sent.append(OutgoingMessage(topic, payload, qos, retain))

    async def subscribe(self, topic: str, qos: int) -> None:
        del topic, qos


async def _online_node(recorder: _Recorder) -> EdgeNode:
    node = EdgeNode(EdgeNodeConfig(group_id="g", edge_node_id="e", data_qos=1), recorder)
    await node.add_device("d", _SPECS)
    node.begin_session()
    await node.on_connected()
    return node


async def test_batch_goes_out_in_order_with_consecutive_seq_and_ids() -> None:
    """Each item is sent once, in order: seq counts up by one, uuid carries each store id."""
    recorder = _Recorder()
    node = await _online_node(recorder)
    before = len(recorder.sent)
    items = []
    for n in range(1, 6):
        message = node.collect("d", {"counter": n})
        assert message is not None
        items.append((message, 100 + n, n % 2 == 0))
    results = await node.publish_data_many(items)
    assert results == [PublishOutcome.SENT] * 5
    data = [decode_payload(m.payload) for m in recorder.sent[before:]]
    assert all("/DDATA/" in m.topic and m.qos == 1 for m in recorder.sent[before:])
    assert [message_id_from_uuid(p.uuid) for p in data] == [101, 102, 103, 104, 105]
    seqs = [p.seq for p in data]
    assert seqs == [(seqs[0] + i) % 256 for i in range(5)]
    assert [p.metrics[0].is_historical for p in data] == [False, True, False, True, False]
    assert [p.metrics[0].value for p in data] == [1, 2, 3, 4, 5]


async def test_a_message_for_an_unknown_device_is_answered_with_its_error() -> None:
    """An item naming an undeclared device gets its DriverConfigError; the others still go."""
    recorder = _Recorder()
    node = await _online_node(recorder)
    before = len(recorder.sent)
    good = node.collect("d", {"counter": 7})
    assert good is not None
    ghost = dataclasses.replace(good, device_id="ghost")
    results = await node.publish_data_many([(good, 1, False), (ghost, 2, False), (good, 3, False)])
    assert results[0] is PublishOutcome.SENT
    assert isinstance(results[1], DriverConfigError)
    assert "ghost" in str(results[1])
    assert results[2] is PublishOutcome.SENT
    ids = [message_id_from_uuid(decode_payload(m.payload).uuid) for m in recorder.sent[before:]]
    assert ids == [1, 3]


async def test_offline_node_holds_the_first_item_and_tries_no_more() -> None:
    """Before the session is online the batch answers one HELD and sends nothing."""
    recorder = _Recorder()
    node = EdgeNode(EdgeNodeConfig(group_id="g", edge_node_id="e"), recorder)
    await node.add_device("d", _SPECS)
    message = node.collect("d", {"counter": 1})
    assert message is not None
    results = await node.publish_data_many([(message, 1, False), (message, 2, False)])
    assert results == [PublishOutcome.HELD]
    assert recorder.sent == []
