"""The hand-written DATA encoding: byte-for-byte what the protobuf codec emits."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.mqtt.sparkplug import (
    DataMessage,
    DataType,
    EdgeNode,
    EdgeNodeConfig,
    Metric,
    MetricSpec,
    MetricValue,
    MetricValueError,
    Payload,
    PayloadTooLargeError,
    decode_payload,
    encode_payload,
)
from drivers.mqtt.sparkplug import OutgoingMessage as SparkplugMessage
from drivers.mqtt.sparkplug._wire import varint

SPECS = [
    MetricSpec("i8", DataType.INT8, 0),
    MetricSpec("i32", DataType.INT32, 0),
    MetricSpec("i64", DataType.INT64, 0),
    MetricSpec("u32", DataType.UINT32, 0),
    MetricSpec("u64", DataType.UINT64, 0),
    MetricSpec("f", DataType.FLOAT, 0.0),
    MetricSpec("d", DataType.DOUBLE, 0.0),
    MetricSpec("b", DataType.BOOLEAN, False),
    MetricSpec("s", DataType.STRING, ""),
    MetricSpec("grüße", DataType.BYTES, b""),
    MetricSpec("a", DataType.INT16_ARRAY, ()),
    MetricSpec("n", DataType.INT32, 1),
]


class _Capture:
    """A transport that keeps what the node publishes."""

    def __init__(self) -> None:
        self.sent: list[SparkplugMessage] = []

    def set_will(self, will: SparkplugMessage | None) -> None:
        del will

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.sent.append(SparkplugMessage(topic, payload, qos, retain))

    async def subscribe(self, topic: str, qos: int) -> None:
        del topic, qos


async def _online_node(
    use_aliases: bool = True, max_bytes: int = 1 << 20
) -> tuple[EdgeNode, _Capture]:
    capture = _Capture()
    config = EdgeNodeConfig(
        group_id="g", edge_node_id="e", use_aliases=use_aliases, max_payload_bytes=max_bytes
    )
    node = EdgeNode(config, capture)
    await node.add_device("dev", SPECS)
    node.begin_session()
    await node.on_connected()
    return node, capture


VALUES: dict[str, MetricValue] = {
    "i8": -5, "i32": -(2**31), "i64": -(2**62), "u32": 2**32 - 1, "u64": 2**64 - 1,
    "f": 1.5, "d": -2.25e300, "b": True, "s": "héllo", "grüße": b"\x00\x01" * 100,
    "a": (1, -2, 32767), "n": None,
}


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_matches_protobuf(value: int) -> None:
    """The varint of any uint64 is the one protobuf writes for the payload timestamp."""
    assert b"\x08" + varint(value) == encode_payload(Payload(timestamp_ms=value))


@pytest.mark.parametrize(
    "value", [0, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**35 + 7, 2**63, 2**64 - 1]
)
def test_varint_matches_protobuf_at_every_length_boundary(value: int) -> None:
    """The direct paths for one to three bytes and the loop agree with protobuf at the edges."""
    assert b"\x08" + varint(value) == encode_payload(Payload(timestamp_ms=value))


@pytest.mark.parametrize("use_aliases", [True, False])
async def test_collected_message_stores_and_sends_protobuf_bytes(use_aliases: bool) -> None:
    """The stored and the sent forms of a collected message equal the protobuf encoding."""
    node, capture = await _online_node(use_aliases)
    message = node.collect("dev", VALUES, 1_700_000_000_123)
    assert message is not None
    plain = DataMessage(message.device_id, message.changes, message.datatypes)
    assert message.to_bytes() == plain.to_bytes()
    assert DataMessage.from_bytes(message.to_bytes()) == message
    await node.publish_data(message, 12345)
    await node.publish_data(plain, 12345)  # the re-encoding path, for comparison
    fast, slow = (decode_payload(m.payload) for m in capture.sent[-2:])
    assert fast.metrics == slow.metrics
    assert (fast.uuid, fast.seq) == (slow.uuid, (slow.seq or 0) - 1)
    assert capture.sent[-2].payload == encode_payload(
        Payload(fast.timestamp_ms, fast.metrics, fast.seq, fast.uuid)
    )


@given(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.integers(min_value=0, max_value=2**64 - 1),
)
def test_any_values_encode_like_protobuf(i64: int, d: float, s: str, stamp: int) -> None:
    """Whatever the values and timestamp, the stored form equals the protobuf encoding."""
    node, _ = asyncio.run(_online_node())
    message = node.collect("dev", {"i64": i64, "d": d, "s": s}, stamp)
    if message is None:  # equal to the last reported (initial) values
        return
    plain = DataMessage(message.device_id, message.changes, message.datatypes)
    assert message.to_bytes() == plain.to_bytes()


async def test_live_payload_over_the_limit_is_refused() -> None:
    """A live DATA message over max_payload_bytes raises PayloadTooLargeError, unsent."""
    node, capture = await _online_node(max_bytes=400)
    message = node.collect("dev", {"grüße": b"x" * 500})
    assert message is not None
    before = len(capture.sent)
    with pytest.raises(PayloadTooLargeError, match="over the limit of 400"):
        await node.publish_data(message, 1)
    assert len(capture.sent) == before


async def test_negative_timestamp_is_refused_at_collect() -> None:
    """A report timestamp outside uint64 is a MetricValueError before anything is stored."""
    node, _ = await _online_node()
    with pytest.raises(MetricValueError, match="timestamp -1"):
        node.collect("dev", {"i8": 1}, -1)


async def test_historical_replay_is_reencoded_with_the_flag() -> None:
    """A collected message sent as historical carries is_historical on every metric."""
    node, capture = await _online_node()
    message = node.collect("dev", {"i8": 3, "b": True})
    assert message is not None
    await node.publish_data(message, 9, historical=True)
    sent = decode_payload(capture.sent[-1].payload)
    assert [m.is_historical for m in sent.metrics] == [True, True]
    aliases = [node.alias_of("dev", "i8"), node.alias_of("dev", "b")]
    assert [m.alias for m in sent.metrics] == aliases
    assert all(isinstance(m, Metric) and m.name is None for m in sent.metrics)
