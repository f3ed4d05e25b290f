"""A scenario part: a cyclic controller-to-I/O flow over an emulated TSN link, per schedule.

For each schedule of the spec in turn, the part starts two in-process devices on the
real clock: the controller (E_CYCLE -> E_CTU -> STRING padding -> PUBLISH_2 carrying the
sequence number) and the I/O side (SUBSCRIBE_2 -> UINT2UINT, the value applied), and an
`EmulatedLink` (drivers.net) between them whose control class carries the PUBLISH
datagrams while a paced UDP source pushes best-effort datagrams through the same link.
The link clock starts at a cycle release, so a qbv gate window opens at every release.
A `ControlProbe` on both resources records releases and arrivals; when the schedule's
window and grace are over, its figures go to the `MetricsRecorder` as
`<prefix>.<schedule>.<metric>` (see `TSN_METRICS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog

from drivers.errors import DriverError
from drivers.net import EmulatedLink
from testbed.errors import TestbedError
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.tsn_apps import ControlFlow, TsnLinkError
from testbed.scenario.tsn_model import ModelResult, replay_schedule
from testbed.scenario.tsn_probe import ControlProbe, ScheduleResult
from testbed.scenario.tsn_spec import (
    TsnBackgroundSpec,
    TsnLinkProfileSpec,
    TsnLinkSpec,
    TsnScheduleSpec,
    default_schedules,
)
from testbed.scenario.tsn_traffic import BestEffortTraffic

__all__ = ["TSN_METRICS", "ModelResult", "ScheduleResult", "TsnBackgroundSpec", "TsnLinkError",
           "TsnLinkPart", "TsnLinkProfileSpec", "TsnLinkSpec", "TsnLinkState",
           "TsnLinkStatistics", "TsnScheduleSpec", "default_schedules"]

log = structlog.get_logger(__name__)

_FINISH_MARGIN_S = 10.0
_HOST = "127.0.0.1"

TSN_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("frames_sent", "frames", "gauge",
     "emulated TSN link: control frames released by the controller's E_CYCLE inside the "
     "schedule's measuring window and sent by PUBLISH (CNF with QO)."),
    ("frames_received", "frames", "gauge",
     "emulated TSN link: of frames_sent, those the I/O side's SUBSCRIBE delivered (IND with "
     "QO) before the grace period after the window ended."),
    ("frames_lost", "frames", "gauge",
     "emulated TSN link: frames_sent - frames_received (link loss, queue drops, or still "
     "queued when the grace period ended)."),
    ("deadline_misses", "frames", "gauge",
     "emulated TSN link: frames received later than deadline_ms after their cycle's release "
     "(the E_CYCLE deadline that fired, monotonic clock) plus frames lost."),
    ("deadline_miss_rate", "ratio", "gauge",
     "emulated TSN link: deadline_misses / frames_sent."),
    ("latency_ms", "ms", "samples",
     "emulated TSN link: cycle release (E_CYCLE deadline, monotonic) -> the I/O resource "
     "takes SUBSCRIBE's IND (monotonic), per received frame; includes the FB chain, the "
     "loopback UDP hops and the emulator's ~1 ms forwarding tick."),
    ("latency_p50_ms", "ms", "gauge", "emulated TSN link: median of latency_ms."),
    ("latency_p99_ms", "ms", "gauge", "emulated TSN link: nearest-rank p99 of latency_ms."),
    ("latency_max_ms", "ms", "gauge", "emulated TSN link: maximum of latency_ms."),
    ("jitter_us", "us", "gauge",
     "emulated TSN link: standard deviation of the inter-arrival time at the I/O side of "
     "consecutive control frames that both arrived (monotonic clock)."),
    ("jitter_range_us", "us", "gauge",
     "emulated TSN link: max - min of the same inter-arrival times as jitter_us."),
    ("window_start_s", "s", "gauge",
     "emulated TSN link: run time at which the schedule's measuring window opened (it "
     "lasts duration_s; the control_latency_ms time line shows the schedules in turn)."),
    ("failed", "flag", "gauge",
     "emulated TSN link: 1 when the schedule could not be set up or run (see the log "
     "event tsn_schedule_failed), else 0."),
    ("be_offered_mbps", "Mbit/s", "gauge",
     "emulated TSN link: best-effort load offered during the window (datagrams sent x "
     "(size + 42 header bytes) x 8 / window)."),
    ("be_throughput_mbps", "Mbit/s", "gauge",
     "emulated TSN link: of the best-effort datagrams sent during the window, those that "
     "reached the sink, as a rate over the window (same byte count as be_offered_mbps)."),
    ("be_throughput_retained", "ratio", "gauge",
     "emulated TSN link: best-effort datagrams delivered / offered during the window."),
    ("link_queue_drops", "frames", "gauge",
     "emulated TSN link: frames of any class dropped by a full queue of the link model "
     "during the whole schedule (LinkStatistics.queue_drops)."),
    ("link_lost", "frames", "gauge",
     "emulated TSN link: frames of any class lost by the link model's seeded loss "
     "during the whole schedule."),
    ("link_delay_p50_ms", "ms", "gauge",
     "emulated TSN link: median, over the received frames of the window, of the control "
     "frame's delay in the link (arrival at the link -> delivery) as the link model computes "
     "it: exact, free of the host's scheduling noise."),
    ("link_delay_p99_ms", "ms", "gauge", "emulated TSN link: p99 of the same link delays."),
    ("link_delay_max_ms", "ms", "gauge", "emulated TSN link: maximum of the same link delays."),
    ("model_deadline_miss_rate", "ratio", "gauge",
     "emulated TSN link, network share only: deadline_miss_rate of a replay of the schedule "
     "on a fresh link model (same profile and seed; control frames offered exactly at each "
     "release, best effort exactly paced; computed, not slept): identical on every machine "
     "and on the virtual clock."),
    ("model_latency_p50_ms", "ms", "gauge",
     "emulated TSN link, network share only: median release -> delivery in the replay."),
    ("model_latency_p99_ms", "ms", "gauge",
     "emulated TSN link, network share only: p99 release -> delivery in the replay."),
    ("model_latency_max_ms", "ms", "gauge",
     "emulated TSN link, network share only: maximum release -> delivery in the replay."),
    ("model_be_throughput_retained", "ratio", "gauge",
     "emulated TSN link, network share only: best-effort datagrams delivered / offered in "
     "the replay's window."),
    ("host_overhead_p99_ms", "ms", "gauge",
     "emulated TSN link: p99 of latency_ms - link delay per frame: what the host added "
     "(controller's send lateness, loopback hops, the emulator's forwarding, the I/O "
     "resource); it is not part of the emulated network."),
)


_TIMELINE = "control_latency_ms"


class TsnLinkState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DONE = "done"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class TsnLinkStatistics:
    state: TsnLinkState
    schedules_completed: int
    schedules_failed: int
    current: str | None


class TsnLinkPart:
    """Runs the spec's schedules one after the other (a scenario part, see `parts`).

    The schedules start when the part is entered (after `start_delay_s`); each schedule's
    metrics are recorded as soon as it completes; `finish` waits for the rest (bounded by
    the planned duration) and `aclose` cancels what still runs.
    """

    def __init__(self, spec: TsnLinkSpec, metrics: MetricsRecorder, *,
                 elapsed_s: Callable[[], float] | None = None) -> None:
        """`elapsed_s`: the scenario's run time, for the latency time line (default:
        seconds since the part was entered)."""
        self.spec = spec
        self.metrics = metrics
        self._elapsed_s = elapsed_s
        self.results: dict[str, ScheduleResult] = {}
        self.failed: dict[str, str] = {}
        self._state = TsnLinkState.NEW
        self._current: str | None = None
        self._started_at = 0.0
        self._done = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    def metric(self, schedule: str, name: str) -> str:
        """The full metric name of one schedule's figure."""
        return f"{self.spec.metric_prefix}.{schedule}.{name}"

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not TsnLinkState.NEW:
            raise TsnLinkError("a TsnLinkPart runs once")
        self._define_metrics()
        self._state = TsnLinkState.RUNNING
        self._started_at = time.monotonic()
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._task = self._tg.create_task(self._run_all(), name=f"tsn-link:{self.spec.name}")
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._state is TsnLinkState.CLOSED:
            return
        self._state = TsnLinkState.CLOSED
        if self._task is not None:
            self._task.cancel()
        tg, self._tg = self._tg, None
        if tg is not None:
            await tg.__aexit__(None, None, None)

    async def wait_done(self, timeout_s: float | None = None) -> bool:
        """Wait until every schedule ran; False when `timeout_s` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._done.wait()
        except TimeoutError:
            return False
        return True

    def statistics(self) -> TsnLinkStatistics:
        return TsnLinkStatistics(self._state, len(self.results), len(self.failed),
                                 self._current)

    # --- scenario part protocol -----------------------------------------------------------

    def elapsed_s(self) -> float:
        if self._elapsed_s is not None:
            return self._elapsed_s()
        return time.monotonic() - self._started_at

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        metrics.gauge(f"{self.spec.metric_prefix}.schedules_completed", len(self.results))

    async def finish(self, metrics: MetricsRecorder) -> None:
        """Wait for the schedules still to run (up to their planned time), then count."""
        remaining = self.spec.planned_duration_s - (time.monotonic() - self._started_at)
        if not await self.wait_done(max(remaining, 0.0) + _FINISH_MARGIN_S):
            log.warning("tsn_schedules_unfinished", part=self.spec.name,
                        completed=len(self.results), planned=len(self.spec.schedules))
        metrics.gauge(f"{self.spec.metric_prefix}.schedules_completed", len(self.results))

    # --- running ----------------------------------------------------------------------------

    def _define_metrics(self) -> None:
        m = self.metrics
        prefix = self.spec.metric_prefix
        spec = self.spec
        m.define(f"{prefix}.schedules_completed", "schedules", "gauge",
                 "emulated TSN link: schedules of the part that ran to the end.")
        m.define(f"{prefix}.{_TIMELINE}", "ms", "series",
                 "emulated TSN link: latency of every control frame received in a measuring "
                 "window (as latency_ms) at its arrival's run time, all schedules in turn.")
        for schedule in spec.schedules:
            gate = spec.gate(schedule)
            window = "" if gate is None else (
                f", protected window {gate.entries[-2].duration_us / 1000:g} ms at "
                f"{schedule.offset_ms:g} ms after each release")
            about = (f" Schedule {schedule.name!r} ({schedule.kind}{window}); cycle "
                     f"{spec.cycle_ms:g} ms, deadline {spec.deadline:g} ms, link "
                     f"{spec.link.bandwidth_mbps:g} Mbit/s, best effort offered "
                     f"{spec.background.offered_mbps:.3g} Mbit/s.")
            for name, unit, kind, text in TSN_METRICS:
                m.define(self.metric(schedule.name, name), unit, kind, text + about)

    async def _run_all(self) -> None:
        try:
            if self.spec.start_delay_s:
                await asyncio.sleep(self.spec.start_delay_s)
            for schedule in self.spec.schedules:
                self._current = schedule.name
                try:
                    result = await self.run_schedule(schedule)
                except (TestbedError, DriverError, OSError) as exc:
                    self.failed[schedule.name] = f"{type(exc).__name__}: {exc}"
                    self.metrics.gauge(self.metric(schedule.name, "failed"), 1)
                    log.error("tsn_schedule_failed", part=self.spec.name,
                              schedule=schedule.name, error=str(exc))
                    continue
                self.results[schedule.name] = result
                self.record(result)
                self._timeline(result)
        finally:
            self._current = None
            if self._state is TsnLinkState.RUNNING:
                self._state = TsnLinkState.DONE
            self._done.set()

    def record(self, r: ScheduleResult) -> None:
        """Write one schedule's figures into the metrics recorder."""
        m = self.metrics

        def put(name: str, value: float | None) -> None:
            if value is not None:
                m.gauge(self.metric(r.name, name), value)

        put("frames_sent", r.frames_sent)
        put("frames_received", r.frames_received)
        put("frames_lost", r.frames_lost)
        put("deadline_misses", r.deadline_misses)
        put("deadline_miss_rate", r.deadline_miss_rate)
        for value in r.latencies_ms:
            m.sample(self.metric(r.name, "latency_ms"), value)
        put("latency_p50_ms", r.latency_ms(50))
        put("latency_p99_ms", r.latency_ms(99))
        put("latency_max_ms", max(r.latencies_ms, default=None))
        put("jitter_us", r.jitter_us)
        put("jitter_range_us", r.jitter_range_us)
        put("failed", 0)
        be = r.best_effort
        put("be_offered_mbps", be.offered_mbps)
        put("be_throughput_mbps", be.delivered_mbps)
        put("be_throughput_retained", be.retained)
        put("link_queue_drops", r.link_queue_drops)
        put("link_lost", r.link_lost)
        put("link_delay_p50_ms", r.link_delay(50))
        put("link_delay_p99_ms", r.link_delay(99))
        put("link_delay_max_ms", r.link_delay(100))
        put("host_overhead_p99_ms", r.host_overhead(99))
        put("model_deadline_miss_rate", r.model.deadline_miss_rate)
        put("model_latency_p50_ms", r.model.delay_ms(50))
        put("model_latency_p99_ms", r.model.delay_ms(99))
        put("model_latency_max_ms", r.model.delay_ms(100))
        put("model_be_throughput_retained", r.model.be_retained)

    def _timeline(self, r: ScheduleResult) -> None:
        """The schedule's latencies at their arrivals' run time (monotonic -> run time)."""
        offset_s = self.elapsed_s() - time.monotonic_ns() / 1e9
        m = self.metrics
        m.gauge(self.metric(r.name, "window_start_s"), r.window_start_ns / 1e9 + offset_s)
        name = f"{self.spec.metric_prefix}.{_TIMELINE}"
        for arrival_ns, latency in zip(r.arrivals_ns, r.latencies_ms, strict=True):
            m.record(name, arrival_ns / 1e9 + offset_s, latency)

    async def run_schedule(self, schedule: TsnScheduleSpec) -> ScheduleResult:
        """Run one schedule from scratch (devices, link, traffic) and measure it."""
        spec = self.spec
        log.info("tsn_schedule_started", part=spec.name, schedule=schedule.name,
                 kind=schedule.kind)
        async with contextlib.AsyncExitStack() as stack:
            flow = await ControlFlow.start(stack, spec.cycle_ms, spec.payload_bytes)
            traffic = await stack.enter_async_context(BestEffortTraffic(
                spec.background.rate_per_s, spec.background.datagram_bytes, _HOST))
            period_ns, next_release_ns = await flow.start_cycle()
            # link time 0 = a release (in the past), so gate windows open at releases
            epoch_ns = next_release_ns - 2 * period_ns
            try:
                link = await stack.enter_async_context(EmulatedLink(
                    spec.link_profile(schedule), _HOST, epoch_ns=epoch_ns))
                control = await link.add_port(flow.subscriber_address, spec.control_class)
                background = await link.add_port(traffic.sink_address, spec.background_class)
            except DriverError as exc:
                raise TsnLinkError(f"emulated link: {exc}") from exc
            await flow.publish_to(control.port)
            traffic.start(background.port)
            await asyncio.sleep(spec.warmup_s)
            start_ns = time.monotonic_ns()
            await asyncio.sleep(spec.duration_s)
            end_ns = time.monotonic_ns()
            traffic.stop()
            await flow.stop_cycle()
            await asyncio.sleep(spec.grace_ms / 1000)
            result = _result(schedule, spec, flow.probe, traffic, link, start_ns, end_ns)
        log.info("tsn_schedule_finished", part=spec.name, schedule=schedule.name,
                 sent=result.frames_sent, misses=result.deadline_misses,
                 miss_rate=result.deadline_miss_rate)
        return result


