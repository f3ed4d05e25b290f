"""Build a plant model from the kind a device profile names (`pump`, `conveyor`, `tank`)."""

from __future__ import annotations

from typing import Literal

from drivers.errors import DriverConfigError
from drivers.sim.conveyor import ConveyorModel
from drivers.sim.model import PlantModel
from drivers.sim.pump import PumpModel
from drivers.sim.tank import TankModel

__all__ = ["ModelKind", "create_model"]

ModelKind = Literal["pump", "conveyor", "tank"]
"""The plant kinds a profile's `model` field may name."""


def create_model(kind: str, *, seed: int = 0) -> PlantModel:
    """A model of `kind` with its default configuration and the given seed."""
    match kind:
        case "pump":
            return PumpModel(seed=seed)
        case "conveyor":
            return ConveyorModel(seed=seed)
        case "tank":
            return TankModel(seed=seed)
    raise DriverConfigError(f"unknown plant model {kind!r}; known: conveyor, pump, tank")
