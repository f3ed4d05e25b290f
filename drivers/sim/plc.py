"""A simulated PLC: a plant model behind an OPC UA server and a Modbus TCP server.

Every scan (absolute deadlines on a clock, real by default) the PLC
1. reads the commands clients wrote (holding registers, coils, writable OPC UA nodes;
   a value that changed since the last scan wins and is mirrored to the other protocol),
2. hands them to the model (only in RUN; in STOP the actuators get their minimum),
3. steps the model until its time has caught up with the clock,
4. writes the process values out to both servers.

A `comm_outage` fault (target `plc`) closes both servers for its window (clients see
refused connections) and restarts them on the same ports afterwards; the model keeps
running. `Start`/`Stop`/`Reset` are OPC UA methods under `Objects/Plant`.

Lifecycle: `async with SimulatedPlc(model, profile, config) as plc:`; one-shot, the scan
task lives in the PLC's TaskGroup and ends in `aclose()`.
"""

from __future__ import annotations

import asyncio
import enum
import math
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import DriverConfigError, DriverError
from drivers.modbus import (
    DEFAULT_MODBUS_PORT,
    ModbusServer,
    PointValue,
    decode_point,
    encode_point,
)
from drivers.modbus.errors import PointValueError
from drivers.opcua import MethodHandler, OpcUaServer, OpcUaServerConfig
from drivers.sim.clock import Clock, MonotonicClock
from drivers.sim.factory import create_model
from drivers.sim.faults import FaultSpec
from drivers.sim.model import PlantModel, PlantState, ScalarValue, SignalKind, Waveform
from drivers.sim.plc_maps import (
    STATUS_MODEL_TIME,
    STATUS_RUNNING,
    STATUS_SCANS,
    ModbusBinding,
    modbus_register_map,
    opcua_address_space,
)
from drivers.sim.profile import (
    DeviceProfile,
    ProfileError,
    ProfileIssue,
    check_profile,
    load_profile,
)

__all__ = [
    "DEFAULT_OPCUA_PORT",
    "PlcConfig",
    "PlcState",
    "PlcStatistics",
    "SimulatedPlc",
    "default_profile_path",
]

_log = structlog.get_logger(__name__)

DEFAULT_OPCUA_PORT = 4840
_RESTART_RETRY_S = 1.0
"""After an outage, a server that cannot listen again is retried this often."""
_MAX_STEPS_PER_SCAN = 10_000
"""A scan never takes more model steps than this (a long stall is skipped, not replayed)."""
_PROFILES_DIR = Path(__file__).resolve().parents[2] / "configs" / "profiles"


def default_profile_path(model: str) -> Path:
    """The shipped profile of a model kind (`configs/profiles/<model>.yaml`)."""
    return _PROFILES_DIR / f"{model}.yaml"