def _result(schedule: TsnScheduleSpec, spec: TsnLinkSpec, probe: ControlProbe,
            traffic: BestEffortTraffic, link: EmulatedLink, start_ns: int, end_ns: int,
            ) -> ScheduleResult:
    name = schedule.name
    seqs = probe.window(start_ns, end_ns)
    latencies = probe.latencies_ms(seqs)
    jitter = probe.jitter_us(seqs)
    late = sum(1 for v in latencies if v > spec.deadline)
    lost = len(seqs) - len(latencies)
    stats = link.statistics()
    link_delays = probe.link_delays_ms(seqs, stats.per_class_delay_ns.get(spec.control_class, []))
    if link_delays is None:
        log.warning("tsn_link_delays_unmatched", schedule=name)
    return ScheduleResult(
        name=name, frames_sent=len(seqs), frames_received=len(latencies),
        deadline_misses=late + lost, latencies_ms=tuple(latencies),
        jitter_us=None if jitter is None else jitter[0],
        jitter_range_us=None if jitter is None else jitter[1],
        window_start_ns=start_ns,
        arrivals_ns=tuple(probe.arrivals[s] for s in seqs if s in probe.arrivals),
        best_effort=traffic.statistics(start_ns, end_ns),
        link_queue_drops=stats.queue_drops, link_lost=stats.lost,
        link_delay_ms=None if link_delays is None else tuple(link_delays),
        model=replay_schedule(spec, schedule))
