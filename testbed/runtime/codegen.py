"""Compile an FB type, once, into a Python class with one handler method per event input.

The handlers are generated Python source: WITH sampling, the ECC with its guards,
inlined algorithms and the output-event publication are straight-line code over
slots, so an event costs one method call and no allocation. Each class has a
traced twin (same slots) that also reports every fired output event; a resource
swaps its instances to the twins while something records or watches.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from testbed.errors import EventlessLoopError, TypeLibraryError
from testbed.model import (
    AlgorithmSpec,
    BasicFBType,
    ECTransition,
    EventDecl,
    FBType,
    GuardSpec,
    PythonAlgorithm,
    PythonGuard,
    SimpleFBType,
    SnippetAlgorithm,
    SnippetGuard,
    VarDecl,
)
from testbed.runtime.adapters import AdapterInfo, AdapterResolver, adapter_infos, event_attr
from testbed.runtime.instance import FBInstance, attr_name
from testbed.types import ElementaryType, Kind, to_real32

__all__ = ["EVENTLESS_STEP_LIMIT", "all_events", "build_fb_class", "class_vars", "emit_lines",
           "install_service_methods", "sample_lines", "wrap_expression"]

EVENTLESS_STEP_LIMIT = 10_000
"""Event-less transitions one event may fire before the ECC counts as looping."""

_INLINE_DEPTH = 6


def wrap_expression(src: str, t: object) -> str:
    """Python source that applies IEC assignment semantics of type `t` to `src`."""
    if not isinstance(t, ElementaryType):
        return src
    if t.kind is Kind.SIGNED:
        half = 1 << (t.bits - 1)
        mask = (1 << t.bits) - 1
        return f"((({src}) + {half}) & {mask}) - {half}"
    if t.kind in (Kind.UNSIGNED, Kind.BITS):
        return f"({src}) & {(1 << t.bits) - 1}"
    if t.kind is Kind.REAL and t.bits == 32:
        return f"_to_real32({src})"
    return src


def sample_lines(event: EventDecl) -> list[str]:
    """Copy the WITH inputs of `event` from their connections (FORTE `readInputData`)."""
    out: list[str] = []
    for var in event.with_vars:
        a = attr_name(var)
        out += [f"c = self._i_{a}", f"if c is not None: self.{a} = c.v"]
    return out


def emit_lines(event: EventDecl, traced: bool) -> list[str]:
    """Publish WITH outputs, then queue every destination of `event` (FORTE `sendOutputEvent`)."""
    out: list[str] = []
    for var in event.with_vars:
        a = attr_name(var)
        out += [f"c = self._o_{a}", f"if c is not None: c.v = self.{a}"]
    if traced:
        out.append(f"self._res._trace_emit(self, {event.name!r})")
    out += [
        f"d = self._e_{event_attr(event.name)}",
        "if d:",
        "    q = self._q",
        "    q.extend(d)",
        "    if len(q) > self._wm: self._res._queue_grew(self)",
    ]
    return out


# --- snippets: Python source over variable names -------------------------------------


class _SnippetRewriter(ast.NodeTransformer):
    def __init__(self, variables: Mapping[str, VarDecl]) -> None:
        self.variables = variables

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.variables:
            return ast.copy_location(
                ast.Attribute(ast.Name("self", ast.Load()), attr_name(node.id), node.ctx), node)
        return node

    def _wrapped(self, target: ast.expr, value: ast.expr) -> ast.expr:
        if isinstance(target, ast.Name) and target.id in self.variables:
            src = wrap_expression(ast.unparse(value), self.variables[target.id].type)
            return ast.parse(src, mode="eval").body
        return value

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        value = self.visit(node.value)
        if len(node.targets) == 1:
            value = self._wrapped(node.targets[0], value)
        targets = [self.visit(t) for t in node.targets]
        return ast.copy_location(ast.Assign(targets=targets, value=value), node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        load = ast.Name(node.target.id, ast.Load()) if isinstance(node.target, ast.Name) else (
            node.target)
        combined = ast.BinOp(left=self.visit(load), op=node.op, right=self.visit(node.value))
        value = self._wrapped(node.target, combined)
        target = self.visit(node.target)
        return ast.copy_location(ast.Assign(targets=[target], value=value), node)


def _snippet(source: str, variables: Mapping[str, VarDecl], mode: str, where: str) -> str:
    try:
        tree = ast.parse(textwrap.dedent(source), mode=mode)
    except SyntaxError as exc:
        raise TypeLibraryError(f"{where}: Python snippet does not parse: {exc}") from exc
    tree = ast.fix_missing_locations(_SnippetRewriter(variables).visit(tree))
    return ast.unparse(tree)


# --- class generation ---------------------------------------------------------------


@dataclass
class _Unit:
    """Source and globals of one generated class body."""

    fb_type: FBType
    variables: dict[str, VarDecl]
    adapters: tuple[AdapterInfo, ...] = ()
    globals: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    counter: int = 0

    def bind(self, prefix: str, obj: object) -> str:
        self.counter += 1
        name = f"_{prefix}{self.counter}"
        self.globals[name] = obj
        return name

    @property
    def names(self) -> dict[str, VarDecl]:
        """Variables and adapters (adapters read as STRUCT-like objects) for snippets."""
        return {**self.variables, **{a.name: VarDecl(a.name, a.data) for a in self.adapters}}

    def where(self, part: str) -> str:
        return f"{self.fb_type.source or '<python>'}: FB type {self.fb_type.name}: {part}"


def _st_module() -> Any:
    import testbed.st as st  # optional until the ST compiler is present

    return st


def _guard_source(unit: _Unit, guard: GuardSpec | None, label: str) -> str:
    if guard is None:
        return "True"
    if isinstance(guard, PythonGuard):
        return f"{unit.bind('g', guard.fn)}(self)"
    if isinstance(guard, SnippetGuard):
        return "(" + _snippet(guard.expression, unit.names, "eval", unit.where(label)) + ")"
    st = _st_module()
    origin = st.STOrigin(file=unit.fb_type.source, fb_type=unit.fb_type.name, algorithm=label)
    return "(" + str(st.compile_guard(guard.text, _var_types(unit), origin=origin)) + ")"


def _var_types(unit: _Unit) -> dict[str, Any]:
    types: dict[str, Any] = {name: decl.type for name, decl in unit.variables.items()}
    for info in unit.adapters:
        types[info.name] = info.data
    return types


def _algorithm_lines(unit: _Unit, alg: AlgorithmSpec) -> list[str]:
    if isinstance(alg, PythonAlgorithm):
        return [f"{unit.bind('a', alg.fn)}(self)"]
    if isinstance(alg, SnippetAlgorithm):
        src = _snippet(alg.source, unit.names, "exec", unit.where(f"algorithm {alg.name}"))
        return src.splitlines() or ["pass"]
    st = _st_module()
    origin = st.STOrigin(file=unit.fb_type.source, fb_type=unit.fb_type.name,
                         algorithm=alg.name, line_offset=alg.line)
    compiled = st.compile_algorithm(alg.text, _var_types(unit), origin=origin)
    for name, obj in compiled.constants:
        unit.globals[name] = obj
    lines = list(compiled.lines) or ["pass"]
    if not compiled.uses_return:
        return lines
    fname = f"_alg_{unit.counter + 1}"
    unit.counter += 1
    unit.methods.append("\n".join([f"def {fname}(self):", *("    " + ln for ln in lines)]))
    return [f"self.{fname}()"]


def _indent(lines: Iterable[str], n: int = 1) -> list[str]:
    pad = "    " * n
    return [pad + ln for ln in lines]


class _ECCCompiler:
    """Generates the handler of each event input of a basic FB."""

    def __init__(self, unit: _Unit, fb: BasicFBType, traced: bool) -> None:
        self.unit = unit
        self.fb = fb
        self.traced = traced
        self.index = {s.name: i for i, s in enumerate(fb.ecc.states)}
        self.outputs = {e.name: e for e in fb.interface.event_outputs}
        for info in unit.adapters:
            self.outputs.update({e.name: e for e in info.outputs})
        inputs = {e.name for e in fb.interface.event_inputs}
        for info in unit.adapters:
            inputs.update(e.name for e in info.inputs)
        self.guards: dict[int, str] = {}
        self.alg_cache: dict[str, list[str]] = {}
        for t in fb.ecc.transitions:
            for end in (t.source, t.destination):
                if end not in self.index:
                    raise TypeLibraryError(
                        unit.where(f"transition refers to unknown state {end!r}"))
            if t.event is not None and t.event not in inputs:
                raise TypeLibraryError(unit.where(f"transition on unknown event {t.event!r}"))
        self.cyclic = self._eventless_cycle_states()

    def _eventless_cycle_states(self) -> set[str]:
        """States on a cycle of event-less transitions (those need the bounded loop)."""
        graph: dict[str, list[str]] = {}
        for t in self.fb.ecc.transitions:
            if t.event is None:
                graph.setdefault(t.source, []).append(t.destination)
        on_cycle: set[str] = set()
        for start in graph:
            stack = list(graph.get(start, []))
            seen: set[str] = set()
            while stack:
                n = stack.pop()
                if n == start:
                    on_cycle.add(start)
                    break
                if n not in seen:
                    seen.add(n)
                    stack.extend(graph.get(n, []))
        return on_cycle

    def guard(self, t: ECTransition) -> str:
        key = id(t)
        if key not in self.guards:
            self.guards[key] = _guard_source(
                self.unit, t.guard, f"transition {t.source}->{t.destination} [{t.condition}]")
        return self.guards[key]

    def actions(self, state: str) -> list[str]:
        out: list[str] = []
        for act in self.fb.ecc.state(state).actions:
            if act.algorithm:
                alg = self.fb.algorithms.get(act.algorithm)
                if alg is None:
                    raise TypeLibraryError(self.unit.where(
                        f"state {state} uses unknown algorithm {act.algorithm!r}"))
                if act.algorithm not in self.alg_cache:
                    self.alg_cache[act.algorithm] = _algorithm_lines(self.unit, alg)
                out += self.alg_cache[act.algorithm]
            if act.output:
                ev = self.outputs.get(act.output)
                if ev is None:
                    raise TypeLibraryError(self.unit.where(
                        f"state {state} fires unknown output event {act.output!r}"))
                out += emit_lines(ev, self.traced)
        return out

    def enter(self, state: str, depth: int, origin: int | None = None) -> list[str]:
        """Code entering `state`: actions, then event-less transitions until none fires.

        `origin` is the state the handler started in: ending there needs no store.
        """
        out = self.actions(state)
        idx = self.index[state]
        store = [] if idx == origin else [f"self._s = {idx}"]
        eventless = [t for t in self.fb.ecc.transitions if t.source == state and t.event is None]
        if not eventless:
            return out + store
        if state in self.cyclic or depth >= _INLINE_DEPTH:
            return [*out, f"self._s = {idx}", "self._run_eventless()"]
        return out + self._chain(eventless, depth, store, origin)

    def _chain(self, transitions: list[ECTransition], depth: int, fallback: list[str],
               origin: int | None) -> list[str]:
        out: list[str] = []
        for i, t in enumerate(transitions):
            g = self.guard(t)
            body = self.enter(t.destination, depth + 1, origin)
            if g == "True":
                if i == 0:
                    return body
                out += ["else:", *_indent(body or ["pass"])]
                return out
            body = body or ["pass"]
            out += [f"{'if' if i == 0 else 'elif'} {g}:", *_indent(body)]
        if fallback:
            out += ["else:", *_indent(fallback)]
        return out

    def resting_states(self) -> list[str]:
        """States an ECC can rest in: the initial state and those not left unconditionally."""
        out = []
        for i, st in enumerate(self.fb.ecc.states):
            leaves = any(t.source == st.name and t.event is None and t.guard is None
                         for t in self.fb.ecc.transitions)
            if i == 0 or not leaves:
                out.append(st.name)
        return out

    def handler(self, event: EventDecl) -> str:
        lines = [f"def _ev_{event_attr(event.name)}(self):"]
        body: list[str] = []
        if self.traced:
            body.append(f"self._res._trace_input(self, {event.name!r})")
        body += sample_lines(event)
        resting = self.resting_states()
        branches: list[tuple[int, list[str]]] = []
        for name in resting:
            idx = self.index[name]
            cands = [t for t in self.fb.ecc.transitions
                     if t.source == name and t.event in (None, event.name)]
            chain: list[str] = []
            for i, t in enumerate(cands):
                g = self.guard(t)
                enter = self.enter(t.destination, 1, idx) or ["pass"]
                if g == "True":
                    chain += (enter if i == 0 else ["else:", *_indent(enter)])
                    break
                chain += [f"{'if' if i == 0 else 'elif'} {g}:", *_indent(enter)]
            if chain:
                branches.append((idx, chain))
        if len(resting) == 1 and branches:
            body += branches[0][1]  # one resting state: no dispatch on the state needed
        elif branches:
            body.append("s = self._s")
            for k, (idx, chain) in enumerate(branches):
                body += [f"{'if' if k == 0 else 'elif'} s == {idx}:", *_indent(chain)]
        return "\n".join(lines + _indent(body or ["pass"]))

    def eventless_loop(self) -> str:
        """The bounded loop used for cyclic or deep event-less chains."""
        lines = ["def _run_eventless(self):", "    n = 0", "    while True:", "        s = self._s"]
        first = True
        for state in self.fb.ecc.states:
            eventless = [t for t in self.fb.ecc.transitions
                         if t.source == state.name and t.event is None]
            if not eventless:
                continue
            chain: list[str] = []
            for i, t in enumerate(eventless):
                g = self.guard(t)
                step = [*self.actions(t.destination), f"self._s = {self.index[t.destination]}"]
                if g == "True":
                    chain += (step if i == 0 else ["else:", *_indent(step)])
                    break
                chain += [f"{'if' if i == 0 else 'elif'} {g}:", *_indent(step)]
            else:
                chain += ["else:", "    return"]
            lines += _indent([f"{'if' if first else 'elif'} s == {self.index[state.name]}:",
                              *_indent(chain)], 2)
            first = False
        lines += _indent(["else:", "    return"] if not first else ["return"], 2)
        lines += _indent(["n += 1", f"if n > {EVENTLESS_STEP_LIMIT}:",
                          "    raise _EventlessLoopError("
                          f"f'{{self._fb_name}}: ECC of {self.fb.name} fired more than "
                          f"{EVENTLESS_STEP_LIMIT} event-less transitions"
                          " (state {self.FB_TYPE.ecc.states[self._s].name})')"], 2)
        return "\n".join(lines)


def _simple_handlers(unit: _Unit, fb: SimpleFBType, traced: bool) -> list[str]:
    outs = {e.name: e for e in fb.interface.event_outputs}
    methods: list[str] = []
    for i, ev in enumerate(fb.interface.event_inputs):
        body: list[str] = []
        if traced:
            body.append(f"self._res._trace_input(self, {ev.name!r})")
        body += sample_lines(ev)
        alg = fb.algorithms.get(ev.name)
        if alg is not None:
            body += _algorithm_lines(unit, alg)
        targets = fb.outputs_for.get(ev.name)
        if targets is None:
            eos = fb.interface.event_outputs
            targets = (eos[min(i, len(eos) - 1)].name,) if eos else ()
        for name in targets:
            body += emit_lines(outs[name], traced)
        methods.append("\n".join([f"def _ev_{ev.name}(self):", *_indent(body or ["pass"])]))
    return methods


def _compile_methods(unit: _Unit, sources: list[str]) -> dict[str, Any]:
    namespace: dict[str, Any] = dict(unit.globals)
    namespace.update({"_to_real32": to_real32, "_EventlessLoopError": EventlessLoopError})
    if "_st." in "\n".join(sources):
        import testbed.st.stdlib as st_stdlib  # only types with ST need it

        namespace["_st"] = st_stdlib
    code = "\n\n".join(sources)
    try:
        compiled = compile(code, f"<testbed:{unit.fb_type.name}>", "exec")
    except SyntaxError as exc:  # a generator bug or a malformed snippet: show the code
        raise TypeLibraryError(unit.where(f"generated code does not compile: {exc}\n{code}")) \
            from exc
    exec(compiled, namespace)  # noqa: S102 - our own generated code, compiled once per type
    return {k: v for k, v in namespace.items() if k.startswith(("_ev_", "_alg_", "_run_"))}


def _variables(fb: FBType) -> dict[str, VarDecl]:
    table: dict[str, VarDecl] = {}
    for v in (*fb.interface.input_vars, *fb.interface.output_vars,
              *getattr(fb, "internal_vars", ())):
        table[v.name] = v
    return table


def all_events(fb: FBType, adapters: tuple[AdapterInfo, ...]) -> tuple[
        tuple[EventDecl, ...], tuple[EventDecl, ...]]:
    """Event inputs and outputs of a type, including those its plugs and sockets add."""
    ins = (*fb.interface.event_inputs, *(e for a in adapters for e in a.inputs))
    outs = (*fb.interface.event_outputs, *(e for a in adapters for e in a.outputs))
    return ins, outs


def class_vars(fb: FBType, adapters: tuple[AdapterInfo, ...] = ()) -> dict[str, Any]:
    """The ClassVars every FB instance class carries (interface tables, adapters)."""
    itf = fb.interface
    ins, outs = all_events(fb, adapters)
    return {
        "FB_TYPE": fb,
        "EI_HANDLERS": {e.name: f"_ev_{event_attr(e.name)}" for e in ins},
        "EO_NAMES": tuple(e.name for e in outs),
        "INPUTS": {v.name: v for v in itf.input_vars},
        "OUTPUTS": {v.name: v for v in itf.output_vars},
        "INTERNALS": {v.name: v for v in getattr(fb, "internal_vars", ())},
        "ADAPTERS": {a.name: a for a in adapters},
    }


def _slots(fb: FBType, adapters: tuple[AdapterInfo, ...]) -> tuple[str, ...]:
    itf = fb.interface
    names = [attr_name(v) for v in _variables(fb)]
    names += ["_i_" + attr_name(v.name) for v in itf.input_vars]
    names += ["_o_" + attr_name(v.name) for v in itf.output_vars]
    names += ["_e_" + event_attr(e.name) for e in all_events(fb, adapters)[1]]
    names += [attr_name(a.name) for a in adapters]
    return tuple(dict.fromkeys(names))


def _methods_for(fb: FBType, adapters: tuple[AdapterInfo, ...], traced: bool) -> dict[str, Any]:
    unit = _Unit(fb, _variables(fb), adapters)
    if isinstance(fb, BasicFBType):
        ecc = _ECCCompiler(unit, fb, traced)
        sources = [ecc.handler(e) for e in all_events(fb, adapters)[0]]
        sources.append(ecc.eventless_loop())
    elif isinstance(fb, SimpleFBType):
        sources = _simple_handlers(unit, fb, traced)
    else:
        raise TypeLibraryError(f"{fb.name}: no code generator for {fb.kind} FB types")
    return _compile_methods(unit, [*unit.methods, *sources])


def build_fb_class(fb: FBType, resolve_adapter: AdapterResolver | None = None,
                   ) -> type[FBInstance]:
    """Generate the instance class (and its traced twin) of a basic or simple FB type."""
    adapters = adapter_infos(fb, resolve_adapter)
    namespace: dict[str, Any] = {"__slots__": _slots(fb, adapters),
                                 "__doc__": fb.comment or None, **class_vars(fb, adapters),
                                 **_methods_for(fb, adapters, traced=False)}
    plain: type[FBInstance] = type(fb.name, (FBInstance,), namespace)
    traced_ns: dict[str, Any] = {"__slots__": (), **_methods_for(fb, adapters, traced=True)}
    traced: type[FBInstance] = type(fb.name + "[traced]", (plain,), traced_ns)
    plain.TRACED = traced
    plain.PLAIN = plain
    traced.TRACED = traced
    traced.PLAIN = plain
    return plain


def install_service_methods(cls: type[FBInstance], fb: FBType) -> type[FBInstance]:
    """Give a hand-written service FB class its sampling wrappers, emitters and traced twin.

    For each event input `X` the class defines `on_X(self)`; the generated `_ev_X`
    samples X's WITH inputs then calls it. For each event output `Y` the generated
    `emit_Y(self)` publishes Y's WITH outputs and queues Y's destinations.
    """

    def methods(traced: bool) -> dict[str, Any]:
        src: list[str] = []
        for ev in fb.interface.event_inputs:
            body: list[str] = []
            if traced:
                body.append(f"self._res._trace_input(self, {ev.name!r})")
            body += sample_lines(ev)
            body.append(f"self.on_{ev.name}()" if hasattr(cls, f"on_{ev.name}") else "pass")
            src.append("\n".join([f"def _ev_{ev.name}(self):", *_indent(body)]))
        for ev in fb.interface.event_outputs:
            src.append("\n".join([f"def emit_{ev.name}(self):",
                                  *_indent(emit_lines(ev, traced))]))
        namespace: dict[str, Any] = {}
        code = compile("\n\n".join(src), f"<testbed:{fb.name}>", "exec")
        exec(code, namespace)  # noqa: S102 - our own generated code, once per class
        return {k: v for k, v in namespace.items() if k.startswith(("_ev_", "emit_"))}

    for key, value in {**class_vars(fb), **methods(traced=False)}.items():
        setattr(cls, key, value)
    traced_cls: type[FBInstance] = type(cls.__name__ + "[traced]", (cls,),
                                        {"__slots__": (), **methods(traced=True)})
    cls.TRACED = traced_cls
    cls.PLAIN = cls
    traced_cls.TRACED = traced_cls
    traced_cls.PLAIN = cls
    return cls


Factory = Callable[[str, Any], FBInstance]
