"""Rolling-bearing kinematics and a vibration generator for seeded bearing defects.

Defect frequencies follow the textbook formulas; with the SKF 6205-2RS geometry the CWRU
bearing rig used they give BPFO 3.5848, BPFI 5.4152, FTF 0.3983 and BSF 2.357 times the
shaft speed. The generator sums shaft harmonics (imbalance 1x, misalignment 2x), defect
impulse trains that ring a structural resonance, and Gaussian noise, block by block, with
phase and ring-down carried across blocks so consecutive blocks form one continuous signal.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import DriverConfigError

__all__ = [
    "SKF_6205",
    "BearingFault",
    "BearingGeometry",
    "DefectFrequencies",
    "VibrationConfig",
    "VibrationGenerator",
    "defect_frequencies",
    "defect_orders",
]

_REFERENCE_DIAMETER_IN = 0.007
"""Impulse amplitudes are given for the smallest CWRU defect and scale linearly from it."""


class BearingFault(enum.StrEnum):
    """Where a bearing defect sits; the names are the `bearing_wear` fault targets."""

    OUTER_RACE = "outer_race"
    INNER_RACE = "inner_race"
    BALL = "ball"


@dataclass(frozen=True, slots=True)
class BearingGeometry:
    """Rolling-element bearing geometry (lengths in inches, as CWRU publishes them)."""

    n_balls: int
    ball_diameter_in: float
    pitch_diameter_in: float
    contact_angle_deg: float = 0.0


SKF_6205 = BearingGeometry(
    n_balls=9, ball_diameter_in=0.3126, pitch_diameter_in=1.537, contact_angle_deg=0.0
)
"""The drive-end bearing of the CWRU rig (SKF 6205-2RS JEM)."""


@dataclass(frozen=True, slots=True)
class DefectFrequencies:
    """Characteristic defect frequencies, in Hz or (from `defect_orders`) in shaft orders."""

    ftf: float
    """Fundamental train (cage) frequency."""
    bpfo: float
    """Ball pass frequency, outer race."""
    bpfi: float
    """Ball pass frequency, inner race."""
    bsf: float
    """Ball spin frequency (CWRU tabulates 2 x BSF, the rate a ball defect hits both races)."""

    def for_fault(self, fault: BearingFault) -> float:
        """The impact rate of a defect at this location."""
        if fault is BearingFault.OUTER_RACE:
            return self.bpfo
        if fault is BearingFault.INNER_RACE:
            return self.bpfi
        return 2.0 * self.bsf


def defect_orders(geometry: BearingGeometry) -> DefectFrequencies:
    """Defect frequencies as multiples of the shaft rotation frequency."""
    ratio = geometry.ball_diameter_in / geometry.pitch_diameter_in
    ratio *= math.cos(math.radians(geometry.contact_angle_deg))
    half_n = geometry.n_balls / 2.0
    return DefectFrequencies(
        ftf=0.5 * (1.0 - ratio),
        bpfo=half_n * (1.0 - ratio),
        bpfi=half_n * (1.0 + ratio),
        bsf=geometry.pitch_diameter_in / (2.0 * geometry.ball_diameter_in) * (1.0 - ratio**2),
    )


def defect_frequencies(geometry: BearingGeometry, shaft_speed_rpm: float) -> DefectFrequencies:
    """Defect frequencies in Hz at a shaft speed."""
    orders = defect_orders(geometry)
    shaft_hz = shaft_speed_rpm / 60.0
    return DefectFrequencies(
        ftf=orders.ftf * shaft_hz,
        bpfo=orders.bpfo * shaft_hz,
        bpfi=orders.bpfi * shaft_hz,
        bsf=orders.bsf * shaft_hz,
    )


class VibrationConfig(BaseModel):
    """Accelerometer and structure parameters (accelerations in m/s²)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate_hz: float = Field(default=12_000.0, gt=0.0)
    block_samples: int = Field(default=4096, ge=16)
    """Length of the vibration block published in each state (the latest samples)."""
    reference_speed_rpm: float = Field(default=1800.0, gt=0.0)
    imbalance_m_s2: float = Field(default=0.4, ge=0.0)
    """1x amplitude at the reference speed (grows with speed squared)."""
    misalignment_m_s2: float = Field(default=0.15, ge=0.0)
    """2x amplitude at the reference speed."""
    noise_m_s2: float = Field(default=0.3, ge=0.0)
    """Standard deviation of broadband sensor noise."""
    resonance_hz: float = Field(default=3_500.0, gt=0.0)
    damping_ratio: float = Field(default=0.05, gt=0.0, lt=1.0)
    impulse_m_s2: float = Field(default=8.0, ge=0.0)
    """Peak of one defect impact's ring-down for a 0.007 in defect at the reference speed."""
    impact_jitter: float = Field(default=0.01, ge=0.0, lt=0.2)
    """Relative standard deviation of the time between impacts (rolling-element slip)."""


@dataclass(slots=True)
class _ImpactTrain:
    """Per-location state: time of the next impact, relative to the next block's start."""

    next_impact_s: float


