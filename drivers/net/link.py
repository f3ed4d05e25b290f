"""A deterministic model of one network link: queues, a gate schedule, latency, jitter, loss.

Frames arrive with a time, a size and a traffic class. They wait in one queue per
class; the transmitter picks the highest open class that has a frame (strict
priority; with `fifo=True` one queue for all), sends it for `size*8/bandwidth`
seconds (only if the frame fits before the class's gate closes, as 802.1Qbv guard
bands do), then the frame arrives after the propagation latency plus seeded
jitter, or is lost with the seeded loss probability. Everything is computed, not
slept, so the same inputs and seed give the same departures; the UDP emulator in
`drivers.net.proxy` delivers frames at the computed times.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from drivers.net.gate import GateSchedule

__all__ = ["Delivery", "LinkModel", "LinkProfile", "LinkStatistics"]


class LinkProfile(BaseModel):
    """What the emulated link does to traffic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    """Uniform extra delay in [0, jitter_ms] (never reorders frames of one class)."""
    loss: float = Field(default=0.0, ge=0, le=1)
    bandwidth_mbps: float = Field(default=100.0, gt=0)
    queue_frames: int = Field(default=1000, ge=1)
    """Per-class queue capacity; a full queue drops the arriving frame (counted)."""
    fifo: bool = False
    """One FIFO for all classes instead of strict priority per class."""
    gate: GateSchedule | None = None
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one frame."""

    frame_id: int
    traffic_class: int
    arrival_ns: int
    departure_ns: int | None  # None: dropped (queue full or lost)
    delivered_ns: int | None
    reason: str = "delivered"


@dataclass
class LinkStatistics:
    offered: int = 0
    delivered: int = 0
    lost: int = 0
    queue_drops: int = 0
    per_class_delay_ns: dict[int, list[int]] = field(default_factory=dict)


@dataclass(order=True)
class _Frame:
    arrival_ns: int
    seq: int
    traffic_class: int = field(compare=False)
    size_bytes: int = field(compare=False)


class LinkModel:
    """Feed frames in arrival order with `offer`; read results from `run_until`."""

    def __init__(self, profile: LinkProfile) -> None:
        self.profile = profile
        self._rng = random.Random(profile.seed)
        self._queues: dict[int, deque[_Frame]] = {}
        self._pending: list[_Frame] = []  # arrivals not yet enqueued (heap by time)
        self._busy_until_ns = 0
        self._last_delivered: dict[int, int] = {}
        self._seq = 0
        self.stats = LinkStatistics()

    def offer(self, arrival_ns: int, size_bytes: int, traffic_class: int = 0) -> int:
        """A frame arrives at the link; returns its id."""
        self._seq += 1
        heapq.heappush(self._pending, _Frame(arrival_ns, self._seq, traffic_class, size_bytes))
        self.stats.offered += 1
        return self._seq

    def _tx_ns(self, size_bytes: int) -> int:
        return int(size_bytes * 8 / (self.profile.bandwidth_mbps * 1e6) * 1e9)

    def _admit(self, t_ns: int, out: list[Delivery]) -> None:
        """Move every frame that has arrived by `t_ns` into its queue (or drop it)."""
        while self._pending and self._pending[0].arrival_ns <= t_ns:
            frame = heapq.heappop(self._pending)
            key = 0 if self.profile.fifo else frame.traffic_class
            queue = self._queues.setdefault(key, deque())
            if len(queue) >= self.profile.queue_frames:
                self.stats.queue_drops += 1
                out.append(Delivery(frame.seq, frame.traffic_class, frame.arrival_ns, None,
                                    None, "queue_full"))
                continue
            queue.append(frame)

    def _candidate(self, now: int) -> tuple[int, _Frame, int] | None:
        """The frame to send next and its start time (earliest over the classes)."""
        best: tuple[int, _Frame, int] | None = None
        for key in sorted(self._queues, reverse=True):  # higher class first on ties
            queue = self._queues[key]
            if not queue:
                continue
            frame = queue[0]
            start = max(now, frame.arrival_ns)
            gate = self.profile.gate
            if gate is not None:
                tx = self._tx_ns(frame.size_bytes)
                while True:
                    window = gate.next_window(start, frame.traffic_class)
                    if window is None:
                        start = -1
                        break
                    if window[0] + tx <= window[1]:
                        start = window[0]
                        break
                    start = window[1]  # does not fit before the gate closes: next window
                if start < 0:
                    continue
            if best is None or start < best[0]:
                best = (start, frame, key)
        return best

    def run_until(self, t_ns: int) -> list[Delivery]:
        """Transmit every frame that can start before `t_ns`; returns the outcomes."""
        out: list[Delivery] = []
        now = self._busy_until_ns
        while True:
            self._admit(now, out)
            cand = self._candidate(now)
            next_arrival = self._pending[0].arrival_ns if self._pending else None
            if cand is None:
                if next_arrival is None or next_arrival >= t_ns:
                    break
                now = next_arrival
                continue
            start, frame, key = cand
            if next_arrival is not None and next_arrival <= start:
                now = next_arrival  # it may outrank the chosen frame: admit it first
                continue
            if start >= t_ns:
                break
            self._queues[key].popleft()
            end = start + self._tx_ns(frame.size_bytes)
            self._busy_until_ns = now = end
            if self._rng.random() < self.profile.loss:
                self.stats.lost += 1
                out.append(Delivery(frame.seq, frame.traffic_class, frame.arrival_ns, start,
                                    None, "lost"))
                continue
            jitter = int(self._rng.uniform(0, self.profile.jitter_ms) * 1e6)
            delivered = end + int(self.profile.latency_ms * 1e6) + jitter
            delivered = max(delivered, self._last_delivered.get(frame.traffic_class, 0))
            self._last_delivered[frame.traffic_class] = delivered  # no reordering in a class
            self.stats.delivered += 1
            self.stats.per_class_delay_ns.setdefault(frame.traffic_class, []).append(
                delivered - frame.arrival_ns)
            out.append(Delivery(frame.seq, frame.traffic_class, frame.arrival_ns, start,
                                delivered))
        return out
