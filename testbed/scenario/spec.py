"""The scenario file (`scenarios/<name>/scenario.yaml`): pydantic-validated, file:line errors.

A scenario names its plants (simulated PLCs), edge devices and their applications,
the broker, the cloud side, models, a fault schedule, the duration, the seed and
the clock. Paths in it are relative to the scenario folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from drivers.errors import DriverConfigError
from drivers.sim import create_model
from drivers.yamllines import Loc, YamlError, YamlIssue, line_of, validate_model
from testbed.errors import ConfigError
from testbed.scenario.cross_site_spec import (
    FederatedSpec,
    SiteProcessSpec,
    WanPartition,
    WanSpec,
)
from testbed.scenario.tsn_spec import TsnLinkSpec
from testbed.scenario.virtual import check_virtual_application, check_virtual_clock

__all__ = [
    "BrokerOutage",
    "BrokerSpec",
    "CloudSpec",
    "DeploymentSpec",
    "EdgeMonitorSpec",
    "EdgeSpec",
    "FaultEntry",
    "LineMonitorSpec",
    "ModelSpec",
    "PlantFault",
    "PlantSpec",
    "ScenarioSpec",
    "load_scenario",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlantSpec(_Frozen):
    """A plant model behind a simulated PLC."""

    name: str
    model: Literal["pump", "conveyor", "tank"]
    profile: str | None = None
    scan_ms: float = Field(default=100.0, gt=0)
    opcua_port: int = Field(default=0, ge=0, le=65535)
    modbus_port: int = Field(default=0, ge=0, le=65535)
    plc: bool = False
    """Serve the model through a simulated PLC (OPC UA + Modbus) instead of stepping it bare."""
    config: dict[str, JsonValue] = Field(default_factory=dict)
    """Fields of the model's configuration to override (e.g. `arrival_rate_per_s`)."""
    series: list[str] | None = None
    """The model values recorded as time series (and plotted); None records every one."""


class LineMonitorSpec(_Frozen):
    """FB events the runner watches on a conveyor line application (`FB.EVENT`), see
    `testbed.scenario.line`: item decisions, diverter commands and the raw sensor stream."""

    sense: str
    """The sensor poll's IND (`Line.Sense.IND`): every value it carries is a raw sample
    (RD_1..RD_n), the stream `bytes_to_cloud_raw` prices."""
    decide: str
    """The verdict event (`Line.Decide.DECIDED`) carrying ITEM and REJECT."""
    act: str
    """The diverter command event (`Line.Decide.ACT`) carrying ACT_ID and EXTEND."""
    actuation: str
    """The diverter write's CNF (`Line.Divert.CNF`)."""
    exit: str
    """The exit event (`Line.Track.EXITED`) carrying EXIT_ID and EXIT_KNOWN."""
    divert_eye: str = "pe_divert"
    """The photo-eye whose rising edge triggers the diverter command."""
    fault: str | None = None
    """The diverter supervision's event (`Line.Watch.CHANGED`) carrying FAULT: its first
    rising edge in a diverter `actuator_jam` window gives `jam_detection_delay_s`."""


class EdgeMonitorSpec(_Frozen):
    """FB events the runner watches to measure the edge application (`FB.EVENT`).

    `features` fires once per block, `inference`
    carries the anomaly score in RD_1, `alarm` carries ALARM and SETPOINT, `actuation` is
    the Modbus write's CNF; `model_fb` is the ONNX FB whose MODEL a model deployment swaps.
    """

    daq: str | None = None
    """An FB with BLOCK and REQ (VIB_FEATURES) that takes each vibration block of `plant`
    straight from its accelerometer (a DAQ on the edge; the PLC serves scalars only)."""
    process: str | None = None
    """The process-value read's CNF (`Proc.CNF`): its first good QO after a PLC outage ends
    gives `recovery_time_s`."""
    features: str | None = None
    inference: str | None = None
    alarm: str | None = None
    actuation: str | None = None
    model_fb: str | None = None
    model: str | None = None
    """The model (name in `models`) the ONNX FB runs first."""
    cloud_link: str | None = None
    """The pin holding the cloud FBs' link ID (`Tele.ID`): its edge link is the one measured."""
    plant: str | None = None
    """The plant whose PLC scans timestamp the vibration blocks (or, on the virtual clock,
    the bare plant whose every step hands its newest block to `daq`)."""
    daq_speed: str | None = None
    """Virtual clock, bare plant: the plant value (`shaft_speed_rpm`) the runner writes into
    the DAQ FB's SPEED with each block (no process-value read sets it there)."""
    setpoint: str | None = None
    """Virtual clock, bare plant: the FB event carrying SETPOINT (`PdM.Derate.CNF`); each
    one is written into the plant's `setpoint_input` (no Modbus drive there)."""
    setpoint_input: str = "speed_command_rpm"
    """The plant model input `setpoint` drives."""
    line: LineMonitorSpec | None = None
    """A conveyor line application: item tracking, reject decisions, bandwidth."""
    swap_on_deploy: dict[str, str] = Field(default_factory=dict)
    """Model name -> ONNX FB (`App.FB`): the FB starts on the model's first version and
    re-INITs on each version the cloud installs later (checked every sample period)."""
    trace: list[str] = Field(default_factory=list)
    """Output events (`FB.EVENT`) logged with their time and data to `trace/<FB.EVENT>.csv`."""


