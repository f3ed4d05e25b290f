"""The scripting API: load an FB network, drive it, and watch what it does.

    import testbed
    net = testbed.load("project/App.sys")     # or a .fboot, a YAML app, an Application
    with net.record() as rec:
        net.inject("App.Sub.Fb1.CU")          # one event, then run to quiescence
    rec.events                                # [FiredEvent("App.Sub.Fb1.CUO", {...}), ...]
    net.read("App.Sub.Fb1.CV"); net.write("App.Sub.Fb1.PV", 3); net.advance(250)

Calls are synchronous on the virtual clock (no event loop needed, so they work
inside pytest-asyncio tests). Networks with real I/O run on the real clock inside
`async with`, and use the awaitable twins `ainject`/`aadvance`.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import structlog

from testbed.errors import ConfigError, NetworkError, PathError
from testbed.library import TypeLibrary
from testbed.runtime.clock import RealClock, VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer
from testbed.types import ElementaryType, GenericType
from testbed.types.derived import copy_value

__all__ = ["Application", "FiredEvent", "Network", "Recording", "load"]

log = structlog.get_logger(__name__)

MS = 1_000_000
_QUIESCENCE_ROUNDS = 10_000


@dataclass(frozen=True, slots=True)
class FiredEvent:
    """An output event that fired, with the values of the outputs in its WITH list."""

    path: str
    values: dict[str, object] = field(default_factory=dict)
    time_ns: int = 0


class Recording(Tracer):
    """Every output event fired while recording, in firing order (`events`)."""

    def __init__(self, network: Network) -> None:
        self._network = network
        self.events: list[FiredEvent] = []
        self._changed: asyncio.Event | None = None

    def on_emit(self, fb: FBInstance, event: str) -> None:
        decl = fb.FB_TYPE.interface.event_output(event)
        values = {v: copy_value(fb.get(v)) for v in (decl.with_vars if decl else ())}
        path = f"{self._network.public_name(fb)}.{event}"
        self.events.append(FiredEvent(path, values, fb.resource.clock.now_ns()))
        if self._changed is not None:
            self._changed.set()

    def of(self, path: str) -> list[FiredEvent]:
        """The recorded firings of one output event (`App.Fb.EO`)."""
        return [e for e in self.events if e.path == path]

    async def wait_for(self, path: str, count: int = 1, timeout_s: float = 5.0,
                       ) -> list[FiredEvent]:
        """Wait (real I/O networks) until `path` has fired `count` times; returns them."""
        if self._changed is None:
            self._changed = asyncio.Event()
        try:
            async with asyncio.timeout(timeout_s):
                while len(self.of(path)) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise NetworkError(f"{path} fired {len(self.of(path))} of {count} times "
                               f"within {timeout_s} s") from None
        return self.of(path)[:count]

    def paths(self) -> list[str]:
        return [e.path for e in self.events]

    def clear(self) -> None:
        self.events.clear()


@dataclass
class Application:
    """An application built in Python: FB instances, parameters and connections."""

    name: str = "App"
    fbs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, object] = field(default_factory=dict)
    literals: dict[str, str] = field(default_factory=dict)  # parameters as IEC literal text
    connections: list[tuple[str, str]] = field(default_factory=list)

    def fb(self, name: str, type_name: str, **parameters: object) -> Application:
        """Add an FB instance (dotted names make subapp-like groups) with parameters."""
        self.fbs[name] = type_name
        for pin, value in parameters.items():
            self.parameters[f"{name}.{pin}"] = value
        return self

    def connect(self, source: str, destination: str) -> Application:
        """Connect `FB.OUT` to `FB.IN` (`START.COLD` is the resource's restart FB)."""
        self.connections.append((source, destination))
        return self


class Network:
    """A loaded FB network on an in-process device; addressed by dotted paths."""

    def __init__(self, device: Device, *, aliases: Mapping[str, tuple[str, str]] | None = None,
                 ) -> None:
        self.device = device
        # public FB path -> (resource name, FB instance name)
        self._aliases: dict[str, tuple[str, str]] = dict(aliases or {})
        self._reverse = {v: k for k, v in self._aliases.items()}
        self._task_group: asyncio.TaskGroup | None = None
        self._run_task: asyncio.Task[None] | None = None

    # --- paths ------------------------------------------------------------------------

    def _fb_index(self) -> dict[str, tuple[Resource, FBInstance]]:
        index: dict[str, tuple[Resource, FBInstance]] = {}
        for res in self.device.resources.values():
            for name, fb in res.fbs.items():
                public = self._reverse.get((res.name, name), name)
                index.setdefault(public, (res, fb))
                index.setdefault(f"{res.name}.{name}", (res, fb))
        return index

    def public_name(self, fb: FBInstance) -> str:
        return self._reverse.get((fb.resource.name, fb.name), fb.name)

    def resolve(self, path: str) -> tuple[Resource, FBInstance, str]:
        """`App.Sub.Fb1.PIN` -> (resource, FB instance, pin); PathError names near matches."""
        index = self._fb_index()
        fb_path, dot, pin = path.rpartition(".")
        if dot and fb_path in index:
            res, fb = index[fb_path]
            known = [*(e for e in fb.EI_HANDLERS if not e.startswith("$")), *fb.EO_NAMES,
                     *fb.INPUTS, *fb.OUTPUTS, *fb.INTERNALS]
            if pin not in known:
                near = difflib.get_close_matches(pin, known, n=3, cutoff=0.4)
                raise PathError(f"{fb_path} ({fb.type_name}) has no pin {pin!r}"
                                + (f"; nearest: {', '.join(near)}" if near else
                                   f"; pins: {', '.join(known)}"))
            return res, fb, pin
        candidates = [*index]
        near = difflib.get_close_matches(fb_path or path, candidates, n=3, cutoff=0.4)
        raise PathError(f"no FB for path {path!r}"
                        + (f"; nearest: {', '.join(near)}" if near else ""))

    def fbs(self) -> list[str]:
        return sorted(self._fb_index())

    # --- driving ----------------------------------------------------------------------

    def inject(self, path: str) -> None:
        """Deliver one event at an event input and run every resource to quiescence."""
        res, fb, pin = self.resolve(path)
        if pin not in fb.EI_HANDLERS:
            raise PathError(f"{path} is not an event input of {fb.type_name}")
        res.inject(f"{fb.name}.{pin}")
        self.run_until_idle()

    def run_until_idle(self, max_events: int = 50_000_000) -> int:
        """Drain every resource until all queues are empty; returns events processed.

        Raises NetworkError naming the busy resources when `max_events` is exceeded
        (an application that loops forever, or on purpose for a very long time).
        """
        total = 0
        for _ in range(_QUIESCENCE_ROUNDS):
            for r in self.device.resources.values():
                total += r.run_until_idle(max_events=max(1, max_events - total))
            if all(r.idle for r in self.device.resources.values()):
                return total
            if total >= max_events:
                busy = [r.name for r in self.device.resources.values() if not r.idle]
                raise NetworkError(f"no quiescence after {total} events; still busy: "
                                   f"{', '.join(busy)}")
        raise NetworkError("network did not reach quiescence")

    def read(self, path: str) -> Any:
        """The value of any variable by path (int, float, bool, str, list, struct)."""
        _res, fb, pin = self.resolve(path)
        if fb.var_decl(pin) is None:
            raise PathError(f"{path} is an event, not a variable")
        return fb.get(pin)

    def write(self, path: str, value: object) -> None:
        """Set a variable as a parameter would (kept across RESET); IEC literal text too."""
        res, fb, pin = self.resolve(path)
        decl = fb.var_decl(pin)
        if decl is None:
            raise PathError(f"{path} is an event, not a variable")
        if isinstance(value, str) and not (isinstance(decl.type, ElementaryType)
                                           and decl.type.kind.value in ("string", "char")):
            res.write_parameter(f"{fb.name}.{pin}", value)
            return
        if isinstance(decl.type, ElementaryType):
            value = decl.type.coerce(value)
        elif not isinstance(decl.type, GenericType):
            coerce = getattr(decl.type, "coerce", None)
            value = coerce(value) if callable(coerce) else value
        fb.set(pin, value)
        res.parameters[(fb.name, pin)] = value

    def advance(self, ms: float) -> int:
        """Virtual clock: run everything due in the next `ms` milliseconds, in time order."""
        clock = self.device.clock
        if not isinstance(clock, VirtualClock):
            raise NetworkError("advance() needs the virtual clock; use `await aadvance()`")
        fired = clock.advance(int(ms * MS))
        self.run_until_idle()
        return fired

    @property
    def now_ms(self) -> float:
        return self.device.clock.now_ns() / MS

    @contextlib.contextmanager
    def record(self) -> Iterator[Recording]:
        """Record every output event fired inside the `with` block."""
        rec = Recording(self)
        for res in self.device.resources.values():
            res.add_tracer(rec)
        try:
            yield rec
        finally:
            for res in self.device.resources.values():
                res.remove_tracer(rec)

    def resource(self, name: str | None = None) -> Resource:
        if name is None:
            return next(iter(self.device.resources.values()))
        return self.device.resource(name)

    def close(self) -> None:
        self.device.kill()
        self.device.clock.close()

    # --- real I/O: async twins ----------------------------------------------------------

    async def __aenter__(self) -> Network:
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._run_task = self._task_group.create_task(self.device.run(), name="network")
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.device.shutdown("network closed")
        tg, self._task_group = self._task_group, None
        if tg is not None:
            await tg.__aexit__(et, exc, tb)

    async def ainject(self, path: str, timeout_s: float = 5.0) -> None:
        """Deliver an event and wait until the resources are idle (real or virtual clock)."""
        res, fb, pin = self.resolve(path)
        if pin not in fb.EI_HANDLERS:
            raise PathError(f"{path} is not an event input of {fb.type_name}")
        res.post(fb.handler(pin))
        await self.wait_idle(timeout_s)

    async def wait_idle(self, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            await asyncio.sleep(0)
            for res in list(self.device.resources.values()):
                await res.wait_idle()

    async def aadvance(self, ms: float) -> None:
        """Let `ms` milliseconds pass: really (real clock) or timer by timer (virtual)."""
        clock = self.device.clock
        if isinstance(clock, VirtualClock):
            end = clock.now_ns() + int(ms * MS)
            while True:
                nxt = clock.next_deadline_ns()
                if nxt is None or nxt > end:
                    clock.advance(end - clock.now_ns())
                    break
                clock.advance(nxt - clock.now_ns())
                await asyncio.sleep(0)  # let real I/O tasks react between timers
            self.run_until_idle()
        else:
            await asyncio.sleep(ms / 1000)


def _library(types: Sequence[str | Path], base: Path | None,
             library: TypeLibrary | None) -> TypeLibrary:
    lib = library if library is not None else TypeLibrary.with_native_types()
    dirs = [Path(t) for t in types]
    if base is not None and any(base.rglob("*.fbt")) | any(base.rglob("*.dtp")):
        dirs.insert(0, base)
    if dirs:
        from testbed.fourdiac.typelib import load_type_dirs

        report = load_type_dirs(lib, dirs, override=True, on_error="exclude")
        if report.excluded:
            log.info("types_excluded", count=len(report.excluded),
                     types=[e.name for e in report.excluded])
    return lib


def load(
    source: str | Path | Application,
    *,
    types: Sequence[str | Path] = (),
    clock: Literal["virtual", "real"] = "virtual",
    library: TypeLibrary | None = None,
    start: bool = True,
) -> Network:
    """Load a `.sys`, `.fboot`, YAML application or `Application` into an in-process device.

    Types come from `fb/`, from every `.fbt/.adp/.dtp/.sub` under the file's folder,
    and from `types`. The network is started (E_RESTART fires COLD) unless `start=False`.
    """
    device_clock = VirtualClock() if clock == "virtual" else RealClock()
    if isinstance(source, Application):
        lib = _library(types, None, library)
        device = Device(source.name, library=lib, clock=device_clock)
        net = _from_application(device, source)
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"no such file: {path}")
        lib = _library(types, path.parent if path.suffix in (".sys", ".yaml", ".yml")
                       else None, library)
        device = Device(path.stem, library=lib, clock=device_clock)
        if path.suffix == ".fboot":
            net = _from_fboot(device, path)
        elif path.suffix in (".yaml", ".yml"):
            from testbed.appfile import load_application_yaml

            net = _from_application(device, load_application_yaml(path))
        elif path.suffix == ".sys":
            from testbed.fourdiac.system_loader import network_from_system

            net = network_from_system(device, path)
        else:
            raise ConfigError(f"{path}: unknown application format (want .sys, .fboot, .yaml)")
    if start:
        device.start()
        net.run_until_idle()
    return net


def _from_fboot(device: Device, path: Path) -> Network:
    from testbed.errors import SourceLocation
    from testbed.fourdiac.bootfile import read_boot_file
    from testbed.fourdiac.commands import CommandExecutor

    executor = CommandExecutor(device)
    for cmd in read_boot_file(path):
        if 'Action="START"' in cmd.request:
            continue  # `load` starts the device itself, after callers could set up recording
        response = executor.execute(cmd.destination, cmd.request)
        if not response.ok:
            raise ConfigError(f"Boot file command could not be executed: {response.reason}: "
                              f"{response.detail}", SourceLocation(str(path), cmd.line))
    return Network(device)


def _from_application(device: Device, app: Application) -> Network:
    res = device.create_resource(app.name)
    aliases: dict[str, tuple[str, str]] = {}
    for name, type_name in app.fbs.items():
        res.create_fb(name, type_name)
        aliases[f"{app.name}.{name}"] = (res.name, name)
    net = Network(device, aliases=aliases)
    for pin_path, value in app.parameters.items():
        net.write(f"{app.name}.{pin_path}", value)
    for pin_path, text in app.literals.items():
        res.write_parameter(pin_path, text)
    for source, destination in app.connections:
        res.connect(_local(app, source), _local(app, destination))
    return net


def _local(app: Application, path: str) -> str:
    prefix = app.name + "."
    return path[len(prefix):] if path.startswith(prefix) else path
