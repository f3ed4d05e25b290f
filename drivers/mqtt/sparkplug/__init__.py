"""Sparkplug B 3.0 over MQTT: payload codec, topic namespace, edge node and host decoder.

The edge node and host roles talk to MQTT through the small `SparkplugTransport` Protocol,
so they run on the project's MQTT client, on a test adapter, or on any other client.
The store's 64-bit message id travels in the payload `uuid` as `tb-msg:` + 16 hex digits
(see `message_id_uuid`); `seq` stays the 0-255 transport counter that NBIRTH resets.
"""

from drivers.mqtt.sparkplug._codec import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DatatypeLookup,
    decode_payload,
    encode_payload,
)
from drivers.mqtt.sparkplug._edge import (
    BD_SEQ_METRIC,
    REBIRTH_METRIC,
    CommandWrite,
    DataMessage,
    EdgeNode,
    EdgeNodeConfig,
    EdgeNodeState,
    EdgeNodeStatistics,
    MetricChange,
    PublishOutcome,
)
from drivers.mqtt.sparkplug._errors import (
    DatatypeMismatchError,
    MetricValueError,
    PayloadTooLargeError,
    SparkplugDecodeError,
    UnknownAliasError,
    UnsupportedDatatypeError,
)
from drivers.mqtt.sparkplug._host import (
    HostDecoder,
    HostDecoderStatistics,
    HostMessage,
    SeqStatus,
    command_message,
    rebirth_request,
)
from drivers.mqtt.sparkplug._metrics import Deadband, DeadbandKind, MetricSpec
from drivers.mqtt.sparkplug._topics import (
    NAMESPACE,
    HostState,
    MessageType,
    SparkplugTopic,
    decode_host_state,
    encode_host_state,
    message_topic,
    parse_topic,
    state_topic,
)
from drivers.mqtt.sparkplug._transport import OutgoingMessage, SparkplugTransport
from drivers.mqtt.sparkplug._types import (
    MESSAGE_ID_UUID_PREFIX,
    DataType,
    Metric,
    MetricValue,
    Payload,
    Property,
    PropertyScalar,
    message_id_from_uuid,
    message_id_uuid,
)

__all__ = [
    "BD_SEQ_METRIC",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "MESSAGE_ID_UUID_PREFIX",
    "NAMESPACE",
    "REBIRTH_METRIC",
    "CommandWrite",
    "DataMessage",
    "DataType",
    "DatatypeLookup",
    "DatatypeMismatchError",
    "Deadband",
    "DeadbandKind",
    "EdgeNode",
    "EdgeNodeConfig",
    "EdgeNodeState",
    "EdgeNodeStatistics",
    "HostDecoder",
    "HostDecoderStatistics",
    "HostMessage",
    "HostState",
    "MessageType",
    "Metric",
    "MetricChange",
    "MetricSpec",
    "MetricValue",
    "MetricValueError",
    "OutgoingMessage",
    "Payload",
    "PayloadTooLargeError",
    "Property",
    "PropertyScalar",
    "PublishOutcome",
    "SeqStatus",
    "SparkplugDecodeError",
    "SparkplugTopic",
    "SparkplugTransport",
    "UnknownAliasError",
    "UnsupportedDatatypeError",
    "command_message",
    "decode_host_state",
    "decode_payload",
    "encode_host_state",
    "encode_payload",
    "message_id_from_uuid",
    "message_id_uuid",
    "message_topic",
    "parse_topic",
    "rebirth_request",
    "state_topic",
]
