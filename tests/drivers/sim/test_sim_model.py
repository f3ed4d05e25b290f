"""The model contract shared by every plant: determinism, inputs, snapshots, time."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from drivers.errors import DriverConfigError
from drivers.sim import (
    ConveyorConfig,
    ConveyorModel,
    PlantModel,
    PlantState,
    PumpConfig,
    PumpModel,
    SignalKind,
    TankModel,
)

FACTORIES: dict[str, Callable[[int], PlantModel]] = {
    "pump": lambda seed: PumpModel(PumpConfig(vibration={"block_samples": 256}), seed=seed),
    "conveyor": lambda seed: ConveyorModel(ConveyorConfig(arrival_rate_per_s=5.0), seed=seed),
    "tank": lambda seed: TankModel(seed=seed),
}


def _trace(model: PlantModel, steps: int) -> list[tuple[dict[str, object], list[list[float]]]]:
    trace = []
    for _ in range(steps):
        state = model.step()
        trace.append((
            {name: pv.value for name, pv in state.values.items()},
            [w.samples.tolist() for w in state.waveforms.values()],
        ))
    return trace


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_same_seed_gives_identical_outputs(kind: str) -> None:
    """Two models built with one seed produce the same values and waveforms step by step."""
    make = FACTORIES[kind]
    assert _trace(make(42), 200) == _trace(make(42), 200)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_other_seed_gives_other_noise(kind: str) -> None:
    """A different seed changes the noisy outputs."""
    make = FACTORIES[kind]
    assert _trace(make(1), 200) != _trace(make(2), 200)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_state_covers_every_declared_signal_with_its_unit(kind: str) -> None:
    """Each declared output appears in the state with its unit and Python type, inputs too."""
    model = FACTORIES[kind](0)
    state = model.step()
    python_type = {SignalKind.REAL: float, SignalKind.INT: int, SignalKind.BOOL: bool}
    for spec in model.outputs:
        if spec.kind is SignalKind.WAVEFORM:
            assert state.waveforms[spec.name].unit == spec.unit
        else:
            assert type(state[spec.name]) is python_type[spec.kind], spec.name
            assert state.unit(spec.name) == spec.unit
    for spec in model.inputs:
        assert state.inputs[spec.name].unit == spec.unit


def test_time_is_step_times_dt_without_accumulated_error() -> None:
    """After 1000 steps of 0.1 s the time is exactly 100 s (a running sum would be off)."""
    assert sum([0.1] * 1000) != 100.0
    tank = TankModel()
    assert tank.run_for(100.0).time_s == 100.0
    assert tank.state().step == 1000


def test_initial_state_exists_before_any_step() -> None:
    """A fresh model publishes its state at t = 0."""
    state = TankModel().state()
    assert state.time_s == 0.0
    assert state.step == 0
    assert state.real("level_m") > 0.4


def test_snapshots_are_immutable_and_independent() -> None:
    """A snapshot cannot be changed and does not follow later steps."""
    tank = TankModel()
    tank.set_input("inflow_valve_opening", 1.0)
    first = tank.step()
    with pytest.raises(TypeError):
        first.values["level_m"] = first.values["level_m"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        first.time_s = 3.0  # type: ignore[misc]
    tank.run_for(10.0)
    assert first.time_s == pytest.approx(0.1)
    assert first["inflow_valve_opening"] == 1.0


def test_inputs_are_clamped_and_type_checked() -> None:
    """Numbers saturate at the input's range; wrong types, NaN and unknown names fail clearly."""
    tank = TankModel()
    tank.set_input("inflow_valve_opening", 7)
    assert tank.input_value("inflow_valve_opening") == 1.0
    tank.set_input("inflow_valve_opening", -2.0)
    assert tank.input_value("inflow_valve_opening") == 0.0
    with pytest.raises(DriverConfigError, match="finite"):
        tank.set_input("inflow_valve_opening", float("nan"))
    with pytest.raises(DriverConfigError, match="numeric"):
        tank.set_input("inflow_valve_opening", True)
    with pytest.raises(DriverConfigError, match="inflow_valve_opening"):
        tank.set_input("valve", 0.5)
    conveyor = ConveyorModel()
    conveyor.set_input("belt_run", 0)
    assert conveyor.input_value("belt_run") is False
    with pytest.raises(DriverConfigError, match="BOOL"):
        conveyor.set_input("belt_run", 0.5)


def test_unknown_state_key_names_the_known_ones() -> None:
    """Asking a state for a missing value raises KeyError listing what exists."""
    state: PlantState = TankModel().state()
    with pytest.raises(KeyError, match="level_m"):
        state["levle_m"]


def test_bad_step_size_is_rejected() -> None:
    """A model refuses a non-positive step."""
    with pytest.raises(ValueError, match="dt_s"):
        TankModel(TankModel().config.model_copy(update={"dt_s": 0.0}))


def test_create_model_applies_configuration_overrides() -> None:
    """`create_model(config=...)` overrides the named fields and names a bad one."""
    from drivers.sim import create_model
    from drivers.sim.conveyor import ConveyorModel

    model = create_model("conveyor", seed=1, config={"arrival_rate_per_s": 1.25})
    assert isinstance(model, ConveyorModel)
    assert model.config.arrival_rate_per_s == 1.25
    with pytest.raises(DriverConfigError, match="no_such_field"):
        create_model("pump", config={"no_such_field": 1})
