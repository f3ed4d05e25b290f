"""What the emulated network alone does to the control flow: a replay on the link model.

The live run's latencies include the host (an event loop shared by everything, ~1 ms
timer resolution, other processes on the cores). This replay offers the same traffic to
a fresh `LinkModel` with the schedule's profile and seed, computed, not slept: control
frames exactly at each cycle release (an ideal talker), best-effort datagrams exactly
paced. Its figures are the network's share, identical for the same spec on any machine,
so they also hold on the virtual clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.net import LinkModel
from testbed.scenario.metrics import percentile
from testbed.scenario.tsn_spec import TsnLinkSpec, TsnScheduleSpec

__all__ = ["ModelResult", "replay_schedule"]

_HEADERS = 42
"""Ethernet + IP + UDP bytes the link model adds to a datagram (as `EmulatedLink`)."""


@dataclass(frozen=True, slots=True)
class ModelResult:
    """The link model's outcome for the control frames released in the window."""

    frames: int
    delays_ms: tuple[float, ...]
    """Release -> delivery of each delivered frame."""
    deadline_misses: int
    be_offered: int
    be_delivered: int

    @property
    def deadline_miss_rate(self) -> float | None:
        return self.deadline_misses / self.frames if self.frames else None

    @property
    def be_retained(self) -> float | None:
        return self.be_delivered / self.be_offered if self.be_offered else None

    def delay_ms(self, q: float) -> float | None:
        return percentile(sorted(self.delays_ms), q)


def replay_schedule(spec: TsnLinkSpec, schedule: TsnScheduleSpec) -> ModelResult:
    """Replay warm-up and window of one schedule on the link model (see the module doc)."""
    model = LinkModel(spec.link_profile(schedule))
    period_ns = round(spec.cycle_ms * 1e6)
    start_ns = round(spec.warmup_s * 1e9)
    end_ns = start_ns + round(spec.duration_s * 1e9)
    control: dict[int, int] = {}  # frame id -> release
    release = period_ns
    while release < end_ns:
        frame = model.offer(release, spec.payload_bytes + _HEADERS, spec.control_class)
        if release >= start_ns:
            control[frame] = release
        release += period_ns
    background: set[int] = set()
    rate = spec.background.rate_per_s
    if rate > 0:
        size = spec.background.datagram_bytes + _HEADERS
        k = 0
        while (t := round(k * 1e9 / rate)) < end_ns:
            frame = model.offer(t, size, spec.background_class)
            if t >= start_ns:
                background.add(frame)
            k += 1
    drain_ns = end_ns + round(spec.grace_ms * 1e6)
    delivered = {d.frame_id: d.delivered_ns for d in model.run_until(drain_ns)
                 if d.delivered_ns is not None and d.delivered_ns <= drain_ns}
    delays: list[float] = []
    misses = 0
    for frame, release_ns in control.items():
        arrival_ns = delivered.get(frame)
        if arrival_ns is None:  # dropped, lost or still queued when the grace ended
            misses += 1
            continue
        delay_ms = (arrival_ns - release_ns) / 1e6
        delays.append(delay_ms)
        misses += delay_ms > spec.deadline
    return ModelResult(len(control), tuple(delays), misses, len(background),
                       sum(1 for f in background if f in delivered))
