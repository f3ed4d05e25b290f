"""`check_applications`: a scenario's edge applications load and the pins it names exist."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.scenario.check import check_applications
from testbed.scenario.spec import load_scenario

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "scenarios" / "testbed40-predictive-maintenance"


def test_shipped_scenarios_load_their_applications() -> None:
    """Every shipped scenario's applications (site scenarios included) load and resolve."""
    for folder in sorted((REPO / "scenarios").iterdir()):
        file = folder / "scenario.yaml"
        if file.exists():
            spec, _ = load_scenario(folder)
            assert check_applications(spec, file) >= 1, folder.name


def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "scenario"
    shutil.copytree(DEFAULT, folder)
    file = folder / "scenario.yaml"
    text = file.read_text(encoding="utf-8")
    assert old in text
    file.write_text(text.replace(old, new, 1), encoding="utf-8")
    return file


def test_a_misspelt_parameter_pin_names_file_edge_and_field(tmp_path: Path) -> None:
    """A parameter for a pin the application lacks fails before any run, with a suggestion."""
    file = _copy_with(tmp_path, "PdM.Drive.DEVICE:", "PdM.Drive.DEVCE:")
    spec, _ = load_scenario(file)
    with pytest.raises(ConfigError) as err:
        check_applications(spec, file)
    text = str(err.value)
    assert f"{file}: edge edge1: parameters.PdM.Drive.DEVCE" in text
    assert "DEVICE" in text  # the nearest pin


def test_a_monitor_point_on_a_missing_fb_is_refused(tmp_path: Path) -> None:
    """A monitor event on an FB the application does not have names the monitor field."""
    file = _copy_with(tmp_path, "inference: PdM.Infer.CNF", "inference: PdM.Infr.CNF")
    spec, _ = load_scenario(file)
    with pytest.raises(ConfigError, match=r"edge edge1: monitor\.inference"):
        check_applications(spec, file)
