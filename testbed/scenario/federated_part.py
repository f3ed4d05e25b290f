"""Federated learning as scenario parts: the cloud aggregates, each site process trains.

`FederatedAggregatorPart` (cloud process) opens the aggregator's MQTT role before the
sites start, runs FedAvg while the sites run, scores local-only, federated and centralized
models on the common held-out set, writes `federated/` (report and ONNX model) and then
rolls the federated model out through the cloud (canary: the first site, then the others
only if it installed it). `FederatedSitePart` (site process) simulates only its own site's
data and sends only weights (`testbed.ai.federated.run_site`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import structlog

from drivers.errors import DriverError
from drivers.mqtt import MqttClientConfig
from testbed.ai.errors import FederatedError
from testbed.ai.federated import (
    FederatedConfig,
    FederatedResult,
    MqttTransport,
    default_sites,
    write_outputs,
)
from testbed.ai.federated.run import aggregate_then_score, run_site
from testbed.scenario.cross_site_spec import FederatedSpec
from testbed.scenario.metrics import MetricsRecorder

if TYPE_CHECKING:
    from testbed.scenario.parts import CloudPart

__all__ = ["FederatedAggregatorPart", "FederatedSitePart", "federated_config"]

log = structlog.get_logger(__name__)

MODEL_NAME = "bearing_classifier"
"""The registry name the sites run their fault classifier under (swap_on_deploy)."""
_DEPLOY_TIMEOUT_S = 15.0


def federated_config(spec: FederatedSpec) -> FederatedConfig:
    """The training settings both roles derive from the same spec (same seeds, same data)."""
    sites = default_sites(len(spec.sites), runs_per_severity=spec.runs_per_severity)
    renamed = tuple(s.model_copy(update={"name": name})
                    for s, name in zip(sites, spec.sites, strict=True))
    return FederatedConfig(seed=spec.seed, sites=renamed, rounds=spec.rounds,
                           local_epochs=spec.local_epochs, hidden_units=spec.hidden_units,
                           run_duration_s=spec.run_duration_s, timeout_s=spec.timeout_s)


class _Background:
    """One owned task: started on enter, cancelled and awaited on exit."""

    def __init__(self) -> None:
        self._group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._task = self._group.create_task(coro, name=name)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._group is not None:
            group, self._group = self._group, None
            await group.__aexit__(None, None, None)

    async def wait(self, timeout_s: float) -> None:
        if self._task is None or self._task.done():
            return
        done, _ = await asyncio.wait({self._task}, timeout=timeout_s)
        if not done:
            log.warning("federated_task_unfinished", timeout_s=timeout_s)


class _TransportPart:
    """A federated role's part: an MQTT transport and the one task that uses it."""

    _transport: MqttTransport
    _task: _Background

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self._task.stop()
        finally:
            await self._transport.aclose()


