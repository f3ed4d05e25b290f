"""The testbed 4.0 edge AI loop on the virtual clock (scenarios/testbed40-virtual): vibration
blocks of a bare pump -> features -> inline ONNX detector -> debounced derate -> the pump's
speed command, reproducible run to run; ONNX FBs on an executor thread still refused."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.scenario.runner import RunResult, ScenarioRunner
from testbed.scenario.spec import ScenarioSpec, load_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "testbed40-virtual"
_SHORT_S = 24.0
"""A short run: the wear starts at 20 s, the alarm and the derate follow within it."""


async def _run(spec: ScenarioSpec, out: Path) -> RunResult:
    return await ScenarioRunner(spec, SCENARIO, out).run()


def _values(run_dir: Path) -> dict[str, object]:
    """Every report value except the process CPU/RSS metrics and the wall-time header keys."""
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    metrics = {name: m.get("value") for name, m in report["metrics"].items()
               if not name.startswith(("edge_cpu_pct", "edge_rss_mb"))}
    header = {k: v for k, v in report.items()
              if k not in ("metrics", "wall_time_s", "started_at")}
    return {"metrics": metrics, "header": header}


def _csv(run_dir: Path, name: str) -> str:
    return (run_dir / "series" / f"{name}.csv").read_text(encoding="utf-8")


def _points(run_dir: Path, name: str) -> list[tuple[float, float]]:
    rows = _csv(run_dir, name).splitlines()[1:]
    return [(float(t), float(v)) for t, v in (row.split(",") for row in rows)]


@dataclass(frozen=True, slots=True)
class _TimedRun:
    result: RunResult
    wall_s: float


@pytest.fixture(scope="module")
def spec() -> ScenarioSpec:
    loaded, _ = load_scenario(SCENARIO)
    return loaded.model_copy(update={"duration_s": _SHORT_S})


@pytest.fixture(scope="module")
def first_run(spec: ScenarioSpec, tmp_path_factory: pytest.TempPathFactory) -> _TimedRun:
    """One short run of testbed40-virtual, shared by the tests that only read it."""
    started = time.monotonic()
    result = asyncio.run(_run(spec, tmp_path_factory.mktemp("pdm") / "run"))
    return _TimedRun(result, time.monotonic() - started)


async def test_same_seed_gives_the_same_detection_and_scores(spec: ScenarioSpec,
                                                             first_run: _TimedRun,
                                                             tmp_path: Path) -> None:
    """Two runs with the same seed: identical report values (detection_delay_s, inference
    counts; CPU/RSS and wall time aside) and identical anomaly-score, alarm and setpoint
    series."""
    first = first_run.result.run_dir
    second = (await _run(spec, tmp_path / "b")).run_dir
    values = _values(first)
    metrics = values["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["detection_delay_s"] is not None
    assert metrics["inferences_inline"] == metrics["daq_blocks"] == round(_SHORT_S / 0.1)
    assert values == _values(second)
    for name in ("anomaly_score", "alarm", "setpoint_rpm", "pump1.shaft_speed_rpm"):
        assert _csv(first, name) == _csv(second, name), name
    assert len(_points(first, "anomaly_score")) == metrics["inferences_inline"]


def test_the_derate_reaches_the_plant(first_run: _TimedRun) -> None:
    """The wear from 20 s raises the anomaly score, the debounced alarm follows within the
    scenario's bound and the derated setpoint slows the pump (written into its command)."""
    run = first_run.result.run_dir
    metrics = first_run.result.report["metrics"]
    delay = metrics["detection_delay_s"]["value"]
    assert 0 < delay <= 10
    # healthy until the wear at 20 s, monitored from the first verdict: no false alarm
    assert 19.0 < metrics["healthy_monitored_s"]["value"] <= 20.0
    assert metrics["false_alarms_per_h"]["value"] == 0
    alarm_at = metrics["first_alarm_s"]["value"]
    assert _points(run, "setpoint_rpm") == [(alarm_at, 1400.0)]
    assert metrics["setpoints_written"]["value"] == metrics["inferences_inline"]["value"]
    scores = _points(run, "anomaly_score")
    healthy = max(v for t, v in scores if t <= 20.0)
    worn = min(v for t, v in scores if t >= alarm_at)
    assert worn > healthy
    speed = _points(run, "pump1.shaft_speed_rpm")
    before = [v for t, v in speed if 10.0 <= t <= alarm_at]
    after = [v for t, v in speed if t >= alarm_at + 2.0]
    assert after
    assert before
    assert max(after) < min(before) - 200  # 1750 -> 1400 rpm command, minus slip


