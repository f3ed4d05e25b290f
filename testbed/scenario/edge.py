"""An edge device of a scenario: its application on the real clock (or on the virtual one
the runner moves, `advance_to`), watched and deployed to.

`EdgePart` loads the application with the scenario's placeholders filled in (PLC endpoints,
broker port, run folder, model files), installs an `EdgeProbe` on its resources, attaches a
`DeployAgent` to the edge link the application's cloud FBs opened, performs the cloud's
model deployments (cloud deploy -> agent installs -> ONNX FB re-INIT, a hot swap) and, at
the end, waits for the uplink to drain and compares cloud ingest with the edge store.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import numpy as np
import structlog
from numpy.typing import NDArray

from drivers.errors import DriverError
from drivers.mqtt.edge_link import EdgeLink
from drivers.sim.conveyor import ConveyorModel
from fb.cloud.link import edge_link, parse_link_id
from fb.io.pool import IoLease, pool_for
from testbed.ai.host import ModelHost, host_for
from testbed.api import Network, load
from testbed.deploy import ApplicationRunner, DeployAgent, ModelRegistry
from testbed.errors import ConfigError
from testbed.runtime.clock import VirtualClock
from testbed.runtime.instance import FBInstance
from testbed.scenario.line import LinePoints, LineProbe
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.models import TrainedModel
from testbed.scenario.probes import EdgeProbe, ProbePoints
from testbed.scenario.spec import DeploymentSpec, EdgeSpec, LineMonitorSpec, PlantFault
from testbed.scenario.trace import EventTrace, TracePoint, parse_trace_point
from testbed.scenario.virtual import check_virtual_application, model_fbs
from testbed.scenario.virtual_loop import DaqFeed, SetpointWriter

if TYPE_CHECKING:
    from testbed.scenario.parts import CloudPart, PlantPart, PlcPart
    from testbed.scenario.runner import ScenarioRunner

__all__ = ["EdgePart", "fill_placeholders", "ingest_view"]

log = structlog.get_logger(__name__)

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
_DRAIN_TIMEOUT_S = 8.0
_LINK_TIMEOUT_S = 10.0
_DEPLOY_TIMEOUT_S = 15.0
_LOAD_TIMEOUT_S = 60.0
"""Virtual clock: real time a model load (or close) may take on the host's loader."""
_SETTLE_ROUNDS = 100


def fill_placeholders(text: str, values: dict[str, str], where: str) -> str:
    """Replace `${name}` by `values[name]`; an unknown name is a ConfigError naming `where`."""
    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise ConfigError(f"{where}: unknown placeholder ${{{key}}}; known: "
                              f"{', '.join(sorted(values))}")
        return values[key]
    return _PLACEHOLDER.sub(one, text)


