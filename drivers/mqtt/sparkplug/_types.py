"""Typed Sparkplug B values: datatypes, metrics, properties and payloads.

These frozen dataclasses are what the rest of the project sees; the protobuf classes stay
behind `_codec`. Values are plain Python: `int` for the integer and DateTime types (ms since
the Unix epoch), `float`, `bool`, `str` (String, Text, UUID), `bytes` (Bytes, File), tuples
for the array types and `None` for an explicit null (`is_null`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from drivers.mqtt.sparkplug._errors import MetricValueError

MetricValue = (
    bool | int | float | str | bytes | tuple[int, ...] | tuple[float, ...] | tuple[str, ...] | None
)
"""A metric value as the application sees it (see the module docstring for the mapping)."""

PropertyScalar = bool | int | float | str | None
"""A property value: the scalar subset of `MetricValue`."""

MESSAGE_ID_UUID_PREFIX = "tb-msg:"
"""Prefix of the payload `uuid` that carries the store's 64-bit message id (16 hex digits)."""

_UINT64_LIMIT = 1 << 64


class DataType(enum.IntEnum):
    """Sparkplug 3.0 datatype numbers (the `datatype` field of a metric)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTY_SET = 20
    PROPERTY_SET_LIST = 21
    INT8_ARRAY = 22
    INT16_ARRAY = 23
    INT32_ARRAY = 24
    INT64_ARRAY = 25
    UINT8_ARRAY = 26
    UINT16_ARRAY = 27
    UINT32_ARRAY = 28
    UINT64_ARRAY = 29
    FLOAT_ARRAY = 30
    DOUBLE_ARRAY = 31
    BOOLEAN_ARRAY = 32
    STRING_ARRAY = 33
    DATETIME_ARRAY = 34


INTEGER_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.INT8: (-(1 << 7), (1 << 7) - 1),
    DataType.INT16: (-(1 << 15), (1 << 15) - 1),
    DataType.INT32: (-(1 << 31), (1 << 31) - 1),
    DataType.INT64: (-(1 << 63), (1 << 63) - 1),
    DataType.UINT8: (0, (1 << 8) - 1),
    DataType.UINT16: (0, (1 << 16) - 1),
    DataType.UINT32: (0, (1 << 32) - 1),
    DataType.UINT64: (0, (1 << 64) - 1),
    DataType.DATETIME: (0, (1 << 64) - 1),
}
"""Inclusive value range of each integer datatype (DateTime: ms since the epoch)."""

NUMERIC_TYPES = frozenset({*INTEGER_RANGES, DataType.FLOAT, DataType.DOUBLE})
"""Datatypes a deadband applies to."""


@dataclass(frozen=True, slots=True)
class Property:
    """One entry of a metric's PropertySet (e.g. engineering units, or our message id)."""

    key: str
    datatype: DataType
    value: PropertyScalar


@dataclass(frozen=True, slots=True)
class Metric:
    """One Sparkplug metric: identity (name and/or alias), datatype, value and flags."""

    name: str | None
    datatype: DataType
    value: MetricValue
    alias: int | None = None
    timestamp_ms: int | None = None
    is_historical: bool = False
    is_transient: bool = False
    properties: tuple[Property, ...] = ()

    @property
    def is_null(self) -> bool:
        """True when the metric carries an explicit null instead of a value."""
        return self.value is None

    def label(self) -> str:
        """Name if known, else `alias N`, for error messages and logs."""
        return self.name if self.name is not None else f"alias {self.alias}"


@dataclass(frozen=True, slots=True)
class Payload:
    """A Sparkplug B payload: sending time, metrics, transport `seq` and optional uuid/body."""

    timestamp_ms: int | None
    metrics: tuple[Metric, ...] = ()
    seq: int | None = None
    uuid: str | None = None
    body: bytes | None = field(default=None, repr=False)

    @property
    def message_id(self) -> int | None:
        """The store's 64-bit message id carried in `uuid`, or None (see `message_id_uuid`)."""
        return message_id_from_uuid(self.uuid)

    def metric(self, name: str) -> Metric:
        """The metric called `name` (KeyError naming the known names if absent)."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        known = sorted(m.name for m in self.metrics if m.name is not None)
        raise KeyError(f"no metric {name!r} in payload; metrics: {known}")


def message_id_uuid(message_id: int) -> str:
    """Encode the store's 64-bit message id as the payload `uuid` (`tb-msg:` + 16 hex digits).

    The payload `uuid` is the one per-payload string field Sparkplug has; the DESIGN decision
    names it as the carrier of the end-to-end dedupe id, so one DDATA batching many metric
    changes still carries one id.
    """
    if not 0 <= message_id < _UINT64_LIMIT:
        raise MetricValueError(f"message id {message_id} is not an unsigned 64-bit integer")
    return f"{MESSAGE_ID_UUID_PREFIX}{message_id:016x}"


def message_id_from_uuid(uuid: str | None) -> int | None:
    """The message id in a `uuid` made by `message_id_uuid`; None for any other uuid."""
    if uuid is None or not uuid.startswith(MESSAGE_ID_UUID_PREFIX):
        return None
    digits = uuid[len(MESSAGE_ID_UUID_PREFIX) :]
    if len(digits) != 16:
        return None
    try:
        return int(digits, 16)
    except ValueError:
        return None
