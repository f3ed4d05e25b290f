"""Watching a conveyor line application: item decisions against the plant's ground truth.

`LineProbe` is a resource `Tracer` on the line application's events (sensor poll, verdict,
diverter command, diverter write, exit) and a PLC scan listener that follows every item of
the `ConveyorModel` (when its centre reached the diverter's photo-eye, how it left the belt,
whether it was defective). At the end it reports sorting quality, tracking completeness,
latencies against the physical deadline, OEE and the uplink volume: the bytes the edge
actually published versus the bytes streaming every raw sensor sample as its own Sparkplug
DDATA would have cost over the same run.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from drivers.mqtt.edge_link import EdgeLinkStatistics
from drivers.mqtt.sparkplug import DataType, Metric, Payload, encode_payload, message_id_uuid
from drivers.sim.conveyor import ConveyorModel
from drivers.sim.model import PlantState
from testbed.errors import ConfigError
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Tracer
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.spec import LineMonitorSpec

__all__ = ["LINE_METRIC_DEFINITIONS", "LinePoints", "LineProbe", "raw_message_bytes"]

_MAX_IN_FLIGHT = 64
"""Diverter commands followed at once (a write that never answered is forgotten)."""
_MOVING_M_S = 0.05
"""The belt counts as running above this measured speed (availability)."""
_JAM_GRACE_S = 1.0
"""A diverter fault this long after a jam window ended still belongs to it."""

LINE_METRIC_DEFINITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("items_total", "items", "gauge",
     "items that left the line during the run (pushed into the reject bin or out at the belt's "
     "end), from the plant model's counters (ground truth)."),
    ("throughput_items_per_min", "items/min", "gauge",
     "items_total / run time (plant start -> end of the run, including the initial fill)."),
    ("items_classified", "items", "gauge",
     "items the edge gave a verdict (DIVERT_DECIDE DECIDED) whose ID the plant knows."),
    ("reject_precision", "ratio", "gauge",
     "of the classified items the edge decided to reject, the share that were defective "
     "(plant ground truth); the classifier alone, whatever the diverter did."),
    ("reject_recall", "ratio", "gauge",
     "of the classified defective items, the share the edge decided to reject."),
    ("defective_passed", "items", "gauge",
     "mis-sort: defective items that left at the belt's end (plant counter)."),
    ("good_rejected", "items", "gauge",
     "mis-sort: good items pushed into the reject bin (plant counter)."),
    ("defective_rejected", "items", "gauge", "defective items in the reject bin (plant counter)."),
    ("missed_diverts", "items", "gauge",
     "items the edge decided to reject that left at the belt's end (the command was late, "
     "missing or the diverter did not move); plant ground truth per item ID."),
    ("divert_deadline_misses", "commands", "counter",
     "diverter commands confirmed after their physical deadline (see divert_deadline_ms)."),
    ("divert_latency_ms", "ms", "samples",
     "item centre reached the diverter photo-eye (monotonic time the runner saw the PLC scan "
     "that first placed it there) -> the edge's diverter write for that item ID confirmed by "
     "the PLC (MODBUS_WRITE CNF with QO): sensing, poll, tracking, decision lookup, write. "
     "Also a time series (run time of the confirmation), to place misses on the timeline."),
    ("divert_deadline_ms", "ms", "gauge",
     "the physical deadline of an extend command: distance from the photo-eye's first "
     "blocking position to the diverter / nominal belt speed - diverter stroke time. A "
     "retract command has the same deadline plus the stroke."),
    ("inspection_to_divert_ms", "ms", "samples",
     "inspection station read the item (as for decision_latency_ms) -> its diverter command "
     "confirmed (as for divert_latency_ms); the edge waits on purpose for the item to reach "
     "the diverter's photo-eye, so this is mostly belt travel."),
    ("inspection_deadline_ms", "ms", "gauge",
     "the physical deadline of inspection_to_divert_ms: inspection station to diverter / "
     "nominal belt speed - diverter stroke time."),
    ("decision_latency_ms", "ms", "samples",
     "inspection station read a new item (monotonic time the runner saw the PLC scan that "
     "published its ID) -> the edge's verdict for that ID (DIVERT_DECIDE DECIDED)."),
    ("tracking_completeness_pct", "%", "gauge",
     "of the items that left the line during the run, the share with a full station trail "
     "at the edge under their own ID: verdict at inspection, diverter command confirmed on "
     "arrival and, for items leaving at the belt's end, the exit event."),
    ("untracked_arrivals", "items", "gauge",
     "diverter commands for an item the tracker could not name (ID 0: rejected, fail safe)."),
    ("bytes_to_cloud_edge", "bytes", "gauge",
     "topic + payload bytes of every MQTT PUBLISH the edge link handed to the broker during "
     "the run (births, per-item records, line KPIs, replays after an outage)."),
    ("bytes_to_cloud_raw", "bytes", "gauge",
     "what streaming every raw value the edge sampled (each RD of each good sensor poll) as "
     "its own Sparkplug DDATA would have cost: per value, topic + a real encoded payload "
     "(one aliased metric with the value and its timestamp, seq, message-id uuid), the same "
     "accounting as bytes_to_cloud_edge; births not counted."),
    ("raw_values_sampled", "values", "gauge",
     "raw values the edge sampled during the run (good polls x values per poll)."),
    ("bandwidth_saved_pct", "%", "gauge",
     "100 x (1 - bytes_to_cloud_edge / bytes_to_cloud_raw)."),
    ("oee", "ratio", "gauge",
     "availability x performance x quality: availability = PLC scans with the belt moving / "
     "all scans; performance = items_total / (arrival rate x run time x availability), "
     "capped at 1; quality = good items out at the belt's end / items_total."),
    ("jam_detection_delay_s", "s", "samples",
     "diverter actuator_jam onset (the fault's scheduled start, ground truth) -> the edge's "
     "first diverter fault (DIVERTER_WATCH FAULT rising: the end switches did not follow a "
     "command) in that window; run time. A jammed diverter shows only once it is commanded "
     "to move, so this includes waiting for the next item that needs it to move."),
    ("jams_missed", "faults", "gauge",
     "diverter jam windows with no diverter fault raised by the edge."),
    ("diverter_false_faults", "faults", "counter",
     "diverter faults raised outside every jam window (up to 1 s after its end)."),
    ("divert_write_failed", "writes", "counter",
     "diverter writes the PLC did not confirm (MODBUS_WRITE CNF with QO FALSE)."),
)


@dataclass(frozen=True, slots=True)
class LinePoints:
    """The FB instances whose output events the probe watches."""

    sense: FBInstance
    decide: FBInstance
    act: FBInstance
    actuation: FBInstance
    exit: FBInstance
    fault: FBInstance | None = None


@dataclass(slots=True)
class _Truth:
    """What the plant knows about one item."""

    defective: bool
    position_m: float = 0.0
    at_eye: float | None = None
    inspected: float | None = None
    fate: str | None = None  # "rejected" | "passed"


@dataclass(slots=True)
class _Edge:
    """What the edge did with one item ID."""

    reject: bool | None = None
    divert_confirmed: bool = False
    exited: bool = False


@dataclass(slots=True)
class _RawStream:
    """Raw samples priced as one DDATA each; sizes cached by what changes the encoding."""

    topic_bytes: int
    values: int = 0
    bytes: int = 0
    _sizes: dict[tuple[int, DataType, object, bool], int] = field(default_factory=dict)

    def add(self, values: tuple[object, ...], timestamp_ms: int) -> None:
        for alias, value in enumerate(values, start=1):
            datatype = DataType.BOOLEAN if isinstance(value, bool) else DataType.UINT16
            seq = self.values % 256
            key = (alias, datatype, value, seq >= 128)
            size = self._sizes.get(key)
            if size is None:
                size = raw_message_bytes(alias, datatype, value, timestamp_ms, seq,
                                         self.values + 1)
                self._sizes[key] = size
            self.values += 1
            self.bytes += self.topic_bytes + size


def raw_message_bytes(alias: int, datatype: DataType, value: object, timestamp_ms: int,
                      seq: int, message_id: int) -> int:
    """Payload bytes of a DDATA carrying one raw value, encoded as the edge link sends data."""
    metric = Metric(name=None, alias=alias, datatype=datatype, value=value,  # type: ignore[arg-type]
                    timestamp_ms=timestamp_ms)
    payload = Payload(timestamp_ms=timestamp_ms, metrics=(metric,), seq=seq,
                      uuid=message_id_uuid(message_id))
    return len(encode_payload(payload))


class LineProbe(Tracer):
    """Records a conveyor line application's decisions against the plant (module docstring)."""

    def __init__(self, spec: LineMonitorSpec, points: LinePoints, model: ConveyorModel,
                 metrics: MetricsRecorder, elapsed_s: Callable[[], float], *,
                 jam_windows: Sequence[tuple[float, float | None]] = ()) -> None:
        self._p = points
        self._jams = sorted(jam_windows)
        self._jams_detected: set[int] = set()
        self._fault = False
        self._model = model
        self._m = metrics
        self._elapsed_s = elapsed_s
        cfg = model.config
        eyes = {eye.name: eye.position_m for eye in cfg.photo_eyes}
        if spec.divert_eye not in eyes:
            raise ConfigError(f"monitor.line.divert_eye {spec.divert_eye!r} is not a photo-eye "
                              f"of the conveyor; its eyes: {sorted(eyes)}")
        self._eye_m = eyes[spec.divert_eye] - cfg.item_length_m / 2.0
        self._exit_split_m = (cfg.diverter_position_m + cfg.length_m) / 2.0
        speed = cfg.initial_speed_command_m_s
        travel_s = (cfg.diverter_position_m - self._eye_m) / speed if speed > 0 else 0.0
        self.deadline_s = travel_s - cfg.diverter_stroke_s
        from_inspection_m = cfg.diverter_position_m - cfg.inspection_position_m
        self.inspection_deadline_s = (from_inspection_m / speed if speed > 0 else 0.0) \
            - cfg.diverter_stroke_s
        self._truth: dict[int, _Truth] = {}
        self._edge: dict[int, _Edge] = collections.defaultdict(_Edge)
        self._on_belt: set[int] = set()
        self._last_inspected = 0
        self._scans = 0
        self._moving_scans = 0
        self._pending: collections.deque[tuple[int, bool]] = collections.deque(
            maxlen=_MAX_IN_FLIGHT)
        self._untracked = 0
        self._raw: _RawStream | None = None
        for name, unit, kind, text in LINE_METRIC_DEFINITIONS:
            metrics.define(name, unit, kind, text)
            if kind == "counter":
                metrics.count(name, 0)  # reported as 0, not missing, when nothing happened

    # -- the plant (every PLC scan) ----------------------------------------------------

    def on_scan(self, state: PlantState, t: float) -> None:
        self._scans += 1
        if float(state["belt_speed_m_s"]) > _MOVING_M_S:
            self._moving_scans += 1
        now_on_belt: set[int] = set()
        for item in self._model.items():
            truth = self._truth.get(item.item_id)
            if truth is None:
                truth = self._truth[item.item_id] = _Truth(item.defective)
            truth.position_m = item.position_m
            if truth.at_eye is None and item.position_m >= self._eye_m:
                truth.at_eye = t
            now_on_belt.add(item.item_id)
        for gone in self._on_belt - now_on_belt:
            truth = self._truth[gone]
            truth.fate = "rejected" if truth.position_m < self._exit_split_m else "passed"
        self._on_belt = now_on_belt
        inspected = int(state["inspection_item_id"])
        if inspected != self._last_inspected:
            self._last_inspected = inspected
            if inspected in self._truth:
                self._truth[inspected].inspected = t

    # -- the edge application (resource tracer) ----------------------------------------

    def set_uplink(self, group: str, node: str, device: str) -> None:
        """Name the Sparkplug topic the raw stream is priced on (the edge's own node)."""
        topic = f"spBv1.0/{group}/DDATA/{node}/{device}"
        self._raw = _RawStream(len(topic.encode()))

    def on_emit(self, fb: FBInstance, event: str) -> None:
        p = self._p
        if fb is p.sense:
            if self._raw is not None and fb.get("QO"):
                values = tuple(fb.get(name) for name in fb.OUTPUTS if name.startswith("RD_"))
                self._raw.add(values, int(time.time() * 1000))
        elif fb is p.decide and event == "DECIDED":
            item = int(fb.get("ITEM"))
            self._edge[item].reject = bool(fb.get("REJECT"))
            truth = self._truth.get(item)
            if truth is not None and truth.inspected is not None:
                self._m.sample("decision_latency_ms", (time.monotonic() - truth.inspected) * 1e3)
        elif fb is p.act and event == "ACT":
            item = int(fb.get("ACT_ID"))
            if item == 0:
                self._untracked += 1
            self._pending.append((item, bool(fb.get("EXTEND"))))
        elif fb is p.actuation and event == "CNF":
            if not self._pending:
                return
            item, extend = self._pending.popleft()
            if not fb.get("QO"):
                self._m.count("divert_write_failed")
                return
            if item == 0:
                return
            self._edge[item].divert_confirmed = True
            truth = self._truth.get(item)
            now = time.monotonic()
            if truth is not None and truth.inspected is not None:
                self._m.sample("inspection_to_divert_ms", (now - truth.inspected) * 1e3)
            if truth is not None and truth.at_eye is not None:
                latency_s = now - truth.at_eye
                self._m.sample("divert_latency_ms", latency_s * 1e3)
                self._m.record("divert_latency_ms", self._elapsed_s(), latency_s * 1e3)
                stroke_s = self._model.config.diverter_stroke_s
                deadline = self.deadline_s + (0.0 if extend else stroke_s)
                if latency_s > deadline:
                    self._m.count("divert_deadline_misses")
        elif fb is p.exit and event == "EXITED" and fb.get("EXIT_KNOWN"):
            self._edge[int(fb.get("EXIT_ID"))].exited = True
        elif fb is p.fault and fb is not None:
            self._diverter_fault(bool(fb.get("FAULT")))

    def _diverter_fault(self, fault: bool) -> None:
        """A fault edge of the diverter supervision: match it to a jam window."""
        t = self._elapsed_s()
        if fault != self._fault:
            self._m.record("diverter_fault", t, float(self._fault))
            self._m.record("diverter_fault", t, float(fault))
        rising = fault and not self._fault
        self._fault = fault
        if not rising:
            return
        for index, (start, end) in enumerate(self._jams):
            if start <= t and (end is None or t <= end + _JAM_GRACE_S):
                if index not in self._jams_detected:
                    self._jams_detected.add(index)
                    self._m.sample("jam_detection_delay_s", t - start)
                return
        self._m.count("diverter_false_faults")

    # -- reporting ---------------------------------------------------------------------

    def sample(self, t_s: float, metrics: MetricsRecorder, link: EdgeLinkStatistics | None) -> None:
        """Time series: items out of the line, and the two uplink volumes so far."""
        state = self._model.state()
        total = int(state["items_rejected"] + state["items_passed"])
        metrics.gauge("items_total", total)
        metrics.record("items_total", t_s, float(total))
        if link is not None:
            metrics.record("bytes_to_cloud_edge", t_s, float(link.bytes_published))
        if self._raw is not None:
            metrics.record("bytes_to_cloud_raw", t_s, float(self._raw.bytes))

    def finish(self, metrics: MetricsRecorder, link: EdgeLinkStatistics | None) -> None:
        """The line's report metrics (see LINE_METRIC_DEFINITIONS)."""
        m = metrics
        state = self._model.state()
        rejected, passed = int(state["items_rejected"]), int(state["items_passed"])
        total = rejected + passed
        run_s = self._elapsed_s()
        m.gauge("items_total", total)
        if run_s > 0:
            m.gauge("throughput_items_per_min", total / (run_s / 60.0))
        for name in ("defective_passed", "good_rejected", "defective_rejected"):
            m.gauge(name, int(state[name]))
        m.gauge("divert_deadline_ms", self.deadline_s * 1e3)
        m.gauge("inspection_deadline_ms", self.inspection_deadline_s * 1e3)
        self._classification(m)
        self._tracking(m)
        m.gauge("untracked_arrivals", self._untracked)
        if self._p.fault is not None and self._jams:
            m.gauge("jams_missed", len(self._jams) - len(self._jams_detected))
        self._oee(m, total, passed - int(state["defective_passed"]), run_s)
        if link is not None and self._raw is not None:
            m.gauge("bytes_to_cloud_edge", link.bytes_published)
            m.gauge("bytes_to_cloud_raw", self._raw.bytes)
            m.gauge("raw_values_sampled", self._raw.values)
            if self._raw.bytes > 0:
                m.gauge("bandwidth_saved_pct",
                        100.0 * (1.0 - link.bytes_published / self._raw.bytes))

    def _classification(self, m: MetricsRecorder) -> None:
        tp = fp = fn = classified = missed = 0
        for item, edge in self._edge.items():
            truth = self._truth.get(item)
            if truth is None or edge.reject is None:
                continue
            classified += 1
            if edge.reject and truth.defective:
                tp += 1
            elif edge.reject:
                fp += 1
            elif truth.defective:
                fn += 1
            if edge.reject and truth.fate == "passed":
                missed += 1
        m.gauge("items_classified", classified)
        m.gauge("missed_diverts", missed)
        if tp + fp:
            m.gauge("reject_precision", tp / (tp + fp))
        if tp + fn:
            m.gauge("reject_recall", tp / (tp + fn))

    def _tracking(self, m: MetricsRecorder) -> None:
        done = complete = 0
        for item, truth in self._truth.items():
            if truth.fate is None:
                continue
            done += 1
            edge = self._edge.get(item)
            if edge is None or edge.reject is None or not edge.divert_confirmed:
                continue
            if truth.fate == "rejected" or edge.exited:
                complete += 1
        if done:
            m.gauge("tracking_completeness_pct", 100.0 * complete / done)

    def _oee(self, m: MetricsRecorder, total: int, good_out: int, run_s: float) -> None:
        if not self._scans or not total or run_s <= 0:
            return
        availability = self._moving_scans / self._scans
        ideal = self._model.config.arrival_rate_per_s * run_s * availability
        performance = min(1.0, total / ideal) if ideal > 0 else 0.0
        quality = good_out / total
        m.gauge("oee_availability", availability)
        m.gauge("oee_performance", performance)
        m.gauge("oee_quality", quality)
        m.gauge("oee", availability * performance * quality)
