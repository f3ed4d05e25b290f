"""The scenario runner: spec validation with file:line errors, a short run, its folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.scenario.spec import load_scenario

REPO = Path(__file__).resolve().parents[2]


def test_shipped_scenarios_validate() -> None:
    """Every scenario folder in scenarios/ loads and validates."""
    folders = [p for p in (REPO / "scenarios").iterdir() if (p / "scenario.yaml").exists()]
    assert folders
    for folder in folders:
        spec, _ = load_scenario(folder)
        assert spec.name


def test_bad_scenario_names_file_line_and_field(tmp_path: Path) -> None:
    """A wrong field gives file:line: field: problem."""
    (tmp_path / "scenario.yaml").write_text(
        "name: x\nduration_s: 5\nplants:\n  - name: p\n    model: boiler\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"scenario.yaml:5: plants\[0\]\.model"):
        load_scenario(tmp_path)


def test_fault_on_unknown_plant_is_rejected(tmp_path: Path) -> None:
    """Cross references are checked: a fault must name a declared plant."""
    (tmp_path / "scenario.yaml").write_text(
        "name: x\nduration_s: 5\nfaults:\n"
        "  - {kind: sensor_stuck, plant: nope, target: flow_m3h, start_s: 1}\n",
        encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown plant"):
        load_scenario(tmp_path)


@pytest.mark.slow
def test_smoke_scenario_runs_and_writes_its_folder(tmp_path: Path) -> None:
    """`testbed run scenarios/smoke` finishes and writes report.json, CSV series and plots."""
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "testbed.cli", "run", str(REPO / "scenarios" / "smoke"),
         "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["scenario"] == "smoke"
    assert report["metrics"]["events_processed"]["value"] > 100
    assert report["metrics"]["events_dropped"]["value"] == 0
    assert {w["fault"] for w in report["fault_windows"]} == {
        "bearing_wear:pump1/outer_race", "broker_outage"}
    vib = (out / "series" / "pump1.vibration_rms_m_s2.csv").read_text().splitlines()
    values = [float(line.split(",")[1]) for line in vib[1:]]
    assert values[-1] > 2 * values[0]  # the bearing wear shows in the vibration
    assert (out / "report.html").exists()
    assert list((out / "plots").glob("*.png"))
    rerender = subprocess.run([sys.executable, "-m", "testbed.cli", "report", str(out)],
                              capture_output=True, text=True, timeout=120, check=False)
    assert rerender.returncode == 0, rerender.stderr


def test_rising_edges_count_alarms_raised_before_a_time() -> None:
    """The probe records each alarm transition as (t, old), (t, new): rises before `before`."""
    from testbed.scenario.runner import rising_edges

    series = [(3.0, 0.0), (3.0, 1.0), (4.0, 1.0), (4.0, 0.0),  # a false alarm at 3 s
              (25.0, 0.0), (25.0, 1.0)]  # the true one after the onset at 20 s
    assert rising_edges(series, before=20.0) == 1
    assert rising_edges(series, before=30.0) == 2
    assert rising_edges(series, before=3.0) == 0
    assert rising_edges([], before=10.0) == 0


def test_a_hole_in_the_ingested_ids_is_one_lost_message_not_two() -> None:
    """283 stored, 282 ingested with id 98 missing: one message lost (was counted twice)."""
    from testbed.scenario.edge import _IngestView

    assert _IngestView(messages=282, id_holes=1).lost(283) == 1
    assert _IngestView(messages=282, id_holes=0).lost(283) == 1  # the last one missing
    assert _IngestView(messages=283, id_holes=0).lost(283) == 0
    assert _IngestView(messages=283, id_holes=2).lost(283) == 2  # ids from elsewhere
