"""The configuration of the emulated controller-to-I/O TSN link part (`tsn_link`).

One cyclic control flow crosses one emulated link that it shares with best-effort
background traffic; each named schedule (FIFO, strict priority, an 802.1Qbv-style gate
schedule with a protected window for the control class) runs in turn for `duration_s`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.net import GateEntry, GateSchedule, LinkProfile

__all__ = ["TsnBackgroundSpec", "TsnLinkProfileSpec", "TsnLinkSpec", "TsnScheduleSpec",
           "default_schedules"]

_NAME = r"^[a-z][a-z0-9_]*$"
_MAX_FRAMES = 65_000
"""The sequence number is E_CTU's UINT count (it stops at 65535)."""
_SETUP_S = 0.5
"""Allowance per schedule for starting and closing its networks and link."""


def _us(value_ms: float, field: str) -> int:
    us = round(value_ms * 1000)
    if abs(us - value_ms * 1000) > 1e-6:
        raise ValueError(f"{field} must be a whole number of microseconds, got {value_ms} ms")
    return us


class TsnLinkProfileSpec(BaseModel):
    """What the emulated link does to every frame (the part adds the queueing discipline)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(default=1.0, ge=0)
    jitter_ms: float = Field(default=1.0, ge=0)
    """Uniform extra delay in [0, jitter_ms] per frame (seeded)."""
    loss: float = Field(default=0.001, ge=0, le=1)
    bandwidth_mbps: float = Field(default=2.0, gt=0)
    """Time-scaled: at 2 Mbit/s a 1500-byte frame holds the link for 6 ms, a blocking
    the host's ~1 ms event-loop resolution can show (100 Mbit/s Ethernet: 120 us)."""
    queue_frames: int = Field(default=32, ge=1)
    """Per-class queue (FIFO: the one shared queue); a full queue drops the arrival."""


