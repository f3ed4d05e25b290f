"""Polling plan: coalescing within limits, coverage, and the 500-in-1000 property."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DriverConfigError
from drivers.modbus import ModbusDeviceConfig, ModbusPoint, ModbusTable, PollPlan, build_poll_plan
from drivers.modbus.plan import plan_for_device


def registers(addresses: Sequence[int], table: str = "holding_register") -> list[ModbusPoint]:
    return [ModbusPoint(name=f"{table}{a}", table=table, address=a) for a in addresses]


def assert_well_formed(plan: PollPlan, points: Sequence[ModbusPoint]) -> None:
    """Every point is in exactly one request, inside its span, within protocol limits."""
    seen = [p.name for r in plan.requests for p in r.points]
    assert sorted(seen) == sorted(p.name for p in points)
    for request in plan.requests:
        limit = 2000 if request.table.is_bit else 125
        assert 1 <= request.count <= limit
        for point in request.points:
            assert point.table is request.table
            assert request.address <= point.address
            assert point.end <= request.end


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 64535), st.data())
def test_500_registers_over_1000_take_at_most_8_requests(base: int, data: st.DataObject) -> None:
    """500 registers spread over a 1,000-register span take <= 8 requests and all are covered."""
    offsets = data.draw(
        st.lists(st.integers(0, 999), min_size=500, max_size=500, unique=True), label="offsets"
    )
    offsets[0:2] = [0, 999]  # the span is the full 1,000 registers
    offsets = list(dict.fromkeys(offsets))
    points = registers([base + o for o in offsets])
    plan = plan_for_device(ModbusDeviceConfig(points=tuple(points)))
    assert plan.requests_per_cycle <= 8
    assert_well_formed(plan, points)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(ModbusTable)),
            st.integers(0, 5000),
            st.sampled_from(["UINT16", "INT32", "FLOAT64"]),
        ),
        min_size=1,
        max_size=80,
    ),
    st.integers(0, 40),
)
def test_any_register_map_is_covered_within_limits(
    specs: list[tuple[ModbusTable, int, str]], max_gap: int
) -> None:
    """Mixed tables, types and gaps: all points covered, no request over the protocol limit."""
    points = [
        ModbusPoint(
            name=f"p{i}",
            table=table,
            address=address,
            data_type=None if table.is_bit else data_type,
        )
        for i, (table, address, data_type) in enumerate(specs)
    ]
    plan = build_poll_plan(points, max_gap_registers=max_gap, max_gap_bits=max_gap)
    assert_well_formed(plan, points)


def test_gap_limit_splits_requests() -> None:
    """Points 10 registers apart join with max_gap 9 (a 9-register hole) but not with 8."""
    points = registers([0, 10])
    assert build_poll_plan(points, max_gap_registers=9).requests_per_cycle == 1
    assert build_poll_plan(points, max_gap_registers=8).requests_per_cycle == 2


def test_request_size_limit_splits_requests() -> None:
    """126 consecutive registers need two reads; 2000 coils need one, 2001 need two."""
    assert build_poll_plan(registers(range(126))).requests_per_cycle == 2
    assert build_poll_plan(registers(range(2000), "coil")).requests_per_cycle == 1
    assert build_poll_plan(registers(range(2001), "coil")).requests_per_cycle == 2


def test_tables_never_share_a_request() -> None:
    """Holding and input register 0 are two requests; tables come in coil, DI, HR, IR order."""
    points = registers([0], "input_register") + registers([0], "holding_register")
    plan = build_poll_plan(points)
    assert [r.table for r in plan.requests] == [
        ModbusTable.HOLDING_REGISTER,
        ModbusTable.INPUT_REGISTER,
    ]


def test_multi_register_points_keep_their_span() -> None:
    """A FLOAT64 at 0 and a UINT16 at 4 make one 5-register request with the right slices."""
    wide = ModbusPoint(name="w", table="holding_register", address=0, data_type="FLOAT64")
    narrow = ModbusPoint(name="n", table="holding_register", address=4)
    (request,) = build_poll_plan([narrow, wide]).requests
    assert (request.address, request.count) == (0, 5)
    assert request.slice_for(wide) == slice(0, 4)
    assert request.slice_for(narrow) == slice(4, 5)


def test_smaller_request_limit_is_honoured() -> None:
    """A device limited to 10 registers per read gets 10-register requests."""
    plan = build_poll_plan(registers(range(30)), max_registers_per_request=10)
    assert [r.count for r in plan.requests] == [10, 10, 10]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_registers_per_request": 126}, {"max_bits_per_request": 0}, {"max_gap_registers": -1}],
)
def test_bad_limits_are_rejected(kwargs: dict[str, int]) -> None:
    """Limits outside the protocol's range raise DriverConfigError."""
    with pytest.raises(DriverConfigError):
        build_poll_plan(registers([0]), **kwargs)
