"""Device profiles: shipped files fit their models; bad files give file:line: field errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.errors import DriverConfigError
from drivers.sim import (
    ConveyorModel,
    PlantModel,
    PumpModel,
    SignalKind,
    TankModel,
    create_model,
)
from drivers.sim.profile import (
    ModbusTable,
    ProfileError,
    load_profile,
    parse_profile,
)

PROFILES = Path(__file__).resolve().parents[3] / "configs" / "profiles"
MODELS: dict[str, Callable[[], PlantModel]] = {
    "pump": PumpModel,
    "conveyor": ConveyorModel,
    "tank": TankModel,
}

GOOD_TANK = """\
profile: t
model: tank
modbus:
  points:
    - name: inflow_valve_opening
      table: holding_register
      address: 0
      data_type: UINT16
      scale: 1000
    - name: level_m
      table: input_register
      address: 0
      data_type: INT16
      scale: 1000
      unit: m
opcua:
  nodes:
    - {name: level_m, browse_path: Objects/Plant/Tank1/Level, data_type: Double, unit: m}
"""


def _error(text: str, model: PlantModel | None = None) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source="bad.yaml", model=model)
    return info.value


def test_profiles_are_shipped_for_every_model() -> None:
    """configs/profiles holds a profile for each plant model."""
    kinds = {load_profile(path).model for path in PROFILES.glob("*.yaml")}
    assert kinds == set(MODELS)


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_profile_fits_its_model_and_covers_it(path: Path) -> None:
    """Each shipped profile validates against its model; OPC UA shows every signal, Modbus
    every scalar, and every input is writable over both protocols."""
    profile = load_profile(path)
    model = MODELS[profile.model]()
    assert type(create_model(profile.model)) is type(model)
    assert load_profile(path, model=model) == profile
    opcua_names = {node.name for node in profile.opcua.nodes}
    assert opcua_names == {spec.name for spec in (*model.outputs, *model.inputs)}
    modbus_names = {point.name for point in profile.modbus.points}
    scalars = {s.name for s in (*model.outputs, *model.inputs) if s.kind is not SignalKind.WAVEFORM}
    assert modbus_names == scalars
    writable_modbus = {p.name for p in profile.modbus.points if p.table.is_writable}
    writable_opcua = {n.name for n in profile.opcua.nodes if n.writable}
    inputs = {spec.name for spec in model.inputs}
    assert writable_modbus == inputs
    assert writable_opcua == inputs


def test_good_text_parses_into_frozen_models() -> None:
    """A valid profile yields typed, frozen models."""
    profile = parse_profile(GOOD_TANK, model=TankModel())
    assert profile.modbus.points[0].table is ModbusTable.HOLDING_REGISTER
    assert profile.modbus.unit_id == 1
    with pytest.raises(ValueError, match="frozen"):
        profile.model = "pump"  # type: ignore[misc]


def test_wrong_field_type_names_file_line_and_field() -> None:
    """A non-integer address is reported at its own line with its dotted field path."""
    text = GOOD_TANK.replace("      address: 0\n      data_type: INT16",
                             "      address: zero\n      data_type: INT16")
    error = _error(text)
    assert str(error).startswith("bad.yaml:12: modbus.points[1].address: ")
    assert isinstance(error, DriverConfigError)
    assert error.issues[0].line == 12
    assert error.issues[0].field == "modbus.points[1].address"


def test_unknown_key_and_missing_key_are_located() -> None:
    """An extra key points at its line; a missing key points at its mapping's line."""
    text = GOOD_TANK.replace("      scale: 1000\n    - name: level_m",
                             "      scael: 1000\n    - name: level_m")
    text = text.replace("      table: input_register\n", "")
    error = _error(text)
    by_field = {issue.field: issue.line for issue in error.issues}
    assert by_field["modbus.points[0].scael"] == 9
    assert by_field["modbus.points[1].table"] == 10
    assert "bad.yaml:9: modbus.points[0].scael: Extra inputs are not permitted" in str(error)


def test_bad_enum_in_flow_mapping_is_located() -> None:
    """Errors inside a one-line flow mapping point at that line."""
    text = GOOD_TANK.replace("data_type: Double", "data_type: Real")
    error = _error(text)
    assert str(error).startswith("bad.yaml:18: opcua.nodes[0].data_type: ")


def test_yaml_syntax_error_has_a_line() -> None:
    """Broken YAML is reported with the line where parsing failed."""
    error = _error("profile: t\nmodel: tank\nmodbus:\n  points: [\n")
    assert error.issues[0].line is not None
    assert "invalid YAML" in str(error)
    assert str(error).startswith("bad.yaml:")


