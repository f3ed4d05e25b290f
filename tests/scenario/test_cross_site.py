"""The cross-site scenario (testbed50-cross-site) end to end at a short duration."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from scenario_cli import edit_yaml, run_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "testbed50-cross-site"
DURATION_S = 24
SITE_FAULT_S = {"site_a": 8, "site_b": 10}


def _short_copy(tmp_path: Path) -> Path:
    """The scenario with its timeline compressed (same sites, apps, WAN, training); the
    default scenario beside it, whose FB types the sites reuse."""
    folder = tmp_path / "scenarios" / SCENARIO.name
    shutil.copytree(SCENARIO, folder)
    shared = REPO / "scenarios" / "testbed40-predictive-maintenance" / "types"
    shutil.copytree(shared, folder.parent / shared.parent.name / "types")

    def compress(spec: dict[str, Any]) -> None:
        spec["duration_s"] = DURATION_S
        (partition,) = spec["faults"]
        partition.update({"start_s": 16, "end_s": 19})

    edit_yaml(folder / "scenario.yaml", compress)
    for site, start in SITE_FAULT_S.items():

        def wear_from(spec: dict[str, Any], start: float = start) -> None:
            for fault in spec["faults"]:
                fault.update({"start_s": start, "ramp_s": 3})

        edit_yaml(folder / "sites" / f"{site}.yaml", wear_from)
    return folder


def _metric(report: dict[str, Any], name: str) -> Any:
    return report["metrics"][name]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_cross_site_short_run_reports_sites_federation_and_wan(tmp_path: Path) -> None:
    """Two site processes, 0 lost uplink messages, federated rounds, cross-site latency."""
    folder = _short_copy(tmp_path)
    out = tmp_path / "run"
    stdout = run_scenario(folder, out)
    assert "messages_lost" in stdout

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    # the sites ran as separate, healthy processes and ended on their own
    sites = report["sites"]
    assert [s["name"] for s in sites] == ["site_a", "site_b"]
    pids = {s["pid"] for s in sites}
    assert len(pids) == 2
    assert os.getpid() not in pids
    assert all(s["parent_pid"] not in pids for s in sites)
    for site in sites:
        assert site["returncode"] == 0, site
        assert site["stopped_by"] == "exit"
        assert site["healthy_after_s"] is not None
        assert not site["died_early"]
        assert (out / "sites" / site["name"] / "process.log").is_file()
        site_report = json.loads((out / "sites" / site["name"] / "run" / "report.json")
                                 .read_text(encoding="utf-8"))
        assert site_report["scenario"].startswith("testbed50-site-")
    assert _metric(report, "site_processes_failed")["value"] == 0
    # every site's telemetry reached the one cloud: nothing lost or duplicated
    for name in ("site_a", "site_b"):
        assert _metric(report, f"{name}.messages_stored_at_edge")["value"] > 20
        assert _metric(report, f"{name}.messages_lost")["value"] == 0
        assert _metric(report, f"{name}.messages_duplicated")["value"] == 0
    assert _metric(report, "messages_lost")["value"] == 0
    assert _metric(report, "messages_duplicated")["value"] == 0
    # the distributed application crossed the emulated WAN both ways
    latency = _metric(report, "cross_site_event_latency_ms")
    wan = report["wan"]
    assert wan["emulated"] is True
    assert latency["count"] > 20
    assert latency["unit"] == "ms"
    assert latency["definition"]
    assert wan["latency_ms"] <= latency["p50"] <= latency["p99"]
    assert _metric(report, "cross_site_messages_received")["value"] > 20
    assert _metric(report, "cross_site_messages_lost")["value"] >= 0
    # the partition: the peer's verdicts lost meanwhile, each site's own loop ran on
    assert _metric(report, "cross_site_messages_lost_in_partition")["value"] > 0
    assert _metric(report, "cross_site_messages_lost_in_partition")["value"] <= \
        _metric(report, "cross_site_messages_lost")["value"]
    for name in ("site_a", "site_b"):
        assert _metric(report, f"{name}.local_verdicts_in_partition")["value"] > 5
    assert {"fault": "wan_partition", "start_s": 16, "end_s": 19} in report["fault_windows"]
    assert _metric(report, "wan_frames_offered")["value"] >= \
        _metric(report, "cross_site_messages_sent")["value"]
    # federated learning: rounds with scores in [0, 1], times and bytes, the rollout
    fed = report["federated"]
    assert fed["transport"] == "mqtt"
    assert len(fed["rounds"]) == _metric(report, "fl_rounds")["value"] >= 1
    for r in fed["rounds"]:
        scores = [r["federated"], r["centralized"], *r["local"]]
        assert all(0.0 <= s["accuracy"] <= 1.0 and 0.0 <= s["macro_f1"] <= 1.0
                   for s in scores)
        assert r["fl_round_time_s"] > 0
        assert r["fl_bytes_per_round"] > 0
    assert _metric(report, "fl_round_time_s")["count"] == len(fed["rounds"])
    assert _metric(report, "fl_bytes_per_round")["p50"] > 0
    assert fed["centralise_waveform_bytes"] > fed["rounds"][0]["fl_bytes_per_round"]
    assert [s["site"] for s in fed["rollout"]] == ["site_a", "site_b"]
    assert all(s["ok"] for s in fed["rollout"])
    assert (out / "federated" / "federated_classifier.onnx").read_bytes()[:1]
    # each site's fault classifier FB re-INITed on the federated model (hot swap)
    for name in ("site_a", "site_b"):
        assert _metric(report, f"{name}.models_swapped")["value"] >= 1
        inits = (out / "sites" / name / "run" / "trace" / "Site.Classify.INITO.csv"
                 ).read_text(encoding="utf-8").splitlines()
        assert inits[0] == "t_ns,QO"
        assert [row.split(",")[1] for row in inits[1:]] == ["True", "True"]
    # the controller-to-I/O link, per schedule (emulated)
    control = report["control_link"]
    assert control["emulated"] is True
    schedules = control["schedules"]
    assert set(schedules) == {"fifo", "strict_priority", "qbv"}
    for name, figures in schedules.items():
        assert figures["error"] is None, name
        assert figures["failed"] == 0, name
        assert figures["frames_sent"] > 50, name
        assert 0 <= figures["deadline_misses"] <= figures["frames_sent"], name
        assert 0.0 <= figures["deadline_miss_rate"] <= 1.0, name
        assert figures["latency_p50_ms"] <= figures["latency_p99_ms"] <= \
            figures["latency_max_ms"], name
        assert figures["jitter_us"] >= 0, name
        entry = _metric(report, f"tsn.{name}.deadline_miss_rate")
        assert entry["unit"] == "ratio"
        assert "emulated" in entry["definition"]
    assert schedules["qbv"]["gate"]["entries"][0]["open_classes"] == [7]
    assert schedules["fifo"]["gate"] is None
    # the link model's own delays (exact, no host noise): FIFO queues control behind the
    # overload past the deadline, the gate keeps it short
    assert schedules["fifo"]["link_delay_p99_ms"] > control["deadline_ms"]
    assert schedules["qbv"]["link_delay_p99_ms"] < schedules["fifo"]["link_delay_p99_ms"]
    assert schedules["qbv"]["model_deadline_miss_rate"] < \
        schedules["fifo"]["model_deadline_miss_rate"]
    assert 0.0 <= _metric(report, "control_deadline_miss_rate")["value"] <= 1.0
    # every metric says what it is
    for name, entry in report["metrics"].items():
        assert entry.get("definition"), name
        assert "unit" in entry, name
    # files well-formed
    html = (out / "report.html").read_text(encoding="utf-8")
    for section in ("sites", "federated", "control_link", "wan"):
        assert f"<h2>{section}</h2>" in html
    assert _metric(report, "fl_centralise_waveform_bytes")["value"] > \
        _metric(report, "fl_bytes_total")["value"] > 0
    assert html.startswith("<!doctype html>")
    assert html.rstrip().endswith("</html>")
    assert (out / "run.log").is_file()
    assert (out / "scenario.resolved.json").is_file()
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in (out / "plots").glob("*.png"))
