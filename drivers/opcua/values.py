"""Python values checked against OPC UA built-in types before they go on the wire.

asyncua encodes whatever a Variant holds and fails late (or silently wraps) on a
wrong type; checking here turns that into a DriverConfigError naming the node.
"""

from __future__ import annotations

import datetime

import numpy as np

from drivers.errors import DriverConfigError

__all__ = ["INT_BOUNDS", "coerce_array", "coerce_value", "default_array", "default_value"]

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


def coerce_array(
    value: object, data_type: str, dimensions: tuple[int, ...], where: str
) -> list[object]:
    """Check and convert an array value (nested lists for several dimensions).

    ``dimensions`` holds the fixed length per dimension, 0 where any length is
    allowed (OPC UA's ArrayDimensions convention). NumPy arrays are accepted and
    leave as plain lists, the form asyncua encodes.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise DriverConfigError(f"{where}: not an array of {data_type}: {exc}") from exc
    if array.ndim != len(dimensions):
        raise DriverConfigError(
            f"{where}: needs {len(dimensions)} dimension(s), got shape {array.shape}"
        )
    for axis, (want, got) in enumerate(zip(dimensions, array.shape, strict=True)):
        if want and want != got:
            raise DriverConfigError(
                f"{where}: dimension {axis} needs {want} elements, got {got}"
            )
    if data_type in ("Float", "Double"):
        if array.dtype.kind not in "iuf":
            raise DriverConfigError(
                f"{where}: {data_type}[] needs numbers, got {array.dtype} elements"
            )
        converted: list[object] = array.astype(np.float64).tolist()
        return converted
    if data_type in INT_BOUNDS and array.dtype.kind in "iu":
        low, high = INT_BOUNDS[data_type]
        if array.size and (int(array.min()) < low or int(array.max()) > high):
            raise DriverConfigError(f"{where}: values outside {data_type} [{low}, {high}]")
        ints: list[object] = array.tolist()
        return ints
    flat = [
        coerce_value(item, data_type, f"{where}[{index}]")
        for index, item in enumerate(array.reshape(-1).tolist())
    ]
    return _reshape(flat, array.shape)


def _reshape(flat: list[object], shape: tuple[int, ...]) -> list[object]:
    if len(shape) <= 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def default_array(data_type: str, dimensions: tuple[int, ...]) -> list[object]:
    """An array of the type's default value (zero length where the length is open)."""
    item = default_value(data_type)
    if len(dimensions) == 1:
        return [item] * dimensions[0]
    return [default_array(data_type, dimensions[1:]) for _ in range(dimensions[0])]
