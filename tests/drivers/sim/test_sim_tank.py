"""Tank model: Torricelli steady state, a PI loop reaching its setpoint, limits."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.sim import FaultSpec, TankConfig, TankModel


@pytest.mark.parametrize("opening", [0.3, 0.5, 0.8])
def test_level_settles_where_outflow_balances_inflow(opening: float) -> None:
    """The level settles at (q_in / (c_d a))² / 2g and the flows balance there."""
    tank = TankModel(seed=1)
    tank.set_input("inflow_valve_opening", opening)
    tank.run_for(3000.0)
    levels = [tank.step().real("level_m") for _ in range(200)]
    expected = tank.steady_state_level_m(opening)
    assert float(np.mean(levels)) == pytest.approx(expected, abs=0.002)
    assert tank.true_level_m == pytest.approx(expected, rel=1e-3)
    state = tank.state()
    assert state.real("outflow_m3_h") == pytest.approx(state.real("inflow_m3_h"), abs=0.1)


def test_pi_loop_reaches_and_holds_setpoint() -> None:
    """A plain Python PI controller on the noisy level reaches 1.0 m and stays within 2 cm."""
    tank = TankModel(seed=5)
    setpoint, kp, ti_s = 1.0, 1.5, 40.0
    integral = 0.0
    errors = []
    for _ in range(8000):  # 800 s at 0.1 s
        level = tank.state().real("level_m")
        error = setpoint - level
        output = kp * (error + integral / ti_s)
        if 0.0 < output < 1.0:  # conditional integration: no wind-up at the valve's limits
            integral += error * tank.dt_s
        tank.set_input("inflow_valve_opening", min(1.0, max(0.0, output)))
        tank.step()
        errors.append(setpoint - tank.true_level_m)
    tail = np.abs(errors[-1000:])
    assert float(tail.max()) < 0.02
    assert abs(float(np.mean(errors[-1000:]))) < 0.005


def test_closed_valve_drains_to_empty_never_below() -> None:
    """With the inflow closed the tank empties and the level never goes negative."""
    tank = TankModel(TankConfig(level_noise_m=0.0), seed=0)
    tank.run_for(1000.0)
    assert tank.true_level_m == pytest.approx(0.0, abs=1e-3)
    assert tank.state().real("level_m") >= 0.0


def test_blocked_outlet_overflows_at_the_rim() -> None:
    """Filling with the outlet closed raises the high-level switch, then overflows at the rim."""
    tank = TankModel(seed=0)
    tank.set_input("inflow_valve_opening", 1.0)
    tank.set_input("outlet_valve_opening", 0.0)
    state = tank.run_for(400.0)
    assert state["high_level"] is True
    assert state["overflowing"] is True
    assert tank.true_level_m == tank.config.height_m


def test_valve_moves_at_its_stroke_rate() -> None:
    """The valve position follows its command at the configured stroke speed."""
    tank = TankModel(seed=0)
    tank.set_input("inflow_valve_opening", 1.0)
    assert tank.run_for(1.0).real("valve_position") == pytest.approx(0.5)
    assert tank.run_for(1.5).real("valve_position") == pytest.approx(1.0)


def test_jammed_valve_keeps_its_position() -> None:
    """A jammed inflow valve ignores new commands until the jam ends."""
    tank = TankModel(seed=0)
    tank.set_input("inflow_valve_opening", 0.4)
    tank.run_for(5.0)
    tank.add_fault(FaultSpec(kind="actuator_jam", target="inflow_valve", start_s=5.0, end_s=20.0))
    tank.set_input("inflow_valve_opening", 1.0)
    assert tank.run_for(10.0).real("valve_position") == pytest.approx(0.4)
    assert tank.run_for(20.0).real("valve_position") == pytest.approx(1.0)