def test_overlapping_registers_name_both_points() -> None:
    """A FLOAT32 spans two registers; a point on its second register is rejected."""
    text = """\
profile: p
model: pump
modbus:
  points:
    - {name: vibration_rms_m_s2, table: input_register, address: 8, data_type: FLOAT32, unit: m/s²}
    - {name: flow_m3h, table: input_register, address: 9, data_type: UINT16, scale: 100, unit: m³/h}
    - {name: shaft_speed_rpm, table: coil, address: 0, data_type: UINT16}
"""
    error = _error(text)
    message = str(error)
    assert "bad.yaml:6: modbus.points[1].address: input_register 9 is already used by " \
        "points[0] (vibration_rms_m_s2)" in message
    assert "bad.yaml:7: modbus.points[2].data_type: UINT16 does not fit table coil" in message


def test_profile_that_does_not_fit_its_model_lists_every_problem() -> None:
    """Unknown names, writable outputs, unit and type mismatches are all reported with lines."""
    text = """\
profile: p
model: pump
modbus:
  points:
    - {name: flow_m3h, table: holding_register, address: 0, data_type: UINT16, unit: m³/h}
    - {name: flwo_m3h, table: input_register, address: 0, data_type: UINT16, unit: m³/h}
    - {name: shaft_speed_rpm, table: input_register, address: 1, data_type: UINT16, unit: rps}
    - {name: vibration, table: input_register, address: 2, data_type: FLOAT32, unit: m/s²}
    - {name: speed_command_rpm, table: holding_register, address: 1, data_type: INT16, scale: 100,
       unit: rpm}
opcua:
  nodes:
    - {name: vibration, browse_path: Objects/Plant/P/Vib, data_type: Double, unit: m/s²}
    - {name: flow_m3h, browse_path: Objects/Plant/P/Flow, data_type: Boolean, unit: m³/h,
       writable: true}
"""
    error = _error(text, model=PumpModel())
    lines = str(error).splitlines()
    expected = [
        "bad.yaml:5: modbus.points[0].table: 'flow_m3h' is an output",
        "bad.yaml:6: modbus.points[1].name: 'flwo_m3h' is not a signal of the PumpModel",
        "bad.yaml:7: modbus.points[2].unit: unit 'rps' differs from the model's 'rpm'",
        "bad.yaml:8: modbus.points[3].name: 'vibration' is a waveform",
        "bad.yaml:9: modbus.points[4].scale: speed_command_rpm 1800.0 × 100.0 does not fit INT16",
        "bad.yaml:13: opcua.nodes[0].array: 'vibration': a waveform needs array: true",
        "bad.yaml:15: opcua.nodes[1].writable: 'flow_m3h' is an output, not writable",
        "bad.yaml:14: opcua.nodes[1].data_type: Boolean cannot hold real 'flow_m3h'",
    ]
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), line


def test_browse_paths_must_live_under_plant_and_be_unique() -> None:
    """Browse paths start with Objects/Plant/ and do not repeat."""
    text = """\
profile: p
model: tank
opcua:
  nodes:
    - {name: level_m, browse_path: Objects/Tank1/Level, data_type: Double, unit: m}
"""
    assert str(_error(text)).startswith("bad.yaml:5: opcua.nodes[0].browse_path: ")
    text = """\
profile: p
model: tank
opcua:
  nodes:
    - {name: level_m, browse_path: Objects/Plant/Tank1/Level, data_type: Double, unit: m}
    - {name: inflow_m3_h, browse_path: Objects/Plant/Tank1/Level, data_type: Double}
"""
    assert "bad.yaml:6: opcua.nodes[1].browse_path: duplicate of nodes[0]" in str(_error(text))


def test_unknown_model_kind_is_a_config_error() -> None:
    """create_model rejects a kind it does not know, naming the known ones."""
    with pytest.raises(DriverConfigError, match="conveyor, pump, tank"):
        create_model("boiler")


def test_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    """A profile path that does not exist raises ProfileError naming it."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ProfileError, match=r"nope\.yaml"):
        load_profile(missing)


def test_loaded_file_errors_name_the_real_path(tmp_path: Path) -> None:
    """Errors from a file carry that file's path."""
    path = tmp_path / "tank.yaml"
    path.write_text(GOOD_TANK.replace("model: tank", "model: boiler"), encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value).startswith(f"{path}:2: model: ")
