"""Fault descriptions shared by every plant model, and the schedule that applies them over time.

A fault is data (a frozen pydantic model) so scenario files can list them; each model
interprets the kinds it supports and rejects targets it does not have.
"""

from __future__ import annotations

import enum
import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "SENSOR_FAULT_KINDS",
    "FaultKind",
    "FaultSchedule",
    "FaultSpec",
    "WearSeverity",
]


class FaultKind(enum.StrEnum):
    """What a fault does; `severity` means something different for each kind."""

    SENSOR_STUCK = "sensor_stuck"
    """The named output holds the value it had when the fault began (severity unused)."""
    SENSOR_DRIFT = "sensor_drift"
    """The named output gains `severity` units per second of fault time."""
    SENSOR_NOISE = "sensor_noise"
    """The named output gets extra Gaussian noise of standard deviation `severity` units."""
    ACTUATOR_JAM = "actuator_jam"
    """The named actuator stops following its command (a belt stalls; a valve sticks)."""
    BEARING_WEAR = "bearing_wear"
    """A bearing defect at the target location (`outer_race`, `inner_race`, `ball`) of
    diameter `severity` inches; with `ramp_s` it grows from a tenth of that size."""
    COMM_OUTAGE = "comm_outage"
    """The simulated PLC stops answering (target `plc`); the model itself keeps running."""


SENSOR_FAULT_KINDS = frozenset(
    {FaultKind.SENSOR_STUCK, FaultKind.SENSOR_DRIFT, FaultKind.SENSOR_NOISE}
)


class WearSeverity(float, enum.Enum):
    """CWRU seeded-fault diameters in inches (DESIGN Decisions: the severity scale)."""

    MILD = 0.007
    MODERATE = 0.014
    SEVERE = 0.021


class FaultSpec(BaseModel):
    """One fault: which kind, on what, when, and how strong."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    target: str = Field(min_length=1)
    start_s: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    end_s: float | None = Field(default=None, allow_inf_nan=False)
    """End of the fault (exclusive); None keeps it until it is removed."""
    severity: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    ramp_s: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    """Bearing wear only: time over which the defect grows exponentially to `severity`."""

    @model_validator(mode="after")
    def _check_window(self) -> FaultSpec:
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        if self.kind is FaultKind.BEARING_WEAR and not 0.0 < self.severity <= 0.1:
            raise ValueError("bearing_wear severity is a defect diameter in inches in (0, 0.1]")
        return self

    def is_active(self, time_s: float) -> bool:
        """True while `start_s <= time_s < end_s`."""
        return self.start_s <= time_s and (self.end_s is None or time_s < self.end_s)

    def magnitude_at(self, time_s: float) -> float:
        """The severity in effect at `time_s` (growth for ramped bearing wear, else constant).

        Wear grows like a Paris-law crack: exponentially from severity/10 at `start_s` to
        `severity` at `start_s + ramp_s`, then stays.
        """
        if not self.is_active(time_s):
            return 0.0
        if self.ramp_s <= 0.0:
            return self.severity
        progress = min(1.0, (time_s - self.start_s) / self.ramp_s)
        return self.severity * math.exp(math.log(10.0) * (progress - 1.0))


class FaultSchedule(BaseModel):
    """A list of faults applied to one model as simulated time passes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    faults: tuple[FaultSpec, ...] = ()