class PlcConfig(BaseModel):
    """Where the PLC listens and how fast it scans."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    opcua_port: int = Field(default=DEFAULT_OPCUA_PORT, ge=0, le=65535)
    modbus_port: int = Field(default=DEFAULT_MODBUS_PORT, ge=0, le=65535)
    scan_ms: float = Field(default=10.0, gt=0.0, le=60_000.0, allow_inf_nan=False)
    fallback_to_free_port: bool = False
    """When a port is taken, listen on a free one instead (logged); for people, not tests."""
    opcua_path: str = "/testbed/plc"


class PlcState(enum.Enum):
    """Lifecycle of a one-shot simulated PLC."""

    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PlcStatistics:
    """Counters of a simulated PLC."""

    state: PlcState
    program_running: bool
    scans: int
    model_steps: int
    skipped_scans: int
    """Scans skipped because the PLC woke more than a scan late."""
    max_lateness_s: float
    outages: int
    in_outage: bool
    modbus_commands: int
    """Command changes taken from Modbus clients."""
    opcua_commands: int
    """Command changes taken from OPC UA clients."""
    method_calls: int
    encode_errors: int
    """Values that did not fit their Modbus register (skipped, logged once per point)."""
    restart_failures: int
    """Attempts to listen again after an outage that failed (retried every second)."""
    opcua_port: int
    modbus_port: int


class SimulatedPlc:
    """A plant model scanned on a clock and served over OPC UA and Modbus TCP."""

    def __init__(
        self,
        model: PlantModel,
        profile: DeviceProfile,
        config: PlcConfig | None = None,
        *,
        clock: Clock | None = None,
        source: str = "<profile>",
    ) -> None:
        problems = check_profile(profile, model)
        if problems:
            raise ProfileError(source, [ProfileIssue(p.loc, p.message) for p in problems])
        self._model = model
        self._profile = profile
        self._config = config or PlcConfig()
        self._clock: Clock = clock or MonotonicClock()
        self._modbus_bindings = modbus_register_map(profile)
        self._address_space, self._opcua_bindings = opcua_address_space(profile, model)
        self._input_specs = {spec.name: spec for spec in model.inputs}
        self._initial_inputs = {name: model.input_value(name) for name in self._input_specs}
        self._commands: dict[str, ScalarValue] = dict(self._initial_inputs)
        self._seen_modbus: dict[str, PointValue] = {}
        self._seen_opcua: dict[str, object] = {}
        self._published_blocks: dict[str, float] = {}
        self._state = PlcState.NEW
        self._program_running = True
        self._opcua: OpcUaServer | None = None
        self._modbus: ModbusServer | None = None
        self._opcua_port = self._config.opcua_port
        self._modbus_port = self._config.modbus_port
        self._task_group: asyncio.TaskGroup | None = None
        self._scan_task: asyncio.Task[None] | None = None
        self._scan_event = asyncio.Event()
        self._start_s = math.nan
        self._scans = 0
        self._steps = 0
        self._skipped = 0
        self._max_lateness_s = 0.0
        self._outages = 0
        self._in_outage = False
        self._modbus_commands = 0
        self._opcua_commands = 0
        self._method_calls = 0
        self._encode_errors = 0
        self._bad_points: set[str] = set()
        self._commands_dirty = True
        self._restart_failures = 0
        self._retry_at_s = -math.inf

    @classmethod
    def from_profile_file(
        cls,
        path: str | Path,
        config: PlcConfig | None = None,
        *,
        seed: int = 0,
        clock: Clock | None = None,
    ) -> SimulatedPlc:
        """A PLC for the model the profile file names, checked against that model."""
        profile = load_profile(path)
        model = create_model(profile.model, seed=seed)
        profile = load_profile(path, model=model)
        return cls(model, profile, config, clock=clock, source=str(path))

    # -- properties ------------------------------------------------------------------

    @property
    def state(self) -> PlcState:
        """Where the PLC is in its lifecycle."""
        return self._state

    @property
    def model(self) -> PlantModel:
        """The plant model this PLC scans."""
        return self._model

    @property
    def profile(self) -> DeviceProfile:
        """The device profile the servers follow."""
        return self._profile

    @property
    def program_running(self) -> bool:
        """True in RUN (after Start), False in STOP."""
        return self._program_running

    @property
    def opcua_port(self) -> int:
        """The bound OPC UA port (stable across outages)."""
        return self._opcua_port

    @property
    def modbus_port(self) -> int:
        """The bound Modbus TCP port (stable across outages)."""
        return self._modbus_port

    @property
    def opcua_endpoint(self) -> str:
        """The URL OPC UA clients connect to."""
        return f"opc.tcp://{self._config.host}:{self._opcua_port}{self._config.opcua_path}"

    @property
    def modbus_endpoint(self) -> str:
        """`host:port` of the Modbus TCP server."""
        return f"{self._config.host}:{self._modbus_port}"

    @property
    def namespace_index(self) -> int:
        """Index of the plant namespace on the OPC UA server (2: the first registered)."""
        return self._opcua.namespace_index if self._opcua is not None else 2

    def node_id(self, path: str) -> str:
        """NodeId string of a server path such as `Plant/Pump1/Drive/ShaftSpeed`."""
        return f"ns={self.namespace_index};s={path.replace('/', '.')}"

    def browse_path(self, path: str) -> str:
        """Absolute browse path of a server path: `/Objects/2:Plant/2:Pump1/...`."""
        idx = self.namespace_index
        return "/Objects/" + "/".join(f"{idx}:{name}" for name in path.split("/"))

    def opcua_path(self, signal: str, *, command: bool | None = None) -> str:
        """The server path of the OPC UA variable that carries a model signal."""
        for binding in self._opcua_bindings:
            if binding.signal == signal and (command is None or binding.is_command == command):
                return binding.path
        raise DriverConfigError(f"no OPC UA node carries {signal!r} in {self._profile.profile}")

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not PlcState.NEW:
            raise DriverError(f"a SimulatedPlc is one-shot; this one is {self._state.value}")
        self._state = PlcState.RUNNING
        try:
            await self._start_servers(first=True)
            task_group = asyncio.TaskGroup()
            await task_group.__aenter__()
            self._task_group = task_group
            self._start_s = self._clock.now_s()
            self._scan_task = task_group.create_task(self._scan_loop(), name="plc-scan")
        except BaseException:
            await self.aclose()
            raise
        _log.info(
            "plc_started",
            profile=self._profile.profile,
            opcua=self.opcua_endpoint,
            modbus=self.modbus_endpoint,
            scan_ms=self._config.scan_ms,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop scanning and close both servers; idempotent."""
        if self._state is PlcState.CLOSED:
            return
        self._state = PlcState.CLOSED
        try:
            if self._scan_task is not None:
                self._scan_task.cancel()
            if self._task_group is not None:
                await self._task_group.__aexit__(None, None, None)
        finally:
            await self._stop_servers()
            _log.info("plc_stopped", profile=self._profile.profile, scans=self._scans)

    # -- control -------------------------------------------------------------------------

    def add_fault(self, fault: FaultSpec) -> None:
        """Add a fault to the model (a `comm_outage` on `plc` takes the servers down)."""
        self._model.add_fault(fault)

    def start_program(self) -> None:
        """RUN: client commands reach the actuators again."""
        self._program_running = True
        self._commands_dirty = True

    def stop_program(self) -> None:
        """STOP: actuators get their minimum (a pump coasts down); commands are kept."""
        self._program_running = False
        self._commands_dirty = True

    def reset(self) -> None:
        """Initial commands back, every fault removed, RUN."""
        self._model.clear_faults()
        self._commands = dict(self._initial_inputs)
        self._program_running = True
        self._commands_dirty = True

    async def wait_scans(self, count: int) -> PlantState:
        """Wait until `count` more scans have run (the caller owns the deadline)."""
        target = self._scans + count
        while self._scans < target:
            if self._state is not PlcState.RUNNING:
                raise DriverError(f"the PLC is {self._state.value}; no more scans will run")
            self._scan_event.clear()
            await self._scan_event.wait()
        return self._model.state()

    def statistics(self) -> PlcStatistics:
        """A snapshot of the PLC's counters."""
        return PlcStatistics(
            state=self._state,
            program_running=self._program_running,
            scans=self._scans,
            model_steps=self._steps,
            skipped_scans=self._skipped,
            max_lateness_s=self._max_lateness_s,
            outages=self._outages,
            in_outage=self._in_outage,
            modbus_commands=self._modbus_commands,
            opcua_commands=self._opcua_commands,
            method_calls=self._method_calls,
            encode_errors=self._encode_errors,
            restart_failures=self._restart_failures,
            opcua_port=self._opcua_port,
            modbus_port=self._modbus_port,
        )

    # -- servers ---------------------------------------------------------------------------

    async def _start_servers(self, *, first: bool) -> None:
        fallback = first and self._config.fallback_to_free_port
        self._seen_modbus.clear()
        self._seen_opcua.clear()
        self._published_blocks.clear()
        initial = self._modbus_values(self._model.state())
        modbus = ModbusServer(
            [b.point for b in self._modbus_bindings],
            host=self._config.host,
            port=self._modbus_port,
            unit_id=self._profile.modbus.unit_id,
            initial_values=initial,
            fallback_to_free_port=fallback,
        )
        await modbus.__aenter__()
        self._modbus = modbus
        # the values were in place before the server listened; what a client writes from
        # then on (even while the OPC UA server below starts) is a change the next scan takes
        for binding in self._modbus_bindings:
            name = binding.point.name
            if binding.is_command and name in initial:
                self._seen_modbus[name] = decode_point(
                    binding.point, encode_point(binding.point, initial[name]))
        self._modbus_port = modbus.port
        if fallback and self._config.modbus_port not in (0, modbus.port):
            _log.warning("plc_modbus_port_taken", wanted=self._config.modbus_port,
                         port=modbus.port)
        self._opcua = await self._open_opcua(self._opcua_port, fallback=fallback)
        self._opcua_port = self._opcua.port
        await self._publish_opcua(self._model.state(), commands=True)

    async def _open_opcua(self, port: int, *, fallback: bool) -> OpcUaServer:
        handlers = {
            "Plant/Start": self._method(self.start_program),
            "Plant/Stop": self._method(self.stop_program),
            "Plant/Reset": self._method(self.reset),
        }
        config = OpcUaServerConfig(
            host=self._config.host,
            port=port,
            path=self._config.opcua_path,
            name=f"testbed simulated PLC ({self._profile.profile})",
            namespace_uri=self._profile.opcua.namespace_uri,
            publish_current_time=False,
        )
        if fallback and port != 0 and not _port_free(self._config.host, port):
            # asking asyncua to bind a taken port logs a traceback: check first
            _log.warning("plc_opcua_port_taken", wanted=port, fallback="free port")
            return await self._open_opcua(0, fallback=False)
        server = OpcUaServer(config, self._address_space, method_handlers=handlers)
        try:
            await server.start()
        except DriverConfigError:
            if not fallback or port == 0:
                raise
            _log.warning("plc_opcua_port_taken", wanted=port, fallback="free port")
            return await self._open_opcua(0, fallback=False)
        return server

    def _method(self, action: Callable[[], None]) -> MethodHandler:
        async def handler(*inputs: object) -> Sequence[object]:
            del inputs
            self._method_calls += 1
            action()
            return ()

        return handler

    async def _stop_servers(self) -> None:
        opcua, self._opcua = self._opcua, None
        modbus, self._modbus = self._modbus, None
        try:
            if modbus is not None:
                await modbus.aclose()
        finally:
            if opcua is not None:
                await opcua.aclose()

    # -- the scan --------------------------------------------------------------------------

    async def _scan_loop(self) -> None:
        scan_s = self._config.scan_ms / 1000.0
        start_s = self._start_s
        index = 0
        while True:
            index += 1
            due_s = start_s + index * scan_s
            await self._clock.sleep_until(due_s)
            now_s = self._clock.now_s()
            lateness = now_s - due_s
            self._max_lateness_s = max(self._max_lateness_s, lateness)
            if lateness >= scan_s:
                skipped = int(lateness // scan_s)
                self._skipped += skipped
                index += skipped
            await self._scan(now_s - start_s)

    async def _scan(self, elapsed_s: float) -> None:
        commands_changed = self._read_commands()
        if commands_changed or self._commands_dirty:
            self._apply_commands()
        model = self._model
        stepped = 0
        while model.time_s + model.dt_s <= elapsed_s + 1e-9 and stepped < _MAX_STEPS_PER_SCAN:
            model.step()
            stepped += 1
        self._steps += stepped
        if stepped == _MAX_STEPS_PER_SCAN:
            _log.warning("plc_scan_step_limit", steps=stepped, model_time_s=model.time_s)
        state = model.state()
        await self._follow_outage(state)
        if not self._in_outage:
            mirror = commands_changed or self._commands_dirty
            self._publish_modbus(state, commands=mirror)
            await self._publish_opcua(state, commands=mirror)
        self._commands_dirty = False
        self._scans += 1
        self._scan_event.set()

    async def _follow_outage(self, state: PlantState) -> None:
        if state.comm_outage and not self._in_outage:
            self._in_outage = True
            self._outages += 1
            _log.warning("plc_comm_outage_started", model_time_s=state.time_s)
            await self._stop_servers()
        elif not state.comm_outage and self._in_outage:
            if self._clock.now_s() < self._retry_at_s:
                return
            try:
                await self._start_servers(first=False)
            except DriverError as exc:  # e.g. someone took the port meanwhile: try again
                await self._stop_servers()
                self._restart_failures += 1
                self._retry_at_s = self._clock.now_s() + _RESTART_RETRY_S
                _log.warning("plc_restart_failed", error=str(exc), retry_in_s=_RESTART_RETRY_S)
                return
            self._in_outage = False
            _log.info("plc_comm_outage_ended", model_time_s=state.time_s)

    def _read_commands(self) -> bool:
        """Take command values clients changed since the last scan; True if any did."""
        changed = False
        modbus = self._modbus
        if modbus is not None:
            for binding in self._modbus_bindings:
                if not binding.is_command:
                    continue
                name = binding.point.name
                value = modbus.get(name)
                if name in self._seen_modbus and value != self._seen_modbus[name]:
                    self._commands_dirty = True  # mirror the (maybe clamped) command back
                    if self._take_command(binding.signal, value):
                        changed = True
                        self._modbus_commands += 1
                self._seen_modbus[name] = value
        opcua = self._opcua
        if opcua is not None:
            for ua_binding in self._opcua_bindings:
                if not ua_binding.is_command:
                    continue
                value_ua = opcua.read_value(ua_binding.path)
                seen = self._seen_opcua.get(ua_binding.path)
                if ua_binding.path in self._seen_opcua and value_ua != seen:
                    self._commands_dirty = True
                    if self._take_command(ua_binding.signal, value_ua):
                        changed = True
                        self._opcua_commands += 1
                self._seen_opcua[ua_binding.path] = value_ua
        return changed

    def _take_command(self, signal: str, value: object) -> bool:
        spec = self._input_specs.get(signal)
        if spec is None or not isinstance(value, bool | int | float):
            return False
        command: ScalarValue
        if spec.kind is SignalKind.BOOL:
            command = bool(value)
        else:
            number = float(value)
            if not math.isfinite(number):
                return False
            if spec.minimum is not None:
                number = max(spec.minimum, number)
            if spec.maximum is not None:
                number = min(spec.maximum, number)
            command = number
        if self._commands.get(signal) == command:
            return False
        self._commands[signal] = command
        return True

    def _apply_commands(self) -> None:
        for name, spec in self._input_specs.items():
            if self._program_running:
                value = self._commands[name]
            elif spec.kind is SignalKind.BOOL:
                value = False
            else:
                value = spec.minimum if spec.minimum is not None else 0.0
            self._model.set_input(name, value)

    def _value_of(self, state: PlantState, binding_signal: str, is_command: bool) -> ScalarValue:
        if is_command:
            return self._commands[binding_signal]
        return state[binding_signal]

    def _publish_modbus(self, state: PlantState, *, commands: bool) -> None:
        modbus = self._modbus
        if modbus is None:
            return
        for binding in self._modbus_bindings:
            if binding.is_command and not commands:
                continue
            self._set_point(modbus, binding, self._value_of(state, binding.signal,
                                                             binding.is_command))
        if not commands:
            return  # a client's write since this scan read the commands is the next scan's
        for binding in self._modbus_bindings:
            if binding.is_command:
                self._seen_modbus[binding.point.name] = modbus.get(binding.point.name)

    def _modbus_values(self, state: PlantState) -> dict[str, PointValue]:
        """Every point's value (commands too) that encodes; the others are logged once."""
        values: dict[str, PointValue] = {}
        for binding in self._modbus_bindings:
            point = binding.point
            value = _modbus_value(self._value_of(state, binding.signal, binding.is_command),
                                  point.table.is_bit)
            try:
                encode_point(point, value)
            except PointValueError as exc:
                self._point_encode_failed(binding, exc)
                continue
            values[point.name] = value
        return values

    def _set_point(self, modbus: ModbusServer, binding: ModbusBinding, value: ScalarValue) -> None:
        point = binding.point
        try:
            modbus.set(point.name, _modbus_value(value, point.table.is_bit))
        except PointValueError as exc:
            self._point_encode_failed(binding, exc)

    def _point_encode_failed(self, binding: ModbusBinding, exc: PointValueError) -> None:
        self._encode_errors += 1
        point = binding.point
        if point.name not in self._bad_points:
            self._bad_points.add(point.name)
            _log.warning("plc_point_encode_failed", point=point.name,
                         signal=binding.signal, error=str(exc))

    async def _publish_opcua(self, state: PlantState, *, commands: bool) -> None:
        opcua = self._opcua
        if opcua is None:
            return
        values: dict[str, object] = {}
        for binding in self._opcua_bindings:
            if binding.array:
                block = self._new_block(binding.path, state.waveforms[binding.signal])
                if block is not None:
                    values[binding.path] = block
                continue
            if binding.is_command and not commands:
                continue
            value = self._value_of(state, binding.signal, binding.is_command)
            values[binding.path] = _opcua_value(value, binding.data_type)
        values[STATUS_RUNNING] = self._program_running
        values[STATUS_SCANS] = self._scans + 1
        values[STATUS_MODEL_TIME] = float(state.time_s)
        await opcua.write_values(values)
        if commands:
            for binding in self._opcua_bindings:
                if binding.is_command:
                    self._seen_opcua[binding.path] = values[binding.path]


    def _new_block(self, path: str, block: Waveform) -> object | None:
        """The block's samples once they are all new since the last published block.

        Blocks overlap from scan to scan (a sliding window); publishing only disjoint
        ones gives subscribers each sample once, at a rate the sample rate sets, not
        the scan rate.
        """
        last = self._published_blocks.get(path)
        span_s = len(block.samples) / block.sample_rate_hz
        if last is not None and block.end_time_s - last < span_s - 0.5 / block.sample_rate_hz:
            return None
        self._published_blocks[path] = block.end_time_s
        return block.samples


def _modbus_value(value: ScalarValue, is_bit: bool) -> PointValue:
    if is_bit:
        return bool(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _opcua_value(value: ScalarValue, data_type: str) -> object:
    if data_type == "Boolean":
        return bool(value)
    if data_type in ("Float", "Double"):
        return float(value)
    return int(value)


def _port_free(host: str, port: int) -> bool:
    """True when a TCP listener could bind `host:port` now (as asyncio would, reuse on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
