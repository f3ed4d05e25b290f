"""The contract every plant model implements.

A model advances in fixed steps of `dt_s` (simulated time is `step * dt_s`, never a running
sum), publishes a frozen `PlantState` of named values with units after each step, accepts
named inputs (setpoints, actuator commands), draws every random number from generators
seeded once (same seed, same inputs, same faults -> identical outputs) and takes faults at
run time. The simulated PLCs read `PlantState`; they never reach into a model's internals.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import structlog
from numpy.typing import NDArray

from drivers.errors import DriverConfigError, DriverError
from drivers.sim.faults import SENSOR_FAULT_KINDS, FaultKind, FaultSchedule, FaultSpec

__all__ = [
    "PLC_TARGET",
    "PlantModel",
    "PlantState",
    "ProcessValue",
    "ScalarValue",
    "SignalKind",
    "SignalSpec",
    "Waveform",
]

_log = structlog.get_logger(__name__)

ScalarValue = float | int | bool
"""A scalar process value: REAL as float, counters as int, digital signals as bool."""

PLC_TARGET = "plc"
"""The target name of a `comm_outage` fault."""


class SignalKind(enum.StrEnum):
    """The shape and type of a signal, which decides how a PLC may expose it."""

    REAL = "real"
    INT = "int"
    BOOL = "bool"
    WAVEFORM = "waveform"


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """A named output or input of a model, with its unit and (for inputs) its range."""

    name: str
    kind: SignalKind
    unit: str = ""
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True, slots=True)
class ProcessValue:
    """One scalar value with its unit."""

    value: ScalarValue
    unit: str


@dataclass(frozen=True, slots=True)
class Waveform:
    """A block of equally spaced samples ending at `end_time_s` (array is read-only)."""

    samples: NDArray[np.float64]
    sample_rate_hz: float
    unit: str
    end_time_s: float

    @property
    def start_time_s(self) -> float:
        """Time of the first sample."""
        return self.end_time_s - (len(self.samples) - 1) / self.sample_rate_hz


@dataclass(frozen=True, slots=True)
class PlantState:
    """A frozen snapshot of a model after a step: outputs, input readbacks, fault flags."""

    time_s: float
    step: int
    values: Mapping[str, ProcessValue]
    inputs: Mapping[str, ProcessValue]
    waveforms: Mapping[str, Waveform] = field(default_factory=lambda: MappingProxyType({}))
    comm_outage: bool = False
    active_faults: tuple[FaultSpec, ...] = ()

    def __getitem__(self, name: str) -> ScalarValue:
        """The value of a scalar output or input by name."""
        if name in self.values:
            return self.values[name].value
        if name in self.inputs:
            return self.inputs[name].value
        raise KeyError(f"no scalar value {name!r}; known: {sorted([*self.values, *self.inputs])}")

    def real(self, name: str) -> float:
        """A scalar value as float (REAL, INT and BOOL all convert)."""
        return float(self[name])

    def unit(self, name: str) -> str:
        """The unit of a scalar output, input or waveform."""
        if name in self.values:
            return self.values[name].unit
        if name in self.inputs:
            return self.inputs[name].unit
        if name in self.waveforms:
            return self.waveforms[name].unit
        raise KeyError(f"no value {name!r}")


RawValue = ScalarValue | Waveform
"""What `_measure` returns per output: a scalar or a waveform block."""


@dataclass(slots=True)
class _FaultEntry:
    """A fault added to a model, with the value a stuck sensor holds while active."""

    spec: FaultSpec
    held: RawValue | None = None


class PlantModel(abc.ABC):
    """Base of every plant model: fixed step, named signals, seeded noise, fault hooks.

    Subclasses implement `_advance` (physics over one step) and `_measure` (sensor readings,
    noise drawn from `_sensor_rng`), and call `_publish_initial_state()` at the end of
    `__init__`. Random streams are independent: process randomness (`_process_rng`),
    measurement noise (`_sensor_rng`) and fault noise (`_fault_rng`), so adding a fault never
    changes the process itself.
    """

    def __init__(
        self,
        *,
        dt_s: float,
        seed: int,
        outputs: Sequence[SignalSpec],
        inputs: Sequence[SignalSpec],
        initial_inputs: Mapping[str, ScalarValue],
        actuators: Sequence[str] = (),
        wear_targets: Sequence[str] = (),
    ) -> None:
        if not (math.isfinite(dt_s) and dt_s > 0.0):
            raise DriverConfigError(f"dt_s must be a positive number of seconds, got {dt_s!r}")
        self._dt_s = float(dt_s)
        self._seed = seed
        process_seq, sensor_seq, fault_seq = np.random.SeedSequence(seed).spawn(3)
        self._process_rng = np.random.default_rng(process_seq)
        self._sensor_rng = np.random.default_rng(sensor_seq)
        self._fault_rng = np.random.default_rng(fault_seq)
        self._outputs = {spec.name: spec for spec in outputs}
        self._inputs = {spec.name: spec for spec in inputs}
        self._actuators = tuple(actuators)
        self._wear_targets = tuple(wear_targets)
        self._input_values: dict[str, ScalarValue] = {}
        for name, spec in self._inputs.items():
            if name not in initial_inputs:
                raise DriverConfigError(f"input {name!r} has no initial value")
            self._input_values[name] = self._coerce_input(spec, initial_inputs[name])
        self._faults: list[_FaultEntry] = []
        self._active: tuple[_FaultEntry, ...] = ()
        self._step_index = 0
        self._state: PlantState | None = None

    # --- the contract -------------------------------------------------------------------

    @property
    def dt_s(self) -> float:
        """The fixed step of this model in seconds."""
        return self._dt_s

    @property
    def seed(self) -> int:
        """The seed every random stream of this model derives from."""
        return self._seed

    @property
    def step_index(self) -> int:
        """Steps taken so far."""
        return self._step_index

    @property
    def time_s(self) -> float:
        """Simulated time: `step_index * dt_s`."""
        return self._step_index * self._dt_s

    @property
    def outputs(self) -> tuple[SignalSpec, ...]:
        """The signals this model measures."""
        return tuple(self._outputs.values())

    @property
    def inputs(self) -> tuple[SignalSpec, ...]:
        """The setpoints and actuator commands this model accepts."""
        return tuple(self._inputs.values())

    @property
    def actuators(self) -> tuple[str, ...]:
        """Names an `actuator_jam` fault may target."""
        return self._actuators

    @property
    def comm_outage(self) -> bool:
        """True while a `comm_outage` fault is active: the PLC layer stops answering."""
        return any(e.spec.kind is FaultKind.COMM_OUTAGE for e in self._active)

    def state(self) -> PlantState:
        """The snapshot published by the last step (or the initial one)."""
        if self._state is None:
            raise DriverError(f"{type(self).__name__} did not publish its initial state")
        return self._state

    def step(self) -> PlantState:
        """Advance one step of `dt_s` and publish the new snapshot."""
        self._refresh_faults(self.time_s)
        self._advance(self._dt_s)
        self._step_index += 1
        self._state = self._snapshot(self._measure())
        return self._state

    def run_for(self, duration_s: float) -> PlantState:
        """Step until `duration_s` more simulated seconds have passed (a convenience for tests)."""
        steps = round(duration_s / self._dt_s)
        state = self.state()
        for _ in range(steps):
            state = self.step()
        return state

    def set_input(self, name: str, value: ScalarValue) -> None:
        """Set an input; numbers are clamped to the input's range, as a real actuator saturates."""
        spec = self._inputs.get(name)
        if spec is None:
            raise DriverConfigError(
                f"{type(self).__name__} has no input {name!r}; inputs: {sorted(self._inputs)}"
            )
        self._input_values[name] = self._coerce_input(spec, value)

    def input_value(self, name: str) -> ScalarValue:
        """The last commanded value of an input."""
        try:
            return self._input_values[name]
        except KeyError:
            raise DriverConfigError(f"{type(self).__name__} has no input {name!r}") from None

    # --- faults -------------------------------------------------------------------------

    def add_fault(self, fault: FaultSpec) -> None:
        """Add a fault; it acts from `start_s` (immediately if already past) until `end_s`."""
        self._check_fault_target(fault)
        self._faults.append(_FaultEntry(fault))
        _log.info("fault_added", model=type(self).__name__, kind=str(fault.kind),
                  target=fault.target, start_s=fault.start_s, end_s=fault.end_s)

    def apply_schedule(self, schedule: FaultSchedule) -> None:
        """Add every fault of a schedule (all targets are checked before any is added)."""
        for fault in schedule.faults:
            self._check_fault_target(fault)
        for fault in schedule.faults:
            self.add_fault(fault)

    def remove_fault(self, fault: FaultSpec) -> None:
        """Remove a fault added before (it stops acting from the next step)."""
        self._faults = [e for e in self._faults if e.spec != fault]

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    @property
    def faults(self) -> tuple[FaultSpec, ...]:
        """Every fault added, active or not."""
        return tuple(e.spec for e in self._faults)

    def active_faults(self) -> tuple[FaultSpec, ...]:
        """Faults acting in the current step."""
        return tuple(e.spec for e in self._active)

    def fault_targets(self, kind: FaultKind) -> frozenset[str]:
        """Target names a fault of this kind may name on this model."""
        if kind in SENSOR_FAULT_KINDS:
            allowed = _SENSOR_KINDS_BY_FAULT[kind]
            return frozenset(n for n, s in self._outputs.items() if s.kind in allowed)
        if kind is FaultKind.ACTUATOR_JAM:
            return frozenset(self._actuators)
        if kind is FaultKind.BEARING_WEAR:
            return frozenset(self._wear_targets)
        return frozenset({PLC_TARGET})

    # --- hooks for subclasses -------------------------------------------------------------

    @abc.abstractmethod
    def _advance(self, dt_s: float) -> None:
        """Integrate the physics over one step, reading `_input_values` and fault hooks."""

    @abc.abstractmethod
    def _measure(self) -> dict[str, RawValue]:
        """Read every output as a sensor would (with measurement noise)."""

    def _publish_initial_state(self) -> None:
        """Publish the state at t = 0; subclasses call this at the end of `__init__`."""
        self._refresh_faults(0.0)
        self._state = self._snapshot(self._measure())

    def _is_jammed(self, actuator: str) -> bool:
        """True while an `actuator_jam` fault holds this actuator."""
        return any(
            e.spec.kind is FaultKind.ACTUATOR_JAM and e.spec.target == actuator
            for e in self._active
        )

    def _fault_magnitude(self, kind: FaultKind, target: str) -> float:
        """The largest magnitude now of the faults of a kind on a target (0 if none)."""
        time_s = self.time_s
        return max(
            (e.spec.magnitude_at(time_s) for e in self._faults
             if e.spec.kind is kind and e.spec.target == target),
            default=0.0,
        )

    # --- internals ---------------------------------------------------------------------

    def _coerce_input(self, spec: SignalSpec, value: ScalarValue) -> ScalarValue:
        if spec.kind is SignalKind.BOOL:
            if isinstance(value, bool | np.bool_) or value in (0, 1):
                return bool(value)
            raise DriverConfigError(f"input {spec.name!r} is BOOL, got {value!r}")
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise DriverConfigError(f"input {spec.name!r} is numeric, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise DriverConfigError(f"input {spec.name!r} must be finite, got {value!r}")
        if spec.minimum is not None:
            number = max(spec.minimum, number)
        if spec.maximum is not None:
            number = min(spec.maximum, number)
        return round(number) if spec.kind is SignalKind.INT else number

    def _check_fault_target(self, fault: FaultSpec) -> None:
        allowed = self.fault_targets(fault.kind)
        if fault.target not in allowed:
            raise DriverConfigError(
                f"{type(self).__name__}: a {fault.kind} fault cannot target {fault.target!r}; "
                f"targets: {sorted(allowed)}"
            )

    def _refresh_faults(self, time_s: float) -> None:
        active = []
        for entry in self._faults:
            if entry.spec.is_active(time_s):
                active.append(entry)
            else:
                entry.held = None
        self._active = tuple(active)

    def _snapshot(self, raw: dict[str, RawValue]) -> PlantState:
        time_s = self.time_s
        for entry in self._active:
            if entry.spec.kind in SENSOR_FAULT_KINDS:
                raw[entry.spec.target] = self._apply_sensor_fault(
                    entry, raw[entry.spec.target], time_s
                )
        values: dict[str, ProcessValue] = {}
        waveforms: dict[str, Waveform] = {}
        for name, spec in self._outputs.items():
            reading = raw[name]
            if isinstance(reading, Waveform):
                waveforms[name] = reading
            else:
                scalar = reading.item() if isinstance(reading, np.generic) else reading
                values[name] = ProcessValue(scalar, spec.unit)
        inputs = {
            name: ProcessValue(self._input_values[name], spec.unit)
            for name, spec in self._inputs.items()
        }
        return PlantState(
            time_s=time_s,
            step=self._step_index,
            values=MappingProxyType(values),
            inputs=MappingProxyType(inputs),
            waveforms=MappingProxyType(waveforms),
            comm_outage=self.comm_outage,
            active_faults=self.active_faults(),
        )

    def _apply_sensor_fault(self, entry: _FaultEntry, reading: RawValue, time_s: float) -> RawValue:
        spec = entry.spec
        if spec.kind is FaultKind.SENSOR_STUCK:
            if entry.held is None:
                entry.held = reading
            return entry.held
        if isinstance(reading, Waveform):
            samples = reading.samples.copy()
            if spec.kind is FaultKind.SENSOR_DRIFT:
                samples += spec.severity * (time_s - spec.start_s)
            else:
                samples += self._fault_rng.normal(0.0, spec.severity, samples.shape)
            samples.flags.writeable = False
            return Waveform(samples, reading.sample_rate_hz, reading.unit, reading.end_time_s)
        if spec.kind is FaultKind.SENSOR_DRIFT:
            return float(reading) + spec.severity * (time_s - spec.start_s)
        return float(reading) + float(self._fault_rng.normal(0.0, spec.severity))


_SENSOR_KINDS_BY_FAULT: Mapping[FaultKind, Iterable[SignalKind]] = {
    FaultKind.SENSOR_STUCK: frozenset(SignalKind),
    FaultKind.SENSOR_DRIFT: frozenset({SignalKind.REAL, SignalKind.WAVEFORM}),
    FaultKind.SENSOR_NOISE: frozenset({SignalKind.REAL, SignalKind.WAVEFORM}),
}
