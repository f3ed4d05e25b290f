"""Edge sites as child processes.

`SitesPart` starts each site (`SiteProcessSpec`) as `python -m testbed.cli run <file>` with
its own run folder under `sites/<name>/` (the resolved site scenario, `process.log` with
its output, its own report.json). A site is healthy once its edge node is born at the
cloud; one that exits early or never comes up is reported (`site_processes_failed`), never
waited for past its deadlines. At the end each child gets until `EXIT_TIMEOUT_S` to finish
(drain its uplink, write its folder), then SIGTERM, then SIGKILL; it is always reaped.
The cloud (this process) then counts each site's messages: lost = stored at the site (its
report) - distinct ids ingested + holes, duplicated = repeated ids.
The distributed application's figures across the WAN (`testbed.scenario.wan`) come from
the sites' event traces once they ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import structlog
import yaml

from testbed.errors import ConfigError
from testbed.scenario.cross_site_spec import FederatedSpec, SiteProcessSpec
from testbed.scenario.edge import ingest_view
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.wan import CrossSiteFlow, WanPart, flow_figures

if TYPE_CHECKING:
    from io import BufferedWriter

    from testbed.scenario.parts import CloudPart

__all__ = ["SitesPart", "resolve_site_file"]

log = structlog.get_logger(__name__)

EXIT_TIMEOUT_S = 45.0
"""A child past the run's end gets this long to drain and write its folder."""
_TERM_TIMEOUT_S = 10.0
_FINISH_LEAD_S = 4.0
"""A site runs this much shorter than the cloud (it started later and must drain first)."""
_PARENT_KEYS = re.compile(r"\$\{((?:broker|wan)\.[^}]+)\}")


def resolve_site_file(source: Path, values: dict[str, str], *, duration_s: float,
                      federated: FederatedSpec | None, site: str) -> dict[str, Any]:
    """The site's scenario with the parent's endpoints filled in and absolute paths.

    Only `${broker.*}` and `${wan.*}` are the parent's; the site's own placeholders
    (`${pump.opcua}`, `${run_dir}`, ...) stay for the child to fill.
    """
    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise ConfigError(f"{source}: unknown placeholder ${{{key}}}; known: "
                              f"{', '.join(sorted(k for k in values if '.' in k))}")
        return values[key]

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return _PARENT_KEYS.sub(one, node)
        if isinstance(node, list):
            return [fill(x) for x in node]
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        return node

    data = fill(yaml.safe_load(source.read_text(encoding="utf-8")))
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a site scenario is a mapping")
    folder = source.parent.resolve()
    for edge in data.get("edges", []):
        edge["application"] = str(folder / edge["application"])
        edge["types"] = [str(folder / t) for t in edge.get("types", [])]
    data["duration_s"] = duration_s
    if federated is not None:
        data["federated"] = federated.model_copy(
            update={"role": "site", "site": site}).model_dump(mode="json")
    return data


_PER_SITE = {
    "messages_stored_at_edge": "DATA messages its edge store accepted (its report, after the "
                               "uplink drained).",
    "messages_ingested": "distinct store ids of its edge node in the cloud database.",
    "messages_lost": "messages_stored_at_edge - messages_ingested + holes in the ingested id "
                     "range. Must be 0.",
    "messages_duplicated": "store ids of its edge node ingested more than once into the same "
                           "table. Must be 0.",
}


@dataclass
class _Site:
    spec: SiteProcessSpec
    folder: Path
    process: asyncio.subprocess.Process | None = None
    log_file: BufferedWriter | None = None
    started_at: float = 0.0
    healthy_after_s: float | None = None
    died_early: bool = False
    returncode: int | None = None
    stopped_by: str = "exit"
    report: dict[str, Any] = field(default_factory=dict)


