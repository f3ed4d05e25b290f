"""Point model and device config validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from drivers.errors import DriverConfigError
from drivers.modbus import DataType, ModbusDeviceConfig, ModbusPoint, load_device_config


def test_data_type_defaults_follow_the_table() -> None:
    """Coils and discrete inputs default to BOOL, registers to UINT16."""
    assert ModbusPoint(name="c", table="coil", address=0).data_type is DataType.BOOL
    assert ModbusPoint(name="h", table="holding_register", address=0).data_type is DataType.UINT16
    assert (
        ModbusPoint(name="s", table="input_register", address=0, data_type="STRING", length=3).size
        == 3
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"table": "coil", "data_type": "INT16"}, "holds BOOL only"),
        ({"table": "holding_register", "data_type": "BOOL"}, "BOOL belongs in a coil"),
        ({"table": "input_register", "writable": True}, "cannot be written by a client"),
        ({"table": "holding_register", "length": 2}, "length applies to STRING"),
        ({"table": "holding_register", "scale": 0.0}, "scale must be finite and non-zero"),
        ({"table": "holding_register", "address": 65535, "data_type": "INT32"}, "run past 65535"),
        ({"table": "holding_register", "address": -1}, "greater than or equal to 0"),
        ({"table": "holding_register", "colour": "red"}, "Extra inputs are not permitted"),
        ({"table": "register"}, "Input should be"),
    ],
)
def test_bad_points_are_rejected_with_the_reason(fields: dict[str, object], message: str) -> None:
    """Each inconsistent point definition fails validation naming what is wrong."""
    with pytest.raises(ValidationError, match=message):
        ModbusPoint.model_validate({"name": "p", "address": 0, **fields})


def test_points_are_frozen() -> None:
    """A point cannot be changed after creation."""
    point = ModbusPoint(name="p", table="coil", address=0)
    with pytest.raises(ValidationError):
        point.address = 3


def test_device_config_rejects_duplicate_names() -> None:
    """Two points with one name are an error."""
    point = ModbusPoint(name="p", table="coil", address=0)
    with pytest.raises(ValidationError, match="used twice"):
        ModbusDeviceConfig(points=(point, point))


def test_load_device_config_names_source_and_field() -> None:
    """Errors from a mapping name the source and the dotted field path."""
    data = {
        "host": "plc1",
        "port": 502,
        "points": [{"name": "a", "table": "holding_register", "address": 70000}],
    }
    with pytest.raises(DriverConfigError, match=r"plant\.yaml: .*points\.0\.address"):
        load_device_config(data, source="plant.yaml")
    with pytest.raises(DriverConfigError, match="poll_interval_s"):
        load_device_config({"poll_interval_s": 0})


def test_load_device_config_accepts_a_profile() -> None:
    """A valid mapping becomes a frozen config with typed points."""
    config = load_device_config(
        {
            "host": "10.0.0.5",
            "unit_id": 3,
            "poll_interval_s": 0.25,
            "points": [
                {
                    "name": "temp",
                    "table": "input_register",
                    "address": 0,
                    "data_type": "FLOAT32",
                    "word_order": "little",
                    "unit": "degC",
                },
            ],
        }
    )
    assert config.point("temp").unit == "degC"
    assert config.port == 5020
    with pytest.raises(DriverConfigError, match="unknown Modbus point 'tmp' \\(known: temp\\)"):
        config.point("tmp")
