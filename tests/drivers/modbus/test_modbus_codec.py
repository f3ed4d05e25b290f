"""Register codecs: known vectors, round trips and range errors."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DriverConfigError
from drivers.modbus import (
    ByteOrder,
    DataType,
    ModbusPoint,
    PointValueError,
    WordOrder,
    decode_point,
    decode_registers,
    encode_point,
    encode_registers,
    register_count,
)

INT_RANGES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
orders = st.tuples(st.sampled_from(list(WordOrder)), st.sampled_from(list(ByteOrder)))


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[DataType, int | float]:
    data_type = draw(st.sampled_from([*INT_RANGES, DataType.FLOAT32, DataType.FLOAT64]))
    if data_type in INT_RANGES:
        low, high = INT_RANGES[data_type]
        return data_type, draw(st.integers(low, high))
    if data_type is DataType.FLOAT32:
        return data_type, draw(st.floats(width=32, allow_nan=False))
    return data_type, draw(st.floats(allow_nan=False))


@given(typed_values(), orders)
def test_numeric_values_round_trip_through_registers(
    typed: tuple[DataType, int | float], order: tuple[WordOrder, ByteOrder]
) -> None:
    """Every numeric type decodes back to the value it encoded, in every word/byte order."""
    data_type, value = typed
    word_order, byte_order = order
    registers = encode_registers(value, data_type, word_order=word_order, byte_order=byte_order)
    assert len(registers) == register_count(data_type)
    assert all(0 <= r <= 0xFFFF for r in registers)
    decoded = decode_registers(registers, data_type, word_order=word_order, byte_order=byte_order)
    assert decoded == value


@given(st.text(max_size=20), st.integers(1, 12), st.sampled_from(list(ByteOrder)))
def test_strings_round_trip_when_they_fit(text: str, length: int, byte_order: ByteOrder) -> None:
    """A STRING of n registers round-trips any text whose UTF-8 fits 2n bytes (no NULs)."""
    text = text.replace("\x00", "")
    data = text.encode()
    if len(data) > 2 * length:
        with pytest.raises(PointValueError):
            encode_registers(text, DataType.STRING, string_registers=length, byte_order=byte_order)
        return
    registers = encode_registers(
        text, DataType.STRING, string_registers=length, byte_order=byte_order
    )
    assert len(registers) == length
    assert decode_registers(registers, DataType.STRING, byte_order=byte_order) == text


@given(
    st.integers(-30000, 30000),
    st.sampled_from([0.1, 0.5, 2.0, -0.25]),
    st.sampled_from([0.0, -40.0, 273.15]),
)
def test_scaled_points_round_trip_within_one_step(raw: int, scale: float, offset: float) -> None:
    """value = raw * scale + offset; writing a decoded value gives back the same raw register."""
    point = ModbusPoint(
        name="p", table="holding_register", address=0, data_type="INT16", scale=scale, offset=offset
    )
    registers = encode_registers(raw, DataType.INT16)
    value = decode_point(point, registers)
    assert value == pytest.approx(raw * scale + offset)
    assert encode_point(point, value) == registers


def test_float32_known_vectors_for_each_order() -> None:
    """1.5f is 0x3FC00000: ABCD, CDAB (word swap), BADC (byte swap) and DCBA layouts."""
    assert encode_registers(1.5, DataType.FLOAT32) == [0x3FC0, 0x0000]
    assert encode_registers(1.5, DataType.FLOAT32, word_order=WordOrder.LITTLE) == [0, 0x3FC0]
    assert encode_registers(1.5, DataType.FLOAT32, byte_order=ByteOrder.LITTLE) == [0xC03F, 0]
    assert encode_registers(
        1.5, DataType.FLOAT32, word_order=WordOrder.LITTLE, byte_order=ByteOrder.LITTLE
    ) == [0, 0xC03F]


def test_int32_and_int64_known_vectors() -> None:
    """Wide integers put the most significant word first unless words are swapped."""
    assert encode_registers(0x12345678, DataType.UINT32) == [0x1234, 0x5678]
    assert encode_registers(-2, DataType.INT32) == [0xFFFF, 0xFFFE]
    assert encode_registers(0x0102030405060708, DataType.UINT64, word_order=WordOrder.LITTLE) == [
        0x0708,
        0x0506,
        0x0304,
        0x0102,
    ]
    raw = struct.unpack(">d", bytes.fromhex("400921fb54442d18"))[0]
    assert encode_registers(raw, DataType.FLOAT64) == [0x4009, 0x21FB, 0x5444, 0x2D18]


def test_string_pads_with_nul_and_honours_byte_swap() -> None:
    """'ABC' in 2 registers is 'AB','C\\0'; byte swap flips the characters in each register."""
    assert encode_registers("ABC", DataType.STRING, string_registers=2) == [0x4142, 0x4300]
    swapped = encode_registers(
        "ABC", DataType.STRING, string_registers=2, byte_order=ByteOrder.LITTLE
    )
    assert swapped == [0x4241, 0x0043]


@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        (70000, DataType.INT16),
        (-1, DataType.UINT16),
        (2**32, DataType.UINT32),
        (2**63, DataType.INT64),
        (1.5, DataType.INT32),
        (True, DataType.INT16),
        ("12", DataType.UINT16),
        (1e39, DataType.FLOAT32),
        (3, DataType.STRING),
    ],
)
def test_values_the_type_cannot_hold_are_rejected(value: object, data_type: DataType) -> None:
    """Out-of-range or wrongly typed values raise PointValueError, a DriverConfigError."""
    with pytest.raises(DriverConfigError):
        encode_registers(value, data_type)  # type: ignore[arg-type]  # wrong types on purpose


def test_bool_points_encode_to_bits_and_reject_other_values() -> None:
    """Coils take True/False (or 0/1) and nothing else."""
    coil = ModbusPoint(name="c", table="coil", address=0, writable=True)
    assert encode_point(coil, True) == [True]
    assert encode_point(coil, 0) == [False]
    assert decode_point(coil, [True]) is True
    with pytest.raises(PointValueError, match="needs a BOOL"):
        encode_point(coil, 2)
    with pytest.raises(PointValueError, match="needs a BOOL"):
        encode_point(coil, "on")


def test_scaled_integer_write_rounds_and_checks_range() -> None:
    """Writing 1.26 to a 0.1-scaled INT16 sends raw 13; a value past the raw range fails."""
    point = ModbusPoint(name="t", table="holding_register", address=0, data_type="INT16", scale=0.1)
    assert encode_point(point, 1.26) == [13]
    with pytest.raises(PointValueError, match="point 't'"):
        encode_point(point, 4000.0)
    with pytest.raises(PointValueError):
        encode_point(point, math.inf)


def test_decode_needs_the_right_register_count() -> None:
    """A FLOAT64 from three registers is an error, not a guess."""
    with pytest.raises(PointValueError, match="needs 4 registers"):
        decode_registers([1, 2, 3], DataType.FLOAT64)
