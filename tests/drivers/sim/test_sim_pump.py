"""Pump model: affinity laws, thermal lag, bearing-defect vibration spectra, wear growth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from drivers.sim import (
    SKF_6205,
    BearingFault,
    FaultKind,
    FaultSpec,
    PumpConfig,
    PumpModel,
    WearSeverity,
    defect_frequencies,
)

FS = 12_000.0
QUIET = {
    "speed_noise_rpm": 0.0,
    "current_noise_a": 0.0,
    "temperature_noise_c": 0.0,
    "flow_noise_m3h": 0.0,
    "pressure_noise_bar": 0.0,
}


def _amplitude_spectrum(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    window = np.hanning(len(x))
    amplitude = np.abs(np.fft.rfft((x - x.mean()) * window)) * 2 / window.sum()
    return np.fft.rfftfreq(len(x), 1 / FS), amplitude


def _envelope_spectrum(
    x: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n = len(x)
    analytic_gain = np.zeros(n)
    analytic_gain[0] = 1
    analytic_gain[1 : n // 2] = 2
    analytic_gain[n // 2] = 1
    envelope = np.abs(np.fft.ifft(np.fft.fft(x - x.mean()) * analytic_gain))
    return _amplitude_spectrum(envelope)


def _peak_ratio(
    spectrum: tuple[NDArray[np.float64], NDArray[np.float64]], freq_hz: float
) -> tuple[float, float]:
    """(peak within ±2 % of freq, peak / median of the ±20 % neighbourhood outside it)."""
    f, amplitude = spectrum
    band = np.abs(f - freq_hz) <= 0.02 * freq_hz
    near = (np.abs(f - freq_hz) <= 0.2 * freq_hz) & ~band
    peak = float(amplitude[band].max())
    return peak, peak / float(np.median(amplitude[near]))


def _two_seconds_of_vibration(
    fault: BearingFault | None, severity: float, seed: int = 7
) -> tuple[NDArray[np.float64], float]:
    model = PumpModel(PumpConfig(vibration={"block_samples": 24_000}), seed=seed)
    if fault is not None:
        model.add_fault(FaultSpec(kind=FaultKind.BEARING_WEAR, target=fault, severity=severity))
    state = model.run_for(2.0)
    return state.waveforms["vibration"].samples, state.real("shaft_speed_rpm")


def test_healthy_bearing_has_no_peak_at_bpfo() -> None:
    """A healthy bearing's spectrum shows nothing standing out at BPFO (raw or envelope)."""
    samples, rpm = _two_seconds_of_vibration(None, 0.0)
    bpfo = defect_frequencies(SKF_6205, rpm).bpfo
    assert _peak_ratio(_amplitude_spectrum(samples), bpfo)[1] < 4.0
    assert _peak_ratio(_envelope_spectrum(samples), bpfo)[1] < 4.0


def test_healthy_spectrum_shows_shaft_harmonics() -> None:
    """Imbalance (1x) and misalignment (2x) appear as peaks at the shaft frequency and twice it."""
    samples, rpm = _two_seconds_of_vibration(None, 0.0)
    spectrum = _amplitude_spectrum(samples)
    assert _peak_ratio(spectrum, rpm / 60)[1] > 20
    assert _peak_ratio(spectrum, 2 * rpm / 60)[1] > 8


def test_outer_race_fault_peaks_at_bpfo_growing_with_severity() -> None:
    """Outer-race defects put a peak at BPFO whose amplitude grows from 0.007 to 0.021 in."""
    peaks = []
    for severity in WearSeverity:
        samples, rpm = _two_seconds_of_vibration(BearingFault.OUTER_RACE, severity)
        bpfo = defect_frequencies(SKF_6205, rpm).bpfo
        peak, ratio = _peak_ratio(_amplitude_spectrum(samples), bpfo)
        assert ratio > 8, f"no BPFO peak at {severity}"
        envelope_peak, envelope_ratio = _peak_ratio(_envelope_spectrum(samples), bpfo)
        assert envelope_ratio > 20
        peaks.append((peak, envelope_peak))
    assert peaks[0][0] < peaks[1][0] < peaks[2][0]
    assert peaks[0][1] < peaks[1][1] < peaks[2][1]


