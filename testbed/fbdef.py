"""A compact notation for defining FB types in Python (used by `fb/`).

    interface(ei="CU(PV) R", eo="CUO(Q,CV) RO(Q,CV)", inputs="PV:UINT", outputs="Q:BOOL CV:UINT")
    basic_fb("E_CTU", itf,
             states="START CU[CU/CUO] R[R/RO]",
             transitions="START->CU: CU[CV < 65535]; CU->START: 1; START->R: R; R->START: 1",
             algorithms={"CU": "CV = CV + 1\\nQ = CV >= PV", "R": "CV = 0\\nQ = False"})

Events are `NAME(WITH,...)`; variables `NAME:TYPE[=INITIAL]` with an optional array
size `NAME:TYPE[4]`; states `NAME[ALG/OUT,...]`; transitions `SRC->DST: CONDITION` in
priority order, where guards and algorithms are Python over the variable names
(inlined by the code generator with IEC wrap-around on assignment).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from testbed.errors import TypeLibraryError
from testbed.model import (
    ECC,
    AdapterDecl,
    AlgorithmSpec,
    BasicFBType,
    ECAction,
    ECState,
    ECTransition,
    EventDecl,
    Interface,
    PythonAlgorithm,
    SimpleFBType,
    SnippetAlgorithm,
    SnippetGuard,
    VarDecl,
    parse_condition,
    resolve_data_type,
)
from testbed.types import parse_value

__all__ = ["basic_fb", "events", "interface", "simple_fb", "variables"]

_EVENT = re.compile(r"([A-Za-z_]\w*)(?:\(([^)]*)\))?")
_VAR = re.compile(r"([A-Za-z_]\w*):([A-Za-z_]\w*)(?:\[(\d+)\])?(?:=(\S+))?")
_STATE = re.compile(r"([A-Za-z_]\w*)(?:\[([^\]]*)\])?")
_ADAPTER_EVENT = re.compile(r"^\s*([A-Za-z_]\w*\.[A-Za-z_]\w*)\s*(?:\[(.*)\])?\s*$")


def events(spec: str) -> tuple[EventDecl, ...]:
    out: list[EventDecl] = []
    for m in _EVENT.finditer(spec):
        with_vars = tuple(w.strip() for w in (m.group(2) or "").split(",") if w.strip())
        out.append(EventDecl(m.group(1), with_vars))
    return tuple(out)


def variables(spec: str) -> tuple[VarDecl, ...]:
    out: list[VarDecl] = []
    for token in spec.split():
        m = _VAR.fullmatch(token)
        if not m:
            raise TypeLibraryError(f"bad variable declaration {token!r}")
        t: Any = resolve_data_type(m.group(2))
        if m.group(3):
            from testbed.types.derived import ArrayType  # aggregates are rare

            t = ArrayType(t, ((0, int(m.group(3)) - 1),))
        initial = parse_value(m.group(4), t).value if m.group(4) else None
        out.append(VarDecl(m.group(1), t, initial))
    return tuple(out)


def _adapter_decls(spec: str) -> tuple[AdapterDecl, ...]:
    out = []
    for token in spec.split():
        name, _, type_name = token.partition(":")
        out.append(AdapterDecl(name, type_name))
    return tuple(out)


def interface(ei: str = "", eo: str = "", inputs: str = "", outputs: str = "",
              plugs: str = "", sockets: str = "") -> Interface:
    """An interface; `plugs`/`sockets` are `NAME:ADAPTER_TYPE` tokens."""
    return Interface(events(ei), events(eo), variables(inputs), variables(outputs),
                     _adapter_decls(plugs), _adapter_decls(sockets))


def _algorithms(
    algorithms: Mapping[str, str | Callable[[Any], None]],
) -> dict[str, AlgorithmSpec]:
    out: dict[str, AlgorithmSpec] = {}
    for name, body in algorithms.items():
        out[name] = SnippetAlgorithm(name, body) if isinstance(body, str) else PythonAlgorithm(
            name, body)
    return out


def basic_fb(
    name: str,
    itf: Interface,
    *,
    states: str,
    transitions: str,
    algorithms: Mapping[str, str | Callable[[Any], None]] | None = None,
    internals: str = "",
    comment: str = "",
    source: str | None = None,
) -> BasicFBType:
    state_list: list[ECState] = []
    for m in _STATE.finditer(states):
        actions: list[ECAction] = []
        for act in (m.group(2) or "").split(","):
            if not act.strip():
                continue
            alg, _, out = act.partition("/")
            actions.append(ECAction(alg.strip() or None, out.strip() or None))
        state_list.append(ECState(m.group(1), tuple(actions)))
    event_inputs = {e.name for e in itf.event_inputs}
    adapters = {a.name for a in (*itf.plugs, *itf.sockets)}
    trans: list[ECTransition] = []
    for part in transitions.split(";"):
        if not part.strip():
            continue
        head, _, cond = part.partition(":")
        src, _, dst = head.partition("->")
        adapter_event = _ADAPTER_EVENT.match(cond)
        if adapter_event and adapter_event.group(1).split(".")[0] in adapters:  # Plug.EV[g]
            text = (adapter_event.group(2) or "").strip()
            trans.append(ECTransition(src.strip(), dst.strip(), adapter_event.group(1),
                                      SnippetGuard(text) if text else None, cond.strip()))
            continue
        event, guard = parse_condition(cond, event_inputs, guard_kind="snippet")
        trans.append(ECTransition(src.strip(), dst.strip(), event, guard, cond.strip()))
    return BasicFBType(
        name=name, interface=itf, comment=comment, source=source,
        internal_vars=variables(internals), ecc=ECC(tuple(state_list), tuple(trans)),
        algorithms=_algorithms(algorithms or {}),
    )


def simple_fb(
    name: str,
    itf: Interface,
    algorithms: Mapping[str, str | Callable[[Any], None]],
    *,
    outputs_for: Mapping[str, tuple[str, ...]] | None = None,
    internals: str = "",
    comment: str = "",
    source: str | None = None,
) -> SimpleFBType:
    return SimpleFBType(
        name=name, interface=itf, comment=comment, source=source,
        internal_vars=variables(internals), algorithms=_algorithms(algorithms),
        outputs_for=dict(outputs_for or {}),
    )
