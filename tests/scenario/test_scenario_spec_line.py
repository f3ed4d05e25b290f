"""Scenario file fields the conveyor line added: plant config overrides, recorded series,
and the line monitor (bad input names the file, the plant and the field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.mqtt.sparkplug import DataType, decode_payload
from testbed.errors import ConfigError
from testbed.scenario.line import raw_message_bytes
from testbed.scenario.spec import load_scenario

REPO = Path(__file__).resolve().parents[2]


def _scenario(tmp_path: Path, plant: str, monitor: str = "") -> Path:
    (tmp_path / "app.yaml").write_text("name: A\nfbs: {}\n", encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(
        "name: x\nduration_s: 5\nplants:\n"
        f"  - {{name: belt, model: conveyor, plc: true, {plant}}}\n"
        "edges:\n  - name: e\n    application: app.yaml\n" + monitor, encoding="utf-8")
    return tmp_path


def test_plant_config_overrides_and_series_are_loaded(tmp_path: Path) -> None:
    """`config` and `series` reach the spec as written."""
    spec, _ = load_scenario(_scenario(
        tmp_path, "config: {arrival_rate_per_s: 2.0}, series: [belt_speed_m_s]"))
    assert spec.plants[0].config == {"arrival_rate_per_s": 2.0}
    assert spec.plants[0].series == ["belt_speed_m_s"]


def test_unknown_config_field_names_the_plant_and_field(tmp_path: Path) -> None:
    """A configuration field the model does not have is refused at validation."""
    with pytest.raises(ConfigError, match=r"scenario.yaml: plant belt: config: .*belt_colour"):
        load_scenario(_scenario(tmp_path, "config: {belt_colour: 3}"))


def test_unknown_series_name_is_refused(tmp_path: Path) -> None:
    """A series naming no model value is refused, listing the values there are."""
    with pytest.raises(ConfigError, match=r"plant belt: series: unknown value\(s\) \['nope'\]"):
        load_scenario(_scenario(tmp_path, "series: [nope]"))


def test_line_monitor_needs_its_event_paths(tmp_path: Path) -> None:
    """A line monitor missing a field gives file:line: field."""
    monitor = ("    monitor:\n      plant: belt\n      line:\n        sense: L.Sense.IND\n")
    with pytest.raises(ConfigError, match=r"scenario.yaml:\d+: edges\[0\]\.monitor\.line\.decide"):
        load_scenario(_scenario(tmp_path, "scan_ms: 20", monitor))


def test_raw_message_is_a_real_ddata_payload_of_one_value() -> None:
    """The raw stream's price is the size of a decodable payload carrying the value."""
    from drivers.mqtt.sparkplug import Metric, Payload, encode_payload, message_id_uuid

    size = raw_message_bytes(3, DataType.UINT16, 1234, 1_790_000_000_000, 200, 77)
    payload = Payload(timestamp_ms=1_790_000_000_000, seq=200, uuid=message_id_uuid(77),
                      metrics=(Metric(name=None, alias=3, datatype=DataType.UINT16, value=1234,
                                      timestamp_ms=1_790_000_000_000),))
    data = encode_payload(payload)
    assert size == len(data)
    decoded = decode_payload(data)
    assert decoded.metrics[0].value == 1234
    assert decoded.message_id == 77
    assert raw_message_bytes(1, DataType.BOOLEAN, True, 1_790_000_000_000, 5, 1) < size