class EdgePart:
    """An edge device running its application on the real clock (see module docstring)."""

    def __init__(self, spec: EdgeSpec, runner: ScenarioRunner, *, values: dict[str, str],
                 models: dict[tuple[str, str], TrainedModel], plc: PlcPart | None,
                 cloud: CloudPart | None, plant: PlantPart | None = None) -> None:
        self.spec = spec
        self._runner = runner
        self._cloud = cloud
        self._plc = plc
        self._models = models
        folder = runner.folder
        self.virtual = runner.spec.clock == "virtual"
        self.network: Network = load(folder / spec.application,
                                     clock="virtual" if self.virtual else "real",
                                     types=[folder / t for t in spec.types], start=False)
        try:
            self._configure(spec, runner, models, values)
            if self.virtual:
                index = next(i for i, e in enumerate(runner.spec.edges) if e is spec)
                check_virtual_application(self.network, folder / "scenario.yaml", index,
                                          spec.name)
        except ConfigError:
            self.network.close()
            raise
        m = spec.monitor
        self.probe = EdgeProbe(
            ProbePoints(*(self._fb(x) for x in (
                m.process, m.features, m.inference, m.alarm, m.actuation,
                None if m.model_fb is None else f"{m.model_fb}.INITO"))),
            runner.metrics, self._virtual_now if self.virtual else runner.elapsed_s,
            timed=not self.virtual)
        try:
            self._daq, self._setpoint = self._virtual_loop(spec, plant)
        except ConfigError:
            self.network.close()
            raise
        self._host: ModelHost | None = None
        self.trace = self._event_trace(m.trace)
        self._running_versions = {name: v.version for name in m.swap_on_deploy
                                  if (v := self.registry.active(name)) is not None}
        if m.swap_on_deploy:
            runner.metrics.define(
                "models_swapped", "swaps", "counter",
                "model versions the cloud installed during the run that an ONNX FB of "
                "monitor.swap_on_deploy was re-INITed on (posted to its resource).")
        if m.daq is not None and plc is not None:
            res, daq, _pin = self.network.resolve(f"{m.daq}.REQ")

            def deliver(block: NDArray[np.float64], scan_t: float) -> None:
                def thunk() -> None:
                    daq.set("BLOCK", block)
                    self.probe.block_delivered(scan_t)
                    res.inject(f"{daq.name}.REQ")
                if not res.post(thunk):
                    runner.metrics.count("daq_blocks_dropped")

            plc.add_block_listener(deliver)
        if plc is not None:
            plc.add_outage_end_listener(self._plc_back)
        self.line: LineProbe | None = None
        if m.line is not None:
            self.line = self._line_probe(m.line, plc)
        self._lease: IoLease | None = None
        self._link: EdgeLink | None = None
        self._link_ready = asyncio.Event()
        self._apps: ApplicationRunner | None = None
        self._agent: DeployAgent | None = None
        self._deploys: list[tuple[DeploymentSpec, float, float | None]] = []

    def _configure(self, spec: EdgeSpec, runner: ScenarioRunner,
                   models: dict[tuple[str, str], TrainedModel], values: dict[str, str]) -> None:
        """Install the scenario's models in the edge's registry and write its parameters
        (placeholders filled in)."""
        self.registry = ModelRegistry(runner.out_dir / "edge" / spec.name / "models")
        values = dict(values)
        first = spec.monitor.model
        for (name, version), trained in models.items():
            if (name == first or name in spec.monitor.swap_on_deploy) \
                    and self.registry.active(name) is None:
                self.registry.install(name, version, trained.data, _sha256(trained.data))
        for name in {n for n, _ in models}:
            active = self.registry.active(name)
            if active is not None:
                values[f"model.{name}"] = str(active.path)
        for path, text in spec.parameters.items():
            self.network.write(path, fill_placeholders(text, values, f"edge {spec.name} {path}"))

    def _virtual_now(self) -> float:
        """Virtual clock: the device's time in seconds (run time; it starts at 0)."""
        return self.network.device.clock.now_ns() / 1e9

    def _virtual_loop(self, spec: EdgeSpec,
                      plant: PlantPart | None) -> tuple[DaqFeed | None, SetpointWriter | None]:
        """Virtual clock, bare plant: the DAQ feed and the setpoint write-back the monitor
        names (`testbed.scenario.virtual_loop`)."""
        m = spec.monitor
        wants = m.daq_speed is not None or m.setpoint is not None
        if plant is None or not self.virtual:
            if wants:
                raise ConfigError(f"edge {spec.name}: monitor.daq_speed and monitor.setpoint "
                                  "need clock: virtual and monitor.plant naming a bare plant "
                                  "(plc: false)")
            return None, None
        feed = writer = None
        outputs = sorted(s.name for s in plant.model.outputs)
        if m.daq_speed is not None and m.daq_speed not in outputs:
            raise ConfigError(f"edge {spec.name}: monitor.daq_speed: plant {plant.spec.name} "
                              f"has no value {m.daq_speed!r}; values: {', '.join(outputs)}")
        if m.daq is not None:
            res, daq, _pin = self.network.resolve(f"{m.daq}.REQ")
            feed = DaqFeed(res, daq, m.daq_speed,
                           lambda: self.probe.block_delivered(self._virtual_now()))
            plant.add_step_listener(feed.on_step)
        if m.setpoint is not None:
            _res, fb, event = self.network.resolve(m.setpoint)
            writer = SetpointWriter(fb, event, plant.model, m.setpoint_input)
        return feed, writer

    def _line_probe(self, line: LineMonitorSpec, plc: PlcPart | None) -> LineProbe:
        """The conveyor line watcher: the edge's events and the PLC's every scan."""
        if plc is None or not isinstance(plc.model, ConveyorModel):
            raise ConfigError(f"edge {self.spec.name}: monitor.line needs monitor.plant naming "
                              f"a conveyor behind a PLC")

        def fb(path: str) -> FBInstance:
            return self.network.resolve(path)[1]

        points = LinePoints(fb(line.sense), fb(line.decide), fb(line.act), fb(line.actuation),
                            fb(line.exit), self._fb(line.fault))
        jams = [(f.start_s, f.end_s) for f in self._runner.spec.faults
                if isinstance(f, PlantFault) and f.kind == "actuator_jam"
                and f.plant == plc.spec.name and f.target == "diverter"]
        probe = LineProbe(line, points, plc.model, self._runner.metrics, self._runner.elapsed_s,
                          jam_windows=jams)
        plc.add_scan_listener(probe.on_scan)
        return probe

    def _event_trace(self, entries: list[str]) -> EventTrace | None:
        if not entries:
            return None
        watched: dict[FBInstance, dict[str, TracePoint]] = {}
        for entry in entries:
            point = parse_trace_point(entry)
            _res, fb, event = self.network.resolve(point.event_path)
            watched.setdefault(fb, {})[event] = point
        return EventTrace(watched)

    def _fb(self, event_path: str | None) -> FBInstance | None:
        if event_path is None:
            return None
        _res, fb, _pin = self.network.resolve(event_path)
        return fb

    @property
    def group_and_node(self) -> tuple[str, str] | None:
        if self._link is None:
            return None
        cfg = self._link.config.node
        return cfg.group_id, cfg.edge_node_id

    async def __aenter__(self) -> Self:
        if not self.virtual:
            await self.network.__aenter__()
        for res in self.network.device.resources.values():
            res.add_tracer(self.probe)
            if self.line is not None:
                res.add_tracer(self.line)
            if self.trace is not None:
                res.add_tracer(self.trace)
            if self._setpoint is not None:
                res.add_tracer(self._setpoint)
        if self.line is not None and self.spec.monitor.plant is not None:
            link_id = str(self.network.read(self.spec.monitor.cloud_link or "")) \
                if self.spec.monitor.cloud_link else ""
            group, node = _group_and_node(link_id)
            self.line.set_uplink(group, node, self.spec.monitor.plant)
        self.network.device.start()
        if self.virtual:  # nothing runs the resources but advance_to: COLD now
            self.network.run_until_idle()
            if model_fbs(self.network):
                self._host = host_for(self.network.device)
            await self._settle_models()
        if self.spec.monitor.cloud_link is not None:
            await self._attach_link(str(self.network.read(self.spec.monitor.cloud_link)))
        return self

    async def _attach_link(self, link_text: str) -> None:
        link_id = parse_link_id(link_text)
        self._lease = pool_for(self.network.device).lease(f"scenario:{self.spec.name}")
        main_loop = asyncio.get_running_loop()
        same_loop = False

        async def job() -> None:
            nonlocal same_loop
            self._link = await edge_link(self._lease, link_id)  # type: ignore[arg-type]
            same_loop = asyncio.get_running_loop() is main_loop
            main_loop.call_soon_threadsafe(self._link_ready.set)

        self._lease.spawn(job, "scenario-link")
        async with asyncio.timeout(_LINK_TIMEOUT_S):
            await self._link_ready.wait()
        if self._link is None or not same_loop:
            log.warning("scenario_deploy_agent_skipped", edge=self.spec.name,
                        reason="the edge link runs on another loop")
            return
        self._apps = ApplicationRunner(self._runner.out_dir / "edge" / self.spec.name / "apps",
                                       self.network.device.library)
        await self._apps.__aenter__()
        self._agent = DeployAgent(self._link, self._apps, self.registry)
        await self._agent.__aenter__()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if self._agent is not None:
                await self._agent.aclose()
            if self._apps is not None:
                await self._apps.__aexit__(None, None, None)
            if self._lease is not None:
                self._lease.close()
        finally:
            for res in self.network.device.resources.values():
                res.remove_tracer(self.probe)
                if self.line is not None:
                    res.remove_tracer(self.line)
                if self.trace is not None:
                    res.remove_tracer(self.trace)
                if self._setpoint is not None:
                    res.remove_tracer(self._setpoint)
            if self.virtual:
                self.network.close()
                if self._host is not None:  # a device service only a real run would close
                    await self._host.aclose()
            else:
                await self.network.__aexit__(et, exc, tb)

    async def advance_to(self, t_s: float) -> None:
        """Virtual clock: run every timer due by run time `t_s`, in time order, each to
        quiescence (the device clock starts at run time 0); then the bare plant's newest
        vibration block, if any, runs through the chain; then model loads are settled."""
        clock = self.network.device.clock
        if not isinstance(clock, VirtualClock):
            raise ConfigError(f"edge {self.spec.name}: advance_to needs the virtual clock")
        clock.advance(max(0, round(t_s * 1e9) - clock.now_ns()))
        self.network.run_until_idle()
        if self._daq is not None and self._daq.deliver():
            self.network.run_until_idle()
        await self._settle_models()

    async def _settle_models(self) -> None:
        """Virtual clock: wait (real time) until the model host's loader has answered every
        load and close handed to it, then run what the answers posted (INITO...), until
        none is left; so a model is ready at the same virtual time in every run."""
        host = self._host
        if host is None:
            return
        for _ in range(_SETTLE_ROUNDS):
            async with asyncio.timeout(_LOAD_TIMEOUT_S):
                await asyncio.wrap_future(host.barrier())
            if not self.network.run_until_idle():
                return
        raise ConfigError(f"edge {self.spec.name}: model loads still answering after "
                          f"{_SETTLE_ROUNDS} rounds (an INITO that INITs again?)")

    # -- during the run --------------------------------------------------------------

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        processed = dropped = faults = 0
        for stats in self.network.device.statistics().values():
            processed += stats.events_processed
            dropped += stats.events_dropped + stats.external_dropped
            faults += stats.faults
        metrics.gauge("events_processed", processed)
        metrics.gauge("events_dropped", dropped)
        metrics.gauge("fb_faults", faults)
        link = None if self._link is None else self._link.statistics()
        if link is not None:
            metrics.gauge("uplink_backlog", link.backlog, track_peak=True)
            metrics.record("uplink_backlog", t_s, link.backlog)
        if self.line is not None:
            self.line.sample(t_s, metrics, link)
        if (self.spec.monitor.alarm is not None and not self.probe.alarm
                and self.probe.first_alarm_s is None):
            metrics.record("alarm", t_s, 0.0)
        if self._running_versions:
            self._swap_deployed(metrics)

    def _swap_deployed(self, metrics: MetricsRecorder) -> None:
        """A model version the cloud installed since: its FB re-INITs on it (hot swap)."""
        for name, fb_path in self.spec.monitor.swap_on_deploy.items():
            active = self.registry.active(name)
            if active is None or active.version == self._running_versions.get(name):
                continue
            self._running_versions[name] = active.version
            res, fb, _pin = self.network.resolve(f"{fb_path}.MODEL")
            if res.post(functools.partial(self._reinit, fb, fb_path, str(active.path))):
                metrics.count("models_swapped")
                log.info("scenario_model_swapped", edge=self.spec.name, name=name,
                         version=active.version, fb=fb_path)

    def _reinit(self, fb: FBInstance, fb_path: str, model_path: str) -> None:
        """On the resource: the ONNX FB takes the new model file and re-INITs."""
        res, _fb, _pin = self.network.resolve(f"{fb_path}.MODEL")
        self.network.write(f"{fb_path}.MODEL", model_path)
        fb.set("QI", True)
        res.inject(f"{fb.name}.INIT")

    def _plc_back(self, t: float) -> None:
        """The PLC listens again after an outage: the recovery clock starts."""
        self.probe.outage_ended_at = t

    async def deploy(self, dep: DeploymentSpec) -> None:
        """The cloud deploys a model version; the ONNX FB re-INITs on it (hot swap)."""
        if dep.kind != "model" or self._cloud is None or self.group_and_node is None:
            log.warning("scenario_deploy_skipped", edge=dep.edge, kind=dep.kind)
            return
        trained = self._models[(dep.name, dep.version)]
        group, node = self.group_and_node
        started = time.monotonic()
        ok = False
        try:
            service = self._cloud.service
            link = self._link
            assert link is not None  # group_and_node is set only with a link

            def ready() -> bool:  # both ends back after an outage, the edge born again
                return (service.statistics().connected and service.is_online(group, node)
                        and link.statistics().connected)

            async with asyncio.timeout(_DEPLOY_TIMEOUT_S):
                while not ready():  # noqa: ASYNC110 - three parties, no single event to await
                    await asyncio.sleep(0.1)
            request = await self._cloud.service.deploy(group, node, "model", dep.name,
                                                       dep.version, trained.data)
            result = await self._cloud.service.wait_deploy_result(request, _DEPLOY_TIMEOUT_S)
            ok = result.ok
            active = self.registry.active(dep.name)
            fb_path = self.spec.monitor.model_fb
            if ok and active is not None and fb_path is not None:
                await self._swap(fb_path, str(active.path))
        except (TimeoutError, DriverError) as exc:
            ok = False
            log.warning("scenario_deploy_failed", edge=dep.edge, name=dep.name,
                        version=dep.version, error=str(exc) or type(exc).__name__)
        done = self.probe.swap_done_at
        self._deploys.append((dep, started, done if ok else None))
        log.info("scenario_model_deployed", edge=dep.edge, name=dep.name, version=dep.version,
                 ok=ok and self.probe.swap_ok is not False,
                 deploy_time_s=None if done is None else round(done - started, 3))

    async def _swap(self, fb_path: str, model_path: str) -> None:
        res, fb, _pin = self.network.resolve(f"{fb_path}.MODEL")
        self.probe.swap_requested_at = time.monotonic()
        self.probe.swap_done_at = None

        def swap() -> None:
            self.network.write(f"{fb_path}.MODEL", model_path)
            fb.set("QI", True)
            res.inject(f"{fb.name}.INIT")

        self.probe.swapped.clear()
        res.post(swap)
        async with asyncio.timeout(_DEPLOY_TIMEOUT_S):
            await self.probe.swapped.wait()

    # -- at the end -------------------------------------------------------------------

    async def finish(self, metrics: MetricsRecorder) -> None:
        """Drain the uplink, then compare cloud ingest with the edge store's message ids."""
        for _dep, started, done in self._deploys:
            if done is not None:
                metrics.sample("deploy_time_s", done - started)
            metrics.count("deployments_ok" if done is not None else "deployments_failed")
        if self.probe.first_alarm_s is not None:
            metrics.gauge("first_alarm_s", self.probe.first_alarm_s)
        if self.probe.first_verdict_s is not None:
            metrics.gauge("first_verdict_s", self.probe.first_verdict_s)
        if self.virtual:
            self._virtual_counts(metrics)
        if self.trace is not None:
            await asyncio.to_thread(self.trace.write, self._runner.out_dir / "trace")
        link, cloud = self._link, self._cloud
        if link is not None and cloud is None:  # the cloud is in another process
            await self._drain_only(link, metrics)
        if link is None or cloud is None:
            if self.line is not None:  # no uplink to drain: the line's own metrics only
                self.line.finish(metrics, None if link is None else link.statistics())
            return
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            stats = link.statistics()
            if stats.backlog == 0 and cloud.service.statistics().messages_ingested >= stats.stored:
                break
            await asyncio.sleep(0.1)
        stats = link.statistics()
        if self.line is not None:
            self.line.finish(metrics, stats)
        group, node = self.group_and_node or ("", "")
        ingest = await asyncio.to_thread(_ingest_view, cloud.db_path, group, node)
        metrics.gauge("messages_stored_at_edge", stats.stored)
        metrics.gauge("messages_ingested", ingest.messages)
        metrics.gauge("messages_lost", ingest.lost(stats.stored))
        metrics.gauge("messages_duplicated", ingest.duplicated_rows)
        metrics.gauge("messages_replayed", stats.replayed)
        for value in ingest.live_latency_ms:
            metrics.sample("e2e_latency_ms", value)
        for value in ingest.replayed_latency_ms:
            metrics.sample("e2e_latency_replayed_ms", value)

    def _virtual_counts(self, metrics: MetricsRecorder) -> None:
        """Virtual clock: blocks handed to the DAQ, inferences run, setpoints written."""
        if self._daq is not None:
            metrics.define("daq_blocks", "blocks", "counter",
                           "vibration blocks the bare plant handed to the DAQ FB (one per "
                           "plant step, virtual clock)")
            metrics.count("daq_blocks", self._daq.blocks)
        runs = model_fbs(self.network)
        if runs:
            metrics.define("inferences_inline", "runs", "counter",
                           "model runs of the ONNX_INFER FBs in the event (MODE inline)")
            metrics.count("inferences_inline", sum(fb.inline_runs for fb in runs))
        if self._setpoint is not None:
            metrics.define("setpoints_written", "writes", "counter",
                           "setpoints the edge emitted that the runner wrote into the bare "
                           "plant's command input (monitor.setpoint, virtual clock)")
            metrics.count("setpoints_written", self._setpoint.writes)

    @staticmethod
    async def _drain_only(link: EdgeLink, metrics: MetricsRecorder) -> None:
        """Wait for the uplink to drain; what the edge stored is compared by the cloud's
        process (the runner of the parent scenario)."""
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while link.statistics().backlog and time.monotonic() < deadline:  # noqa: ASYNC110 - the link has no drained event; polled like finish() does
            await asyncio.sleep(0.1)
        stats = link.statistics()
        metrics.define("uplink_backlog_at_end", "messages", "gauge",
                       "messages still in the edge store when the run ended and the drain "
                       "wait (8 s) was over; 0 when the uplink drained.")
        metrics.gauge("messages_stored_at_edge", stats.stored)
        metrics.gauge("uplink_backlog_at_end", stats.backlog)
        metrics.gauge("messages_replayed", stats.replayed)


