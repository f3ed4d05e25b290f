"""Array values from the field (OPC UA arrays, waveform blocks) as IEC ARRAY values.

A field array must have exactly the shape of the ARRAY it lands in: a 2048-sample
block in an `ARRAY[0..4095] OF LREAL` would be padded with zeros by IEC initialiser
rules and read as a real signal, so a shape mismatch is an error with a reason the FB
puts in STATUS. Numeric element types take a NumPy fast path (a 4096-sample block
converts in one call, not 4096).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from testbed.types import ArrayType, ElementaryType

__all__ = ["array_mismatch", "to_array"]

_FLOAT_BITS = {"REAL": np.float32, "LREAL": np.float64}


def to_array(target: ArrayType, value: object) -> list[object]:
    """`value` (list, tuple or NumPy array, nested for several dimensions) as a value of
    `target`; ValueError naming the problem when shape or element type do not fit."""
    reason = array_mismatch(target, value)
    if reason is not None:
        raise ValueError(reason)
    element = target.element
    if isinstance(element, ElementaryType) and element.name in _FLOAT_BITS:
        array = np.asarray(value)
        if array.dtype.kind in "iuf":
            rounded: list[object] = array.astype(_FLOAT_BITS[element.name]).astype(
                np.float64).tolist()
            return rounded
    plain = value.tolist() if isinstance(value, np.ndarray) else value
    try:
        return target.coerce(plain)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{target.spelling}: {exc}") from exc


def array_mismatch(target: ArrayType, value: object) -> str | None:
    """Why `value` cannot be a `target` value (shape or scalar), or None when it can."""
    if isinstance(value, str | bytes) or value is None:
        return f"{target.spelling} needs an array, got {type(value).__name__}"
    try:
        shape = np.shape(cast(Any, value))
    except ValueError:  # ragged nesting
        return f"{target.spelling} needs a regular array, got ragged nesting"
    if not shape:
        return f"{target.spelling} needs an array, got a scalar {type(value).__name__}"
    if tuple(shape) != target.shape:
        return f"{target.spelling} needs shape {list(target.shape)}, got {list(shape)}"
    return None
