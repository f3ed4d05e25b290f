"""Sparkplug B payload codec: round trips, wire mapping and typed validation errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DriverConfigError, ProtocolError
from drivers.mqtt.sparkplug import (
    DataType,
    DatatypeMismatchError,
    Metric,
    MetricValueError,
    Payload,
    PayloadTooLargeError,
    Property,
    SparkplugDecodeError,
    UnknownAliasError,
    UnsupportedDatatypeError,
    decode_payload,
    encode_payload,
    message_id_from_uuid,
    message_id_uuid,
)
from drivers.mqtt.sparkplug._proto import ProtoPayload

SCALARS = [
    (DataType.INT8, -128),
    (DataType.INT8, 127),
    (DataType.INT16, -32768),
    (DataType.INT32, -(2**31)),
    (DataType.INT64, -(2**63)),
    (DataType.INT64, 2**63 - 1),
    (DataType.UINT8, 255),
    (DataType.UINT16, 65535),
    (DataType.UINT32, 2**32 - 1),
    (DataType.UINT64, 2**64 - 1),
    (DataType.FLOAT, 1.5),
    (DataType.DOUBLE, -2.25e300),
    (DataType.BOOLEAN, True),
    (DataType.STRING, "grüße"),
    (DataType.DATETIME, 1_700_000_000_123),
    (DataType.TEXT, "long text"),
    (DataType.UUID, "0b9c8a7e-1d2f-4e3a-9b8c-7d6e5f4a3b2c"),
    (DataType.BYTES, b"\x00\xff\x10"),
    (DataType.FILE, b"file body"),
    (DataType.INT16_ARRAY, (-1, 2, 32767)),
    (DataType.UINT64_ARRAY, (0, 2**64 - 1)),
    (DataType.DOUBLE_ARRAY, (1.0, -0.5)),
    (DataType.STRING_ARRAY, ("a", "", "bc")),
]


@pytest.mark.parametrize(("datatype", "value"), SCALARS, ids=[f"{t.name}" for t, _ in SCALARS])
def test_every_supported_datatype_round_trips(datatype: DataType, value: object) -> None:
    """A metric of each supported datatype decodes to the value that was encoded."""
    metric = Metric(name="m", datatype=datatype, value=value, alias=7, timestamp_ms=42)  # type: ignore[arg-type]
    decoded = decode_payload(encode_payload(Payload(timestamp_ms=1, metrics=(metric,), seq=3)))
    assert decoded.seq == 3
    assert decoded.timestamp_ms == 1
    assert decoded.metrics == (metric,)


def test_negative_int32_travels_as_twos_complement_uint32() -> None:
    """Int8/16/32 go in int_value as 32-bit two's complement, as Eclipse Tahu writes them."""
    data = encode_payload(Payload(1, (Metric("t", DataType.INT16, -2),)))
    assert ProtoPayload.FromString(data).metrics[0].int_value == 2**32 - 2


def test_uint32_travels_in_long_value_and_is_read_from_either_field() -> None:
    """UInt32 is written to long_value (Tahu) and accepted from int_value too."""
    data = encode_payload(Payload(1, (Metric("u", DataType.UINT32, 7),)))
    assert ProtoPayload.FromString(data).metrics[0].WhichOneof("value") == "long_value"
    proto = ProtoPayload()
    proto.metrics.add(name="u", datatype=int(DataType.UINT32), int_value=9)
    assert decode_payload(proto.SerializeToString()).metrics[0].value == 9


def test_int8_written_as_unsigned_byte_is_read_as_negative() -> None:
    """An Int8 sent as its unsigned byte pattern (0xFF) decodes as -1."""
    proto = ProtoPayload()
    proto.metrics.add(name="b", datatype=int(DataType.INT8), int_value=0xFF)
    assert decode_payload(proto.SerializeToString()).metrics[0].value == -1


def test_null_metric_round_trips_as_is_null() -> None:
    """A None value is sent as is_null and decodes back to None."""
    data = encode_payload(Payload(1, (Metric("n", DataType.DOUBLE, None),)))
    assert ProtoPayload.FromString(data).metrics[0].is_null
    assert decode_payload(data).metrics[0].is_null


def test_properties_and_flags_round_trip() -> None:
    """Properties, is_historical and is_transient survive a round trip."""
    metric = Metric(
        "p",
        DataType.FLOAT,
        2.5,
        is_historical=True,
        is_transient=True,
        properties=(
            Property("engUnit", DataType.STRING, "degC"),
            Property("limit", DataType.INT32, -3),
            Property("none", DataType.DOUBLE, None),
        ),
    )
    assert decode_payload(encode_payload(Payload(5, (metric,)))).metrics == (metric,)


