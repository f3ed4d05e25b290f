"""The point model: what a register map says about each value, and a device's settings.

A `ModbusPoint` names one value of a device (table, address, raw type, word and
byte order, scaling, unit, writability), close to how EdgeX device profiles
describe Modbus resources. `ModbusDeviceConfig` bundles the connection, the
polling settings and the points of one device. Both are frozen pydantic models
that reject unknown fields.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.errors import DriverConfigError
from drivers.modbus.codec import (
    ByteOrder,
    DataType,
    PointValue,
    WordOrder,
    apply_scaling,
    decode_registers,
    encode_registers,
    register_count,
    register_decoder,
    remove_scaling,
)
from drivers.modbus.errors import PointValueError

__all__ = [
    "DEFAULT_MODBUS_PORT",
    "ModbusDeviceConfig",
    "ModbusPoint",
    "ModbusTable",
    "PointDecoder",
    "decode_point",
    "encode_point",
    "load_device_config",
    "point_decoder",
]

DEFAULT_MODBUS_PORT = 5020
"""Default port for people (502 needs root); tests always bind port 0."""

MAX_ADDRESS = 0xFFFF


class ModbusTable(enum.StrEnum):
    """The four Modbus data tables."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING_REGISTER = "holding_register"
    INPUT_REGISTER = "input_register"

    @property
    def is_bit(self) -> bool:
        """True for the single-bit tables (coils, discrete inputs)."""
        return self in (ModbusTable.COIL, ModbusTable.DISCRETE_INPUT)

    @property
    def is_client_writable(self) -> bool:
        """True for the tables a client can write (coils, holding registers)."""
        return self in (ModbusTable.COIL, ModbusTable.HOLDING_REGISTER)


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ModbusPoint(BaseModel):
    """One named value of a device's register map."""

    model_config = _FROZEN

    name: Annotated[str, Field(min_length=1)]
    table: ModbusTable
    address: Annotated[int, Field(ge=0, le=MAX_ADDRESS)]
    data_type: DataType = DataType.UINT16
    """Raw type; defaults to BOOL on bit tables and UINT16 on register tables."""
    length: Annotated[int, Field(ge=1, le=125)] = 1
    """Registers of a STRING point (2 bytes each); 1 for every other type."""
    word_order: WordOrder = WordOrder.BIG
    byte_order: ByteOrder = ByteOrder.BIG
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    writable: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_data_type(cls, data: Any) -> Any:
        # raw input (dict from kwargs or YAML) is untyped until validated
        if isinstance(data, dict) and data.get("data_type") is None:
            table = data.get("table")
            if table in (ModbusTable.COIL.value, ModbusTable.DISCRETE_INPUT.value):
                data = {**data, "data_type": DataType.BOOL}
            elif table is not None:
                data = {**data, "data_type": DataType.UINT16}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        data_type = self.data_type
        if self.table.is_bit and data_type is not DataType.BOOL:
            raise ValueError(f"point {self.name!r}: {self.table} holds BOOL only, not {data_type}")
        if not self.table.is_bit and data_type is DataType.BOOL:
            raise ValueError(f"point {self.name!r}: BOOL belongs in a coil or discrete input")
        if self.length != 1 and data_type is not DataType.STRING:
            raise ValueError(f"point {self.name!r}: length applies to STRING points only")
        if self.writable and not self.table.is_client_writable:
            raise ValueError(f"point {self.name!r}: a {self.table} cannot be written by a client")
        if not math.isfinite(self.scale) or self.scale == 0.0:
            raise ValueError(f"point {self.name!r}: scale must be finite and non-zero")
        if not math.isfinite(self.offset):
            raise ValueError(f"point {self.name!r}: offset must be finite")
        if (self.scale != 1.0 or self.offset != 0.0) and data_type is DataType.STRING:
            raise ValueError(f"point {self.name!r}: STRING points cannot be scaled")
        if self.end > MAX_ADDRESS + 1:
            raise ValueError(
                f"point {self.name!r}: {self.size} units from address {self.address} "
                f"run past {MAX_ADDRESS}"
            )
        return self

    @property
    def size(self) -> int:
        """Registers (or bits, on bit tables) the point occupies."""
        return register_count(self.data_type, self.length)

    @property
    def end(self) -> int:
        """First address after the point."""
        return self.address + self.size


