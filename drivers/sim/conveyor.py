"""A sorting conveyor: Poisson arrivals, photo-eyes, an inspection station and a reject diverter.

Items enter at x = 0 when the entry is clear (arrivals wait in an infeed of bounded size,
counted when it overflows), ride the belt at its speed, are inspected (good or defective)
when their centre passes the inspection station, and are pushed into the reject bin if their
centre passes the diverter while it is fully extended; the rest leave at the belt's end.
Positions live in numpy arrays, so a step costs the same for one item or a hundred.

Besides the perfect verdict (ground truth), the station measures each item: a defect's size
(defective items only) plus gauge noise, in mm. A classifier at the edge sees only this
measurement, so its reject decisions have a real precision and recall. The measurement has its
own random stream (seeded from the model's seed), so it changes no other value of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.sim.model import PlantModel, RawValue, SignalKind, SignalSpec

__all__ = ["ConveyorConfig", "ConveyorItem", "ConveyorModel", "PhotoEyeConfig"]

_COUNTERS = (
    ("items_arrived", "items that arrived at the infeed (including lost ones)"),
    ("items_lost", "arrivals dropped because the infeed was full"),
    ("items_inspected", "items that passed the inspection station"),
    ("items_rejected", "items pushed into the reject bin"),
    ("items_passed", "items that left at the end of the belt"),
    ("defective_rejected", "defective items rejected (correct)"),
    ("defective_passed", "defective items that escaped"),
    ("good_rejected", "good items rejected (false rejects)"),
)


class PhotoEyeConfig(BaseModel):
    """A through-beam photo-eye: BOOL true while an item blocks it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    position_m: float = Field(ge=0.0)


