"""Slice runs of a coalesced Modbus read move the same units as its per-value picks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus import ModbusTable
from fb.io.modbus import RawRead


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 124)), max_size=60,
                unique_by=lambda p: p[0]))
def test_runs_place_units_as_picks_do(picks: list[tuple[int, int]]) -> None:
    """For any picks (value index -> unit offset), the slice runs give the same values."""
    read = RawRead(ModbusTable.HOLDING_REGISTER, 0, 125, tuple(picks))
    units = list(range(1000, 1125))
    by_picks: list[object] = [None] * 41
    for index, offset in picks:
        by_picks[index] = units[offset]
    by_runs: list[object] = [None] * 41
    for dst, src in read.runs:
        by_runs[dst] = units[src]
    assert by_runs == by_picks


def test_evenly_spaced_registers_are_one_run() -> None:
    """Every other register for 50 consecutive values copies in a single slice."""
    read = RawRead(ModbusTable.HOLDING_REGISTER, 100, 99,
                   tuple((i, 2 * i) for i in range(50)))
    assert read.runs == ((slice(0, 50), slice(0, 99, 2)),)
