"""Labelled feature data generated from the pump model (seeded, no downloads).

Each run is one simulated pump at a fixed speed and valve opening, healthy or with one
bearing defect of a CWRU size switched on at `onset_s`. Blocks of the drive-end vibration
are cut every `block_every_s` and turned into features with the same code the feature FBs
run. Train and test sets come from different seeds and operating points, so no recording
leaks from one into the other (the CWRU leakage pitfall).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from drivers.sim import (
    BearingFault,
    FaultKind,
    FaultSchedule,
    FaultSpec,
    PumpConfig,
    PumpModel,
)
from testbed.ai.features import vibration_features

__all__ = [
    "CLASS_NAMES",
    "FaultClass",
    "FeatureSet",
    "OperatingRange",
    "RunResult",
    "RunSpec",
    "concat",
    "draw_runs",
    "simulate_run",
    "simulate_runs",
]


class FaultClass(enum.IntEnum):
    """Classifier labels: healthy, then the three defect locations."""

    HEALTHY = 0
    OUTER_RACE = 1
    INNER_RACE = 2
    BALL = 3


CLASS_NAMES: tuple[str, ...] = tuple(c.name.lower() for c in FaultClass)

_FAULT_OF_CLASS = {
    FaultClass.OUTER_RACE: BearingFault.OUTER_RACE,
    FaultClass.INNER_RACE: BearingFault.INNER_RACE,
    FaultClass.BALL: BearingFault.BALL,
}


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One simulated run: operating point, fault (if any) and the seed of its noise."""

    seed: int
    speed_rpm: float
    valve_opening: float
    fault: FaultClass = FaultClass.HEALTHY
    severity_in: float = 0.0
    onset_s: float = 0.0
    duration_s: float = 4.0


@dataclass(frozen=True, slots=True)
class OperatingRange:
    """Where a site (or a data set) runs its pumps."""

    speed_rpm: tuple[float, float] = (1000.0, 1800.0)
    valve_opening: tuple[float, float] = (0.3, 1.0)


@dataclass(frozen=True, slots=True)
class RunResult:
    """Features of every block of one run, with per-block ground truth."""

    spec: RunSpec
    features: NDArray[np.float64]
    times_s: NDArray[np.float64]
    labels: NDArray[np.int64]
    """The fault class acting when the block ends (HEALTHY before onset)."""
    transition: NDArray[np.bool_]
    """Blocks that straddle the onset (part healthy, part faulty)."""


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """Stacked blocks of many runs: features, labels, severities, run index per block."""

    features: NDArray[np.float64]
    labels: NDArray[np.int64]
    severity_in: NDArray[np.float64]
    run_index: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


_SETTLE_S = 0.5
"""Blocks start once the first block is filled with samples at the run's speed."""


def simulate_run(spec: RunSpec, block_every_s: float = 0.2) -> RunResult:
    """Run the pump model for one spec and return the features of its blocks."""
    config = PumpConfig(initial_speed_command_rpm=spec.speed_rpm,
                        initial_valve_opening=spec.valve_opening)
    model = PumpModel(config, seed=spec.seed)
    if spec.fault is not FaultClass.HEALTHY:
        model.apply_schedule(FaultSchedule(faults=(FaultSpec(
            kind=FaultKind.BEARING_WEAR, target=_FAULT_OF_CLASS[spec.fault].value,
            start_s=spec.onset_s, severity=spec.severity_in),)))
    fs = config.vibration.sample_rate_hz
    block_s = config.vibration.block_samples / fs
    stride = max(1, round(block_every_s / config.dt_s))
    steps = round(spec.duration_s / config.dt_s)
    blocks: list[NDArray[np.float64]] = []
    speeds: list[float] = []
    times: list[float] = []
    for step in range(1, steps + 1):
        state = model.step()
        if state.time_s + 1e-9 < _SETTLE_S or step % stride:
            continue
        blocks.append(state.waveforms["vibration"].samples)
        speeds.append(state.real("shaft_speed_rpm"))
        times.append(state.time_s)
    t = np.asarray(times)
    features = vibration_features(np.stack(blocks), fs, np.asarray(speeds), config.bearing)
    faulty = spec.fault is not FaultClass.HEALTHY
    active = t >= spec.onset_s if faulty else np.zeros(len(t), dtype=bool)
    labels = np.where(active, int(spec.fault), int(FaultClass.HEALTHY)).astype(np.int64)
    transition = active & (t - block_s < spec.onset_s) if faulty else np.zeros(len(t), bool)
    return RunResult(spec, features, t, labels, transition)


def simulate_runs(specs: Sequence[RunSpec], block_every_s: float = 0.2) -> list[RunResult]:
    """`simulate_run` for each spec, in order."""
    return [simulate_run(s, block_every_s) for s in specs]


def draw_runs(
    rng: np.random.Generator,
    *,
    runs_per_case: int,
    severities_in: Sequence[float],
    classes: Sequence[FaultClass] = tuple(FaultClass),
    operating: OperatingRange = OperatingRange(),
    duration_s: float = 4.0,
    onset_s: float = 0.0,
    healthy_runs: int | None = None,
) -> list[RunSpec]:
    """Run specs for every (fault class, severity) case at random operating points.

    Healthy runs number `healthy_runs` (default: as many as one fault class has runs).
    """
    specs: list[RunSpec] = []

    def point() -> tuple[int, float, float]:
        seed = int(rng.integers(0, 2**31 - 1))
        speed = float(rng.uniform(*operating.speed_rpm))
        valve = float(rng.uniform(*operating.valve_opening))
        return seed, speed, valve

    faulty = [c for c in classes if c is not FaultClass.HEALTHY]
    if FaultClass.HEALTHY in classes:
        n_healthy = healthy_runs if healthy_runs is not None else (
            runs_per_case * len(severities_in))
        for _ in range(n_healthy):
            seed, speed, valve = point()
            specs.append(RunSpec(seed, speed, valve, duration_s=duration_s))
    for cls in faulty:
        for severity in severities_in:
            for _ in range(runs_per_case):
                seed, speed, valve = point()
                specs.append(RunSpec(seed, speed, valve, cls, float(severity), onset_s,
                                     duration_s))
    return specs


def concat(runs: Sequence[RunResult], *, drop_transition: bool = True) -> FeatureSet:
    """Stack the blocks of several runs (optionally without onset-straddling blocks)."""
    feats, labels, sev, index = [], [], [], []
    for i, run in enumerate(runs):
        keep = ~run.transition if drop_transition else np.ones(len(run.labels), bool)
        feats.append(run.features[keep])
        labels.append(run.labels[keep])
        severity = np.where(run.labels[keep] != 0, run.spec.severity_in, 0.0)
        sev.append(severity)
        index.append(np.full(int(keep.sum()), i, dtype=np.int64))
    return FeatureSet(np.concatenate(feats), np.concatenate(labels).astype(np.int64),
                      np.concatenate(sev), np.concatenate(index))
