"""point_decoder: the per-point decoders a poll plan builds once agree with decode_point."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus import ModbusPoint, ModbusTable
from drivers.modbus.codec import ByteOrder, DataType, WordOrder
from drivers.modbus.points import decode_point, point_decoder

_REGISTER_TYPES = [t for t in DataType if t is not DataType.BOOL]


@st.composite
def _points(draw: st.DrawFn) -> ModbusPoint:
    data_type = draw(st.sampled_from(_REGISTER_TYPES))
    fields: dict[str, object] = {
        "name": "p",
        "table": draw(st.sampled_from([ModbusTable.HOLDING_REGISTER,
                                       ModbusTable.INPUT_REGISTER])),
        "address": draw(st.integers(0, 100)),
        "data_type": data_type,
        "word_order": draw(st.sampled_from(list(WordOrder))),
        "byte_order": draw(st.sampled_from(list(ByteOrder))),
    }
    if data_type is DataType.STRING:
        fields["length"] = draw(st.integers(1, 4))
    elif draw(st.booleans()):
        fields["scale"] = draw(st.sampled_from([0.1, 2.0, -0.5]))
        fields["offset"] = draw(st.sampled_from([0.0, 10.0, -3.25]))
    return ModbusPoint.model_validate(fields)


@settings(max_examples=300, deadline=None)
@given(point=_points(), lead=st.integers(0, 5), data=st.data())
def test_compiled_decoder_matches_decode_point(point: ModbusPoint, lead: int,
                                               data: st.DataObject) -> None:
    """For any register type, word/byte order and scaling, both decoders give the same value."""
    registers = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=lead + point.size + 2,
                                   max_size=lead + point.size + 2))
    expected = decode_point(point, registers[lead:lead + point.size])
    got = point_decoder(point)(registers, lead)
    assert type(got) is type(expected)
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float)
        assert math.isnan(got)
    else:
        assert got == expected


def test_bit_points_decode_to_bool() -> None:
    """A coil's decoder reads its single bit at the offset as a bool."""
    coil = ModbusPoint(name="c", table=ModbusTable.COIL, address=3)
    assert point_decoder(coil)([False, True, False], 1) is True
    assert point_decoder(coil)([0, 0, 1], 2) is True
