"""The cross-site parts of a run, in start order: WAN links, federated learning, site
processes, the emulated controller-to-I/O link; and the definitions of their metrics.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from testbed.errors import ConfigError
from testbed.scenario.metrics import MetricsRecorder

if TYPE_CHECKING:
    from testbed.scenario.parts import BrokerPart, CloudPart
    from testbed.scenario.runner import ScenarioRunner
    from testbed.scenario.tsn_link import TsnLinkPart

__all__ = ["CROSS_SITE_METRICS", "ControlLinkSection", "build_cross_site_parts",
           "define_cross_site_metrics"]

CROSS_SITE_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("site_processes", "processes", "gauge",
     "edge sites run as child OS processes (`python -m testbed.cli run`), each with its own "
     "PLC, edge runtime and run folder under sites/<name>/."),
    ("site_processes_failed", "processes", "gauge",
     "site processes that never came up (edge node not born at the cloud within the start "
     "timeout), exited before the end, exited non-zero or left no report. Must be 0."),
    ("messages_lost", "messages", "gauge",
     "summed over the sites: DATA messages the site's edge store accepted (its report, read "
     "after it drained) minus distinct store ids this cloud ingested for its edge node (or the "
     "holes in the ingested id range, if more). Must be 0."),
    ("messages_duplicated", "messages", "gauge",
     "summed over the sites: rows in the cloud's per-metric tables whose store id appears "
     "more than once in the same table. Must be 0."),
    ("e2e_latency_ms", "ms", "samples",
     "per live message of every site: Sparkplug payload timestamp (site process, wall clock) "
     "-> cloud ingest (cloud process, wall clock; one host, one clock)."),
    ("cross_site_event_latency_ms", "ms", "samples",
     "per cross-site message: the publishing site's PUBLISH CNF (sent; CLOCK_MONOTONIC, "
     "shared by all processes of the host) -> the other site's SUBSCRIBE IND with the same "
     "sequence number; crosses the emulated WAN (labelled emulated)."),
    ("cross_site_messages_sent", "messages", "gauge",
     "cross-site PUBLISH CNFs with QO TRUE, both directions."),
    ("cross_site_messages_received", "messages", "gauge",
     "distinct sequence numbers the subscribing sites received, both directions."),
    ("cross_site_messages_lost", "messages", "gauge",
     "sent sequence numbers between the first and the last one the peer received that it "
     "never received (start-up and shut-down excluded); the WAN's emulated loss causes them."),
    ("cross_site_messages_duplicated", "messages", "gauge",
     "sequence numbers a subscriber received more than once."),
    ("cross_site_messages_lost_in_partition", "messages", "gauge",
     "of cross_site_messages_lost, those published while the WAN was partitioned (the "
     "wan_partition fault: every frame dropped)."),
    ("site_processes_running", "processes", "gauge",
     "site processes alive at the sample (after the end: those not yet reaped, 0)."),
    ("wan_frames_offered", "frames", "gauge",
     "datagrams the sites sent into the emulated WAN links (both directions)."),
    ("wan_frames_delivered", "frames", "gauge",
     "of wan_frames_offered, those the links forwarded to the peer site."),
    ("wan_frames_lost", "frames", "gauge",
     "frames the emulated WAN links dropped (seeded loss plus full queues)."),
    ("fl_round_time_s", "s", "samples",
     "per federated round: the aggregator (cloud process) sending the previous global model "
     "-> sending this round's, i.e. the sites' local training (in their processes) and both "
     "transfers over MQTT; perf_counter."),
    ("fl_bytes_per_round", "bytes", "samples",
     "per round: every site's update payload plus the global payload once per site."),
    ("fl_rounds", "rounds", "gauge", "federated rounds the aggregator completed."),
    ("fl_bytes_total", "bytes", "gauge",
     "every federated payload of the run: the setup round (feature moments up, initial "
     "model down) plus every round's fl_bytes_per_round."),
    ("fl_centralise_waveform_bytes", "bytes", "gauge",
     "what centralised training would have moved instead: every site's training blocks as "
     "raw float32 vibration waveforms."),
    ("fl_accuracy_federated", "1", "gauge",
     "accuracy of the last round's global model on the common held-out set (all sites' "
     "operating points and classes, seeds no training run used)."),
    ("fl_accuracy_centralized", "1", "gauge",
     "accuracy of a model trained on all sites' data pooled, same epochs, same held-out set."),
    ("fl_accuracy_local_mean", "1", "gauge",
     "mean over the sites of a model trained on the site's data alone, same held-out set."),
    ("fl_canary_deployments_ok", "deployments", "gauge",
     "sites that installed the federated model from the cloud's staged rollout (first site, "
     "then the rest only if it succeeded)."),
    ("control_deadline_miss_rate", "ratio", "gauge",
     "emulated controller-to-I/O link, all schedules together: deadline misses (frames "
     "arriving later than deadline_ms after their cycle's release, or lost) / frames sent; "
     "per schedule in tsn.<schedule>.deadline_miss_rate and report.json control_link."),
)


_SCHEDULE_FIGURES = ("frames_sent", "frames_received", "frames_lost", "deadline_misses",
                     "deadline_miss_rate", "latency_p50_ms", "latency_p99_ms",
                     "latency_max_ms", "jitter_us", "link_delay_p99_ms",
                     "be_throughput_retained", "failed", "model_deadline_miss_rate",
                     "model_latency_p50_ms", "model_latency_p99_ms", "model_latency_max_ms")


class ControlLinkSection:
    """The controller-to-I/O link's figures per schedule as a report.json section, and the
    miss rate over all schedules (the part itself records `<prefix>.<schedule>.*`)."""

    def __init__(self, part: TsnLinkPart, metrics: MetricsRecorder) -> None:
        self._part = part
        self._metrics = metrics

    async def finish(self, metrics: MetricsRecorder) -> None:
        await self._part.finish(metrics)  # idempotent: the schedules still to run end first
        sent = misses = 0.0
        for schedule in self._part.spec.schedules:
            sent += metrics.gauge_value(self._part.metric(schedule.name, "frames_sent")) or 0
            misses += metrics.gauge_value(
                self._part.metric(schedule.name, "deadline_misses")) or 0
        if sent:
            metrics.gauge("control_deadline_miss_rate", misses / sent)

    def report_section(self) -> dict[str, Any]:
        spec = self._part.spec
        schedules = {}
        for schedule in spec.schedules:
            figures = {name: self._metrics.gauge_value(self._part.metric(schedule.name, name))
                       for name in _SCHEDULE_FIGURES}
            gate = spec.gate(schedule)
            schedules[schedule.name] = {
                "kind": schedule.kind,
                "gate": None if gate is None else gate.model_dump(mode="json"),
                "error": self._part.failed.get(schedule.name), **figures}
        return {"control_link": {
            "emulated": True, "cycle_ms": spec.cycle_ms, "deadline_ms": spec.deadline,
            "link": spec.link.model_dump(mode="json"),
            "background": spec.background.model_dump(mode="json"),
            "schedules": schedules}}


def define_cross_site_metrics(metrics: MetricsRecorder) -> None:
    for name, unit, kind, text in CROSS_SITE_METRICS:
        metrics.define(name, unit, kind, text)


async def build_cross_site_parts(runner: ScenarioRunner, stack: contextlib.AsyncExitStack,
                                 values: dict[str, str], *, broker: BrokerPart | None,
                                 cloud: CloudPart | None) -> list[Any]:
    """Start the cross-site parts the scenario names; the stack owns them."""
    from testbed.scenario.federated_part import FederatedAggregatorPart, FederatedSitePart
    from testbed.scenario.sites import SitesPart
    from testbed.scenario.tsn_link import TsnLinkPart
    from testbed.scenario.wan import WanPart

    spec = runner.spec
    parts: list[Any] = []
    if spec.sites or (spec.federated is not None and spec.federated.role == "aggregator"):
        define_cross_site_metrics(runner.metrics)
    values = dict(values)
    wan: WanPart | None = None
    if spec.wan is not None and spec.sites:
        wan = await stack.enter_async_context(WanPart(spec.wan, [s.name for s in spec.sites]))
        values.update(wan.values)
        parts.append(wan)
    fed = spec.federated
    if fed is not None:
        if broker is None and "broker.port" not in values:
            raise ConfigError(f"scenario {spec.name}: federated learning needs a broker")
        port = int(values["broker.port"])
        if fed.role == "aggregator":
            aggregator = await stack.enter_async_context(FederatedAggregatorPart(
                fed, port, runner.out_dir / "federated", cloud=cloud, group=spec.cloud.group))
            aggregator.set_edge_nodes({s.name: s.edge_node for s in spec.sites})
            parts.append(aggregator)
        else:
            parts.append(await stack.enter_async_context(FederatedSitePart(fed, port)))
    if spec.sites:
        parts.append(await stack.enter_async_context(SitesPart(
            spec.sites, folder=runner.folder, run_dir=runner.out_dir, values=values,
            duration_s=spec.duration_s, cloud=cloud, federated=fed, group=spec.cloud.group,
            wan=wan, interrupted=lambda: runner.interrupted)))
    if spec.control_link is not None:  # after the sites: their start-up is CPU-heavy
        link = await stack.enter_async_context(
            TsnLinkPart(spec.control_link, runner.metrics, elapsed_s=runner.elapsed_s))
        parts += [link, ControlLinkSection(link, runner.metrics)]
    return parts
