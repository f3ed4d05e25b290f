"""What may run on a scenario's virtual clock, and the refusal of what may not.

On `clock: virtual` the runner moves time itself (bare plants on a `ManualClock`, edge
applications on the runtime's `VirtualClock`), so a run is deterministic: the same seed
gives the same report values. Anything whose behaviour depends on real time (sockets,
child processes, the emulated link, threads that answer when they are done) would either
stall or make the run irreproducible, so such parts are refused when the scenario loads,
each error naming the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.yamllines import Loc, format_loc, line_of
from testbed.errors import ConfigError

if TYPE_CHECKING:
    from fb.ai.onnx_infer import _OnnxInfer
    from testbed.api import Network
    from testbed.runtime.instance import FBInstance
    from testbed.scenario.spec import ScenarioSpec

__all__ = ["RealClockPart", "check_virtual_clock", "model_fbs", "real_clock_fbs",
           "real_clock_parts"]


@dataclass(frozen=True, slots=True)
class RealClockPart:
    """A part of a scenario that needs the real clock: where it is and why."""

    loc: Loc
    reason: str


def real_clock_parts(spec: ScenarioSpec) -> list[RealClockPart]:
    """Every part of `spec` (its file's own fields) that cannot run on the virtual clock."""
    out: list[RealClockPart] = []
    if spec.broker.kind != "none":
        out.append(RealClockPart(
            ("broker",), f"the {spec.broker.kind} MQTT broker (the default is embedded) "
            "serves clients over sockets on the real clock; set `broker: {kind: none}`"))
    for i, plant in enumerate(spec.plants):
        if plant.plc:
            out.append(RealClockPart(
                ("plants", i, "plc"), f"plant {plant.name}: a simulated PLC scans on the real "
                "clock and serves OPC UA and Modbus over sockets"))
    for i, edge in enumerate(spec.edges):
        if edge.monitor.cloud_link is not None:
            out.append(RealClockPart(
                ("edges", i, "monitor", "cloud_link"), f"edge {edge.name}: its cloud link "
                "talks MQTT to a broker on the real clock"))
    for i, fault in enumerate(spec.faults):
        if fault.kind in ("broker_outage", "wan_partition"):
            out.append(RealClockPart(
                ("faults", i, "kind"), f"a {fault.kind} stops a socket-serving part, which "
                "runs on the real clock only"))
    if spec.deployments:
        out.append(RealClockPart(
            ("deployments",), "cloud deployments go over MQTT and wait on the real clock"))
    if spec.sites:
        out.append(RealClockPart(
            ("sites",), "site scenarios run as child processes on the real clock"))
    if spec.wan is not None:
        out.append(RealClockPart(("wan",), "the WAN emulator forwards sockets in real time"))
    if spec.federated is not None:
        out.append(RealClockPart(
            ("federated",), "federated learning rounds go over MQTT between processes"))
    if spec.control_link is not None:
        out.append(RealClockPart(
            ("control_link",), "the emulated controller-to-I/O link and its gate schedule "
            "run on the real clock"))
    return out


def check_virtual_clock(spec: ScenarioSpec, file: Path | str,
                        lines: Mapping[Loc, int] | None = None) -> None:
    """Raise ConfigError listing every part of a `clock: virtual` scenario that needs the
    real clock, as `file:line: field: ...` (no-op on the real clock)."""
    if spec.clock != "virtual":
        return
    refused = real_clock_parts(spec)
    if not refused:
        return
    clock_line = _line(lines, ("clock",))
    raise ConfigError("\n".join(
        f"{file}:{_line(lines, part.loc, fallback=clock_line)}: {format_loc(part.loc)}: "
        f"needs the real clock (the scenario sets clock: virtual at line {clock_line}): "
        f"{part.reason}"
        for part in refused))


def _line(lines: Mapping[Loc, int] | None, loc: Loc,
          fallback: int | str | None = None) -> int | str:
    """The line of `loc`; a field left at its default (not in the file) is blamed on
    `fallback` (the `clock` line), else on its nearest parent."""
    if lines is not None and fallback is not None and loc not in lines:
        return fallback
    found = None if lines is None else line_of(lines, loc)
    return "?" if found is None else found


def real_clock_fbs(network: Network) -> list[tuple[str, str, str]]:
    """(FB, type, why) of every FB of a loaded application that needs the real clock:
    network I/O (field drivers, cloud links, PUBLISH/SUBSCRIBE) or an ONNX_INFER whose
    executor thread answers on real time (MODE inline runs the model in the event and is
    allowed: its model load, on the host's loader thread, is awaited in real time by the
    edge part before virtual time moves on)."""
    from fb.ai.onnx_infer import _OnnxInfer
    from fb.io.base import IoFB
    from fb.net.commfb import _CommFB

    out: list[tuple[str, str, str]] = []
    for res in network.device.resources.values():
        for fb in res.fbs.values():
            if isinstance(fb, IoFB | _CommFB):
                why = "does network I/O"
            elif isinstance(fb, _OnnxInfer):
                if _onnx_mode(fb) == "inline":
                    continue  # runs in the event; its load is awaited by the edge part
                why = ("runs its model on an executor thread that answers on real time "
                       "(MODE auto or executor); set MODE to inline")
            else:
                continue
            out.append((f"{res.name}.{fb.name}", fb.type_name, why))
    return out


def model_fbs(network: Network) -> list[_OnnxInfer]:
    """The ONNX_INFER FBs of a loaded application (their model host needs settling on the
    virtual clock)."""
    from fb.ai.onnx_infer import _OnnxInfer

    return [fb for res in network.device.resources.values() for fb in res.fbs.values()
            if isinstance(fb, _OnnxInfer)]


def _onnx_mode(fb: FBInstance) -> str:
    """An ONNX_INFER FB's MODE as its INIT reads it."""
    return str(fb.get("MODE")).strip().lower() or "auto"


def check_virtual_application(network: Network, file: Path | str, edge_index: int,
                              edge_name: str, lines: Mapping[Loc, int] | None = None) -> None:
    """Raise ConfigError (file:line of the edge's `application`) if the loaded application
    of a `clock: virtual` scenario has an FB that needs the real clock."""
    found = real_clock_fbs(network)
    if not found:
        return
    loc: Loc = ("edges", edge_index, "application")
    raise ConfigError("\n".join(
        f"{file}:{_line(lines, loc)}: {format_loc(loc)}: needs the real clock (the scenario "
        f"sets clock: virtual at line {_line(lines, ('clock',))}): edge {edge_name}: "
        f"{fb} ({type_name}) {why}"
        for fb, type_name, why in found))
