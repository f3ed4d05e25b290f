"""`testbed train`: data from the pump model, an anomaly detector and a fault classifier, ONNX.

The same seed gives the same data, the same weights and the same model file bytes. The
evaluation runs the exported ONNX files through onnxruntime on held-out runs (other seeds,
other operating points): precision/recall/F1 of bearing-fault detection per CWRU severity,
detection delay after a fault switches on, and classifier accuracy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from drivers.sim import WearSeverity
from testbed.ai.dataset import (
    CLASS_NAMES,
    FaultClass,
    OperatingRange,
    RunResult,
    concat,
    draw_runs,
    simulate_runs,
)
from testbed.ai.features import VIBRATION_FEATURE_NAMES
from testbed.ai.graphs import mahalanobis_detector, mlp_classifier, serialize
from testbed.ai.learn import fit_gaussian, init_mlp, mlp_predict, train_mlp

__all__ = [
    "DEFAULT_SEVERITIES",
    "DelayMetrics",
    "DetectionMetrics",
    "ModelCard",
    "TrainConfig",
    "TrainResult",
    "detection_metrics",
    "run_onnx",
    "train",
    "write_outputs",
]

DEFAULT_SEVERITIES: tuple[float, ...] = tuple(s.value for s in WearSeverity)
DETECTOR_FILE = "bearing_detector.onnx"
CLASSIFIER_FILE = "bearing_classifier.onnx"


class TrainConfig(BaseModel):
    """What to simulate and how to train; `small()` is the quick variant the tests use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    severities_in: tuple[float, ...] = DEFAULT_SEVERITIES
    train_runs_per_case: int = Field(default=6, ge=1)
    test_runs_per_case: int = Field(default=4, ge=1)
    delay_runs_per_case: int = Field(default=3, ge=1)
    run_duration_s: float = Field(default=4.0, gt=1.0)
    block_every_s: float = Field(default=0.2, gt=0.0)
    speed_rpm: tuple[float, float] = (1000.0, 1800.0)
    valve_opening: tuple[float, float] = (0.3, 1.0)
    hidden_units: int = Field(default=16, ge=2)
    epochs: int = Field(default=400, ge=1)
    learning_rate: float = Field(default=0.02, gt=0.0)
    l2: float = Field(default=1e-4, ge=0.0)
    detector_quantile: float = Field(default=0.995, gt=0.5, lt=1.0)
    detector_margin: float = Field(default=1.5, ge=1.0)
    debounce_blocks: int = Field(default=2, ge=1)
    onset_s: float = Field(default=2.0, gt=0.0)

    @classmethod
    def small(cls, seed: int = 0) -> TrainConfig:
        """A quick configuration (fewer runs and epochs) that still meets the F1 targets."""
        return cls(seed=seed, train_runs_per_case=3, test_runs_per_case=2,
                   delay_runs_per_case=1, run_duration_s=3.0, epochs=200)

    @property
    def operating(self) -> OperatingRange:
        return OperatingRange(self.speed_rpm, self.valve_opening)


class DetectionMetrics(BaseModel):
    """Block-level detection of a bearing fault of one severity against healthy blocks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity_in: float
    precision: float
    recall: float
    f1: float
    positives: int
    negatives: int


class DelayMetrics(BaseModel):
    """Fault onset to the first debounced alarm, over runs with the fault switched on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity_in: float
    runs: int
    detected: int
    mean_delay_s: float | None
    max_delay_s: float | None
    false_alarms_before_onset: int


class ModelFileInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    sha256: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class ModelCard(BaseModel):
    """What a model was trained on, with which seed, and how well it does (JSON + Markdown)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "pump_bearing"
    config: TrainConfig
    features: tuple[str, ...] = VIBRATION_FEATURE_NAMES
    classes: tuple[str, ...] = CLASS_NAMES
    train_blocks_per_class: tuple[int, ...]
    test_blocks_per_class: tuple[int, ...]
    data: str
    detector: ModelFileInfo
    classifier: ModelFileInfo
    detection: tuple[DetectionMetrics, ...]
    delay: tuple[DelayMetrics, ...]
    classifier_accuracy: float
    confusion: tuple[tuple[int, ...], ...]

    def detection_for(self, severity_in: float) -> DetectionMetrics:
        return next(m for m in self.detection if abs(m.severity_in - severity_in) < 1e-9)

    def markdown(self) -> str:
        lines = [
            f"# Model card: {self.name}", "",
            f"Trained by `testbed train --seed {self.config.seed}`. {self.data}", "",
            "## Models", "",
            f"- `{self.detector.file}` (sha256 `{self.detector.sha256}`): Gaussian anomaly "
            f"detector; inputs {list(self.detector.inputs)}, outputs "
            f"{list(self.detector.outputs)}",
            f"- `{self.classifier.file}` (sha256 `{self.classifier.sha256}`): MLP fault "
            f"classifier; classes {list(self.classes)}", "",
            f"Features (in order): {', '.join(self.features)}", "",
            "## Detection on held-out runs", "",
            "| severity (in) | precision | recall | F1 | fault blocks | healthy blocks |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for m in self.detection:
            lines.append(f"| {m.severity_in:.3f} | {m.precision:.3f} | {m.recall:.3f} | "
                         f"{m.f1:.3f} | {m.positives} | {m.negatives} |")
        lines += ["", f"## Detection delay (debounce {self.config.debounce_blocks} blocks, "
                      f"one block every {self.config.block_every_s} s)", "",
                  "| severity (in) | runs | detected | mean delay (s) | max delay (s) | "
                  "false alarms before onset |", "| --- | --- | --- | --- | --- | --- |"]
        for d in self.delay:
            mean = "-" if d.mean_delay_s is None else f"{d.mean_delay_s:.2f}"
            worst = "-" if d.max_delay_s is None else f"{d.max_delay_s:.2f}"
            lines.append(f"| {d.severity_in:.3f} | {d.runs} | {d.detected} | {mean} | {worst}"
                         f" | {d.false_alarms_before_onset} |")
        lines += ["", "## Classifier", "",
                  f"Accuracy on held-out blocks: {self.classifier_accuracy:.3f}", "",
                  "Confusion (rows true, columns predicted): " + json.dumps(
                      [list(r) for r in self.confusion]), ""]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class TrainResult:
    """The two model files (bytes) and their card."""

    detector_onnx: bytes
    classifier_onnx: bytes
    card: ModelCard


def run_onnx(model: bytes, name: str, x: NDArray[np.float64]) -> list[NDArray[np.generic]]:
    """Run a model once on a float32 batch (evaluation goes through the exported files)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    out: list[NDArray[np.generic]] = session.run(None, {name: x.astype(np.float32)})
    return out


def detection_metrics(alarm: NDArray[np.bool_], labels: NDArray[np.int64],
                      severity: NDArray[np.float64], severity_in: float) -> DetectionMetrics:
    """Precision/recall/F1 of `alarm` for faulty blocks of one severity vs healthy blocks."""
    healthy = labels == 0
    faulty = (labels != 0) & np.isclose(severity, severity_in)
    tp = int(np.sum(alarm & faulty))
    fp = int(np.sum(alarm & healthy))
    fn = int(np.sum(~alarm & faulty))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return DetectionMetrics(severity_in=severity_in, precision=precision, recall=recall, f1=f1,
                            positives=int(faulty.sum()), negatives=int(healthy.sum()))


def _delays(runs: Sequence[RunResult], detector: bytes, severity_in: float,
            debounce: int) -> DelayMetrics:
    delays: list[float] = []
    false_alarms = 0
    for run in runs:
        alarm = run_onnx(detector, "features", run.features)[1].reshape(-1).astype(bool)
        streak = np.convolve(alarm.astype(np.int64), np.ones(debounce, np.int64))[:len(alarm)]
        fired = streak >= debounce
        before = run.times_s < run.spec.onset_s
        false_alarms += int(np.any(fired & before))
        after = np.flatnonzero(fired & ~before)
        if after.size:
            delays.append(float(run.times_s[after[0]] - run.spec.onset_s))
    return DelayMetrics(
        severity_in=severity_in, runs=len(runs), detected=len(delays),
        mean_delay_s=float(np.mean(delays)) if delays else None,
        max_delay_s=float(np.max(delays)) if delays else None,
        false_alarms_before_onset=false_alarms)