class TsnBackgroundSpec(BaseModel):
    """Best-effort UDP traffic through the same link (0 datagrams/s: none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_per_s: float = Field(default=200.0, ge=0, le=20_000)
    datagram_bytes: int = Field(default=1458, ge=8, le=65_000)
    """UDP payload; 1458 + 42 header bytes = a full 1500-byte frame."""

    @property
    def offered_mbps(self) -> float:
        """Offered load on the link, with the 42 header bytes the link model adds."""
        return self.rate_per_s * (self.datagram_bytes + 42) * 8 / 1e6


class TsnScheduleSpec(BaseModel):
    """One queueing discipline of the link to compare.

    `fifo`: one queue for every class. `strict_priority`: a queue per class, the control
    class first (a frame in transmission is never preempted). `qbv`: strict priority plus
    an 802.1Qbv-style gate control list with the cycle's period: for `window_ms` from
    `offset_ms` after each cycle release only the control class's gate is open (a
    best-effort frame starts only if it ends before that window: a guard band); the
    control class stays open for the rest of the cycle too. `window_ms` defaults to 30 %
    of the cycle (room for the controller's send lateness on a busy host).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME, max_length=40)
    kind: Literal["fifo", "strict_priority", "qbv"]
    window_ms: float | None = Field(default=None, gt=0)
    offset_ms: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _window(self) -> TsnScheduleSpec:
        if self.kind != "qbv" and (self.window_ms is not None or self.offset_ms):
            raise ValueError(f"schedule {self.name!r}: window_ms and offset_ms are for "
                             "kind qbv only")
        if self.window_ms is not None:
            _us(self.window_ms, "window_ms")
        _us(self.offset_ms, "offset_ms")
        return self


def default_schedules() -> tuple[TsnScheduleSpec, ...]:
    return (TsnScheduleSpec(name="fifo", kind="fifo"),
            TsnScheduleSpec(name="strict_priority", kind="strict_priority"),
            TsnScheduleSpec(name="qbv", kind="qbv"))


class TsnLinkSpec(BaseModel):
    """A controller -> I/O cyclic flow over an emulated link, compared across schedules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="controller_io", pattern=_NAME, max_length=40)
    cycle_ms: float = Field(default=10.0, ge=1, le=1000)
    deadline_ms: float | None = Field(default=None, gt=0)
    """Release of a cycle -> arrival of its frame at the I/O side; default: the cycle."""
    payload_bytes: int = Field(default=64, ge=6, le=1400)
    """UDP payload of a control frame (a UINT sequence number and STRING padding)."""
    link: TsnLinkProfileSpec = Field(default_factory=TsnLinkProfileSpec)
    background: TsnBackgroundSpec = Field(default_factory=TsnBackgroundSpec)
    schedules: tuple[TsnScheduleSpec, ...] = Field(default_factory=default_schedules,
                                                   min_length=1)
    duration_s: float = Field(default=2.0, gt=0)
    """Measuring window per schedule: frames released in it are counted."""
    warmup_s: float = Field(default=0.3, ge=0)
    """Traffic flows this long before the measuring window opens (queues fill)."""
    grace_ms: float = Field(default=300.0, ge=0)
    """After the window: how long late frames may still arrive before they count as lost."""
    start_delay_s: float = Field(default=0.0, ge=0)
    control_class: int = Field(default=7, ge=0, le=7)
    background_class: int = Field(default=0, ge=0, le=7)
    seed: int = 0
    metric_prefix: str = Field(default="tsn", pattern=_NAME, max_length=40)

    @model_validator(mode="after")
    def _consistent(self) -> TsnLinkSpec:
        cycle_us = _us(self.cycle_ms, "cycle_ms")
        names = [s.name for s in self.schedules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schedule names must be unique: {', '.join(dupes)}")
        if self.control_class == self.background_class:
            raise ValueError("control_class and background_class must differ")
        for s in self.schedules:
            if s.kind == "qbv":
                end_us = _us(s.offset_ms, "offset_ms") + self._window_us(s)
                if end_us >= cycle_us:
                    raise ValueError(f"schedule {s.name!r}: offset_ms + window_ms must be "
                                     f"less than cycle_ms ({self.cycle_ms})")
        frames = (self.warmup_s + self.duration_s + 1.0) * 1000 / self.cycle_ms
        if frames > _MAX_FRAMES:
            raise ValueError(f"warmup_s + duration_s hold {frames:.0f} cycles of "
                             f"{self.cycle_ms} ms; at most {_MAX_FRAMES} per schedule")
        return self

    @property
    def deadline(self) -> float:
        """The deadline in ms (the cycle when not set)."""
        return self.deadline_ms if self.deadline_ms is not None else self.cycle_ms

    @property
    def planned_duration_s(self) -> float:
        """About how long the part runs all its schedules."""
        per = self.warmup_s + self.duration_s + self.grace_ms / 1000 + _SETUP_S
        return self.start_delay_s + per * len(self.schedules)

    def _window_us(self, schedule: TsnScheduleSpec) -> int:
        if schedule.window_ms is None:
            return round(self.cycle_ms * 1000 * 0.3)
        return _us(schedule.window_ms, "window_ms")

    def gate(self, schedule: TsnScheduleSpec) -> GateSchedule | None:
        """The gate control list of a qbv schedule, in link time where 0 is a release."""
        if schedule.kind != "qbv":
            return None
        both = frozenset({self.control_class, self.background_class})
        cycle_us = _us(self.cycle_ms, "cycle_ms")
        offset_us = _us(schedule.offset_ms, "offset_ms")
        window_us = self._window_us(schedule)
        entries = []
        if offset_us:
            entries.append(GateEntry(duration_us=offset_us, open_classes=both))
        entries.append(GateEntry(duration_us=window_us,
                                 open_classes=frozenset({self.control_class})))
        entries.append(GateEntry(duration_us=cycle_us - offset_us - window_us,
                                 open_classes=both))
        return GateSchedule(entries=tuple(entries))

    def link_profile(self, schedule: TsnScheduleSpec) -> LinkProfile:
        link = self.link
        return LinkProfile(latency_ms=link.latency_ms, jitter_ms=link.jitter_ms, loss=link.loss,
                           bandwidth_mbps=link.bandwidth_mbps, queue_frames=link.queue_frames,
                           fifo=schedule.kind == "fifo", gate=self.gate(schedule),
                           seed=self.seed)
