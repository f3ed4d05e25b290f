"""The parts a scenario starts: broker, cloud side, plants (bare or behind simulated PLCs)
and edge devices (`testbed.scenario.edge`).

Each part is an async context manager with optional `sample(t_s, metrics)` (called
every sample period), `async on_fault(fault, begin)` (called when a fault window
opens or closes) and `async finish(metrics)` (called once before the parts close).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import numpy as np
import structlog
from numpy.typing import NDArray

from drivers.errors import DriverError
from drivers.mqtt import EmbeddedBroker, EmbeddedBrokerConfig, MqttClientConfig
from drivers.sim import FaultSchedule, FaultSpec, MonotonicClock, PlantRunner, create_model
from drivers.sim.clock import ManualClock
from drivers.sim.model import PlantState
from drivers.sim.plc import PlcConfig, SimulatedPlc, default_profile_path
from drivers.sim.profile import load_profile
from testbed.cloud import CloudConfig, CloudService
from testbed.errors import ConfigError
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.spec import BrokerOutage, PlantFault, PlantSpec

if TYPE_CHECKING:
    from pathlib import Path

    from testbed.scenario.runner import ScenarioRunner

__all__ = ["BrokerPart", "CloudPart", "PlantPart", "PlcPart", "build_parts"]

log = structlog.get_logger(__name__)

_SLACK_S = 1e-9


class BrokerPart:
    """The embedded MQTT broker; a broker outage stops it and restarts it on the same port."""

    def __init__(self) -> None:
        self._broker: EmbeddedBroker | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        self._broker = EmbeddedBroker(EmbeddedBrokerConfig(port=0))
        await self._broker.__aenter__()
        self.port = self._broker.port
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._broker is not None:
            await self._broker.aclose()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def on_fault(self, fault: object, begin: bool) -> None:
        if not isinstance(fault, BrokerOutage):
            return
        if begin and self._broker is not None:
            await self._broker.aclose()
            self._broker = None
        elif not begin and self._broker is None:
            self._broker = EmbeddedBroker(EmbeddedBrokerConfig(port=self.port))
            await self._broker.__aenter__()


class PlantPart:
    """A plant model stepped on the real clock, or on a `ManualClock` the scenario runner
    moves (`virtual=True`, see `advance_to`); its faults come from the schedule."""

    def __init__(self, spec: PlantSpec, seed: int, faults: list[PlantFault], *,
                 virtual: bool = False) -> None:
        self.spec = spec
        self.model = create_model(spec.model, seed=seed, config=spec.config)
        self.model.apply_schedule(_schedule(faults))
        self._manual = ManualClock() if virtual else None
        self._runner = PlantRunner(self.model, self._manual or MonotonicClock())
        self._step_listeners: list[Callable[[PlantState, int], None]] = []

    def add_step_listener(self, listener: Callable[[PlantState, int], None]) -> None:
        """Virtual clock: call `listener(state, step_index)` after every `advance_to`
        (the edge's DAQ takes the newest vibration block from it)."""
        self._step_listeners.append(listener)

    @property
    def dt_s(self) -> float:
        """The model's step."""
        return self.model.dt_s

    async def advance_to(self, t_s: float) -> None:
        """Virtual clock: move to run time `t_s` and wait until the model has stepped there
        (every step due by then, in order)."""
        if self._manual is None:
            raise ConfigError(f"plant {self.spec.name}: advance_to needs the virtual clock")
        # an absolute target plus a nanosecond: the runner's deadlines (start + k * dt) are
        # reached exactly, whatever the float rounding of the sum
        self._manual.advance(max(0.0, t_s + _SLACK_S - self._manual.now_s()))
        await self._runner.wait_until_time(t_s)
        if self._step_listeners:
            state, step = self.model.state(), self.model.step_index
            for listener in self._step_listeners:
                listener(state, step)

    async def __aenter__(self) -> Self:
        await self._runner.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._runner.__aexit__(et, exc, tb)

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        _record_values(self.spec, self.model.state(), t_s, metrics)


def _record_values(spec: PlantSpec, state: PlantState, t_s: float,
                   metrics: MetricsRecorder) -> None:
    """The plant's scalar values as time series (those `spec.series` names, or all)."""
    wanted = None if spec.series is None else set(spec.series)
    for name, pv in state.values.items():
        value = pv.value
        if isinstance(value, bool | int | float) and (wanted is None or name in wanted):
            metrics.record(f"{spec.name}.{name}", t_s, float(value))


def _schedule(faults: list[PlantFault]) -> FaultSchedule:
    return FaultSchedule(faults=tuple(
        FaultSpec(kind=f.kind, target=f.target, start_s=f.start_s, end_s=f.end_s,  # type: ignore[arg-type]
                  severity=f.severity, ramp_s=f.ramp_s)
        for f in faults))


class PlcPart:
    """A plant model behind a simulated PLC (OPC UA + Modbus), faults from the schedule.

    A watcher hands every new vibration block, with the monotonic time of the scan that
    made it, to the listeners (the edge's DAQ input): the accelerometer's path to the edge.
    """

    def __init__(self, spec: PlantSpec, seed: int, faults: list[PlantFault]) -> None:
        self.spec = spec
        self.model = create_model(spec.model, seed=seed, config=spec.config)
        self.model.apply_schedule(_schedule(faults))
        path = spec.profile or default_profile_path(spec.model)
        profile = load_profile(path, model=self.model)
        self.plc = SimulatedPlc(self.model, profile, PlcConfig(
            opcua_port=spec.opcua_port, modbus_port=spec.modbus_port, scan_ms=spec.scan_ms),
            source=str(path))
        self._listeners: list[Callable[[NDArray[np.float64], float], None]] = []
        self._last_sample: float | None = None
        self._outage_listeners: list[Callable[[float], None]] = []
        self._scan_listeners: list[Callable[[PlantState, float], None]] = []
        self._in_outage = False
        self._group: asyncio.TaskGroup | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.plc.__aenter__()
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._watcher = self._group.create_task(self._watch(), name="plc-scan-watch")
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        group, self._group = self._group, None
        if group is not None:
            if self._watcher is not None:
                self._watcher.cancel()
            await group.__aexit__(None, None, None)
        await self.plc.aclose()

    async def _watch(self) -> None:
        while True:
            try:
                state = await self.plc.wait_scans(1)
            except DriverError:
                return
            scan_t = time.monotonic()
            for scanned in self._scan_listeners:
                scanned(state, scan_t)
            if state.comm_outage != self._in_outage:
                self._in_outage = state.comm_outage
                if not state.comm_outage:  # the servers listen again (restarted in that scan)
                    back_t = time.monotonic()
                    for callback in self._outage_listeners:
                        callback(back_t)
            wave = state.waveforms.get("vibration")
            if wave is None or not len(wave.samples) or state.comm_outage:
                continue
            samples = wave.samples
            newest = float(samples[-1])
            if newest != self._last_sample:
                self._last_sample = newest
                scan_t = time.monotonic()
                for listener in self._listeners:
                    listener(samples, scan_t)

    def add_block_listener(self, listener: Callable[[NDArray[np.float64], float], None]) -> None:
        """Call `listener(block, scan_time)` for every new vibration block."""
        self._listeners.append(listener)

    def add_scan_listener(self, listener: Callable[[PlantState, float], None]) -> None:
        """Call `listener(state, t)` after every PLC scan (the monotonic time it was seen)."""
        self._scan_listeners.append(listener)

    def add_outage_end_listener(self, listener: Callable[[float], None]) -> None:
        """Call `listener(t)` when a comm outage ends: the servers listen again at `t`."""
        self._outage_listeners.append(listener)

    def placeholders(self) -> dict[str, str]:
        name = self.spec.name
        return {f"{name}.opcua": self.plc.opcua_endpoint,
                f"{name}.modbus": f"{self.plc.modbus_endpoint}:{self.plc.profile.modbus.unit_id}"}

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        _record_values(self.spec, self.model.state(), t_s, metrics)
        stats = self.plc.statistics()
        metrics.gauge(f"{self.spec.name}.plc_outages", stats.outages)
        metrics.gauge(f"{self.spec.name}.plc_modbus_commands", stats.modbus_commands)


class CloudPart:
    """The cloud side in-process: a Sparkplug primary host ingesting into SQLite."""

    def __init__(self, host_id: str, broker_port: int, db_path: Path) -> None:
        self.db_path = db_path
        self.service = CloudService(CloudConfig(
            mqtt=MqttClientConfig(port=broker_port), host_id=host_id, db_path=db_path))

    async def __aenter__(self) -> Self:
        await self.service.__aenter__()
        await self.service.wait_connected(10)
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.service.aclose()

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        stats = self.service.statistics()
        metrics.gauge("cloud_messages_ingested", stats.messages_ingested)
        metrics.gauge("cloud_duplicates_deduplicated", stats.duplicates)
        metrics.record("cloud_messages_ingested", t_s, stats.messages_ingested)


async def build_parts(runner: ScenarioRunner, stack: contextlib.AsyncExitStack) -> list[Any]:
    """Start every part the scenario names, in dependency order; the stack owns them."""
    spec = runner.spec
    from testbed.scenario.edge import EdgePart
    from testbed.scenario.virtual import check_virtual_clock

    check_virtual_clock(spec, runner.folder / "scenario.yaml")  # a spec built in code, too
    from testbed.scenario.models import trained_model

    parts: list[Any] = []
    values: dict[str, str] = {"run_dir": str(runner.out_dir.resolve())}
    runner.out_dir.mkdir(parents=True, exist_ok=True)
    models = {}
    for model in spec.models:
        trained = await asyncio.to_thread(trained_model, model, runner.out_dir)
        models[(model.name, model.version)] = trained
    broker: BrokerPart | None = None
    if spec.broker.kind == "embedded":
        broker = await stack.enter_async_context(BrokerPart())
        parts.append(broker)
        values["broker.port"] = str(broker.port)
    elif spec.broker.kind == "url" and spec.broker.url:
        values["broker.port"] = str(urlsplit(spec.broker.url).port or 1883)
    cloud: CloudPart | None = None
    if spec.cloud.enabled and broker is not None and (
            spec.sites or any(e.monitor.cloud_link for e in spec.edges)):
        cloud = await stack.enter_async_context(
            CloudPart(spec.cloud.host_id, broker.port, runner.out_dir / "cloud.db"))
        parts.append(cloud)
    plcs: dict[str, PlcPart] = {}
    bare: dict[str, PlantPart] = {}
    for plant in spec.plants:
        faults = [f for f in spec.faults if isinstance(f, PlantFault) and f.plant == plant.name]
        if plant.plc:
            plc = await stack.enter_async_context(PlcPart(plant, spec.seed, faults))
            plcs[plant.name] = plc
            values.update(plc.placeholders())
            parts.append(plc)
        else:
            bare[plant.name] = await stack.enter_async_context(PlantPart(
                plant, spec.seed, faults, virtual=spec.clock == "virtual"))
            parts.append(bare[plant.name])
    # run time 0 = plant time 0 (a PLC starts its model clock once its servers listen),
    # so fault times mean the same to the plants and to the runner
    runner.restart_clock()
    for edge in spec.edges:
        parts.append(await stack.enter_async_context(EdgePart(
            edge, runner, values=values, models=models,
            plc=plcs.get(edge.monitor.plant or ""), cloud=cloud,
            plant=bare.get(edge.monitor.plant or ""))))
    if spec.sites or spec.federated is not None or spec.control_link is not None:
        from testbed.scenario.cross_site import build_cross_site_parts

        parts += await build_cross_site_parts(runner, stack, values, broker=broker, cloud=cloud)
    log.info("scenario_parts_started", scenario=spec.name, parts=len(parts))
    return parts
