"""Check a scenario's edge applications without running them (`testbed validate`).

`load_scenario` checks the scenario file; this loads each edge's application with its
type folders (not started, nothing connected) and resolves every pin the scenario names:
the parameters it writes and the FB events its monitor watches. A misspelt pin fails
here, with the scenario file, the edge and the field, instead of minutes into a run.
"""

from __future__ import annotations

from pathlib import Path

from testbed.api import load
from testbed.errors import ConfigError, TestbedError
from testbed.scenario.spec import EdgeSpec, ScenarioSpec, load_scenario
from testbed.scenario.trace import parse_trace_point

__all__ = ["check_applications"]


def check_applications(spec: ScenarioSpec, file: Path) -> int:
    """Load every edge application of `spec` (read from scenario `file`) and of its site
    scenarios; returns how many were checked. Raises ConfigError naming file, edge, field."""
    folder = file.parent
    checked = 0
    for edge in spec.edges:
        _check_edge(file, folder, edge)
        checked += 1
    for site in spec.sites:
        site_file = folder / site.scenario
        site_spec, _ = load_scenario(site_file)
        checked += check_applications(site_spec, site_file)
    return checked


def _monitor_pins(edge: EdgeSpec) -> list[tuple[str, str]]:
    """(field, pin) of every FB event the monitor names."""
    m = edge.monitor
    pins: list[tuple[str, str]] = [
        (f"monitor.{name}", pin) for name, pin in (
            ("process", m.process), ("features", m.features), ("inference", m.inference),
            ("alarm", m.alarm), ("actuation", m.actuation), ("cloud_link", m.cloud_link),
            ("setpoint", m.setpoint))
        if pin is not None]
    if m.daq is not None:
        pins.append(("monitor.daq", f"{m.daq}.REQ"))
    if m.model_fb is not None:
        pins.append(("monitor.model_fb", f"{m.model_fb}.INITO"))
    for i, text in enumerate(m.trace):
        point = parse_trace_point(text)
        fb = point.event_path.rsplit(".", 1)[0]
        pins += [(f"monitor.trace[{i}]", p) for p in (point.event_path,
                                                       *(f"{fb}.{pin}" for pin in point.pins))]
    if m.line is not None:
        line = m.line
        pins += [(f"monitor.line.{name}", pin) for name, pin in (
            ("sense", line.sense), ("decide", line.decide), ("act", line.act),
            ("actuation", line.actuation), ("exit", line.exit), ("fault", line.fault))
            if pin is not None]
    return pins


def _check_edge(file: Path, folder: Path, edge: EdgeSpec) -> None:
    where = f"{file}: edge {edge.name}"
    try:
        net = load(folder / edge.application, types=[folder / t for t in edge.types],
                   start=False)
    except TestbedError as exc:
        raise ConfigError(f"{where}: application {edge.application}: {exc}") from exc
    try:
        fields = [(f"parameters.{pin}", pin) for pin in edge.parameters] + _monitor_pins(edge)
        for field, pin in fields:
            try:
                net.resolve(pin)
            except TestbedError as exc:
                raise ConfigError(f"{where}: {field}: {exc}") from exc
    finally:
        net.close()
