"""A VFD-driven induction motor and centrifugal pump with a degrading drive-end bearing.

The hydraulics sit where the pump curve `H = H0 (n/n0)² − kp Q²` meets the system curve
`H = Hs + (k_pipe + k_valve / opening²) Q²`; with no static head this gives the affinity laws
(Q ∝ n, H ∝ n², P ∝ n³). Shaft power follows the affinity-scaled power curve, slip grows with
torque as in a V/f drive, winding and bearing temperatures are first-order lags, and bearing
friction rises with defect size. Vibration comes from `VibrationGenerator` at the bearing's
CWRU geometry (SKF 6205 by default).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from drivers.sim.bearing import (
    SKF_6205,
    BearingFault,
    BearingGeometry,
    VibrationConfig,
    VibrationGenerator,
)
from drivers.sim.faults import FaultKind, WearSeverity
from drivers.sim.model import PlantModel, RawValue, SignalKind, SignalSpec, Waveform

__all__ = ["PumpConfig", "PumpModel"]

_G = 9.81
_SQRT3 = math.sqrt(3.0)


class PumpConfig(BaseModel):
    """Parameters of the motor, pump, pipe system, thermal paths and sensors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dt_s: float = Field(default=0.1, gt=0.0)
    # drive and motor (a 2 hp, 4-pole motor as on the CWRU rig)
    sync_speed_rpm: float = Field(default=1800.0, gt=0.0)
    """Synchronous speed at the drive's top frequency; the speed command's upper limit."""
    rated_power_w: float = Field(default=1500.0, gt=0.0)
    rated_slip_rpm: float = Field(default=50.0, ge=0.0)
    ramp_rpm_per_s: float = Field(default=600.0, gt=0.0)
    supply_voltage_v: float = Field(default=400.0, gt=0.0)
    power_factor: float = Field(default=0.82, gt=0.0, le=1.0)
    motor_efficiency: float = Field(default=0.84, gt=0.0, le=1.0)
    no_load_current_a: float = Field(default=1.0, ge=0.0)
    # pump at synchronous speed
    shutoff_head_m: float = Field(default=32.0, gt=0.0)
    pump_curve_k: float = Field(default=0.0444, gt=0.0)
    """Head drop per (m³/h)² of flow."""
    bep_flow_m3h: float = Field(default=12.0, gt=0.0)
    bep_efficiency: float = Field(default=0.62, gt=0.0, le=1.0)
    shutoff_power_ratio: float = Field(default=0.45, ge=0.0, le=1.0)
    """Shaft power at zero flow relative to the best-efficiency point."""
    fluid_density_kg_m3: float = Field(default=998.0, gt=0.0)
    # pipe system
    static_head_m: float = Field(default=5.0, ge=0.0)
    pipe_k: float = Field(default=0.06, ge=0.0)
    valve_k: float = Field(default=0.02, gt=0.0)
    """Valve head loss per (m³/h)² when fully open; it grows as 1/opening²."""
    valve_stroke_s: float = Field(default=2.0, gt=0.0)
    # thermal
    ambient_c: float = 25.0
    motor_thermal_resistance_k_per_w: float = Field(default=0.17, gt=0.0)
    motor_time_constant_s: float = Field(default=900.0, gt=0.0)
    bearing_friction_w: float = Field(default=15.0, ge=0.0)
    """Friction loss of the healthy bearing at synchronous speed."""
    bearing_wear_friction_factor: float = Field(default=3.0, ge=0.0)
    """Extra friction, relative to healthy, with a severe (0.021 in) defect."""
    bearing_thermal_resistance_k_per_w: float = Field(default=1.0, gt=0.0)
    bearing_time_constant_s: float = Field(default=300.0, gt=0.0)
    # sensor noise (standard deviations)
    speed_noise_rpm: float = Field(default=0.5, ge=0.0)
    current_noise_a: float = Field(default=0.02, ge=0.0)
    temperature_noise_c: float = Field(default=0.05, ge=0.0)
    flow_noise_m3h: float = Field(default=0.05, ge=0.0)
    pressure_noise_bar: float = Field(default=0.005, ge=0.0)
    # vibration
    bearing: BearingGeometry = SKF_6205
    vibration: VibrationConfig = VibrationConfig()
    vibration_enabled: bool = True
    # initial operating point (the pump starts at speed, cold)
    initial_speed_command_rpm: float = Field(default=1800.0, ge=0.0)
    initial_valve_opening: float = Field(default=1.0, ge=0.0, le=1.0)


