"""Vibration and process features, shared by the feature FBs and by training.

One implementation serves both sides so a model sees at the edge exactly the features it
was trained on. Everything works on whole arrays (numpy, no per-sample Python loops), and
every function accepts one block `(n_samples,)` or a stack of blocks `(n_blocks, n_samples)`.

Vibration features follow PHM practice for rolling bearings: time-domain statistics (RMS,
peak, crest factor, kurtosis) and the energy of the envelope spectrum in narrow bands around
the bearing defect frequencies (BPFO, BPFI, 2xBSF and their harmonics), taken relative to the
whole envelope spectrum so they do not scale with speed or sensor gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from drivers.sim import SKF_6205, BearingGeometry, defect_orders

__all__ = [
    "VIBRATION_FEATURE_NAMES",
    "WINDOW_STAT_NAMES",
    "BandSpec",
    "band_energies",
    "crest_factor",
    "envelope_spectrum",
    "kurtosis",
    "peak",
    "rms",
    "vibration_features",
    "window_stats",
]

FloatArray = NDArray[np.float64]

VIBRATION_FEATURE_NAMES: tuple[str, ...] = (
    "log_rms", "log_peak", "crest", "log_kurtosis",
    "env_bpfo", "env_bpfi", "env_bsf", "log_1x", "log_2x",
)
"""The order of `vibration_features` columns (the classifier and detector input)."""

WINDOW_STAT_NAMES: tuple[str, ...] = ("mean", "std", "min", "max", "slope")
"""The order of `window_stats` columns."""

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class BandSpec:
    """How defect bands are cut from the envelope spectrum.

    `relative_width` is the half-width of a band as a fraction of its centre (rolling
    elements slip 1-2 %), never narrower than `min_bins` spectral bins; `harmonics` bands are
    summed per defect; the envelope is taken from the `demod_low_hz..demod_high_hz` band that
    holds the structural resonance the impacts excite.
    """

    relative_width: float = 0.03
    min_bins: float = 1.5
    harmonics: int = 3
    demod_low_hz: float = 2_000.0
    demod_high_hz: float = 5_000.0
    reference_high_hz: float = 600.0
    """Upper edge of the envelope-spectrum range the band energies are relative to."""


def _as_blocks(x: object) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return arr[np.newaxis, :]
    if arr.ndim != 2:
        raise ValueError(f"expected a block (n,) or blocks (m, n), got shape {arr.shape}")
    return arr


def rms(x: object) -> FloatArray:
    """Root mean square per block."""
    b = _as_blocks(x)
    return np.asarray(np.sqrt(np.mean(b * b, axis=-1)), dtype=np.float64)


def peak(x: object) -> FloatArray:
    """Largest absolute sample per block."""
    return np.asarray(np.max(np.abs(_as_blocks(x)), axis=-1), dtype=np.float64)


def crest_factor(x: object) -> FloatArray:
    """Peak over RMS per block (0 for an all-zero block)."""
    r = rms(x)
    return np.where(r > _EPS, peak(x) / np.maximum(r, _EPS), 0.0)


def kurtosis(x: object) -> FloatArray:
    """Pearson kurtosis per block (3 for Gaussian noise; impacts push it up)."""
    b = _as_blocks(x)
    centred = b - b.mean(axis=-1, keepdims=True)
    var = np.mean(centred * centred, axis=-1)
    m4 = np.mean(centred**4, axis=-1)
    return np.where(var > _EPS, m4 / np.maximum(var, _EPS) ** 2, 0.0)


def envelope_spectrum(
    x: object, sample_rate_hz: float, spec: BandSpec = BandSpec()
) -> tuple[FloatArray, float]:
    """Power spectrum of the demodulated envelope per block, and its bin width in Hz.

    The block is band-passed around the resonance in the frequency domain, turned into its
    analytic signal (negative frequencies zeroed), and the magnitude of that is the envelope.
    """
    b = _as_blocks(x)
    n = b.shape[-1]
    spectrum = np.fft.fft(b - b.mean(axis=-1, keepdims=True), axis=-1)
    freqs = np.fft.fftfreq(n, 1.0 / sample_rate_hz)
    keep = (freqs >= spec.demod_low_hz) & (freqs <= spec.demod_high_hz)
    analytic = np.fft.ifft(spectrum * (2.0 * keep), axis=-1)
    envelope = np.abs(analytic)
    envelope -= envelope.mean(axis=-1, keepdims=True)
    power = np.abs(np.fft.rfft(envelope, axis=-1)) ** 2
    return power, sample_rate_hz / n


def band_energies(
    power: FloatArray, bin_hz: float, centres_hz: FloatArray, spec: BandSpec = BandSpec()
) -> FloatArray:
    """Energy of `power` (blocks x bins) in bands around each block's centres (blocks x k).

    Bands are summed through a cumulative sum, so any number of bands costs two gathers.
    """
    centres = np.asarray(centres_hz, dtype=np.float64)
    if centres.ndim == 1:
        centres = np.broadcast_to(centres, (power.shape[0], centres.shape[0]))
    half = np.maximum(spec.relative_width * centres, spec.min_bins * bin_hz)
    n_bins = power.shape[-1]
    lo = np.clip(np.floor((centres - half) / bin_hz).astype(np.int64), 0, n_bins - 1)
    hi = np.clip(np.ceil((centres + half) / bin_hz).astype(np.int64) + 1, 1, n_bins)
    cumulative = np.concatenate((np.zeros((power.shape[0], 1)), np.cumsum(power, axis=-1)),
                                axis=-1)
    rows = np.arange(power.shape[0])[:, np.newaxis]
    return np.asarray(cumulative[rows, hi] - cumulative[rows, lo], dtype=np.float64)


def vibration_features(
    x: object,
    sample_rate_hz: float,
    shaft_speed_rpm: object,
    geometry: BearingGeometry = SKF_6205,
    spec: BandSpec = BandSpec(),
) -> FloatArray:
    """The feature vector per block, columns as `VIBRATION_FEATURE_NAMES` (blocks x 9).

    `shaft_speed_rpm` is one speed or one per block (defect frequencies follow the shaft).
    """
    b = _as_blocks(x)
    m, n = b.shape
    speed_hz = np.broadcast_to(np.asarray(shaft_speed_rpm, dtype=np.float64) / 60.0, (m,))
    r = rms(b)
    p = peak(b)
    out = np.empty((m, len(VIBRATION_FEATURE_NAMES)))
    out[:, 0] = np.log(r + _EPS)
    out[:, 1] = np.log(p + _EPS)
    out[:, 2] = np.where(r > _EPS, p / np.maximum(r, _EPS), 0.0)
    out[:, 3] = np.log(kurtosis(b) + _EPS)
    power, env_bin = envelope_spectrum(b, sample_rate_hz, spec)
    orders = defect_orders(geometry)
    defect = np.array([orders.bpfo, orders.bpfi, 2.0 * orders.bsf])
    k = np.arange(1, spec.harmonics + 1, dtype=np.float64)
    centres = (speed_hz[:, None, None] * defect[None, :, None] * k[None, None, :]).reshape(m, -1)
    bands = band_energies(power, env_bin, centres, spec).reshape(m, 3, spec.harmonics).sum(-1)
    top = min(power.shape[-1], int(spec.reference_high_hz / env_bin) + 1)
    reference = power[:, 1:top].sum(axis=-1) + _EPS
    out[:, 4:7] = np.log(bands / reference[:, None] + 1e-6)
    raw = np.abs(np.fft.rfft(b - b.mean(axis=-1, keepdims=True), axis=-1)) * (2.0 / n)
    raw_bin = sample_rate_hz / n
    shaft = np.stack((speed_hz, 2.0 * speed_hz), axis=-1)
    amp_lo = np.clip(np.rint(shaft / raw_bin).astype(np.int64) - 1, 0, raw.shape[-1] - 1)
    rows = np.arange(m)[:, np.newaxis]
    near = np.maximum(np.maximum(raw[rows, amp_lo], raw[rows, np.minimum(amp_lo + 1,
                                                                         raw.shape[-1] - 1)]),
                      raw[rows, np.minimum(amp_lo + 2, raw.shape[-1] - 1)])
    out[:, 7:9] = np.log(near + 1e-6)
    return out


def window_stats(x: object) -> FloatArray:
    """Mean, standard deviation, min, max and least-squares slope per window (per sample).

    For process data (flow, current, temperature) collected in a sliding window.
    """
    b = _as_blocks(x)
    n = b.shape[-1]
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    denom = float(np.sum(t * t)) or 1.0
    mean = b.mean(axis=-1)
    slope = ((b - mean[:, None]) @ t) / denom
    return np.stack((mean, b.std(axis=-1), b.min(axis=-1), b.max(axis=-1), slope), axis=-1)