def train(config: TrainConfig) -> TrainResult:
    """Simulate, train both models, export them, evaluate them on held-out runs."""
    train_rng, test_rng, delay_rng, init_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4))
    common = {"severities_in": config.severities_in, "operating": config.operating,
              "duration_s": config.run_duration_s}
    train_runs = simulate_runs(draw_runs(train_rng, runs_per_case=config.train_runs_per_case,
                                         **common), config.block_every_s)  # type: ignore[arg-type]
    test_runs = simulate_runs(draw_runs(test_rng, runs_per_case=config.test_runs_per_case,
                                        **common), config.block_every_s)  # type: ignore[arg-type]
    train_set = concat(train_runs)
    test_set = concat(test_runs)

    # anomaly detector: Gaussian on healthy runs, threshold from held-back healthy runs
    healthy_runs = sorted({int(i) for i in train_set.run_index[train_set.labels == 0]})
    calibration_runs = set(healthy_runs[::3])
    is_cal = np.isin(train_set.run_index, sorted(calibration_runs))
    healthy = train_set.labels == 0
    gauss = fit_gaussian(train_set.features[healthy & ~is_cal],
                         train_set.features[healthy & is_cal],
                         quantile=config.detector_quantile, margin=config.detector_margin)
    detector = serialize(mahalanobis_detector(
        gauss.mean, gauss.whitening, gauss.threshold,
        doc=f"bearing anomaly detector, testbed train seed {config.seed}"))

    # classifier: standardized features, one hidden ReLU layer, softmax
    x = train_set.features
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    sizes = (x.shape[1], config.hidden_units, len(FaultClass))
    weights = train_mlp(init_mlp(init_rng, sizes, mean, scale), x, train_set.labels,
                        epochs=config.epochs, learning_rate=config.learning_rate, l2=config.l2)
    classifier = serialize(mlp_classifier(
        weights.mean, weights.scale, weights.layers,
        doc=f"bearing fault classifier, testbed train seed {config.seed}"))

    # evaluation through the exported models
    alarm = run_onnx(detector, "features", test_set.features)[1].reshape(-1).astype(bool)
    detection = tuple(detection_metrics(alarm, test_set.labels, test_set.severity_in, s)
                      for s in config.severities_in)
    predicted = np.asarray(run_onnx(classifier, "features", test_set.features)[1],
                           dtype=np.int64).reshape(-1)
    accuracy = float(np.mean(predicted == test_set.labels))
    n_classes = len(FaultClass)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (test_set.labels, predicted), 1)
    delay = []
    for severity in config.severities_in:
        specs = draw_runs(delay_rng, runs_per_case=config.delay_runs_per_case,
                          severities_in=(severity,), classes=tuple(FaultClass)[1:],
                          operating=config.operating,
                          duration_s=config.onset_s + config.run_duration_s,
                          onset_s=config.onset_s)
        runs = simulate_runs(specs, config.block_every_s)
        delay.append(_delays(runs, detector, severity, config.debounce_blocks))

    card = ModelCard(
        config=config,
        train_blocks_per_class=tuple(int(np.sum(train_set.labels == c)) for c in FaultClass),
        test_blocks_per_class=tuple(int(np.sum(test_set.labels == c)) for c in FaultClass),
        data=(f"Simulated motor-pump (drivers.sim.PumpModel, SKF 6205 bearing, 12 kHz "
              f"vibration, 4096-sample blocks) at {config.speed_rpm[0]:.0f}-"
              f"{config.speed_rpm[1]:.0f} rpm and valve openings {config.valve_opening[0]}-"
              f"{config.valve_opening[1]}; healthy runs and outer-race, inner-race and ball "
              f"defects of {', '.join(f'{s:.3f}' for s in config.severities_in)} in; "
              f"{len(train_runs)} training runs, {len(test_runs)} held-out runs from other "
              f"seeds and operating points."),
        detector=ModelFileInfo(file=DETECTOR_FILE, sha256=hashlib.sha256(detector).hexdigest(),
                               inputs=("features",), outputs=("score", "anomaly")),
        classifier=ModelFileInfo(file=CLASSIFIER_FILE,
                                 sha256=hashlib.sha256(classifier).hexdigest(),
                                 inputs=("features",), outputs=("probabilities", "label")),
        detection=detection,
        delay=tuple(delay),
        classifier_accuracy=accuracy,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
    )
    _ = mlp_predict  # numpy twin of the classifier, kept for federated evaluation
    return TrainResult(detector, classifier, card)


def write_outputs(result: TrainResult, out_dir: Path) -> list[Path]:
    """Write both model files and the card (`model_card.json`, `model_card.md`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        DETECTOR_FILE: result.detector_onnx,
        CLASSIFIER_FILE: result.classifier_onnx,
        "model_card.json": (result.card.model_dump_json(indent=2) + "\n").encode(),
        "model_card.md": result.card.markdown().encode(),
    }
    written = []
    for name, data in files.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written