class EdgeSpec(_Frozen):
    """An edge device running an IEC 61499 application (.sys, .fboot or YAML)."""

    name: str
    application: str
    types: list[str] = Field(default_factory=list)
    parameters: dict[str, str] = Field(default_factory=dict)
    """Pin -> value; `${pump1.opcua}`, `${pump1.modbus}`, `${broker.port}`, `${run_dir}` and
    `${model.NAME}` are replaced by the running parts' endpoints and files."""
    monitor: EdgeMonitorSpec = EdgeMonitorSpec()


class ModelSpec(_Frozen):
    """A model version trained at run start from code (`testbed.ai.train`, small config)."""

    name: str
    version: str
    seed: int
    output: Literal["detector", "classifier"] = "detector"


class BrokerSpec(_Frozen):
    """`embedded` starts an in-process broker; `url` uses an existing one."""

    kind: Literal["embedded", "url", "none"] = "embedded"
    url: str | None = None

    @model_validator(mode="after")
    def _url_needed(self) -> BrokerSpec:
        if self.kind == "url" and not self.url:
            raise ValueError("a broker of kind 'url' needs url: mqtt://host:port")
        return self


class CloudSpec(_Frozen):
    enabled: bool = True
    host_id: str = "testbed-cloud"
    group: str = "testbed"


class PlantFault(_Frozen):
    """A fault injected into a plant model or its PLC (see drivers.sim.faults)."""

    kind: Literal["sensor_stuck", "sensor_drift", "sensor_noise", "actuator_jam",
                  "bearing_wear", "comm_outage"]
    plant: str
    target: str
    start_s: float = Field(ge=0)
    end_s: float | None = None
    severity: float = Field(default=0.0, ge=0)
    ramp_s: float = Field(default=0.0, ge=0)


class BrokerOutage(_Frozen):
    """The broker is stopped for the window."""

    kind: Literal["broker_outage"]
    start_s: float = Field(ge=0)
    end_s: float


FaultEntry = Annotated[PlantFault | BrokerOutage | WanPartition, Field(discriminator="kind")]


class DeploymentSpec(_Frozen):
    """A deployment the cloud performs during the run."""

    at_s: float = Field(ge=0)
    edge: str
    kind: Literal["model", "application"]
    name: str
    version: str
    source: str | None = None


class ScenarioSpec(_Frozen):
    name: str
    description: str = ""
    seed: int = 0
    duration_s: float = Field(gt=0)
    clock: Literal["real", "virtual"] = "real"
    """`virtual`: the runner moves time itself, as fast as the CPU allows, and a run is
    reproducible; only bare plants and edges without network I/O may run on it
    (`testbed.scenario.virtual` refuses the rest when the file loads)."""
    plants: list[PlantSpec] = Field(default_factory=list)
    edges: list[EdgeSpec] = Field(default_factory=list)
    broker: BrokerSpec = BrokerSpec()
    cloud: CloudSpec = CloudSpec()
    faults: list[FaultEntry] = Field(default_factory=list)
    deployments: list[DeploymentSpec] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    detection_bound_s: float | None = Field(default=None, gt=0)
    """The longest acceptable fault onset -> first debounced alarm (checked by the tests)."""
    metrics: list[str] = Field(default_factory=list)
    sites: list[SiteProcessSpec] = Field(default_factory=list)
    """Edge sites run as child processes (`testbed.scenario.sites`)."""
    wan: WanSpec | None = None
    federated: FederatedSpec | None = None
    control_link: TsnLinkSpec | None = None
    """A controller -> I/O flow over an emulated link, per schedule (`tsn_link`)."""

    @model_validator(mode="after")
    def _references(self) -> ScenarioSpec:
        plants = {p.name for p in self.plants}
        edges = {e.name for e in self.edges}
        for fault in self.faults:
            if isinstance(fault, PlantFault) and fault.plant not in plants:
                raise ValueError(f"fault on unknown plant {fault.plant!r}; plants: "
                                 f"{sorted(plants)}")
            end = fault.end_s
            if end is not None and end <= fault.start_s:
                raise ValueError(f"fault {fault.kind} ends ({end}) before it starts "
                                 f"({fault.start_s})")
        models = {(m.name, m.version) for m in self.models}
        for dep in self.deployments:
            if dep.edge not in edges:
                raise ValueError(f"deployment to unknown edge {dep.edge!r}")
            if dep.kind == "model" and (dep.name, dep.version) not in models:
                raise ValueError(f"deployment of model {dep.name} {dep.version} that "
                                 f"`models` does not declare")
        return self


