"""Metrics of a run: time series, latency samples and counters, with units.

Every metric is recorded with its unit and a definition (what clock, which start
and end points) so a report can be cited. The recorder is also exported live to
Prometheus while a scenario or the gateway runs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["MetricDefinition", "MetricsRecorder", "Summary", "percentile"]


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    name: str
    unit: str
    kind: str  # "series" | "samples" | "counter" | "gauge"
    definition: str


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    mean: float | None


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class _Store:
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)


class MetricsRecorder:
    """Thread-safe collection of the metrics a scenario declares."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store = _Store()
        self.definitions: dict[str, MetricDefinition] = {}

    def define(self, name: str, unit: str, kind: str, definition: str) -> None:
        self.definitions[name] = MetricDefinition(name, unit, kind, definition)

    def record(self, name: str, t_s: float, value: float) -> None:
        """A point of a time series (process values, scores, backlog)."""
        with self._lock:
            self._store.series.setdefault(name, []).append((t_s, float(value)))

    def sample(self, name: str, value: float) -> None:
        """One observation of a distribution (latencies)."""
        with self._lock:
            self._store.samples.setdefault(name, []).append(float(value))

    def count(self, name: str, increment: float = 1.0) -> None:
        with self._lock:
            self._store.counters[name] = self._store.counters.get(name, 0.0) + increment

    def gauge(self, name: str, value: float, *, track_peak: bool = False) -> None:
        """The current value of a level (backlog, queue depth); optionally its peak too."""
        with self._lock:
            self._store.gauges[name] = float(value)
            if track_peak:
                peak = name + "_peak"
                self._store.gauges[peak] = max(self._store.gauges.get(peak, value), value)

    def summary(self, name: str) -> Summary:
        with self._lock:
            values = sorted(self._store.samples.get(name, []))
        if not values:
            return Summary(0, None, None, None, None, None)
        return Summary(len(values), percentile(values, 50), percentile(values, 90),
                       percentile(values, 99), values[-1], sum(values) / len(values))

    def series(self, name: str) -> list[tuple[float, float]]:
        with self._lock:
            return list(self._store.series.get(name, []))

    def samples(self, name: str) -> list[float]:
        with self._lock:
            return list(self._store.samples.get(name, []))

    def counter(self, name: str) -> float:
        with self._lock:
            return self._store.counters.get(name, 0.0)

    def gauge_value(self, name: str) -> float | None:
        with self._lock:
            return self._store.gauges.get(name)

    def series_names(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._store.series))

    def sample_names(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._store.samples))

    def snapshot(self) -> dict[str, object]:
        """Counters, gauges and sample summaries (for live display and Prometheus)."""
        with self._lock:
            counters = dict(self._store.counters)
            gauges = dict(self._store.gauges)
            names = list(self._store.samples)
        out: dict[str, object] = {**counters, **gauges}
        for name in names:
            out[name] = self.summary(name)
        return out
