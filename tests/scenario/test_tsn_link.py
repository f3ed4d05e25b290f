"""The emulated TSN link part: spec validation, per-schedule metrics, FIFO vs 802.1Qbv."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from testbed.fourdiac.fbdk_asn1 import encode_many
from testbed.scenario.metrics import MetricsRecorder, percentile
from testbed.scenario.tsn_apps import control_padding
from testbed.scenario.tsn_link import (
    TSN_METRICS,
    ScheduleResult,
    TsnBackgroundSpec,
    TsnLinkError,
    TsnLinkPart,
    TsnLinkProfileSpec,
    TsnLinkSpec,
    TsnLinkState,
    TsnScheduleSpec,
)
from testbed.scenario.tsn_model import replay_schedule
from testbed.scenario.tsn_traffic import BestEffortTraffic
from testbed.types import ELEMENTARY

QBV = TsnScheduleSpec(name="qbv", kind="qbv")
FIFO = TsnScheduleSpec(name="fifo", kind="fifo")
PRIO = TsnScheduleSpec(name="strict_priority", kind="strict_priority")


@pytest.mark.parametrize(("fields", "message"), [
    ({"schedules": [{"name": "q", "kind": "qbv", "window_ms": 0}]}, "greater than 0"),
    ({"schedules": [{"name": "f", "kind": "fifo", "window_ms": 2}]}, "for kind qbv only"),
    ({"schedules": [{"name": "q", "kind": "qbv", "window_ms": 8, "offset_ms": 2}]},
     "less than cycle_ms"),
    ({"schedules": [FIFO, FIFO]}, "unique: fifo"),
    ({"schedules": []}, "at least 1"),
    ({"schedules": [{"name": "Bad-Name", "kind": "fifo"}]}, "pattern"),
    ({"schedules": [{"name": "q", "kind": "tas"}]}, "fifo"),
    ({"control_class": 3, "background_class": 3}, "must differ"),
    ({"cycle_ms": 2.0000001}, "whole number of microseconds"),
    ({"cycle_ms": 1, "duration_s": 100}, "at most 65000"),
    ({"background": {"rate_per_s": -1}}, "greater than or equal"),
    ({"link": {"loss": 1.5}}, "less than or equal"),
    ({"payload_bytes": 2}, "greater than or equal to 6"),
    ({"deadline": 5}, "Extra inputs"),
])
def test_spec_rejects_bad_input(fields: dict[str, object], message: str) -> None:
    """Inconsistent or unknown fields are refused with a message naming the problem."""
    with pytest.raises(ValidationError, match=message):
        TsnLinkSpec.model_validate(fields)


def test_spec_defaults_and_gate_schedule() -> None:
    """The deadline defaults to the cycle; a qbv gate spans one cycle, its window only for
    the control class, best effort open elsewhere; FIFO and priority have no gate."""
    spec = TsnLinkSpec(schedules=(FIFO, PRIO, TsnScheduleSpec(
        name="late", kind="qbv", window_ms=1.5, offset_ms=0.5), QBV))
    assert spec.deadline == spec.cycle_ms == 10.0
    assert TsnLinkSpec(deadline_ms=4).deadline == 4
    assert spec.link_profile(FIFO).fifo
    assert spec.link_profile(FIFO).gate is None
    assert not spec.link_profile(PRIO).fifo
    assert spec.link_profile(PRIO).gate is None
    gate = spec.link_profile(spec.schedules[2]).gate
    assert gate is not None
    assert gate.cycle_ns == 10_000_000
    assert [(e.duration_us, sorted(e.open_classes)) for e in gate.entries] == [
        (500, [0, 7]), (1500, [7]), (8000, [0, 7])]
    assert gate.next_window(600_000, 0) == (2_000_000, 10_500_000)  # best effort waits
    auto = TsnLinkSpec(cycle_ms=4).gate(QBV)  # window: 30 % of the cycle
    assert auto is not None
    assert [e.duration_us for e in auto.entries] == [1200, 2800]
    assert spec.planned_duration_s > 3 * spec.duration_s
    assert TsnLinkSpec().background.offered_mbps > TsnLinkSpec().link.bandwidth_mbps


@pytest.mark.parametrize("payload_bytes", [6, 64, 1400])
def test_control_frame_has_the_configured_payload_size(payload_bytes: int) -> None:
    """The sequence number and the padding encode (fbdk ASN.1) to exactly payload_bytes."""
    frame = encode_many([(ELEMENTARY["UINT"], 65535),
                         (ELEMENTARY["STRING"], control_padding(payload_bytes))])
    assert len(frame) == payload_bytes


def test_model_replay_is_deterministic_and_bounds_each_schedule() -> None:
    """On the link model alone, FIFO misses every deadline; strict priority waits at most
    one best-effort frame; the gate leaves only transmission, latency and jitter."""
    spec = TsnLinkSpec(link=TsnLinkProfileSpec(loss=0.0))
    fifo, prio, qbv = (replay_schedule(spec, s) for s in (FIFO, PRIO, QBV))
    assert replay_schedule(spec, QBV) == qbv
    link = spec.link
    tx_ms = (spec.background.datagram_bytes + 42) * 8 / (link.bandwidth_mbps * 1e3)
    ctrl_ms = (spec.payload_bytes + 42) * 8 / (link.bandwidth_mbps * 1e3)
    assert fifo.frames == prio.frames == qbv.frames == 200
    assert fifo.deadline_miss_rate == 1.0
    assert prio.deadline_misses == qbv.deadline_misses == 0
    prio_max, qbv_max = prio.delay_ms(100), qbv.delay_ms(100)
    assert prio_max is not None
    assert qbv_max is not None
    assert prio_max <= tx_ms + ctrl_ms + link.latency_ms + link.jitter_ms + 1e-6
    assert qbv_max <= ctrl_ms + link.latency_ms + link.jitter_ms + 1e-6 < prio_max
    assert fifo.be_retained is not None
    assert qbv.be_retained is not None
    assert 0 < qbv.be_retained < fifo.be_retained < 1


async def test_best_effort_traffic_counts_what_arrives() -> None:
    """Straight to its own sink, every paced datagram of a window arrives (retained 1)."""
    async with BestEffortTraffic(500, 200) as traffic:
        traffic.start(traffic.sink_address[1])
        await asyncio.sleep(0.25)
        traffic.stop()
        await asyncio.sleep(0.05)
        stats = traffic.statistics(0, 2**63)
    assert stats.offered >= 50
    assert stats.delivered == stats.offered
    assert stats.retained == 1.0


async def test_schedules_report_consistent_metrics_and_qbv_beats_fifo() -> None:
    """Under best-effort overload every schedule reports its figures; counts add up, rates
    are fractions; FIFO misses every deadline by construction (its queue delay alone
    exceeds it), strict priority waits behind a best-effort frame, the gate does not."""
    spec = TsnLinkSpec(duration_s=1.0, warmup_s=0.3, grace_ms=300, schedules=(FIFO, PRIO, QBV),
                       background=TsnBackgroundSpec(rate_per_s=200, datagram_bytes=1458))
    metrics = MetricsRecorder()
    async with TsnLinkPart(spec, metrics) as part:
        await part.finish(metrics)
        assert part.statistics().state is TsnLinkState.DONE
    assert part.failed == {}
    assert metrics.gauge_value("tsn.schedules_completed") == 3
    for schedule in ("fifo", "strict_priority", "qbv"):
        def value(name: str, schedule: str = schedule) -> float:
            v = metrics.gauge_value(f"tsn.{schedule}.{name}")
            assert v is not None, f"tsn.{schedule}.{name} missing"
            return v

        sent, received, lost = value("frames_sent"), value("frames_received"), value("frames_lost")
        assert 80 <= sent <= 101  # 1 s of 10 ms cycles
        assert received + lost == sent
        assert lost <= value("deadline_misses") <= sent
        assert 0 <= value("deadline_miss_rate") <= 1
        assert 0 <= value("be_throughput_retained") <= 1
        assert value("latency_p50_ms") <= value("latency_p99_ms") <= value("latency_max_ms")
        assert metrics.summary(f"tsn.{schedule}.latency_ms").count == received
        assert value("be_offered_mbps") > spec.link.bandwidth_mbps  # overload
        assert value("jitter_range_us") >= 0
        assert value("failed") == 0
        assert 0 <= value("model_deadline_miss_rate") <= 1
        for name, *_ in TSN_METRICS:
            assert "emulated" in metrics.definitions[f"tsn.{schedule}.{name}"].definition
    starts = [metrics.gauge_value(f"tsn.{n}.window_start_s") for n in ("fifo", "qbv")]
    assert starts[0] is not None
    assert starts[1] is not None
    assert 0 < starts[0] < starts[1]
    timeline = metrics.series("tsn.control_latency_ms")
    assert len(timeline) == sum(r.frames_received for r in part.results.values())
    assert timeline[0][0] >= starts[0]
    fifo, prio, qbv = (part.results[n] for n in ("fifo", "strict_priority", "qbv"))
    assert fifo.link_delay_ms is not None
    assert prio.link_delay_ms is not None
    assert qbv.link_delay_ms is not None
    # FIFO: the best-effort backlog alone delays every frame beyond the deadline
    assert min(fifo.link_delay_ms) > spec.deadline
    assert fifo.deadline_miss_rate == 1.0
    # the gate window spares control frames the wait behind a 6 ms best-effort frame
    qbv_p50, prio_p50 = qbv.link_delay(50), prio.link_delay(50)
    assert qbv_p50 is not None
    assert prio_p50 is not None
    assert qbv_p50 < spec.link.latency_ms + spec.link.jitter_ms + 0.5 < prio_p50
    assert qbv.deadline_miss_rate is not None
    assert qbv.deadline_miss_rate < fifo.deadline_miss_rate
    assert metrics.gauge_value("tsn.fifo.model_deadline_miss_rate") == 1.0
    assert qbv.best_effort.retained is not None
    assert prio.best_effort.retained is not None
    assert qbv.best_effort.retained < prio.best_effort.retained  # the window's price
    overhead = qbv.host_overhead(0)
    assert overhead is not None
    assert overhead >= -0.01  # latency includes the link delay
    assert metrics.gauge_value("tsn.qbv.link_delay_p99_ms") == percentile(
        sorted(qbv.link_delay_ms), 99)


async def test_closing_midway_cancels_and_releases_everything() -> None:
    """Closed while a schedule runs, the part stops its tasks, sockets and devices; closing
    twice is harmless and the unfinished schedule reports nothing."""
    spec = TsnLinkSpec(duration_s=30, schedules=(QBV,))
    metrics = MetricsRecorder()
    part = TsnLinkPart(spec, metrics)
    async with part:
        for _ in range(100):
            if part.statistics().current == "qbv":
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    await part.aclose()
    assert part.statistics().state is TsnLinkState.CLOSED
    assert part.results == {}
    assert metrics.gauge_value("tsn.qbv.frames_sent") is None
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []
    with pytest.raises(TsnLinkError, match="runs once"):
        await part.__aenter__()


class _FirstScheduleFails(TsnLinkPart):
    """The first schedule cannot be set up (as if its link could not bind)."""

    async def run_schedule(self, schedule: TsnScheduleSpec) -> ScheduleResult:
        if schedule.name == "fifo":
            raise TsnLinkError("emulated link: no port")
        return await super().run_schedule(schedule)


async def test_a_failed_schedule_is_flagged_and_the_next_one_runs() -> None:
    """A schedule that fails to start is reported (failed = 1, no figures); the rest run."""
    spec = TsnLinkSpec(duration_s=0.3, warmup_s=0.1, grace_ms=100, schedules=(FIFO, QBV))
    metrics = MetricsRecorder()
    async with _FirstScheduleFails(spec, metrics) as part:
        await part.finish(metrics)
    assert part.failed == {"fifo": "TsnLinkError: emulated link: no port"}
    assert metrics.gauge_value("tsn.fifo.failed") == 1
    assert metrics.gauge_value("tsn.fifo.frames_sent") is None
    assert metrics.gauge_value("tsn.qbv.failed") == 0
    assert (metrics.gauge_value("tsn.qbv.frames_sent") or 0) > 0
    assert part.statistics().schedules_failed == 1
    assert metrics.gauge_value("tsn.schedules_completed") == 1
