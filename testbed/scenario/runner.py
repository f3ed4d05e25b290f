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
from testbed.scenario.spec import BrokerOutage, PlantFault, ScenarioSpec

__all__ = ["RunResult", "ScenarioRunner"]

log = structlog.get_logger(__name__)

ProgressSink = Callable[[dict[str, Any]], None]


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
        self._stop = asyncio.Event()
        self._fired: list[str] = []
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

    def elapsed_s(self) -> float:
        return time.monotonic() - self._t0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> RunResult:
        from testbed.scenario.parts import build_parts

        started = dt.datetime.now(dt.UTC)
        self._t0 = time.monotonic()
        interrupted = False
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._interrupt)
        try:
            async with contextlib.AsyncExitStack() as stack:
                parts = await build_parts(self, stack)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._sample_loop(parts))
                    tg.create_task(self._fault_loop(parts))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), self.spec.duration_s)
                    interrupted = self._interrupted
                    self._stop.set()
                await self._sample_once(parts)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return self._finish(started, interrupted)

    _interrupted = False

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

    async def _sample_once(self, parts: Any) -> None:
        for part in parts:
            sample = getattr(part, "sample", None)
            if sample is not None:
                sample(self.elapsed_s(), self.metrics)

    def _key_metrics(self) -> dict[str, Any]:
        snap = self.metrics.snapshot()
        keys = ("events_processed", "messages_lost", "messages_duplicated", "uplink_backlog")
        return {k: snap[k] for k in keys if k in snap}

    async def _fault_loop(self, parts: Any) -> None:
        events: list[tuple[float, str, Any, bool]] = []
        for f in self.spec.faults:
            events.append((f.start_s, f"{f.kind} start", f, True))
            if f.end_s is not None:
                events.append((f.end_s, f"{f.kind} end", f, False))
        events.sort(key=lambda e: e[0])
        for at_s, label, fault, begin in events:
            delay = at_s - self.elapsed_s()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return
            self._fired.append(f"{at_s:.0f}s {label}")
            log.info("fault_fired", fault=label, at_s=at_s)
            for part in parts:
                handler = getattr(part, "on_fault", None)
                if handler is not None:
                    await handler(fault, begin)

    def _windows(self) -> list[dict[str, Any]]:
        out = []
        for f in self.spec.faults:
            label = f.kind if isinstance(f, BrokerOutage) else f"{f.kind}:{f.plant}/{f.target}"
            if isinstance(f, PlantFault | BrokerOutage):
                out.append({"fault": label, "start_s": f.start_s, "end_s": f.end_s})
        return out

    def _finish(self, started: dt.datetime, interrupted: bool) -> RunResult:
        header = {
            "scenario": self.spec.name,
            "seed": self.spec.seed,
            "clock": self.spec.clock,
            "duration_s": round(self.elapsed_s(), 3),
            "planned_duration_s": self.spec.duration_s,
            "started_at": started.isoformat(),
            "interrupted": interrupted,
        }
        run_dir = self.out_dir
        report = write_run(run_dir, header, self.metrics, self._windows())
        (run_dir / "scenario.resolved.json").write_text(
            json.dumps(self.spec.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
        render_html(run_dir)
        return RunResult(run_dir, report, interrupted, list(self._fired))
