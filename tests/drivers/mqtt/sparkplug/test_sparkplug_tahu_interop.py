"""Interoperability with an independent implementation: Eclipse Tahu's JS sparkplug-payload."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sparkplug_test_support import long, tahu_decode, tahu_encode

from drivers.mqtt.sparkplug import (
    DataType,
    EdgeNode,
    EdgeNodeConfig,
    MetricSpec,
    OutgoingMessage,
    Property,
    decode_payload,
    message_id_uuid,
    parse_topic,
)

pytestmark = pytest.mark.usefixtures("tahu_codec")

NOW_MS = 1_700_000_000_000


class RecordingTransport:
    """An in-memory SparkplugTransport that keeps what was published (no broker needed to
    get the bytes; the broker tests live in test_sparkplug_edge_broker.py)."""

    def __init__(self) -> None:
        self.will: OutgoingMessage | None = None
        self.published: list[OutgoingMessage] = []

    def set_will(self, will: OutgoingMessage | None) -> None:
        self.will = will

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.published.append(OutgoingMessage(topic, payload, qos, retain))

    async def subscribe(self, topic: str, qos: int) -> None:
        return None


def plain(value: Any) -> Any:
    """Tahu JSON (tagged longs and bytes) -> plain Python values."""
    if isinstance(value, dict):
        if "$long" in value:
            return int(value["$long"])
        if "$bytes" in value:
            return base64.b64decode(value["$bytes"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


NODE_METRICS = [
    MetricSpec(
        "Temperature",
        DataType.FLOAT,
        21.5,
        properties=(Property("engUnit", DataType.STRING, "degC"),),
    ),
    MetricSpec("Count", DataType.INT64, -(2**40)),
    MetricSpec("Running", DataType.BOOLEAN, True),
]
DEVICE_METRICS = [
    MetricSpec("Level", DataType.DOUBLE, 0.25),
    MetricSpec("Offset", DataType.INT16, -7),
    MetricSpec("Total", DataType.UINT64, 2**63 + 5),
    MetricSpec("Mode", DataType.STRING, "auto"),
    MetricSpec("Raw", DataType.BYTES, b"\x01\x02"),
    MetricSpec("Since", DataType.DATETIME, NOW_MS - 5000),
    MetricSpec("Small", DataType.UINT32, 70_000),
]


async def _born_node() -> tuple[EdgeNode, RecordingTransport]:
    transport = RecordingTransport()
    node = EdgeNode(
        EdgeNodeConfig(group_id="plant", edge_node_id="gw1"),
        transport,
        node_metrics=NODE_METRICS,
        clock_ms=lambda: NOW_MS,
    )
    await node.add_device("tank", DEVICE_METRICS)
    node.begin_session()
    await node.on_connected()
    return node, transport


async def test_our_nbirth_decodes_field_by_field_with_tahu() -> None:
    """Tahu's decoder reads our NBIRTH: timestamp, seq 0, bdSeq, rebirth metric, each metric's
    name, alias, type, value, timestamp and properties."""
    node, transport = await _born_node()
    nbirth = transport.published[0]
    assert parse_topic(nbirth.topic).message_type == "NBIRTH"
    got = plain(tahu_decode(nbirth.payload))
    assert got["timestamp"] == NOW_MS
    assert got["seq"] == 0
    by_name = {m["name"]: m for m in got["metrics"]}
    assert by_name["bdSeq"]["type"] == "Int64"
    assert by_name["bdSeq"]["value"] == 0
    assert by_name["Node Control/Rebirth"] == {
        "name": "Node Control/Rebirth",
        "type": "Boolean",
        "value": False,
    }
    ours = decode_payload(nbirth.payload)
    for metric in ours.metrics:
        theirs = by_name[metric.name or ""]
        assert (
            theirs["type"]
            == {DataType.FLOAT: "Float", DataType.INT64: "Int64", DataType.BOOLEAN: "Boolean"}[
                metric.datatype
            ]
        )
        assert theirs["value"] == metric.value
        assert theirs.get("alias") == metric.alias
        assert theirs.get("timestamp") == metric.timestamp_ms
    assert by_name["Temperature"]["properties"] == {"engUnit": {"type": "String", "value": "degC"}}
    assert by_name["Count"]["value"] == -(2**40)
    assert by_name["Temperature"]["alias"] == node.alias_of(None, "Temperature")


async def test_our_ddata_decodes_field_by_field_with_tahu() -> None:
    """Tahu's decoder reads our DDATA: seq, uuid message id, aliases, types, values and
    is_historical, for every supported scalar type in one batched message."""
    node, transport = await _born_node()
    message = node.collect(
        "tank",
        {
            "Level": 0.75,
            "Offset": -300,
            "Total": 2**64 - 1,
            "Mode": "manual",
            "Raw": b"\xff\x00",
            "Since": NOW_MS,
            "Small": 2**31 - 1,
        },
        timestamp_ms=NOW_MS - 10,
    )
    assert message is not None
    await node.publish_data(message, message_id=0xDEADBEEF01, historical=True)
    ddata = transport.published[-1]
    assert ddata.topic == "spBv1.0/plant/DDATA/gw1/tank"
    got = plain(tahu_decode(ddata.payload))
    assert got["seq"] == 2  # NBIRTH 0, DBIRTH 1
    assert got["uuid"] == message_id_uuid(0xDEADBEEF01)
    expected = {
        "Level": ("Double", 0.75),
        "Offset": ("Int16", -300),
        "Total": ("UInt64", 2**64 - 1),
        "Mode": ("String", "manual"),
        "Raw": ("Bytes", b"\xff\x00"),
        "Since": ("DateTime", NOW_MS),
        "Small": ("UInt32", 2**31 - 1),
    }
    assert len(got["metrics"]) == len(expected)
    for theirs in got["metrics"]:
        assert "name" not in theirs  # aliases only in DATA
        name = next(n for n in expected if node.alias_of("tank", n) == theirs["alias"])
        assert (theirs["type"], theirs["value"]) == expected[name]
        assert theirs["isHistorical"] is True
        assert theirs["timestamp"] == NOW_MS - 10


def test_tahu_encoded_payload_decodes_with_ours() -> None:
    """A payload written by Tahu's encoder decodes with ours to the same fields."""
    data = tahu_encode(
        {
            "timestamp": long(NOW_MS),
            "seq": long(17),
            "uuid": message_id_uuid(42),
            "metrics": [
                {"name": "i8", "type": "Int8", "value": -5, "alias": long(1)},
                {"name": "i32", "type": "Int32", "value": -2_000_000_000},
                {"name": "i64", "type": "Int64", "value": long(-(2**62), unsigned=False)},
                {"name": "u16", "type": "UInt16", "value": 65535},
                {"name": "u32", "type": "UInt32", "value": long(123_456)},
                {"name": "u64", "type": "UInt64", "value": long(2**64 - 2)},
                {"name": "f", "type": "Float", "value": 0.5, "isHistorical": True},
                {"name": "d", "type": "Double", "value": 1e-300},
                {"name": "b", "type": "Boolean", "value": False},
                {"name": "s", "type": "String", "value": "ünïcode"},
                {
                    "name": "t",
                    "type": "DateTime",
                    "value": long(NOW_MS),
                    "timestamp": long(NOW_MS - 1),
                },
                {
                    "name": "raw",
                    "type": "Bytes",
                    "value": {"$bytes": base64.b64encode(b"\x00\x01").decode()},
                },
                {"name": "nul", "type": "Double", "value": None},
                {
                    "name": "withprops",
                    "type": "Int32",
                    "value": 3,
                    "properties": {
                        "engUnit": {"type": "String", "value": "m"},
                        "hi": {"type": "Int32", "value": -1},
                    },
                },
            ],
        }
    )
    payload = decode_payload(data)
    assert payload.timestamp_ms == NOW_MS
    assert payload.seq == 17
    assert payload.message_id == 42
    values = {m.name: (m.datatype, m.value) for m in payload.metrics}
    assert values == {
        "i8": (DataType.INT8, -5),
        "i32": (DataType.INT32, -2_000_000_000),
        "i64": (DataType.INT64, -(2**62)),
        "u16": (DataType.UINT16, 65535),
        "u32": (DataType.UINT32, 123_456),
        "u64": (DataType.UINT64, 2**64 - 2),
        "f": (DataType.FLOAT, 0.5),
        "d": (DataType.DOUBLE, 1e-300),
        "b": (DataType.BOOLEAN, False),
        "s": (DataType.STRING, "ünïcode"),
        "t": (DataType.DATETIME, NOW_MS),
        "raw": (DataType.BYTES, b"\x00\x01"),
        "nul": (DataType.DOUBLE, None),
        "withprops": (DataType.INT32, 3),
    }
    assert payload.metric("i8").alias == 1
    assert payload.metric("f").is_historical
    assert payload.metric("t").timestamp_ms == NOW_MS - 1
    assert payload.metric("withprops").properties == (
        Property("engUnit", DataType.STRING, "m"),
        Property("hi", DataType.INT32, -1),
    )
