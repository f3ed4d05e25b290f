"""Scenarios on the virtual clock: reproducible, faster than real time, faults at their
virtual times, and every part that needs the real clock refused when the file loads."""

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
SCENARIO = REPO / "scenarios" / "smoke-virtual"
_WALL_CLOCK_SERIES = {"edge_cpu_pct", "edge_rss_mb"}
"""Series and metrics measured on the process, not on the virtual clock."""


async def _run(spec: ScenarioSpec, folder: Path, out: Path) -> RunResult:
    return await ScenarioRunner(spec, folder, out).run()


def _values(run_dir: Path) -> dict[str, object]:
    """Every report value except the process CPU/RSS metrics and the wall-time header keys."""
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    metrics = {name: m.get("value") for name, m in report["metrics"].items()
               if not name.startswith(("edge_cpu_pct", "edge_rss_mb"))}
    header = {k: v for k, v in report.items()
              if k not in ("metrics", "wall_time_s", "started_at")}
    return {"metrics": metrics, "header": header}


def _series(run_dir: Path) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8")
            for p in sorted((run_dir / "series").glob("*.csv"))
            if p.stem not in _WALL_CLOCK_SERIES}


def _points(run_dir: Path, name: str) -> list[tuple[float, float]]:
    rows = (run_dir / "series" / f"{name}.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [(float(t), float(v)) for t, v in (row.split(",") for row in rows)]


@dataclass(frozen=True, slots=True)
class _TimedRun:
    result: RunResult
    wall_s: float


@pytest.fixture(scope="module")
def spec() -> ScenarioSpec:
    loaded, _ = load_scenario(SCENARIO)
    return loaded


@pytest.fixture(scope="module")
def shipped_run(spec: ScenarioSpec, tmp_path_factory: pytest.TempPathFactory) -> _TimedRun:
    """One run of scenarios/smoke-virtual, shared by the tests that only read it."""
    started = time.monotonic()
    result = asyncio.run(_run(spec, SCENARIO, tmp_path_factory.mktemp("virtual") / "run"))
    return _TimedRun(result, time.monotonic() - started)


async def test_same_seed_gives_the_same_report_values(spec: ScenarioSpec, shipped_run: _TimedRun,
                                                      tmp_path: Path) -> None:
    """Two runs with the same seed: identical report values and CSV series (CPU/RSS and
    wall time aside); a different seed gives different plant series."""
    first = shipped_run.result
    second = await _run(spec, SCENARIO, tmp_path / "b")
    other = await _run(spec.model_copy(update={"seed": spec.seed + 1}), SCENARIO, tmp_path / "c")
    assert first.report["clock"] == "virtual"
    assert _values(first.run_dir) == _values(second.run_dir)
    series = _series(first.run_dir)
    assert "pump1.discharge_pressure_bar" in series
    assert series == _series(second.run_dir)
    assert json.loads((first.run_dir / "samples.json").read_text()) == json.loads(
        (second.run_dir / "samples.json").read_text())
    changed = _series(other.run_dir)
    assert changed["pump1.discharge_pressure_bar"] != series["pump1.discharge_pressure_bar"]
    assert changed["pump1.motor_current_a"] != series["pump1.motor_current_a"]


def test_virtual_time_runs_faster_than_real_time(spec: ScenarioSpec,
                                                 shipped_run: _TimedRun) -> None:
    """60 s of virtual time finish in well under 60 s of real time, the edge having run
    every one of its 10 ms cycles and the report saying `clock: virtual`."""
    result, wall = shipped_run.result, shipped_run.wall_s
    assert spec.duration_s == 60
    assert wall < 30, f"60 s of virtual time took {wall:.1f} s"
    assert result.report["duration_s"] == 60
    assert result.report["clock"] == "virtual"
    assert result.report["wall_time_s"] < 30
    # E_CYCLE every 10 ms for 60 s: 6000 counts, plus the COLD start
    assert result.report["metrics"]["events_processed"]["value"] == 6001
    html = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert "clock virtual" in html


def test_faults_fire_at_their_virtual_times(shipped_run: _TimedRun) -> None:
    """The sensor_stuck window (30-40 s) holds the pressure constant from its start and
    only inside it; the bearing wear from 10 s raises the vibration; both fired in order."""
    result = shipped_run.result
    assert result.fired_faults == ["10s bearing_wear start", "30s sensor_stuck start",
                                   "40s sensor_stuck end"]
    pressure = _points(result.run_dir, "pump1.discharge_pressure_bar")
    stuck = {v for t, v in pressure if 30.5 <= t <= 40.0}
    assert len(stuck) == 1
    before = [v for t, v in pressure if 25.0 <= t < 30.0]
    after = [v for t, v in pressure if 40.5 <= t <= 45.0]
    assert len(set(before)) == len(before)
    assert len(set(after)) == len(after)
    assert stuck.isdisjoint(after)
    vibration = _points(result.run_dir, "pump1.vibration_rms_m_s2")
    healthy = max(v for t, v in vibration if t < 10.0)
    worn = min(v for t, v in vibration if t > 35.0)
    assert worn > healthy


_HEAD = "name: v\nduration_s: 5\nclock: virtual\nbroker: {kind: none}\n"
"""Lines 1-4; the refused part's line follows (line 5 unless said otherwise)."""

_REFUSED = {
    "plc": (_HEAD + "plants:\n  - name: p\n    model: pump\n    plc: true\n", 8, "plants[0].plc"),
    "sites": (_HEAD + "sites:\n  - {name: site_a, scenario: s.yaml, edge_node: a}\n", 5,
              "sites"),
    "wan": (_HEAD + "wan: {latency_ms: 40}\n", 5, "wan"),
    "federated": (_HEAD + "federated: {role: aggregator}\n", 5, "federated"),
    "control_link": (
        _HEAD + "control_link:\n  name: c\n  cycle_ms: 10\n  deadline_ms: 5\n"
        "  schedules:\n    - {name: fifo, kind: fifo}\n", 5, "control_link"),
    "broker_url": ("name: v\nduration_s: 5\nclock: virtual\n"
                   "broker: {kind: url, url: 'mqtt://127.0.0.1:1883'}\n", 4, "broker"),
    "broker_default": ("name: v\nduration_s: 5\nclock: virtual\n", 3, "broker"),
    "broker_outage": (_HEAD + "faults:\n  - {kind: broker_outage, start_s: 1, end_s: 2}\n", 6,
                      "faults[0].kind"),
    "wan_partition": (_HEAD + "faults:\n  - {kind: wan_partition, start_s: 1, end_s: 2}\n", 6,
                      "faults[0].kind"),
    "deployments": (_HEAD + "edges:\n  - {name: e, application: app.yaml}\n"
                    "deployments:\n  - {at_s: 1, edge: e, kind: application, name: a, "
                    "version: '2'}\n", 7, "deployments"),
    "cloud_link": (_HEAD + "edges:\n  - name: e\n    application: app.yaml\n    monitor:\n"
                   "      cloud_link: Count.CV\n", 9, "edges[0].monitor.cloud_link"),
}


@pytest.mark.parametrize("case", sorted(_REFUSED))
def test_parts_needing_the_real_clock_are_refused(case: str, tmp_path: Path) -> None:
    """Each part that needs the real clock fails the load on the virtual clock with
    file:line, the field and the reason, never silently running on real time."""
    text, line, field = _REFUSED[case]
    (tmp_path / "app.yaml").write_text((SCENARIO / "app.yaml").read_text(), encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_scenario(tmp_path)
    message = str(err.value)
    expected = rf"scenario.yaml:{line}: {re.escape(field)}: needs the real clock"
    assert re.search(expected, message), message
    assert "clock: virtual at line 3" in message


_IO_APP = """name: Edge
fbs:
  Proc:
    type: OPCUA_READ_5
  Infer: {type: ONNX_INFER_1_2, parameters: {QI: TRUE}}
  Cycle: {type: E_CYCLE, parameters: {DT: T#10ms}}
connections:
  - START.COLD -> Cycle.START
  - Cycle.EO -> Proc.REQ
"""


def test_edge_application_with_network_io_is_refused(tmp_path: Path) -> None:
    """An edge application with a field-I/O FB or an ONNX FB (threads answering on real
    time) is refused on the virtual clock, naming the edge's `application` line and the FB."""
    (tmp_path / "app.yaml").write_text(_IO_APP, encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(
        _HEAD + "edges:\n  - name: e\n    application: app.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_scenario(tmp_path)
    message = str(err.value)
    assert re.search(r"scenario.yaml:7: edges\[0\].application: needs the real clock.*"
                     r"Proc \(OPCUA_READ_5\) does network I/O", message), message
    assert "Infer (ONNX_INFER_1_2)" in message
    (tmp_path / "scenario.yaml").write_text(
        _HEAD.replace("virtual", "real") + "edges:\n  - name: e\n    application: app.yaml\n",
        encoding="utf-8")
    load_scenario(tmp_path)  # the same application is fine on the real clock


async def test_a_spec_built_in_code_is_refused_by_the_runner(spec: ScenarioSpec,
                                                             tmp_path: Path) -> None:
    """A virtual-clock spec made in code (not loaded from a file) with a broker is refused
    by the runner before anything starts."""
    bad = spec.model_copy(update={"broker": spec.broker.model_copy(update={"kind": "embedded"})})
    with pytest.raises(ConfigError, match=r"broker: needs the real clock"):
        await _run(bad, SCENARIO, tmp_path / "run")