class VibrationGenerator:
    """Generates consecutive blocks of bearing-housing acceleration."""

    def __init__(
        self, config: VibrationConfig, geometry: BearingGeometry, rng: np.random.Generator
    ) -> None:
        self._config = config
        self._orders = defect_orders(geometry)
        self._rng = rng
        fs = config.sample_rate_hz
        if config.resonance_hz >= fs / 2.0:
            raise DriverConfigError(
                f"resonance {config.resonance_hz} Hz is above Nyquist ({fs / 2} Hz)"
            )
        omega_n = 2.0 * math.pi * config.resonance_hz
        zeta = config.damping_ratio
        ring_s = math.log(1_000.0) / (zeta * omega_n)
        t = np.arange(max(2, math.ceil(ring_s * fs))) / fs
        response = np.exp(-zeta * omega_n * t) * np.sin(omega_n * math.sqrt(1 - zeta**2) * t)
        self._response = response / np.max(np.abs(response))
        self._tail = np.zeros(len(self._response) - 1)
        self._shaft_phase = 0.0
        self._cage_phase = 0.0
        self._trains: dict[BearingFault, _ImpactTrain] = {}

    def generate(
        self, n_samples: int, shaft_speed_rpm: float, wear_in: Mapping[BearingFault, float]
    ) -> NDArray[np.float64]:
        """The next `n_samples` of acceleration at a (block-constant) shaft speed."""
        if n_samples <= 0:
            return np.zeros(0)
        cfg = self._config
        fs = cfg.sample_rate_hz
        shaft_hz = max(0.0, shaft_speed_rpm / 60.0)
        ratio = shaft_speed_rpm / cfg.reference_speed_rpm
        k = np.arange(n_samples, dtype=np.float64)
        shaft_phase = self._shaft_phase + 2.0 * math.pi * shaft_hz * k / fs
        signal = cfg.imbalance_m_s2 * ratio**2 * np.sin(shaft_phase)
        signal += cfg.misalignment_m_s2 * ratio**2 * np.sin(2.0 * shaft_phase + 0.7)
        impacts = np.zeros(n_samples)
        for fault in BearingFault:
            diameter = wear_in.get(fault, 0.0)
            if diameter > 0.0 and shaft_hz > 0.0:
                self._add_impacts(impacts, fault, diameter, shaft_hz, ratio)
            else:
                self._trains.pop(fault, None)
        # ring-down of this block's impacts plus what earlier blocks left ringing
        ringing = np.convolve(impacts, self._response)
        ringing[: len(self._tail)] += self._tail
        signal += ringing[:n_samples]
        self._tail = ringing[n_samples:]
        signal += self._rng.normal(0.0, cfg.noise_m_s2, n_samples)
        self._shaft_phase = (self._shaft_phase + 2.0 * math.pi * shaft_hz * n_samples / fs) % (
            2.0 * math.pi
        )
        cage_hz = self._orders.ftf * shaft_hz
        self._cage_phase = (self._cage_phase + 2.0 * math.pi * cage_hz * n_samples / fs) % (
            2.0 * math.pi
        )
        return signal

    def _add_impacts(
        self,
        impacts: NDArray[np.float64],
        fault: BearingFault,
        diameter_in: float,
        shaft_hz: float,
        speed_ratio: float,
    ) -> None:
        cfg = self._config
        fs = cfg.sample_rate_hz
        n_samples = len(impacts)
        block_s = n_samples / fs
        period_s = 1.0 / (self._orders.for_fault(fault) * shaft_hz)
        train = self._trains.get(fault)
        if train is None:
            train = _ImpactTrain(next_impact_s=float(self._rng.uniform(0.0, period_s)))
            self._trains[fault] = train
        count = math.ceil(max(0.0, block_s - train.next_impact_s) / period_s * 1.2) + 2
        intervals = period_s * (1.0 + cfg.impact_jitter * self._rng.standard_normal(count))
        times = train.next_impact_s + np.concatenate(([0.0], np.cumsum(intervals[:-1])))
        while times[-1] < block_s:  # jitter ran long: extend (rare, bounded by the block)
            extra = period_s * (1.0 + cfg.impact_jitter * self._rng.standard_normal(count))
            times = np.concatenate((times, times[-1] + np.cumsum(extra)))
        inside = times < block_s
        hit_s = times[inside]
        train.next_impact_s = float(times[~inside][0] - block_s)
        amplitude = cfg.impulse_m_s2 * (diameter_in / _REFERENCE_DIAMETER_IN) * speed_ratio
        if fault is BearingFault.INNER_RACE:
            # the defect turns with the shaft through the load zone: impacts swell once per rev
            phase = self._shaft_phase + 2.0 * math.pi * shaft_hz * hit_s
            gains = amplitude * (0.6 + 0.4 * np.cos(phase))
        elif fault is BearingFault.BALL:
            # a ball defect travels with the cage through the load zone
            phase = self._cage_phase + 2.0 * math.pi * self._orders.ftf * shaft_hz * hit_s
            gains = amplitude * (0.6 + 0.4 * np.cos(phase))
        else:
            gains = np.full(len(hit_s), amplitude)
        index = np.minimum(np.rint(hit_s * fs).astype(np.int64), n_samples - 1)
        np.add.at(impacts, index, gains)
