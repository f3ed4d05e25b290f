"""Watching the cyclic control flow over the emulated TSN link, and what one schedule gave.

`ControlProbe` is a resource `Tracer` installed on the controller and on the I/O
resource. On the controller it maps each sequence number (the E_CTU count the
PUBLISH carries) to its cycle's release, the E_CYCLE deadline that fired (absolute,
monotonic clock; E_CYCLE does not drift) and to whether PUBLISH sent it (CNF with QO);
on the I/O side it records when SUBSCRIBE delivered each number (IND with QO,
`time.monotonic_ns()` as the resource takes the event). Both run in one process on
one clock, so latency = arrival - release needs no clock sync.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Tracer
from testbed.scenario.metrics import percentile
from testbed.scenario.tsn_model import ModelResult
from testbed.scenario.tsn_traffic import BestEffortStatistics

__all__ = ["ControlProbe", "ControlProbePoints", "ScheduleResult"]


@dataclass(frozen=True, slots=True)
class ControlProbePoints:
    """The FB instances the probe watches."""

    cycle: FBInstance  # E_CYCLE: the release of each cycle
    counter: FBInstance  # E_CTU: the sequence number of the cycle's frame
    publisher: FBInstance  # PUBLISH_n with the sequence number in SD_1
    subscriber: FBInstance  # SUBSCRIBE_n with the sequence number in RD_1


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """What one schedule gave, over the frames released in its measuring window."""

    name: str
    frames_sent: int
    frames_received: int
    deadline_misses: int
    latencies_ms: tuple[float, ...]
    """Release -> arrival of each received frame, in sequence order."""
    jitter_us: float | None
    jitter_range_us: float | None
    window_start_ns: int
    """Monotonic time the measuring window opened."""
    arrivals_ns: tuple[int, ...]
    """Monotonic arrival time of each received frame (pairs with `latencies_ms`)."""
    best_effort: BestEffortStatistics
    link_queue_drops: int
    link_lost: int
    link_delay_ms: tuple[float, ...] | None
    """Per received frame (pairs with `latencies_ms`): arrival at the link -> delivery as
    the link model computed it (exact, no forwarding error); None if it could not be
    matched to the frames (see `ControlProbe.link_delays_ms`)."""
    model: ModelResult
    """The same schedule replayed on the link model alone (`tsn_model`)."""

    @property
    def frames_lost(self) -> int:
        return self.frames_sent - self.frames_received

    @property
    def deadline_miss_rate(self) -> float | None:
        return self.deadline_misses / self.frames_sent if self.frames_sent else None

    def latency_ms(self, q: float) -> float | None:
        return percentile(sorted(self.latencies_ms), q)

    def link_delay(self, q: float) -> float | None:
        return percentile(sorted(self.link_delay_ms), q) if self.link_delay_ms else None

    def host_overhead(self, q: float) -> float | None:
        """Percentile of latency - link delay: what the host added (controller lateness,
        loopback hops, the emulator's forwarding tick, the I/O resource)."""
        if not self.link_delay_ms:
            return None
        return percentile(sorted(a - b for a, b in zip(self.latencies_ms, self.link_delay_ms,
                                                       strict=True)), q)


class ControlProbe(Tracer):
    """Records releases, sends and arrivals of the control frames (see the module doc)."""

    def __init__(self, points: ControlProbePoints) -> None:
        self._p = points
        self._release_ns = 0
        self.releases: dict[int, int] = {}
        self.sent: set[int] = set()
        self.arrivals: dict[int, int] = {}
        self.send_failures = 0
        self.receive_failures = 0
        self.duplicates = 0

    def on_emit(self, fb: FBInstance, event: str) -> None:
        p = self._p
        if fb is p.cycle and event == "EO":
            period = int(getattr(fb, "period_ns", 0))
            self._release_ns = int(getattr(fb, "pending_deadline_ns", 0)) - period
        elif fb is p.counter and event == "CUO":
            self.releases[int(fb.get("CV"))] = self._release_ns
        elif fb is p.publisher and event == "CNF":
            if fb.get("QO"):
                self.sent.add(int(fb.get("SD_1")))
            else:
                self.send_failures += 1
        elif fb is p.subscriber and event == "IND":
            now = time.monotonic_ns()
            if not fb.get("QO"):
                self.receive_failures += 1
                return
            seq = int(fb.get("RD_1"))
            if seq in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[seq] = now

    def window(self, start_ns: int, end_ns: int) -> list[int]:
        """Sequence numbers released in [start_ns, end_ns) and sent, in order."""
        return sorted(seq for seq, t in self.releases.items()
                      if start_ns <= t < end_ns and seq in self.sent)

    def latencies_ms(self, seqs: list[int]) -> list[float]:
        return [(self.arrivals[s] - self.releases[s]) / 1e6 for s in seqs if s in self.arrivals]

    def link_delays_ms(self, seqs: list[int], delays_ns: list[int]) -> list[float] | None:
        """The link model's delay of each received frame of `seqs`.

        The model lists the control class's delays in delivery order, the class is never
        reordered and the frames left the controller in sequence order, so the n-th delay
        belongs to the n-th received sequence number (frames the link dropped are in
        neither). None when that matching is contradicted (a frame that would have
        arrived before it left the link).
        """
        received = sorted(self.arrivals)
        if len(delays_ns) < len(received):
            return None
        by_seq = dict(zip(received, delays_ns, strict=False))
        out: list[float] = []
        for s in seqs:
            if s in self.arrivals:
                delay_ms = by_seq[s] / 1e6
                if (self.arrivals[s] - self.releases[s]) / 1e6 < delay_ms - 0.01:
                    return None
                out.append(delay_ms)
        return out

    def jitter_us(self, seqs: list[int]) -> tuple[float, float] | None:
        """(std-dev, max - min) of the inter-arrival time of consecutive frames (both
        received), in us.

        A lost frame leaves a gap that is not an inter-arrival time of the cycle, so pairs
        around it are left out; None with fewer than two such pairs.
        """
        window = set(seqs)
        gaps = [(self.arrivals[s] - self.arrivals[s - 1]) / 1e3 for s in seqs
                if s - 1 in window and s in self.arrivals and s - 1 in self.arrivals]
        if len(gaps) < 2:
            return None
        value = statistics.pstdev(gaps)
        return (value, max(gaps) - min(gaps)) if math.isfinite(value) else None
