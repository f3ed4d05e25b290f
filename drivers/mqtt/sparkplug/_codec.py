"""Encode and decode Sparkplug B payloads between `Payload` dataclasses and protobuf bytes.

Wire mapping (Sparkplug 3.0, matching Eclipse Tahu): Int8/16/32 travel in `int_value` as
32-bit two's complement, UInt8/16 in `int_value`, UInt32 in `long_value` (as Tahu writes it;
`int_value` is accepted on decode), Int64 in `long_value` as 64-bit two's complement,
UInt64 and DateTime in `long_value`, arrays little-endian in `bytes_value`. DataSet,
Template and BooleanArray values are not carried (UnsupportedDatatypeError).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Final

from google.protobuf.message import DecodeError, EncodeError

from drivers.mqtt.sparkplug._errors import (
    DatatypeMismatchError,
    MetricValueError,
    PayloadTooLargeError,
    SparkplugDecodeError,
    UnknownAliasError,
    UnsupportedDatatypeError,
)
from drivers.mqtt.sparkplug._proto import (
    ProtoMetric,
    ProtoPayload,
    ProtoPropertySet,
    ProtoPropertyValue,
)
from drivers.mqtt.sparkplug._types import (
    INTEGER_RANGES,
    DataType,
    Metric,
    MetricValue,
    Payload,
    Property,
    PropertyScalar,
)

DEFAULT_MAX_PAYLOAD_BYTES: Final = 1024 * 1024
"""Default size limit for one payload, both directions (MQTT allows 256 MB; nobody should)."""

SEQ_MODULO: Final = 256
"""`seq` and `bdSeq` run 0..255 and wrap."""

DatatypeLookup = Callable[[str | None, int | None], DataType | None]
"""Find the datatype a BIRTH declared for a metric given (name, alias); None if unknown."""

_MASK32: Final = (1 << 32) - 1
_MASK64: Final = (1 << 64) - 1
_FLOAT32_MAX: Final = 3.4028234663852886e38

_INT_VALUE_TYPES: Final = frozenset(
    {DataType.INT8, DataType.INT16, DataType.INT32, DataType.UINT8, DataType.UINT16}
)
_LONG_VALUE_TYPES: Final = frozenset(
    {DataType.INT64, DataType.UINT32, DataType.UINT64, DataType.DATETIME}
)
_STRING_TYPES: Final = frozenset({DataType.STRING, DataType.TEXT, DataType.UUID})
_BYTES_TYPES: Final = frozenset({DataType.BYTES, DataType.FILE})
_ARRAY_FORMATS: Final[dict[DataType, str]] = {
    DataType.INT8_ARRAY: "b",
    DataType.INT16_ARRAY: "h",
    DataType.INT32_ARRAY: "i",
    DataType.INT64_ARRAY: "q",
    DataType.UINT8_ARRAY: "B",
    DataType.UINT16_ARRAY: "H",
    DataType.UINT32_ARRAY: "I",
    DataType.UINT64_ARRAY: "Q",
    DataType.FLOAT_ARRAY: "f",
    DataType.DOUBLE_ARRAY: "d",
    DataType.DATETIME_ARRAY: "q",
}
_UNSUPPORTED: Final = frozenset(
    {
        DataType.UNKNOWN,
        DataType.DATASET,
        DataType.TEMPLATE,
        DataType.PROPERTY_SET,
        DataType.PROPERTY_SET_LIST,
        DataType.BOOLEAN_ARRAY,
    }
)
_EXPECTED_FIELDS: Final[dict[DataType, frozenset[str]]] = {
    **{t: frozenset({"int_value"}) for t in _INT_VALUE_TYPES},
    **{t: frozenset({"long_value"}) for t in _LONG_VALUE_TYPES},
    DataType.UINT32: frozenset({"int_value", "long_value"}),
    DataType.FLOAT: frozenset({"float_value"}),
    DataType.DOUBLE: frozenset({"double_value"}),
    DataType.BOOLEAN: frozenset({"boolean_value"}),
    **{t: frozenset({"string_value"}) for t in _STRING_TYPES},
    **{
        t: frozenset({"bytes_value"})
        for t in (*_BYTES_TYPES, *_ARRAY_FORMATS, DataType.STRING_ARRAY)
    },
}

WireValue = int | float | bool | str | bytes


# --------------------------------------------------------------------------- encode


def encode_payload(payload: Payload, *, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> bytes:
    """Serialise `payload`; MetricValueError for a value that does not fit its datatype."""
    proto = ProtoPayload()
    if payload.timestamp_ms is not None:
        proto.timestamp = _check_uint64(payload.timestamp_ms, "payload timestamp")
    if payload.seq is not None:
        if not 0 <= payload.seq < SEQ_MODULO:
            raise MetricValueError(f"payload seq {payload.seq} is outside 0..255")
        proto.seq = payload.seq
    if payload.uuid is not None:
        proto.uuid = payload.uuid
    if payload.body is not None:
        proto.body = payload.body
    for metric in payload.metrics:
        _encode_metric(proto.metrics.add(), metric)
    try:
        data = proto.SerializeToString()
    except EncodeError as exc:  # pragma: no cover - every required field is optional in proto2
        raise MetricValueError(f"payload does not serialise: {exc}") from exc
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"encoded payload is {len(data)} bytes, over the limit of {max_bytes} bytes"
        )
    return data


def _encode_metric(target: ProtoMetric, metric: Metric) -> None:
    label = metric.label()
    if metric.name is None and metric.alias is None:
        raise MetricValueError("a metric needs a name, an alias or both")
    if metric.name is not None:
        target.name = metric.name
    if metric.alias is not None:
        target.alias = _check_uint64(metric.alias, f"alias of metric {label!r}")
    if metric.timestamp_ms is not None:
        target.timestamp = _check_uint64(metric.timestamp_ms, f"timestamp of metric {label!r}")
    target.datatype = int(metric.datatype)
    if metric.is_historical:
        target.is_historical = True
    if metric.is_transient:
        target.is_transient = True
    if metric.properties:
        _encode_properties(target.properties, metric.properties, label)
    if metric.value is None:
        target.is_null = True
        return
    field, wire = wire_value(metric.datatype, metric.value, f"metric {label!r}")
    setattr(target, field, wire)


def _encode_properties(
    target: ProtoPropertySet, properties: Sequence[Property], label: str
) -> None:
    for prop in properties:
        target.keys.append(prop.key)
        value = target.values.add()
        value.type = int(prop.datatype)
        if prop.value is None:
            value.is_null = True
            continue
        where = f"property {prop.key!r} of metric {label!r}"
        field, wire = wire_value(prop.datatype, prop.value, where)
        if field == "bytes_value":
            raise MetricValueError(f"{where}: datatype {prop.datatype.name} cannot be a property")
        setattr(value, field, wire)


def wire_value(datatype: DataType, value: MetricValue, where: str) -> tuple[str, WireValue]:
    """The protobuf oneof field and wire value for `value` of `datatype`."""
    if datatype in INTEGER_RANGES:
        number = _check_integer(datatype, value, where)
        if datatype in (DataType.INT8, DataType.INT16, DataType.INT32):
            return "int_value", number & _MASK32
        if datatype in (DataType.UINT8, DataType.UINT16):
            return "int_value", number
        return "long_value", number & _MASK64
    if datatype in (DataType.FLOAT, DataType.DOUBLE):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MetricValueError(f"{where}: {datatype.name} needs a number, got {value!r}")
        real = float(value)
        if datatype is DataType.FLOAT:
            if math.isfinite(real) and abs(real) > _FLOAT32_MAX:
                raise MetricValueError(f"{where}: {real} does not fit a 32-bit Float")
            return "float_value", real
        return "double_value", real
    if datatype is DataType.BOOLEAN:
        if not isinstance(value, bool):
            raise MetricValueError(f"{where}: Boolean needs True/False, got {value!r}")
        return "boolean_value", value
    if datatype in _STRING_TYPES:
        if not isinstance(value, str):
            raise MetricValueError(f"{where}: {datatype.name} needs a str, got {value!r}")
        return "string_value", value
    if datatype in _BYTES_TYPES:
        if not isinstance(value, bytes):
            raise MetricValueError(f"{where}: {datatype.name} needs bytes, got {value!r}")
        return "bytes_value", value
    if datatype in _ARRAY_FORMATS or datatype is DataType.STRING_ARRAY:
        return "bytes_value", _pack_array(datatype, value, where)
    raise MetricValueError(f"{where}: datatype {datatype.name} is not supported by this codec")


def _check_integer(datatype: DataType, value: MetricValue, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetricValueError(f"{where}: {datatype.name} needs an int, got {value!r}")
    low, high = INTEGER_RANGES[datatype]
    if not low <= value <= high:
        raise MetricValueError(f"{where}: {value} is outside the {datatype.name} range")
    return value


def _check_uint64(value: int, where: str) -> int:
    if isinstance(value, bool) or not 0 <= value <= _MASK64:
        raise MetricValueError(f"{where} {value!r} is not an unsigned 64-bit integer")
    return value


def _pack_array(datatype: DataType, value: MetricValue, where: str) -> bytes:
    if not isinstance(value, tuple):
        raise MetricValueError(f"{where}: {datatype.name} needs a tuple, got {value!r}")
    if datatype is DataType.STRING_ARRAY:
        if not all(isinstance(item, str) and "\0" not in item for item in value):
            raise MetricValueError(f"{where}: StringArray needs str items without NUL")
        return b"".join(str(item).encode() + b"\0" for item in value)
    fmt = _ARRAY_FORMATS[datatype]
    try:
        return struct.pack(f"<{len(value)}{fmt}", *value)
    except struct.error as exc:
        raise MetricValueError(f"{where}: {value!r} does not fit {datatype.name}: {exc}") from exc


# --------------------------------------------------------------------------- decode


def decode_payload(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    datatype_of: DatatypeLookup | None = None,
) -> Payload:
    """Parse and validate a Sparkplug B payload.

    `datatype_of` supplies the datatype a BIRTH declared for metrics that omit it (DATA and
    CMD messages may). Raises PayloadTooLargeError, SparkplugDecodeError (malformed),
    UnknownAliasError (no datatype and none known), DatatypeMismatchError or
    UnsupportedDatatypeError.
    """
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"payload is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        proto = ProtoPayload.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise SparkplugDecodeError(f"not a Sparkplug B payload: {exc}") from exc
    seq = proto.seq if proto.HasField("seq") else None
    if seq is not None and seq >= SEQ_MODULO:
        raise SparkplugDecodeError(f"payload seq {seq} is outside 0..255")
    metrics = tuple(
        _decode_metric(pm, index, datatype_of) for index, pm in enumerate(proto.metrics)
    )
    return Payload(
        timestamp_ms=proto.timestamp if proto.HasField("timestamp") else None,
        metrics=metrics,
        seq=seq,
        uuid=proto.uuid if proto.HasField("uuid") else None,
        body=proto.body if proto.HasField("body") else None,
    )


def _decode_metric(pm: ProtoMetric, index: int, datatype_of: DatatypeLookup | None) -> Metric:
    name = pm.name if pm.HasField("name") else None
    alias = pm.alias if pm.HasField("alias") else None
    if name is None and alias is None:
        raise SparkplugDecodeError(f"metric #{index} has neither a name nor an alias")
    label = name if name is not None else f"alias {alias}"
    datatype = _decode_datatype(pm, name, alias, label, datatype_of)
    properties = _decode_properties(pm.properties, label) if pm.HasField("properties") else ()
    value: MetricValue
    if pm.is_null:
        value = None
    else:
        field = pm.WhichOneof("value")
        value = _read_value(datatype, field, pm, f"metric {label!r}")
    return Metric(
        name=name,
        alias=alias,
        datatype=datatype,
        value=value,
        timestamp_ms=pm.timestamp if pm.HasField("timestamp") else None,
        is_historical=pm.is_historical,
        is_transient=pm.is_transient,
        properties=properties,
    )


def _decode_datatype(
    pm: ProtoMetric,
    name: str | None,
    alias: int | None,
    label: str,
    datatype_of: DatatypeLookup | None,
) -> DataType:
    if pm.HasField("datatype"):
        try:
            return DataType(pm.datatype)
        except ValueError as exc:
            raise SparkplugDecodeError(
                f"metric {label!r} has unknown datatype number {pm.datatype}"
            ) from exc
    known = datatype_of(name, alias) if datatype_of is not None else None
    if known is None:
        raise UnknownAliasError(f"metric {label!r} carries no datatype and no BIRTH declared it")
    return known


def _decode_properties(ps: ProtoPropertySet, label: str) -> tuple[Property, ...]:
    if len(ps.keys) != len(ps.values):
        raise SparkplugDecodeError(
            f"metric {label!r}: property set has {len(ps.keys)} keys but {len(ps.values)} values"
        )
    out: list[Property] = []
    for key, pv in zip(ps.keys, ps.values, strict=True):
        out.append(_decode_property(key, pv, label))
    return tuple(out)


def _decode_property(key: str, pv: ProtoPropertyValue, label: str) -> Property:
    where = f"property {key!r} of metric {label!r}"
    try:
        datatype = DataType(pv.type)
    except ValueError as exc:
        raise SparkplugDecodeError(f"{where} has unknown type number {pv.type}") from exc
    if pv.is_null:
        return Property(key=key, datatype=datatype, value=None)
    field = pv.WhichOneof("value")
    value = _read_value(datatype, field, pv, where)
    if isinstance(value, bytes | tuple):
        raise UnsupportedDatatypeError(f"{where}: datatype {datatype.name} is not a scalar")
    scalar: PropertyScalar = value
    return Property(key=key, datatype=datatype, value=scalar)


def _read_value(
    datatype: DataType,
    field: str | None,
    source: ProtoMetric | ProtoPropertyValue,
    where: str,
) -> MetricValue:
    """The typed value of `source`'s oneof `field`, checked against `datatype`."""
    if datatype in _UNSUPPORTED:
        raise UnsupportedDatatypeError(f"{where}: datatype {datatype.name} is not supported")
    if field is None:
        raise DatatypeMismatchError(f"{where}: {datatype.name} has no value and is_null is unset")
    if field not in _EXPECTED_FIELDS[datatype]:
        raise DatatypeMismatchError(
            f"{where}: datatype {datatype.name} cannot be carried in {field}"
        )
    raw: WireValue = getattr(source, field)
    if datatype in INTEGER_RANGES:
        assert isinstance(raw, int)
        return _integer_from_wire(datatype, raw, where)
    if datatype in _ARRAY_FORMATS or datatype is DataType.STRING_ARRAY:
        assert isinstance(raw, bytes)
        return _unpack_array(datatype, raw, where)
    return raw


