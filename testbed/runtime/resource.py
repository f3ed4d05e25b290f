"""The resource: one FIFO event queue drained by one task, run to completion.

Queue entries are bound handler methods (`fb._ev_X`), so dispatching an event is
one `popleft()` and one call. Output events append their destinations' handlers
to the back of the queue (breadth-first, FIFO, in connection-creation order).
Service FBs and timers re-enter from other tasks or threads through the bounded
external queue (`post`), which the drain loop moves in between slices. An I/O
callback on the resource's own loop (a datagram, a TCP read) may use
`post_from_loop` instead: when the drain task sleeps idle and no resource is
draining on this thread, the callback drains the resource itself, at once, with
the same rules (one external entry per round, then its consequences), which saves
the wake-up and task switch of a hand-off; the drain task never runs concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import structlog

from testbed.errors import EventlessLoopError, NetworkError, PathError
from testbed.runtime.adapters import event_attr
from testbed.runtime.instance import Cell, FBInstance, attr_name
from testbed.types import ElementaryType, GenericType, Kind, parse_value

if TYPE_CHECKING:
    from testbed.library import TypeLibrary
    from testbed.runtime.clock import Clock
    from testbed.runtime.device import Device

__all__ = ["Connection", "ExternalOverflowPolicy", "Resource", "ResourceState",
           "ResourceStatistics", "TestReport", "Tracer", "split_pin"]

log = structlog.get_logger(__name__)

Thunk = Callable[[], None]
ExternalOverflowPolicy = Literal["drop_newest", "drop_oldest"]

_SLICE = 256  # events between checks of the external queue and the time budget
_BUDGET_S = 0.005  # one drain slice before other tasks get the loop
_SHORT_CHAIN = 16  # consequences of an I/O event run one by one up to this many


class _Draining(threading.local):
    """How many resources are draining on this thread (nested: a handler fed another)."""

    def __init__(self) -> None:
        self.depth = 0  # an instance attribute: read on every post_from_loop and drain


_draining = _Draining()


class ResourceState(enum.Enum):
    IDLE = "idle"  # created, never started
    RUNNING = "running"
    STOPPED = "stopped"
    KILLED = "killed"


# hot-path comparisons use these: an enum member looked up on its class costs ~150 ns (3.11)
_RUNNING = ResourceState.RUNNING
_ENDED = frozenset({ResourceState.STOPPED, ResourceState.KILLED})


@dataclass(frozen=True, slots=True)
class ResourceStatistics:
    """Counters of one resource (`Resource.statistics()`)."""

    events_processed: int
    queue_length: int
    queue_high_water: int
    queue_capacity: int
    events_dropped: int
    external_posted: int
    external_dropped: int
    external_capacity: int
    faults: int


@dataclass(frozen=True, slots=True)
class Connection:
    """A connection as created (source and destination as `FB.PIN`)."""

    source: str
    destination: str
    kind: Literal["event", "data", "adapter"]


@dataclass(slots=True)
class TestReport:
    """Checks counted by TEST_CONDITION FBs (FORTE prints `N tests executed, M failed`)."""

    __test__ = False  # not a pytest class
    executed: int = 0
    failed: int = 0

    def summary(self) -> str:
        return f"{self.executed} tests executed, {self.failed} failed"


class Tracer:
    """Receives every output event fired (and input event taken) while installed."""

    def on_emit(self, fb: FBInstance, event: str) -> None:
        """An output event fired; its WITH outputs hold the published values."""

    def on_input(self, fb: FBInstance, event: str) -> None:
        """An input event is being taken by `fb`."""


def split_pin(path: str) -> tuple[str, str]:
    """`A.B.PIN` -> (`A.B`, `PIN`); FB names may contain dots, pins never do."""
    fb, dot, pin = path.rpartition(".")
    if not dot or not fb or not pin:
        raise PathError(f"{path!r} is not of the form FB.PIN")
    return fb, pin


class Resource:
    """An IEC 61499 resource: FB instances, their connections and the event queue."""

    def __init__(
        self,
        name: str,
        library: TypeLibrary,
        clock: Clock,
        *,
        device: Device | None = None,
        capacity: int = 65_536,
        external_capacity: int = 4_096,
        external_policy: ExternalOverflowPolicy = "drop_newest",
        restart_fb: str | None = "START",
    ) -> None:
        if capacity < 1 or external_capacity < 1:
            raise ValueError("queue capacities must be positive")
        self.name = name
        self.library = library
        self.clock = clock
        self.device = device
        self.capacity = capacity
        self.external_capacity = external_capacity
        self.external_policy: ExternalOverflowPolicy = external_policy
        self.state = ResourceState.IDLE
        self.fbs: dict[str, FBInstance] = {}
        self.connections: list[Connection] = []
        self.parameters: dict[tuple[str, str], object] = {}
        self.stopped_fbs: set[str] = set()  # FBs stopped or killed one by one (management)
        self._queue: deque[Thunk] = deque()
        self._external: deque[Thunk] = deque()
        self._out_cells: dict[tuple[str, str], Cell] = {}
        self._tracers: list[Tracer] = []
        self._processed = 0
        self._high_water = 0
        self._dropped = 0
        self._ext_posted = 0
        self._ext_dropped = 0
        self._faults = 0
        self._overflowing = False
        self._started_once = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._idle_event: asyncio.Event | None = None  # set while the run task sleeps idle
        self._sleeping = False
        self._wake_sent = False  # a wake-up from another thread is on its way to the loop
        self._room: asyncio.Event | None = None  # set when the external queue drains
        self.restart_fb = restart_fb
        self.test_report: TestReport = device.test_report if device is not None else TestReport()
        self._console: Callable[[str], None] = _print_line
        if restart_fb:
            self.create_fb(restart_fb, "E_RESTART")

    @property
    def console(self) -> Callable[[str], None]:
        """Where FORTE-style plain lines go (TEST_CONDITION, OUT_ANY_CONSOLE): the device's."""
        return self.device.console if self.device is not None else self._console

    @console.setter
    def console(self, sink: Callable[[str], None]) -> None:
        self._console = sink

    # --- FB instances ---------------------------------------------------------------

    def create_fb(self, name: str, type_name: str) -> FBInstance:
        """Create an FB instance of a library type (composites are flattened)."""
        if name in self.fbs:
            raise NetworkError(f"resource {self.name} already has an FB named {name!r}")
        factory = self.library.instance_factory(type_name)
        fb = factory(name, self)
        self.fbs[name] = fb
        if self._tracers and fb.TRACED is not None:
            fb.__class__ = fb.TRACED
        if self.state is ResourceState.RUNNING:
            fb.on_resource_start(warm=False)
        return fb

    def delete_fb(self, name: str) -> None:
        """Delete an FB and every connection touching it; others keep their state."""
        fb = self.fb(name)
        fb.on_delete()
        for conn in [c for c in self.connections
                     if split_pin(c.source)[0] == name or split_pin(c.destination)[0] == name]:
            self.disconnect(conn.source, conn.destination)
        for key in [k for k in self._out_cells if k[0] == name]:
            del self._out_cells[key]
        for key in [k for k in self.parameters if k[0] == name]:
            del self.parameters[key]
        del self.fbs[name]
        self.stopped_fbs.discard(name)
        self._purge(fb)  # queued events for the deleted FB are discarded, as in FORTE

    def fb(self, name: str) -> FBInstance:
        try:
            return self.fbs[name]
        except KeyError:
            raise PathError(_unknown(f"FB {name!r} in resource {self.name}", name,
                                     self.fbs)) from None

    def resolve(self, path: str) -> tuple[FBInstance, str]:
        fb_name, pin = split_pin(path)
        return self.fb(fb_name), pin

    # --- connections ----------------------------------------------------------------

    def connect(self, source: str, destination: str) -> Connection:
        """Create an event or data connection from `FB.OUT` to `FB.IN`."""
        src, spin = self.resolve(source)
        dst, dpin = self.resolve(destination)
        if spin in src.ADAPTERS and dpin in dst.ADAPTERS:
            return self._connect_adapter(source, destination, src, spin, dst, dpin)
        if spin in src.EO_NAMES:
            if dpin not in dst.EI_HANDLERS:
                raise NetworkError(f"{destination}: no event input {dpin!r} on "
                                   f"{dst.type_name}; event outputs connect to event inputs")
            conn = Connection(source, destination, "event")
            self.connections.append(conn)
            self._rewire_event_output(src, spin)
            return conn
        sdecl = src.OUTPUTS.get(spin)
        if sdecl is None:
            raise PathError(_unknown(f"output {spin!r} of {src.name} ({src.type_name})", spin,
                                     [*src.EO_NAMES, *src.OUTPUTS]))
        ddecl = dst.INPUTS.get(dpin)
        if ddecl is None:
            raise PathError(_unknown(f"data input {dpin!r} of {dst.name} ({dst.type_name})",
                                     dpin, dst.INPUTS))
        if getattr(dst, "_i_" + attr_name(dpin)) is not None:
            raise NetworkError(f"{destination} already has a data connection (no fan-in)")
        _check_types(source, sdecl.type, destination, ddecl.type)
        key = (src.name, spin)
        cell = self._out_cells.get(key)
        if cell is None:
            value = src.get(spin)
            if isinstance(sdecl.type, GenericType) and isinstance(ddecl.type, ElementaryType):
                # an ANY output takes the type of what it drives, as in FORTE
                src.__dict__.setdefault("_anytype", {}).setdefault(spin, ddecl.type)
                if value is None:
                    value = ddecl.type.default
                    src.set(spin, value)
            cell = Cell(value)
            self._out_cells[key] = cell
            setattr(src, "_o_" + attr_name(spin), cell)
        setattr(dst, "_i_" + attr_name(dpin), cell)
        if isinstance(ddecl.type, GenericType) and isinstance(sdecl.type, ElementaryType):
            dst.__dict__.setdefault("_anytype", {})[dpin] = sdecl.type
        conn = Connection(source, destination, "data")
        self.connections.append(conn)
        return conn

    def _connect_adapter(self, source: str, destination: str, src: FBInstance, spin: str,
                         dst: FBInstance, dpin: str) -> Connection:
        """Plug to socket: one shared data object, events wired both ways."""
        a, b = src.ADAPTERS[spin], dst.ADAPTERS[dpin]
        if a.adapter.name != b.adapter.name:
            raise NetworkError(f"cannot connect adapter {source} ({a.adapter.name}) to "
                               f"{destination} ({b.adapter.name})")
        if a.is_plug == b.is_plug:
            raise NetworkError(f"adapter connection {source} -> {destination} must join a "
                               "plug and a socket")
        for fb, pin in ((src, spin), (dst, dpin)):
            if any(c.kind == "adapter" and f"{fb.name}.{pin}" in (c.source, c.destination)
                   for c in self.connections):
                raise NetworkError(f"adapter {fb.name}.{pin} is already connected")
        plug, plug_pin, sock, sock_pin = (src, spin, dst, dpin) if a.is_plug else (
            dst, dpin, src, spin)
        setattr(sock, attr_name(sock_pin), getattr(plug, attr_name(plug_pin)))
        conn = Connection(source, destination, "adapter")
        self.connections.append(conn)
        for fb in (src, dst):
            for ev in fb.EO_NAMES:
                if "." in ev:
                    self._rewire_event_output(fb, ev)
        return conn

    def _adapter_peer(self, fb: FBInstance, adapter: str) -> tuple[FBInstance, str] | None:
        here = f"{fb.name}.{adapter}"
        for c in self.connections:
            if c.kind != "adapter":
                continue
            if c.source == here:
                return self.resolve(c.destination)
            if c.destination == here:
                return self.resolve(c.source)
        return None

    def disconnect(self, source: str, destination: str) -> None:
        conn = next((c for c in self.connections
                     if c.source == source and c.destination == destination), None)
        if conn is None:
            raise PathError(f"no connection {source} -> {destination} in resource {self.name}")
        self.connections.remove(conn)
        src, spin = self.resolve(source)
        dst, dpin = self.resolve(destination)
        if conn.kind == "event":
            self._rewire_event_output(src, spin)
            return
        if conn.kind == "adapter":
            sock, sock_pin = (dst, dpin) if src.ADAPTERS[spin].is_plug else (src, spin)
            setattr(sock, attr_name(sock_pin), sock.ADAPTERS[sock_pin].data.new())
            for fb in (src, dst):
                for ev in fb.EO_NAMES:
                    if "." in ev:
                        self._rewire_event_output(fb, ev)
            return
        setattr(dst, "_i_" + attr_name(dpin), None)
        if not any(c.kind == "data" and c.source == source for c in self.connections):
            self._out_cells.pop((src.name, spin), None)
            setattr(src, "_o_" + attr_name(spin), None)

    def connect_internal(self, source: str, destination: str) -> Connection:
        """An event connection to an internal handler (`FB.$EO`, composite boundaries).

        Kept in the same ordered list as user connections, so fan-out follows creation
        order as in FORTE; management queries do not list these.
        """
        src, spin = self.resolve(source)
        conn = Connection(source, destination, "event")
        self.connections.append(conn)
        self._rewire_event_output(src, spin)
        return conn

    def _rewire_event_output(self, fb: FBInstance, event: str) -> None:
        prefix = f"{fb.name}.{event}"
        targets = tuple(self.resolve_handler(c.destination) for c in self.connections
                        if c.kind == "event" and c.source == prefix
                        and split_pin(c.destination)[0] not in self.stopped_fbs)
        adapter, dot, adapter_event = event.partition(".")
        if dot and adapter in fb.ADAPTERS:
            peer = self._adapter_peer(fb, adapter)
            if peer is not None:
                targets = (*targets, peer[0].handler(f"{peer[1]}.{adapter_event}"))
        setattr(fb, "_e_" + event_attr(event), targets)

    def resolve_handler(self, path: str) -> Thunk:
        fb, pin = self.resolve(path)
        return fb.handler(pin)

    def _rewire_all(self) -> None:
        for fb in self.fbs.values():
            for ev in fb.EO_NAMES:
                self._rewire_event_output(fb, ev)

    # --- parameters and variables ---------------------------------------------------

    def write_parameter(self, path: str, text: str) -> object:
        """Set an input from literal text, as a boot-file or management WRITE does."""
        fb, pin = self.resolve(path)
        decl = fb.var_decl(pin)
        if decl is None:
            raise PathError(_unknown(f"variable {pin!r} of {fb.name}", pin,
                                     [*fb.INPUTS, *fb.OUTPUTS, *fb.INTERNALS]))
        tv = parse_value(text, decl.type)
        if isinstance(decl.type, GenericType) and tv.type is not None:
            fb.__dict__.setdefault("_anytype", {})[pin] = tv.type
        value = tv.value if not isinstance(decl.type, ElementaryType) else decl.type.coerce(
            tv.value)
        fb.set(pin, value)
        self.parameters[(fb.name, pin)] = value
        return value

    def read(self, path: str) -> object:
        fb, pin = self.resolve(path)
        if fb.var_decl(pin) is None:
            raise PathError(_unknown(f"variable {pin!r} of {fb.name}", pin,
                                     [*fb.INPUTS, *fb.OUTPUTS, *fb.INTERNALS]))
        return fb.get(pin)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) the resource: E_RESTART fires COLD the first time, WARM after."""
        if self.state is ResourceState.RUNNING:
            return
        warm = self._started_once
        self._started_once = True
        self.state = ResourceState.RUNNING
        for fb in list(self.fbs.values()):
            fb.on_resource_start(warm)
        restart = self.fbs.get(self.restart_fb) if self.restart_fb else None
        if restart is not None:
            restart.emit("WARM" if warm else "COLD")  # type: ignore[attr-defined]
        self._kick()

    def stop(self) -> None:
        """Stop: E_RESTART fires STOP (processed), then pending events are discarded."""
        if self.state is not ResourceState.RUNNING:
            return
        restart = self.fbs.get(self.restart_fb) if self.restart_fb else None
        if restart is not None:
            restart.emit("STOP")  # type: ignore[attr-defined]
            self.run_until_idle()
        self.state = ResourceState.STOPPED
        for fb in list(self.fbs.values()):
            fb.on_resource_stop()
        self._queue.clear()
        self._external.clear()
        self._kick()

    def kill(self) -> None:
        """Stop at once: no STOP event, pending events discarded."""
        self.state = ResourceState.KILLED
        for fb in list(self.fbs.values()):
            fb.on_resource_stop()
        self._queue.clear()
        self._external.clear()
        self._kick()

    def reset(self) -> None:
        """Back to initial values, parameters re-applied, as FORTE's RESET."""
        if self.state is ResourceState.RUNNING:
            self.kill()
        for fb in self.fbs.values():
            fb.reset_variables()
        for (fb_name, pin), value in self.parameters.items():
            self.fbs[fb_name].set(pin, value)
        for (fb_name, pin), cell in self._out_cells.items():
            cell.v = self.fbs[fb_name].get(pin)
        self.state = ResourceState.IDLE
        self._started_once = False

    def stop_fb(self, name: str) -> None:
        """Stop one FB: events to it are discarded (FORTE), its timers and I/O stop."""
        fb = self.fb(name)
        if name in self.stopped_fbs:
            return
        self.stopped_fbs.add(name)
        self._rewire_all()
        self._purge(fb)
        fb.on_resource_stop()

    def start_fb(self, name: str) -> None:
        """Start an FB stopped with `stop_fb`; it takes events again."""
        fb = self.fb(name)
        if name not in self.stopped_fbs:
            return
        self.stopped_fbs.discard(name)
        self._rewire_all()
        if self.state is ResourceState.RUNNING:
            fb.on_resource_start(warm=True)

    def reset_fb(self, name: str) -> None:
        """One FB back to its initial values with its parameters re-applied."""
        fb = self.fb(name)
        fb.reset_variables()
        for (fb_name, pin), value in self.parameters.items():
            if fb_name == name:
                fb.set(pin, value)

    def _purge(self, fb: FBInstance) -> None:
        self._queue = deque(h for h in self._queue if getattr(h, "__self__", None) is not fb)
        for other in self.fbs.values():
            other._q = self._queue

    # --- events ---------------------------------------------------------------------

    def inject(self, path: str) -> None:
        """Queue event input `FB.EI` as if a connection had fired it."""
        self._queue.append(self.resolve_handler(path))
        self._kick()

    def post(self, thunk: Thunk) -> bool:
        """Hand work to the resource from any task or thread (the external queue).

        Returns False when the external queue was full and the policy dropped the
        new entry (counted). The thunk runs inside the resource, between events.
        """
        if not self._enqueue_external(thunk):
            return False
        if self._sleeping:
            self._wake_from_any_thread()
        return True

    def post_from_loop(self, thunk: Thunk) -> bool:
        """Post from an I/O callback; run it at once when the resource sleeps idle.

        On the resource's loop thread, with its drain task asleep, both queues empty and
        no resource draining on this thread (so never from inside FB logic), the caller
        runs the entry and its consequences as the task would have after a wake-up: no
        wake-up, no task switch. Otherwise this is `post`.
        """
        draining = _draining
        if (self._sleeping and not self._external and not self._queue and not draining.depth
                and self.state is _RUNNING
                and threading.get_ident() == self._loop_thread):
            self._ext_posted += 1
            draining.depth = 1  # run_until_idle's work, its checks already made above
            try:
                self._processed += self._run_from_idle(thunk)
            finally:
                draining.depth = 0
            wake = self._wake
            if wake is not None and (self._queue or self._external):
                wake.set()  # the budget ran out: the task goes on with the rest
            return True
        return self.post(thunk)

    def _enqueue_external(self, thunk: Thunk) -> bool:
        if self.state in _ENDED:
            return False
        ext = self._external
        if len(ext) >= self.external_capacity:
            self._ext_dropped += 1
            if self._ext_dropped == 1 or self._ext_dropped % 1000 == 0:
                log.warning("external_queue_full", resource=self.name,
                            policy=self.external_policy, dropped=self._ext_dropped)
            if self.external_policy == "drop_newest":
                return False
            ext.popleft()
        ext.append(thunk)
        self._ext_posted += 1
        return True

    async def put(self, thunk: Thunk, timeout_s: float | None = None) -> None:
        """Post from a coroutine, waiting for room instead of dropping (back-pressure)."""
        async with asyncio.timeout(timeout_s):
            while len(self._external) >= self.external_capacity:
                room = self._room_event()
                await room.wait()
        self.post(thunk)

    def _room_event(self) -> asyncio.Event:
        if self._room is None:
            self._room = asyncio.Event()
        self._room.clear()
        return self._room

    def _wake_from_any_thread(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        elif not self._wake_sent:
            # one wake-up per sleep: a burst of posts from a worker thread (a batch of
            # inference results) would otherwise write the loop's self-pipe once each,
            # and every write hands the GIL to the loop thread and back
            self._wake_sent = True
            with contextlib.suppress(RuntimeError):  # loop closed while shutting down
                loop.call_soon_threadsafe(wake.set)

    def _kick(self) -> None:
        if self._wake is not None and threading.get_ident() == self._loop_thread:
            self._wake.set()

    def _queue_grew(self, fb: FBInstance) -> None:
        """Slow path of an emit: track the high-water mark, drop the newest past capacity."""
        q = self._queue
        n = len(q)
        if n > self._high_water:
            self._high_water = min(n, self.capacity)
        if n > self.capacity:
            excess = n - self.capacity
            for _ in range(excess):
                q.pop()
            self._dropped += excess
            if not self._overflowing:
                self._overflowing = True
                log.error("event_queue_full", resource=self.name, fb=fb.name,
                          capacity=self.capacity, dropped=self._dropped)
        fb._wm = min(self._high_water, self.capacity)

    def run_until_idle(self, max_events: int | None = None, budget_s: float | None = None) -> int:
        """Process events until both queues are empty (or a budget runs out); returns count.

        Synchronous and re-entrancy-safe for the virtual clock and the scripting API;
        the asyncio task in `run` calls it in time-bounded slices.
        """
        if self.state is not _RUNNING:
            self._external.clear()
            return 0
        _draining.depth += 1
        try:
            total = self._drain(max_events, budget_s)
        finally:
            _draining.depth -= 1
        self._processed += total
        return total

    def _run_from_idle(self, thunk: Thunk) -> int:
        """Run one external entry that reached an idle resource, then its consequences.

        They are usually a few events: they run one by one here, without `_drain`'s
        slice set-up and the IndexError that ends a slice; a longer chain goes on in
        `_drain`, its consequences still before the next external entry.
        """
        try:
            thunk()
        except Exception as exc:  # an FB's external work failed: report, go on
            self._fault(exc, thunk)
        q = self._queue
        done = 0
        while q and done < _SHORT_CHAIN and q is self._queue:
            handler = q.popleft()
            try:
                handler()
            except Exception as exc:  # an FB raised (an event-less loop too): report, go on
                self._fault(exc, None)
            done += 1
        if self._queue or self._external:  # a long chain, a rebuilt queue or a new entry
            return done + self._drain(None, _BUDGET_S)
        self._overflowing = False
        return done

    def _drain(self, max_events: int | None, budget_s: float | None) -> int:
        q = self._queue
        ext = self._external
        pop = q.popleft
        total = 0
        deadline = time.perf_counter() + budget_s if budget_s is not None else None
        steps = range(_SLICE)
        while True:
            if q is not self._queue:  # an FB was deleted and the queue rebuilt
                q = self._queue
                pop = q.popleft
            if ext and not q:
                # one external entry per round, then all its consequences (also past a
                # slice or a time budget): each external stimulus (a datagram, a timer, an
                # inference result) runs to completion before the next one overwrites the
                # outputs it published
                self._run_external()
            if q is not self._queue:  # an FB was deleted and the queue rebuilt
                q = self._queue
                pop = q.popleft
            n = -1
            try:
                for n in steps:  # noqa: B007 - n tells where the queue ran dry
                    pop()()
                total += _SLICE
            except IndexError as exc:
                if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                    total += n  # the queue ran dry at step n
                    if not ext:
                        self._overflowing = False
                        break
                    continue
                total += n + 1
                self._fault(exc, None)
            except EventlessLoopError as exc:
                total += n + 1
                self._fault(exc, None)
            except Exception as exc:  # an FB raised: FORTE would crash; we log and go on
                total += n + 1
                self._fault(exc, None)
            if self.state is not _RUNNING:
                break
            if max_events is not None and total >= max_events:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return total

    def _run_external(self) -> None:
        """Run the oldest external entry; a failing one is reported, never raised."""
        thunk = self._external.popleft()
        try:
            thunk()
        except Exception as exc:  # an FB's external work failed: report, go on
            self._fault(exc, thunk)
        if self._room is not None:
            self._room.set()

    def _fault(self, exc: BaseException, thunk: Thunk | None) -> None:
        self._faults += 1
        fb = _failing_fb(exc) or getattr(thunk, "__self__", None)
        log.error("fb_event_failed", resource=self.name,
                  fb=getattr(fb, "name", None), type=getattr(fb, "type_name", None),
                  error=f"{type(exc).__name__}: {exc}")

    @property
    def idle(self) -> bool:
        return not self._queue and not self._external

    async def run(self) -> None:
        """Drain the queues while the resource runs; owned by the device's TaskGroup."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._idle_event = asyncio.Event()
        try:
            while True:
                if self.state is _RUNNING:
                    self.run_until_idle(budget_s=_BUDGET_S)
                if self.state is _RUNNING and not self.idle:
                    await asyncio.sleep(0)  # let other tasks run between slices
                    continue
                self._sleeping = True
                try:
                    if self.idle or self.state is not _RUNNING:
                        self._idle_event.set()
                        await self._wake.wait()
                finally:
                    self._sleeping = False
                    self._wake_sent = False
                    self._idle_event.clear()
                self._wake.clear()
        finally:
            self._wake = None
            self._idle_event = None
            self._loop = None

    async def wait_idle(self) -> None:
        """Wait until the run task has drained both queues and sleeps (needs `run()`)."""
        while not (self._idle_event is not None and self._idle_event.is_set() and self.idle):
            event = self._idle_event
            if event is None:
                raise RuntimeError(f"resource {self.name} is not running its task")
            self._kick()
            await event.wait()
            if not self.idle:
                await asyncio.sleep(0)

    # --- tracing ---------------------------------------------------------------------

    def add_tracer(self, tracer: Tracer) -> None:
        """Report every event fired from now on; instances switch to their traced classes."""
        self._tracers.append(tracer)
        if len(self._tracers) == 1:
            self._swap_classes(traced=True)

    def remove_tracer(self, tracer: Tracer) -> None:
        self._tracers.remove(tracer)
        if not self._tracers:
            self._swap_classes(traced=False)

    def _swap_classes(self, traced: bool) -> None:
        for fb in self.fbs.values():
            target = fb.TRACED if traced else fb.PLAIN
            if target is not None:
                fb.__class__ = target
        old = list(self._queue)
        self._queue.clear()
        for h in old:  # rebind queued handlers to the new classes
            owner = getattr(h, "__self__", None)
            name = getattr(getattr(h, "__func__", None), "__name__", None)
            self._queue.append(getattr(owner, name) if owner is not None and name else h)
        self._rewire_all()

    def _trace_emit(self, fb: FBInstance, event: str) -> None:
        for t in self._tracers:
            t.on_emit(fb, event)

    def _trace_input(self, fb: FBInstance, event: str) -> None:
        for t in self._tracers:
            t.on_input(fb, event)

    # --- statistics -----------------------------------------------------------------

    def statistics(self) -> ResourceStatistics:
        return ResourceStatistics(
            events_processed=self._processed,
            queue_length=len(self._queue),
            queue_high_water=self._high_water,
            queue_capacity=self.capacity,
            events_dropped=self._dropped,
            external_posted=self._ext_posted,
            external_dropped=self._ext_dropped,
            external_capacity=self.external_capacity,
            faults=self._faults,
        )

    def iter_fbs(self) -> Iterator[FBInstance]:
        return iter(self.fbs.values())


def _print_line(text: str) -> None:
    print(text, flush=True)


def _failing_fb(exc: BaseException) -> FBInstance | None:
    tb = exc.__traceback__
    found: FBInstance | None = None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, FBInstance):
            found = candidate
        tb = tb.tb_next
    return found


def _widening_ok(src: ElementaryType, dst: ElementaryType) -> bool:
    if src.name == dst.name:
        return True
    ints = (Kind.SIGNED, Kind.UNSIGNED)
    if src.kind in ints and dst.kind is Kind.SIGNED:
        return src.bits < dst.bits
    if src.kind is Kind.UNSIGNED and dst.kind is Kind.UNSIGNED:
        return src.bits < dst.bits
    if src.kind is Kind.BITS and dst.kind is Kind.BITS:
        return src.bits < dst.bits
    if src.kind in ints and dst.kind is Kind.REAL:
        return True
    if src.kind is Kind.REAL and dst.kind is Kind.REAL:
        return src.bits <= dst.bits
    return src.kind is Kind.STRING and dst.kind is Kind.STRING


def _check_types(source: str, stype: object, destination: str, dtype: object) -> None:
    if isinstance(stype, ElementaryType) and isinstance(dtype, ElementaryType):
        if not _widening_ok(stype, dtype):
            raise NetworkError(f"cannot connect {source} ({stype.name}) to {destination} "
                               f"({dtype.name})")
    elif (isinstance(stype, ElementaryType) and isinstance(dtype, GenericType)
          and not dtype.accepts(stype)):
        raise NetworkError(f"cannot connect {source} ({stype.name}) to {destination} "
                           f"({dtype.name})")


def _unknown(what: str, name: str, candidates: object) -> str:
    import difflib

    names = [str(c) for c in candidates]  # type: ignore[attr-defined]
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; nearest: {', '.join(near)}" if near else (
        f"; known: {', '.join(sorted(names)[:10])}" if names else "")
    return f"no {what}{hint}"
