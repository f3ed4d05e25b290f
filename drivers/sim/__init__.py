"""Plant models for the simulated PLCs: pump with bearing wear, conveyor line, tank.

Models step in fixed `dt_s`, publish frozen `PlantState` snapshots, accept named inputs,
draw all noise from seeded generators and take faults at run time; `PlantRunner` steps one
on a real or virtual clock; device profiles map a model's values to Modbus and OPC UA.
"""

from drivers.sim.bearing import (
    SKF_6205,
    BearingFault,
    BearingGeometry,
    DefectFrequencies,
    VibrationConfig,
    VibrationGenerator,
    defect_frequencies,
    defect_orders,
)
from drivers.sim.clock import Clock, ManualClock, MonotonicClock
from drivers.sim.conveyor import ConveyorConfig, ConveyorItem, ConveyorModel, PhotoEyeConfig
from drivers.sim.factory import ModelKind, create_model
from drivers.sim.faults import SENSOR_FAULT_KINDS, FaultKind, FaultSchedule, FaultSpec, WearSeverity
from drivers.sim.model import (
    PLC_TARGET,
    PlantModel,
    PlantState,
    ProcessValue,
    ScalarValue,
    SignalKind,
    SignalSpec,
    Waveform,
)
from drivers.sim.profile import (
    DeviceProfile,
    ModbusDataType,
    ModbusMap,
    ModbusPoint,
    ModbusTable,
    OpcUaDataType,
    OpcUaMap,
    OpcUaNode,
    ProfileError,
    ProfileIssue,
    check_profile,
    load_profile,
    parse_profile,
)
from drivers.sim.pump import PumpConfig, PumpModel
from drivers.sim.runner import PlantRunner, RunnerState, RunnerStatistics
from drivers.sim.tank import TankConfig, TankModel

__all__ = [
    "PLC_TARGET",
    "SENSOR_FAULT_KINDS",
    "SKF_6205",
    "BearingFault",
    "BearingGeometry",
    "Clock",
    "ConveyorConfig",
    "ConveyorItem",
    "ConveyorModel",
    "DefectFrequencies",
    "DeviceProfile",
    "FaultKind",
    "FaultSchedule",
    "FaultSpec",
    "ManualClock",
    "ModbusDataType",
    "ModbusMap",
    "ModbusPoint",
    "ModbusTable",
    "ModelKind",
    "MonotonicClock",
    "OpcUaDataType",
    "OpcUaMap",
    "OpcUaNode",
    "PhotoEyeConfig",
    "PlantModel",
    "PlantRunner",
    "PlantState",
    "ProcessValue",
    "ProfileError",
    "ProfileIssue",
    "PumpConfig",
    "PumpModel",
    "RunnerState",
    "RunnerStatistics",
    "ScalarValue",
    "SignalKind",
    "SignalSpec",
    "TankConfig",
    "TankModel",
    "VibrationConfig",
    "VibrationGenerator",
    "Waveform",
    "WearSeverity",
    "check_profile",
    "create_model",
    "defect_frequencies",
    "defect_orders",
    "load_profile",
    "parse_profile",
]