class ConveyorConfig(BaseModel):
    """Belt, item, station and sensor parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dt_s: float = Field(default=0.01, gt=0.0)
    length_m: float = Field(default=3.0, gt=0.0)
    max_speed_m_s: float = Field(default=1.0, gt=0.0)
    speed_time_constant_s: float = Field(default=0.2, gt=0.0)
    item_length_m: float = Field(default=0.1, gt=0.0)
    min_gap_m: float = Field(default=0.2, ge=0.0)
    """Clear space the infeed leaves behind the previous item."""
    arrival_rate_per_s: float = Field(default=0.5, ge=0.0)
    defect_probability: float = Field(default=0.1, ge=0.0, le=1.0)
    infeed_capacity: int = Field(default=10, ge=0)
    inspection_position_m: float = Field(default=1.0, ge=0.0)
    diverter_position_m: float = Field(default=2.0, ge=0.0)
    diverter_stroke_s: float = Field(default=0.1, gt=0.0)
    defect_size_mm: float = Field(default=1.6, ge=0.0)
    """Mean size of a defect as the inspection gauge sees it (good items: 0)."""
    defect_size_spread_mm: float = Field(default=0.5, ge=0.0)
    """Standard deviation of the defect size between defective items."""
    inspection_noise_mm: float = Field(default=0.35, ge=0.0)
    """Standard deviation of the gauge noise on every measurement."""
    photo_eyes: tuple[PhotoEyeConfig, ...] = (
        PhotoEyeConfig(name="pe_entry", position_m=0.3),
        PhotoEyeConfig(name="pe_inspect", position_m=1.0),
        PhotoEyeConfig(name="pe_divert", position_m=1.9),
        PhotoEyeConfig(name="pe_exit", position_m=2.9),
    )
    idle_current_a: float = Field(default=0.8, ge=0.0)
    current_per_m_s_a: float = Field(default=1.5, ge=0.0)
    current_per_item_a: float = Field(default=0.05, ge=0.0)
    stall_current_a: float = Field(default=6.0, ge=0.0)
    """Motor current while the belt is commanded to run but jammed."""
    speed_noise_m_s: float = Field(default=0.002, ge=0.0)
    current_noise_a: float = Field(default=0.02, ge=0.0)
    initial_speed_command_m_s: float = Field(default=0.5, ge=0.0)
    initial_run: bool = True

    @model_validator(mode="after")
    def _check_layout(self) -> ConveyorConfig:
        names = [eye.name for eye in self.photo_eyes]
        if len(set(names)) != len(names):
            raise ValueError(f"photo-eye names must be unique: {names}")
        for what, where in (
            ("inspection_position_m", self.inspection_position_m),
            ("diverter_position_m", self.diverter_position_m),
            *((f"photo eye {eye.name}", eye.position_m) for eye in self.photo_eyes),
        ):
            if where > self.length_m:
                raise ValueError(f"{what} ({where} m) lies beyond the belt ({self.length_m} m)")
        return self


@dataclass(frozen=True, slots=True)
class ConveyorItem:
    """Ground truth of one item on the belt."""

    item_id: int
    position_m: float
    defective: bool


class ConveyorModel(PlantModel):
    """A conveyor sorting line; a jam of actuator `belt` stalls it, `diverter` sticks."""

    def __init__(self, config: ConveyorConfig | None = None, *, seed: int = 0) -> None:
        cfg = config or ConveyorConfig()
        self._config = cfg
        outputs = [
            SignalSpec("belt_speed_m_s", SignalKind.REAL, "m/s", "measured belt speed"),
            SignalSpec("belt_motor_current_a", SignalKind.REAL, "A", "belt motor current"),
            *(SignalSpec(eye.name, SignalKind.BOOL, "", f"photo-eye at {eye.position_m} m")
              for eye in cfg.photo_eyes),
            SignalSpec("diverter_extended", SignalKind.BOOL, "", "diverter end switch"),
            SignalSpec("diverter_retracted", SignalKind.BOOL, "", "diverter home switch"),
            SignalSpec("inspection_item_id", SignalKind.INT, "", "last item inspected"),
            SignalSpec("inspection_defective", SignalKind.BOOL, "", "its quality verdict"),
            SignalSpec("inspection_measurement_mm", SignalKind.REAL, "mm",
                       "its measured defect size (noisy; good items measure about 0)"),
            *(SignalSpec(name, SignalKind.INT, "", text) for name, text in _COUNTERS),
            SignalSpec("items_on_belt", SignalKind.INT, "", "items riding the belt"),
            SignalSpec("infeed_waiting", SignalKind.INT, "", "items queued at the infeed"),
        ]
        super().__init__(
            dt_s=cfg.dt_s,
            seed=seed,
            outputs=outputs,
            inputs=[
                SignalSpec("belt_run", SignalKind.BOOL, "", "run the belt motor"),
                SignalSpec("belt_speed_command_m_s", SignalKind.REAL, "m/s", "belt speed setpoint",
                           0.0, cfg.max_speed_m_s),
                SignalSpec("diverter_extend", SignalKind.BOOL, "", "extend the reject diverter"),
            ],
            initial_inputs={
                "belt_run": cfg.initial_run,
                "belt_speed_command_m_s": min(cfg.initial_speed_command_m_s, cfg.max_speed_m_s),
                "diverter_extend": False,
            },
            actuators=("belt", "diverter"),
        )
        self._speed = cfg.initial_speed_command_m_s if cfg.initial_run else 0.0
        self._positions: NDArray[np.float64] = np.zeros(0)
        self._ids: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._defective: NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._eye_positions = np.array([eye.position_m for eye in cfg.photo_eyes])
        self._diverter = 0.0
        self._next_id = 1
        self._waiting = 0
        self._inspection_id = 0
        self._inspection_defective = False
        self._inspection_mm = 0.0
        self._gauge_rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A06E]))
        self._counts = dict.fromkeys((name for name, _ in _COUNTERS), 0)
        self._publish_initial_state()

    @property
    def config(self) -> ConveyorConfig:
        """The parameters this conveyor was built with."""
        return self._config

    def items(self) -> tuple[ConveyorItem, ...]:
        """Ground truth: every item on the belt, the one furthest along first."""
        return tuple(
            ConveyorItem(int(i), float(x), bool(d))
            for i, x, d in zip(self._ids, self._positions, self._defective, strict=True)
        )

    def _advance(self, dt_s: float) -> None:
        cfg = self._config
        jammed = self._is_jammed("belt")
        if jammed:
            self._speed = 0.0
        else:
            run = bool(self.input_value("belt_run"))
            target = float(self.input_value("belt_speed_command_m_s")) if run else 0.0
            self._speed = target + (self._speed - target) * math.exp(
                -dt_s / cfg.speed_time_constant_s
            )
        if not self._is_jammed("diverter"):
            stroke = dt_s / cfg.diverter_stroke_s
            goal = 1.0 if self.input_value("diverter_extend") else 0.0
            self._diverter += min(stroke, max(-stroke, goal - self._diverter))
        before = self._positions
        after = before + self._speed * dt_s
        self._positions = after
        inspected = (before < cfg.inspection_position_m) & (after >= cfg.inspection_position_m)
        if inspected.any():
            self._counts["items_inspected"] += int(inspected.sum())
            last = int(np.flatnonzero(inspected)[-1])  # the last of them to cross
            self._inspection_id = int(self._ids[last])
            self._inspection_defective = bool(self._defective[last])
            self._inspection_mm = self._gauge(self._inspection_defective)
        crossing = (before < cfg.diverter_position_m) & (after >= cfg.diverter_position_m)
        rejected = crossing if self._diverter >= 1.0 else np.zeros_like(crossing)
        leaving = (after >= cfg.length_m) & ~rejected
        gone = rejected | leaving
        if gone.any():
            self._count_out(rejected, leaving)
            keep = ~gone
            self._positions = self._positions[keep]
            self._ids = self._ids[keep]
            self._defective = self._defective[keep]
        self._arrive(dt_s)

    def _gauge(self, defective: bool) -> float:
        """The inspection gauge's reading of one item (defect size + noise, mm)."""
        cfg = self._config
        size, noise = self._gauge_rng.standard_normal(2)
        defect = max(0.0, cfg.defect_size_mm + cfg.defect_size_spread_mm * float(size))
        return (defect if defective else 0.0) + cfg.inspection_noise_mm * float(noise)

    def _count_out(self, rejected: NDArray[np.bool_], leaving: NDArray[np.bool_]) -> None:
        defective = self._defective
        self._counts["items_rejected"] += int(rejected.sum())
        self._counts["defective_rejected"] += int((rejected & defective).sum())
        self._counts["good_rejected"] += int((rejected & ~defective).sum())
        self._counts["items_passed"] += int(leaving.sum())
        self._counts["defective_passed"] += int((leaving & defective).sum())

    def _arrive(self, dt_s: float) -> None:
        cfg = self._config
        arrivals = int(self._process_rng.poisson(cfg.arrival_rate_per_s * dt_s))
        self._counts["items_arrived"] += arrivals
        room = cfg.infeed_capacity - self._waiting
        self._counts["items_lost"] += max(0, arrivals - room)
        self._waiting += min(arrivals, room)
        # the newest item is the last in the arrays; the infeed places one when it is clear
        clear = cfg.item_length_m + cfg.min_gap_m
        entry_free = len(self._positions) == 0 or float(self._positions[-1]) >= clear
        if self._waiting > 0 and entry_free:
            self._waiting -= 1
            defective = bool(self._process_rng.random() < cfg.defect_probability)
            self._positions = np.append(self._positions, 0.0)
            self._ids = np.append(self._ids, self._next_id)
            self._defective = np.append(self._defective, defective)
            self._next_id += 1

    def _measure(self) -> dict[str, RawValue]:
        cfg = self._config
        noise = self._sensor_rng.standard_normal(2)
        running = bool(self.input_value("belt_run"))
        if self._is_jammed("belt") and running:
            current = cfg.stall_current_a
        elif running or self._speed > 1e-3:
            current = (cfg.idle_current_a + cfg.current_per_m_s_a * self._speed
                       + cfg.current_per_item_a * len(self._positions))
        else:
            current = 0.0
        half = cfg.item_length_m / 2.0
        blocked = (np.abs(self._positions[None, :] - self._eye_positions[:, None]) <= half).any(
            axis=1
        )
        values: dict[str, RawValue] = {
            "belt_speed_m_s": max(0.0, self._speed + cfg.speed_noise_m_s * noise[0]),
            "belt_motor_current_a": (
                max(0.0, current + cfg.current_noise_a * noise[1]) if current > 0.0 else 0.0
            ),
            "diverter_extended": self._diverter >= 1.0,
            "diverter_retracted": self._diverter <= 0.0,
            "inspection_item_id": self._inspection_id,
            "inspection_defective": self._inspection_defective,
            "inspection_measurement_mm": self._inspection_mm,
            "items_on_belt": len(self._positions),
            "infeed_waiting": self._waiting,
        }
        for eye, is_blocked in zip(cfg.photo_eyes, blocked, strict=True):
            values[eye.name] = bool(is_blocked)
        values.update(self._counts)
        return values
