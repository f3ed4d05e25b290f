"""The loop between a bare plant and an edge application on the virtual clock.

With no PLC there is no accelerometer path and no Modbus drive: after every plant step the
runner hands the plant's newest vibration block (with its measured speed) to the edge's DAQ
FB (`DaqFeed`), and each setpoint the application emits is written straight into the
plant model's command input (`SetpointWriter`). Both happen inside the runner's step, so
the whole chain (features, inference, debounce, derate) is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.sim.model import PlantModel, PlantState
from testbed.errors import ConfigError
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer

__all__ = ["DaqFeed", "SetpointWriter"]


class DaqFeed:
    """The newest vibration block of a bare plant, handed to a DAQ FB (BLOCK, SPEED, REQ)
    once per plant step; `deliver` queues it on the resource, the edge's step runs it."""

    def __init__(self, res: Resource, daq: FBInstance, speed_value: str | None,
                 delivered: Callable[[], None]) -> None:
        self._res = res
        self._daq = daq
        self._speed_value = speed_value
        self._delivered = delivered
        self._state: PlantState | None = None
        self._step = -1
        self.blocks = 0

    def on_step(self, state: PlantState, step: int) -> None:
        """The plant stepped (its state after step `step`): keep it for the next delivery."""
        if step != self._step:
            self._state, self._step = state, step

    def deliver(self) -> bool:
        """Queue the kept block on the DAQ FB (BLOCK, SPEED, then REQ); False if none is new
        (no step since, no waveform, or the plant is in a comm outage)."""
        state, self._state = self._state, None
        if state is None or state.comm_outage:
            return False
        wave = state.waveforms.get("vibration")
        if wave is None or not len(wave.samples):
            return False
        self._daq.set("BLOCK", wave.samples)
        if self._speed_value is not None:
            self._daq.set("SPEED", state.real(self._speed_value))
        self._delivered()
        self._res.inject(f"{self._daq.name}.REQ")
        self.blocks += 1
        return True


class SetpointWriter(Tracer):
    """Writes the SETPOINT an FB event carries into a plant model's command input."""

    def __init__(self, fb: FBInstance, event: str, model: PlantModel, input_name: str) -> None:
        if fb.var_decl("SETPOINT") is None:
            raise ConfigError(f"monitor.setpoint: {fb.name} ({fb.type_name}) has no SETPOINT "
                              "output")
        if input_name not in {s.name for s in model.inputs}:
            raise ConfigError(f"monitor.setpoint_input: the {type(model).__name__} has no input "
                              f"{input_name!r}; inputs: {sorted(s.name for s in model.inputs)}")
        self._fb = fb
        self._event = event
        self._model = model
        self._input = input_name
        self.writes = 0

    def on_emit(self, fb: FBInstance, event: str) -> None:
        if fb is self._fb and event == self._event:
            self._model.set_input(self._input, float(fb.get("SETPOINT")))
            self.writes += 1