class SitesPart:
    """The site processes (see the module docstring)."""

    def __init__(self, specs: list[SiteProcessSpec], *, folder: Path, run_dir: Path,
                 values: dict[str, str], duration_s: float, cloud: CloudPart | None,
                 federated: FederatedSpec | None, group: str,
                 wan: WanPart | None = None,
                 interrupted: Callable[[], bool] | None = None) -> None:
        self._values = values
        self._interrupted = interrupted or (lambda: False)
        self._wan = wan
        self._cloud = cloud
        self._group = group
        self._federated = federated
        self._duration_s = max(5.0, duration_s - _FINISH_LEAD_S)
        self._scenario_folder = folder
        self.sites = [_Site(s, run_dir / "sites" / s.name) for s in specs]
        self._finished = False

    async def __aenter__(self) -> Self:
        try:
            for site in self.sites:
                await self._spawn(site)
            await asyncio.gather(*(self._wait_healthy(s) for s in self.sites))
        except BaseException:
            await self._stop_all()
            raise
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop_all()

    async def _spawn(self, site: _Site) -> None:
        site.folder.mkdir(parents=True, exist_ok=True)
        data = resolve_site_file(self._scenario_folder / site.spec.scenario, self._values,
                                 duration_s=self._duration_s, federated=self._federated,
                                 site=site.spec.name)
        file = site.folder / "scenario.yaml"
        file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        site.log_file = (site.folder / "process.log").open("wb")
        site.started_at = time.monotonic()
        site.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "testbed.cli", "run", str(file), "--out",
            str(site.folder / "run"), "--no-progress", "--log-level", "info",
            stdin=asyncio.subprocess.DEVNULL, stdout=site.log_file,
            stderr=asyncio.subprocess.STDOUT)
        log.info("site_process_started", site=site.spec.name, pid=site.process.pid)

    async def _wait_healthy(self, site: _Site) -> None:
        """Healthy: the site's edge node is born at the cloud (telemetry flows end to end)."""
        assert site.process is not None  # spawned first
        deadline = site.started_at + site.spec.start_timeout_s
        while time.monotonic() < deadline:
            if site.process.returncode is not None:
                break
            if self._cloud is not None and self._cloud.service.is_online(
                    self._group, site.spec.edge_node):
                site.healthy_after_s = time.monotonic() - site.started_at
                log.info("site_process_healthy", site=site.spec.name,
                         after_s=round(site.healthy_after_s, 2))
                return
            await asyncio.sleep(0.1)
        log.error("site_process_unhealthy", site=site.spec.name,
                  returncode=site.process.returncode, log=str(site.folder / "process.log"))

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        running = 0
        for site in self.sites:
            proc = site.process
            if proc is None:
                continue
            if proc.returncode is None:
                running += 1
            elif not self._finished and not site.died_early and (
                    proc.returncode != 0
                    or time.monotonic() - site.started_at < self._duration_s):
                site.died_early = True  # a clean exit after its whole run is not a death
                log.error("site_process_died", site=site.spec.name, returncode=proc.returncode,
                          at_s=round(t_s, 2), log=str(site.folder / "process.log"))
        metrics.gauge("site_processes_running", running)

    async def _reap(self, site: _Site, timeout_s: float) -> None:
        proc = site.process
        try:
            if proc is None:
                return
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), timeout_s)
                except TimeoutError:
                    site.stopped_by = "SIGTERM"
                    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                        proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), _TERM_TIMEOUT_S)
                    except TimeoutError:
                        site.stopped_by = "SIGKILL"
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                        await proc.wait()
            site.returncode = proc.returncode
        finally:
            if site.log_file is not None:
                site.log_file.close()
                site.log_file = None

    async def _stop_all(self) -> None:
        for site in self.sites:
            if site.process is not None and site.process.returncode is None:
                site.stopped_by = "SIGTERM"
                with contextlib.suppress(ProcessLookupError):
                    site.process.send_signal(signal.SIGTERM)
        for site in self.sites:
            await self._reap(site, _TERM_TIMEOUT_S)

    async def finish(self, metrics: MetricsRecorder) -> None:
        """Let the children end, reap them, read their reports and count their messages."""
        self._finished = True
        if self._interrupted():  # the run was stopped: stop the sites now, not at their end
            for site in self.sites:
                if site.process is not None and site.process.returncode is None:
                    site.stopped_by = "SIGTERM"
                    with contextlib.suppress(ProcessLookupError):
                        site.process.send_signal(signal.SIGTERM)
        await asyncio.gather(*(self._reap(s, EXIT_TIMEOUT_S) for s in self.sites))
        lost = duplicated = failed = 0
        for site in self.sites:
            report_file = site.folder / "run" / "report.json"
            if report_file.is_file():
                site.report = json.loads(report_file.read_text(encoding="utf-8"))
            ok = (site.returncode == 0 and site.healthy_after_s is not None
                  and not site.died_early and bool(site.report))
            failed += not ok
            stored = self._site_metric(site, "messages_stored_at_edge")
            if self._cloud is None or stored is None:
                continue
            view = await asyncio.to_thread(ingest_view, self._cloud.db_path, self._group,
                                           site.spec.edge_node)
            site_lost = view.lost(int(stored))
            name = site.spec.name
            for key, text in _PER_SITE.items():
                metrics.define(f"{name}.{key}", "messages", "gauge", f"site {name}: {text}")
            metrics.gauge(f"{name}.messages_stored_at_edge", stored)
            metrics.gauge(f"{name}.messages_ingested", view.messages)
            metrics.gauge(f"{name}.messages_lost", site_lost)
            metrics.gauge(f"{name}.messages_duplicated", view.duplicated_rows)
            for value in view.live_latency_ms:
                metrics.sample("e2e_latency_ms", value)
            lost += site_lost
            duplicated += view.duplicated_rows
            for key in ("first_alarm_s", "detection_delay_s", "inference_latency_ms",
                        "sensor_to_actuation_ms", "edge_cpu_pct_mean", "edge_rss_mb_peak",
                        "models_swapped"):
                entry = site.report.get("metrics", {}).get(key, {})
                for stat in ("value", "p50", "p99"):
                    if entry.get(stat) is not None:
                        suffix = "" if stat == "value" else f"_{stat}"
                        metrics.define(f"{name}.{key}{suffix}", entry.get("unit", ""), "gauge",
                                       f"site {name}'s {key}{' ' + stat if suffix else ''} "
                                       f"from its own report: {entry.get('definition', '')}")
                        metrics.gauge(f"{name}.{key}{suffix}", entry[stat])
        self._cross_site(metrics)
        metrics.gauge("site_processes", len(self.sites))
        metrics.gauge("site_processes_failed", failed)
        if self._cloud is not None:
            metrics.gauge("messages_lost", lost)
            metrics.gauge("messages_duplicated", duplicated)
        metrics.gauge("site_processes_running",
                      sum(1 for s in self.sites if s.returncode is None))

    def _cross_site(self, metrics: MetricsRecorder) -> None:
        by_name = {s.spec.name: s for s in self.sites}
        totals = [0, 0, 0, 0]
        in_partition = self._wan.in_partition if self._wan is not None else None
        lost_in_partition = 0
        for site in self.sites:
            peer = by_name.get(site.spec.publishes_to or "")
            if peer is None or site.spec.publish_trace is None \
                    or peer.spec.subscribe_trace is None:
                continue
            flow = CrossSiteFlow(
                f"{site.spec.name}->{peer.spec.name}",
                site.folder / "run" / "trace" / f"{site.spec.publish_trace}.csv",
                peer.folder / "run" / "trace" / f"{peer.spec.subscribe_trace}.csv")
            figures = flow_figures(flow, in_partition)
            lost_in_partition += figures.lost_in_partition
            if self._wan is not None and self._wan.partitions_ns:
                # the site's own loop during the cut: each publish follows one local verdict
                name = f"{site.spec.name}.local_verdicts_in_partition"
                metrics.define(name, "verdicts", "gauge",
                               "the site's detector verdicts published (PUBLISH CNF) while "
                               "the WAN was partitioned: its local loop ran on regardless.")
                metrics.gauge(name, figures.sent_in_partition)
            for value in figures.latencies_ms:
                metrics.sample("cross_site_event_latency_ms", value)
            flow_lost = f"cross_site.{site.spec.name}_to_{peer.spec.name}.lost"
            metrics.define(flow_lost, "messages", "gauge",
                           f"cross_site_messages_lost of the {flow.name} direction alone.")
            metrics.gauge(flow_lost, figures.lost)
            for i, n in enumerate((figures.sent, figures.received, figures.lost,
                                   figures.duplicated)):
                totals[i] += n
        for name, n in zip(("sent", "received", "lost", "duplicated"), totals, strict=True):
            metrics.gauge(f"cross_site_messages_{name}", n)
        if self._wan is not None and self._wan.partitions_ns:
            metrics.gauge("cross_site_messages_lost_in_partition", lost_in_partition)

    @staticmethod
    def _site_metric(site: _Site, name: str) -> float | None:
        value = site.report.get("metrics", {}).get(name, {}).get("value")
        return None if value is None else float(value)

    def report_section(self) -> dict[str, Any]:
        return {"sites": [{
            "name": s.spec.name,
            "edge_node": s.spec.edge_node,
            "pid": None if s.process is None else s.process.pid,
            "parent_pid": os.getpid(),
            "returncode": s.returncode,
            "stopped_by": s.stopped_by,
            "healthy_after_s": s.healthy_after_s,
            "died_early": s.died_early,
            "run_folder": str(s.folder / "run"),
            "report_present": bool(s.report),
        } for s in self.sites]}
