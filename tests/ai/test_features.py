"""Shared feature code against straightforward numpy references."""

from __future__ import annotations

import numpy as np

from drivers.sim import SKF_6205, defect_frequencies
from testbed.ai.features import (
    crest_factor,
    envelope_spectrum,
    kurtosis,
    peak,
    rms,
    vibration_features,
    window_stats,
)


def test_time_domain_statistics_match_reference() -> None:
    """RMS, peak, crest factor and kurtosis equal their textbook formulas per block."""
    rng = np.random.default_rng(3)
    blocks = rng.normal(0.0, 2.0, (5, 1000)) + rng.standard_t(3, (5, 1000))
    for i, x in enumerate(blocks):
        r = np.sqrt(np.mean(x**2))
        assert np.isclose(rms(blocks)[i], r)
        assert np.isclose(peak(blocks)[i], np.max(np.abs(x)))
        assert np.isclose(crest_factor(blocks)[i], np.max(np.abs(x)) / r)
        c = x - x.mean()
        assert np.isclose(kurtosis(blocks)[i], np.mean(c**4) / np.mean(c**2) ** 2)


def test_envelope_band_peaks_at_defect_frequency() -> None:
    """Impacts at BPFO ringing a 3.5 kHz resonance give an envelope line at BPFO."""
    fs, n, rpm = 12_000.0, 4096, 1750.0
    bpfo = defect_frequencies(SKF_6205, rpm).bpfo
    t = np.arange(n) / fs
    ring = np.exp(-1100.0 * (t % (1.0 / bpfo))) * np.sin(2 * np.pi * 3500.0 * t)
    power, bin_hz = envelope_spectrum(ring, fs)
    lo = int(40 / bin_hz)
    strongest_hz = (np.argmax(power[0, lo:400]) + lo) * bin_hz
    assert abs(strongest_hz - bpfo) <= 2 * bin_hz
    feats = vibration_features(ring, fs, rpm)[0]
    assert feats[4] > feats[5]  # BPFO band beats BPFI band
    assert feats[4] > feats[6]


def test_features_of_a_stack_equal_features_of_each_block() -> None:
    """Batch computation gives the same rows as block-by-block computation."""
    rng = np.random.default_rng(5)
    blocks = rng.normal(size=(3, 2048))
    speeds = np.array([1000.0, 1400.0, 1790.0])
    stacked = vibration_features(blocks, 12_000.0, speeds)
    for i in range(3):
        np.testing.assert_allclose(stacked[i], vibration_features(blocks[i], 12_000.0,
                                                                  speeds[i])[0])


def test_window_stats_match_reference() -> None:
    """Mean, std, min, max and the least-squares slope match numpy's polyfit."""
    x = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 7.0])
    mean, std, lo, hi, slope = window_stats(x)[0]
    assert np.isclose(mean, x.mean())
    assert np.isclose(std, x.std())
    assert (lo, hi) == (1.0, 7.0)
    assert np.isclose(slope, np.polyfit(np.arange(6), x, 1)[0])