async def test_another_seed_gives_other_scores(spec: ScenarioSpec, first_run: _TimedRun,
                                               tmp_path: Path) -> None:
    """A different seed (plant noise) gives a different anomaly-score series."""
    other = await _run(spec.model_copy(update={"seed": spec.seed + 1}), tmp_path / "c")
    assert _csv(other.run_dir, "anomaly_score") != _csv(first_run.result.run_dir,
                                                        "anomaly_score")


def test_virtual_time_runs_faster_than_real_time(first_run: _TimedRun) -> None:
    """The short run finishes in less real time than its virtual duration."""
    assert first_run.result.report["clock"] == "virtual"
    assert first_run.result.report["duration_s"] == _SHORT_S
    assert first_run.wall_s < _SHORT_S


def _copy_scenario(tmp_path: Path, *, app_mode: str | None, parameter_mode: str | None) -> None:
    """testbed40-virtual in tmp_path, with the ONNX FB's MODE set in the application and/or
    by a scenario parameter."""
    app = (SCENARIO / "app.yaml").read_text(encoding="utf-8")
    app = app.replace("MODE: inline", f"MODE: {app_mode}") if app_mode else \
        app.replace(", MODE: inline", "")
    (tmp_path / "app.yaml").write_text(app, encoding="utf-8")
    scenario = (SCENARIO / "scenario.yaml").read_text(encoding="utf-8").replace(
        "../testbed40-predictive-maintenance/types",
        str(REPO / "scenarios" / "testbed40-predictive-maintenance" / "types"))
    if parameter_mode is not None:
        scenario = scenario.replace(
            "      PdM.Infer.MODEL: ${model.bearing_detector}\n",
            "      PdM.Infer.MODEL: ${model.bearing_detector}\n"
            f"      PdM.Infer.MODE: {parameter_mode}\n")
    (tmp_path / "scenario.yaml").write_text(scenario, encoding="utf-8")


@pytest.mark.parametrize(("app_mode", "parameter_mode"), [
    (None, None), ("executor", None), ("auto", None), ("inline", "executor")])
def test_onnx_on_an_executor_thread_is_refused(app_mode: str | None,
                                               parameter_mode: str | None,
                                               tmp_path: Path) -> None:
    """ONNX_INFER with MODE auto (the default) or executor, in the application or set by a
    scenario parameter, is refused on the virtual clock naming the file, the edge's
    `application` line and the FB."""
    _copy_scenario(tmp_path, app_mode=app_mode, parameter_mode=parameter_mode)
    with pytest.raises(ConfigError) as err:
        load_scenario(tmp_path)
    message = str(err.value)
    line = next(i for i, text in enumerate(
        (tmp_path / "scenario.yaml").read_text(encoding="utf-8").splitlines(), start=1)
        if "application: app.yaml" in text)
    assert re.search(rf"scenario.yaml:{line}: edges\[0\].application: needs the real clock.*"
                     r"PdM.Infer \(ONNX_INFER_1_2\) runs its model on an executor thread",
                     message), message


def test_inline_mode_by_scenario_parameter_is_allowed(tmp_path: Path) -> None:
    """MODE inline set by a scenario parameter (the application leaving the default) is
    what the FB runs with, so the scenario loads."""
    _copy_scenario(tmp_path, app_mode=None, parameter_mode="inline")
    load_scenario(tmp_path)



def test_unknown_daq_speed_value_is_refused(tmp_path: Path) -> None:
    """monitor.daq_speed naming no value of the plant is refused when the file loads,
    naming its line and listing the plant's values."""
    _copy_scenario(tmp_path, app_mode="inline", parameter_mode=None)
    file = tmp_path / "scenario.yaml"
    text = file.read_text(encoding="utf-8").replace("daq_speed: shaft_speed_rpm",
                                                    "daq_speed: shaft_rpm")
    file.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "shaft_rpm" in row)
    with pytest.raises(ConfigError, match=rf"scenario.yaml:{line}: edges\[0\].monitor.daq_speed: "
                                          r"plant pump1 has no value 'shaft_rpm'; values: "
                                          r".*shaft_speed_rpm"):
        load_scenario(tmp_path)
