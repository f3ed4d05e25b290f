"""Polling plan: coalesce the points of a device into the fewest read requests.

Each Modbus request costs a round trip, so neighbouring points of the same table
are read together: a request grows while the next point starts within
`max_gap` unused units of the current end and the whole span stays within the
protocol limit (125 registers, 2000 bits). Greedy left-to-right packing is
optimal for this interval-cover problem. The plan is a plain value so
benchmarks can count requests per cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from drivers.errors import DriverConfigError
from drivers.modbus.points import ModbusDeviceConfig, ModbusPoint, ModbusTable

__all__ = [
    "MAX_BITS_PER_READ",
    "MAX_REGISTERS_PER_READ",
    "PollPlan",
    "ReadRequest",
    "build_poll_plan",
    "plan_for_device",
]

MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000

_TABLE_ORDER = (
    ModbusTable.COIL,
    ModbusTable.DISCRETE_INPUT,
    ModbusTable.HOLDING_REGISTER,
    ModbusTable.INPUT_REGISTER,
)


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read of `count` consecutive units of `table`, and the points it carries."""

    table: ModbusTable
    address: int
    count: int
    points: tuple[ModbusPoint, ...]

    @property
    def end(self) -> int:
        """First address after the request."""
        return self.address + self.count

    def slice_for(self, point: ModbusPoint) -> slice:
        """Where `point` sits in this request's result."""
        start = point.address - self.address
        return slice(start, start + point.size)


@dataclass(frozen=True, slots=True)
class PollPlan:
    """The read requests of one poll cycle, in table then address order."""

    requests: tuple[ReadRequest, ...]

    @property
    def requests_per_cycle(self) -> int:
        """Requests one poll cycle sends."""
        return len(self.requests)

    @property
    def points(self) -> tuple[ModbusPoint, ...]:
        """Every point the plan reads, each once."""
        return tuple(point for request in self.requests for point in request.points)


def _coalesce(
    table: ModbusTable, points: Sequence[ModbusPoint], max_gap: int, max_count: int
) -> list[ReadRequest]:
    requests: list[ReadRequest] = []
    ordered = sorted(points, key=lambda p: (p.address, p.end))
    group: list[ModbusPoint] = []
    start = end = 0
    for point in ordered:
        if point.size > max_count:
            raise DriverConfigError(
                f"point {point.name!r} spans {point.size} units, more than one read ({max_count})"
            )
        if group and point.address - end <= max_gap and max(end, point.end) - start <= max_count:
            group.append(point)
            end = max(end, point.end)
            continue
        if group:
            requests.append(ReadRequest(table, start, end - start, tuple(group)))
        group = [point]
        start, end = point.address, point.end
    if group:
        requests.append(ReadRequest(table, start, end - start, tuple(group)))
    return requests


def build_poll_plan(
    points: Iterable[ModbusPoint],
    *,
    max_gap_registers: int = MAX_REGISTERS_PER_READ,
    max_gap_bits: int = MAX_BITS_PER_READ,
    max_registers_per_request: int = MAX_REGISTERS_PER_READ,
    max_bits_per_request: int = MAX_BITS_PER_READ,
) -> PollPlan:
    """Coalesce points into read requests, per table, within the given limits."""
    if not 1 <= max_registers_per_request <= MAX_REGISTERS_PER_READ:
        raise DriverConfigError(
            f"max_registers_per_request must be 1..{MAX_REGISTERS_PER_READ}, "
            f"got {max_registers_per_request}"
        )
    if not 1 <= max_bits_per_request <= MAX_BITS_PER_READ:
        raise DriverConfigError(
            f"max_bits_per_request must be 1..{MAX_BITS_PER_READ}, got {max_bits_per_request}"
        )
    if max_gap_registers < 0 or max_gap_bits < 0:
        raise DriverConfigError("max gaps must not be negative")
    by_table: dict[ModbusTable, list[ModbusPoint]] = {table: [] for table in _TABLE_ORDER}
    for point in points:
        by_table[point.table].append(point)
    requests: list[ReadRequest] = []
    for table in _TABLE_ORDER:
        if table.is_bit:
            requests += _coalesce(table, by_table[table], max_gap_bits, max_bits_per_request)
        else:
            requests += _coalesce(
                table, by_table[table], max_gap_registers, max_registers_per_request
            )
    return PollPlan(tuple(requests))


def plan_for_device(config: ModbusDeviceConfig) -> PollPlan:
    """The poll plan for a device config's points and coalescing settings."""
    return build_poll_plan(
        config.points,
        max_gap_registers=config.max_gap_registers,
        max_gap_bits=config.max_gap_bits,
        max_registers_per_request=config.max_registers_per_request,
        max_bits_per_request=config.max_bits_per_request,
    )
