"""The parts a scenario starts: broker, plants, edge devices (and, as they land, the
simulated PLCs, the cloud side and the AI models).

Each part is an async context manager with optional `sample(t_s, metrics)` (called
every sample period) and `async on_fault(fault, begin)` (called when a fault window
opens or closes).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import structlog

from drivers.mqtt import EmbeddedBroker, EmbeddedBrokerConfig
from drivers.sim import FaultSchedule, FaultSpec, MonotonicClock, PlantRunner, create_model
from testbed.api import Network, load
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.spec import BrokerOutage, EdgeSpec, PlantFault, PlantSpec

if TYPE_CHECKING:
    from testbed.scenario.runner import ScenarioRunner

__all__ = ["BrokerPart", "EdgePart", "PlantPart", "build_parts"]

log = structlog.get_logger(__name__)


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
    """A plant model stepped on the real clock; its faults come from the schedule."""

    def __init__(self, spec: PlantSpec, seed: int, faults: list[PlantFault]) -> None:
        self.spec = spec
        self.model = create_model(spec.model, seed=seed)
        schedule = FaultSchedule(faults=tuple(
            FaultSpec(kind=f.kind, target=f.target, start_s=f.start_s, end_s=f.end_s,  # type: ignore[arg-type]
                      severity=f.severity, ramp_s=f.ramp_s)
            for f in faults))
        self.model.apply_schedule(schedule)
        self._runner = PlantRunner(self.model, MonotonicClock())

    async def __aenter__(self) -> Self:
        await self._runner.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._runner.__aexit__(et, exc, tb)

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        state = self.model.state()
        for name, pv in state.values.items():
            value = pv.value
            if isinstance(value, bool | int | float):
                metrics.record(f"{self.spec.name}.{name}", t_s, float(value))


class EdgePart:
    """An edge device running its application on the real clock."""

    def __init__(self, spec: EdgeSpec, folder: Path) -> None:
        self.spec = spec
        self.network: Network = load(folder / spec.application, clock="real",
                                     types=[folder / t for t in spec.types], start=False)
        for path, text in spec.parameters.items():
            self.network.write(path, text)

    async def __aenter__(self) -> Self:
        await self.network.__aenter__()
        self.network.device.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.network.__aexit__(et, exc, tb)

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        processed = dropped = faults = 0
        for stats in self.network.device.statistics().values():
            processed += stats.events_processed
            dropped += stats.events_dropped + stats.external_dropped
            faults += stats.faults
        metrics.gauge("events_processed", processed)
        metrics.gauge("events_dropped", dropped)
        metrics.gauge("fb_faults", faults)


async def build_parts(runner: ScenarioRunner, stack: contextlib.AsyncExitStack) -> list[Any]:
    """Start every part the scenario names, in dependency order; the stack owns them."""
    spec = runner.spec
    parts: list[Any] = []
    if spec.broker.kind == "embedded":
        parts.append(await stack.enter_async_context(BrokerPart()))
    for plant in spec.plants:
        faults = [f for f in spec.faults if isinstance(f, PlantFault) and f.plant == plant.name]
        parts.append(await stack.enter_async_context(
            PlantPart(plant, spec.seed, faults)))
    for edge in spec.edges:
        parts.append(await stack.enter_async_context(EdgePart(edge, runner.folder)))
    log.info("scenario_parts_started", scenario=spec.name, parts=len(parts))
    return parts
