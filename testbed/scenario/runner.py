"""Run a scenario: start its parts, inject its faults, record metrics, write the run folder.

Every part (broker, plants, edge devices, cloud) is an async context manager
entered in one `AsyncExitStack`; periodic sampling and the fault schedule are
tasks of one TaskGroup. The run ends after `duration_s`, on Ctrl-C or SIGTERM,
and always writes its folder (report.json, series CSV, resolved config, report.html).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import structlog

from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.report import render_html, write_run
from testbed.scenario.spec import PlantFault, ScenarioSpec

__all__ = ["METRIC_DEFINITIONS", "RunResult", "ScenarioRunner", "rising_edges"]

log = structlog.get_logger(__name__)

_VIRTUAL_STEP_S = 0.01
"""The virtual clock's step when no plant sets one."""
_EPS_S = 1e-9
_CPU_WINDOW_S = 0.1
"""Virtual clock: the shortest wall time over which the process CPU use is computed."""

ProgressSink = Callable[[dict[str, Any]], None]

METRIC_DEFINITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("messages_lost", "messages", "gauge",
     "Sparkplug DATA messages the edge store accepted (EdgeLink stored count, each with a "
     "64-bit store id carried in the payload uuid) minus distinct ids the cloud ingested for "
     "that edge node (or the holes in the ingested id range, if more); read after the uplink "
     "drained at the end of the run. Must be 0."),
    ("messages_duplicated", "messages", "gauge",
     "rows in the cloud's per-metric tables whose store id appears more than once in the "
     "same table (a message ingested twice). Must be 0; duplicates the transport delivered "
     "and the cloud's dedupe refused are counted apart in cloud_duplicates_deduplicated."),
    ("e2e_latency_ms", "ms", "samples",
     "per live message: edge report (Sparkplug payload timestamp, wall clock, set when the "
     "FB's REQ builds the DDATA) -> cloud ingest (wall clock when the primary host decodes "
     "it); one process, same clock. Messages replayed from the store after an outage are in "
     "e2e_latency_replayed_ms."),
    ("e2e_latency_replayed_ms", "ms", "samples",
     "as e2e_latency_ms for messages sent with is_historical (stored during an outage)."),
    ("inference_latency_ms", "ms", "samples",
     "features FB CNF (which queues the ONNX_INFER REQ) -> ONNX_INFER CNF, monotonic clock, "
     "per vibration block; includes resource queueing and the model run."),
    ("sensor_to_actuation_ms", "ms", "samples",
     "PLC scan that published a vibration block (monotonic time the scan finished) -> the "
     "Modbus write of the setpoint computed from that block confirmed by the PLC (MODBUS_WRITE "
     "CNF with QO); covers OPC UA delivery, features, inference, debounce and the write."),
    ("detection_delay_s", "s", "gauge",
     "bearing wear fault onset (its scheduled start, the plant's ground truth) -> first "
     "debounced alarm of the edge application (elapsed run time)."),
    ("recovery_time_s", "s", "samples",
     "PLC back after an outage (the first scan after the outage window, which restarted its "
     "OPC UA and Modbus servers, finished) -> the edge's first process-value read with good "
     "quality (OPCUA_READ CNF with QO); monotonic."),
    ("edge_cpu_pct_mean", "%", "gauge",
     "mean of edge_cpu_pct over the run (the whole testbed process: edge runtime, PLC, broker "
     "and cloud share it, so this is an upper bound for the edge alone)."),
    ("edge_cpu_pct_max", "%", "gauge", "maximum of edge_cpu_pct over the run."),
    ("edge_rss_mb_peak", "MB", "gauge", "peak of edge_rss_mb over the run (same process)."),
    ("messages_stored_at_edge", "messages", "gauge",
     "DATA messages the edge link stored for sending during the run (EdgeLink.statistics)."),
    ("messages_ingested", "messages", "gauge",
     "distinct store ids of that edge node in the cloud database at the end."),
    ("messages_replayed", "messages", "gauge",
     "messages the edge sent from its store with is_historical (held during an outage)."),
    ("cloud_messages_ingested", "messages", "gauge",
     "messages the cloud ingested (CloudService.statistics), live during the run."),
    ("cloud_duplicates_deduplicated", "messages", "gauge",
     "copies of already ingested messages the cloud's dedupe refused (redelivery after an "
     "outage is normal; what matters is messages_duplicated = 0)."),
    ("first_alarm_s", "s", "gauge", "run time of the edge's first debounced alarm."),
    ("first_verdict_s", "s", "gauge",
     "run time of the edge alarm FB's first verdict (CNF): condition monitoring starts there."),
    ("false_alarms_per_h", "1/h", "gauge",
     "debounced alarms raised while the pump was healthy (rising edges of the alarm before the "
     "first bearing wear onset, or in the whole run when there is none) per hour of healthy "
     "monitoring (first verdict -> onset or run end)."),
    ("healthy_monitored_s", "s", "gauge",
     "the healthy monitoring time false_alarms_per_h is counted over."),
    ("actuation_failed", "writes", "counter",
     "setpoint writes the PLC did not confirm (MODBUS_WRITE CNF with QO FALSE: PLC outage)."),
    ("deployments_ok", "deployments", "counter",
     "model deployments that ended with the ONNX FB running the new version."),
    ("uplink_backlog", "messages", "series",
     "messages in the edge store not yet acknowledged by the broker, sampled every sample "
     "period; uplink_backlog_peak is its maximum."),
    ("deploy_time_s", "s", "samples",
     "cloud deploy command sent (CloudService.deploy) -> the edge's ONNX FB answered INITO "
     "on the new model version (DeployAgent installed it, the FB re-INITed: hot swap)."),
)


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def rising_edges(series: list[tuple[float, float]], *, before: float) -> int:
    """Rising edges (0 -> 1) before a time in a series that holds each transition as
    (t, old), (t, new), as the edge probe records the alarm."""
    return sum(1 for (_t0, v0), (t1, v1) in itertools.pairwise(series)
               if v0 == 0.0 and v1 == 1.0 and t1 < before)


