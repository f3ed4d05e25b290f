"""802.1Qbv-style gate control lists: which traffic classes may transmit when.

A schedule is a cycle of entries, each open for some microseconds to a set of
traffic classes (0..7). `next_window(t, cls)` answers when class `cls` may next
start transmitting at or after time `t` and until when its gate stays open.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["GateEntry", "GateSchedule"]

_US = 1_000


class GateEntry(BaseModel):
    """One row of the gate control list: these classes may send for `duration_us`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duration_us: int = Field(gt=0)
    open_classes: frozenset[int] = Field(default_factory=frozenset)

    @model_validator(mode="after")
    def _classes(self) -> GateEntry:
        if any(not 0 <= c <= 7 for c in self.open_classes):
            raise ValueError("traffic classes are 0..7")
        return self


class GateSchedule(BaseModel):
    """A cyclic gate control list starting at `base_time_ns` (absolute, link clock)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entries: tuple[GateEntry, ...] = Field(min_length=1)
    base_time_ns: int = 0

    @property
    def cycle_ns(self) -> int:
        return sum(e.duration_us for e in self.entries) * _US

    def next_window(self, t_ns: int, traffic_class: int) -> tuple[int, int] | None:
        """(start, end) of the first open window of the class at or after `t_ns`; None if
        the class is never open."""
        if not any(traffic_class in e.open_classes for e in self.entries):
            return None
        cycle = self.cycle_ns
        offset = (t_ns - self.base_time_ns) % cycle
        cycle_start = t_ns - offset
        # scan this cycle and the next one (a window may wrap around the cycle's end)
        for k in range(2):
            start = cycle_start + k * cycle
            for entry in self.entries:
                end = start + entry.duration_us * _US
                if traffic_class in entry.open_classes and end > t_ns:
                    return max(start, t_ns), _merge_end(self, entry, end, traffic_class)
                start = end
        return None


def _merge_end(schedule: GateSchedule, entry: GateEntry, end: int, traffic_class: int) -> int:
    """Extend a window over following entries that keep the class open (one cycle max)."""
    entries = schedule.entries
    i = entries.index(entry)
    for step in range(1, len(entries)):
        nxt = entries[(i + step) % len(entries)]
        if traffic_class not in nxt.open_classes:
            break
        end += nxt.duration_us * _US
    return end
