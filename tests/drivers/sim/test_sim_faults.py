"""Fault injection on models: sensor stuck/drift/noise, jams, outage flag, schedules."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from drivers.errors import DriverConfigError
from drivers.sim import (
    FaultKind,
    FaultSchedule,
    FaultSpec,
    PumpConfig,
    PumpModel,
    TankConfig,
    TankModel,
)


def _filling_tank(seed: int = 0, noise: float = 0.0) -> TankModel:
    tank = TankModel(TankConfig(level_noise_m=noise, initial_level_m=0.1), seed=seed)
    tank.set_input("inflow_valve_opening", 1.0)
    return tank


def test_stuck_sensor_holds_its_value_then_recovers() -> None:
    """A stuck level sensor repeats its last reading while the true level moves, then follows."""
    tank = _filling_tank()
    tank.add_fault(FaultSpec(kind="sensor_stuck", target="level_m", start_s=10.0, end_s=40.0))
    tank.run_for(10.0)
    held = tank.step().real("level_m")
    assert tank.run_for(20.0).real("level_m") == held
    assert tank.true_level_m > held + 0.05
    assert tank.run_for(20.0).real("level_m") == pytest.approx(tank.true_level_m)


def test_drifting_sensor_gains_severity_per_second() -> None:
    """A drift of 0.01 m/s reads 0.2 m high after 20 s of fault time."""
    tank = _filling_tank()
    tank.add_fault(FaultSpec(kind="sensor_drift", target="level_m", start_s=5.0, severity=0.01))
    state = tank.run_for(25.0)
    assert state.real("level_m") - tank.true_level_m == pytest.approx(0.2, abs=0.002)


def test_noise_fault_adds_the_given_standard_deviation() -> None:
    """Extra noise of 0.05 m shows as a 0.05 m standard deviation around the true level."""
    tank = _filling_tank()
    tank.add_fault(FaultSpec(kind="sensor_noise", target="level_m", severity=0.05))
    errors = [tank.step().real("level_m") - tank.true_level_m for _ in range(2000)]
    assert float(np.std(errors)) == pytest.approx(0.05, rel=0.1)


def test_sensor_faults_do_not_change_the_process() -> None:
    """Fault noise has its own random stream: the physics and other sensors are unchanged."""
    clean, faulty = _filling_tank(seed=3, noise=0.003), _filling_tank(seed=3, noise=0.003)
    faulty.add_fault(FaultSpec(kind="sensor_noise", target="level_m", severity=0.05))
    for _ in range(100):
        a, b = clean.step(), faulty.step()
        assert a["inflow_m3_h"] == b["inflow_m3_h"]
    assert clean.true_level_m == faulty.true_level_m


def test_noise_fault_on_the_vibration_waveform() -> None:
    """Sensor noise may target a waveform; its RMS rises accordingly."""
    config = PumpConfig(vibration={"block_samples": 1200})
    clean, noisy = PumpModel(config, seed=1), PumpModel(config, seed=1)
    noisy.add_fault(FaultSpec(kind="sensor_noise", target="vibration", severity=2.0))
    quiet = clean.step().waveforms["vibration"].samples
    loud = noisy.step().waveforms["vibration"].samples
    assert float(np.std(loud - quiet)) == pytest.approx(2.0, rel=0.1)
    assert not loud.flags.writeable


def test_comm_outage_sets_the_flag_for_its_window() -> None:
    """A comm_outage fault raises `comm_outage` in the state from start to end only."""
    tank = _filling_tank()
    tank.add_fault(FaultSpec(kind="comm_outage", target="plc", start_s=1.0, end_s=2.0))
    flags = [tank.step().comm_outage for _ in range(30)]
    assert flags == [False] * 10 + [True] * 10 + [False] * 10
    assert tank.comm_outage is False


def test_schedule_applies_faults_over_time_and_reports_them() -> None:
    """A schedule's faults become active at their start and show in `active_faults`."""
    drift = FaultSpec(kind="sensor_drift", target="level_m", start_s=2.0, end_s=4.0, severity=0.1)
    outage = FaultSpec(kind="comm_outage", target="plc", start_s=3.0)
    tank = _filling_tank()
    tank.apply_schedule(FaultSchedule(faults=(drift, outage)))
    assert tank.run_for(1.0).active_faults == ()
    assert tank.run_for(1.5).active_faults == (drift,)
    assert tank.run_for(1.0).active_faults == (drift, outage)
    assert tank.run_for(1.0).active_faults == (outage,)
    tank.remove_fault(outage)
    assert tank.step().active_faults == ()
    assert tank.faults == (drift,)


def test_schedule_with_a_bad_target_adds_nothing() -> None:
    """All targets of a schedule are checked before any fault is added."""
    tank = _filling_tank()
    schedule = FaultSchedule(faults=(
        FaultSpec(kind="comm_outage", target="plc"),
        FaultSpec(kind="actuator_jam", target="belt"),
    ))
    with pytest.raises(DriverConfigError, match="belt"):
        tank.apply_schedule(schedule)
    assert tank.faults == ()


@pytest.mark.parametrize(
    ("kind", "target", "hint"),
    [
        ("sensor_stuck", "no_such_output", "level_m"),
        ("sensor_drift", "high_level", "level_m"),  # drift on a BOOL makes no sense
        ("actuator_jam", "level_m", "inflow_valve"),
        ("bearing_wear", "outer_race", "[]"),  # a tank has no bearing
        ("comm_outage", "scada", "plc"),
    ],
)
def test_bad_fault_targets_are_rejected_with_the_valid_ones(
    kind: str, target: str, hint: str
) -> None:
    """A fault naming a target the model lacks fails and lists the valid targets."""
    tank = _filling_tank()
    with pytest.raises(DriverConfigError, match="targets") as info:
        tank.add_fault(FaultSpec(kind=FaultKind(kind), target=target, severity=0.01))
    assert hint in str(info.value)


def test_fault_spec_is_validated_and_frozen() -> None:
    """Fault specs reject inverted windows, unknown fields, absurd wear, and cannot change."""
    with pytest.raises(ValidationError, match="end_s"):
        FaultSpec(kind="comm_outage", target="plc", start_s=5.0, end_s=1.0)
    with pytest.raises(ValidationError, match="extra"):
        FaultSpec.model_validate({"kind": "comm_outage", "target": "plc", "colour": "red"})
    with pytest.raises(ValidationError, match="bearing_wear"):
        FaultSpec(kind="bearing_wear", target="ball", severity=0.0)
    spec = FaultSpec(kind="comm_outage", target="plc")
    with pytest.raises(ValidationError):
        spec.start_s = 3.0  # type: ignore[misc]


def test_fault_schedule_loads_from_plain_data() -> None:
    """A schedule validates from the dicts a YAML scenario file yields."""
    schedule = FaultSchedule.model_validate({"faults": [
        {"kind": "bearing_wear", "target": "outer_race", "start_s": 60, "ramp_s": 600,
         "severity": 0.014},
        {"kind": "sensor_stuck", "target": "flow_m3h", "start_s": 10, "end_s": 20},
    ]})
    pump = PumpModel(PumpConfig(vibration_enabled=False))
    pump.apply_schedule(schedule)
    assert [f.kind for f in pump.faults] == [FaultKind.BEARING_WEAR, FaultKind.SENSOR_STUCK]
