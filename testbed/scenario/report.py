"""Run folders: `report.json`, CSV time series, latency samples and `report.html` with plots.

`write_run` stores the raw data (series as CSV, samples as JSON) and the summary;
`render_html` draws the plots (matplotlib, headless) and the page from those files
alone, so `testbed report RUN_DIR` re-renders a run without re-running it.
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from testbed.scenario.metrics import MetricsRecorder, percentile

__all__ = ["load_report", "render_html", "summarise_samples", "write_run"]


def summarise_samples(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else None,
        "mean": sum(ordered) / len(ordered) if ordered else None,
    }


def write_run(run_dir: Path, header: dict[str, Any], recorder: MetricsRecorder,
              windows: list[dict[str, Any]],
              sections: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the raw data and report.json; returns the report dictionary.

    `sections` are structured results the parts add beside `metrics` (per-round scores,
    per-schedule figures, site processes), each under its own top-level key."""
    run_dir.mkdir(parents=True, exist_ok=True)
    series_dir = run_dir / "series"
    series_dir.mkdir(exist_ok=True)
    metrics: dict[str, Any] = {}
    for name in recorder.series_names():
        path = series_dir / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["t_s", name])
            writer.writerows(recorder.series(name))
    samples: dict[str, list[float]] = {}
    for name in recorder.sample_names():
        s = recorder.summary(name)
        samples[name] = recorder.samples(name)
        metrics[name] = {**asdict(s)}
    snapshot = recorder.snapshot()
    for name, value in snapshot.items():
        if name not in metrics and isinstance(value, (int, float)):
            metrics[name] = {"value": value}
    for name, definition in recorder.definitions.items():
        entry = metrics.setdefault(name, {"value": None})
        entry["unit"] = definition.unit
        entry["definition"] = definition.definition
    (run_dir / "samples.json").write_text(json.dumps(samples), encoding="utf-8")
    report = {**header, "metrics": metrics, "fault_windows": windows, **(sections or {})}
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    return report


def load_report(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    return data


def _read_series(path: Path) -> tuple[list[float], list[float]]:
    ts: list[float] = []
    vs: list[float] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for row in reader:
            ts.append(float(row[0]))
            vs.append(float(row[1]))
    return ts, vs


def render_html(run_dir: Path) -> Path:
    """Draw PNG plots and write report.html from the run folder's files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = load_report(run_dir)
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(exist_ok=True)
    images: list[tuple[str, str]] = []
    samples = json.loads((run_dir / "samples.json").read_text(encoding="utf-8")) \
        if (run_dir / "samples.json").exists() else {}
    for name, values in sorted(samples.items()):
        if not values:
            continue
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(values, bins=50)
        unit = report["metrics"].get(name, {}).get("unit", "")
        ax.set_xlabel(f"{name} [{unit}]" if unit else name)
        ax.set_ylabel("count")
        ax.set_title(f"{name} histogram")
        fig.tight_layout()
        out = plots_dir / f"hist_{name}.png"
        fig.savefig(out, dpi=90)
        plt.close(fig)
        images.append((f"{name} histogram", f"plots/{out.name}"))
    windows = report.get("fault_windows", [])
    for path in sorted((run_dir / "series").glob("*.csv")):
        ts, vs = _read_series(path)
        if not ts:
            continue
        fig, ax = plt.subplots(figsize=(7, 2.6))
        ax.plot(ts, vs, linewidth=0.8)
        for w in windows:
            end = w.get("end_s") if w.get("end_s") is not None else ts[-1]
            ax.axvspan(w["start_s"], end, alpha=0.15, color="red")
        ax.set_xlabel("t [s]")
        ax.set_title(path.stem)
        fig.tight_layout()
        out = plots_dir / f"series_{path.stem}.png"
        fig.savefig(out, dpi=90)
        plt.close(fig)
        images.append((path.stem, f"plots/{out.name}"))
    rows = []
    for name, entry in sorted(report["metrics"].items()):
        shown = {k: v for k, v in entry.items() if k not in ("definition", "unit")}
        value = ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items())
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td>"
                    f"<td>{html.escape(str(entry.get('unit', '')))}</td>"
                    f"<td>{html.escape(str(entry.get('definition', '')))}</td></tr>")
    figures = "\n".join(f"<figure><img src='{src}' alt='{html.escape(title)}'>"
                        f"<figcaption>{html.escape(title)}</figcaption></figure>"
                        for title, src in images)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(str(report.get('scenario', 'run')))}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}figure{{display:inline-block}}</style>
</head><body><h1>{html.escape(str(report.get('scenario', 'run')))}</h1>
<p>seed {report.get('seed')}, clock {report.get('clock')}, duration {report.get('duration_s')} s,
started {html.escape(str(report.get('started_at')))}</p>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>unit</th><th>definition</th></tr>
{''.join(rows)}</table>{_sections_html(report)}<h2>Plots</h2>{figures}</body></html>
"""
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


_HEADER_KEYS = {"scenario", "seed", "clock", "duration_s", "wall_time_s", "planned_duration_s",
                "started_at", "interrupted", "metrics", "fault_windows"}


def _sections_html(report: dict[str, Any]) -> str:
    """The parts' structured sections (per-round, per-schedule, per-site results) as JSON."""
    out = []
    for key, value in report.items():
        if key not in _HEADER_KEYS:
            text = json.dumps(value, indent=1, default=str)
            out.append(f"<h2>{html.escape(key)}</h2><pre>{html.escape(text)}</pre>")
    return "".join(out)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