@dataclass
class RunResult:
    run_dir: Path
    report: dict[str, Any]
    interrupted: bool = False
    fired_faults: list[str] = field(default_factory=list)


class ScenarioRunner:
    """One run of one scenario; `await run()` once."""

    def __init__(self, spec: ScenarioSpec, folder: Path, out_dir: Path, *,
                 progress: ProgressSink | None = None, sample_period_s: float = 0.5) -> None:
        self.spec = spec
        self.folder = folder
        self.out_dir = out_dir
        self.metrics = MetricsRecorder()
        self.progress = progress
        self.sample_period_s = sample_period_s
        self._t0 = 0.0
        self._wall0 = 0.0
        self._virtual_s = 0.0
        self._stop = asyncio.Event()
        self._fired: list[str] = []
        self._sections: dict[str, Any] = {}
        self._define_metrics()

    def _define_metrics(self) -> None:
        m = self.metrics
        m.define("edge_cpu_pct", "%", "series",
                 "process CPU use of the edge runtime, sampled every sample period (psutil)")
        m.define("edge_rss_mb", "MB", "series", "resident set size of the process (psutil)")
        m.define("events_processed", "events", "counter",
                 "FB event executions on all edge resources (Resource.statistics)")
        m.define("events_dropped", "events", "counter",
                 "events dropped by full resource queues (should be 0)")
        for name, unit, kind, text in METRIC_DEFINITIONS:
            m.define(name, unit, kind, text)

    def elapsed_s(self) -> float:
        """Run time: seconds since the plants started (their model time is the same); on
        the virtual clock, the virtual time the runner has moved to."""
        if self.spec.clock == "virtual":
            return self._virtual_s
        return time.monotonic() - self._t0

    def restart_clock(self) -> None:
        """Start run time now (the parts call it just before the plants start)."""
        self._t0 = time.monotonic()
        self._virtual_s = 0.0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> RunResult:
        from testbed.scenario.parts import build_parts

        started = dt.datetime.now(dt.UTC)
        self._t0 = self._wall0 = time.monotonic()
        interrupted = False
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._interrupt)
        try:
            async with contextlib.AsyncExitStack() as stack:
                parts = await build_parts(self, stack)
                if self.spec.clock == "virtual":
                    await self._run_virtual(parts)
                    interrupted = self._interrupted
                else:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._sample_loop(parts))
                        tg.create_task(self._fault_loop(parts))
                        deploys = tg.create_task(self._deploy_loop(parts))
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stop.wait(), self.spec.duration_s)
                        interrupted = self._interrupted
                        self._stop.set()
                        deploys.cancel()  # a deployment still waiting for its answer ends
                await self._sample_once(parts)
                for part in parts:
                    finish = getattr(part, "finish", None)
                    if finish is not None:
                        await finish(self.metrics)
                for part in parts:  # structured results beside the metrics (report.json)
                    section = getattr(part, "report_section", None)
                    if section is not None:
                        self._sections.update(section())
                self._detection_delay()
                self._resource_use()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return self._finish(started, interrupted)

    _interrupted = False

    @property
    def interrupted(self) -> bool:
        """Ctrl-C or SIGTERM ended the run early (parts may cut their finishing short)."""
        return self._interrupted

    def _interrupt(self) -> None:
        self._interrupted = True
        self._stop.set()

    async def _sample_loop(self, parts: Any) -> None:
        proc = psutil.Process(os.getpid())
        proc.cpu_percent(None)
        while not self._stop.is_set():
            await self._sample_once(parts)
            t = self.elapsed_s()
            self.metrics.record("edge_cpu_pct", t, proc.cpu_percent(None))
            self.metrics.record("edge_rss_mb", t, proc.memory_info().rss / 2**20)
            if self.progress is not None:
                self.progress({"elapsed_s": t, "duration_s": self.spec.duration_s,
                               "faults": list(self._fired), **self._key_metrics()})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.sample_period_s)

    async def _run_virtual(self, parts: list[Any]) -> None:
        """The virtual clock: one coroutine moves time in fixed steps (the plants' smallest
        step, else 10 ms), firing faults and taking samples at their virtual times, until
        `duration_s` or a stop; the parts do the rest in the order they were started."""
        movers = [p for p in parts if hasattr(p, "advance_to")]
        steps = [p.dt_s for p in movers if hasattr(p, "dt_s")]
        step_s = min(steps) if steps else _VIRTUAL_STEP_S
        faults = self._fault_events()
        proc = psutil.Process(os.getpid())
        cpu0, wall0 = _cpu_s(proc), time.monotonic()
        samples = 0
        tick = 0
        while True:
            t = tick * step_s
            while faults and faults[0][0] <= t + _EPS_S:
                at_s, label, fault, begin = faults.pop(0)
                await self._fire(parts, at_s, label, fault, begin)
            if t + _EPS_S >= self.spec.duration_s or self._stop.is_set():
                return  # the run's last sample follows
            if samples * self.sample_period_s <= t + _EPS_S:
                samples += 1
                await self._sample_once(parts)
                # samples come microseconds apart in wall time: CPU use since the start,
                # once the interval is long enough for the kernel's CPU-time ticks
                wall = time.monotonic() - wall0
                cpu = 100.0 * (_cpu_s(proc) - cpu0) / wall if wall >= _CPU_WINDOW_S else None
                self._sample_process(proc, t, cpu)
            tick += 1
            t_next = min(tick * step_s, self.spec.duration_s)
            for part in movers:
                moved = part.advance_to(t_next)
                if asyncio.iscoroutine(moved):
                    await moved
            self._virtual_s = t_next
            await asyncio.sleep(0)  # Ctrl-C and the plant runners' tasks get their turn

    def _sample_process(self, proc: psutil.Process, t: float, cpu_pct: float | None) -> None:
        """CPU and RSS of the process, and the progress line."""
        if cpu_pct is not None:
            self.metrics.record("edge_cpu_pct", t, cpu_pct)
        self.metrics.record("edge_rss_mb", t, proc.memory_info().rss / 2**20)
        if self.progress is not None:
            self.progress({"elapsed_s": t, "duration_s": self.spec.duration_s,
                           "faults": list(self._fired), **self._key_metrics()})

    async def _sample_once(self, parts: Any) -> None:
        for part in parts:
            sample = getattr(part, "sample", None)
            if sample is not None:
                sample(self.elapsed_s(), self.metrics)

    def _key_metrics(self) -> dict[str, Any]:
        snap = self.metrics.snapshot()
        keys = ("events_processed", "uplink_backlog", "uplink_backlog_peak",
                "cloud_messages_ingested", "first_alarm_s", "items_total")
        return {k: snap[k] for k in keys if k in snap}

    def _fault_events(self) -> list[tuple[float, str, Any, bool]]:
        """(time, label, fault, begin) of every fault window's opening and closing, in order."""
        events: list[tuple[float, str, Any, bool]] = []
        for f in self.spec.faults:
            events.append((f.start_s, f"{f.kind} start", f, True))
            if f.end_s is not None:
                events.append((f.end_s, f"{f.kind} end", f, False))
        events.sort(key=lambda e: e[0])
        return events

    async def _fault_loop(self, parts: Any) -> None:
        for at_s, label, fault, begin in self._fault_events():
            delay = at_s - self.elapsed_s()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return
            await self._fire(parts, at_s, label, fault, begin)

    async def _fire(self, parts: Any, at_s: float, label: str, fault: Any,
                    begin: bool) -> None:
        """A fault window opens or closes: logged, listed, handed to the parts."""
        self._fired.append(f"{at_s:.0f}s {label}")
        log.info("fault_fired", fault=label, at_s=at_s)
        for part in parts:
            handler = getattr(part, "on_fault", None)
            if handler is not None:
                await handler(fault, begin)

    async def _deploy_loop(self, parts: Any) -> None:
        """The cloud's deployments, in time order, beside the fault schedule (a deployment
        waits for the cloud and the edge to be connected; it must not hold up a fault)."""
        for dep in sorted(self.spec.deployments, key=lambda d: d.at_s):
            delay = dep.at_s - self.elapsed_s()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return
            self._fired.append(f"{dep.at_s:.0f}s deploy {dep.kind} {dep.name} v{dep.version}")
            log.info("deployment_started", edge=dep.edge, name=dep.name, version=dep.version)
            for part in parts:
                if getattr(getattr(part, "spec", None), "name", None) == dep.edge \
                        and hasattr(part, "deploy"):
                    await part.deploy(dep)

    def _resource_use(self) -> None:
        cpu = [v for _t, v in self.metrics.series("edge_cpu_pct")]
        rss = [v for _t, v in self.metrics.series("edge_rss_mb")]
        if cpu:
            self.metrics.gauge("edge_cpu_pct_mean", sum(cpu) / len(cpu))
            self.metrics.gauge("edge_cpu_pct_max", max(cpu))
        if rss:
            self.metrics.gauge("edge_rss_mb_peak", max(rss))

    def _detection_delay(self) -> None:
        """Fault onset (first bearing wear start, ground truth) -> first debounced alarm."""
        onsets = [f.start_s for f in self.spec.faults
                  if isinstance(f, PlantFault) and f.kind == "bearing_wear"]
        first_alarm = self.metrics.gauge_value("first_alarm_s")
        self._false_alarms(min(onsets) if onsets else None)
        if not onsets:
            return
        onset = min(onsets)
        if first_alarm is None:
            self.metrics.gauge("detection_missed", 1)
            return
        if first_alarm < onset:
            self.metrics.gauge("false_alarm_before_onset", 1)
        self.metrics.gauge("detection_delay_s", first_alarm - onset)

    def _false_alarms(self, onset: float | None) -> None:
        """Alarms raised while the pump was healthy, per hour of healthy monitoring."""
        start = self.metrics.gauge_value("first_verdict_s")
        if start is None:
            return
        end = onset if onset is not None else self.elapsed_s()
        if end <= start:
            return
        raised = rising_edges(self.metrics.series("alarm"), before=end)
        self.metrics.gauge("healthy_monitored_s", end - start)
        self.metrics.gauge("false_alarms_per_h", raised * 3600.0 / (end - start))

    def _windows(self) -> list[dict[str, Any]]:
        out = []
        for f in self.spec.faults:
            label = f"{f.kind}:{f.plant}/{f.target}" if isinstance(f, PlantFault) else f.kind
            out.append({"fault": label, "start_s": f.start_s, "end_s": f.end_s})
        return out

    def _finish(self, started: dt.datetime, interrupted: bool) -> RunResult:
        header = {
            "scenario": self.spec.name,
            "seed": self.spec.seed,
            "clock": self.spec.clock,
            "duration_s": round(self.elapsed_s(), 3),
            "wall_time_s": round(time.monotonic() - self._wall0, 3),
            "planned_duration_s": self.spec.duration_s,
            "started_at": started.isoformat(),
            "interrupted": interrupted,
        }
        run_dir = self.out_dir
        report = write_run(run_dir, header, self.metrics, self._windows(),
                           sections=self._sections)
        (run_dir / "scenario.resolved.json").write_text(
            json.dumps(self.spec.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
        render_html(run_dir)
        return RunResult(run_dir, report, interrupted, list(self._fired))
