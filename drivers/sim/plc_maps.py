"""How a device profile becomes the two servers of a simulated PLC.

`modbus_register_map` turns the profile's points into `drivers.modbus` points (one server
point per address, so a signal may appear twice, e.g. a command and its readback);
`opcua_address_space` turns the node map into an `AddressSpaceSpec` under `Plant`, with
engineering units, EU ranges from the model's signal ranges, a `Status` object and the
`Start`/`Stop`/`Reset` methods; a waveform becomes a one-dimensional array node as long
as the model's block. Profile scale means raw = value x scale; the Modbus
driver's scale means value = raw x scale, so it is inverted here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from drivers.modbus import DataType, WordOrder
from drivers.modbus import ModbusPoint as ServerPoint
from drivers.modbus import ModbusTable as ServerTable
from drivers.opcua import (
    AddressSpaceSpec,
    EngineeringUnitsSpec,
    MethodSpec,
    ObjectSpec,
    VariableSpec,
)
from drivers.sim.model import PlantModel, SignalSpec, Waveform
from drivers.sim.profile import DeviceProfile, OpcUaNode

__all__ = [
    "METHOD_NAMES",
    "STATUS_MODEL_TIME",
    "STATUS_RUNNING",
    "STATUS_SCANS",
    "ModbusBinding",
    "OpcUaBinding",
    "modbus_register_map",
    "opcua_address_space",
]

METHOD_NAMES = ("Start", "Stop", "Reset")
"""Methods every simulated PLC offers under `Objects/Plant`."""
STATUS_RUNNING = "Plant/Status/Running"
STATUS_SCANS = "Plant/Status/ScanCount"
STATUS_MODEL_TIME = "Plant/Status/ModelTime"


@dataclass(frozen=True, slots=True)
class ModbusBinding:
    """One server point and the model signal it carries."""

    point: ServerPoint
    signal: str
    is_command: bool
    """True for holding registers and coils: clients write the model input here."""


@dataclass(frozen=True, slots=True)
class OpcUaBinding:
    """One OPC UA variable (server path `Plant/...`) and the model signal it carries."""

    path: str
    signal: str
    data_type: str
    is_command: bool
    array: bool = False
    """True for a waveform: a one-dimensional array node holding the latest block."""


def modbus_register_map(profile: DeviceProfile) -> tuple[ModbusBinding, ...]:
    """Server points for the profile's Modbus map, named `<table>:<address>`."""
    word_order = WordOrder(profile.modbus.word_order)
    bindings = []
    for point in profile.modbus.points:
        table = ServerTable(point.table.value)
        writable = table.is_client_writable
        server_point = ServerPoint(
            name=f"{table.value}:{point.address}",
            table=table,
            address=point.address,
            data_type=DataType(point.data_type.value),
            word_order=word_order,
            scale=1.0 / point.scale,
            unit=point.unit,
            writable=writable and table is ServerTable.HOLDING_REGISTER,
        )
        bindings.append(ModbusBinding(server_point, point.name, writable))
    return tuple(bindings)


def opcua_address_space(
    profile: DeviceProfile, model: PlantModel
) -> tuple[AddressSpaceSpec, tuple[OpcUaBinding, ...]]:
    """The address space of the profile's node map plus status and methods."""
    signals: dict[str, SignalSpec] = {s.name: s for s in (*model.outputs, *model.inputs)}
    state = model.state()
    tree: dict[str, object] = {}
    bindings: list[OpcUaBinding] = []
    for node in profile.opcua.nodes:
        segments = node.browse_path.split("/")[1:]  # drop "Objects"
        spec = signals[node.name]
        if node.array:
            _insert(tree, segments, _waveform_variable(node, spec, state.waveforms[node.name]))
            bindings.append(OpcUaBinding("/".join(segments), node.name, node.data_type.value,
                                         False, array=True))
            continue
        initial: bool | int | float = (
            state[node.name] if node.name in state.values or node.name in state.inputs else 0
        )
        if node.data_type == "Boolean":
            initial = bool(initial)
        elif node.data_type in ("Float", "Double"):
            initial = float(initial)
        else:
            initial = int(initial)
        eu_range = (
            (spec.minimum, spec.maximum)
            if spec.minimum is not None and spec.maximum is not None
            else None
        )
        variable = VariableSpec(
            name=segments[-1],
            data_type=node.data_type.value,
            initial=initial,
            writable=node.writable,
            description=spec.description,
            engineering_units=EngineeringUnitsSpec(display_name=node.unit) if node.unit else None,
            eu_range=eu_range,
        )
        _insert(tree, segments, variable)
        bindings.append(
            OpcUaBinding("/".join(segments), node.name, node.data_type.value, node.writable)
        )
    status = ObjectSpec(
        name="Status",
        description="PLC program state",
        children=(
            VariableSpec(name="Running", data_type="Boolean", initial=True),
            VariableSpec(name="ScanCount", data_type="UInt64", initial=0),
            VariableSpec(
                name="ModelTime",
                data_type="Double",
                initial=0.0,
                engineering_units=EngineeringUnitsSpec(display_name="s"),
            ),
        ),
    )
    plant_children = _build(tree.get("Plant", {}))
    methods = tuple(MethodSpec(name=name, description=_METHOD_DOCS[name]) for name in METHOD_NAMES)
    plant = ObjectSpec(
        name="Plant",
        description=profile.description or profile.profile,
        children=(*plant_children, status, *methods),
    )
    return AddressSpaceSpec(nodes=(plant,)), tuple(bindings)


_METHOD_DOCS: Mapping[str, str] = {
    "Start": "put the PLC program in RUN: client commands reach the actuators",
    "Stop": "put the PLC program in STOP: actuators go to their minimum, the plant coasts",
    "Reset": "restore the initial commands and remove every fault",
}


def _waveform_variable(node: OpcUaNode, spec: SignalSpec, block: Waveform) -> VariableSpec:
    """A fixed-length array variable holding one block (ValueRank 1, ArrayDimensions n)."""
    return VariableSpec(
        name=node.browse_path.rsplit("/", 1)[-1],
        data_type=node.data_type.value,
        dimensions=(len(block.samples),),
        initial=tuple(block.samples.tolist()),
        description=f"{spec.description}; latest block of {len(block.samples)} samples "
        f"at {block.sample_rate_hz:g} Hz",
        engineering_units=EngineeringUnitsSpec(display_name=node.unit) if node.unit else None,
    )


def _insert(tree: dict[str, object], segments: Sequence[str], leaf: VariableSpec) -> None:
    node = tree
    for segment in segments[:-1]:
        child = node.setdefault(segment, {})
        assert isinstance(child, dict)
        node = child
    node[segments[-1]] = leaf


def _build(subtree: object) -> tuple[ObjectSpec | VariableSpec, ...]:
    if not isinstance(subtree, dict):
        return ()
    children: list[ObjectSpec | VariableSpec] = []
    for name, child in subtree.items():
        if isinstance(child, VariableSpec):
            children.append(child)
        else:
            children.append(ObjectSpec(name=name, children=_build(child)))
    return tuple(children)