def test_inner_race_fault_peaks_at_bpfi_not_bpfo() -> None:
    """An inner-race defect shows in the envelope spectrum at BPFI and not at BPFO."""
    samples, rpm = _two_seconds_of_vibration(BearingFault.INNER_RACE, WearSeverity.MODERATE)
    freqs = defect_frequencies(SKF_6205, rpm)
    envelope = _envelope_spectrum(samples)
    assert _peak_ratio(envelope, freqs.bpfi)[1] > 10
    assert _peak_ratio(envelope, freqs.bpfo)[1] < 4


def test_ball_fault_peaks_at_twice_bsf() -> None:
    """A ball defect strikes at 2 x BSF, visible in the envelope spectrum."""
    samples, rpm = _two_seconds_of_vibration(BearingFault.BALL, WearSeverity.SEVERE)
    freqs = defect_frequencies(SKF_6205, rpm)
    assert _peak_ratio(_envelope_spectrum(samples), 2 * freqs.bsf)[1] > 10


def test_vibration_rms_rises_with_wear() -> None:
    """Overall vibration RMS grows with defect size (an ISO-style severity indicator)."""
    rms = []
    for severity in (None, *WearSeverity):
        model = PumpModel(seed=3)
        if severity is not None:
            model.add_fault(FaultSpec(kind="bearing_wear", target="outer_race", severity=severity))
        rms.append(model.run_for(1.0).real("vibration_rms_m_s2"))
    assert rms == sorted(rms)
    assert rms[-1] > 3 * rms[0]


def _quiet_pump(**overrides: object) -> PumpModel:
    values: dict[str, object] = {**QUIET, "vibration_enabled": False, **overrides}
    return PumpModel(PumpConfig.model_validate(values), seed=0)


def test_affinity_laws_hold_without_static_head() -> None:
    """With no static head, Q ∝ n, H ∝ n² and P ∝ n³ between two operating speeds."""
    points = []
    for command in (1800.0, 1200.0):
        pump = _quiet_pump(static_head_m=0.0, bearing_friction_w=0.0,
                           initial_speed_command_rpm=command)
        state = pump.run_for(1.0)
        points.append((state.real("shaft_speed_rpm"), state.real("flow_m3h"),
                       state.real("discharge_pressure_bar"), state.real("shaft_power_w")))
    (n1, q1, p1, w1), (n2, q2, p2, w2) = points
    ratio = n2 / n1
    assert ratio == pytest.approx(1200 / 1800, rel=0.03)  # slip shrinks with load
    assert q2 / q1 == pytest.approx(ratio, rel=1e-9)
    assert p2 / p1 == pytest.approx(ratio**2, rel=1e-9)
    assert w2 / w1 == pytest.approx(ratio**3, rel=1e-9)


def test_operating_point_lies_on_pump_and_system_curves() -> None:
    """Head equals both the pump curve and the system curve at the computed flow."""
    cfg = PumpConfig(**QUIET, vibration_enabled=False)
    state = PumpModel(cfg).run_for(1.0)
    q = state.real("flow_m3h")
    head = state.real("discharge_pressure_bar") * 1e5 / (cfg.fluid_density_kg_m3 * 9.81)
    ratio = state.real("shaft_speed_rpm") / cfg.sync_speed_rpm
    assert head == pytest.approx(cfg.shutoff_head_m * ratio**2 - cfg.pump_curve_k * q**2)
    assert head == pytest.approx(cfg.static_head_m + (cfg.pipe_k + cfg.valve_k) * q**2)


def test_speed_below_static_head_gives_no_flow() -> None:
    """When the shut-off head at speed is below the static head the pump delivers nothing."""
    threshold_rpm = 1800 * math.sqrt(5.0 / 32.0)
    state = _quiet_pump(initial_speed_command_rpm=threshold_rpm * 0.9).run_for(1.0)
    assert state.real("flow_m3h") == 0.0
    assert state.real("discharge_pressure_bar") > 0.0


def test_throttling_the_valve_cuts_flow_and_raises_pressure() -> None:
    """Closing the discharge valve moves the point left on the pump curve."""
    pump = _quiet_pump()
    open_state = pump.run_for(1.0)
    pump.set_input("discharge_valve_opening", 0.2)
    throttled = pump.run_for(5.0)
    assert throttled.real("flow_m3h") < 0.6 * open_state.real("flow_m3h")
    assert throttled.real("discharge_pressure_bar") > open_state.real("discharge_pressure_bar")
    assert throttled.real("motor_current_a") < open_state.real("motor_current_a")