def _integer_from_wire(datatype: DataType, raw: int, where: str) -> int:
    low, high = INTEGER_RANGES[datatype]
    if datatype is DataType.INT64:
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if datatype in (DataType.INT8, DataType.INT16, DataType.INT32):
        signed = raw - (1 << 32) if raw >= 1 << 31 else raw
        if low <= signed <= high:
            return signed
        width = high.bit_length() + 1
        if raw < 1 << width:  # written as an unsigned N-bit pattern by some encoders
            return raw - (1 << width) if raw > high else raw
        raise DatatypeMismatchError(f"{where}: {signed} is outside the {datatype.name} range")
    if not low <= raw <= high:
        raise DatatypeMismatchError(f"{where}: {raw} is outside the {datatype.name} range")
    return raw


def _unpack_array(datatype: DataType, raw: bytes, where: str) -> MetricValue:
    if datatype is DataType.STRING_ARRAY:
        if raw and not raw.endswith(b"\0"):
            raise SparkplugDecodeError(f"{where}: StringArray is not NUL-terminated")
        try:
            return tuple(item.decode() for item in raw.split(b"\0")[:-1])
        except UnicodeDecodeError as exc:
            raise SparkplugDecodeError(f"{where}: StringArray is not UTF-8") from exc
    fmt = _ARRAY_FORMATS[datatype]
    size = struct.calcsize(fmt)
    if len(raw) % size:
        raise SparkplugDecodeError(
            f"{where}: {len(raw)} bytes is not a whole number of {datatype.name} items"
        )
    return tuple(struct.unpack(f"<{len(raw) // size}{fmt}", raw))
