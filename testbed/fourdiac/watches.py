"""Monitoring for the management port: watches, event counters and forcing.

4diac IDE's monitoring asks a device to watch pins (`CREATE <Watch Source="FB.PIN"/>`),
reads them all at once (`READ <Watches/>`), forces values and triggers events.
This module does that from outside the runtime, without changing it:

- a data watch reads the variable when the watches are read;
- an event watch counts events with a resource `Tracer` (`on_input` for event
  inputs, `on_emit` for event outputs), installed only while event watches or
  forced outputs exist, since tracing switches instances to their slower twins.
  Counting starts when the watch is created (FORTE counts from FB creation);
- a forced **input** swaps the input's connection cell for a private cell holding
  the forced value, so every WITH sampling reads it; clearing restores the cell.
  Connections created to or deleted from a forced input keep the force (the
  executor releases and reclaims the cell around them). Limit: an FB algorithm
  that assigns its own input overrides the force until the next sampling;
- a forced **output** is written to the variable and its connection cell when
  forced, again whenever the FB takes an event (before its algorithm runs) and
  whenever it fires an output event (after its WITH outputs are published, before
  destinations are queued), so connected FBs only ever sample the forced value.
  Limit: inside the one algorithm run, the FB itself sees its own assignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from testbed.errors import ManagementError, PathError
from testbed.runtime.instance import Cell, FBInstance, attr_name
from testbed.runtime.resource import Resource, Tracer, split_pin
from testbed.types import ElementaryType, GenericType, format_value, parse_value

__all__ = ["ResourceMonitor"]


@dataclass(slots=True)
class _Force:
    """One forced pin: its value and, for inputs, the cell it displaced."""

    value: object
    is_input: bool
    saved_cell: Cell | None = None
    own_cell: Cell | None = None


@dataclass(slots=True)
class _FBWatches:
    """Watched pins of one FB, in creation order (FORTE lists data, then events)."""

    data: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)


class _MonitorTracer(Tracer):
    """Counts watched events and re-applies forced outputs."""

    def __init__(self, monitor: ResourceMonitor) -> None:
        self._m = monitor

    def on_input(self, fb: FBInstance, event: str) -> None:
        m = self._m
        w = m.watches.get(fb.name)
        if w is not None and event in w.events:
            w.events[event] += 1
        if fb.name in m.forced_fbs:
            m.reapply_outputs(fb)

    def on_emit(self, fb: FBInstance, event: str) -> None:
        m = self._m
        w = m.watches.get(fb.name)
        if w is not None and event in w.events:
            w.events[event] += 1
        if fb.name in m.forced_fbs:
            m.reapply_outputs(fb)


class ResourceMonitor:
    """Watches, counters and forces of one resource (one per resource, shared by connections)."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.watches: dict[str, _FBWatches] = {}
        self.forces: dict[tuple[str, str], _Force] = {}
        self.forced_fbs: set[str] = set()
        self._tracer = _MonitorTracer(self)
        self._traced = False

    # --- watches -------------------------------------------------------------------

    def add_watch(self, path: str) -> None:
        """Watch a data pin or count an event pin of `FB.PIN` (idempotent, as in FORTE)."""
        fb, pin = self._resolve(path)
        entry = self.watches.setdefault(fb.name, _FBWatches())
        if fb.var_decl(pin) is not None:
            if pin not in entry.data:
                entry.data.append(pin)
        elif pin in fb.EI_HANDLERS or pin in fb.EO_NAMES:
            entry.events.setdefault(pin, 0)
        else:
            self._drop_if_empty(fb.name)
            raise ManagementError("NO_SUCH_OBJECT", f"{fb.name} has no pin {pin!r}")
        self._update_tracing()

    def remove_watch(self, path: str) -> None:
        fb_name, pin = split_pin(path)
        entry = self.watches.get(fb_name)
        if entry is None or (pin not in entry.data and pin not in entry.events):
            raise ManagementError("NO_SUCH_OBJECT", f"{path} is not watched")
        if pin in entry.data:
            entry.data.remove(pin)
        entry.events.pop(pin, None)
        self._drop_if_empty(fb_name)
        self._update_tracing()

    def reset_event_count(self, path: str) -> None:
        """`$er`: the event counter of a watched event pin back to 0."""
        fb, pin = self._resolve(path)
        if pin not in fb.EI_HANDLERS and pin not in fb.EO_NAMES:
            raise ManagementError("NO_SUCH_OBJECT", f"{fb.name} has no event pin {pin!r}")
        entry = self.watches.get(fb.name)
        if entry is not None and pin in entry.events:
            entry.events[pin] = 0

    def count_event(self, fb_name: str, pin: str) -> None:
        """Count an event fired from outside the FB's own code (a `$e` on an output)."""
        entry = self.watches.get(fb_name)
        if entry is not None and pin in entry.events:
            entry.events[pin] += 1

    def forget_fb(self, fb_name: str) -> None:
        """The FB was deleted: drop its watches and forces."""
        self.watches.pop(fb_name, None)
        for key in [k for k in self.forces if k[0] == fb_name]:
            del self.forces[key]
        self.forced_fbs.discard(fb_name)
        self._update_tracing()

    def render(self, time_ms: int) -> str:
        """This resource's part of `<Watches>`, or "" when nothing is watched (as FORTE)."""
        if not self.watches:
            return ""
        parts = [f"<Resource name={quoteattr(self.resource.name)}>"]
        for fb_name, entry in self.watches.items():
            fb = self.resource.fbs.get(fb_name)
            if fb is None:
                continue
            parts.append(f"<FB name={quoteattr(fb_name)}>")
            for pin in entry.data:
                decl = fb.var_decl(pin)
                value = format_value(decl.type if decl is not None else None, fb.get(pin))
                forced = "true" if (fb_name, pin) in self.forces else "false"
                parts.append(f"<Port name={quoteattr(pin)}><Data value={quoteattr(value)} "
                             f'forced="{forced}"/></Port>')
            for pin, count in entry.events.items():
                parts.append(f"<Port name={quoteattr(pin)}><Data value=\"{count}\" "
                             f'time="{time_ms}"/></Port>')
            parts.append("</FB>")
        parts.append("</Resource>")
        return "".join(parts)

    # --- forcing -------------------------------------------------------------------

    def force(self, path: str, text: str) -> None:
        """Force `FB.PIN` (a data input or output) to the literal `text`."""
        fb, pin = self._resolve(path)
        is_input = pin in fb.INPUTS
        decl = fb.INPUTS.get(pin) or fb.OUTPUTS.get(pin)
        if decl is None:
            raise ManagementError("NO_SUCH_OBJECT", f"{fb.name} has no data pin {pin!r}")
        tv = parse_value(text, decl.type)
        value = decl.type.coerce(tv.value) if isinstance(decl.type, ElementaryType) \
            else tv.value
        if isinstance(decl.type, GenericType) and tv.type is not None:
            fb.__dict__.setdefault("_anytype", {})[pin] = tv.type
        key = (fb.name, pin)
        old = self.forces.get(key)
        if is_input:
            slot = "_i_" + attr_name(pin)
            if old is not None and old.own_cell is not None:
                old.own_cell.v = value
                old.value = value
            else:
                own = Cell(value)
                self.forces[key] = _Force(value, True, getattr(fb, slot), own)
                setattr(fb, slot, own)
            fb.set(pin, value)
        else:
            self.forces[key] = _Force(value, False)
            self.forced_fbs.add(fb.name)
            self.reapply_outputs(fb)
        self._update_tracing()

    def clear_force(self, path: str) -> None:
        """`force="false"`: the pin follows the application again."""
        fb, pin = self._resolve(path)
        if fb.var_decl(pin) is None:
            raise ManagementError("NO_SUCH_OBJECT", f"{fb.name} has no data pin {pin!r}")
        entry = self.forces.pop((fb.name, pin), None)
        if entry is not None and entry.is_input:
            slot = "_i_" + attr_name(pin)
            if getattr(fb, slot) is entry.own_cell:  # still ours: give the connection back
                setattr(fb, slot, entry.saved_cell)
        if not any(k[0] == fb.name and not f.is_input for k, f in self.forces.items()):
            self.forced_fbs.discard(fb.name)
        self._update_tracing()

    def is_forced(self, fb_name: str, pin: str) -> bool:
        return (fb_name, pin) in self.forces

    def release_input(self, fb_name: str, pin: str) -> None:
        """Before a connection to a forced input changes: put the real cell back."""
        f = self.forces.get((fb_name, pin))
        fb = self.resource.fbs.get(fb_name)
        if f is not None and f.is_input and fb is not None:
            setattr(fb, "_i_" + attr_name(pin), f.saved_cell)

    def reclaim_input(self, fb_name: str, pin: str) -> None:
        """After the connection changed: remember the new cell, keep forcing."""
        f = self.forces.get((fb_name, pin))
        fb = self.resource.fbs.get(fb_name)
        if f is not None and f.is_input and fb is not None:
            slot = "_i_" + attr_name(pin)
            f.saved_cell = getattr(fb, slot)
            setattr(fb, slot, f.own_cell)

    def reapply_outputs(self, fb: FBInstance) -> None:
        for (fb_name, pin), f in self.forces.items():
            if fb_name == fb.name and not f.is_input:
                fb.set(pin, f.value)
                cell = getattr(fb, "_o_" + attr_name(pin), None)
                if cell is not None:
                    cell.v = f.value

    # --- helpers -------------------------------------------------------------------

    def _resolve(self, path: str) -> tuple[FBInstance, str]:
        try:
            return self.resource.resolve(path)
        except PathError as exc:
            raise ManagementError("NO_SUCH_OBJECT", str(exc)) from exc

    def _drop_if_empty(self, fb_name: str) -> None:
        entry = self.watches.get(fb_name)
        if entry is not None and not entry.data and not entry.events:
            del self.watches[fb_name]

    def _update_tracing(self) -> None:
        need = bool(self.forced_fbs) or any(w.events for w in self.watches.values())
        if need and not self._traced:
            self.resource.add_tracer(self._tracer)
            self._traced = True
        elif not need and self._traced:
            self.resource.remove_tracer(self._tracer)
            self._traced = False

    def close(self) -> None:
        """Remove the tracer and give forced inputs their connections back."""
        for key in list(self.forces):
            fb = self.resource.fbs.get(key[0])
            if fb is not None:
                self.clear_force(f"{key[0]}.{key[1]}")
        self.forces.clear()
        self.forced_fbs.clear()
        self.watches.clear()
        self._update_tracing()
