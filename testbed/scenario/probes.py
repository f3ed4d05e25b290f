"""Watching an edge application from outside: a resource `Tracer` on a few named FB events.

The probe follows each vibration block through the chain DAQ -> features -> inference
-> alarm/derate -> Modbus write, one FIFO per hop (every hop answers one event per event,
in order, as a resource runs them), and records on the process's monotonic clock:
inference latency (features CNF, which queues the ONNX REQ, -> ONNX CNF), sensor to
actuation (PLC scan that published the block -> Modbus write confirmed), the anomaly score,
the debounced alarm and the setpoint, and when a model swap's INITO arrives.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Tracer
from testbed.scenario.metrics import MetricsRecorder

__all__ = ["EdgeProbe", "ProbePoints"]

_MAX_IN_FLIGHT = 64
"""Blocks followed at once; older ones are forgotten (a hop that never answered)."""


@dataclass(frozen=True, slots=True)
class ProbePoints:
    """The FB instances whose output events the probe watches (None: not watched)."""

    process: FBInstance | None
    features: FBInstance | None
    inference: FBInstance | None
    alarm: FBInstance | None
    actuation: FBInstance | None
    model_fb: FBInstance | None


class EdgeProbe(Tracer):
    """Records the edge application's latencies and signals into a `MetricsRecorder`."""

    def __init__(self, points: ProbePoints, metrics: MetricsRecorder,
                 elapsed_s: Callable[[], float], *, timed: bool = True) -> None:
        self._p = points
        self._timed = timed
        """Record latencies on the monotonic clock (not on the virtual clock, where the
        chain runs within one step and wall times would make a run irreproducible)."""
        self._m = metrics
        self._elapsed_s = elapsed_s
        self._blocks: collections.deque[float] = collections.deque(maxlen=_MAX_IN_FLIGHT)
        self._infer: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=_MAX_IN_FLIGHT)
        self._derate: collections.deque[float] = collections.deque(maxlen=_MAX_IN_FLIGHT)
        self._write: collections.deque[float] = collections.deque(maxlen=_MAX_IN_FLIGHT)
        self.alarm = False
        self.first_alarm_s: float | None = None
        self.first_verdict_s: float | None = None
        """Run time of the alarm FB's first verdict: monitoring starts there."""
        self.swap_requested_at: float | None = None
        self.swap_done_at: float | None = None
        self.swap_ok: bool | None = None
        self.outage_ended_at: float | None = None
        """Monotonic time a PLC outage ended, until the first good process read after it."""
        self.swapped = asyncio.Event()
        """Set when the ONNX FB answers the swap's INITO (the tracer runs on the loop)."""

    def block_delivered(self, scan_time: float) -> None:
        """A vibration block published by the PLC scan at `scan_time` enters the network."""
        self._blocks.append(scan_time)

    def on_emit(self, fb: FBInstance, event: str) -> None:
        p = self._p
        now = time.monotonic()
        if fb is p.process and event == "CNF":
            if fb.get("QO") and self.outage_ended_at is not None:
                self._m.sample("recovery_time_s", now - self.outage_ended_at)
                self.outage_ended_at = None
        elif fb is p.features and event == "CNF":
            if self._blocks:
                self._infer.append((self._blocks.popleft(), now))
        elif fb is p.inference and event == "CNF":
            if self._infer:
                block_t, queued = self._infer.popleft()
                self._derate.append(block_t)
                if fb.get("QO"):
                    if self._timed:
                        self._m.sample("inference_latency_ms", (now - queued) * 1e3)
                    self._m.record("anomaly_score", self._elapsed_s(), float(fb.get("RD_1")))
        elif fb is p.alarm and event == "CNF":
            if self._derate:
                self._write.append(self._derate.popleft())
            alarm = bool(fb.get("ALARM"))
            t = self._elapsed_s()
            if self.first_verdict_s is None:
                self.first_verdict_s = t
            if alarm != self.alarm:
                self._m.record("alarm", t, float(self.alarm))
                self._m.record("alarm", t, float(alarm))
                self._m.record("setpoint_rpm", t, float(fb.get("SETPOINT")))
            if alarm and self.first_alarm_s is None:
                self.first_alarm_s = t
            self.alarm = alarm
        elif fb is p.actuation and event == "CNF":
            if self._write:
                block_t = self._write.popleft()
                if fb.get("QO"):
                    if self._timed:
                        self._m.sample("sensor_to_actuation_ms", (now - block_t) * 1e3)
                else:
                    self._m.count("actuation_failed")
        elif (fb is p.model_fb and event == "INITO" and self.swap_requested_at is not None
              and self.swap_done_at is None):
            self.swap_done_at = now
            self.swap_ok = bool(fb.get("QO"))
            self.swapped.set()