def load_scenario(path: str | Path) -> tuple[ScenarioSpec, Path]:
    """Load `scenario.yaml` (or a folder holding one); returns the spec and its folder."""
    p = Path(path)
    file = p / "scenario.yaml" if p.is_dir() else p
    if not file.is_file():
        raise ConfigError(f"no scenario file at {file}")
    try:
        text = _read(file)
        spec, lines = validate_model(ScenarioSpec, text, str(file))
    except YamlError as exc:  # the message already reads file:line: field: problem
        raise ConfigError(str(exc)) from exc
    check_virtual_clock(spec, file, lines)
    for edge in spec.edges:
        app = file.parent / edge.application
        if not app.exists():
            raise ConfigError(f"{file}: edge {edge.name}: application {app} does not exist")
    if spec.clock == "virtual":
        _check_virtual_applications(spec, file, lines)
    for plant in spec.plants:
        if plant.config or plant.series:
            _check_plant(file, spec.seed, plant)
    for i, edge in enumerate(spec.edges):
        if edge.monitor.daq_speed is not None:
            _check_daq_speed(spec, file, lines, i)
    for site in spec.sites:  # each site is a scenario of its own: check it too
        load_scenario(file.parent / site.scenario)
    return spec, file.parent


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(str(file), [YamlIssue((), f"cannot read: {exc.strerror}")]) from exc


def _check_virtual_applications(spec: ScenarioSpec, file: Path, lines: dict[Loc, int]) -> None:
    """On the virtual clock, no edge application may hold an FB that needs the real clock."""
    from testbed.api import load
    from testbed.errors import TestbedError

    for i, edge in enumerate(spec.edges):
        try:
            net = load(file.parent / edge.application, clock="virtual", start=False,
                       types=[file.parent / t for t in edge.types])
        except TestbedError as exc:
            raise ConfigError(f"{file}: edge {edge.name}: application {edge.application}: "
                              f"{exc}") from exc
        try:
            for pin, text in edge.parameters.items():  # e.g. an ONNX FB's MODE
                if "${" in text:
                    continue  # filled in by the running parts (endpoints, model files)
                try:
                    net.write(pin, text)
                except TestbedError as exc:
                    raise ConfigError(f"{file}:{line_of(lines, ('edges', i, 'parameters', pin))}"
                                      f": edges[{i}].parameters.{pin}: {exc}") from exc
            check_virtual_application(net, file, i, edge.name, lines)
        finally:
            net.close()


def _check_daq_speed(spec: ScenarioSpec, file: Path, lines: dict[Loc, int], i: int) -> None:
    """An edge's monitor.daq_speed names a value of its monitor.plant's model."""
    m = spec.edges[i].monitor
    loc: Loc = ("edges", i, "monitor", "daq_speed")
    plant = next((p for p in spec.plants if p.name == m.plant), None)
    if plant is None:
        raise ConfigError(f"{file}:{line_of(lines, loc)}: edges[{i}].monitor.daq_speed: needs "
                          f"monitor.plant naming one of the scenario's plants")
    values = sorted(create_model(plant.model, seed=spec.seed, config=plant.config)
                    .state().values)
    if m.daq_speed not in values:
        raise ConfigError(f"{file}:{line_of(lines, loc)}: edges[{i}].monitor.daq_speed: plant "
                          f"{plant.name} has no value {m.daq_speed!r}; values: "
                          f"{', '.join(values)}")


def _check_plant(file: Path, seed: int, plant: PlantSpec) -> None:
    """The plant's configuration overrides and series names fit its model."""
    try:
        model = create_model(plant.model, seed=seed, config=plant.config)
    except DriverConfigError as exc:
        raise ConfigError(f"{file}: plant {plant.name}: config: {exc}") from exc
    unknown = set(plant.series or ()) - set(model.state().values)
    if unknown:
        raise ConfigError(f"{file}: plant {plant.name}: series: unknown value(s) "
                          f"{sorted(unknown)}; the model has {sorted(model.state().values)}")