@dataclass(slots=True)
class _IngestView:
    """What the cloud database holds for one edge node."""

    messages: int = 0
    id_holes: int = 0
    duplicated_rows: int = 0
    live_latency_ms: list[float] = field(default_factory=list)
    replayed_latency_ms: list[float] = field(default_factory=list)

    def lost(self, stored: int) -> int:
        """Stored messages the cloud lacks: a hole inside the ingested ids is one of the
        stored-minus-ingested ones, so it is not counted twice; holes exceed that only
        when ids the edge did not store this run were ingested."""
        return max(stored - self.messages, self.id_holes, 0)


def _ingest_view(db_path: Path, group: str, node: str) -> _IngestView:
    """Read the cloud database (read-only): ids, duplicates per stream, ingest latencies."""
    view = _IngestView()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        ids = [int(r[0]) for r in db.execute(
            "SELECT message_id FROM messages WHERE group_id=? AND edge_node_id=? "
            "ORDER BY message_id", (group, node))]
        view.messages = len(ids)
        if ids:
            view.id_holes = (ids[-1] - ids[0] + 1) - len(set(ids))
        first_row: dict[int, tuple[int, int, int]] = {}
        streams = db.execute("SELECT id FROM streams WHERE group_id=? AND edge_node_id=?",
                             (group, node)).fetchall()
        for (stream_id,) in streams:
            rows = db.execute(f"SELECT message_id, timestamp_ms, is_historical, received_ns "  # noqa: S608 - stream ids are integers from the database itself
                              f"FROM s_{int(stream_id)}").fetchall()
            seen: set[int] = set()
            for message_id, ts_ms, historical, received_ns in rows:
                if message_id is None:
                    continue
                if message_id in seen:
                    view.duplicated_rows += 1
                seen.add(message_id)
                first_row.setdefault(int(message_id), (int(ts_ms), int(historical),
                                                       int(received_ns)))
        for ts_ms, historical, received_ns in first_row.values():
            latency = received_ns / 1e6 - ts_ms
            (view.replayed_latency_ms if historical else view.live_latency_ms).append(latency)
    finally:
        db.close()
    return view


def _group_and_node(link_id: str) -> tuple[str, str]:
    """The Sparkplug group and edge node a cloud FB ID names (empty when there is none)."""
    if not link_id:
        return "", ""
    node = parse_link_id(link_id).config.node
    return node.group_id, node.edge_node_id


ingest_view = _ingest_view
"""What the cloud database holds for one edge node (read-only; blocking)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