class PumpModel(PlantModel):
    """Motor-pump with bearing degradation; see the module docstring for the physics."""

    def __init__(self, config: PumpConfig | None = None, *, seed: int = 0) -> None:
        cfg = config or PumpConfig()
        self._config = cfg
        outputs = [
            SignalSpec("shaft_speed_rpm", SignalKind.REAL, "rpm", "measured shaft speed"),
            SignalSpec("motor_current_a", SignalKind.REAL, "A", "motor phase current (RMS)"),
            SignalSpec("motor_temperature_c", SignalKind.REAL, "°C", "winding temperature"),
            SignalSpec("bearing_temperature_c", SignalKind.REAL, "°C", "drive-end bearing"),
            SignalSpec("flow_m3h", SignalKind.REAL, "m³/h", "discharge flow"),
            SignalSpec("discharge_pressure_bar", SignalKind.REAL, "bar", "gauge pressure"),
            SignalSpec("shaft_power_w", SignalKind.REAL, "W", "mechanical power at the shaft"),
            SignalSpec("vibration_rms_m_s2", SignalKind.REAL, "m/s²", "RMS of the last block"),
        ]
        if cfg.vibration_enabled:
            outputs.append(
                SignalSpec("vibration", SignalKind.WAVEFORM, "m/s²", "drive-end acceleration")
            )
        inputs = [
            SignalSpec("speed_command_rpm", SignalKind.REAL, "rpm", "VFD speed setpoint",
                       0.0, cfg.sync_speed_rpm),
            SignalSpec("discharge_valve_opening", SignalKind.REAL, "", "0 closed .. 1 open",
                       0.0, 1.0),
        ]
        super().__init__(
            dt_s=cfg.dt_s,
            seed=seed,
            outputs=outputs,
            inputs=inputs,
            initial_inputs={
                "speed_command_rpm": min(cfg.initial_speed_command_rpm, cfg.sync_speed_rpm),
                "discharge_valve_opening": cfg.initial_valve_opening,
            },
            actuators=("vfd", "discharge_valve"),
            wear_targets=tuple(BearingFault),
        )
        self._sync_rpm = float(self.input_value("speed_command_rpm"))
        self._valve = cfg.initial_valve_opening
        self._torque_nm = 0.0
        self._motor_c = cfg.ambient_c
        self._bearing_c = cfg.ambient_c
        h_bep = cfg.shutoff_head_m - cfg.pump_curve_k * cfg.bep_flow_m3h**2
        self._bep_power_w = (
            cfg.fluid_density_kg_m3 * _G * cfg.bep_flow_m3h / 3600.0 * h_bep / cfg.bep_efficiency
        )
        self._speed_rpm = 0.0
        self._flow_m3h = 0.0
        self._head_m = 0.0
        self._shaft_w = 0.0
        self._bearing_loss_w = 0.0
        self._current_a = 0.0
        for _ in range(4):  # settle slip and power at the initial operating point
            self._operating_point()
        self._vibration: VibrationGenerator | None = None
        self._block = np.zeros(0)
        if cfg.vibration_enabled:
            self._vibration = VibrationGenerator(cfg.vibration, cfg.bearing, self._process_rng)
            self._block = self._vibration.generate(
                cfg.vibration.block_samples, self._speed_rpm, {}
            )
        self._publish_initial_state()

    @property
    def config(self) -> PumpConfig:
        """The parameters this pump was built with."""
        return self._config

    def bearing_wear_in(self) -> dict[BearingFault, float]:
        """Ground truth: the defect diameter (inches) at each location now (0 when healthy)."""
        return {
            fault: self._fault_magnitude(FaultKind.BEARING_WEAR, fault.value)
            for fault in BearingFault
        }

    def _advance(self, dt_s: float) -> None:
        cfg = self._config
        if not self._is_jammed("vfd"):
            command = float(self.input_value("speed_command_rpm"))
            step_rpm = cfg.ramp_rpm_per_s * dt_s
            self._sync_rpm += min(step_rpm, max(-step_rpm, command - self._sync_rpm))
        if not self._is_jammed("discharge_valve"):
            command = float(self.input_value("discharge_valve_opening"))
            stroke = dt_s / cfg.valve_stroke_s
            self._valve += min(stroke, max(-stroke, command - self._valve))
        wear = self.bearing_wear_in()
        self._operating_point(sum(wear.values()))
        self._motor_c = _first_order(
            self._motor_c,
            cfg.ambient_c + cfg.motor_thermal_resistance_k_per_w * self._motor_loss_w(),
            dt_s, cfg.motor_time_constant_s,
        )
        self._bearing_c = _first_order(
            self._bearing_c,
            cfg.ambient_c + cfg.bearing_thermal_resistance_k_per_w * self._bearing_loss_w,
            dt_s, cfg.bearing_time_constant_s,
        )
        if self._vibration is not None:
            fs = cfg.vibration.sample_rate_hz
            k = self.step_index
            n_new = math.floor((k + 1) * dt_s * fs + 1e-6) - math.floor(k * dt_s * fs + 1e-6)
            fresh = self._vibration.generate(n_new, self._speed_rpm, wear)
            size = cfg.vibration.block_samples
            self._block = np.concatenate((self._block, fresh))[-size:]

    def _operating_point(self, wear_in: float = 0.0) -> None:
        """Speed, hydraulics, power and current at the present drive and valve positions."""
        cfg = self._config
        rated_speed = cfg.sync_speed_rpm - cfg.rated_slip_rpm
        rated_torque = cfg.rated_power_w / (rated_speed * math.pi / 30.0)
        slip = cfg.rated_slip_rpm * self._torque_nm / rated_torque
        self._speed_rpm = max(0.0, self._sync_rpm - slip) if self._sync_rpm > 1.0 else 0.0
        ratio = self._speed_rpm / cfg.sync_speed_rpm
        head_available = cfg.shutoff_head_m * ratio**2 - cfg.static_head_m
        if self._valve > 1e-3 and head_available > 0.0:
            system_k = cfg.pipe_k + cfg.valve_k / self._valve**2
            flow = math.sqrt(head_available / (cfg.pump_curve_k + system_k))
        else:
            flow = 0.0
        self._flow_m3h = flow
        self._head_m = cfg.shutoff_head_m * ratio**2 - cfg.pump_curve_k * flow**2
        relative_flow = flow / (cfg.bep_flow_m3h * ratio) if ratio > 0.0 else 0.0
        pump_w = self._bep_power_w * ratio**3 * (
            cfg.shutoff_power_ratio + (1.0 - cfg.shutoff_power_ratio) * relative_flow
        )
        wear_factor = 1.0 + cfg.bearing_wear_friction_factor * wear_in / WearSeverity.SEVERE
        self._bearing_loss_w = cfg.bearing_friction_w * ratio * wear_factor
        self._shaft_w = pump_w + self._bearing_loss_w
        omega = self._speed_rpm * math.pi / 30.0
        self._torque_nm = self._shaft_w / omega if omega > 0.0 else 0.0
        if self._sync_rpm > 1.0:
            electric_w = self._shaft_w / cfg.motor_efficiency
            self._current_a = cfg.no_load_current_a + electric_w / (
                _SQRT3 * cfg.supply_voltage_v * cfg.power_factor
            )
        else:
            self._current_a = 0.0

    def _motor_loss_w(self) -> float:
        cfg = self._config
        return self._shaft_w * (1.0 / cfg.motor_efficiency - 1.0)

    def _measure(self) -> dict[str, RawValue]:
        cfg = self._config
        noise = self._sensor_rng.standard_normal(6)
        values: dict[str, RawValue] = {
            "shaft_speed_rpm": self._speed_rpm + cfg.speed_noise_rpm * noise[0],
            "motor_current_a": max(0.0, self._current_a + cfg.current_noise_a * noise[1]),
            "motor_temperature_c": self._motor_c + cfg.temperature_noise_c * noise[2],
            "bearing_temperature_c": self._bearing_c + cfg.temperature_noise_c * noise[3],
            "flow_m3h": max(0.0, self._flow_m3h + cfg.flow_noise_m3h * noise[4]),
            "discharge_pressure_bar": (
                cfg.fluid_density_kg_m3 * _G * self._head_m / 1e5
                + cfg.pressure_noise_bar * noise[5]
            ),
            "shaft_power_w": self._shaft_w,
            "vibration_rms_m_s2": (
                float(np.sqrt(np.mean(self._block**2))) if len(self._block) else 0.0
            ),
        }
        if cfg.vibration_enabled:
            samples = self._block.copy()
            samples.flags.writeable = False
            values["vibration"] = Waveform(
                samples, cfg.vibration.sample_rate_hz, "m/s²", self.time_s
            )
        return values


def _first_order(value: float, target: float, dt_s: float, tau_s: float) -> float:
    """Exact step of a first-order lag toward `target`."""
    return target + (value - target) * math.exp(-dt_s / tau_s)