def test_speed_command_ramps_and_clamps() -> None:
    """The drive ramps at its configured rate and a command above top speed is clamped."""
    pump = _quiet_pump(initial_speed_command_rpm=0.0)
    assert pump.state().real("shaft_speed_rpm") == 0.0
    assert pump.state().real("motor_current_a") == 0.0
    pump.set_input("speed_command_rpm", 5000.0)
    assert pump.input_value("speed_command_rpm") == 1800.0
    half_way = pump.run_for(1.0)  # 600 rpm/s
    assert 500 < half_way.real("shaft_speed_rpm") < 600
    assert pump.run_for(3.0).real("shaft_speed_rpm") > 1700


def test_motor_temperature_is_a_first_order_lag() -> None:
    """After one time constant the winding has covered 63 % of its way to steady state."""
    pump = _quiet_pump()
    cfg = pump.config
    start = pump.run_for(1.0).real("motor_temperature_c")
    loss = pump.state().real("shaft_power_w") * (1 / cfg.motor_efficiency - 1)
    final = cfg.ambient_c + cfg.motor_thermal_resistance_k_per_w * loss
    after_tau = pump.run_for(cfg.motor_time_constant_s).real("motor_temperature_c")
    assert (after_tau - start) / (final - start) == pytest.approx(1 - math.exp(-1), abs=0.01)


def test_bearing_wear_heats_the_bearing() -> None:
    """A severe defect raises bearing friction, so the bearing runs hotter than a healthy one."""
    healthy, worn = _quiet_pump(), _quiet_pump()
    worn.add_fault(FaultSpec(kind="bearing_wear", target="outer_race", severity=0.021))
    hot = worn.run_for(600).real("bearing_temperature_c")
    cool = healthy.run_for(600).real("bearing_temperature_c")
    assert hot > cool + 10


def test_wear_grows_exponentially_from_onset() -> None:
    """Ramped wear is zero before onset, a tenth at onset, full size after the ramp."""
    pump = _quiet_pump()
    pump.add_fault(FaultSpec(kind="bearing_wear", target="inner_race", start_s=10.0,
                             ramp_s=100.0, severity=0.021))
    pump.run_for(5.0)
    assert pump.bearing_wear_in()[BearingFault.INNER_RACE] == 0.0
    pump.run_for(5.0)
    assert pump.bearing_wear_in()[BearingFault.INNER_RACE] == pytest.approx(0.0021)
    pump.run_for(50.0)
    mid = pump.bearing_wear_in()[BearingFault.INNER_RACE]
    assert mid == pytest.approx(0.021 * 10**-0.5, rel=1e-6)
    pump.run_for(100.0)
    assert pump.bearing_wear_in()[BearingFault.INNER_RACE] == pytest.approx(0.021)
    assert pump.bearing_wear_in()[BearingFault.OUTER_RACE] == 0.0


def test_vfd_jam_ignores_speed_commands() -> None:
    """A jammed drive holds its speed whatever the command says."""
    pump = _quiet_pump()
    before = pump.run_for(1.0).real("shaft_speed_rpm")
    pump.add_fault(FaultSpec(kind="actuator_jam", target="vfd", start_s=1.0))
    pump.set_input("speed_command_rpm", 600.0)
    assert pump.run_for(3.0).real("shaft_speed_rpm") == pytest.approx(before)


def test_same_seed_same_vibration_other_seed_differs() -> None:
    """Two pumps with one seed produce identical blocks; another seed gives other noise."""
    a, _ = _two_seconds_of_vibration(BearingFault.OUTER_RACE, 0.014, seed=11)
    b, _ = _two_seconds_of_vibration(BearingFault.OUTER_RACE, 0.014, seed=11)
    c, _ = _two_seconds_of_vibration(BearingFault.OUTER_RACE, 0.014, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_vibration_block_is_continuous_and_timed() -> None:
    """Each step appends fs*dt new samples; the published block ends at the state's time."""
    pump = PumpModel(PumpConfig(vibration={"block_samples": 2400}), seed=1)
    first = pump.step().waveforms["vibration"]
    second = pump.step().waveforms["vibration"]
    assert second.end_time_s == pytest.approx(0.2)
    assert second.start_time_s == pytest.approx(0.2 - 2399 / FS)
    np.testing.assert_array_equal(second.samples[:1200], first.samples[1200:])
    assert not second.samples.flags.writeable
