"""Modbus TCP driver: register codecs, point model, polling plan, client session,
simulated-PLC server and FORTE's Modbus ID strings, on pymodbus.

Every direct pymodbus call lives in `drivers.modbus._pymodbus`.
"""

from drivers.modbus.codec import (
    ByteOrder,
    DataType,
    PointValue,
    WordOrder,
    apply_scaling,
    decode_registers,
    encode_registers,
    register_count,
    remove_scaling,
)
from drivers.modbus.errors import ModbusExceptionResponse, PointValueError
from drivers.modbus.forte_id import ForteAddressRange, ForteModbusId, parse_forte_modbus_id
from drivers.modbus.plan import PollPlan, ReadRequest, build_poll_plan, plan_for_device
from drivers.modbus.points import (
    DEFAULT_MODBUS_PORT,
    ModbusDeviceConfig,
    ModbusPoint,
    ModbusTable,
    decode_point,
    encode_point,
    load_device_config,
)
from drivers.modbus.server import (
    ModbusServer,
    ModbusServerStatistics,
    PointWrite,
    ServerState,
    WriteCallback,
)
from drivers.modbus.session import (
    ModbusClientSession,
    ModbusSessionStatistics,
    OverflowPolicy,
    PointQuality,
    PointSample,
    SampleCallback,
    SessionState,
)

__all__ = [
    "DEFAULT_MODBUS_PORT",
    "ByteOrder",
    "DataType",
    "ForteAddressRange",
    "ForteModbusId",
    "ModbusClientSession",
    "ModbusDeviceConfig",
    "ModbusExceptionResponse",
    "ModbusPoint",
    "ModbusServer",
    "ModbusServerStatistics",
    "ModbusSessionStatistics",
    "ModbusTable",
    "OverflowPolicy",
    "PointQuality",
    "PointSample",
    "PointValue",
    "PointValueError",
    "PointWrite",
    "PollPlan",
    "ReadRequest",
    "SampleCallback",
    "ServerState",
    "SessionState",
    "WordOrder",
    "WriteCallback",
    "apply_scaling",
    "build_poll_plan",
    "decode_point",
    "decode_registers",
    "encode_point",
    "encode_registers",
    "load_device_config",
    "parse_forte_modbus_id",
    "plan_for_device",
    "register_count",
    "remove_scaling",
]