def decode_point(point: ModbusPoint, units: Sequence[int] | Sequence[bool]) -> PointValue:
    """Engineering value of a point from its registers (or its single bit)."""
    if point.table.is_bit:
        return bool(units[0])
    raw = decode_registers(
        [int(unit) for unit in units],
        point.data_type,
        word_order=point.word_order,
        byte_order=point.byte_order,
    )
    if isinstance(raw, str):
        return raw
    return apply_scaling(raw, point.scale, point.offset)


PointDecoder = Callable[[Sequence[int] | Sequence[bool], int], PointValue]
"""`decoder(units, start)`: the point's value from the units of a read, its first at `start`."""


def point_decoder(point: ModbusPoint) -> PointDecoder:
    """`decode_point` for one point, dispatched once: poll plans build one per point, so a
    poll cycle spends no per-value time on type, order and scaling choices."""
    if point.table.is_bit:
        return lambda units, start: bool(units[start])
    if point.data_type is DataType.STRING:
        size = point.size
        return lambda units, start: decode_point(point, units[start : start + size])
    raw = register_decoder(point.data_type, word_order=point.word_order,
                           byte_order=point.byte_order)
    scale, offset = point.scale, point.offset
    if scale == 1.0 and offset == 0.0:
        return raw
    return lambda units, start: raw(units, start) * scale + offset


def encode_point(point: ModbusPoint, value: PointValue) -> list[int] | list[bool]:
    """Registers (or the single bit) that carry an engineering value of a point."""
    if point.table.is_bit:
        if not isinstance(value, bool | int) or (isinstance(value, int) and value not in (0, 1)):
            raise PointValueError(f"point {point.name!r} needs a BOOL, got {value!r}")
        return [bool(value)]
    if point.data_type is DataType.STRING:
        raw: PointValue = value
    else:
        if isinstance(value, str):
            raise PointValueError(f"point {point.name!r} needs a number, got {value!r}")
        raw = remove_scaling(value, point.data_type, point.scale, point.offset)
    try:
        return encode_registers(
            raw,
            point.data_type,
            word_order=point.word_order,
            byte_order=point.byte_order,
            string_registers=point.length,
        )
    except PointValueError as exc:
        raise PointValueError(f"point {point.name!r}: {exc}") from exc


class ModbusDeviceConfig(BaseModel):
    """Connection, polling settings and register map of one Modbus TCP device."""

    model_config = _FROZEN

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_MODBUS_PORT
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1
    connect_timeout_s: Annotated[float, Field(gt=0, le=300)] = 3.0
    request_timeout_s: Annotated[float, Field(gt=0, le=300)] = 1.0
    poll_interval_s: Annotated[float, Field(gt=0, le=86400)] = 1.0
    max_gap_registers: Annotated[int, Field(ge=0, le=125)] = 125
    """Unused registers a read may bridge to join two points into one request."""
    max_gap_bits: Annotated[int, Field(ge=0, le=2000)] = 2000
    max_registers_per_request: Annotated[int, Field(ge=1, le=125)] = 125
    max_bits_per_request: Annotated[int, Field(ge=1, le=2000)] = 2000
    reconnect_initial_s: Annotated[float, Field(gt=0, le=60)] = 0.1
    reconnect_max_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    points: tuple[ModbusPoint, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        seen: set[str] = set()
        for point in self.points:
            if point.name in seen:
                raise ValueError(f"point name {point.name!r} is used twice")
            seen.add(point.name)
            if not point.table.is_bit and point.size > self.max_registers_per_request:
                raise ValueError(
                    f"point {point.name!r} spans {point.size} registers, more than "
                    f"max_registers_per_request={self.max_registers_per_request}"
                )
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be at least reconnect_initial_s")
        return self

    def point(self, name: str) -> ModbusPoint:
        """The point called `name` (DriverConfigError naming the known points if absent)."""
        for point in self.points:
            if point.name == name:
                return point
        known = ", ".join(sorted(p.name for p in self.points)) or "none"
        raise DriverConfigError(f"unknown Modbus point {name!r} (known: {known})")


def load_device_config(data: Mapping[str, Any], *, source: str = "<config>") -> ModbusDeviceConfig:
    """Validate a mapping (e.g. parsed YAML) into a config; errors name the source and field."""
    # the mapping comes from YAML/JSON, whose values are untyped by nature
    try:
        return ModbusDeviceConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}"
            for error in exc.errors()
        )
        raise DriverConfigError(f"{source}: invalid Modbus device config: {problems}") from exc
