"""Register codecs: typed values to and from 16-bit Modbus registers.

Modbus only moves 16-bit registers and single bits; every wider type is a
convention of the device. Devices differ in two ways, both configurable here:

- word order: which register holds the most significant 16 bits
  (`WordOrder.BIG`, "ABCD", the Modbus norm; `WordOrder.LITTLE`, "CDAB", word swap);
- byte order: which byte of a register comes first
  (`ByteOrder.BIG`, the Modbus norm; `ByteOrder.LITTLE`, byte swap).

All functions are pure and raise `PointValueError` (a `DriverConfigError`) for
values the type cannot hold, so callers see one error tree.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable, Sequence

from drivers.modbus.errors import PointValueError

__all__ = [
    "ByteOrder",
    "DataType",
    "PointValue",
    "RegisterDecoder",
    "WordOrder",
    "apply_scaling",
    "decode_registers",
    "encode_registers",
    "register_count",
    "register_decoder",
    "remove_scaling",
]

PointValue = bool | int | float | str
"""A decoded point value: BOOL for bits, int/float for numbers, str for STRING."""


class DataType(enum.StrEnum):
    """Raw type of a point as the device stores it."""

    BOOL = "BOOL"
    INT16 = "INT16"
    UINT16 = "UINT16"
    INT32 = "INT32"
    UINT32 = "UINT32"
    INT64 = "INT64"
    UINT64 = "UINT64"
    FLOAT32 = "FLOAT32"
    FLOAT64 = "FLOAT64"
    STRING = "STRING"


class WordOrder(enum.StrEnum):
    """Order of the 16-bit words of a multi-register value."""

    BIG = "big"
    LITTLE = "little"


class ByteOrder(enum.StrEnum):
    """Order of the two bytes inside each register."""

    BIG = "big"
    LITTLE = "little"


# struct format (big-endian) and register count of the fixed-width types
_STRUCT: dict[DataType, tuple[str, int]] = {
    DataType.INT16: (">h", 1),
    DataType.UINT16: (">H", 1),
    DataType.INT32: (">i", 2),
    DataType.UINT32: (">I", 2),
    DataType.INT64: (">q", 4),
    DataType.UINT64: (">Q", 4),
    DataType.FLOAT32: (">f", 2),
    DataType.FLOAT64: (">d", 4),
}

_INT_RANGE: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}

INTEGER_TYPES = frozenset(_INT_RANGE)
FLOAT_TYPES = frozenset({DataType.FLOAT32, DataType.FLOAT64})


def register_count(data_type: DataType, string_registers: int = 1) -> int:
    """Registers one value occupies (STRING takes `string_registers`; BOOL is a bit)."""
    if data_type is DataType.STRING:
        return string_registers
    if data_type is DataType.BOOL:
        return 1
    return _STRUCT[data_type][1]


def _swap_bytes(data: bytes) -> bytes:
    swapped = bytearray(len(data))
    swapped[0::2] = data[1::2]
    swapped[1::2] = data[0::2]
    return bytes(swapped)


def _bytes_to_words(data: bytes, word_order: WordOrder, byte_order: ByteOrder) -> list[int]:
    if byte_order is ByteOrder.LITTLE:
        data = _swap_bytes(data)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if word_order is WordOrder.LITTLE:
        words.reverse()
    return words


def _words_to_bytes(words: Sequence[int], word_order: WordOrder, byte_order: ByteOrder) -> bytes:
    ordered = list(words)
    if word_order is WordOrder.LITTLE:
        ordered.reverse()
    data = b"".join(word.to_bytes(2, "big") for word in ordered)
    if byte_order is ByteOrder.LITTLE:
        data = _swap_bytes(data)
    return data


def encode_registers(
    value: PointValue,
    data_type: DataType,
    *,
    word_order: WordOrder = WordOrder.BIG,
    byte_order: ByteOrder = ByteOrder.BIG,
    string_registers: int = 1,
) -> list[int]:
    """Encode one raw (unscaled) value into registers, most significant first on the wire."""
    if data_type is DataType.BOOL:
        raise PointValueError("BOOL points live in coils or discrete inputs, not registers")
    if data_type is DataType.STRING:
        if not isinstance(value, str):
            raise PointValueError(f"STRING needs a str, got {type(value).__name__}")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PointValueError(f"STRING value {value!r} is not valid UTF-8") from exc
        capacity = 2 * string_registers
        if len(data) > capacity:
            raise PointValueError(
                f"STRING value of {len(data)} bytes does not fit {string_registers} registers"
            )
        # word order does not apply to strings: characters run from the first register on
        return _bytes_to_words(data.ljust(capacity, b"\x00"), WordOrder.BIG, byte_order)
    fmt, _count = _STRUCT[data_type]
    if data_type in INTEGER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PointValueError(f"{data_type} needs an int, got {value!r}")
        low, high = _INT_RANGE[data_type]
        if not low <= value <= high:
            raise PointValueError(f"{value} is outside the {data_type} range {low}..{high}")
        packed = struct.pack(fmt, value)
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PointValueError(f"{data_type} needs a number, got {value!r}")
        try:
            packed = struct.pack(fmt, value)
        except OverflowError as exc:
            raise PointValueError(f"{value} is outside the {data_type} range") from exc
    return _bytes_to_words(packed, word_order, byte_order)


def decode_registers(
    registers: Sequence[int],
    data_type: DataType,
    *,
    word_order: WordOrder = WordOrder.BIG,
    byte_order: ByteOrder = ByteOrder.BIG,
) -> int | float | str:
    """Decode registers (as read from the wire) into one raw (unscaled) value."""
    if data_type is DataType.BOOL:
        raise PointValueError("BOOL points live in coils or discrete inputs, not registers")
    if data_type is DataType.STRING:
        data = _words_to_bytes(registers, WordOrder.BIG, byte_order)
        return data.rstrip(b"\x00").decode("utf-8", errors="replace")
    fmt, count = _STRUCT[data_type]
    if len(registers) != count:
        raise PointValueError(f"{data_type} needs {count} registers, got {len(registers)}")
    value: int | float = struct.unpack(fmt, _words_to_bytes(registers, word_order, byte_order))[0]
    return value


RegisterDecoder = Callable[[Sequence[int], int], "int | float"]
"""`decoder(units, start)`: the value of the registers from `units[start]` on."""


def register_decoder(
    data_type: DataType,
    *,
    word_order: WordOrder = WordOrder.BIG,
    byte_order: ByteOrder = ByteOrder.BIG,
) -> RegisterDecoder:
    """`decode_registers` for one fixed-width type and order, dispatched once (poll plans
    build one per point): the words are packed straight into the struct the type reads."""
    if data_type is DataType.BOOL or data_type is DataType.STRING:
        raise PointValueError(f"{data_type} has no fixed-width register decoder")
    fmt, count = _STRUCT[data_type]
    if count == 1 and byte_order is ByteOrder.BIG and data_type is DataType.UINT16:
        return lambda units, start: int(units[start])
    # packing each word little-endian swaps its two bytes, as ByteOrder.LITTLE asks
    pack = struct.Struct(("<" if byte_order is ByteOrder.LITTLE else ">") + "H" * count).pack
    unpack = struct.Struct(fmt).unpack
    if word_order is WordOrder.LITTLE and count > 1:

        def decode_swapped(units: Sequence[int], start: int) -> int | float:
            value: int | float = unpack(pack(*reversed(units[start : start + count])))[0]
            return value

        return decode_swapped

    def decode(units: Sequence[int], start: int) -> int | float:
        value: int | float = unpack(pack(*units[start : start + count]))[0]
        return value

    return decode


def apply_scaling(raw: int | float, scale: float, offset: float) -> int | float:
    """Engineering value = raw * scale + offset; integers stay integers when unscaled."""
    if scale == 1.0 and offset == 0.0:
        return raw
    return raw * scale + offset


def remove_scaling(
    value: int | float, data_type: DataType, scale: float, offset: float
) -> int | float:
    """Raw value for an engineering value: (value - offset) / scale, rounded for integer types."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PointValueError(f"{data_type} needs a number, got {value!r}")
    if scale == 1.0 and offset == 0.0:
        raw: int | float = value
    else:
        raw = (value - offset) / scale
    if data_type in INTEGER_TYPES:
        if isinstance(raw, float):
            if not math.isfinite(raw):
                raise PointValueError(f"{value} has no {data_type} raw value")
            raw = round(raw)
        return raw
    return float(raw)
