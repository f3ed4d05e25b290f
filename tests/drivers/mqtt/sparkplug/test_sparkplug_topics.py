"""Sparkplug topic namespace and host STATE payloads."""

from __future__ import annotations

import json

import pytest

from drivers.errors import DriverConfigError
from drivers.mqtt.sparkplug import (
    HostState,
    MessageType,
    SparkplugDecodeError,
    SparkplugTopic,
    decode_host_state,
    encode_host_state,
    message_topic,
    parse_topic,
    state_topic,
)


@pytest.mark.parametrize("verb", [MessageType.NBIRTH, MessageType.NDATA, MessageType.NCMD])
def test_node_topics_round_trip(verb: MessageType) -> None:
    """Node verbs build `spBv1.0/group/VERB/node` and parse back to the same parts."""
    topic = message_topic("plant", verb, "gw1")
    assert topic == f"spBv1.0/plant/{verb}/gw1"
    assert parse_topic(topic) == SparkplugTopic(verb, "plant", "gw1", None)
    assert str(parse_topic(topic)) == topic


@pytest.mark.parametrize("verb", [MessageType.DBIRTH, MessageType.DDATA, MessageType.DDEATH])
def test_device_topics_round_trip(verb: MessageType) -> None:
    """Device verbs build `spBv1.0/group/VERB/node/device` and parse back."""
    topic = message_topic("plant", verb, "gw1", "plc7")
    assert topic == f"spBv1.0/plant/{verb}/gw1/plc7"
    assert parse_topic(topic).device_id == "plc7"


def test_state_topic_round_trips() -> None:
    """STATE topics are `spBv1.0/STATE/host` (3.0 form, no group)."""
    assert state_topic("scada") == "spBv1.0/STATE/scada"
    parsed = parse_topic("spBv1.0/STATE/scada")
    assert parsed.message_type is MessageType.STATE
    assert parsed.host_id == "scada"


@pytest.mark.parametrize(
    "topic",
    [
        "spAv1.0/g/NDATA/n",
        "spBv1.0/g/NFOO/n",
        "spBv1.0/g/DDATA/n",
        "spBv1.0/g/NDATA/n/d",
        "spBv1.0/g/NDATA",
        "spBv1.0//NDATA/n",
    ],
)
def test_malformed_topics_are_rejected(topic: str) -> None:
    """Topics outside the namespace grammar raise SparkplugDecodeError naming the topic."""
    with pytest.raises(SparkplugDecodeError, match="topic"):
        parse_topic(topic)


def test_ids_with_wildcards_or_slashes_are_refused() -> None:
    """Group/node/device ids may not contain '/', '+' or '#'."""
    with pytest.raises(DriverConfigError, match="edge node id"):
        message_topic("g", MessageType.NDATA, "a/b")
    with pytest.raises(DriverConfigError, match="device id"):
        message_topic("g", MessageType.DDATA, "n", "d+")
    with pytest.raises(DriverConfigError, match="need a device"):
        message_topic("g", MessageType.DDATA, "n")


def test_state_payload_is_the_3_0_json_form() -> None:
    """STATE is `{"online": bool, "timestamp": int}` and decodes back."""
    data = encode_host_state(True, 1234)
    assert json.loads(data) == {"online": True, "timestamp": 1234}
    assert decode_host_state(data) == HostState(online=True, timestamp_ms=1234)


def test_state_payload_accepts_the_2_2_strings() -> None:
    """The Sparkplug 2.2 ONLINE/OFFLINE strings are still understood when reading."""
    assert decode_host_state(b"OFFLINE") == HostState(online=False, timestamp_ms=None)
    assert decode_host_state(b"ONLINE").online


@pytest.mark.parametrize(
    "data", [b"{", b'{"online": "yes", "timestamp": 1}', b'{"online": true}', b"[]"]
)
def test_bad_state_payloads_are_rejected(data: bytes) -> None:
    """Malformed STATE payloads raise SparkplugDecodeError."""
    with pytest.raises(SparkplugDecodeError, match="STATE"):
        decode_host_state(data)