class FederatedAggregatorPart(_TransportPart):
    """The cloud's side (see the module docstring)."""

    def __init__(self, spec: FederatedSpec, broker_port: int, out_dir: Path, *,
                 cloud: CloudPart | None, group: str) -> None:
        self.spec = spec
        self.config = federated_config(spec)
        self._transport = MqttTransport(MqttClientConfig(port=broker_port), spec.sites,
                                        prefix=spec.prefix, timeout_s=spec.timeout_s,
                                        aggregator=True, local_sites=[])
        self._out_dir = out_dir
        self._cloud = cloud
        self._group = group
        self._edge_nodes: dict[str, str] = {}
        self._task = _Background()
        self.result: FederatedResult | None = None
        self.error: str | None = None
        self.rollout: list[dict[str, Any]] = []

    def set_edge_nodes(self, nodes: dict[str, str]) -> None:
        """Site name -> Sparkplug edge node, for the rollout (the site processes' nodes)."""
        self._edge_nodes = dict(nodes)

    async def __aenter__(self) -> Self:
        await self._transport.__aenter__()
        await self._task.start(self._run(), "fl-aggregator-part")
        return self

    async def _run(self) -> None:
        try:
            self.result = await aggregate_then_score(self.config, self._transport)
            await asyncio.to_thread(write_outputs, self.result, self._out_dir)
            log.info("federated_training_done", rounds=len(self.result.report.rounds))
        except FederatedError as exc:
            self.error = str(exc)
            log.error("federated_training_failed", error=str(exc))
            return
        await self._canary(self.result.model_onnx)

    async def _canary(self, model: bytes) -> None:
        """Deploy to the first site; to the others only once it installed the model."""
        if self._cloud is None or not self._edge_nodes:
            return
        version = f"fl-{hashlib.sha256(model).hexdigest()[:8]}"
        stages = list(self._edge_nodes.items())
        for stage, (site, node) in enumerate(stages):
            started = time.monotonic()
            ok, detail = False, ""
            try:
                request = await self._cloud.service.deploy(self._group, node, "model",
                                                           MODEL_NAME, version, model)
                result = await self._cloud.service.wait_deploy_result(request,
                                                                      _DEPLOY_TIMEOUT_S)
                ok, detail = result.ok, result.error or ""
            except (TimeoutError, DriverError) as exc:
                detail = str(exc) or type(exc).__name__
            self.rollout.append({"stage": "canary" if stage == 0 else "rest", "site": site,
                                 "edge_node": node, "model": MODEL_NAME, "version": version,
                                 "ok": ok, "detail": detail,
                                 "deploy_time_s": round(time.monotonic() - started, 3)})
            log.info("federated_model_rollout", site=site, ok=ok, stage=stage)
            if not ok:
                return  # a failed canary stops the rollout

    async def finish(self, metrics: MetricsRecorder) -> None:
        await self._task.wait(self.spec.timeout_s)
        if self.result is None:
            metrics.gauge("fl_rounds", 0)
            return
        report = self.result.report
        for r in report.rounds:
            metrics.sample("fl_round_time_s", r.fl_round_time_s)
            metrics.sample("fl_bytes_per_round", r.fl_bytes_per_round)
        metrics.gauge("fl_rounds", len(report.rounds))
        last = report.rounds[-1]
        metrics.gauge("fl_accuracy_federated", last.federated.accuracy)
        metrics.gauge("fl_accuracy_centralized", last.centralized.accuracy)
        metrics.gauge("fl_accuracy_local_mean",
                      sum(s.accuracy for s in last.local) / len(last.local))
        metrics.gauge("fl_canary_deployments_ok", sum(1 for r in self.rollout if r["ok"]))
        metrics.gauge("fl_bytes_total", report.setup_bytes + sum(
            r.fl_bytes_per_round for r in report.rounds))
        metrics.gauge("fl_centralise_waveform_bytes", report.centralise_waveform_bytes)

    def report_section(self) -> dict[str, Any]:
        if self.result is None:
            return {"federated": {"error": self.error or "no result"}}
        report = self.result.report
        return {"federated": {
            "transport": report.transport,
            "sites": [s.model_dump(mode="json") for s in report.sites],
            "rounds": [r.model_dump(mode="json") for r in report.rounds],
            "update_payload_bytes": report.update_payload_bytes,
            "global_payload_bytes": report.global_payload_bytes,
            "setup_bytes": report.setup_bytes,
            "centralise_feature_bytes": report.centralise_feature_bytes,
            "centralise_waveform_bytes": report.centralise_waveform_bytes,
            "model": report.model.model_dump(mode="json"),
            "rollout": self.rollout,
        }}


_SITE_METRICS = (
    ("fl_site_updates_sent", "messages",
     "payloads this site published to the aggregator (round 0 statistics, then one weight "
     "update per round), each acknowledged by the broker."),
    ("fl_site_bytes_sent", "bytes", "payload bytes of those messages (only weights and "
     "feature moments leave the site, never its data)."),
    ("fl_site_samples", "blocks", "training blocks the site simulated for itself."),
    ("fl_site_failed", "flag", "1 when the site's federated role could not finish."),
)


class FederatedSitePart(_TransportPart):
    """A site's side, in the site's process: its own data, local training, weights out."""

    def __init__(self, spec: FederatedSpec, broker_port: int) -> None:
        assert spec.site is not None  # FederatedSpec checks a site role names its site
        self.spec = spec
        self.site = spec.site
        self.config = federated_config(spec)
        self._transport = MqttTransport(MqttClientConfig(port=broker_port), spec.sites,
                                        prefix=spec.prefix, timeout_s=spec.timeout_s,
                                        aggregator=False, local_sites=[spec.site])
        self._task = _Background()
        self.samples: int | None = None
        self.error: str | None = None
        self.done_after_s: float | None = None

    async def __aenter__(self) -> Self:
        try:
            await self._transport.__aenter__()
        except FederatedError as exc:  # the site runs on without federated learning
            self.error = str(exc)
            log.error("federated_site_failed", site=self.site, error=str(exc))
            return self
        await self._task.start(self._run(), "fl-site-part")
        return self

    async def _run(self) -> None:
        started = time.monotonic()
        try:
            self.samples = await run_site(self.config, self.site, self._transport)
            self.done_after_s = time.monotonic() - started
            log.info("federated_site_done", site=self.site, samples=self.samples)
        except FederatedError as exc:
            self.error = str(exc)
            log.error("federated_site_failed", site=self.site, error=str(exc))

    async def finish(self, metrics: MetricsRecorder) -> None:
        await self._task.wait(self.spec.timeout_s)
        for name, unit, text in _SITE_METRICS:
            metrics.define(name, unit, "gauge", text)
        stats = self._transport.statistics()
        metrics.gauge("fl_site_updates_sent", stats.updates_sent)
        metrics.gauge("fl_site_bytes_sent", stats.bytes_sent)
        metrics.gauge("fl_site_samples", self.samples or 0)
        metrics.gauge("fl_site_failed", 0 if self.error is None and self.samples else 1)
