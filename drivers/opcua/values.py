"""Python values checked against OPC UA built-in types before they go on the wire.

asyncua encodes whatever a Variant holds and fails late (or silently wraps) on a
wrong type; checking here turns that into a DriverConfigError naming the node.
"""

from __future__ import annotations

import datetime

from drivers.errors import DriverConfigError

__all__ = ["INT_BOUNDS", "coerce_value", "default_value"]

INT_BOUNDS: dict[str, tuple[int, int]] = {
    "SByte": (-(2**7), 2**7 - 1),
    "Byte": (0, 2**8 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "UInt16": (0, 2**16 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "UInt32": (0, 2**32 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "UInt64": (0, 2**64 - 1),
}


def coerce_value(value: object, data_type: str, where: str) -> object:
    """Check and convert a Python value for a variable of ``data_type``."""
    if data_type in INT_BOUNDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DriverConfigError(f"{where}: {data_type} needs an int, got {value!r}")
        low, high = INT_BOUNDS[data_type]
        if not low <= value <= high:
            raise DriverConfigError(f"{where}: {value} is outside {data_type} [{low}, {high}]")
        return value
    if data_type in ("Float", "Double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DriverConfigError(f"{where}: {data_type} needs a number, got {value!r}")
        return float(value)
    if data_type == "Boolean":
        if not isinstance(value, bool):
            raise DriverConfigError(f"{where}: Boolean needs a bool, got {value!r}")
        return value
    if data_type == "String":
        if not isinstance(value, str):
            raise DriverConfigError(f"{where}: String needs a str, got {value!r}")
        return value
    if data_type == "ByteString":
        if not isinstance(value, bytes):
            raise DriverConfigError(f"{where}: ByteString needs bytes, got {value!r}")
        return value
    if not isinstance(value, datetime.datetime):
        raise DriverConfigError(f"{where}: DateTime needs a datetime, got {value!r}")
    return value


def default_value(data_type: str) -> object:
    if data_type in INT_BOUNDS:
        return 0
    defaults: dict[str, object] = {
        "Float": 0.0,
        "Double": 0.0,
        "Boolean": False,
        "String": "",
        "ByteString": b"",
    }
    if data_type in defaults:
        return defaults[data_type]
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
