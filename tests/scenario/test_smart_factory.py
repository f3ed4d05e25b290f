"""The smart-factory scenario end to end at a short duration: tracking, reject decisions at
the edge, bandwidth kept local, no message lost across a broker outage."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from scenario_cli import edit_yaml, run_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "smart-factory"

SHORT_TIMELINE = {
    "duration_s": 16,
    "faults": [{"start_s": 3, "end_s": 7},  # broker outage
               {"start_s": 8, "end_s": 10},  # diverter jammed (3 defective items due)
               {"start_s": 11, "end_s": 13}],  # PLC comm outage (its restart takes ~2 s)
}
"""More items, more of them defective, so a short run sorts enough of both classes."""
SHORT_LINE = {"arrival_rate_per_s": 1.4, "defect_probability": 0.35}


def _short_copy(tmp_path: Path) -> Path:
    """The scenario folder with its timeline compressed (same plant, app and faults)."""
    folder = tmp_path / "scenario"
    shutil.copytree(SCENARIO, folder)

    def compress(spec: dict[str, Any]) -> None:
        spec["duration_s"] = SHORT_TIMELINE["duration_s"]
        for fault, short in zip(spec["faults"], SHORT_TIMELINE["faults"], strict=True):
            fault.update(short)
        spec["plants"][0]["config"].update(SHORT_LINE)

    edit_yaml(folder / "scenario.yaml", compress)
    return folder


def _cloud_item_ids(db_path: Path) -> set[int]:
    """Item IDs of the per-item records the cloud ingested."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        (stream,) = db.execute("SELECT id FROM streams WHERE device_id='items' "
                               "AND metric='item_id'").fetchone()
        return {int(v) for (v,) in db.execute(f"SELECT value FROM s_{int(stream)}")}
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_smart_factory_short_run_sorts_tracks_and_keeps_bandwidth_local(
        tmp_path: Path) -> None:
    """A compressed run: items classified with plausible precision/recall, diverter commands
    confirmed, 0 lost/duplicated records, fewer bytes than raw streaming, files well-formed."""
    folder = _short_copy(tmp_path)
    out = tmp_path / "run"
    stdout = run_scenario(folder, out)
    assert "bandwidth_saved_pct" in stdout  # the summary is printed

    metrics = json.loads((out / "report.json").read_text(encoding="utf-8"))["metrics"]

    def value(name: str) -> float:
        v = metrics[name]["value"]
        assert isinstance(v, int | float), name
        return float(v)

    # the line ran and the edge decided
    assert value("items_total") >= 8
    assert value("throughput_items_per_min") > 0
    assert value("items_classified") >= 8
    assert 0.6 <= value("reject_precision") <= 1.0
    assert 0.6 <= value("reject_recall") <= 1.0
    assert 0 < value("tracking_completeness_pct") <= 100
    assert value("missed_diverts") <= value("items_classified")
    assert value("defective_rejected") > 0
    assert value("divert_deadline_ms") == pytest.approx(200.0)
    for name in ("divert_latency_ms", "decision_latency_ms"):
        assert metrics[name]["count"] >= 5, name
        assert metrics[name]["p50"] <= metrics[name]["p99"], name
        assert metrics[name]["unit"] == "ms", name
        assert metrics[name]["definition"], name
    assert 0 < value("oee") <= 1
    assert value("diverter_false_faults") == 0  # a lost PLC connection is no jam
    assert value("jams_missed") == 0  # the jammed diverter did not follow a reject command
    assert metrics["jam_detection_delay_s"]["count"] == 1
    assert 0 <= metrics["jam_detection_delay_s"]["max"] <= 2.0
    # the bandwidth kept local
    edge, raw = value("bytes_to_cloud_edge"), value("bytes_to_cloud_raw")
    assert 0 < edge < raw
    assert value("raw_values_sampled") > 11 * 100  # 11 values per poll, 50 polls a second
    assert value("bandwidth_saved_pct") == pytest.approx(100 * (1 - edge / raw))
    # store-and-forward across the broker outage; the PLC outage was survived
    assert value("messages_lost") == 0
    assert value("messages_duplicated") == 0
    assert value("messages_replayed") > 0
    assert value("conveyor1.plc_outages") == 1
    assert len(_cloud_item_ids(out / "cloud.db")) == value("items_classified")

    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert html.rstrip().endswith("</html>")
    pngs = list((out / "plots").glob("*.png"))
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "plots/series_bytes_to_cloud_edge.png" in html
    assert "plots/hist_divert_latency_ms.png" in html
    for name in ("items_total", "bytes_to_cloud_edge", "bytes_to_cloud_raw"):
        with (out / "series" / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["t_s", name]
        points = [(float(t), float(v)) for t, v in rows[1:]]
        assert len(points) > 5
        assert [t for t, _ in points] == sorted(t for t, _ in points)
        assert [v for _, v in points] == sorted(v for _, v in points), name  # cumulative
    assert not (out / "series" / "alarm.csv").exists()  # the pump's alarm is not this line's
