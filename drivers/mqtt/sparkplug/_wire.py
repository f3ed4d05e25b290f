"""Hand-written protobuf encoding of NDATA/DDATA payloads: the per-message hot path.

Why not the generated classes: a DATA message is built twice per report (the self-contained
form the store keeps, the alias form the wire carries), and filling protobuf objects field by
field costs more than the rest of the edge's per-message work. A DATA metric is a handful of
scalar fields, so it is encoded here once per value into a shared tail (timestamp, datatype,
value) that both forms frame with their own identity prefix (name, or alias), and a payload is
framing plus concatenation.

The output is byte-for-byte what `_codec.encode_payload` emits for the same `Payload` (fields
in field-number order, proto2 optional fields present when set); the tests hold it to that.
Values must already be validated: pass the `(field, wire)` pair `_codec.wire_value` returns.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from drivers.mqtt.sparkplug._codec import WireValue, wire_value
from drivers.mqtt.sparkplug._types import INTEGER_RANGES, DataType, MetricValue

__all__ = [
    "NULL_VALUE",
    "ValueEncoder",
    "VarintFieldCache",
    "data_payload",
    "field_string",
    "field_varint",
    "frame_metric",
    "stored_payload",
    "value_encoder",
    "value_field",
    "varint",
]

ValueEncoder = Callable[[MetricValue], bytes]
"""Checks a non-null value against a metric's datatype and encodes its value field; raises
`MetricValueError` exactly as `_codec.wire_value` does."""

_SMALL: Final = tuple(bytes((n,)) for n in range(128))
_PACK_FLOAT: Final = struct.Struct("<f").pack
_PACK_DOUBLE: Final = struct.Struct("<d").pack

# Metric fields (sparkplug_b.proto): name 1, alias 2, timestamp 3, datatype 4, is_null 7,
# value oneof 10..16; Payload fields: timestamp 1, metrics 2, seq 3, uuid 4.
_METRIC_FRAME: Final = b"\x12"
NULL_VALUE: Final = b"\x38\x01"
"""The `is_null` flag (field 7) that stands in for the value of a null metric."""
_VARINT_VALUE_TAGS: Final = {"int_value": b"\x50", "long_value": b"\x58", "boolean_value": b"\x70"}
_STRING_TAG: Final = b"\x7a"
_BYTES_TAG: Final = b"\x82\x01"
_FLOAT_TAG: Final = b"\x65"
_DOUBLE_TAG: Final = b"\x69"
_MASK32: Final = (1 << 32) - 1
_MASK64: Final = (1 << 64) - 1


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer below 2**64."""
    if value < 0x80:
        return _SMALL[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    """A varint field (wire type 0): tag then value."""
    return varint(number << 3) + varint(value)


def field_string(number: int, data: bytes) -> bytes:
    """A length-delimited field (wire type 2): tag, length, bytes."""
    return varint((number << 3) | 2) + varint(len(data)) + data


def value_field(field: str, wire: WireValue) -> bytes:
    """The metric's value oneof field for a `(field, wire)` pair from `wire_value`."""
    tag = _VARINT_VALUE_TAGS.get(field)
    if tag is not None:
        return tag + varint(int(wire))
    if field == "double_value":
        assert isinstance(wire, float)
        return _DOUBLE_TAG + _PACK_DOUBLE(wire)
    if field == "float_value":
        assert isinstance(wire, float)
        return _FLOAT_TAG + _PACK_FLOAT(wire)
    if field == "string_value":
        assert isinstance(wire, str)
        data = wire.encode()
        return _STRING_TAG + varint(len(data)) + data
    assert field == "bytes_value"
    assert isinstance(wire, bytes)
    return _BYTES_TAG + varint(len(wire)) + wire


def value_encoder(datatype: DataType, where: str) -> ValueEncoder:
    """The encoder of one metric's values: a direct path for plain ints and floats (the
    common case), `wire_value` for everything else and for every error message."""

    def encode_any(value: MetricValue) -> bytes:
        return value_field(*wire_value(datatype, value, where))

    if datatype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[datatype]
        field, _ = wire_value(datatype, low, where)
        tag = _VARINT_VALUE_TAGS[field]
        mask = _MASK32 if field == "int_value" else _MASK64  # two's complement, as wire_value

        def encode_int(value: MetricValue) -> bytes:
            if value.__class__ is int and low <= value <= high:
                return tag + varint(value & mask)
            return encode_any(value)

        return encode_int
    if datatype is DataType.DOUBLE:

        def encode_double(value: MetricValue) -> bytes:
            if value.__class__ is float:
                return _DOUBLE_TAG + _PACK_DOUBLE(value)
            return encode_any(value)

        return encode_double
    return encode_any


class VarintFieldCache:
    """One varint field with its last encoding kept: timestamps repeat within a millisecond."""

    __slots__ = ("_encoded", "_tag", "_value")

    def __init__(self, number: int) -> None:
        self._tag = varint(number << 3)
        self._value = -1
        self._encoded = b""

    def field(self, value: int) -> bytes:
        """The encoded field for a non-negative `value` below 2**64."""
        if value != self._value:
            self._encoded = self._tag + varint(value)
            self._value = value
        return self._encoded


def frame_metric(ident: bytes, tail: bytes) -> bytes:
    """One entry of Payload.metrics: identity fields (name and/or alias), then the tail
    (timestamp, datatype and value fields, already encoded)."""
    size = len(ident) + len(tail)
    return _METRIC_FRAME + (_SMALL[size] if size < 0x80 else varint(size)) + ident + tail


def stored_payload(metrics: bytes, uuid: bytes | None) -> bytes:
    """The store's self-contained form: named metrics, the device tag in `uuid`."""
    return metrics if uuid is None else metrics + b"\x22" + varint(len(uuid)) + uuid


def data_payload(timestamp: bytes, metrics: bytes, seq: int, uuid: bytes) -> bytes:
    """The wire form of a live DATA message: the encoded sending-time field, metrics, seq,
    message-id uuid."""
    return timestamp + metrics + b"\x18" + varint(seq) + b"\x22" + varint(len(uuid)) + uuid
