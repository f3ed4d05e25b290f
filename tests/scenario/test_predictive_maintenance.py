"""The default scenario (testbed40-predictive-maintenance) end to end at a short duration."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from scenario_cli import edit_yaml, run_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "testbed40-predictive-maintenance"

SHORT_TIMELINE = {
    "duration_s": 20,
    "deployments": [{"at_s": 11}],
    "faults": [{"start_s": 3, "ramp_s": 2},  # bearing wear
               {"start_s": 5, "end_s": 9},  # broker outage
               {"start_s": 12, "end_s": 14}],  # PLC comm outage (its restart takes ~2 s)
}


def _short_copy(tmp_path: Path) -> Path:
    """The scenario folder with its timeline compressed (same plant, app, models, faults)."""
    folder = tmp_path / "scenario"
    shutil.copytree(SCENARIO, folder)

    def compress(spec: dict[str, Any]) -> None:
        spec["duration_s"] = SHORT_TIMELINE["duration_s"]
        for dep, short in zip(spec["deployments"], SHORT_TIMELINE["deployments"], strict=True):
            dep.update(short)
        for fault, short in zip(spec["faults"], SHORT_TIMELINE["faults"], strict=True):
            fault.update(short)

    edit_yaml(folder / "scenario.yaml", compress)
    return folder


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_default_scenario_short_run_reports_no_loss_and_detects_the_wear(tmp_path: Path) -> None:
    """A compressed run: 0 lost/duplicated messages, detection within bound, files well-formed."""
    folder = _short_copy(tmp_path)
    out = tmp_path / "run"
    stdout = run_scenario(folder, out)
    assert "messages_lost" in stdout  # the summary is printed

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    metrics = report["metrics"]
    assert metrics["messages_stored_at_edge"]["value"] > 20
    assert metrics["messages_lost"]["value"] == 0
    assert metrics["messages_duplicated"]["value"] == 0
    assert metrics["messages_replayed"]["value"] > 0  # the broker outage was bridged
    assert metrics["uplink_backlog_peak"]["value"] > 0
    bound = yaml.safe_load((SCENARIO / "scenario.yaml").read_text())["detection_bound_s"]
    assert 0 <= metrics["detection_delay_s"]["value"] <= bound
    assert "false_alarm_before_onset" not in metrics
    assert metrics["false_alarms_per_h"]["value"] == 0
    assert metrics["healthy_monitored_s"]["value"] > 0
    for name in ("e2e_latency_ms", "inference_latency_ms", "sensor_to_actuation_ms"):
        assert metrics[name]["count"] > 10, name
        assert metrics[name]["p50"] <= metrics[name]["p99"], name
        assert metrics[name]["unit"] == "ms", name
        assert metrics[name]["definition"], name
    assert metrics["deploy_time_s"]["count"] == 1
    assert metrics["deployments_ok"]["value"] == 1
    assert metrics["pump1.plc_outages"]["value"] == 1
    assert metrics["recovery_time_s"]["count"] == 1
    assert metrics["recovery_time_s"]["max"] <= 5  # process values resume after the PLC outage
    assert metrics["edge_rss_mb_peak"]["value"] > 0

    assert (out / "run.log").is_file()
    assert (out / "scenario.resolved.json").is_file()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert html.rstrip().endswith("</html>")
    pngs = list((out / "plots").glob("*.png"))
    assert pngs
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "plots/series_uplink_backlog.png" in html
    for name in ("uplink_backlog", "anomaly_score", "pump1.vibration_rms_m_s2"):
        with (out / "series" / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["t_s", name]
        times = [float(r[0]) for r in rows[1:]]
        assert len(times) > 5
        assert times == sorted(times)
    with (out / "series" / "anomaly_score.csv").open(newline="", encoding="utf-8") as fh:
        scores = [float(r[1]) for r in list(csv.reader(fh))[1:]]
    assert max(scores) > 10 * min(scores)  # the wear shows in the anomaly score


def _plant_and_edge_trace(tmp_path: Path, seed: int) -> list[tuple[float, bool, int]]:
    """The pump (seeded, bearing wear from 2 s) stepped in model time, its vibration blocks
    through the scenario's detection chain (features, ONNX, DERATE) on a virtual clock."""
    import time

    import testbed
    from drivers.sim import FaultSchedule, FaultSpec, create_model
    from testbed.scenario.models import trained_model
    from testbed.scenario.spec import ModelSpec

    model_file = trained_model(ModelSpec(name="bearing_detector", version="1", seed=40)).path
    app = tmp_path / f"chain-{seed}.yaml"
    app.write_text(
        "name: Chain\nfbs:\n"
        "  Feat: {type: VIB_FEATURES, parameters: {QI: TRUE, FS: 12000.0}}\n"
        f"  Infer: {{type: ONNX_INFER_1_2, parameters: {{QI: TRUE, MODE: inline, "
        f"MODEL: '{model_file}'}}}}\n"
        "  Derate: {type: DERATE, parameters: {DEBOUNCE: 3, NOMINAL: 1750, DERATE_PCT: 20}}\n"
        "connections:\n"
        "  - Feat.CNF -> Infer.REQ\n  - Feat.FEATURES -> Infer.SD_1\n"
        "  - Infer.CNF -> Derate.REQ\n  - Infer.QO -> Derate.VALID\n"
        "  - Infer.RD_2 -> Derate.ANOMALY\n", encoding="utf-8")
    net = testbed.load(app, clock="virtual", types=[SCENARIO / "types"])
    net.inject("Chain.Feat.INIT")
    net.inject("Chain.Infer.INIT")
    deadline = time.monotonic() + 20
    while not net.read("Chain.Infer.QO"):  # the model loads on the model host's thread
        assert time.monotonic() < deadline, net.read("Chain.Infer.STATUS")
        time.sleep(0.01)
        net.run_until_idle()
    pump = create_model("pump", seed=seed)
    pump.apply_schedule(FaultSchedule(faults=(FaultSpec(
        kind="bearing_wear", target="outer_race", start_s=2.0, severity=0.021, ramp_s=1.0),)))
    trace: list[tuple[float, bool, int]] = []
    for _ in range(50):  # 5 s of plant time, one block per 0.1 s step
        pump.step()
        state = pump.state()
        net.write("Chain.Feat.BLOCK", state.waveforms["vibration"].samples)
        net.write("Chain.Feat.SPEED", float(state["shaft_speed_rpm"]))
        with net.record() as rec:
            net.inject("Chain.Feat.REQ")
        (cnf,) = [e for e in rec.events if e.path == "Chain.Derate.CNF"]
        trace.append((round(float(net.read("Chain.Infer.RD_1")), 9),
                      bool(cnf.values["ALARM"]), int(cnf.values["SETPOINT"])))
    net.close()
    return trace


def test_plant_and_edge_chain_is_reproducible_on_the_virtual_clock(tmp_path: Path) -> None:
    """Same seed: the same scores, alarms and setpoints (the PLC, broker and cloud run on
    real sockets and the real clock, so reproducibility is checked for plant + edge logic)."""
    first = _plant_and_edge_trace(tmp_path, seed=40)
    again = _plant_and_edge_trace(tmp_path, seed=40)
    assert first == again
    assert not first[0][1]  # healthy at first
    assert first[-1][1]  # alarm after the wear
    assert first[-1][2] == 1400  # derated by 20 %
    assert _plant_and_edge_trace(tmp_path, seed=41) != first