def test_message_id_is_carried_in_uuid() -> None:
    """The store's 64-bit message id travels in the payload uuid and comes back intact."""
    uuid = message_id_uuid(2**64 - 1)
    payload = decode_payload(encode_payload(Payload(1, uuid=uuid)))
    assert payload.message_id == 2**64 - 1
    assert message_id_from_uuid("some-other-uuid") is None
    with pytest.raises(MetricValueError):
        message_id_uuid(-1)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(0, 255))
def test_int64_values_and_seq_round_trip(value: int, seq: int) -> None:
    """Any Int64 value and any seq 0..255 survive encode/decode."""
    payload = Payload(1, (Metric("x", DataType.INT64, value, alias=1),), seq=seq)
    assert decode_payload(encode_payload(payload)) == payload


@given(st.floats(width=32))
def test_float_values_round_trip_bit_exact(value: float) -> None:
    """Any 32-bit float (NaN included) survives encode/decode."""
    got = decode_payload(encode_payload(Payload(1, (Metric("f", DataType.FLOAT, value),))))
    out = got.metrics[0].value
    assert isinstance(out, float)
    assert (math.isnan(value) and math.isnan(out)) or out == value


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        (DataType.INT8, 128),
        (DataType.UINT16, -1),
        (DataType.INT32, True),
        (DataType.BOOLEAN, 1),
        (DataType.STRING, b"bytes"),
        (DataType.FLOAT, 1e39),
        (DataType.DOUBLE, "1.0"),
        (DataType.INT8_ARRAY, (1, 300)),
        (DataType.DATASET, 1),
    ],
)
def test_values_that_do_not_fit_their_datatype_are_rejected(
    datatype: DataType, value: object
) -> None:
    """Encoding a value outside its datatype raises MetricValueError naming the metric."""
    with pytest.raises(MetricValueError, match="'bad'") as info:
        encode_payload(Payload(1, (Metric("bad", datatype, value),)))  # type: ignore[arg-type]
    assert isinstance(info.value, DriverConfigError)


def test_seq_outside_0_to_255_is_rejected_both_ways() -> None:
    """seq 256 is refused on encode and flagged as malformed on decode."""
    with pytest.raises(MetricValueError):
        encode_payload(Payload(1, seq=256))
    with pytest.raises(SparkplugDecodeError, match="seq 256"):
        decode_payload(ProtoPayload(seq=256).SerializeToString())


def test_malformed_bytes_raise_a_decode_error() -> None:
    """Bytes that are not protobuf raise SparkplugDecodeError (a ProtocolError)."""
    with pytest.raises(SparkplugDecodeError) as info:
        decode_payload(b"\x0a\xff\xff\xff\xff\x0f")
    assert isinstance(info.value, ProtocolError)
    assert info.value.reason == "malformed"


def test_oversize_payloads_are_rejected_both_ways() -> None:
    """Payloads over the size limit raise PayloadTooLargeError on encode and on decode."""
    payload = Payload(1, (Metric("big", DataType.BYTES, b"x" * 2000),))
    with pytest.raises(PayloadTooLargeError, match="1000"):
        encode_payload(payload, max_bytes=1000)
    data = encode_payload(payload)
    with pytest.raises(PayloadTooLargeError):
        decode_payload(data, max_bytes=1000)


def test_value_field_not_matching_datatype_is_a_datatype_mismatch() -> None:
    """A Boolean metric carrying a string_value raises DatatypeMismatchError."""
    proto = ProtoPayload()
    proto.metrics.add(name="b", datatype=int(DataType.BOOLEAN), string_value="true")
    with pytest.raises(DatatypeMismatchError, match=r"'b'.*string_value"):
        decode_payload(proto.SerializeToString())


def test_unknown_datatype_number_is_malformed() -> None:
    """A datatype number outside the Sparkplug 3.0 table is reported as malformed."""
    proto = ProtoPayload()
    proto.metrics.add(name="q", datatype=99, int_value=1)
    with pytest.raises(SparkplugDecodeError, match="99"):
        decode_payload(proto.SerializeToString())


def test_alias_without_datatype_needs_a_birth() -> None:
    """A DATA metric with alias only and no datatype needs the birth's datatype."""
    proto = ProtoPayload(seq=1)
    proto.metrics.add(alias=4, int_value=12)
    data = proto.SerializeToString()
    with pytest.raises(UnknownAliasError, match="alias 4"):
        decode_payload(data)
    got = decode_payload(data, datatype_of=lambda n, a: DataType.UINT16 if a == 4 else None)
    assert got.metrics[0].value == 12
    assert got.metrics[0].datatype is DataType.UINT16


def test_dataset_values_are_reported_unsupported() -> None:
    """A DataSet metric decodes to UnsupportedDatatypeError, not a crash or silent drop."""
    proto = ProtoPayload()
    metric = proto.metrics.add(name="ds", datatype=int(DataType.DATASET))
    metric.dataset_value.num_of_columns = 0
    with pytest.raises(UnsupportedDatatypeError, match="DATASET"):
        decode_payload(proto.SerializeToString())
