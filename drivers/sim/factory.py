"""Build a plant model from the kind a device profile names (`pump`, `conveyor`, `tank`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import ValidationError

from drivers.errors import DriverConfigError
from drivers.sim.conveyor import ConveyorConfig, ConveyorModel
from drivers.sim.model import PlantModel
from drivers.sim.pump import PumpConfig, PumpModel
from drivers.sim.tank import TankConfig, TankModel

__all__ = ["ModelKind", "create_model"]

ModelKind = Literal["pump", "conveyor", "tank"]
"""The plant kinds a profile's `model` field may name."""


def create_model(kind: str, *, seed: int = 0,
                 config: Mapping[str, object] | None = None) -> PlantModel:
    """A model of `kind` with the given seed and its default configuration, with the fields
    `config` names overridden (DriverConfigError names a bad field)."""
    overrides = dict(config or {})
    try:
        match kind:
            case "pump":
                return PumpModel(PumpConfig.model_validate(overrides), seed=seed)
            case "conveyor":
                return ConveyorModel(ConveyorConfig.model_validate(overrides), seed=seed)
            case "tank":
                return TankModel(TankConfig.model_validate(overrides), seed=seed)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                             for error in exc.errors())
        raise DriverConfigError(f"{kind} model configuration: {problems}") from exc
    raise DriverConfigError(f"unknown plant model {kind!r}; known: conveyor, pump, tank")
