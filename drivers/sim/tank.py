"""One open tank filled through a control valve and drained through an outlet (Torricelli).

`A dh/dt = u · q_max − c_d · a · s · √(2 g h)` with valve opening u and outlet opening s;
at steady state `h = (u q_max / (c_d a s))² / (2 g)`. The level is integrated with RK4
sub-steps; above the rim the tank overflows and the level stays at the rim.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from drivers.sim.model import PlantModel, RawValue, SignalKind, SignalSpec

__all__ = ["TankConfig", "TankModel"]

_G = 9.81
_SUBSTEPS = 4


class TankConfig(BaseModel):
    """Geometry, valve and sensor parameters of the tank."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dt_s: float = Field(default=0.1, gt=0.0)
    area_m2: float = Field(default=0.2, gt=0.0)
    height_m: float = Field(default=2.0, gt=0.0)
    max_inflow_m3_h: float = Field(default=6.0, gt=0.0)
    """Inflow with the valve fully open (constant supply pressure, linear valve)."""
    outlet_area_m2: float = Field(default=0.0005, gt=0.0)
    discharge_coefficient: float = Field(default=0.6, gt=0.0, le=1.0)
    valve_stroke_s: float = Field(default=2.0, gt=0.0)
    """Time for the inflow valve to travel from closed to open."""
    high_level_fraction: float = Field(default=0.9, gt=0.0, le=1.0)
    level_noise_m: float = Field(default=0.003, ge=0.0)
    flow_noise_m3_h: float = Field(default=0.02, ge=0.0)
    initial_level_m: float = Field(default=0.5, ge=0.0)
    initial_valve_opening: float = Field(default=0.0, ge=0.0, le=1.0)


class TankModel(PlantModel):
    """A single tank with level sensor, inflow valve and free outlet."""

    def __init__(self, config: TankConfig | None = None, *, seed: int = 0) -> None:
        cfg = config or TankConfig()
        self._config = cfg
        super().__init__(
            dt_s=cfg.dt_s,
            seed=seed,
            outputs=[
                SignalSpec("level_m", SignalKind.REAL, "m", "measured level"),
                SignalSpec("inflow_m3_h", SignalKind.REAL, "m³/h", "measured inflow"),
                SignalSpec("outflow_m3_h", SignalKind.REAL, "m³/h", "measured outflow"),
                SignalSpec("valve_position", SignalKind.REAL, "", "inflow valve feedback 0..1"),
                SignalSpec("high_level", SignalKind.BOOL, "", "level switch near the rim"),
                SignalSpec("overflowing", SignalKind.BOOL, "", "liquid spills over the rim"),
            ],
            inputs=[
                SignalSpec("inflow_valve_opening", SignalKind.REAL, "", "0 closed .. 1 open",
                           0.0, 1.0),
                SignalSpec("outlet_valve_opening", SignalKind.REAL, "", "0 closed .. 1 open",
                           0.0, 1.0),
            ],
            initial_inputs={
                "inflow_valve_opening": cfg.initial_valve_opening,
                "outlet_valve_opening": 1.0,
            },
            actuators=("inflow_valve", "outlet_valve"),
        )
        self._level_m = min(cfg.initial_level_m, cfg.height_m)
        self._valve = cfg.initial_valve_opening
        self._outlet = 1.0
        self._overflowing = False
        self._publish_initial_state()

    @property
    def config(self) -> TankConfig:
        """The parameters this tank was built with."""
        return self._config

    @property
    def true_level_m(self) -> float:
        """Ground truth level, without sensor noise or sensor faults."""
        return self._level_m

    def steady_state_level_m(self, valve_opening: float, outlet_opening: float = 1.0) -> float:
        """The level at which outflow balances the inflow of a valve opening (capped at the rim)."""
        cfg = self._config
        coefficient = cfg.discharge_coefficient * cfg.outlet_area_m2 * outlet_opening
        if coefficient <= 0.0:
            return cfg.height_m if valve_opening > 0.0 else self._level_m
        inflow = valve_opening * cfg.max_inflow_m3_h / 3600.0
        return min(cfg.height_m, (inflow / coefficient) ** 2 / (2.0 * _G))

    def _inflow_m3_s(self) -> float:
        return self._valve * self._config.max_inflow_m3_h / 3600.0

    def _outflow_m3_s(self, level_m: float) -> float:
        cfg = self._config
        return (
            cfg.discharge_coefficient * cfg.outlet_area_m2 * self._outlet
            * math.sqrt(2.0 * _G * max(0.0, level_m))
        )

    def _advance(self, dt_s: float) -> None:
        cfg = self._config
        stroke = dt_s / cfg.valve_stroke_s
        if not self._is_jammed("inflow_valve"):
            command = float(self.input_value("inflow_valve_opening"))
            self._valve += min(stroke, max(-stroke, command - self._valve))
        if not self._is_jammed("outlet_valve"):
            command = float(self.input_value("outlet_valve_opening"))
            self._outlet += min(stroke, max(-stroke, command - self._outlet))
        inflow = self._inflow_m3_s()

        def rate(level: float) -> float:
            return (inflow - self._outflow_m3_s(level)) / cfg.area_m2

        h = dt_s / _SUBSTEPS
        level = self._level_m
        for _ in range(_SUBSTEPS):
            k1 = rate(level)
            k2 = rate(level + 0.5 * h * k1)
            k3 = rate(level + 0.5 * h * k2)
            k4 = rate(level + h * k3)
            level = max(0.0, level + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4))
        self._overflowing = level >= cfg.height_m and rate(cfg.height_m) > 0.0
        self._level_m = min(level, cfg.height_m)

    def _measure(self) -> dict[str, RawValue]:
        cfg = self._config
        noise = self._sensor_rng.standard_normal(3)
        return {
            "level_m": self._level_m + cfg.level_noise_m * noise[0],
            "inflow_m3_h": max(0.0, self._inflow_m3_s() * 3600.0 + cfg.flow_noise_m3_h * noise[1]),
            "outflow_m3_h": max(
                0.0, self._outflow_m3_s(self._level_m) * 3600.0 + cfg.flow_noise_m3_h * noise[2]
            ),
            "valve_position": self._valve,
            "high_level": self._level_m >= cfg.high_level_fraction * cfg.height_m,
            "overflowing": self._overflowing,
        }
